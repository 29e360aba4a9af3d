"""P.2108-1 §3.1 terminal clutter correction and the foliage term."""

import math

import numpy as np
import pytest

from coverage.errors import ArgumentError
from coverage.radio.clutter_loss import (
    CLUTTER_TYPES,
    foliage_excess_db,
    terminal_clutter_correction_db,
    validity_issues,
)

# ---------------------------------------------------------------- P.2108-1 §3.1


def test_height_gain_model_by_hand():
    # open/rural, 900 MHz, h = 1.5 m, R = 10 m:
    # K_h2 = 21.8 + 6.2 log10(0.9) = 21.8 − 0.28370 = 21.51630
    # A_h = −21.51630 · log10(1.5 / 10) = −21.51630 · (−0.82391) = 17.7275 dB
    assert terminal_clutter_correction_db(900.0, 1.5, "open_rural") == pytest.approx(17.7275, abs=1e-3)
    # 2.6 GHz: K_h2 = 21.8 + 6.2 · 0.41497 = 24.37282; A_h = 24.37282 · 0.82391 = 20.0810 dB
    assert terminal_clutter_correction_db(2600.0, 1.5, "open_rural") == pytest.approx(20.0810, abs=1e-3)
    # water/sea uses the same model and R
    assert terminal_clutter_correction_db(2600.0, 1.5, "water_sea") == pytest.approx(20.0810, abs=1e-3)


def test_knife_edge_model_by_hand():
    # urban/trees/forest, 900 MHz, h = 1.5 m, R = 15 m, w_s = 27 m:
    # h_dif = 13.5 m; θ = atan(13.5 / 27) = atan(0.5) = 26.5651°
    # K_ν = 0.342 · √0.9 = 0.324451; ν = 0.324451 · √(13.5 · 26.5651) = 0.324451 · 18.9374 = 6.14427
    # J = 6.9 + 20 log10(√(6.04427² + 1) + 6.04427) = 6.9 + 20 log10(6.12643 + 6.04427)
    #   = 6.9 + 20 · 1.08531 = 28.6063; A_h = 28.6063 − 6.03 = 22.5763 dB
    theta = math.degrees(math.atan(0.5))
    assert theta == pytest.approx(26.5651, abs=1e-4)
    nu = 0.342 * math.sqrt(0.9) * math.sqrt(13.5 * theta)
    assert nu == pytest.approx(6.14427, abs=1e-4)
    assert terminal_clutter_correction_db(900.0, 1.5, "urban_trees_forest") == pytest.approx(22.5763, abs=1e-3)
    # dense urban, R = 20 m: h_dif = 18.5; θ = atan(18.5/27) = 34.4164°;
    # ν = 0.324451 · √(18.5 · 34.4164) = 0.324451 · 25.2328 = 8.18681
    # J = 6.9 + 20 log10(√(8.08681² + 1) + 8.08681) = 6.9 + 20 log10(8.14841 + 8.08681) = 31.1094
    # A_h = 25.0794 dB
    assert terminal_clutter_correction_db(900.0, 1.5, "dense_urban") == pytest.approx(25.0794, abs=1e-3)


def test_suburban_is_knife_edge_to_10_m():
    # P.2108-1 Table 3 (and the SG 3 / crc-covlib code): suburban = knife-edge, R = 10 m.
    # h_dif = 8.5; θ = atan(8.5/27) = 17.4765°; ν = 0.324451 · √(8.5 · 17.4765) = 0.324451 · 12.1884 = 3.95454
    # J = 6.9 + 20 log10(√(3.85454² + 1) + 3.85454) = 6.9 + 20 log10(3.98215 + 3.85454) = 24.7824
    # A_h = 18.7524 dB (the research note's 18.8 dB; height gain would give open's 17.7 dB)
    assert terminal_clutter_correction_db(900.0, 1.5, "suburban") == pytest.approx(18.7524, abs=2e-3)


def test_research_note_figures():
    """terrain-and-clutter.md §3.1: h = 1.5 m, 0.9 and 2.6 GHz, to 0.1 dB."""
    note = {900.0: (17.7, 18.8, 22.6, 25.1), 2600.0: (20.1, 23.4, 27.2, 29.7)}
    for f, values in note.items():
        got = [terminal_clutter_correction_db(f, 1.5, t) for t in ("open_rural", "suburban",
                                                                     "urban_trees_forest", "dense_urban")]
        assert np.round(got, 1).tolist() == list(values), f


def test_zero_at_and_above_the_clutter_and_vectorised():
    assert terminal_clutter_correction_db(900.0, 10.0, "open_rural") == 0.0
    assert terminal_clutter_correction_db(900.0, 15.0, "urban_trees_forest") == 0.0
    assert terminal_clutter_correction_db(900.0, 30.0, "dense_urban") == 0.0
    out = terminal_clutter_correction_db([900.0, 2600.0], [[1.5], [20.0]], "dense_urban")
    assert out.shape == (2, 2)
    assert out[0] == pytest.approx([25.0794, 29.7092], abs=1e-3) and out[1].tolist() == [0.0, 0.0]
    for t in CLUTTER_TYPES:  # decreasing with height below R
        a = terminal_clutter_correction_db(1800.0, np.array([1.0, 2.0, 5.0, 9.0]), t)
        assert np.all(np.diff(a) < 0), t
    # R and w_s can be given
    assert terminal_clutter_correction_db(900.0, 1.5, "suburban", representative_height_m=15.0) == \
        pytest.approx(22.5763, abs=1e-3)


def test_bad_arguments():
    with pytest.raises(ArgumentError, match="unknown clutter type 'forest'"):
        terminal_clutter_correction_db(900.0, 1.5, "forest")
    with pytest.raises(ArgumentError, match="ue_height_m"):
        terminal_clutter_correction_db(900.0, [1.5, 0.0], "open_rural")
    with pytest.raises(ArgumentError, match="freq_mhz"):
        foliage_excess_db(-900.0, 1.5)


def test_foliage_excess_is_trees_minus_open():
    # 900 MHz, 1.5 m: 22.5763 − 17.7275 = 4.8488 dB
    assert foliage_excess_db(900.0, 1.5) == pytest.approx(4.8488, abs=1e-3)
    # 2.6 GHz: knife-edge ν = 0.342 · √2.6 · 18.9374 = 10.44319;
    # J = 6.9 + 20 log10(√(10.34319² + 1) + 10.34319) = 6.9 + 20 log10(10.39142 + 10.34319) = 33.2340
    # trees 27.2040 − open 20.0810 = 7.1230 dB
    assert foliage_excess_db(2600.0, 1.5) == pytest.approx(7.1230, abs=2e-3)
    # 12 m: open is 0 (above R = 10 m), trees only: h_dif = 3, θ = atan(3/27) = 6.3402°,
    # ν = 0.324451 · √(3 · 6.3402) = 0.324451 · 4.36124 = 1.41501;
    # J = 6.9 + 20 log10(√(1.31501² + 1) + 1.31501) = 6.9 + 20 log10(1.65207 + 1.31501) = 16.3467 → 10.3167 dB
    assert foliage_excess_db(900.0, 12.0) == pytest.approx(10.3167, abs=2e-3)
    assert foliage_excess_db(900.0, 15.0) == 0.0
    grows = foliage_excess_db(np.array([900.0, 1800.0, 2600.0, 3500.0]), 1.5)
    assert np.all(np.diff(grows) > 0)


def test_validity_issues_above_3_ghz():
    assert validity_issues(2600.0) == []
    assert validity_issues(3500.0) == ["ITU-R P.2108-1 §3.1 foliage correction used at 3500 MHz, valid 30–3000 MHz"]

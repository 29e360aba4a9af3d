"""Path-loss models against values worked out by hand from the published formulas.

Notation: log = log10, f in MHz (Hata) or fc in GHz (TR 38.901), heights in m,
Hata distances in km, TR 38.901 distances in m, c = 299 792 458 m/s.
"""

import math

import numpy as np
import pytest

from coverage.radio import pathloss as pl
from coverage.radio.pathloss import (
    COST231_HATA_DENSE_URBAN,
    COST231_HATA_RURAL,
    COST231_HATA_SUBURBAN,
    COST231_HATA_URBAN,
    FREE_SPACE,
    MODEL_NAMES,
    OKUMURA_HATA_DENSE_URBAN,
    OKUMURA_HATA_RURAL,
    OKUMURA_HATA_SUBURBAN,
    OKUMURA_HATA_URBAN,
    TR38901_RMA,
    TR38901_RMA_LOS,
    TR38901_RMA_NLOS,
    TR38901_UMA,
    TR38901_UMA_LOS,
    TR38901_UMA_NLOS,
    TR38901_UMI,
    TR38901_UMI_LOS,
    TR38901_UMI_NLOS,
    max_range_m,
    max_range_m_array,
    path_loss,
    path_loss_db,
    select_model,
    validity_issues,
)

TOL_DB = 0.01


# ---------------------------------------------------------------- Okumura-Hata
# f = 900 MHz, hb = 30 m, hm = 1.5 m, d = 2 km:
#   log f = 2.954243, log hb = 1.477121, log d = 0.301030
#   26.16 log f = 77.2830; 13.82 log hb = 20.4138
#   a(hm) medium = (1.1·2.954243 − 0.7)·1.5 − (1.56·2.954243 − 0.8)
#                = 3.824500 − 3.808618 = 0.015882
#   (44.9 − 6.55 log hb) log d = 35.224856 · 0.301030 = 10.603737
#   L_urban = 69.55 + 77.2830 − 20.4138 − 0.0159 + 10.6037 = 137.007 dB
#   a(hm) large (f ≥ 300) = 3.2 (log 17.625)² − 4.97 = 3.2·1.552838 − 4.97 = −0.000919
#   L_dense = 137.0070 + 0.015882 + 0.000919 = 137.024 dB
#   suburban: − 2 (log(900/28))² − 5.4 = − 2·1.507084² − 5.4 = −9.9426 → 127.064 dB
#   rural:    − 4.78·2.954243² + 18.33·2.954243 − 40.94 = −41.7177 + 54.1513 − 40.94
#             = −28.5064 → 108.501 dB

@pytest.mark.parametrize("model, expected_db", [
    (OKUMURA_HATA_URBAN, 137.007),
    (OKUMURA_HATA_DENSE_URBAN, 137.024),
    (OKUMURA_HATA_SUBURBAN, 127.064),
    (OKUMURA_HATA_RURAL, 108.501),
])
def test_okumura_hata_worked_example(model, expected_db):
    assert path_loss_db(model, 2000.0, 900.0, 30.0, 1.5) == pytest.approx(expected_db, abs=TOL_DB)


def test_okumura_hata_large_city_below_300_mhz_uses_the_low_frequency_a_hm():
    # f = 200 MHz, hb = 50, hm = 3, d = 10 km:
    #   69.55 + 26.16·2.301030 − 13.82·1.698970 + (44.9 − 6.55·1.698970)·1
    #   = 69.55 + 60.19494 − 23.47976 + 33.77174 = 140.03692
    #   a(hm) = 8.29 (log 4.62)² − 1.1 = 8.29·0.664642² − 1.1 = 2.562148
    #   L = 140.03692 − 2.56215 = 137.4748 dB
    assert path_loss_db(OKUMURA_HATA_DENSE_URBAN, 10_000.0, 200.0, 50.0, 3.0) == pytest.approx(137.475, abs=TOL_DB)


# ---------------------------------------------------------------- COST-231 Hata
# f = 1800 MHz, hb = 30, hm = 1.5, d = 2 km:
#   33.9 log f = 33.9·3.255273 = 110.353738
#   a(hm) = (1.1·3.255273 − 0.7)·1.5 − (1.56·3.255273 − 0.8) = 4.321200 − 4.278226 = 0.042975
#   L = 46.3 + 110.3537 − 20.4138 − 0.0430 + 10.6037 = 146.801 dB (C = 0)
#   dense (C = 3): 149.801; suburban: − 2 (log(1800/28))² − 5.4 = −11.9386 → 134.862
#   rural: − 4.78·3.255273² + 18.33·3.255273 − 40.94 = −31.9235 → 114.877

@pytest.mark.parametrize("model, expected_db", [
    (COST231_HATA_URBAN, 146.801),
    (COST231_HATA_DENSE_URBAN, 149.801),
    (COST231_HATA_SUBURBAN, 134.862),
    (COST231_HATA_RURAL, 114.877),
])
def test_cost231_hata_worked_example(model, expected_db):
    assert path_loss_db(model, 2000.0, 1800.0, 30.0, 1.5) == pytest.approx(expected_db, abs=TOL_DB)


def test_free_space_uses_the_3d_distance():
    # d3D = √(1000² + 28.5²) = 1000.406 m; 20 log(4π · 1000.406 · 900e6 / c) = 91.536 dB
    assert path_loss_db(FREE_SPACE, 1000.0, 900.0, 30.0, 1.5) == pytest.approx(91.536, abs=TOL_DB)


# ---------------------------------------------------------------- TR 38.901 UMa
# fc = 3.5 GHz, hBS = 25, hUT = 1.5: d'BP = 4·24·0.5·3.5e9/c = 560.39 m
# d2D = 100: d3D = √(100² + 23.5²) = 102.724
#   PL1 = 28 + 22 log 102.724 + 20 log 3.5 = 28 + 44.2568 + 10.8814 = 83.138
#   PL' = 13.54 + 39.08 log 102.724 + 10.8814 − 0 = 103.038 → NLOS = max(83.138, 103.038)
#   P_LOS = 18/100 + exp(−100/63)(1 − 0.18) = 0.347671
#   weighted = 0.347671·83.138 + 0.652329·103.038 = 96.119
# d2D = 1000 (beyond d'BP): d3D = 1000.276
#   PL2 = 28 + 40 log 1000.276 + 10.8814 − 9 log(560.39² + 23.5²) = 109.406
#   PL' = 13.54 + 39.08·3.000120 + 10.8814 = 141.666; P_LOS = 0.018000 → 141.085

@pytest.mark.parametrize("model, d_m, expected_db", [
    (TR38901_UMA_LOS, 100.0, 83.138),
    (TR38901_UMA_NLOS, 100.0, 103.038),
    (TR38901_UMA, 100.0, 96.119),
    (TR38901_UMA_LOS, 1000.0, 109.406),
    (TR38901_UMA_NLOS, 1000.0, 141.666),
    (TR38901_UMA, 1000.0, 141.085),
])
def test_tr38901_uma(model, d_m, expected_db):
    assert path_loss_db(model, d_m, 3500.0, 25.0, 1.5) == pytest.approx(expected_db, abs=TOL_DB)


# ---------------------------------------------------------------- TR 38.901 UMi
# fc = 3.5 GHz, hBS = 10, hUT = 1.5: d'BP = 4·9·0.5·3.5e9/c = 210.15 m
# d2D = 100: d3D = 100.361; PL1 = 32.4 + 21 log 100.361 + 10.8814 = 85.314
#   PL' = 35.3 log 100.361 + 22.4 + 21.3 log 3.5 = 104.644; P_LOS = 18/100 + e^(−100/36)·0.82 = 0.230985
#   weighted = 0.230985·85.314 + 0.769015·104.644 = 100.179
# d2D = 500: d3D = 500.072; PL2 = 32.4 + 40 log 500.072 + 10.8814 − 9.5 log(210.15² + 8.5²) = 107.108
#   PL' = 129.265; P_LOS = 0.036001 → 128.467

@pytest.mark.parametrize("model, d_m, expected_db", [
    (TR38901_UMI_LOS, 100.0, 85.314),
    (TR38901_UMI_NLOS, 100.0, 104.644),
    (TR38901_UMI, 100.0, 100.179),
    (TR38901_UMI_LOS, 500.0, 107.108),
    (TR38901_UMI_NLOS, 500.0, 129.265),
    (TR38901_UMI, 500.0, 128.467),
])
def test_tr38901_umi(model, d_m, expected_db):
    assert path_loss_db(model, d_m, 3500.0, 10.0, 1.5) == pytest.approx(expected_db, abs=TOL_DB)


# ---------------------------------------------------------------- TR 38.901 RMa
# fc = 3.5 GHz, hBS = 35, hUT = 1.5, h = 5, W = 20: dBP = 2π·35·1.5·3.5e9/c = 3851.1 m
# PL1(d3D) = 20 log(40π d3D fc/3) + min(0.03 h^1.72, 10) log d3D − min(0.044 h^1.72, 14.77)
#            + 0.002 log(h) d3D, with 0.03·5^1.72 = 0.477914, 0.044·5^1.72 = 0.700940
# d2D = 1000: d3D = 1000.561; PL1 = 20 log(146.69·1000.561·... ) → 105.460
#   PL' = 161.04 − 7.1 log 20 + 7.5 log 5 − (24.37 − 3.7(5/35)²) log 35
#         + (43.42 − 3.1 log 35)(log 1000.561 − 3) + 20 log 3.5 − (3.2 (log 17.625)² − 4.97)
#       = 130.424; P_LOS = exp(−990/1000) = 0.371577 → weighted 121.148
# d2D = 5000 (beyond dBP): PL2 = PL1(dBP) + 40 log(d3D/dBP) = 121.431 + 40 log(5000.112/3851.115)
#       = 125.967; PL' = 157.419; P_LOS = 0.006806 → 157.205

@pytest.mark.parametrize("model, d_m, expected_db", [
    (TR38901_RMA_LOS, 1000.0, 105.460),
    (TR38901_RMA_NLOS, 1000.0, 130.424),
    (TR38901_RMA, 1000.0, 121.148),
    (TR38901_RMA_LOS, 5000.0, 125.967),
    (TR38901_RMA_NLOS, 5000.0, 157.419),
    (TR38901_RMA, 5000.0, 157.205),
])
def test_tr38901_rma(model, d_m, expected_db):
    assert path_loss_db(model, d_m, 3500.0, 35.0, 1.5) == pytest.approx(expected_db, abs=TOL_DB)


def test_breakpoints_switch_formula_where_the_table_says():
    c = 299_792_458.0
    # UMa LOS: PL2 at d'BP equals PL1 there (d'BP² + Δh² = d3D²): continuous.
    d_bp = 4 * 24 * 0.5 * 3.5e9 / c
    below = path_loss_db(TR38901_UMA_LOS, d_bp - 1e-6, 3500.0, 25.0, 1.5)
    above = path_loss_db(TR38901_UMA_LOS, d_bp + 1e-6, 3500.0, 25.0, 1.5)
    assert below == pytest.approx(above, abs=1e-4)
    # ... and the slope changes from 22 to 40 dB per decade: 10 % past the breakpoint
    d3 = math.hypot(d_bp * 1.1, 23.5)
    pl2 = 28 + 40 * math.log10(d3) + 20 * math.log10(3.5) - 9 * math.log10(d_bp**2 + 23.5**2)
    assert path_loss_db(TR38901_UMA_LOS, d_bp * 1.1, 3500.0, 25.0, 1.5) == pytest.approx(pl2, abs=1e-9)
    # RMa LOS: PL1 evaluated at dBP, plus 40 log(d3D/dBP) beyond it.
    rma_bp = 2 * math.pi * 35 * 1.5 * 3.5e9 / c
    assert rma_bp == pytest.approx(3851.115, abs=0.01)
    assert path_loss_db(TR38901_RMA_LOS, rma_bp * 2, 3500.0, 35.0, 1.5) == pytest.approx(
        121.431 + 40 * math.log10(math.hypot(rma_bp * 2, 33.5) / rma_bp), abs=TOL_DB)


def test_los_probability_tables():
    # TR 38.901 Table 7.4.2-1
    assert pl.los_probability(TR38901_UMI, 10.0, 1.5) == 1.0
    assert pl.los_probability(TR38901_UMA, 18.0, 1.5) == 1.0
    assert pl.los_probability(TR38901_UMA, 100.0, 1.5) == pytest.approx(0.18 + math.exp(-100 / 63) * 0.82)
    # UMa with hUT = 18 m: C' = (5/10)^1.5 = 0.353553; factor 1 + C'·1.25·1·e^(−100/150) = 1.226900
    assert pl.los_probability(TR38901_UMA, 100.0, 18.0) == pytest.approx(
        (0.18 + math.exp(-100 / 63) * 0.82) * 1.2269005, abs=1e-6)
    assert pl.los_probability(TR38901_RMA, 1010.0, 1.5) == pytest.approx(math.exp(-1.0))


def test_distances_below_the_minimum_are_clamped():
    assert path_loss_db(TR38901_UMA, 3.0, 3500.0, 25.0, 1.5) == path_loss_db(TR38901_UMA, 10.0, 3500.0, 25.0, 1.5)
    assert path_loss_db(OKUMURA_HATA_URBAN, 0.0, 900.0, 30.0, 1.5) == path_loss_db(
        OKUMURA_HATA_URBAN, 100.0, 900.0, 30.0, 1.5)
    assert path_loss_db(FREE_SPACE, 0.0, 900.0, 1.5, 1.5) == path_loss_db(FREE_SPACE, 1.0, 900.0, 1.5, 1.5)
    assert math.isnan(path_loss_db(99, 1000.0, 900.0, 30.0, 1.5))


def test_numpy_and_njit_versions_agree_and_broadcast():
    rng = np.random.default_rng(3)
    d = rng.uniform(1.0, 20_000.0, 400)
    f = rng.uniform(500.0, 4000.0, 400)
    hb = rng.uniform(10.0, 60.0, 400)
    for model in MODEL_NAMES:
        vec = path_loss(model, d, f, hb, 1.5)
        scalar = np.array([path_loss_db(model, d[i], f[i], hb[i], 1.5) for i in range(d.size)])
        np.testing.assert_array_equal(vec, scalar)
    grid = path_loss("tr38901_uma", np.array([[100.0], [1000.0]]), np.array([2600.0, 3500.0]), 25.0, 1.5)
    assert grid.shape == (2, 2)
    assert grid[0, 1] == pytest.approx(96.119, abs=TOL_DB)
    ids = path_loss(np.array([OKUMURA_HATA_URBAN, COST231_HATA_URBAN]), 2000.0, np.array([900.0, 1800.0]), 30.0, 1.5)
    np.testing.assert_allclose(ids, [137.007, 146.801], atol=TOL_DB)
    assert isinstance(path_loss("Okumura-Hata urban".replace(" ", "_"), 2000.0, 900.0, 30.0, 1.5), float)
    with pytest.raises(ValueError, match="unknown path-loss model"):
        path_loss("hata", 1.0, 900.0, 30.0, 1.5)


@pytest.mark.parametrize("model", sorted(MODEL_NAMES))
def test_max_range_inverts_path_loss_and_is_the_largest(model):
    f = 900.0 if model <= OKUMURA_HATA_RURAL else 1800.0 if model <= COST231_HATA_RURAL else 3500.0
    for budget in (110.0, 130.0, 150.0):
        r = max_range_m(model, budget, f, 30.0, 1.5, upper_m=50_000.0)
        if r == 50_000.0:
            assert path_loss_db(model, r, f, 30.0, 1.5) <= budget
            continue
        assert path_loss_db(model, r - 2e-3, f, 30.0, 1.5) <= budget
        assert path_loss_db(model, r, f, 30.0, 1.5) == pytest.approx(budget, abs=1e-3)
        beyond = np.geomspace(r + 1e-3, 50_000.0, 20_000)
        assert (path_loss(model, beyond, f, 30.0, 1.5) > budget).all()


def test_max_range_edges():
    # Budget below the loss at the minimum distance: nothing is reachable.
    assert max_range_m(TR38901_UMA, 20.0, 3500.0, 25.0, 1.5) == 0.0
    # Hata worked example: L(2 km) = 137.007 dB, so a 137.007 dB budget reaches 2 km.
    assert max_range_m("okumura_hata_urban", 137.00702466, 900.0, 30.0, 1.5) == pytest.approx(2000.0, abs=0.01)
    assert max_range_m(FREE_SPACE, 300.0, 900.0, 30.0, 1.5, upper_m=1234.0) == 1234.0


def test_max_range_array_matches_scalar_on_many_sectors():
    rng = np.random.default_rng(7)
    n = 200_000
    models = rng.choice([OKUMURA_HATA_URBAN, OKUMURA_HATA_RURAL, TR38901_UMA, TR38901_RMA], n)
    budgets = rng.choice([130.0, 140.0, 150.0], n)
    heights = rng.choice([25.0, 30.0, 40.0], n)
    ranges = max_range_m_array(models, budgets, 3500.0, heights, 1.5)
    assert ranges.shape == (n,)
    for i in rng.integers(0, n, 30):
        assert ranges[i] == max_range_m(int(models[i]), budgets[i], 3500.0, heights[i], 1.5)
    by_name = max_range_m_array(np.array(["tr38901_uma"]), 140.0, 3500.0, 25.0, 1.5)
    assert by_name[0] == max_range_m(TR38901_UMA, 140.0, 3500.0, 25.0, 1.5)


def test_select_model_table():
    assert select_model("nbiot", 942.5, "dense_urban") == OKUMURA_HATA_DENSE_URBAN
    assert select_model("nbiot", 875.0, "urban") == OKUMURA_HATA_URBAN
    assert select_model("NB-IoT", 942.5, "suburban") == OKUMURA_HATA_SUBURBAN
    assert select_model("nbiot", 942.5, "rural") == OKUMURA_HATA_RURAL
    assert select_model("nbiot", 1842.5, "urban") == COST231_HATA_URBAN
    assert select_model("nbiot", 1842.5, "dense_urban") == COST231_HATA_DENSE_URBAN
    assert select_model("redcap", 773.0, "urban") == OKUMURA_HATA_URBAN
    assert select_model("redcap", 3500.0, "dense_urban") == TR38901_UMA
    assert select_model("redcap", 2595.0, "suburban") == TR38901_UMA
    assert select_model("redcap", 2140.0, "rural") == TR38901_RMA
    for bad in (("lte", 900.0, "urban"), ("nbiot", 900.0, "jungle"), ("nbiot", 0.0, "urban")):
        with pytest.raises(ValueError):
            select_model(*bad)


def test_validity_issues():
    assert validity_issues(OKUMURA_HATA_URBAN, 900.0, 30.0, 1.5, 15_000.0) == []
    issues = validity_issues(OKUMURA_HATA_URBAN, 3500.0, 20.0, 1.5, 30_000.0)
    assert issues == [
        "Okumura-Hata urban (medium city) used at 3500 MHz, valid 150–1500 MHz",
        "Okumura-Hata urban (medium city) used with a base-station height of 20 m, valid 30–200 m",
        "Okumura-Hata urban (medium city) used up to 30000 m, valid up to 20000 m",
    ]
    assert validity_issues("tr38901_uma", 3500.0, 30.0, 1.5, 2000.0) == [
        "TR 38.901 UMa (LOS-probability weighted) used with a base-station height of 30 m, defined for 25 m"]
    assert validity_issues(TR38901_RMA_NLOS, 3500.0, 35.0, 1.5, 6000.0) == [
        "TR 38.901 RMa NLOS used up to 6000 m, valid up to 5000 m"]
    assert set(pl.VALIDITY) == set(MODEL_NAMES)


def test_scalars_are_callable_from_other_jitted_code():
    from numba import njit

    from coverage.radio.antenna import relative_gain_db

    @njit
    def rsrp(d, bearing):
        return 44.2 - path_loss_db(OKUMURA_HATA_URBAN, d, 900.0, 30.0, 1.5) + relative_gain_db(
            bearing, 0.0, 0.0, 65.0, 0.0, 10.0, 25.0, 20.0)

    # 44.2 − 137.007 (worked example) − 3 dB at half the beamwidth
    assert rsrp(2000.0, 32.5) == pytest.approx(44.2 - 137.007 - 3.0, abs=TOL_DB)
    assert pl.max_range_scalar_m(OKUMURA_HATA_URBAN, 137.007, 900.0, 30.0, 1.5, 1e5) == pytest.approx(2000.0, abs=0.1)


def test_validity_summary_groups_sectors_per_model_and_quantity():
    ids = [pl.OKUMURA_HATA_URBAN] * 4 + [pl.TR38901_UMA]
    lines = pl.validity_summary(ids, [942.5, 942.5, 942.5, 942.5, 3500.0], [20.0, 25.0, 40.0, 29.0, 30.0], 1.5,
                                [5000.0, 5000.0, 25000.0, 5000.0, 4000.0])
    assert lines == [
        "Okumura-Hata urban (medium city) used with base-station heights 20–29 m, valid 30–200 m (3 sectors)",
        "Okumura-Hata urban (medium city) used up to 25000 m, valid up to 20000 m (1 sector)",
        "TR 38.901 UMa (LOS-probability weighted) used with base-station heights 30 m, defined for 25 m (1 sector)",
    ]
    assert pl.validity_summary([pl.FREE_SPACE], 900.0, 30.0, 1.5, 1e6) == []

"""P.2108-1 §3.1 terminal clutter correction, the foliage term and land-cover class tables."""

import math

import numpy as np
import pytest

from coverage.errors import ArgumentError, ConfigError
from coverage.radio import ENVIRONMENTS
from coverage.radio.clutter_loss import (
    CLUTTER_TYPES,
    foliage_excess_db,
    terminal_clutter_correction_db,
    validity_issues,
)
from coverage.terrain.clutter import (
    BUILT_UP,
    ENV_CODES,
    SECTOR,
    ClassTable,
    builtin_table,
    class_table_from_dict,
    environment_lut,
    extra_loss_lut,
    guess_table,
    load_class_table,
    receiver_environment,
)


@pytest.fixture
def write_table(tmp_path):
    """Writes a TOML class table to tmp_path and returns its path."""
    def write(text, name="landcover.toml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


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


# ---------------------------------------------------------------- built-in tables


def test_worldcover_table():
    t = builtin_table("worldcover")
    assert sorted(t.classes) == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100]
    assert t.classes[50].environment == "built_up" and not t.classes[50].foliage
    assert {c for c, k in t.classes.items() if k.foliage} == {10, 95}
    assert {c for c, k in t.classes.items() if k.environment == "rural"} == {10, 20, 30, 40, 60, 70, 80, 90, 95, 100}
    assert t.classes[0].environment == "sector"
    lut = environment_lut(t)
    assert lut.dtype == np.uint8 and lut.shape == (256,)
    assert lut[50] == BUILT_UP and lut[10] == ENV_CODES["rural"] == 3 and lut[0] == lut[255] == lut[7] == SECTOR


def test_igbp_table():
    t = builtin_table("IGBP")
    assert sorted(t.classes) == list(range(18))
    assert t.classes[13].environment == "built_up"
    assert {c for c, k in t.classes.items() if k.foliage} == {1, 2, 3, 4, 5, 8}
    assert t.classes[14].environment == "rural" and not t.classes[14].foliage  # mosaic: open land
    assert all(k.environment == "rural" for c, k in t.classes.items() if c != 13)
    assert environment_lut(t)[255] == SECTOR
    with pytest.raises(ConfigError, match="unknown built-in clutter table 'corine'"):
        builtin_table("corine")


def test_extra_loss_lut():
    lut = extra_loss_lut(builtin_table("igbp"), 900.0, 1.5)
    assert lut.dtype == np.float64 and lut.shape == (256,)
    assert lut[1] == pytest.approx(4.8488, abs=1e-3) and lut[8] == lut[1]
    assert lut[13] == lut[14] == lut[255] == lut[200] == 0.0
    user = class_table_from_dict({"classes": {"10": {"environment": "rural", "foliage": True, "extra_loss_db": 2.0},
                                              "20": {"environment": "sector", "extra_loss_db": 1.5}}})
    lut = extra_loss_lut(user, 900.0, 1.5)
    assert lut[10] == pytest.approx(4.8488 + 2.0, abs=1e-3) and lut[20] == 1.5 and lut[30] == 0.0


def test_receiver_environment():
    du, u, s, r = range(4)
    # built_up keeps dense_urban / urban sectors, lifts suburban / rural sectors to urban
    assert receiver_environment([BUILT_UP] * 4, [du, u, s, r]).tolist() == [du, u, u, u]
    # sector keeps the sector; 0..3 override it
    assert receiver_environment([SECTOR] * 4, [du, u, s, r]).tolist() == [du, u, s, r]
    assert receiver_environment([r, du], [du, r]).tolist() == [r, du]
    lut = environment_lut(builtin_table("worldcover"))
    classes = np.array([50, 10, 255, 80], dtype=np.uint8)
    got = receiver_environment(lut[classes], ENVIRONMENTS.index("suburban"))
    assert [ENVIRONMENTS[i] for i in got] == ["urban", "rural", "suburban", "rural"]


def test_fingerprint_and_as_dict():
    wc = builtin_table("worldcover")
    d = wc.as_dict()
    assert d["name"] == "worldcover" and d["classes"]["50"] == {
        "name": "built-up", "environment": "built_up", "foliage": False, "extra_loss_db": 0.0}
    assert len(wc.fingerprint()) == 64 and wc.fingerprint() != builtin_table("igbp").fingerprint()
    same = ClassTable(name=wc.name, classes=dict(wc.classes), source="elsewhere")
    assert same.fingerprint() == wc.fingerprint() and same == wc


# ---------------------------------------------------------------- user tables


def test_user_table_loads(write_table):
    path = write_table(
        'name = "my landcover"\n'
        '[classes.50]\nname = "built-up"\nenvironment = "built_up"\n'
        '[classes.10]\nenvironment = "rural"\nfoliage = true\nextra_loss_db = 2.0\n'
    )
    t = load_class_table(path)
    assert t.name == "my landcover" and t.source == str(path)
    assert sorted(t.classes) == [10, 50]
    assert t.classes[10].name == "class 10" and t.classes[10].foliage and t.classes[10].extra_loss_db == 2.0
    lut = environment_lut(t)
    assert lut[50] == BUILT_UP and lut[10] == 3 and lut[20] == SECTOR  # not listed -> sector
    # relative to base_dir; the file stem names a table without "name"
    write_table('[classes.1]\nenvironment = "urban"\n', name="lc2.toml")
    t2 = load_class_table("lc2.toml", base_dir=path.parent)
    assert t2.name == "lc2" and t2.classes[1].environment == "urban"
    assert load_class_table("worldcover") is builtin_table("worldcover")


@pytest.mark.parametrize("text, fragment", [
    ('[classes.50]\nenviroment = "urban"\n', "[classes.50] enviroment: unknown key; did you mean 'environment'?"),
    ('[classes.50]\nenvironment = "downtown"\n', "[classes.50] environment: 'downtown' is not one of"),
    ('[classes.50]\nenvironment = "urbn"\n', "did you mean 'urban'?"),
    ('[classes.50]\nname = "x"\n', "[classes.50] environment: missing"),
    ('[classes.255]\nenvironment = "urban"\n', "[classes.255]: 255 is the nodata code"),
    ('[classes.300]\nenvironment = "urban"\n', "[classes.300]: class code 300 is out of range 0-254"),
    ('[classes.-1]\nenvironment = "urban"\n', "[classes.-1]: a class code must be an integer 0-254"),
    ('[classes.forest]\nenvironment = "urban"\n', "[classes.forest]: a class code must be an integer"),
    ('[classes.10]\nenvironment = "rural"\nfoliage = 1\n', "[classes.10] foliage: must be true or false"),
    ('[classes.10]\nenvironment = "rural"\nextra_loss_db = 90\n',
     "[classes.10] extra_loss_db: 90 dB is out of range 0.0-60.0 dB"),
    ('[classes.10]\nenvironment = "rural"\nextra_loss_db = "2 dB"\n', "[classes.10] extra_loss_db: must be a number"),
    ('[classes.10]\nenvironment = "rural"\n[classes.010]\nenvironment = "urban"\n', "class 10 is given twice"),
    ('classes = 3\n', "classes: must be a table"),
    ('title = "x"\n', "title: unknown key"),
    ('[classes.10\n', "not valid TOML"),
])
def test_bad_user_table_names_file_and_key(write_table, text, fragment):
    path = write_table(text)
    with pytest.raises(ConfigError) as info:
        load_class_table(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert fragment in message, message


def test_missing_table_and_auto(tmp_path):
    with pytest.raises(ConfigError, match="clutter class table not found"):
        load_class_table(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="guess_table"):
        load_class_table("auto")


# ---------------------------------------------------------------- guessing the legend


def test_guess_table():
    assert guess_table([1, 2, 5, 12, 13, 16, 255]) == "igbp"
    assert guess_table(np.array([0, 17, 4], dtype=np.uint8)) == "igbp"  # MCD12Q1 water 17
    assert guess_table([10, 20, 40, 50, 80, 95, 100, 255]) == "worldcover"
    assert guess_table([0, 30, 50]) == "worldcover"
    for ambiguous in ([0, 10], [10], [255], []):
        with pytest.raises(ConfigError, match=r"fit both.*\[terrain\] clutter_table"):
            guess_table(ambiguous)
    with pytest.raises(ConfigError, match=r"neither IGBP.*\[terrain\] clutter_table") as info:
        guess_table([11, 21, 31], source="lc.tif")
    assert str(info.value).startswith("lc.tif: classes {11, 21, 31}")

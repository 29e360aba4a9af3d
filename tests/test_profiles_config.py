"""Technology profiles (link-budget arithmetic), the TOML configuration and `covmap config show`."""

import dataclasses
import inspect
import json
import math
import re

import pytest
from click.testing import CliRunner

from cli import main
from coverage.config import (
    _PROFILE_RULES,
    _PROFILE_TABLES,
    _SECTION_RULES,
    Config,
    TerrainConfig,
    load_config,
)
from coverage.errors import ConfigError
from coverage.radio import profiles
from coverage.radio.profiles import NBIOT, REDCAP, TechProfile, band_to_freq_mhz, sector_defaults

Z90 = 1.2815516  # standard-normal quantile at 0.90


@pytest.fixture
def runner():
    """A click CliRunner."""
    return CliRunner()


@pytest.fixture
def write_toml(tmp_path):
    """Writes TOML text to a file in tmp_path and returns its path."""
    def write(text, name="covmap.toml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path
    return write


# ---------------------------------------------------------------- profiles


def test_nbiot_threshold_comes_from_the_164_db_mcl():
    # 43 dBm − 164 dB − 10 log10(12) = 43 − 164 − 10.7918 = −131.79 dBm
    assert NBIOT.rsrp_threshold_dbm == pytest.approx(-131.79, abs=0.005)
    assert NBIOT.ce_thresholds_dbm == {"CE0": -105.0, "CE1": -115.0, "CE2": NBIOT.rsrp_threshold_dbm}
    assert REDCAP.ce_thresholds_dbm == {}


def test_shadow_margin_is_z_sigma():
    assert NBIOT.shadow_z == pytest.approx(Z90, abs=1e-6)
    assert NBIOT.shadow_margin_db("urban") == pytest.approx(Z90 * 8.0, abs=1e-5)  # 10.2524 dB
    with pytest.raises(KeyError):
        NBIOT.shadow_margin_db("jungle")


def test_thresholds_arithmetic():
    # NB-IoT urban: −131.79 + 0 device + 0 body − 0 dBi + 1.28155·8 = −121.5376; deep +20
    t = NBIOT.thresholds_dbm("urban")
    assert t["outdoor"] == pytest.approx(-121.5376, abs=1e-3)
    assert t["deep"] == pytest.approx(-101.5376, abs=1e-3)
    # RedCap dense urban: −105 + 3 (TR 38.875 device loss) + 1.28155·10 = −89.1845
    t = REDCAP.thresholds_dbm("dense_urban")
    assert t["outdoor"] == pytest.approx(-89.1845, abs=1e-3)
    assert t["deep"] - t["outdoor"] == 20.0
    # Every receive-side term moves the threshold by its own amount.
    p = dataclasses.replace(REDCAP, body_loss_db=2.0, ue_antenna_gain_dbi=-1.0, cell_edge_reliability=0.5)
    assert p.thresholds_dbm("rural")["outdoor"] == pytest.approx(-105 + 3 + 2 + 1 + 0.0)


def test_rs_offset_and_link_budget():
    assert NBIOT.rs_offset_db(875.0) == pytest.approx(10.7918, abs=1e-4)  # 12 subcarriers
    assert REDCAP.rs_offset_db(3500.0) == pytest.approx(35.1534, abs=1e-4)  # 273 RB · 12 = 3276
    assert REDCAP.rs_offset_db(780.0) == pytest.approx(10 * math.log10(1920))  # n28 160 RB
    assert REDCAP.band_of(2600.0) == "n41"
    # NB-IoT 55 dBm EIRP: 44.2082 dBm per RE; urban outdoor budget = 44.2082 + 121.5376 = 165.7458 dB
    assert NBIOT.max_path_loss_db(55.0, 942.5, "urban") == pytest.approx(165.7458, abs=1e-3)
    assert NBIOT.max_path_loss_db(55.0, 942.5, "urban", deep=True) == pytest.approx(145.7458, abs=1e-3)


def test_sector_defaults_and_bands():
    d = sector_defaults("nbiot")
    assert set(d) == {"freq_mhz", "eirp_dbm", "antenna_gain_dbi", "height_m", "beamwidth_deg", "downtilt_deg"}
    assert d["freq_mhz"] == 942.5 and d["beamwidth_deg"] == 65.0
    assert sector_defaults("5G RedCap")["freq_mhz"] == 3500.0
    with pytest.raises(KeyError):
        sector_defaults("lte")
    cases = {
        ("nbiot", "B8"): 942.5, ("nbiot", "b5"): 875.0, ("nbiot", "Band 8"): 942.5, ("nbiot", "3"): 1842.5,
        ("nbiot", "900M"): 942.5, ("nbiot", "800MHz"): 875.0, ("redcap", "n78"): 3500.0,
        ("redcap", "N41"): 2595.0, ("redcap", "band n28"): 773.0, ("redcap", "3.5G"): 3500.0,
        ("redcap", "2.1GHz"): 2140.0, ("redcap", "700M"): 773.0, ("redcap", 2600): 2595.0,
        ("redcap", "B8"): None, ("redcap", "4.9G"): None, ("nbiot", ""): None, ("nbiot", None): None,
        ("wifi", "B8"): None,
    }
    for (tech, band), expected in cases.items():
        assert band_to_freq_mhz(tech, band) == expected, (tech, band)


def test_every_default_cites_its_source():
    """Each sector / link-budget default in the profile definitions has a source comment."""
    source = inspect.getsource(profiles)
    for profile_name in ("NBIOT = TechProfile(", "REDCAP = TechProfile("):
        block = source[source.index(profile_name):]
        block = block[:block.index("\n)\n")]
        lines = block.splitlines()
        for field in ("eirp_dbm", "antenna_gain_dbi", "height_m", "beamwidth_deg", "downtilt_deg",
                      "vertical_beamwidth_deg", "front_to_back_db", "sla_v_db", "ue_height_m",
                      "ue_antenna_gain_dbi", "body_loss_db", "device_loss_db", "rsrp_threshold_dbm",
                      "penetration_margin_db", "cell_edge_reliability", "bands", "carrier_subcarriers"):
            i = next(k for k, line in enumerate(lines) if line.strip().startswith(f"{field}="))
            comment = [lines[i]]  # the line itself (inline comment) and the comment block above it
            k = i - 1
            while k >= 0 and lines[k].strip().startswith("#"):
                comment.append(lines[k])
                k -= 1
            text = "\n".join(comment)
            assert re.search(r"TR \d|TS \d|FCC|[Oo]perator practice", text), \
                f"{profile_name} {field}: no 3GPP / FCC / operator-practice citation"


# ---------------------------------------------------------------- configuration


def test_validation_rules_cover_every_profile_field():
    names = {f.name for f in dataclasses.fields(TechProfile)}
    assert set(_PROFILE_RULES) | set(_PROFILE_TABLES) | {"tech"} == names


def test_defaults_load():
    cfg = load_config()
    assert cfg.profiles["nbiot"] == NBIOT and cfg.profiles["redcap"] == REDCAP
    assert (cfg.grid.resolution_m, cfg.grid.tile_size_px) == (100, 512)
    assert cfg.gaps.min_gap_km2 == 1.0 and cfg.publish.resolution_m == 500
    assert cfg.fingerprint() == Config().fingerprint()
    json.dumps(cfg.as_dict())  # plain data


def test_override_applies_and_merges_sub_tables(write_toml):
    path = write_toml(
        "[nbiot]\neirp_dbm = 52\npenetration_margin_db = 15.0\n"
        "[nbiot.shadow_sigma_db]\nurban = 9.0\n"
        "[redcap.bands]\nn79 = 4900.0\n[redcap.carrier_subcarriers]\nn79 = 3276\n"
        "[grid]\nresolution_m = 50\n[gaps]\nmin_gap_km2 = 0.5\n"
    )
    cfg = load_config(path)
    nb = cfg.profiles["nbiot"]
    assert nb.eirp_dbm == 52.0 and isinstance(nb.eirp_dbm, float)
    assert nb.shadow_sigma_db == {"dense_urban": 10.0, "urban": 9.0, "suburban": 7.0, "rural": 6.0}
    # −131.79 + 1.28155·9 = −120.256; deep = +15
    assert nb.thresholds_dbm("urban")["deep"] == pytest.approx(-131.79 + Z90 * 9.0 + 15.0, abs=1e-4)
    assert cfg.profiles["redcap"].bands["n79"] == 4900.0 and cfg.profiles["redcap"].bands["n78"] == 3500.0
    assert band_to_freq_mhz("redcap", "n78") == 3500.0  # defaults untouched
    assert cfg.grid.resolution_m == 50 and cfg.grid.tile_size_px == 512
    assert cfg.gaps.min_gap_km2 == 0.5
    assert load_config().h3.csv == "auto" and load_config(write_toml('[h3]\ncsv = "Never"\n')).h3.csv == "never"
    assert cfg.fingerprint() != load_config().fingerprint()
    assert cfg.source == str(path)


@pytest.mark.parametrize("text, fragment", [
    ("[nbiot]\neirp_dbw = 43\n", "[nbiot] eirp_dbw: unknown key; did you mean 'eirp_dbm'?"),
    ("[nbiot]\neirp_dbm = \"43 dBm\"\n", "[nbiot] eirp_dbm: must be a number in dBm"),
    ("[nbiot]\nheight_m = true\n", "[nbiot] height_m: must be a number in m"),
    ("[nbiot]\npenetration_margin_db = 90\n", "[nbiot] penetration_margin_db: 90 dB is out of range 0.0-60.0 dB"),
    ("[nbiot]\ntech = \"redcap\"\n", "cannot change the technology"),
    ("[nbiot]\ndefault_band = \"B20\"\n", "[nbiot] default_band: 'B20' is not one of the bands"),
    ("[nbiot.shadow_sigma_db]\ndowntown = 9.0\n", "[nbiot.shadow_sigma_db] downtown: unknown key"),
    ("[nbiot.ce_thresholds_dbm]\nCE1 = -100.0\n", "must decrease from CE0 to CE2"),
    ("[redcap.ce_thresholds_dbm]\nCE0 = -100.0\n", "exist only for NB-IoT"),
    ("[redcap.bands]\nn79 = 4900.0\n", "no subcarrier count for band(s) n79"),
    ("[grid]\nresolution_m = 10\n", "[grid] resolution_m: 10 m is out of range 30-1000 m"),
    ("[grid]\nresolution_m = 100.5\n", "[grid] resolution_m: must be an integer in m"),
    ("[grid]\ntile_size_px = 500\n", "must be a multiple of 16"),
    ("[grid]\nresolution_km = 1\n", "[grid] resolution_km: unknown key; did you mean 'resolution_m'?"),
    ("[terrain]\ndiffraction_weight = 2.5\n", "[terrain] diffraction_weight: 2.5 is out of range 0.0-2.0"),
    ("[terrain]\nearth_k_factor = 0.2\n", "[terrain] earth_k_factor: 0.2 is out of range 0.5-10.0"),
    ("[terrain]\nsweep_step_m = 5\n", "[terrain] sweep_step_m: 5.0 m must be 0 (automatic) or 10-2000 m"),
    ("[terrain]\nsweep_step_m = 5000\n", "[terrain] sweep_step_m: 5000 m is out of range 0.0-2000.0 m"),
    ("[terrain]\nsweep_step_m = -1\n", "[terrain] sweep_step_m: -1 m is out of range"),
    ("[terrain]\nearth_k_factor = \"4/3\"\n", "[terrain] earth_k_factor: must be a number"),
    ("[terrain]\nclutter_table = 3\n", "[terrain] clutter_table: must be a non-empty string"),
    ("[terrain]\nclutter_table = \"corine\"\n", "[terrain] clutter_table: 'corine' is not one of auto, worldcover"),
    ("[terrain]\nk_factor = 1.0\n", "[terrain] k_factor: unknown key; did you mean 'earth_k_factor'?"),
    ("[h3]\ncsv = \"sometimes\"\n", "[h3] csv: 'sometimes' is not one of auto, always, never"),
    ("[h3]\ncsv = true\n", "[h3] csv: must be a non-empty string"),
    ("[lte]\neirp_dbm = 40\n", "lte: unknown key"),
    ("nbiot = 3\n", "[nbiot]: must be a table"),
    ("[nbiot\n", "not valid TOML"),
])
def test_bad_config_raises_config_error_naming_key_and_file(write_toml, text, fragment):
    path = write_toml(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert fragment in message, message


def test_terrain_defaults_and_rules():
    t = load_config().terrain
    assert t == TerrainConfig()
    assert (t.diffraction_weight, t.earth_k_factor, t.clutter_table, t.sweep_step_m) == (1.0, 4.0 / 3.0, "auto", 0.0)
    # every scalar has a rule; [terrain.class_offsets_db] is a sub-table with its own (tests/test_calibrate_terrain.py)
    assert set(_SECTION_RULES["terrain"][1]) | {"class_offsets_db"} == {f.name for f in dataclasses.fields(TerrainConfig)}
    assert t.class_offsets_db == {}
    assert load_config().as_dict()["terrain"] == {"diffraction_weight": 1.0, "earth_k_factor": 4.0 / 3.0,
                                                  "clutter_table": "auto", "sweep_step_m": 0.0}


def test_terrain_override(write_toml):
    cfg = load_config(write_toml(
        "[terrain]\ndiffraction_weight = 0.8\nearth_k_factor = 1\nclutter_table = \"IGBP\"\nsweep_step_m = 50\n"))
    t = cfg.terrain
    assert (t.diffraction_weight, t.earth_k_factor, t.clutter_table, t.sweep_step_m) == (0.8, 1.0, "igbp", 50.0)
    assert isinstance(t.earth_k_factor, float) and isinstance(t.sweep_step_m, float)
    assert cfg.grid == load_config().grid and cfg.fingerprint() != load_config().fingerprint()
    # 0 (automatic) and the range ends are allowed
    assert load_config(write_toml("[terrain]\nsweep_step_m = 10\ndiffraction_weight = 0\n")).terrain.sweep_step_m == 10.0


def test_terrain_clutter_table_path_is_relative_to_the_config(write_toml, tmp_path):
    (tmp_path / "tables").mkdir()
    table = tmp_path / "tables" / "lc.toml"
    table.write_text('[classes.50]\nenvironment = "built_up"\n', encoding="utf-8")
    cfg = load_config(write_toml('[terrain]\nclutter_table = "tables/lc.toml"\n'))
    assert cfg.terrain.clutter_table == str(table.absolute())
    path = write_toml('[terrain]\nclutter_table = "tables/none.toml"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [terrain] clutter_table: 'tables/none.toml' is not one of"), message
    assert "no such file" in message and str(tmp_path / "tables" / "none.toml") in message
    # an invalid table is reported at load, naming the config, the table file and its key
    table.write_text('[classes.50]\nenvironment = "downtown"\n', encoding="utf-8")
    path = write_toml('[terrain]\nclutter_table = "tables/lc.toml"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: [terrain] clutter_table: {table}: [classes.50] environment"), message


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_shown_toml_loads_back_to_the_same_config(write_toml, tmp_path):
    cfg = load_config(write_toml("[redcap]\ndevice_loss_db = 4.5\n"))
    again = load_config(write_toml(cfg.to_toml(), name="again.toml"))
    assert again.fingerprint() == cfg.fingerprint()
    text = Config().to_toml()
    assert ('[terrain]\ndiffraction_weight = 1.0\nearth_k_factor = 1.3333333333333333\n'
            'clutter_table = "auto"\nsweep_step_m = 0.0\n') in text
    assert load_config(write_toml(text, name="defaults.toml")).fingerprint() == Config().fingerprint()
    # a user class table's path is shown absolute, so the text loads back from anywhere
    (tmp_path / "lc.toml").write_text('[classes.50]\nenvironment = "built_up"\n', encoding="utf-8")
    cfg = load_config(write_toml('[terrain]\nclutter_table = "lc.toml"\nsweep_step_m = 45.0\n'))
    (tmp_path / "elsewhere").mkdir()
    again = load_config(write_toml(cfg.to_toml(), name="elsewhere/again.toml"))
    assert again.terrain == cfg.terrain and again.fingerprint() == cfg.fingerprint()


# ---------------------------------------------------------------- CLI


def test_cli_config_show_text_and_json(runner, write_toml):
    result = runner.invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "[nbiot]\n" in result.output and "eirp_dbm = 55.0" in result.output
    assert "[grid]\nresolution_m = 100" in result.output
    assert "[terrain]\ndiffraction_weight = 1.0" in result.output and 'clutter_table = "auto"' in result.output
    path = write_toml("[grid]\nresolution_m = 250\n")
    result = runner.invoke(main, ["config", "show", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["config"]["grid"]["resolution_m"] == 250
    assert data["fingerprint"] == load_config(path).fingerprint()


def test_cli_config_show_bad_file_exits_2(runner, write_toml):
    path = write_toml("[nbiot]\neirp_dbw = 3\n")
    result = runner.invoke(main, ["config", "show", "--config", str(path)])
    assert result.exit_code == 2
    assert "eirp_dbw" in result.output and str(path) in result.output
    result = runner.invoke(main, ["config", "show", "--config", "missing.toml"])
    assert result.exit_code == 2

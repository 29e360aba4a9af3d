"""``covmap predict``: options in, one library call, layers and warnings out."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from conftest import write_constant_dem_tif
from shapely.geometry import Point

from cli import main


@pytest.fixture
def sectors_parquet(tmp_path):
    """Three NB-IoT sectors of two operators and one RedCap sector, as sectors.parquet."""
    rows = [
        ("CT", "nbiot", 942.5, 55.0, np.nan, "urban", 105.00, 30.00),
        ("CT", "nbiot", 942.5, 55.0, 120.0, "urban", 105.03, 30.01),
        ("CM", "nbiot", 942.5, 55.0, 240.0, "rural", 104.98, 29.97),
        ("CU", "redcap", 3500.0, 63.0, 60.0, "urban", 105.01, 30.02),
    ]
    records = [
        {"operator": op, "site_id": f"S{i}", "cell_id": f"C{i}", "tech": tech, "freq_mhz": freq,
         "eirp_dbm": eirp, "height_m": 30.0, "azimuth_deg": az, "beamwidth_deg": 65.0, "downtilt_deg": 6.0,
         "environment": env, "source_file": "ops.csv", "source_row": i + 1, "geometry": Point(lon, lat)}
        for i, (op, tech, freq, eirp, az, env, lon, lat) in enumerate(rows)
    ]
    path = tmp_path / "sectors.parquet"
    gpd.GeoDataFrame(records, crs="EPSG:4326").to_parquet(path)
    return path


def test_predict_writes_the_layers_and_reports_them(runner, sectors_parquet, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(main, ["predict", str(sectors_parquet), "--out", str(out), "--resolution", "1000",
                                  "--scheduler", "synchronous", "--tile-size", "64"])
    assert result.exit_code == 0, result.output
    raster = out / "raster"
    expected = ["nbiot_ct", "nbiot_cm", "nbiot", "redcap_cu", "redcap"]
    for stem in expected:
        assert (raster / f"{stem}_rsrp.tif").exists() and (raster / f"{stem}_class.tif").exists()
        assert f"{stem}_rsrp.tif" in result.output
    report = json.loads((raster / "report.json").read_text())
    assert report["grid"]["resolution_m"] == 1000 and report["grid"]["tile_size_px"] == 64
    with rasterio.open(raster / "nbiot_class.tif") as ds:
        cls = ds.read(1)
    assert ((cls == 1) | (cls == 2)).any() and ds.res == (1000.0, 1000.0)
    assert "warning:" in result.output  # rural Hata beyond its 20 km validity


def test_predict_one_tech(runner, sectors_parquet, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(main, ["predict", str(sectors_parquet), "--out", str(out), "--tech", "RedCap",
                                  "--resolution", "500", "--scheduler", "synchronous"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "raster").glob("*.tif")) == [
        "redcap_class.tif", "redcap_cu_class.tif", "redcap_cu_rsrp.tif", "redcap_rsrp.tif"]


@pytest.mark.parametrize("args", [
    ["--resolution", "10"],
    ["--resolution", "5000"],
    ["--tile-size", "100"],
    ["--scheduler", "mpi"],
    ["--tech", "lora"],
])
def test_bad_options_exit_2(runner, sectors_parquet, tmp_path, args):
    result = runner.invoke(main, ["predict", str(sectors_parquet), "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2
    assert not (tmp_path / "run" / "raster").exists()


def test_missing_sectors_file_exits_2(runner, tmp_path):
    result = runner.invoke(main, ["predict", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2


def test_no_sectors_of_the_tech_is_a_one_line_error(runner, sectors_parquet, tmp_path):
    frame = gpd.read_parquet(sectors_parquet)
    frame[frame["tech"] == "nbiot"].to_parquet(sectors_parquet)
    result = runner.invoke(main, ["predict", str(sectors_parquet), "--out", str(tmp_path / "run"),
                                  "--tech", "redcap", "--scheduler", "synchronous"])
    assert result.exit_code == 2
    assert "Error:" in result.output and "redcap" in result.output


def test_config_file_sets_the_resolution(runner, sectors_parquet, tmp_path):
    config = tmp_path / "covmap.toml"
    config.write_text("[grid]\nresolution_m = 800\ntile_size_px = 64\n")
    out = tmp_path / "run"
    result = runner.invoke(main, ["predict", str(sectors_parquet), "--out", str(out), "--tech", "nbiot",
                                  "--config", str(config), "--scheduler", "synchronous"])
    assert result.exit_code == 0, result.output
    grid = json.loads((out / "raster" / "report.json").read_text())["grid"]
    assert grid["resolution_m"] == 800 and grid["tile_size_px"] == 64


# ---------------------------------------------------------------- --dem / --clutter

FLAT = ["--dem", "none", "--clutter", "none"]
FAST = ["--resolution", "1000", "--scheduler", "synchronous", "--tile-size", "64"]


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return errors[0]


@pytest.mark.parametrize("option", ["--dem", "--clutter"])
def test_missing_terrain_file_exits_2_naming_it(runner, sectors_parquet, tmp_path, option):
    missing = tmp_path / "missing.tif"
    result = runner.invoke(main, ["predict", str(sectors_parquet), "--out", str(tmp_path / "run"), *FAST,
                                  option, str(missing)])
    assert result.exit_code == 2
    line = _one_error_line(result.output)
    assert str(missing) in line and option in line
    assert not (tmp_path / "run" / "raster").exists()


def test_missing_embedded_data_says_run_data_fetch(runner, sectors_parquet, tmp_path, monkeypatch):
    monkeypatch.setenv("COVMAP_DATA_DIR", str(tmp_path / "empty-cache"))
    result = runner.invoke(main, ["predict", str(sectors_parquet), "--out", str(tmp_path / "run"), *FAST])
    assert result.exit_code == 2
    line = _one_error_line(result.output)
    assert "covmap data fetch" in line and str(tmp_path / "empty-cache") in line


def test_dem_none_clutter_none_is_the_flat_result_of_the_library(runner, sectors_parquet, tmp_path):
    from coverage.predict import predict

    cli_run, lib_run = tmp_path / "cli", tmp_path / "lib"
    result = runner.invoke(main, ["predict", str(sectors_parquet), "--out", str(cli_run), *FAST, *FLAT])
    assert result.exit_code == 0, result.output
    assert "terrain: none (flat earth)" in result.output
    predict(sectors_parquet, lib_run, resolution_m=1000, scheduler="synchronous", tile_size_px=64)
    cli_report = json.loads((cli_run / "raster" / "report.json").read_text())
    assert "terrain" not in cli_report
    assert cli_report == json.loads((lib_run / "raster" / "report.json").read_text())
    for name in ("nbiot_rsrp.tif", "nbiot_class.tif", "redcap_cu_rsrp.tif"):
        assert (cli_run / "raster" / name).read_bytes() == (lib_run / "raster" / name).read_bytes()


def test_predict_with_a_geotiff_dem_records_its_sha256(runner, sectors_parquet, tmp_path):
    import hashlib

    dem = write_constant_dem_tif(tmp_path / "dem_120m.tif", 104.5, 29.5, 105.5, 30.5, elevation_m=120.0,
                                 cell_deg=0.02)
    out = tmp_path / "run"
    result = runner.invoke(main, ["predict", str(sectors_parquet), "--out", str(out), *FAST,
                                  "--dem", str(dem), "--clutter", "none"])
    assert result.exit_code == 0, result.output
    sha = hashlib.sha256(dem.read_bytes()).hexdigest()
    assert f"terrain: {dem} (sha256 {sha[:12]}" in result.output
    terrain = json.loads((out / "raster" / "report.json").read_text())["terrain"]
    assert terrain["dem"]["sha256"] == sha and terrain["dem"]["path"] == str(dem)
    assert terrain["dem"]["crs"] == "EPSG:4326" and terrain["clutter"] is None
    with rasterio.open(out / "raster" / "nbiot_class.tif") as ds:
        cls = ds.read(1)
    assert ((cls == 1) | (cls == 2)).any()


def test_dem_not_covering_the_sites_is_one_line_naming_the_file(runner, sectors_parquet, tmp_path):
    dem = write_constant_dem_tif(tmp_path / "elsewhere.tif", 110.0, 35.0, 110.5, 35.5, cell_deg=0.05)
    result = runner.invoke(main, ["predict", str(sectors_parquet), "--out", str(tmp_path / "run"), *FAST,
                                  "--dem", str(dem), "--clutter", "none"])
    assert result.exit_code == 2
    line = _one_error_line(result.output)
    assert str(dem) in line and "covers" in line


def test_help_documents_the_terrain_defaults(runner):
    for command in ("predict", "build"):
        text = runner.invoke(main, [command, "--help"]).output
        assert "--dem PATH|default|none" in text and "--clutter PATH|default|none" in text
        assert "--dem none --clutter none" in " ".join(text.split())

"""``covmap predict``: options in, one library call, layers and warnings out."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
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

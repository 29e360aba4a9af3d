"""The embedded default data: fetch, status, sha256 checks, and the DEM against stations.

The default files are fetched by ``covmap data fetch`` (the Makefile's set-up step
runs it); tests needing them skip with that instruction when they are missing.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import cli
from coverage.errors import TerrainSourceError
from coverage.terrain import data


@pytest.fixture(scope="module")
def fetched_dir():
    """The real data folder, when `covmap data fetch` has filled it (else skip)."""
    if not all(row["ok"] for row in data.status()):
        pytest.skip(f"default data not fetched into {data.data_dir()}; run `covmap data fetch`")
    return data.data_dir()


@pytest.fixture
def copied_dir(fetched_dir, tmp_path, monkeypatch):
    """A private copy of the fetched data folder, set as $COVMAP_DATA_DIR."""
    folder = tmp_path / "covmap-data"
    folder.mkdir()
    for item in data.ALL_ITEMS:
        shutil.copy2(fetched_dir / item.file_name, folder / item.file_name)
    monkeypatch.setenv("COVMAP_DATA_DIR", str(folder))
    return folder


def test_data_dir_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COVMAP_DATA_DIR", str(tmp_path / "a"))
    assert data.data_dir() == tmp_path / "a"
    monkeypatch.delenv("COVMAP_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.data_dir() == tmp_path / "xdg" / "covmap"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.data_dir() == tmp_path / "home" / ".cache" / "covmap"


def test_not_installed_is_a_clear_error(monkeypatch, tmp_path, runner):
    monkeypatch.setenv("COVMAP_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(TerrainSourceError, match=r"default DEM is not installed.*run `covmap data fetch`"):
        data.open_default_dem()
    with pytest.raises(TerrainSourceError, match="covmap data fetch"):
        data.open_default_landcover()
    result = runner.invoke(cli.main, ["data", "status"])
    assert result.exit_code == 1 and [line.split()[0] for line in result.output.splitlines()][:3] == ["missing"] * 3


def test_default_dem_against_station_altitudes(fetched_dir):
    """Bilinear samples of the 30″ DEM vs the 2,411 station altitudes shipped beside it.

    Measured: median |error| 9.7 m, p90 65 m, r = 0.997; 23 stations sit on filled
    (masked) cells.
    """
    stations = data.read_station_altitudes()
    assert stations["altitude_m"].size == 2411
    dem = data.open_default_dem()
    dem.check_points_inside(stations["lon_deg"], stations["lat_deg"])
    z, filled = dem.sample_lonlat(stations["lon_deg"], stations["lat_deg"])
    error = np.abs(z - stations["altitude_m"])
    assert np.median(error) < 12 and np.percentile(error, 90) < 80
    assert np.corrcoef(z, stations["altitude_m"])[0, 1] > 0.99
    assert filled.sum() < 50
    info = dem.info()
    assert info["sha256"] == data.DEFAULT_DEM.sha256 and info["resolution"][0] == pytest.approx(1 / 120)
    np.testing.assert_allclose(info["bounds_lonlat"], (73.4428, 6.3145, 135.0928, 53.5561), atol=1e-3)


def test_fetch_is_idempotent_and_status_ok(copied_dir, runner):
    states = []
    paths = data.fetch(progress=lambda item, state, path: states.append(state))
    assert states == ["found"] * 3 and [p.parent for p in paths] == [copied_dir] * 3
    result = runner.invoke(cli.main, ["data", "fetch"])
    assert result.exit_code == 0 and result.output.count("found") == 3
    result = runner.invoke(cli.main, ["data", "status"])
    assert result.exit_code == 0 and result.output.count("ok ") == 3
    assert all(row["ok"] and row["size_bytes"] > 0 for row in data.status())


def test_corrupt_file_detected_and_refetched(copied_dir, runner):
    """A cached file with a wrong sha256 is refused, reported, then replaced by fetch."""
    tif = copied_dir / data.DEFAULT_LANDCOVER.file_name
    with open(tif, "r+b") as handle:
        handle.seek(5000)
        handle.write(b"\x42" * 16)
    with pytest.raises(TerrainSourceError, match=r"corrupt \(sha256 differs\); run `covmap data fetch`"):
        data.cached_path(data.DEFAULT_LANDCOVER)
    result = runner.invoke(cli.main, ["data", "status"])
    assert result.exit_code == 1 and "corrupt" in result.output
    result = runner.invoke(cli.main, ["data", "fetch"])
    assert result.exit_code == 0, result.output
    assert result.output.count("found") == 2 and f"fetched {tif}" in result.output
    assert data.cached_path(data.DEFAULT_LANDCOVER) == tif
    assert not [p for p in copied_dir.iterdir() if p.name.startswith(".")]  # no temporary left


def test_fetch_failure_exits_2_with_one_line(monkeypatch, tmp_path, runner):
    """pip finds no wheel (offline: no index, an empty find-links folder): one line, exit 2."""
    monkeypatch.setenv("COVMAP_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(TerrainSourceError, match=r"cannot download the meteva==1\.9\.6\.2 wheel"):
        data.fetch([data.DEFAULT_DEM])
    result = runner.invoke(cli.main, ["data", "fetch"])
    assert result.exit_code == 2 and result.output.startswith("Error: cannot download")
    assert result.output.strip().count("\n") == 0
    assert not (tmp_path / "d" / data.DEFAULT_DEM.file_name).exists()


def test_default_landcover_xiamen(fetched_dir):
    """MODIS MCD12C1 2019 (IGBP): Xiamen island is urban (13), the strait is water (0)."""
    lc = data.open_default_landcover()
    info = lc.info()
    assert info["sha256"] == data.DEFAULT_LANDCOVER.sha256 and info["nodata"] == 255
    assert info["resolution"] == (0.05, 0.05) and info["bounds_lonlat"] == (-180.0, -90.0, 180.0, 90.0)
    lc.check_covers(73.0, 3.0, 136.0, 54.0)
    assert lc.sample_lonlat_classes([118.09, 118.30, 116.40], [24.48, 24.30, 39.90]).tolist() == [13, 0, 13]

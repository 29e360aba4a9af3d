"""Shared fixtures: a CLI runner and small real data made in tmp_path."""

from __future__ import annotations

import pytest
from click.testing import CliRunner


@pytest.fixture
def runner():
    """A click CliRunner for invoking ``cli.main``."""
    return CliRunner()


# ---------------------------------------------------------------- terrain (DEM) data

NCARG_TRINIDAD_NC = "/usr/share/ncarg/data/cdf/trinidad.nc"
"""Debian libncarg-data's real 3" Colorado DEM (values in feet); the Makefile installs it."""


def write_jacksboro_dem_tif(path):
    """Write matplotlib's real USGS 3" Jacksboro fault DEM (Tennessee) as a GeoTIFF.

    The npz's ``ymin``/``ymax`` keys are swapped (``ymin`` holds the north edge);
    ``xmin``/``xmax`` and the swapped pair are cell edges, row 0 is the north row.
    Returns ``path`` (EPSG:4326, int16 metres, 403×344 cells, 236–1,076 m).
    """
    import matplotlib.cbook as cbook
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    npz = cbook.get_sample_data("jacksboro_fault_dem.npz")
    elevation = np.asarray(npz["elevation"], dtype=np.int16)
    north = max(float(npz["ymin"]), float(npz["ymax"]))
    transform = from_origin(float(npz["xmin"]), north, float(npz["dx"]), float(npz["dy"]))
    with rasterio.open(path, "w", driver="GTiff", width=elevation.shape[1], height=elevation.shape[0],
                       count=1, dtype="int16", crs="EPSG:4326", transform=transform) as ds:
        ds.write(elevation, 1)
    return path


@pytest.fixture
def jacksboro_dem_tif(tmp_path):
    """Path of the real USGS 3" Jacksboro DEM written as a GeoTIFF in tmp_path."""
    return write_jacksboro_dem_tif(tmp_path / "jacksboro_dem.tif")


@pytest.fixture
def trinidad_nc():
    """Path of Debian's trinidad.nc (3" Colorado DEM in feet); skips if not installed."""
    import os

    if not os.path.exists(NCARG_TRINIDAD_NC):
        pytest.skip(f"{NCARG_TRINIDAD_NC} missing: apt-get install libncarg-data (make test does)")
    return NCARG_TRINIDAD_NC


@pytest.fixture(scope="session")
def default_dem():
    """The embedded default DEM (meteva 30"); skips if `covmap data fetch` has not run."""
    from coverage.errors import TerrainSourceError
    from coverage.terrain.data import open_default_dem

    try:
        return open_default_dem()
    except TerrainSourceError as exc:
        pytest.skip(f"default DEM not fetched ({exc}); run `covmap data fetch`")


def write_constant_dem_tif(path, west, south, east, north, elevation_m=20.0, cell_deg=0.01):
    """Write a constant-elevation DEM GeoTIFF (EPSG:4326, int16 metres) over a lon/lat box.

    Small (one cell per ``cell_deg``) and fast to read; a different ``elevation_m``
    gives a file of different content. Returns ``path``.
    """
    import math

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    width = max(2, math.ceil((east - west) / cell_deg))
    height = max(2, math.ceil((north - south) / cell_deg))
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1, dtype="int16",
                       crs="EPSG:4326", transform=from_origin(west, north, cell_deg, cell_deg)) as ds:
        ds.write(np.full((height, width), int(round(elevation_m)), dtype=np.int16), 1)
    return path

"""Candidate sites: a hexagonal grid of positions inside the gaps, each a default three-sector site."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from coverage.grid import CHINA_ALBERS_PROJ4
from coverage.radio.environment import DISTANCE_CRS, classify_density
from coverage.schema import SECTOR_COLUMNS

#: Azimuths of a candidate's three sectors, degrees from true north (the usual 0/120/240 layout).
SITE_AZIMUTHS_DEG = (0.0, 120.0, 240.0)
#: Decimal places of the written longitudes/latitudes (1e-7° ≈ 1 cm): candidates are
#: evaluated at these rounded positions, so the sites.csv built again gives the same pixels.
LONLAT_DECIMALS = 7
#: Neighbourhood of the site-density environment (coverage.radio.environment's default).
DENSITY_RADIUS_M = 1000.0

_TO_LONLAT = Transformer.from_crs(CHINA_ALBERS_PROJ4, 4326, always_xy=True)


def hex_grid_in(region_xy, spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Points of a hexagonal lattice of ``spacing_m`` (lattice CRS, origin 0, 0) that lie in ``region_xy``.

    The lattice is fixed in the plane, so the candidates of a county do not depend on
    which other counties are planned with it.
    """
    if shapely.is_empty(region_xy):
        return np.zeros(0), np.zeros(0)
    row_m = spacing_m * math.sqrt(3.0) / 2.0
    x_min, y_min, x_max, y_max = region_xy.bounds
    rows = np.arange(math.floor(y_min / row_m), math.ceil(y_max / row_m) + 1)
    xs, ys = [], []
    for j in rows:
        shift = 0.5 * spacing_m * (j % 2)
        cols = np.arange(math.floor((x_min - shift) / spacing_m), math.ceil((x_max - shift) / spacing_m) + 1)
        xs.append(cols * spacing_m + shift)
        ys.append(np.full(cols.size, j * row_m))
    x, y = np.concatenate(xs), np.concatenate(ys)
    shapely.prepare(region_xy)
    inside = shapely.contains_xy(region_xy, x, y)
    return x[inside], y[inside]


def rounded_lonlat(x_m, y_m) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 lon/lat of lattice-CRS points, rounded to :data:`LONLAT_DECIMALS`."""
    lon, lat = _TO_LONLAT.transform(np.asarray(x_m, dtype=np.float64), np.asarray(y_m, dtype=np.float64))
    return np.round(lon, LONLAT_DECIMALS), np.round(lat, LONLAT_DECIMALS)


def density_environment(lon, lat, existing_lon, existing_lat) -> np.ndarray:
    """The environment covmap would infer for a new site alone among the operator's existing sites.

    As :func:`coverage.radio.environment.infer_environment`: sites of the operator within
    1 km (the new site included) per km², through the same cut-offs.
    """
    to_metric = Transformer.from_crs(4326, DISTANCE_CRS, always_xy=True)
    x, y = to_metric.transform(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    counts = np.ones(len(x))
    if len(existing_lon):
        ex, ey = to_metric.transform(np.asarray(existing_lon, dtype=np.float64),
                                     np.asarray(existing_lat, dtype=np.float64))
        counts += cKDTree(np.column_stack([ex, ey])).query_ball_point(np.column_stack([x, y]), DENSITY_RADIUS_M,
                                                                      return_length=True)
    return classify_density(counts / (math.pi * (DENSITY_RADIUS_M / 1000.0) ** 2))


def site_sectors(lon, lat, environments, operator: str, tech: str, profile, prefix: str) -> gpd.GeoDataFrame:
    """Default three-sector sites at ``lon``/``lat`` as a sectors table (docs/CONTRACTS.md).

    Each site takes the technology profile's default frequency, EIRP, height,
    beamwidth and downtilt (:meth:`~coverage.radio.profiles.TechProfile.sector_defaults`)
    and the azimuths :data:`SITE_AZIMUTHS_DEG`. Site ids are ``<prefix>-<n>`` (1-based,
    zero-padded), cells ``<site>-<k>``; ``source_row`` numbers the candidate sites.
    """
    defaults = profile.sector_defaults()
    n = len(lon)
    width = max(3, len(str(n)))
    site_ids = [f"{prefix}-{i + 1:0{width}d}" for i in range(n)]
    k = len(SITE_AZIMUTHS_DEG)
    frame = pd.DataFrame({
        "operator": operator,
        "site_id": np.repeat(site_ids, k),
        "cell_id": [f"{s}-{j + 1}" for s in site_ids for j in range(k)],
        "tech": tech,
        "freq_mhz": float(defaults["freq_mhz"]),
        "eirp_dbm": float(defaults["eirp_dbm"]),
        "height_m": float(defaults["height_m"]),
        "azimuth_deg": np.tile(np.asarray(SITE_AZIMUTHS_DEG), n),
        "beamwidth_deg": float(defaults["beamwidth_deg"]),
        "downtilt_deg": float(defaults["downtilt_deg"]),
        "environment": np.repeat(np.asarray(environments, dtype=object), k),
        "source_file": "plan",
        "source_row": np.repeat(np.arange(1, n + 1), k).astype(np.int64),
    })
    geometry = gpd.points_from_xy(np.repeat(lon, k), np.repeat(lat, k), crs=4326)
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=4326).loc[:, list(SECTOR_COLUMNS)]

"""A small real run (three NB-IoT sites predicted flat) and measurements made from its own prediction."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import rasterio
from pyproj import Transformer
from shapely.geometry import Point

from coverage.grid import CHINA_ALBERS_PROJ4
from coverage.layout import RunLayout
from coverage.predict import predict

# Three omni NB-IoT B8 sites near Xiamen, one per environment (Hata, flat earth).
SITES = (
    {"lon": 118.10, "lat": 24.50, "environment": "urban"},
    {"lon": 118.22, "lat": 24.56, "environment": "suburban"},
    {"lon": 118.02, "lat": 24.62, "environment": "suburban"},
)


def make_sectors(rows=SITES, operator="CT", tech="nbiot", freq_mhz=942.5, eirp_dbm=50.0):
    """Sectors (docs/CONTRACTS.md) of omni sites at ``rows`` (lon, lat, environment)."""
    records = []
    for i, row in enumerate(rows):
        records.append({
            "operator": operator, "site_id": f"S{i}", "cell_id": f"C{i}", "tech": tech, "freq_mhz": freq_mhz,
            "eirp_dbm": eirp_dbm, "height_m": 30.0, "azimuth_deg": np.nan, "beamwidth_deg": 65.0,
            "downtilt_deg": 0.0, "environment": row["environment"], "source_file": "test.csv",
            "source_row": i + 1, "geometry": Point(row["lon"], row["lat"]),
        })
    return gpd.GeoDataFrame(records, geometry="geometry", crs="EPSG:4326")


def make_run(run_dir, sectors=None, config=None, resolution_m=200):
    """Predict ``sectors`` flat into ``run_dir`` (raster/, report.json) and write its sectors.parquet."""
    sectors = make_sectors() if sectors is None else sectors
    RunLayout(run_dir).root.mkdir(parents=True, exist_ok=True)
    sectors.to_parquet(RunLayout(run_dir).sectors)
    predict(sectors, run_dir, techs=("nbiot",), resolution_m=resolution_m, config=config, scheduler="synchronous",
            tile_size_px=128)
    return run_dir


def pixel_centres(run_dir, tech="nbiot", operator="CT"):
    """(x_m, y_m, predicted_dbm) of every predicted pixel of a layer."""
    with rasterio.open(RunLayout(run_dir).rsrp(tech, operator)) as ds:
        values = ds.read(1)
        transform = ds.transform
    rows, cols = np.nonzero(values > -9000)
    x = transform.c + (cols + 0.5) * transform.a
    y = transform.f + (rows + 0.5) * transform.e
    return x, y, values[rows, cols].astype(np.float64)


def measurements_from_run(run_dir, offset_db=0.0, noise_db=0.0, n_pixels=3000, per_pixel=3, seed=0,
                          tech="nbiot", operator="CT", slope_db_per_decade=0.0, site_xy=None):
    """Measurements = the run's own prediction − offset − slope·log10(d/1 km) + noise, a few per pixel.

    ``d`` is the distance to the nearest of ``site_xy`` (China Albers metres), needed
    only with a slope. Samples sit within ±30 % of a pixel around its centre.
    """
    rng = np.random.default_rng(seed)
    x, y, predicted = pixel_centres(run_dir, tech, operator)
    pick = rng.choice(x.size, size=min(n_pixels, x.size), replace=False)
    x, y, predicted = x[pick], y[pick], predicted[pick]
    truth = predicted - offset_db
    if slope_db_per_decade:
        sx, sy = site_xy
        d_m = np.min(np.hypot(x[:, None] - sx[None, :], y[:, None] - sy[None, :]), axis=1)
        truth = truth - slope_db_per_decade * np.log10(np.maximum(d_m, 100.0) / 1000.0)
    with rasterio.open(RunLayout(run_dir).rsrp(tech, operator)) as ds:
        half_m = 0.3 * ds.transform.a
    n = x.size * per_pixel
    xs = np.repeat(x, per_pixel) + rng.uniform(-half_m, half_m, n)
    ys = np.repeat(y, per_pixel) + rng.uniform(-half_m, half_m, n)
    rsrp = np.repeat(truth, per_pixel) + (rng.normal(0.0, noise_db, n) if noise_db else 0.0)
    lon, lat = Transformer.from_crs(CHINA_ALBERS_PROJ4, "EPSG:4326", always_xy=True).transform(xs, ys)
    return gpd.GeoDataFrame({"operator": operator, "tech": tech, "rsrp_dbm": rsrp, "band": ""},
                            geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")

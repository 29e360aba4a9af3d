"""Measure ``covmap lookup``: a million points answered from a run (issue 15's ≤ 30 s target).

Writes N random points uniform inside the run's counties (0.1 % of them anywhere in
the counties' bounding box: those at sea or outside every county are rejected)
to a CSV with Chinese headers (编号, 经度, 纬度, 坐标系: a third WGS-84, a third
GCJ-02, a third BD-09, as a real file copied from several maps might be), then
times :func:`coverage.lookup.lookup` end to end (read, convert, answer, write
lookup.csv, lookup.parquet and rejects.csv), once per edition.

Usage::

    .venv/bin/python bench/lookup.py [--run runs/sample] [--points 1000000] [--out bench/out/lookup]

Prints per edition: points, answered, rejected, rows written, the read / answer /
write split :func:`coverage.lookup.lookup` measured, then one ``total`` line: wall and
CPU seconds, the peak RSS of the call (the points generator's memory is not
counted) and the load average before and after.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peak_memory import peak_rss_mib, reset_peak_rss  # noqa: E402  (bench/ is the script's folder)


def write_points(run_dir: Path, n: int, path: Path, seed: int = 15) -> None:
    import pandas as pd

    from coverage import chinacrs
    from coverage.lookup import read_run_units

    counties, _ = read_run_units(run_dir)
    west, south, east, north = counties.total_bounds
    land = counties.geometry.union_all()
    shapely.prepare(land)
    rng = np.random.default_rng(seed)
    lon, lat = np.empty(0), np.empty(0)
    while len(lon) < n:  # uniform inside the counties; the last 0.1 % anywhere in their box (rejected at sea)
        x, y = rng.uniform(west, east, n), rng.uniform(south, north, n)
        inside = shapely.intersects_xy(land, x, y)
        lon, lat = np.r_[lon, x[inside]], np.r_[lat, y[inside]]
    lon, lat = lon[:n], lat[:n]
    stray = rng.random(n) < 0.001
    lon[stray], lat[stray] = rng.uniform(west, east, stray.sum()), rng.uniform(south, north, stray.sum())
    datum = np.array(["", "gcj02", "bd09"], dtype=object)[rng.integers(0, 3, n)]
    out_lon, out_lat = lon.copy(), lat.copy()
    for name, forward in (("gcj02", chinacrs.wgs84_to_gcj02), ("bd09", chinacrs.wgs84_to_bd09)):
        pick = datum == name
        out_lon[pick], out_lat[pick] = forward(lon[pick], lat[pick])
    pd.DataFrame({"编号": [f"P{i:07d}" for i in range(n)], "经度": np.round(out_lon, 7),
                  "纬度": np.round(out_lat, 7), "坐标系": datum}).to_csv(path, index=False, encoding="utf-8-sig")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/sample"))
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out/lookup"))
    parser.add_argument("--operator", default="中国电信", help="operator of the operator-edition run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from coverage import lookup as lk

    args.out.mkdir(parents=True, exist_ok=True)
    points_csv = args.out / f"points_{args.points}.csv"
    if not points_csv.exists():
        t0 = time.perf_counter()
        write_points(args.run, args.points, points_csv)
        print(f"wrote {points_csv} ({points_csv.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s")
    for edition, operator in (("public", None), ("operator", args.operator)):
        out = args.out / edition
        gc.collect()
        reset_peak_rss()
        load = os.getloadavg()[0]
        t0, cpu0 = time.perf_counter(), time.process_time()
        result = lk.lookup(args.run, [points_csv], out, edition=edition, operator=operator, overwrite=True)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        split = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in result.timings_s.items())
        print(f"{edition:<8} points {result.rows_read:,}  answered {result.points:,}  rejected {result.rejected:,}  "
              f"rows {result.answers:,} ({len(result.layers)} layers)  [{split}]  "
              f"lookup.csv {(out / 'lookup.csv').stat().st_size / 1e6:.0f} MB")
        print(f"total lookup() {edition} {wall:.1f} s wall ({cpu:.1f} s CPU), peak RSS {peak_rss_mib():,.0f} MiB, "
              f"load {load:.2f} -> {os.getloadavg()[0]:.2f}")



if __name__ == "__main__":
    main()

"""Measure `assess_challenges`: how long judging N challenge tests takes on the sample run.

Draws N synthetic tests (seeded) over Xiamen within the sample run's extent: CT,
CM and CU NB-IoT, random days of 2026, times 05:00-23:00, 10 % indoor, RSRP
uniform in -150…-90 dBm (2 % no service). Times the whole call and reports how many
hexagon groups came out in each state.

Usage::

    .venv/bin/python bench/challenge.py [--run runs/sample] [--tests 1000000] [--runs 1]

Needs ``runs/sample`` (``covmap build --sample``). Prints one JSON line per run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

XIAMEN = (117.95, 24.40, 118.35, 24.75)  # WGS-84 box of the sample's counties


def synthetic_tests(n: int, seed: int = 20261202):
    import geopandas as gpd
    import pandas as pd

    rng = np.random.default_rng(seed)
    west, south, east, north = XIAMEN
    lon = rng.uniform(west, east, n)
    lat = rng.uniform(south, north, n)
    start = pd.Timestamp("2026-01-01", tz="Asia/Shanghai")
    seconds = rng.integers(0, 334 * 86400, n)
    seconds = seconds - seconds % 86400 + rng.integers(5 * 3600, 23 * 3600, n)
    times = start + pd.to_timedelta(seconds, unit="s")
    rsrp = rng.uniform(-150.0, -90.0, n)
    rsrp[rng.random(n) < 0.02] = np.nan
    frame = gpd.GeoDataFrame({
        "time": times,
        "operator": rng.choice(np.array(["CT", "CM", "CU"]), n),
        "tech": "nbiot",
        "rsrp_dbm": rsrp,
        "setting": np.where(rng.random(n) < 0.1, "indoor", np.where(rng.random(n) < 0.5, "outdoor", "in-vehicle")),
        "source_file": "bench.csv",
        "source_row": np.arange(1, n + 1),
    }, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/sample"))
    parser.add_argument("--tests", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    from coverage.measure.challenge import assess_challenges

    tests = synthetic_tests(args.tests)
    for i in range(args.runs):
        started = time.perf_counter()
        result = assess_challenges(args.run, tests)
        seconds = time.perf_counter() - started
        counted = int(result.tests["counted"].sum())
        print(json.dumps({"bench": "challenge", "run": i + 1, "tests": args.tests, "counted": counted,
                          "hex_groups": len(result.hexes), **result.counts(), "seconds": round(seconds, 2),
                          "tests_per_s": round(args.tests / seconds)}), flush=True)


if __name__ == "__main__":
    main()

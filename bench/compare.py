"""What `covmap compare` and `build --previous` cost on the sample, after one operator's resubmission.

China Telecom resubmits the sample's ``ct_sites.csv`` with every 10th site dropped
and as many new sites (copies of other sites' sectors, moved 1.5 km north-east,
with new ids). The script builds that month next to an existing run of the sample
(``--old``, default ``runs/sample``, as ``covmap build --sample`` leaves it), with
``previous=`` that run, then times ``compare_runs`` again on its own, and prints
the figures.

    .venv/bin/python bench/compare.py --work /tmp/cmp_bench
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd

from coverage.compare import compare_runs
from coverage.pipeline import build, sample_job

SITE_ID, LON, LAT, CELL_ID = "站号", "经度", "纬度", "小区号"
SHIFT_DEG = 0.01  # ~1.1 km east and north at Xiamen's latitude


def resubmit_ct(job, folder: Path) -> tuple[list[Path], dict[str, str], int, int]:
    """Copy the sample's submissions into ``folder`` with China Telecom's file changed."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, crs = [], {}
    dropped = added = 0
    for path in job.submissions:
        target = folder / path.name
        if path.name == "ct_sites.csv":
            table = pd.read_csv(path, encoding="gbk", dtype=str)
            sites = list(dict.fromkeys(table[SITE_ID]))
            drop = set(sites[::10])
            movers = sites[5::10][:len(drop)]
            moved = table[table[SITE_ID].isin(movers)].copy()
            moved[LON] = (moved[LON].astype(float) + SHIFT_DEG).map(lambda v: f"{v:.6f}")
            moved[LAT] = (moved[LAT].astype(float) + SHIFT_DEG).map(lambda v: f"{v:.6f}")
            moved[SITE_ID] = "N" + moved[SITE_ID]
            moved[CELL_ID] = "N" + moved[CELL_ID]
            out = pd.concat([table[~table[SITE_ID].isin(drop)], moved], ignore_index=True)
            out.to_csv(target, index=False, encoding="gbk")
            dropped, added = len(drop), len(movers)
        else:
            shutil.copy2(path, target)
        paths.append(target)
        crs[str(target)] = job.crs_by_file[str(path)]
    return paths, crs, dropped, added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, default=Path("runs/sample"), help="the previous month's run")
    parser.add_argument("--work", type=Path, required=True, help="folder for the new month's run")
    args = parser.parse_args()
    if not (args.old / "stats" / "coverage.gpkg").is_file():
        raise SystemExit(f"{args.old} is not an aggregated run: run `covmap build --sample` first")
    job = sample_job()
    old_options = json.loads((args.old / "manifest.json").read_text(encoding="utf-8")).get("options", {})
    paths, crs, dropped, added = resubmit_ct(job, args.work / "submissions")
    started = time.perf_counter()
    result = build(paths, args.work / "run", crs=crs, townships=job.townships, previous=args.old,
                   dem=old_options.get("dem") or None, clutter=old_options.get("clutter") or None,
                   publish_dir=args.work / "site")
    build_s = time.perf_counter() - started
    stages = {name: ("reused" if run.reused else f"{run.seconds:.1f} s") for name, run in result.stages.items()}
    started = time.perf_counter()
    compared = compare_runs(args.old, args.work / "run", args.work / "compare")
    compare_s = time.perf_counter() - started
    load = os.getloadavg()[0]
    print(f"China Telecom resubmitted: {dropped} sites dropped, {added} added (moved copies)")
    print(f"build --previous: {build_s:.1f} s in all; stages {stages}; load {load:.1f}")
    print(f"compare_runs alone: {compare_s:.1f} s ({compared['counties']} counties, {compared['townships']} "
          f"townships, {len(compared['layers'])} layers, grid {compared['grid']['width']} x "
          f"{compared['grid']['height']} px)")
    for tech, by_operator in compared["totals"].items():
        for operator, t in by_operator.items():
            print(f"  {tech:<7} {operator:<4} {t['coverage_pct_old']:6.2f} -> {t['coverage_pct_new']:6.2f} % "
                  f"({t['coverage_change_pp']:+.2f} pp); closed {t['gap_closed_km2']:7.2f} km², opened "
                  f"{t['gap_opened_km2']:7.2f} km²; sites +{t['sites_added']} -{t['sites_removed']}")


if __name__ == "__main__":
    main()

"""Evaluation speed: N measurement rows (default 1 M) compared with a run's prediction (issue 14: ≤ 60 s).

Generates ``--rows`` accepted measurements (the intake's contract columns) along
random walks ("drives") through the predicted pixels of every operator × technology
layer of ``--run`` (default ``runs/sample``, made by ``covmap build --sample``), each
sample the prediction minus a per-operator offset plus 6 dB noise, then times
:func:`coverage.measure.evaluate.evaluate_run` step by step (bin, compare, statistics,
files) and prints one table. ``--intake`` also writes the rows as a Chinese-header CSV
(``测试时间, 经度, 纬度, 坐标系, 运营商, 网络制式, RSRP(dBm)``, GCJ-02) and times
``covmap evaluate``'s whole path from that file (the intake included).

Usage::

    .venv/bin/python bench/evaluate.py                    # 1 M rows on runs/sample
    .venv/bin/python bench/evaluate.py --rows 200000 --intake
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from pyproj import Transformer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coverage.grid import CHINA_ALBERS_PROJ4  # noqa: E402
from coverage.layout import RunLayout  # noqa: E402

OFFSET_DB = {"CT": 3.0, "CM": -2.0, "CU": 1.0, "CBN": 0.0}


def _layers(run: RunLayout):
    for path in sorted(run.raster_dir.glob("*_*_rsrp.tif")):
        tech, operator = path.name.split("_")[:2]
        yield tech, operator.upper(), path


def generate(run: RunLayout, rows: int, seed: int = 0) -> gpd.GeoDataFrame:
    """``rows`` samples on drives of 600 samples, 10 m apart, through each layer's predicted pixels."""
    rng = np.random.default_rng(seed)
    layers = list(_layers(run))
    per_layer = rows // len(layers)
    to_lonlat = Transformer.from_crs(CHINA_ALBERS_PROJ4, "EPSG:4326", always_xy=True)
    frames = []
    for k, (tech, operator, path) in enumerate(layers):
        n = per_layer if k < len(layers) - 1 else rows - per_layer * (len(layers) - 1)
        with rasterio.open(path) as ds:
            values = ds.read(1)
            transform = ds.transform
        r, c = np.nonzero(values > -9000)
        drives = -(-n // 600)
        start = rng.choice(r.size, drives)
        heading = rng.uniform(0, 2 * np.pi, drives)
        step = np.arange(600) * 10.0
        x = (transform.c + (c[start] + 0.5) * transform.a)[:, None] + np.cos(heading)[:, None] * step
        y = (transform.f + (r[start] + 0.5) * transform.e)[:, None] + np.sin(heading)[:, None] * step
        x, y = x.ravel()[:n], y.ravel()[:n]
        col = np.clip(((x - transform.c) / transform.a).astype(int), 0, values.shape[1] - 1)
        row = np.clip(((y - transform.f) / transform.e).astype(int), 0, values.shape[0] - 1)
        predicted = values[row, col].astype(np.float64)
        rsrp = np.where(predicted > -9000, predicted - OFFSET_DB.get(operator, 0.0) + rng.normal(0, 6.0, n), np.nan)
        rsrp = np.clip(rsrp, -156.0, -31.0)
        lon, lat = to_lonlat.transform(x, y)
        frames.append(pd.DataFrame({"lon": lon, "lat": lat, "operator": operator, "tech": tech, "rsrp_dbm": rsrp}))
    frame = pd.concat(frames, ignore_index=True)
    n = len(frame)
    times = pd.Timestamp("2026-11-01 08:00", tz="Asia/Shanghai") + pd.to_timedelta(np.arange(n) % 50_000, unit="s")
    return gpd.GeoDataFrame({
        "time": times, "operator": frame["operator"], "tech": frame["tech"], "rsrp_dbm": frame["rsrp_dbm"],
        "sinr_db": np.nan, "pci": pd.array([pd.NA] * n, dtype="Int64"), "cell_id": "", "band": "",
        "earfcn": pd.array([pd.NA] * n, dtype="Int64"), "source_kind": "scanner", "setting": "in-vehicle",
        "external_antenna": True, "position_accuracy_m": 3.0, "source_file": "bench", "source_row": np.arange(1, n + 1),
    }, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326")


def _write_intake_csv(measurements: gpd.GeoDataFrame, path: Path) -> None:
    from coverage.chinacrs import wgs84_to_gcj02

    lon, lat = wgs84_to_gcj02(measurements.geometry.x.to_numpy(), measurements.geometry.y.to_numpy())
    names = {"CT": "中国电信", "CM": "中国移动", "CU": "中国联通", "CBN": "中国广电"}
    techs = {"nbiot": "NB-IoT", "redcap": "5G RedCap"}
    pd.DataFrame({
        "测试时间": measurements["time"].dt.strftime("%Y-%m-%d %H:%M:%S"), "经度": np.round(lon, 6),
        "纬度": np.round(lat, 6), "坐标系": "GCJ-02", "运营商": measurements["operator"].map(names),
        "网络制式": measurements["tech"].map(techs),
        # a test without service is written 无服务, as the intake asks (a blank is rejected)
        "RSRP(dBm)": measurements["rsrp_dbm"].round(2).astype(object).where(measurements["rsrp_dbm"].notna(), "无服务"),
    }).to_csv(path, index=False, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/sample"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--intake", action="store_true", help="Also time the whole path from a CSV file.")
    args = parser.parse_args()

    from coverage.measure.evaluate import (
        Evaluation,
        bin_measurements,
        compare_bins,
        confusion_table,
        evaluate_run,
        headline,
        rounded_summary,
        run_config,
        summarise,
        write_evaluation,
    )

    work = Path(tempfile.mkdtemp(prefix="covmap-bench-evaluate-"))
    run = work / "run"
    shutil.copytree(args.run, run, ignore=shutil.ignore_patterns("site", "evaluation"))
    load = os.getloadavg()[0]
    started = time.perf_counter()
    measurements = generate(RunLayout(run), args.rows)
    t_generate = time.perf_counter() - started
    timings = {}
    started = time.perf_counter()
    config = run_config(run)
    t0 = time.perf_counter()
    bins = bin_measurements(measurements, 100.0, config.evaluation.min_samples_per_bin)
    timings["bin"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bins = compare_bins(bins, run, config)
    timings["compare (rasters, sites, counties)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = summarise(bins)
    evaluation = Evaluation(bins=bins, summary=rounded_summary(summary), confusion=confusion_table(bins),
                            headline=headline(summary))
    timings["statistics"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_evaluation(run, evaluation, n_measurements=len(measurements))
    timings["files (parquet, csv, report.html)"] = time.perf_counter() - t0
    total = time.perf_counter() - started
    print(f"run {args.run}, {len(measurements):,} rows ({t_generate:.1f} s to generate), {len(bins):,} bins, "
          f"load {load:.2f}")
    print(f"{'step':<36} {'s':>7}")
    for name, seconds in timings.items():
        print(f"{name:<36} {seconds:7.2f}")
    print(f"{'evaluation (library, in memory)':<36} {total:7.2f}   {len(measurements) / total:,.0f} rows/s")
    for tech, h in evaluation.headline.items():
        print(f"  {tech}: {h}")
    if args.intake:
        csv_path = work / "drive.csv"
        _write_intake_csv(measurements, csv_path)
        t0 = time.perf_counter()
        result = evaluate_run(run, [csv_path])
        seconds = time.perf_counter() - t0
        print(f"{'from CSV (intake + evaluation)':<36} {seconds:7.2f}   {result.rows_read:,} rows read, "
              f"{result.rejected:,} rejected")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Evaluation speed: N measurement rows (default 1 M) through ``covmap evaluate`` (issue 14: ≤ 60 s).

Generates ``--rows`` drive-test rows along straight drives (600 samples, 10 m
apart) through the predicted pixels of every operator × technology layer of
``--run`` (default ``runs/sample``, made by ``covmap build --sample``), each sample
the prediction minus a per-operator offset plus 6 dB noise (a test without
service where no sector reaches), and writes them once as the Chinese-header CSV
of ``sample_data/measurements/drive_scanner_gcj02.csv`` (测试时间, 经度, 纬度 in
GCJ-02, 坐标系, 运营商, 网络制式, RSRP(dBm), SINR(dB), PCI, 小区ID, 频点, 频段, 场景,
数据来源, 外接天线), about 1 % of the rows bad (RSRP out of range, no time,
repeated rows). Then it times :func:`coverage.measure.evaluate.evaluate_run` on a
copy of the run from that file, the library path of ``covmap evaluate``: intake
(read, validate), binning, attaching prediction, sites and counties, statistics
and the files (bins.parquet, summary.csv, confusion.csv, report.html, the rejects).

Usage::

    .venv/bin/python bench/evaluate.py                    # 1 M rows on runs/sample
    .venv/bin/python bench/evaluate.py --rows 200000 --profile

Prints the split of the library's own timings, the peak RSS of the evaluation
(the generator's memory is not counted) and one ``total`` line.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
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

from measure_intake import spoil_one_in_a_hundred  # noqa: E402  (bench/ is the script's folder)
from peak_memory import peak_rss_mib, reset_peak_rss  # noqa: E402

from coverage.grid import CHINA_ALBERS_PROJ4  # noqa: E402
from coverage.layout import RunLayout  # noqa: E402

OFFSET_DB = {"CT": 3.0, "CM": -2.0, "CU": 1.0, "CBN": 0.0}


def _layers(run: RunLayout):
    for path in sorted(run.raster_dir.glob("*_*_rsrp.tif")):
        tech, operator = path.name.split("_")[:2]
        yield tech, operator.upper(), path


def generate(run: RunLayout, rows: int, seed: int = 0) -> gpd.GeoDataFrame:
    """``rows`` samples on drives of 600 samples, 10 m apart, through each layer's predicted pixels.

    Only samples inside the run's counties are kept (drives stop at the coast), as a
    drive test stays on the roads.
    """
    import shapely

    from coverage.lookup import read_run_units

    rng = np.random.default_rng(seed)
    layers = list(_layers(run))
    per_layer = rows // len(layers)
    to_lonlat = Transformer.from_crs(CHINA_ALBERS_PROJ4, "EPSG:4326", always_xy=True)
    land = read_run_units(run.root)[0].geometry.union_all()
    shapely.prepare(land)
    frames = []
    for k, (tech, operator, path) in enumerate(layers):
        n = per_layer if k < len(layers) - 1 else rows - per_layer * (len(layers) - 1)
        with rasterio.open(path) as ds:
            values = ds.read(1)
            transform = ds.transform
        r, c = np.nonzero(values > -9000)
        x_parts, y_parts, have = [], [], 0
        while have < n:
            drives = -(-n // 600)
            start = rng.choice(r.size, drives)
            heading = rng.uniform(0, 2 * np.pi, drives)
            step = np.arange(600) * 10.0
            x = ((transform.c + (c[start] + 0.5) * transform.a)[:, None] + np.cos(heading)[:, None] * step).ravel()
            y = ((transform.f + (r[start] + 0.5) * transform.e)[:, None] + np.sin(heading)[:, None] * step).ravel()
            lon, lat = to_lonlat.transform(x, y)
            on_land = shapely.intersects_xy(land, lon, lat)
            x_parts.append(x[on_land])
            y_parts.append(y[on_land])
            have += int(on_land.sum())
        x, y = np.concatenate(x_parts)[:n], np.concatenate(y_parts)[:n]
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


def write_drive_csv(measurements: gpd.GeoDataFrame, path: Path, seed: int = 1) -> None:
    """The rows as a Chinese-header drive-test CSV in GCJ-02, about 1 % of them bad."""
    from coverage.chinacrs import wgs84_to_gcj02

    rng = np.random.default_rng(seed)
    n = len(measurements)
    lon, lat = wgs84_to_gcj02(measurements.geometry.x.to_numpy(), measurements.geometry.y.to_numpy())
    names = {"CT": "中国电信", "CM": "中国移动", "CU": "中国联通", "CBN": "中国广电"}
    nbiot = (measurements["tech"] == "nbiot").to_numpy()
    rsrp = measurements["rsrp_dbm"].round(1).astype(object).where(measurements["rsrp_dbm"].notna(), "无服务")
    frame = pd.DataFrame({
        "测试时间": measurements["time"].dt.strftime("%Y-%m-%d %H:%M:%S"), "经度": np.round(lon, 6),
        "纬度": np.round(lat, 6), "坐标系": "GCJ-02", "运营商": measurements["operator"].map(names),
        "网络制式": np.where(nbiot, "NB-IoT", "5G RedCap"),
        # a test without service is written 无服务, as the intake asks (a blank is rejected)
        "RSRP(dBm)": rsrp, "SINR(dB)": np.round(rng.normal(8, 6, n), 1), "PCI": rng.integers(0, 504, n),
        "小区ID": rng.integers(10**8, 10**9, n), "频点": np.where(nbiot, 2506, 633984),
        "频段": np.where(nbiot, "B5", "n78"), "场景": np.array(["车内", "室外"])[rng.integers(0, 2, n)],
        "数据来源": "扫频仪", "外接天线": "是",
    })
    spoil_one_in_a_hundred(frame, rng, rsrp_column="RSRP(dBm)")
    frame.to_csv(path, index=False, encoding="utf-8")



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/sample"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/covmap-bench-evaluate"),
                        help="folder of the generated CSV (kept: the same seeded rows every time)")
    parser.add_argument("--profile", action="store_true", help="cProfile the evaluation; print the top functions")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from coverage.measure.evaluate import evaluate_run

    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / f"drive_{args.rows}.csv"
    if not csv_path.exists():
        t0 = time.perf_counter()
        write_drive_csv(generate(RunLayout(args.run), args.rows), csv_path)
        print(f"wrote {csv_path} ({csv_path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s")
    work = Path(tempfile.mkdtemp(prefix="covmap-bench-evaluate-"))
    run = work / "run"
    shutil.copytree(args.run, run, ignore=shutil.ignore_patterns("site", "evaluation"))
    import gc

    gc.collect()
    reset_peak_rss()
    load = os.getloadavg()[0]
    profiler = cProfile.Profile() if args.profile else None
    cpu0, t0 = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    result = evaluate_run(run, [csv_path])
    if profiler:
        profiler.disable()
    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak = peak_rss_mib()
    used = int(result.bins["enough_samples"].sum())
    print(f"run {args.run}, {csv_path.name}: {result.rows_read:,} rows read, {result.rejected:,} reject lines, "
          f"{len(result.bins):,} bins ({used:,} with enough samples)")
    for step, seconds in result.timings_s.items():
        print(f"  {step:<10} {seconds:7.2f} s")
    for tech, h in result.headline.items():
        print(f"  {tech}: {h}")
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
    print(f"total evaluate_run {total:.1f} s wall ({cpu:.1f} s CPU), {result.rows_read / total:,.0f} rows/s, "
          f"peak RSS {peak:,.0f} MiB, load {load:.2f} -> {os.getloadavg()[0]:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

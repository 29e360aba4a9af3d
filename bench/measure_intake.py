"""Measure the measurement intake: 1 M drive-test rows read and validated.

Writes a Chinese-header CSV (UTF-8, GCJ-02, the columns of
``sample_data/measurements``'s drive test: time, lon/lat, 坐标系, 运营商, 制式, RSRP,
SINR, PCI, 小区ID, 频点, 场景) of ``--rows`` rows along random walks through inland Fujian
(about 1 % of the rows are bad: RSRP out of range, no time, duplicates), and
optionally the same rows as a G-NetTrack export, then times
``coverage.measure.read_measurements`` on it against the real national outline.

Usage::

    .venv/bin/python bench/measure_intake.py [--rows 1000000] [--out /tmp/measure-bench] [--gnettrack]

Prints one line per file: rows, accepted, rejected, wall seconds (the first file's
includes loading the national outline), rows per second and peak RSS; ``--profile``
adds the ten most expensive functions. The
issue's target is 1 M rows ≤ 60 s *end to end* (intake + evaluation); this is
intake's share.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 14


def make_rows(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """``n`` rows on 1 s steps along 200 random walks (≈ 12 m per step) in Fujian, in GCJ-02."""
    walks = 200
    per = -(-n // walks)
    start_lon = rng.uniform(116.5, 118.8, walks)  # inland Fujian: the walks (≤ 60 km) stay mostly on land
    start_lat = rng.uniform(24.9, 26.8, walks)
    heading = np.cumsum(rng.normal(0, 0.15, (walks, per)), axis=1) + rng.uniform(0, 2 * np.pi, (walks, 1))
    step_deg = 12.0 / 111_000.0
    lon = (start_lon[:, None] + np.cumsum(step_deg * np.cos(heading), axis=1)).ravel()[:n]
    lat = (start_lat[:, None] + np.cumsum(step_deg * np.sin(heading), axis=1)).ravel()[:n]
    start = pd.Timestamp("2024-05-01 08:00:00")
    seconds = (np.arange(walks)[:, None] * 17 + np.arange(per)[None, :]).ravel()[:n]
    times = (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S")
    operators = np.array(["中国电信", "中国移动", "中国联通"])[rng.integers(0, 3, n)]
    techs = np.array(["NB-IoT", "5G RedCap"])[rng.integers(0, 2, n)]
    rsrp = np.round(rng.normal(-98, 12, n), 1)
    frame = pd.DataFrame({
        "测试时间": times, "经度": np.round(lon, 6), "纬度": np.round(lat, 6), "坐标系": "GCJ-02",
        "运营商": operators, "网络制式": techs, "RSRP": rsrp, "SINR": np.round(rng.normal(8, 6, n), 1),
        "PCI": rng.integers(0, 504, n), "小区ID": rng.integers(10**8, 10**9, n), "频点": 2506,
        "场景": np.array(["车内", "室外"])[rng.integers(0, 2, n)],
    })
    spoil_one_in_a_hundred(frame, rng, rsrp_column="RSRP")
    return frame


def spoil_one_in_a_hundred(frame: pd.DataFrame, rng: np.random.Generator, rsrp_column: str) -> None:
    """Make 1 % of the rows bad in place, a third each: RSRP out of range, blank 测试时间, a repeat of the row before."""
    bad = rng.choice(len(frame), size=len(frame) // 100, replace=False)
    kinds = bad % 3
    frame.loc[bad[kinds == 0], rsrp_column] = -170.0
    frame.loc[bad[kinds == 1], "测试时间"] = ""
    repeated = bad[kinds == 2]
    frame.iloc[repeated] = frame.iloc[np.maximum(repeated - 1, 0)].to_numpy()


def to_gnettrack(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows in G-NetTrack's columns (WGS-84 is not redone: only the parsing is timed)."""
    names = {"中国电信": "CHN-CT", "中国移动": "CHINA MOBILE", "中国联通": "CHN-UNICOM"}
    plmn = {"中国电信": "46011", "中国移动": "46000", "中国联通": "46001"}
    t = pd.to_datetime(frame["测试时间"], errors="coerce").dt.strftime("%Y.%m.%d_%H.%M.%S").fillna("")
    return pd.DataFrame({
        "Timestamp": t, "Longitude": frame["经度"], "Latitude": frame["纬度"], "Speed": 40,
        "Operatorname": frame["运营商"].map(names), "Operator": frame["运营商"].map(plmn), "CGI": "",
        "Cellname": "", "Node": "", "CellID": frame["小区ID"], "LAC": "22528",
        "NetworkTech": frame["网络制式"].map({"NB-IoT": "NB-IoT", "5G RedCap": "NR"}),
        "NetworkMode": "", "Level": frame["RSRP"], "Qual": -11, "SNR": frame["SINR"], "CQI": "", "LTERSSI": "",
        "ARFCN": frame["频点"], "DL_bitrate": 0, "UL_bitrate": 0, "PSC": frame["PCI"], "Altitude": 10,
        "Height": "", "Accuracy": 4, "Location": "", "State": "D",
    })


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/measure-bench"))
    parser.add_argument("--gnettrack", action="store_true", help="also time a G-NetTrack export of the same rows")
    parser.add_argument("--profile", action="store_true", help="cProfile the first file's intake")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from coverage.boundaries import national_outline
    from coverage.measure import read_measurements

    csv_path = args.out / f"drive_{args.rows}_seed{SEED}.csv"
    gnt_path = args.out / f"gnettrack_{args.rows}_seed{SEED}.txt"
    if not csv_path.exists() or (args.gnettrack and not gnt_path.exists()):  # seeded: the same rows every time
        t0 = time.perf_counter()
        frame = make_rows(args.rows, np.random.default_rng(SEED))
        frame.to_csv(csv_path, index=False, encoding="utf-8")
        if args.gnettrack:
            to_gnettrack(frame).to_csv(gnt_path, index=False, sep="\t", encoding="utf-8")
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s")
    files = [("chinese-header CSV", csv_path)] + ([("G-NetTrack", gnt_path)] if args.gnettrack else [])
    for label, path in files:
        print(f"{label}: {path} ({path.stat().st_size / 2**20:.0f} MiB)")

    t0 = time.perf_counter()
    outline = national_outline()
    outline_s = time.perf_counter() - t0
    print(f"national outline loaded in {outline_s:.1f} s (once per process; counted in the first file's total)")
    for label, path in files:
        profiler = cProfile.Profile() if args.profile and label == files[0][0] else None
        t0 = time.perf_counter()
        if profiler:
            profiler.enable()
        intake = read_measurements(path, outline=outline)
        if profiler:
            profiler.disable()
        wall = time.perf_counter() - t0 + (outline_s if label == files[0][0] else 0.0)
        print(f"{label}: {intake.rows_read:,} rows, {len(intake.measurements):,} accepted, "
              f"{intake.rejected_rows:,} rejected, {wall:.1f} s wall ({intake.rows_read / wall:,.0f} rows/s), "
              f"peak RSS {peak_rss_mib():,.0f} MiB")
        print("  top rejects: " + "; ".join(f"{r.check} ×{r.rows:,}" for r in intake.summary().itertuples()))
        if profiler:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()

"""The scaling measurements of bench/README.md: run them, or plot what was measured.

``--run`` runs ``bench/national.py`` once per row of :data:`MATRIX` (one process each,
so peak memory is per run) and appends each run's figures to ``bench/scaling.jsonl``;
``--plot`` draws ``bench/scaling.png`` (time vs sectors, time vs resolution) from it
and prints a Markdown table.

Usage::

    .venv/bin/python bench/scaling.py --run           # ~15 min on 2 cores
    .venv/bin/python bench/scaling.py --plot
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "scaling.jsonl"
PLOT = HERE / "scaling.png"

# (label, national.py arguments); Guangdong (44) at three sizes and three resolutions,
# Guangdong + Guangxi (44,45) at Guangdong's density for the memory bound (their county
# weights are 2.013 x Guangdong's), and the whole country at a small count.
MATRIX = [
    ("sectors", ["--sectors", "10000", "--province", "44"]),
    ("resolution", ["--sectors", "10000", "--province", "44", "--resolution", "200"]),
    ("extent", ["--sectors", "20126", "--province", "44,45"]),
    ("sectors", ["--sectors", "30000", "--province", "44"]),
    ("resolution", ["--sectors", "10000", "--province", "44", "--resolution", "50"]),
    ("national", ["--sectors", "10000"]),
    ("sectors", ["--sectors", "100000", "--province", "44"]),
]


def run(labels) -> None:
    for label, args in MATRIX:
        if labels and label not in labels:
            continue
        cmd = [sys.executable, str(HERE / "national.py"), *args, "--stages", "predict", "--json", str(RESULTS)]
        print("$", " ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True)


def _load():
    return [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot() -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = _load()
    print("| sectors | extent | resolution m | grid px | tiles | evaluations | predict s | tiles s | "
          "cog s | M eval/s | main RSS MiB | workers RSS MiB | rasters MiB | load 1 min |")
    print("|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        t = r["timings_s"]
        print(f"| {r['sectors']:,} | {r['province'] or 'China'} | {r['resolution_m']:g} | "
              f"{r['grid_px'][0]:,} x {r['grid_px'][1]:,} | {r['tiles']:,} | {r['evaluations']:.3g} | "
              f"{r['predict_s']:.1f} | {t['tiles']:.1f} | {t['cog']:.1f} | "
              f"{r['evaluations'] / t['tiles'] / 1e6:.1f} | {r['predict_self_peak_mib']:.0f} | "
              f"{r['predict_workers_peak_mib']:.0f} | {r['rasters_mib']:.0f} | "
              f"{r['load_before'][0]:.1f}-{r['load_after'][0]:.1f} |")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    by_sectors = sorted((r for r in runs if r["province"] == "44" and r["resolution_m"] == 100.0),
                        key=lambda r: r["sectors"])
    if by_sectors:
        x = [r["sectors"] for r in by_sectors]
        ax1.loglog(x, [r["predict_s"] for r in by_sectors], "o-", label="predict (wall)")
        ax1.loglog(x, [r["timings_s"]["tiles"] for r in by_sectors], "s--", label="tiles (kernel)")
        ax1.loglog(x, [r["timings_s"]["cog"] for r in by_sectors], "^:", label="COG writing")
    ax1.set(xlabel="sectors (Guangdong, 100 m)", ylabel="seconds", title="time vs sectors")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend()
    by_res = sorted((r for r in runs if r["province"] == "44" and r["sectors"] < 10_100),
                    key=lambda r: r["resolution_m"])
    if by_res:
        x = [r["resolution_m"] for r in by_res]
        ax2.loglog(x, [r["predict_s"] for r in by_res], "o-", label="predict (wall)")
        ax2.loglog(x, [r["timings_s"]["tiles"] for r in by_res], "s--", label="tiles (kernel)")
        ax2.loglog(x, [r["timings_s"]["cog"] for r in by_res], "^:", label="COG writing")
        ax2.set_xticks(x, [f"{v:g}" for v in x])
        ax2.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax2.set(xlabel="resolution, m (Guangdong, ~10,000 sectors)", ylabel="seconds", title="time vs resolution")
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend()
    fig.suptitle("covmap predict on 2 cores (scheduler=processes); machine shared, see load in README")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)
    print(f"wrote {PLOT}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="*", metavar="LABEL", help="run the matrix (or only these labels)")
    parser.add_argument("--plot", action="store_true", help="plot bench/scaling.jsonl")
    args = parser.parse_args(argv)
    if args.run is not None:
        run(args.run)
    if args.plot:
        plot()


if __name__ == "__main__":
    main()

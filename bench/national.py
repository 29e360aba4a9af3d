"""National-scale benchmark: a synthetic submission over China's counties, then predict (and aggregate).

Generates ``--sectors`` sectors over all 2,875 counties (``coverage.boundaries.load_counties``)
or the provinces given by ``--province``, with a site density that follows the
county's character: small urban districts (names ending in 区, under 300 km²) are
dense, other districts and county-level cities (市) medium, counties (县, 旗) sparse,
and the largest (over 20,000 km²) sparser still. Each site has three sectors (0°,
120°, 240° plus a random turn per site); operator shares, bands and heights follow
the Chinese networks (NB-IoT: CT B5, CM/CU B8; RedCap: CT/CU n78, CM n41, CBN n28).
The sectors are written as ``RUN/sectors.parquet`` directly in the contract's shape
(docs/CONTRACTS.md; no file parsing: the engine is what is benched), then the
build's stages run — ``predict`` (the rasters), ``aggregate`` (county statistics and
gaps) and ``publish`` (the public edition of the site) — and a table is printed:
wall time, peak memory (this process's and the Dask workers' resident set, sampled
every 0.1 s), pixel × sector evaluations per second, tiles per second and output
sizes. ``--stages predict`` stops after the rasters. ``--terrain`` predicts with the
embedded national 30″ DEM (``dem="default"``; run ``covmap data fetch`` first), and
``--clutter`` adds the embedded MODIS land cover (``clutter="default"``); without them
the bench is flat earth with the sectors' own environments, as before.

Usage::

    .venv/bin/python bench/national.py --sectors 20000 --province 44          # ~1 min
    .venv/bin/python bench/national.py --sectors 100000 --resolution 200
    .venv/bin/python bench/national.py --sectors 20000 --province 44 --stages predict
    .venv/bin/python bench/national.py --sectors 20000 --province 44 --terrain
    .venv/bin/python bench/national.py --sectors 20000 --province 44 --terrain --clutter
    .venv/bin/python bench/national.py --sectors 20000 --province 44 --scheduler tcp://10.0.0.5:8786

``--json FILE`` also appends the figures as one JSON line (``bench/scaling.py`` uses it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OPERATOR_SHARES = {"CM": 0.40, "CT": 0.25, "CU": 0.25, "CBN": 0.10}
# (operator, tech) -> carrier centre frequency, MHz (coverage.radio.profiles bands)
BANDS_MHZ = {
    ("CT", "nbiot"): 875.0, ("CM", "nbiot"): 942.5, ("CU", "nbiot"): 942.5,
    ("CT", "redcap"): 3500.0, ("CU", "redcap"): 3500.0, ("CM", "redcap"): 2595.0, ("CBN", "redcap"): 773.0,
}
EIRP_DBM = {"nbiot": 55.0, "redcap": 63.0}
# relative site density per km² by county character, and the environment it implies
CHARACTERS = {
    "urban_core": (40.0, "dense_urban"),  # 区 under 300 km²
    "district": (6.0, "urban"),  # other 区
    "city": (2.0, "suburban"),  # county-level 市
    "county": (1.0, "rural"),  # 县, 旗, …
    "remote": (0.25, "rural"),  # anything over 20,000 km²
}


def county_character(name: str, area_km2: float) -> str:
    """The density class of a county from its name and area."""
    if area_km2 > 20_000:
        return "remote"
    if name.endswith("区"):
        return "urban_core" if area_km2 < 300 else "district"
    if name.endswith("市"):
        return "city"
    return "county"


def _points_in(geometry, n: int, rng) -> np.ndarray:
    """``n`` uniform random points inside a polygon (rejection in its bounding box)."""
    import shapely

    xmin, ymin, xmax, ymax = geometry.bounds
    shapely.prepare(geometry)
    out = []
    need = n
    while need > 0:
        k = max(64, int(need * 3))
        x = rng.uniform(xmin, xmax, k)
        y = rng.uniform(ymin, ymax, k)
        inside = shapely.contains_xy(geometry, x, y)
        pts = np.column_stack([x[inside], y[inside]])[:need]
        out.append(pts)
        need -= len(pts)
    return np.concatenate(out) if out else np.zeros((0, 2))


def generate_sectors(n_sectors: int, provinces=None, seed: int = 0):
    """A synthetic national submission in the sectors contract (GeoDataFrame, EPSG:4326)."""
    import geopandas as gpd
    import pandas as pd

    from coverage.boundaries import load_counties
    from coverage.grid import CHINA_ALBERS_PROJ4

    rng = np.random.default_rng(seed)
    counties = load_counties(province=provinces) if provinces else load_counties()
    area_km2 = counties.geometry.to_crs(CHINA_ALBERS_PROJ4).area.to_numpy() / 1e6
    character = [county_character(name, a) for name, a in zip(counties["name"], area_km2, strict=True)]
    weight = np.array([CHARACTERS[c][0] for c in character]) * area_km2
    n_sites = max(1, n_sectors // 3)
    per_county = rng.multinomial(n_sites, weight / weight.sum())
    lon, lat, env, county_idx = [], [], [], []
    for i in np.flatnonzero(per_county):
        pts = _points_in(counties.geometry.iloc[i], int(per_county[i]), rng)
        lon.append(pts[:, 0])
        lat.append(pts[:, 1])
        base_env = CHARACTERS[character[i]][1]
        if base_env == "rural":  # county towns: a share of a rural county's sites are suburban
            env.append(np.where(rng.random(len(pts)) < 0.3, "suburban", "rural"))
        else:
            env.append(np.full(len(pts), base_env, dtype=object))
        county_idx.append(np.full(len(pts), i))
    site_lon, site_lat = np.concatenate(lon), np.concatenate(lat)
    site_env = np.concatenate(env).astype(object)
    n_sites = site_lon.size
    ops = np.array(list(OPERATOR_SHARES))
    site_op = rng.choice(ops, n_sites, p=list(OPERATOR_SHARES.values()))
    # CBN has no NB-IoT network: its sites are RedCap; the others split between the two
    site_tech = np.where((site_op == "CBN") | (rng.random(n_sites) < 0.45), "redcap", "nbiot")
    turn = rng.uniform(0, 120, n_sites)
    site_height = np.where(site_env == "rural", rng.uniform(30, 45, n_sites), rng.uniform(20, 35, n_sites))
    per_site = 3
    idx = np.repeat(np.arange(n_sites), per_site)
    k = np.tile(np.arange(per_site), n_sites)
    tech = site_tech[idx]
    op = site_op[idx]
    freq = np.array([BANDS_MHZ[(o, t)] for o, t in zip(op, tech, strict=True)])
    frame = pd.DataFrame({
        "operator": op,
        "site_id": [f"S{i:07d}" for i in idx],
        "cell_id": [f"S{i:07d}-{j}" for i, j in zip(idx, k, strict=True)],
        "tech": tech,
        "freq_mhz": freq,
        "eirp_dbm": np.where(tech == "nbiot", EIRP_DBM["nbiot"], EIRP_DBM["redcap"]),
        "height_m": np.round(site_height[idx], 1),
        "azimuth_deg": np.round((turn[idx] + 120.0 * k) % 360.0, 1),
        "beamwidth_deg": 65.0,
        "downtilt_deg": np.where(site_env[idx] == "rural", 3.0, 6.0),
        "environment": site_env[idx],
        "source_file": "national_synthetic.parquet",
        "source_row": np.arange(idx.size) + 1,
    })
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(site_lon[idx], site_lat[idx]), crs="EPSG:4326")


class PeakMemory:
    """Peak resident set of this process and of its child processes (summed), sampled."""

    def __init__(self, interval_s: float = 0.1):
        import psutil

        self._proc = psutil.Process()
        self.interval_s = interval_s
        self.self_peak = self.children_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        import psutil

        self.self_peak = max(self.self_peak, self._proc.memory_info().rss)
        total = 0
        for child in self._proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        self.children_peak = max(self.children_peak, total)

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval_s)

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()


def _size_mib(paths) -> float:
    return sum(p.stat().st_size for p in paths if p.is_file()) / 2**20


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sectors", type=int, default=1_500_000, help="sectors to generate (default 1,500,000)")
    parser.add_argument("--province", default=None,
                        help="only these provinces: codes or names, comma-separated (e.g. 44 or 44,45)")
    parser.add_argument("--resolution", type=float, default=100.0, help="pixel size, m (default 100)")
    parser.add_argument("--scheduler", default="processes", help="processes, threads, synchronous or tcp://HOST:PORT")
    parser.add_argument("--tile", type=int, default=None, help="tile edge, px (default: the config's 512)")
    parser.add_argument("--out", default=None, help="run directory (default: a temporary one, removed)")
    parser.add_argument("--stages", default="predict,aggregate,publish",
                        help="stages after generating, comma-separated (default predict,aggregate,publish)")
    parser.add_argument("--aggregate-workers", type=int, default=None,
                        help="processes polygonising the gaps (default: one per CPU)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--terrain", action="store_true",
                        help="predict over the embedded national 30\u2033 DEM (default: flat earth)")
    parser.add_argument("--clutter", action="store_true",
                        help="and with the embedded MODIS land cover (default: the sectors' own environments)")
    parser.add_argument("--json", default=None, help="append the figures as one JSON line to this file")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = set(stages) - {"predict", "aggregate", "publish"}
    if unknown or not stages:
        parser.error(f"--stages: predict, aggregate, publish (not {sorted(unknown)})")
    if "predict" not in stages and args.out is None:
        parser.error("--stages without predict needs --out: a run directory that holds the rasters")

    from coverage.layout import RunLayout

    provinces = args.province.split(",") if args.province else None
    tmp = None
    if args.out is None:
        tmp = tempfile.TemporaryDirectory(prefix="covmap-national-")
        out = Path(tmp.name)
    else:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
    layout = RunLayout(out)
    rows = []
    figures = {"sectors_requested": args.sectors, "province": args.province, "resolution_m": args.resolution,
               "scheduler": args.scheduler, "terrain": args.terrain,
               "dem": "default" if args.terrain else "none", "clutter": "default" if args.clutter else "none",
               "load_before": os.getloadavg()}

    if "predict" in stages:
        _generate_and_predict(args, provinces, layout, rows, figures)
    else:
        figures["sectors"] = len(read_parquet_rows(layout.sectors))
    _aggregate_and_publish(args, stages, out, layout, rows, figures)

    figures["load_after"] = os.getloadavg()
    _print_table(args, rows, figures)
    if args.json:
        with open(args.json, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(figures) + "\n")
    if tmp is not None:
        tmp.cleanup()
    return figures


def _inside_default_dem(sectors, figures):
    """The sectors on the embedded DEM: it ends at 6.31° N, short of the Nansha islands' southern reefs.

    covmap refuses sites outside the DEM (as it must); the bench drops them and says how many.
    """
    from coverage.terrain.data import open_default_dem

    lon_min, lat_min, lon_max, lat_max = open_default_dem().info()["bounds_lonlat"]
    lon, lat = sectors.geometry.x.to_numpy(), sectors.geometry.y.to_numpy()
    inside = (lon >= lon_min) & (lon <= lon_max) & (lat >= lat_min) & (lat <= lat_max)
    figures["sectors_outside_dem"] = int((~inside).sum())
    if not inside.all():
        print(f"bench: {int((~inside).sum())} generated sectors lie outside the embedded DEM "
              f"({lat_min:.2f}-{lat_max:.2f} °N, {lon_min:.2f}-{lon_max:.2f} °E) and are left out", file=sys.stderr)
    return sectors[inside].reset_index(drop=True)


def read_parquet_rows(path):
    import pyarrow.parquet as pq

    return range(pq.ParquetFile(path).metadata.num_rows)


def _generate_and_predict(args, provinces, layout, rows, figures):
    from coverage.predict import predict

    out = layout.root
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        sectors = generate_sectors(args.sectors, provinces, args.seed)
        if args.terrain:
            sectors = _inside_default_dem(sectors, figures)
        sectors.to_parquet(layout.sectors)
        elapsed = time.perf_counter() - t0
    figures["sectors"] = len(sectors)
    rows.append(("generate", elapsed, mem, f"{len(sectors):,} sectors, {sectors['site_id'].nunique():,} sites",
                 _size_mib([layout.sectors])))

    tiles = {"total": 0}
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        report = predict(layout.sectors, out, resolution_m=args.resolution, scheduler=args.scheduler,
                         tile_size_px=args.tile, progress=lambda done, total: tiles.update(total=total),
                         dem=figures["dem"], clutter=figures["clutter"])
        elapsed = time.perf_counter() - t0
    t = report["timings_s"]
    grid = report["grid"]
    evals = report["evaluations"]
    capped = {tech: e["sectors_capped_at_horizon"] for tech, e in report["techs"].items()}
    rasters = sorted(layout.raster_dir.glob("*.tif"))
    figures.update(predict_s=elapsed, evaluations=evals, tiles=tiles["total"], timings_s=t,
                   grid_px=[grid["width"], grid["height"]], capped=capped,
                   predict_self_peak_mib=mem.self_peak / 2**20, predict_workers_peak_mib=mem.children_peak / 2**20,
                   rasters_mib=_size_mib(rasters))
    if "terrain" in report:
        terrain = report["terrain"]
        figures["terrain_report"] = {
            "dem_sha256": (terrain.get("dem") or {}).get("sha256"),
            "dem_filled_share": (terrain.get("dem") or {}).get("filled_share"),
            "clutter_sha256": (terrain.get("clutter") or {}).get("sha256"),
            "lattice_step_m": terrain.get("lattice_step_m"),
        }
    detail = (f"grid {grid['width']:,} x {grid['height']:,} px, {tiles['total']:,} tiles, "
              f"{evals / max(t['tiles'], 1e-9) / 1e6:.1f} M eval/s in tiles ({evals:,}), "
              f"{tiles['total'] / max(t['tiles'], 1e-9):.1f} tiles/s; "
              f"prepare {t['prepare']:.1f} s, tiles {t['tiles']:.1f} s, cog {t['cog']:.1f} s; "
              f"capped at horizon {capped}")
    rows.append(("predict", elapsed, mem, detail, figures["rasters_mib"]))


def _aggregate_and_publish(args, stages, out, layout, rows, figures):
    if "aggregate" in stages:
        from coverage.aggregate import aggregate

        with PeakMemory() as mem:
            t0 = time.perf_counter()
            result = aggregate(out, workers=args.aggregate_workers)
            elapsed = time.perf_counter() - t0
        stats = sorted(layout.stats_dir.glob("*"))
        figures.update(aggregate_s=elapsed, aggregate_peak_mib=mem.self_peak / 2**20, stats_mib=_size_mib(stats))
        rows.append(("aggregate", elapsed, mem, f"{result.get('counties', '?')} counties with a sector, gaps",
                     figures["stats_mib"]))

    if "publish" in stages:
        from coverage.publish import write_site

        site = out / "site"
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            written = write_site(out, site, edition="public", overwrite=True)
            elapsed = time.perf_counter() - t0
        pages = list(site.rglob("*.html"))
        figures.update(publish_s=elapsed, publish_peak_mib=mem.self_peak / 2**20,
                       site_mib=_size_mib(site.rglob("*")), pages=len(pages))
        rows.append(("publish", elapsed, mem, f"{len(written.get('pages', pages)):,} pages, public edition",
                     figures["site_mib"]))
    stage_rows = [row for row in rows if row[0] != "generate"]
    figures["build_s"] = sum(row[1] for row in stage_rows)
    figures["build_peak_mib"] = max(row[2].self_peak + row[2].children_peak for row in stage_rows) / 2**20


def _print_table(args, rows, figures):
    print(f"covmap national bench: {figures['sectors']:,} sectors, province {args.province or 'all'}, "
          f"{args.resolution:g} m, scheduler {args.scheduler}, "
          f"{'terrain (default DEM)' if args.terrain else 'flat earth'}"
          f"{', land cover (default)' if args.clutter else ''}, {os.cpu_count()} CPUs, "
          f"load average before {figures['load_before'][0]:.2f}, after {figures['load_after'][0]:.2f}")
    print(f"{'stage':<10} {'wall s':>8} {'peak RSS MiB':>13} {'workers MiB':>12} {'output MiB':>11}  detail")
    for name, wall, m, detail, size in rows:
        print(f"{name:<10} {wall:8.1f} {m.self_peak / 2**20:13.0f} {m.children_peak / 2**20:12.0f} "
              f"{size:11.1f}  {detail}")
    print(f"{'build':<10} {figures['build_s']:8.1f} {figures['build_peak_mib']:13.0f} {'':12} {'':11}  "
          f"{' + '.join(row[0] for row in rows if row[0] != 'generate')} "
          "(peak: this process + workers, largest stage)")


if __name__ == "__main__":
    main()

"""Where a terrain tile's time goes: national-density tiles of one region, flat and over terrain, one thread.

Generates the national synthetic submission of ``bench/national.py`` (1.5 M sectors,
seed 0; cached under ``--cache``), keeps the sectors inside ``--box`` (lon/lat;
default Fujian and its coast) so that the density is the national run's, prepares
each technology flat and with the embedded DEM (``dem="default"``; ``--clutter``
adds the embedded land cover), and times ``--tiles`` random tiles of 512 px at
100 m per technology whose centre lies at least ``--margin-km`` inside the box, in
this process on one thread:

* ``flat``: :func:`coverage.predict.predict_tile` per operator (the flat kernel);
* ``lattice``: :func:`coverage.predict.terrain_tile.tile_terrain` (DEM window, pixel ground);
* ``sweep``: :func:`coverage.predict.terrain_tile.site_tables` per operator (the per-site sweeps);
* ``kernel``: the rest of :func:`~coverage.predict.terrain_tile.predict_tile_terrain`.

It prints milliseconds per tile (mean over the tiles, after one warm-up tile), sweep
cells and samples, and kernel evaluations, so that a change to the terrain tile can
be compared with the one before it in one session (this VM's speed drifts by a third
between hours: compare runs made one after the other).

Usage::

    .venv/bin/python bench/terrain_tiles.py                 # 20 tiles per technology
    .venv/bin/python bench/terrain_tiles.py --tiles 40 --tech nbiot
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TILE_PX = 512
RESOLUTION_M = 100.0


def national_sectors(cache: Path, n_sectors: int, seed: int):
    import geopandas as gpd
    from national import generate_sectors

    path = cache / f"national_{n_sectors}_seed{seed}.parquet"
    if path.exists():
        return gpd.read_parquet(path)
    cache.mkdir(parents=True, exist_ok=True)
    sectors = generate_sectors(n_sectors, None, seed)
    sectors.to_parquet(path)
    return sectors


def candidates(arrays, col0: int, row0: int) -> np.ndarray:
    """Rows whose reach disc meets the tile's box (the test of coverage.grid.sectors_by_tile)."""
    from coverage.grid import sectors_meeting_square

    reach = np.maximum(arrays["reach_m"], arrays.get("site_reach_m", arrays["reach_m"]))
    return sectors_meeting_square(arrays["x_m"], arrays["y_m"], reach, col0, row0, TILE_PX, RESOLUTION_M)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=20, help="tiles timed per technology (default 20)")
    parser.add_argument("--tech", choices=("nbiot", "redcap", "both"), default="both")
    parser.add_argument("--box", type=float, nargs=4, default=(115.5, 23.3, 120.8, 28.4),
                        metavar=("LON0", "LAT0", "LON1", "LAT1"), help="sectors kept (default Fujian)")
    parser.add_argument("--margin-km", type=float, default=60.0, help="tile centres this far inside the box")
    parser.add_argument("--clutter", action="store_true", help="also the embedded land cover")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/covmap-bench"))
    parser.add_argument("--seed", type=int, default=1, help="which tiles (default 1)")
    args = parser.parse_args(argv)

    from numba import set_num_threads

    from coverage.config import load_config
    from coverage.grid import CHINA_ALBERS_PROJ4
    from coverage.predict.kernel import predict_tile
    from coverage.predict.sectors import prepare_sectors
    from coverage.predict.terrain_sites import resolve_terrain, tech_terrain
    from coverage.predict.terrain_tile import predict_tile_terrain, site_tables, tile_terrain

    set_num_threads(1)
    sectors = national_sectors(args.cache, 1_500_000, 0)
    lon0, lat0, lon1, lat1 = args.box
    lon, lat = sectors.geometry.x.to_numpy(), sectors.geometry.y.to_numpy()
    sectors = sectors[(lon >= lon0) & (lon <= lon1) & (lat >= lat0) & (lat <= lat1)].reset_index(drop=True)
    config = load_config(None)
    setup = resolve_terrain("default", "default" if args.clutter else None, config, RESOLUTION_M)
    techs = ("nbiot", "redcap") if args.tech == "both" else (args.tech,)
    rng = np.random.default_rng(args.seed)
    import geopandas as gpd
    from shapely.geometry import Point, box

    inner = gpd.GeoSeries([box(lon0, lat0, lon1, lat1)], crs="EPSG:4326").to_crs(CHINA_ALBERS_PROJ4)
    inner = inner.buffer(-1000.0 * args.margin_km).iloc[0]
    print(f"{len(sectors):,} sectors in the box; lattice step {setup.lattice_step_m:g} m; one thread")
    for tech in techs:
        rows = sectors[sectors["tech"] == tech].reset_index(drop=True)
        env = rows["environment"].to_numpy(dtype=object)
        t0 = time.perf_counter()
        flat = prepare_sectors(rows, tech, config, env)
        terr = prepare_sectors(rows, tech, config, env, terrain=setup)
        prepare_s = time.perf_counter() - t0
        inputs = tech_terrain(setup, config.profiles[tech])
        ops = terr.operator_index
        flat_ops = flat.operator_index
        x0, y0, x1, y1 = inner.bounds
        picked = []
        while len(picked) < args.tiles + 1:
            x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
            if not inner.contains(Point(x, y)):
                continue
            col0 = int(math.floor(x / RESOLUTION_M / TILE_PX)) * TILE_PX
            row0 = int(math.floor(-y / RESOLUTION_M / TILE_PX)) * TILE_PX
            if candidates(terr.arrays, col0, row0).size:
                picked.append((col0, row0))
        sums = dict(flat=0.0, lattice=0.0, sweep=0.0, kernel=0.0, cells=0, samples=0, evals=0, flat_evals=0,
                    sites=0)
        for n, (col0, row0) in enumerate(picked):
            warm = n == 0
            cand = candidates(flat.arrays, col0, row0)
            t = time.perf_counter()
            flat_evals = 0
            for k in np.unique(flat_ops[cand]):
                mine = cand[flat_ops[cand] == k]
                subset = {name: v[mine] for name, v in flat.arrays.items()}
                flat_evals += predict_tile(subset, col0, row0, TILE_PX, TILE_PX, RESOLUTION_M, flat.ue_height_m)[2]
            t_flat = time.perf_counter() - t
            cand = candidates(terr.arrays, col0, row0)
            subset_all = {name: v[cand] for name, v in terr.arrays.items()}
            t = time.perf_counter()
            lattice = tile_terrain(setup, inputs, col0, row0, TILE_PX, subset_all)
            t_lattice = time.perf_counter() - t
            t_sweep = t_kernel = 0.0
            cells = samples = evals = sites = 0
            for k in np.unique(ops[cand]):
                mine = cand[ops[cand] == k]
                subset = {name: v[mine] for name, v in terr.arrays.items()}
                t = time.perf_counter()
                tables = site_tables(setup, lattice, subset, col0, row0, TILE_PX, terr.ue_height_m)
                t_sweep += time.perf_counter() - t
                cells += int(tables.values_db.size)
                samples += tables.samples
                sites += int(tables.ni.size)
                t = time.perf_counter()
                _, _, e, _ = predict_tile_terrain(subset, setup, inputs, lattice, col0, row0, TILE_PX,
                                                  terr.ue_height_m, tables=tables)
                t_kernel += time.perf_counter() - t
                evals += e
            if warm:
                continue
            for key, value in (("flat", t_flat), ("lattice", t_lattice), ("sweep", t_sweep),
                               ("kernel", t_kernel), ("cells", cells), ("samples", samples),
                               ("evals", evals), ("flat_evals", flat_evals), ("sites", sites)):
                sums[key] += value
        n = args.tiles
        terrain_ms = 1000 * (sums["lattice"] + sums["sweep"] + sums["kernel"]) / n
        print(f"{tech}: prepare {prepare_s:.1f} s; per tile (mean of {n}): flat {1000 * sums['flat'] / n:.1f} ms "
              f"({sums['flat_evals'] / n / 1e6:.2f} M evals) | terrain {terrain_ms:.1f} ms = lattice "
              f"{1000 * sums['lattice'] / n:.1f} + sweep {1000 * sums['sweep'] / n:.1f} "
              f"({sums['sites'] / n:.0f} site tables, {sums['cells'] / n / 1e3:.0f} k cells, "
              f"{sums['samples'] / n / 1e3:.0f} k samples, "
              f"{1e9 * sums['sweep'] / max(sums['cells'], 1):.0f} ns/cell) + kernel "
              f"{1000 * sums['kernel'] / n:.1f} ({sums['evals'] / n / 1e6:.2f} M evals); "
              f"ratio {terrain_ms / max(1000 * sums['flat'] / n, 1e-9):.2f}")


if __name__ == "__main__":
    main()

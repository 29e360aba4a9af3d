"""Benchmark of the prediction kernel: numba vs the numpy reference, and a small run.

Prints pixel × sector evaluations per second of the numba kernel
(:func:`coverage.predict.predict_tile`) and of the plain-numpy reference
(``reference_predict_tile_numpy`` in ``tests/test_predict.py``) on the same
inputs, the largest difference between them, and peak memory (tracemalloc peak
of each call, and the process's maximum resident set size). With ``--run`` it
also times a whole :func:`coverage.predict.predict` over synthetic sectors.

Every sector reaches every pixel of the tile, so both sides evaluate exactly
pixels × sectors pairs.

Usage::

    .venv/bin/python bench/predict.py                      # 256 x 256 px, 100 sectors
    .venv/bin/python bench/predict.py --tile 512 --sectors 200 --run 2000
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from test_predict import make_sectors, random_sectors, reference_predict_tile_numpy  # noqa: E402

from coverage.predict import predict, predict_tile  # noqa: E402


def _timed(fn, *args):
    tracemalloc.start()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, elapsed, cpu, peak


def bench_kernel(tile_px: int, n_sectors: int, resolution_m: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    col0, row0 = 9_000, -34_000
    cx, cy = (col0 + tile_px / 2) * resolution_m, -(row0 + tile_px / 2) * resolution_m
    sectors = random_sectors(rng, n_sectors, cx, cy, spread_m=tile_px * resolution_m / 2)
    sectors["reach_m"][:] = 4.0 * tile_px * resolution_m  # every sector reaches every pixel
    args = (sectors, col0, row0, tile_px, tile_px, resolution_m, 1.5)
    predict_tile(sectors, col0, row0, 16, 16, resolution_m, 1.5)  # load the compiled kernel
    pairs = tile_px * tile_px * n_sectors
    # block_px=0: every pair evaluated, the like-for-like rate against the reference
    (rsrp, _, n_numba), t_numba, cpu_numba, mem_numba = _timed(predict_tile, *args, 0)
    (ref, _, n_ref), t_ref, cpu_ref, mem_ref = _timed(reference_predict_tile_numpy, *args)
    (pruned, _, n_pruned), t_pruned, cpu_pruned, mem_pruned = _timed(predict_tile, *args)
    assert n_numba == n_ref == pairs, (n_numba, n_ref, pairs)
    assert np.array_equal(pruned, rsrp)
    diff = float(np.max(np.abs(rsrp.astype(np.float64) - ref)))
    print(f"tile {tile_px} x {tile_px} px at {resolution_m:g} m, {n_sectors} sectors: "
          f"{pairs:,} pixel x sector pairs")
    for label, wall, cpu, mem in (("numba kernel   ", t_numba, cpu_numba, mem_numba),
                                  ("numpy reference", t_ref, cpu_ref, mem_ref)):
        print(f"  {label} {wall:7.3f} s wall {pairs / wall / 1e6:7.1f} M evaluations/s "
              f"({pairs / cpu / 1e6:.1f} M/s of CPU time, one thread); peak traced {mem / 2**20:6.1f} MiB")
    print(f"  speed-up {t_ref / t_numba:.1f}x; largest |numba - numpy| = {diff:.2e} dB")
    print(f"  with block bounds (default): {t_pruned:7.3f} s wall, {n_pruned:,} pairs evaluated "
          f"({n_pruned / pairs:.1%}), same pixels; {t_numba / t_pruned:.1f}x faster than every pair")


def bench_run(n_sectors: int, resolution_m: float, scheduler: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    side_deg = 0.02 * np.sqrt(n_sectors)  # ~ one site per 2 km x 2 km
    rows = [
        {"lon": 113.0 + rng.uniform(0, side_deg), "lat": 23.0 + rng.uniform(0, side_deg),
         "operator": ("CT", "CM", "CU", "CBN")[i % 4], "azimuth_deg": float(rng.choice([0.0, 120.0, 240.0])),
         "environment": "urban", "downtilt_deg": 6.0}
        for i in range(n_sectors)
    ]
    sectors = make_sectors(rows)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        report = predict(sectors, out, techs=("nbiot",), resolution_m=resolution_m, scheduler=scheduler)
        elapsed = time.perf_counter() - t0
    grid = report["grid"]
    timings = ", ".join(f"{k} {v:.2f}" for k, v in report["timings_s"].items())
    print(f"predict: {n_sectors} NB-IoT sectors (4 operators), {grid['width']} x {grid['height']} px "
          f"at {resolution_m:g} m, scheduler {scheduler}: {elapsed:.1f} s, "
          f"{report['evaluations'] / report['timings_s'].get('tiles', elapsed) / 1e6:.1f} M evaluations/s "
          f"in tiles ({report['evaluations']:,}); timings_s: {timings}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=256, help="tile edge, pixels (default 256)")
    parser.add_argument("--sectors", type=int, default=100, help="sectors in the kernel test (default 100)")
    parser.add_argument("--resolution", type=float, default=100.0, help="pixel size, m (default 100)")
    parser.add_argument("--run", type=int, default=0, help="also run predict() over this many sectors")
    parser.add_argument("--scheduler", default="synchronous", help="scheduler of --run (default synchronous)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    bench_kernel(args.tile, args.sectors, args.resolution, args.seed)
    if args.run:
        bench_run(args.run, args.resolution, args.scheduler, args.seed)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {rss_mib:.0f} MiB")


if __name__ == "__main__":
    main()

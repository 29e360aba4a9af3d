"""H3 open data at scale: time and peak memory of ``coverage.h3hex.write_h3`` on a large synthetic class raster.

Builds ``--size`` × ``--size`` pixels at 100 m in China Albers (default 8,192² =
671,000 km², 7 % of China's land) with ``--layers`` coverage layers of one
technology ("all" and operators): sites scattered with an urban/rural mix, each
layer covering discs around its own share of the sites (deep inside, outdoor
around), so the coverage edges are as ragged as a real RedCap map's. The land is a
grid of 30 km square counties (the counties' borders do not make hexagons mixed;
the coast does: the raster's outer 5 % is sea). Then ``write_h3`` runs once and
one line is printed: hex-9s written, wall seconds, peak resident memory of the
process, hex-9s per second and the extrapolation to China's 9.6 M km² (the walk is
linear in area: blocks are independent).

Usage::

    .venv/bin/python bench/h3_national.py                 # ~8,192² px, 5 layers
    .venv/bin/python bench/h3_national.py --size 4096 --layers 3 --work /tmp/h3bench
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from peak_memory import peak_rss_mib  # noqa: E402  (bench/ is the script's folder)

ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +x_0=0 +y_0=0 +datum=WGS84 +units=m"
RES_M = 100.0
CHINA_LAND_KM2 = 9.6e6
COUNTY_KM = 30.0


def synthetic_run(root: Path, size: int, n_layers: int, seed: int = 7):
    """Class rasters, counties and the Layer list of a synthetic run in ``root``."""
    import geopandas as gpd
    import rasterio
    from rasterio.transform import from_origin
    from scipy import ndimage
    from shapely.geometry import box

    from coverage.layout import RunLayout
    from coverage.zonal import Layer

    rng = np.random.default_rng(seed)
    layout = RunLayout(root)
    layout.raster_dir.mkdir(parents=True, exist_ok=True)
    (root / "manifest.json").write_text("{}", encoding="utf-8")
    west, north = 1_000_000.0, 3_500_000.0  # about 115 °E, 31 °N
    area_km2 = (size * RES_M / 1000.0) ** 2
    # ~1 site per 4 km² in towns (a tenth of the area), 1 per 40 km² elsewhere
    n_town = int(area_km2 * 0.1 / 4)
    n_rural = int(area_km2 * 0.9 / 40)
    towns = rng.integers(0, size, size=(max(1, n_town // 200), 2))
    town_sites = (towns[rng.integers(0, len(towns), n_town)] + rng.normal(0, 40, (n_town, 2))).astype(int)
    rural_sites = rng.integers(0, size, size=(n_rural, 2))
    sites = np.clip(np.vstack([town_sites, rural_sites]), 0, size - 1)
    layers = []
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint8", crs=ALBERS,
                   transform=from_origin(west, north, RES_M, RES_M), nodata=255, tiled=True, blockxsize=512,
                   blockysize=512, compress="deflate")
    sea = max(1, size // 20)
    for i in range(n_layers):
        own = sites if i == 0 else sites[rng.random(len(sites)) < 0.35]
        marks = np.ones((size, size), dtype=bool)
        marks[own[:, 0], own[:, 1]] = False
        dist_px = ndimage.distance_transform_edt(marks)  # float64: size² × 8 bytes while building
        classes = np.where(dist_px < 6, 2, np.where(dist_px < 15, 1, 0)).astype(np.uint8)
        del dist_px
        classes[:sea] = 255
        op = "all" if i == 0 else f"O{i}"
        path = layout.raster_dir / f"x_{op.lower()}_class.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(classes, 1)
        layers.append(Layer("redcap", op, path))
    n = int(np.ceil(size * RES_M / (COUNTY_KM * 1000)))
    step = COUNTY_KM * 1000
    boxes = [box(west + c * step, north - (r + 1) * step, min(west + (c + 1) * step, west + size * RES_M),
                 north - r * step) for r in range(n) for c in range(n)]
    counties = gpd.GeoDataFrame({"code": [f"{100000 + k}" for k in range(len(boxes))]}, geometry=boxes,
                                crs=ALBERS).to_crs(4326)
    return layout, layers, counties, area_km2 * (1 - sea / size)



def _measure(work: Path, block: int | None, workers: int = 1) -> dict:
    """write_h3 on the run saved in ``work`` (this process holds nothing else)."""
    import pickle

    from coverage.h3hex import DEFAULT_BLOCK_PX, write_h3

    layout, layers, counties, land_km2 = pickle.loads((work / "run.pickle").read_bytes())
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    result = write_h3(layout, layers, counties, block_px=block or DEFAULT_BLOCK_PX, workers=workers)
    seconds = time.perf_counter() - started
    files = result["files"]["redcap"]
    hexes = result["hexagons"]["redcap"]
    return {
        "workers": workers, "land_km2": round(land_km2), "hex9": hexes, "write_h3_s": round(seconds, 1),
        "hex9_per_s": round(hexes / seconds), "peak_rss_mib": round(peak_rss_mib()),
        "rss_before_mib": round(rss_before), "china_extrapolated_s": round(seconds * CHINA_LAND_KM2 / land_km2),
        "output_bytes": {Path(p).name: Path(p).stat().st_size for p in (files.res9_parquet, files.res9_csv,
                                                                          files.res8_parquet, files.res8_csv)
                         if Path(p).exists()},  # a CSV only where it fits a spreadsheet ([h3] csv)
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=8192, help="raster side, pixels of 100 m")
    parser.add_argument("--layers", type=int, default=5, help="coverage layers of the technology")
    parser.add_argument("--block", type=int, default=None, help="block side, pixels (default: the library's)")
    parser.add_argument("--workers", type=int, default=1, help="processes computing the blocks (default 1)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the run (default: a temporary one)")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="h3bench-"))
    if args.measure_only:
        print(json.dumps(_measure(work, args.block, args.workers)))
        return 0

    import os
    import pickle
    import subprocess

    started = time.perf_counter()
    run = synthetic_run(work / "run", args.size, args.layers)
    (work / "run.pickle").write_bytes(pickle.dumps(run))
    generated_s = time.perf_counter() - started
    # measured in a fresh process, so the peak memory is write_h3's, not the generator's
    command = [sys.executable, __file__, "--measure-only", "--work", str(work)] + \
        (["--block", str(args.block)] if args.block else []) + ["--workers", str(args.workers)]
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    figures = {"size_px": args.size, "layers": args.layers, "generate_s": round(generated_s, 1),
               **json.loads(child.stdout.strip().splitlines()[-1]), "load_avg_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

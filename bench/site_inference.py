"""How near to the real sites an outsider gets from the public county overlays alone.

The outsider reads the published site (the public edition, ``maps/`` of ``covmap build
--sample``): each county page's class overlay, a web-mercator PNG with its bounds.
Covered cells (outdoor or deep) form connected blobs; a small blob standing alone in
uncovered land is most likely one site's footprint, so its centroid is a guess at the
site. The insider's half then scores the guesses: the distance from each centroid to
the nearest real site of that technology (``sectors.parquet``), against random points
inside the same counties' overlays.

Usage::

    .venv/bin/python bench/site_inference.py [--site maps] [--sectors runs/sample/sectors.parquet]
        [--tech redcap] [--max-km2 1] [--republish 100,250,1000 --run runs/sample]

``--republish`` publishes the run's public edition again at each cell size into a
temporary folder and measures each (``[publish] resolution_m`` of the configuration).
Prints one line per site measured and one JSON line per resolution.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EARTH_RADIUS_M = 6371008.8  # IUGG mean radius
WEB_MERCATOR_RADIUS_M = 6378137.0
OVERLAY = re.compile(r'var (\w+) = L\.imageOverlay\(\s*"data:image/png;base64,([A-Za-z0-9+/=]+)",\s*'
                     r"\[\[\s*([-\d.]+),\s*([-\d.]+)\],\s*\[\s*([-\d.]+),\s*([-\d.]+)\]\]", re.S)
TECH_LAYER = re.compile(r'covmap\.techLayer\(\w+, "(\w+)", (\w+)\)')
# alpha of the overlay's classes (coverage.publish.layers.OVERLAY_RGBA): none 110, outdoor 170, deep 190
COVERED_ALPHA = (170, 190)


def read_overlays(site_dir: Path, tech: str) -> list[dict]:
    """Every county page's class overlay of ``tech``: RGBA array and [[s, w], [n, e]] bounds."""
    import matplotlib.image

    found = []
    for page in sorted((site_dir / "counties").glob("*.html")):
        text = page.read_text(encoding="utf-8")
        layer_of = {name: layer_tech for layer_tech, name in TECH_LAYER.findall(text)}
        for name, png, south, west, north, east in OVERLAY.findall(text):
            if layer_of.get(name) != tech:
                continue
            rgba = matplotlib.image.imread(io.BytesIO(base64.b64decode(png)), format="png")
            alpha = np.rint(rgba[..., 3] * 255).astype(np.uint8)
            found.append({"page": page.name, "alpha": alpha,
                          "bounds": tuple(float(v) for v in (south, west, north, east))})
    return found


def _cell_lonlat(bounds, rows: np.ndarray, cols: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of (fractional) cell centres of a web-mercator overlay."""
    south, west, north, east = bounds
    height, width = shape
    lon = west + (cols + 0.5) / width * (east - west)
    y_n = math.log(math.tan(math.pi / 4 + math.radians(north) / 2))
    y_s = math.log(math.tan(math.pi / 4 + math.radians(south) / 2))
    y = y_n - (rows + 0.5) / height * (y_n - y_s)
    lat = np.degrees(2 * np.arctan(np.exp(y)) - math.pi / 2)
    return lon, lat


def small_blob_centroids(overlays: list[dict], max_cells: int) -> tuple[np.ndarray, int]:
    """Centroids (lon, lat) of the covered blobs of at most ``max_cells`` cells (8-connected), and
    the number of blobs of every size."""
    from scipy import ndimage

    points, n_blobs = [], 0
    for overlay in overlays:
        covered = np.isin(overlay["alpha"], COVERED_ALPHA)
        labels, n = ndimage.label(covered, structure=np.ones((3, 3), dtype=bool))
        n_blobs += n
        if n == 0:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        small = np.flatnonzero(sizes <= max_cells) + 1
        if len(small) == 0:
            continue
        centres = np.array(ndimage.center_of_mass(covered, labels, small))
        lon, lat = _cell_lonlat(overlay["bounds"], centres[:, 0], centres[:, 1], covered.shape)
        points.append(np.column_stack([lon, lat]))
    return (np.vstack(points) if points else np.empty((0, 2))), n_blobs


def random_points_in_overlays(overlays: list[dict], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniform over the overlays' county cells (any class), by cell area."""
    cells = []
    for overlay in overlays:
        rows, cols = np.nonzero(overlay["alpha"] > 0)
        lon, lat = _cell_lonlat(overlay["bounds"], rows, cols, overlay["alpha"].shape)
        cells.append(np.column_stack([lon, lat, np.cos(np.radians(lat)) ** 2]))  # mercator cell area ∝ cos²
    cells = np.vstack(cells)
    pick = rng.choice(len(cells), size=n, p=cells[:, 2] / cells[:, 2].sum())
    jitter = rng.uniform(-0.5, 0.5, size=(n, 2)) * _cell_size_deg(overlays[0])
    return cells[pick, :2] + jitter


def _cell_size_deg(overlay: dict) -> np.ndarray:
    south, west, north, east = overlay["bounds"]
    height, width = overlay["alpha"].shape
    return np.array([(east - west) / width, (north - south) / height])


def nearest_site_m(points: np.ndarray, sites: np.ndarray) -> np.ndarray:
    """Great-circle-free local distance (equirectangular at the sites' mean latitude, <0.1 % here)."""
    from scipy.spatial import cKDTree

    lat0 = math.radians(float(np.mean(sites[:, 1])))

    def metres(lonlat):
        return np.column_stack([np.radians(lonlat[:, 0]) * math.cos(lat0), np.radians(lonlat[:, 1])]) * EARTH_RADIUS_M

    distance, _ = cKDTree(metres(sites)).query(metres(points))
    return distance


def real_sites(sectors_path: Path, tech: str) -> np.ndarray:
    import geopandas as gpd

    sectors = gpd.read_parquet(sectors_path)
    sectors = sectors[sectors["tech"] == tech].drop_duplicates(["operator", "site_id"])
    return np.column_stack([sectors.geometry.x, sectors.geometry.y])


def measure(site_dir: Path, sites: np.ndarray, tech: str, max_km2: float, seed: int) -> dict:
    overlays = read_overlays(site_dir, tech)
    if not overlays:
        raise SystemExit(f"{site_dir}: no {tech} county overlay found (is it a published covmap site?)")
    cell_m = _cell_ground_m(overlays[0])
    max_cells = max(1, round(max_km2 / (cell_m / 1000.0) ** 2))  # the same blob area at every cell size
    guesses, n_blobs = small_blob_centroids(overlays, max_cells)
    rng = np.random.default_rng(seed)
    random = random_points_in_overlays(overlays, max(10_000, 20 * len(guesses)), rng)
    d_guess = nearest_site_m(guesses, sites) if len(guesses) else np.array([np.nan])
    d_random = nearest_site_m(random, sites)

    def q(values, p):
        return round(float(np.nanpercentile(values, p)), 0)

    return {
        "site": str(site_dir), "tech": tech, "cell_m": round(cell_m, 0), "counties": len(overlays),
        "real_sites": int(len(sites)), "blobs": n_blobs, "small_blobs": int(len(guesses)),
        "max_km2": max_km2, "max_cells": max_cells,
        "guess_to_site_m": {"p25": q(d_guess, 25), "median": q(d_guess, 50), "p75": q(d_guess, 75)},
        "random_to_site_m": {"p25": q(d_random, 25), "median": q(d_random, 50), "p75": q(d_random, 75)},
        "guesses_within_250_m": round(float(np.mean(d_guess <= 250.0)), 3) if len(guesses) else None,
        "random_within_250_m": round(float(np.mean(d_random <= 250.0)), 3),
    }


def _cell_ground_m(overlay: dict) -> float:
    south, west, north, east = overlay["bounds"]
    width = overlay["alpha"].shape[1]
    return math.radians(east - west) / width * WEB_MERCATOR_RADIUS_M * math.cos(math.radians((south + north) / 2))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=Path("maps"), help="published public site [maps]")
    parser.add_argument("--sectors", type=Path, default=Path("runs/sample/sectors.parquet"),
                        help="the real sites, to score the guesses [runs/sample/sectors.parquet]")
    parser.add_argument("--tech", default="redcap")
    parser.add_argument("--max-km2", type=float, default=1.0, help="a small blob covers at most this area [1 km²]")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--republish", default="", help="cell sizes (m) to publish the run at and measure, e.g. 500,1000")
    parser.add_argument("--run", type=Path, default=Path("runs/sample"), help="run directory for --republish")
    args = parser.parse_args(argv)

    sites = real_sites(args.sectors, args.tech)
    results = [measure(args.site, sites, args.tech, args.max_km2, args.seed)]
    if args.republish:
        from coverage.publish import write_site

        with tempfile.TemporaryDirectory(prefix="site_inference.") as tmp:
            for cell_m in (float(v) for v in args.republish.split(",")):
                out = Path(tmp) / f"public_{cell_m:g}"
                write_site(args.run, out, publish_resolution_m=cell_m, overwrite=True)
                results.append(measure(out, sites, args.tech, args.max_km2, args.seed))
    for r in results:
        g, rnd = r["guess_to_site_m"], r["random_to_site_m"]
        print(f"{r['tech']} overlays at {r['cell_m']:.0f} m ({r['site']}): {r['small_blobs']} small blobs "
              f"(<= {r['max_km2']:g} km², {r['max_cells']} cells) of {r['blobs']}; centroid to nearest of {r['real_sites']} real sites: "
              f"median {g['median']:.0f} m, quartiles {g['p25']:.0f}-{g['p75']:.0f} m; "
              f"random points: median {rnd['median']:.0f} m, quartiles {rnd['p25']:.0f}-{rnd['p75']:.0f} m")
    for r in results:
        print(json.dumps(r, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Speed of the calibration's per-bin terrain terms (coverage.measure.terrain_terms) on a run over terrain.

Picks ``--bins`` pixels (default 20,000) at random among the predicted pixels of every
operator × technology layer of ``--run`` (default ``runs/sample``, made by ``covmap
build --sample``: the embedded 30″ DEM and MODIS land cover), as bins, then times
:func:`coverage.measure.terrain_terms.bin_terrain_terms` and prints the squares
predicted again, the seconds, the bins per second and the share of bins whose signal
predicted again equals the raster's (1.0: the same kernels, inputs and sectors).
``--clustered`` draws the pixels along random walks (drive-test-like) instead.

Usage::

    .venv/bin/python bench/terrain_terms.py
    .venv/bin/python bench/terrain_terms.py --bins 5000 --clustered
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coverage.layout import RunLayout  # noqa: E402


def pick_bins(run_dir: Path, n_bins: int, clustered: bool, seed: int = 0) -> pd.DataFrame:
    """``tech, operator, col, row, predicted_dbm`` of ``n_bins`` predicted pixels spread over the layers."""
    import json

    rng = np.random.default_rng(seed)
    layout = RunLayout(run_dir)
    report = json.loads(layout.predict_report.read_text(encoding="utf-8"))
    layers = [(tech, layer["operator"]) for tech, entry in report["techs"].items() for layer in entry["layers"]
              if layer["operator"] != "all"]
    frames = []
    per_layer = max(1, n_bins // len(layers))
    for tech, operator in layers:
        with rasterio.open(layout.rsrp(tech, operator)) as ds:
            values = ds.read(1)
            col0, row0 = round(ds.transform.c / ds.transform.a), round(-ds.transform.f / ds.transform.a)
            nodata = ds.nodata
        rows, cols = np.nonzero(values != nodata)
        if clustered:
            start = rng.integers(rows.size, size=max(1, per_layer // 200))
            steps = rng.integers(-1, 2, size=(start.size, 200, 2)).cumsum(axis=1)
            r = (rows[start][:, None] + steps[..., 0]).ravel()
            c = (cols[start][:, None] + steps[..., 1]).ravel()
            keep = (r >= 0) & (c >= 0) & (r < values.shape[0]) & (c < values.shape[1])
            r, c = r[keep], c[keep]
            keep = values[r, c] != nodata
            r, c = r[keep], c[keep]
        else:
            pick = rng.choice(rows.size, size=min(per_layer, rows.size), replace=False)
            r, c = rows[pick], cols[pick]
        frame = pd.DataFrame({"tech": tech, "operator": operator, "col": c + col0, "row": r + row0,
                              "predicted_dbm": values[r, c].astype(np.float64)})
        frames.append(frame.drop_duplicates(["col", "row"]))
    return pd.concat(frames, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/sample"))
    parser.add_argument("--bins", type=int, default=20_000)
    parser.add_argument("--clustered", action="store_true")
    args = parser.parse_args()

    from coverage.measure.evaluate import run_config
    from coverage.measure.terrain_terms import bin_terrain_terms

    bins = pick_bins(args.run, args.bins, args.clustered)
    config = run_config(args.run)
    started = time.perf_counter()
    terms = bin_terrain_terms(bins, args.run, config)
    seconds = time.perf_counter() - started
    if terms is None:
        print(f"{args.run}: a flat run (no DEM, no land cover): no terrain terms")
        return
    shadowed = float((terms.bins["diffraction_db"] >= 1.0).mean())
    print(f"bins {len(bins):,} ({'clustered' if args.clustered else 'spread'}), squares {terms.windows:,}, "
          f"{seconds:.1f} s, {len(bins) / seconds:,.0f} bins/s, agree with the rasters {100 * terms.agree_share:.1f} %, "
          f"bins with >= 1 dB of diffraction {100 * shadowed:.1f} %")


if __name__ == "__main__":
    main()

"""The README's terrain figure: the sample's NB-IoT signal flat and with terrain.

Builds the bundled sample (厦门市) twice with :func:`coverage.pipeline.build`, once
flat (``dem="none", clutter="none"``) and once with the embedded 30″ DEM and MODIS
land cover (``dem="default", clutter="default"``, what ``covmap build --sample``
uses), into ``WORK/flat`` and ``WORK/terrain``. It then draws the NB-IoT
best-server RSRP (``raster/nbiot_rsrp.tif``) of both side by side on one colour
scale and extent, with the sample's county boundaries, and writes
``docs/terrain_sample.png``. It prints the coverage figures of both builds (operator
``all``, per county and the summary line) as a Markdown table for the README.

Site positions are not drawn: the README is public and operator site data is not.
For the same reason the 100 m RSRP is drawn as the median of blocks of the public
edition's finest cell (``[publish] resolution_m``, 500 m), as the published maps
are: at 100 m each site's peak would show where it stands.

Usage::

    .venv/bin/python docs/terrain_figure.py                  # ~2 min on 2 cores
    .venv/bin/python docs/terrain_figure.py --work /tmp/tf   # keep (and reuse) the runs

Needs the embedded terrain data (``covmap data fetch``, which ``make`` runs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "terrain_sample.png"

# (run folder, build arguments, panel title)
VARIANTS = [
    ("flat", {"dem": "none", "clutter": "none"}, "flat earth"),
    ("terrain", {"dem": "default", "clutter": "default"}, "terrain (30″ DEM) and land cover (MODIS)"),
]
NODATA = -9999.0
VMIN, VMAX = -130.0, -50.0  # dBm, the colour scale of both panels
MARGIN_M = 4000.0  # around the counties' bounds


def build_all(work: Path) -> dict[str, Path]:
    from coverage.errors import SyntheticDataWarning
    from coverage.pipeline import build, sample_job

    # the sample's townships are synthetic, as we know: only county figures are used
    warnings.filterwarnings("ignore", category=SyntheticDataWarning)
    job = sample_job()
    runs = {}
    for name, terrain, _title in VARIANTS:
        run_dir = work / name
        start = time.perf_counter()
        result = build(job.submissions, run_dir, crs=job.crs_by_file, townships=job.townships,
                       publish_dir=work / f"{name}_site", **terrain)
        reused = all(stage.reused for stage in result.stages.values())
        print(f"{name:<8} {run_dir}  {'reused' if reused else f'{time.perf_counter() - start:5.1f} s'}",
              file=sys.stderr)
        runs[name] = run_dir
    return runs


def read_figures(runs: dict[str, Path]):
    """Rows (label, tech, {variant: (coverage_pct, deep_coverage_pct)}) for operator ``all``."""
    import pandas as pd

    rows = {}
    order = []
    for name, run_dir in runs.items():
        county = pd.read_csv(run_dir / "stats" / "county.csv", encoding="utf-8-sig", dtype={"code": str})
        summary = pd.read_csv(run_dir / "stats" / "summary.csv", encoding="utf-8-sig")
        county = county[county["operator"] == "all"].sort_values(["code", "tech"])
        summary = summary[(summary["operator"] == "all") & (summary["scope"] == "national")]
        for frame, label in ((county, None), (summary, "summary (6 counties)")):
            for rec in frame.itertuples():
                key = (label or f"{rec.code} {rec.name}", rec.tech)
                if key not in rows:
                    rows[key] = {}
                    order.append(key)
                rows[key][name] = (rec.coverage_pct, rec.deep_coverage_pct)
    return [(label, tech, rows[(label, tech)]) for label, tech in order]


def markdown_table(figures) -> str:
    tech_label = {"nbiot": "NB-IoT", "redcap": "RedCap"}
    lines = ["| county | tech | coverage flat | coverage terrain | deep flat | deep terrain |",
             "|---|---|---:|---:|---:|---:|"]
    for label, tech, by in figures:
        (cf, df), (ct, dt) = by["flat"], by["terrain"]
        lines.append(f"| {label} | {tech_label.get(tech, tech)} | {cf:.1f} % | {ct:.1f} % | {df:.1f} % | {dt:.1f} % |")
    return "\n".join(lines)


def _read_rsrp(path: Path):
    import numpy as np
    import rasterio

    with rasterio.open(path) as src:
        data = src.read(1).astype("float32")
        nodata = src.nodata if src.nodata is not None else NODATA
        data = np.ma.masked_where((data == nodata) | ~np.isfinite(data), data)
        return data, src.transform, src.crs


def _block_median(data, block: int):
    """The median of each ``block`` × ``block`` cell (nodata left out; all nodata stays nodata)."""
    import numpy as np

    if block == 1:
        return data
    ny, nx = data.shape[0] // block, data.shape[1] // block
    cells = data[:ny * block, :nx * block].filled(np.nan).reshape(ny, block, nx, block)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
        median = np.nanmedian(cells, axis=(1, 3))
    return np.ma.masked_invalid(median)


def draw(runs: dict[str, Path], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import rasterio.windows

    from coverage.boundaries import load_counties
    from coverage.config import load_config

    rasters = {name: _read_rsrp(run_dir / "raster" / "nbiot_rsrp.tif") for name, run_dir in runs.items()}
    _, transform, crs = rasters["flat"]
    for name, (_, other_transform, other_crs) in rasters.items():
        if other_transform != transform or other_crs != crs:
            raise SystemExit(f"{name}: the NB-IoT raster's grid differs from the flat run's")
    block = max(1, round(load_config().publish.resolution_m / abs(transform.a)))

    # the counties' bounds plus a margin, in whole blocks of the raster's own grid
    counties = load_counties(city="厦门市").to_crs(crs)
    minx, miny, maxx, maxy = counties.total_bounds
    height, width = rasters["flat"][0].shape
    col0, row0 = ~transform @ (minx - MARGIN_M, maxy + MARGIN_M)
    col1, row1 = ~transform @ (maxx + MARGIN_M, miny - MARGIN_M)
    col0, row0 = max(0, int(col0) // block * block), max(0, int(row0) // block * block)
    col1 = min(width // block * block, -(-int(np.ceil(col1)) // block) * block)
    row1 = min(height // block * block, -(-int(np.ceil(row1)) // block) * block)
    window = rasterio.windows.Window(col0, row0, col1 - col0, row1 - row0)
    rows, cols = window.toslices()
    left, bottom, right, top = rasterio.windows.bounds(window, transform)
    extent = (left / 1000, right / 1000, bottom / 1000, top / 1000)

    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("#e6e6e6")
    fig, axes = plt.subplots(1, 2, figsize=(16, 8), dpi=100, sharex=True, sharey=True,
                             layout="constrained")
    image = None
    for ax, (name, _terrain, title) in zip(axes, VARIANTS, strict=True):
        data = _block_median(rasters[name][0][rows, cols], block)
        image = ax.imshow(data, extent=extent, origin="upper", cmap=cmap, vmin=VMIN, vmax=VMAX,
                          interpolation="nearest")
        for geom in counties.geometry:
            for poly in getattr(geom, "geoms", [geom]):
                x, y = poly.exterior.xy
                ax.plot(np.asarray(x) / 1000, np.asarray(y) / 1000, color="white", lw=0.7)
        ax.set_title(title, fontsize=15)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_xlabel("easting (km, China Albers)")
        ax.tick_params(labelsize=10)
    axes[0].set_ylabel("northing (km, China Albers)")
    bar = fig.colorbar(image, ax=list(axes), shrink=0.85, pad=0.01, extend="both")
    bar.set_label("NB-IoT best-server RSRP (dBm)", fontsize=12)
    cell_m = block * abs(transform.a)
    fig.suptitle(f"covmap sample (Xiamen, 6 counties): NB-IoT best-server RSRP, median of {cell_m:.0f} m cells, "
                 "county boundaries in white", fontsize=13)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"the PNG to write [default: {OUT.relative_to(ROOT)}]")
    parser.add_argument("--work", type=Path, default=None,
                        help="where the two runs go (kept and reused) [default: a temporary folder]")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="covmap-terrain-figure-") as tmp:
        work = args.work if args.work is not None else Path(tmp)
        runs = build_all(work)
        draw(runs, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
        print(markdown_table(read_figures(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

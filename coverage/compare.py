"""What changed between two runs: coverage, gaps closed and opened, sites added and removed.

:func:`compare_runs` reads two aggregated run directories (an older and a newer
month) and writes, per county and township × technology × operator (and
``all``):

``coverage_pct_old`` / ``coverage_pct_new`` / ``coverage_change_pp``
    Coverage of the unit's area in each run and the change in percentage points
    (new − old); likewise ``deep_coverage_*``.
``gap_closed_km2`` / ``gap_opened_km2``
    Pixel by pixel from the two class rasters: *closed* is land not covered in the
    old run and covered in the new one, *opened* the reverse (covered = class 1
    or 2, as in the statistics). So ``gap_closed_km2 − gap_opened_km2 =
    covered_km2_new − covered_km2_old`` for every unit.
``sites_added`` / ``sites_removed`` / ``sectors_added`` / ``sectors_removed``
    From the two runs' ``sectors.parquet``: a site is (operator, site_id) with
    sectors of that technology, a sector is (operator, cell_id, tech). An added
    one is counted in the unit of its new position, a removed one in the unit of
    its old position; a site that kept its id but moved is neither (the
    ``sites_old``/``sites_new`` counts of both units show it).

Both runs must be on the same grid: the same CRS and resolution and, as every
covmap grid is a window of one global lattice (:mod:`coverage.grid`), pixels
that line up. Their extents may differ (a new site at the edge widens the grid):
the comparison runs on the union of both extents, where a pixel outside a run's
raster is not covered in that run (as beyond every sector's reach). Nothing is
resampled; two runs at different resolutions raise :class:`GridMismatchError`.

The units are the counties (and townships) of both runs' ``stats/coverage.gpkg``
(the newer run's polygon where both have one); every statistic of both runs is
computed again on those same polygons, so a unit only one run reported on is
still compared, and the old and new figures of a unit share one area.

Outputs (``out_dir``)
---------------------
``county.csv``, ``township.csv``
    The long tables for people: UTF-8 with BOM, areas rounded to 0.01 km²,
    percentages and percentage points to 0.1.
``county.parquet``, ``township.parquet``
    The same at full precision.
``change.gpkg``
    Layers ``county`` / ``township``: one row per unit with geometry (EPSG:4326) and
    wide columns ``<tech>_<op>_<figure>`` (op = ct, cm, cu, cbn, all) for the
    figures of :data:`WIDE_FIGURES`.
``raster/<tech>[_<op>]_change.tif``
    Per layer, the union grid coded :data:`CHANGE_UNCHANGED`, :data:`CHANGE_OPENED`,
    :data:`CHANGE_CLOSED` (the codes are those of the class rasters' outdoor and
    deep classes, so the statistics' covered sum of a change raster is the changed
    area and its deep sum the closed area).
``compare.json``
    Both runs (path, run id, data date), the grid, the layers, national totals per
    technology × operator, and the files written; it also marks the folder as a
    comparison covmap may rewrite.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.windows import Window

from coverage.aggregate import read_report
from coverage.errors import ArgumentError, FileOverwriteError, GridMismatchError, IncompleteRunError
from coverage.files import atomic_output, write_csv_bom
from coverage.layout import ALL_OPERATORS, CLASS_DEEP, CLASS_OUTDOOR, RunLayout, layer_key
from coverage.schema import OPERATORS
from coverage.zonal import Layer, count_sectors, layer_stats, units_in_crs

log = logging.getLogger(__name__)

#: Change raster codes (see the module docstring for why they equal the class codes).
CHANGE_UNCHANGED = 0
CHANGE_OPENED = CLASS_OUTDOOR
CHANGE_CLOSED = CLASS_DEEP

COMPARE_MARKER = "compare.json"
UNIT_ATTRIBUTES = ("code", "name", "level", "parent", "parent_name", "province_code", "province")
WIDE_OPERATORS = (*(op.code for op in OPERATORS), ALL_OPERATORS)

#: Columns of the long change tables.
CHANGE_COLUMNS = (
    *UNIT_ATTRIBUTES, "tech", "operator", "area_km2",
    "coverage_pct_old", "coverage_pct_new", "coverage_change_pp",
    "deep_coverage_pct_old", "deep_coverage_pct_new", "deep_coverage_change_pp",
    "covered_km2_old", "covered_km2_new", "gap_closed_km2", "gap_opened_km2",
    "sectors_old", "sectors_new", "sectors_added", "sectors_removed",
    "sites_old", "sites_new", "sites_added", "sites_removed",
)
#: Figures of the wide GeoPackage layers (``<tech>_<op>_<figure>``).
WIDE_FIGURES = ("coverage_change_pp", "deep_coverage_change_pp", "gap_closed_km2", "gap_opened_km2",
                "sites_added", "sites_removed")

#: Rows of a change raster written at once (a national row of 100 m pixels is ~50,000 bytes).
STRIP_ROWS = 512

ProgressCallback = Callable[[int, int], None]
#: Progress steps of one level's table: the old and new statistics, the change areas, the sites.
_STEPS_PER_LEVEL = 4


def compare_runs(old_run: str | os.PathLike, new_run: str | os.PathLike, out_dir: str | os.PathLike, *,
                 overwrite: bool = False, progress: ProgressCallback | None = None) -> dict:
    """Compare two aggregated runs and write the change tables, rasters and GeoPackage.

    Parameters
    ----------
    old_run, new_run : path
        Run directories after the aggregate stage (``raster/report.json`` and its
        class rasters, ``sectors.parquet``, ``stats/coverage.gpkg``).
    out_dir : path
        Folder to write (see the module docstring); created if missing.
    overwrite : bool, default False
        Allow writing into a folder that holds files covmap did not write there
        (a folder with ``compare.json``, or inside a run directory, is rewritten
        without it).
    progress : callable, optional
        ``progress(done, total)`` after each step (each change raster, each
        statistics pass).

    Returns
    -------
    dict
        ``out_dir``, ``old`` and ``new`` (``path``, ``run_id``, ``data_date``),
        ``counties``, ``townships`` (counts), ``totals`` ({tech: {operator: national
        figures}}), ``files`` (name -> path), ``seconds``.

    Raises
    ------
    IncompleteRunError
        A run directory lacks a file the comparison needs (the message names it).
    GridMismatchError
        The runs' rasters are not on one lattice (CRS, resolution or alignment).
    ArgumentError
        ``out_dir`` is one of the two runs.
    FileOverwriteError
        ``out_dir`` holds foreign files and ``overwrite`` is False.

    Examples
    --------
    >>> result = compare_runs("runs/2024-05", "runs/2024-06", "changes/2024-06")  # doctest: +SKIP
    >>> result["totals"]["nbiot"]["all"]["coverage_change_pp"]  # doctest: +SKIP
    0.4
    """
    started = time.perf_counter()
    old, new = _RunInput.read(old_run, "old"), _RunInput.read(new_run, "new")
    out = Path(out_dir)
    for run in (old, new):
        if out.resolve() == run.layout.root.resolve():
            raise ArgumentError(f"--out {out} is the {run.role} run itself; give a folder of its own")
    _claim_out_dir(out, overwrite)
    grid = _union_grid(old, new)
    keys = _layer_keys(old, new)
    counties = _units(old, new, "county")
    townships = _units(old, new, "township")
    n_steps = len(keys) + _STEPS_PER_LEVEL * (1 + (townships is not None))
    done = 0

    def step():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, n_steps)

    out_raster = out / "raster"
    change_layers = []
    for tech, operator in keys:
        path = out_raster / f"{layer_key(tech, operator)}_change.tif"
        _write_change_raster(old.class_path(tech, operator), new.class_path(tech, operator), grid, path)
        change_layers.append(Layer(tech, operator, path))
        step()

    tables = {}
    for level, units in (("county", counties), ("township", townships)):
        if units is not None:
            tables[level] = _change_table(units, keys, old, new, change_layers, grid, step)

    files = {}
    for level, table in tables.items():
        files[f"{level}.csv"] = write_csv_bom(table, out / f"{level}.csv")
        parquet = out / f"{level}.parquet"
        with atomic_output(parquet) as tmp:
            table.to_parquet(tmp, index=False)
        files[f"{level}.parquet"] = parquet
    files["change.gpkg"] = _write_gpkg(out / "change.gpkg", {"county": counties, "township": townships}, tables)
    files.update({p.relative_to(out).as_posix(): p for p in sorted(out_raster.glob("*_change.tif"))})

    totals = national_totals(tables["county"])
    result = {
        "out_dir": str(out),
        "old": old.describe(), "new": new.describe(),
        "grid": grid.describe(),
        "layers": [{"tech": t, "operator": o, "change": f"raster/{layer_key(t, o)}_change.tif"} for t, o in keys],
        "counties": int(len(counties)), "townships": int(len(townships)) if townships is not None else 0,
        "totals": totals,
        "files": {name: str(path) for name, path in files.items()},
        "written": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with atomic_output(out / COMPARE_MARKER) as tmp:
        tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    result["seconds"] = time.perf_counter() - started
    log.info("compared %s -> %s: %d counties, %d townships, %d layers in %.1f s", old.layout.root,
             new.layout.root, result["counties"], result["townships"], len(keys), result["seconds"])
    return result


def national_totals(county_table: pd.DataFrame) -> dict:
    """National figures per technology × operator from a long county change table.

    Area-weighted coverage of both runs and its change (points), the summed
    gap areas closed and opened (km²), and the summed site and sector counts.
    """
    totals: dict = {}
    for (tech, operator), group in county_table.groupby(["tech", "operator"], sort=False):
        area = float(group["area_km2"].sum())
        old_pct = 100.0 * float(group["covered_km2_old"].sum()) / area if area > 0 else math.nan
        new_pct = 100.0 * float(group["covered_km2_new"].sum()) / area if area > 0 else math.nan
        totals.setdefault(tech, {})[operator] = {
            "counties": int(group["code"].nunique()),
            "area_km2": area,
            "coverage_pct_old": old_pct, "coverage_pct_new": new_pct, "coverage_change_pp": new_pct - old_pct,
            "gap_closed_km2": float(group["gap_closed_km2"].sum()),
            "gap_opened_km2": float(group["gap_opened_km2"].sum()),
            **{name: int(group[name].sum()) for name in
               ("sites_added", "sites_removed", "sectors_added", "sectors_removed")},
        }
    return totals


def read_comparison(folder: str | os.PathLike) -> dict:
    """``compare.json`` of a comparison folder (written by :func:`compare_runs`).

    Raises
    ------
    IncompleteRunError
        The folder holds no readable ``compare.json`` or its ``change.gpkg`` is missing.
    """
    path = Path(folder) / COMPARE_MARKER
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IncompleteRunError(f"{path} not found: run `covmap compare RUN_OLD RUN_NEW --out {folder}`") from None
    except (OSError, ValueError) as exc:
        raise IncompleteRunError(f"{path} cannot be read: {exc}") from None
    if not (Path(folder) / "change.gpkg").is_file():
        raise IncompleteRunError(f"{Path(folder) / 'change.gpkg'} is missing: run `covmap compare` again")
    return info


# ---------------------------------------------------------------- the two runs


class _RunInput:
    """One run of the comparison: its layout, report, sectors and identity."""

    REQUIRED = ("raster/report.json", "sectors.parquet", "stats/coverage.gpkg")

    def __init__(self, layout: RunLayout, role: str, report: dict, sectors: gpd.GeoDataFrame, manifest: dict):
        self.layout, self.role, self.report, self.sectors, self.manifest = layout, role, report, sectors, manifest
        self.layers = {(tech, item["operator"]): layout.raster_dir / item["class"]
                       for tech, entry in report["techs"].items() for item in entry.get("layers", [])}

    @classmethod
    def read(cls, path, role: str) -> _RunInput:
        layout = RunLayout(path)
        if not layout.root.is_dir():
            raise IncompleteRunError(f"{layout.root}: no such run directory ({role} run)")
        missing = [name for name in cls.REQUIRED if not (layout.root / name).is_file()]
        if missing:
            raise IncompleteRunError(f"{role} run {layout.root} is incomplete: {', '.join(missing)} missing "
                                     f"(run `covmap build` or `covmap aggregate` on it first)")
        try:
            report = read_report(layout)
        except Exception as exc:
            raise IncompleteRunError(f"{role} run: {exc}") from None
        for entry in report["techs"].values():
            for item in entry.get("layers", []):
                if not (layout.raster_dir / item["class"]).is_file():
                    raise IncompleteRunError(f"{role} run {layout.root} is incomplete: raster/{item['class']} "
                                             f"(listed in raster/report.json) is missing")
        try:
            sectors = gpd.read_parquet(layout.sectors)
        except Exception as exc:
            raise IncompleteRunError(f"{layout.sectors} cannot be read ({role} run): {exc}") from None
        lacking = {"operator", "site_id", "cell_id", "tech"} - set(sectors.columns)
        if lacking:
            raise IncompleteRunError(f"{layout.sectors} lacks columns {sorted(lacking)} ({role} run)")
        manifest = {}
        if layout.manifest.is_file():
            try:
                manifest = json.loads(layout.manifest.read_text(encoding="utf-8")) or {}
            except (OSError, ValueError):
                log.warning("%s is unreadable; the %s run has no id or data date", layout.manifest, role)
        return cls(layout, role, report, sectors, manifest if isinstance(manifest, dict) else {})

    def class_path(self, tech: str, operator: str) -> Path | None:
        return self.layers.get((tech, operator))

    def any_class_path(self) -> Path:
        return next(iter(self.layers.values()))

    def describe(self) -> dict:
        date = self.manifest.get("data_date") or self.manifest.get("created")
        return {"path": str(self.layout.root), "run_id": self.manifest.get("run_id"),
                "data_date": str(date)[:10] if date else None}


def _layer_keys(old: _RunInput, new: _RunInput) -> list[tuple[str, str]]:
    """Every (tech, operator) layer of either run, per technology "all" first.

    A layer only one run has (an operator's first submission of a technology)
    is compared with nothing covered in the other.
    """
    keys = set(old.layers) | set(new.layers)
    return sorted(keys, key=lambda k: (k[0], k[1] != ALL_OPERATORS, k[1]))


# ---------------------------------------------------------------- the grid


class _Grid:
    """The union of both runs' extents on their common lattice, and each run's offset in it."""

    def __init__(self, crs, resolution_m: float, left: float, top: float, width: int, height: int):
        self.crs, self.resolution_m = crs, resolution_m
        self.left, self.top, self.width, self.height = left, top, width, height
        self.transform = rasterio.transform.from_origin(left, top, resolution_m, resolution_m)

    def offset(self, transform) -> tuple[int, int]:
        """(column, row) of a raster's top-left pixel in this grid."""
        return (round((transform.c - self.left) / self.resolution_m),
                round((self.top - transform.f) / self.resolution_m))

    def describe(self) -> dict:
        return {"crs_wkt": self.crs.to_wkt(), "resolution_m": self.resolution_m, "width": self.width,
                "height": self.height, "transform": list(self.transform)[:6]}


def _union_grid(old: _RunInput, new: _RunInput) -> _Grid:
    boxes = []
    for run in (old, new):
        with rasterio.open(run.any_class_path()) as ds:
            boxes.append((run, ds.crs, ds.transform, ds.width, ds.height))
    (_, crs_a, ta, wa, ha), (_, crs_b, tb, wb, hb) = boxes
    if crs_a != crs_b:
        raise GridMismatchError(f"the runs' rasters are in different CRSs ({old.layout.root}: {crs_a}; "
                                f"{new.layout.root}: {crs_b}); build both with the same covmap grid")
    res_a, res_b = abs(ta.a), abs(tb.a)
    if not math.isclose(res_a, res_b, rel_tol=1e-9) or ta.b or ta.d or tb.b or tb.d:
        raise GridMismatchError(f"the runs' rasters have different resolutions ({old.layout.root}: {res_a:g} m; "
                                f"{new.layout.root}: {res_b:g} m); build both at one --resolution to compare them")
    shift_cols, shift_rows = (tb.c - ta.c) / res_a, (ta.f - tb.f) / res_a
    if abs(shift_cols - round(shift_cols)) > 1e-6 or abs(shift_rows - round(shift_rows)) > 1e-6:
        raise GridMismatchError(f"the runs' pixels do not line up ({new.layout.root} is offset by "
                                f"{shift_cols:.3f}, {shift_rows:.3f} pixels from {old.layout.root})")
    left, top = min(ta.c, tb.c), max(ta.f, tb.f)
    right = max(ta.c + wa * res_a, tb.c + wb * res_a)
    bottom = min(ta.f - ha * res_a, tb.f - hb * res_a)
    return _Grid(crs_a, res_a, left, top, round((right - left) / res_a), round((top - bottom) / res_a))


def _covered_strip(ds, col0: int, row0: int, grid: _Grid, strip_row0: int, rows: int) -> np.ndarray:
    """Covered mask (class 1 or 2) of ``rows`` grid rows from ``strip_row0``; False outside the raster."""
    covered = np.zeros((rows, grid.width), dtype=bool)
    if ds is None:
        return covered
    r0, r1 = max(strip_row0, row0), min(strip_row0 + rows, row0 + ds.height)
    if r1 <= r0:
        return covered
    classes = ds.read(1, window=Window(0, r0 - row0, ds.width, r1 - r0))
    covered[r0 - strip_row0:r1 - strip_row0, col0:col0 + ds.width] = (classes == CLASS_OUTDOOR) | (classes == CLASS_DEEP)
    return covered


def _write_change_raster(old_path: Path | None, new_path: Path | None, grid: _Grid, path: Path) -> None:
    """One layer's change codes on the union grid, strip by strip (memory: a few strips of the grid)."""
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8", crs=grid.crs,
                   transform=grid.transform, tiled=True, blockxsize=512, blockysize=512, compress="deflate",
                   predictor=2)
    old_ds = rasterio.open(old_path) if old_path is not None else None
    new_ds = rasterio.open(new_path) if new_path is not None else None
    try:
        old_off = grid.offset(old_ds.transform) if old_ds is not None else (0, 0)
        new_off = grid.offset(new_ds.transform) if new_ds is not None else (0, 0)
        with atomic_output(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            for row0 in range(0, grid.height, STRIP_ROWS):
                rows = min(STRIP_ROWS, grid.height - row0)
                was = _covered_strip(old_ds, *old_off, grid, row0, rows)
                now = _covered_strip(new_ds, *new_off, grid, row0, rows)
                codes = np.full(was.shape, CHANGE_UNCHANGED, dtype=np.uint8)
                codes[now & ~was] = CHANGE_CLOSED
                codes[was & ~now] = CHANGE_OPENED
                dst.write(codes, 1, window=Window(0, row0, grid.width, rows))
    finally:
        for ds in (old_ds, new_ds):
            if ds is not None:
                ds.close()


# ---------------------------------------------------------------- units and tables


def _read_units(run: _RunInput, level: str) -> gpd.GeoDataFrame | None:
    import pyogrio

    path = run.layout.stats_gpkg
    if level not in {name for name, _ in pyogrio.list_layers(path)}:
        return None
    frame = gpd.read_file(path, layer=level)
    for column in UNIT_ATTRIBUTES:
        if column not in frame.columns:
            frame[column] = None
    frame["code"] = frame["code"].astype(str)
    return frame[[*UNIT_ATTRIBUTES, "geometry"]].to_crs(4326)


def _units(old: _RunInput, new: _RunInput, level: str) -> gpd.GeoDataFrame | None:
    """The units of both runs (the new run's polygon where both have one), ordered by code."""
    parts = [frame for frame in (_read_units(new, level), _read_units(old, level)) if frame is not None]
    if not parts:
        if level == "county":
            raise IncompleteRunError(f"neither {old.layout.stats_gpkg} nor {new.layout.stats_gpkg} has a "
                                     f"'county' layer (run `covmap aggregate` again)")
        return None
    units = pd.concat(parts, ignore_index=True).drop_duplicates("code", keep="first")
    return gpd.GeoDataFrame(units.sort_values("code", kind="stable").reset_index(drop=True), crs=4326)


def _stats(units, run: _RunInput, keys) -> pd.DataFrame:
    """covered and deep km² of every unit × layer of ``keys`` in one run (0 for a layer it lacks)."""
    layers = [Layer(t, o, run.class_path(t, o)) for t, o in keys if run.class_path(t, o) is not None]
    frame = layer_stats(units, layers)[["_unit", "tech", "operator", "area_km2", "covered_km2", "deep_covered_km2"]]
    return frame


def _site_changes(units, old: _RunInput, new: _RunInput, crs) -> pd.DataFrame:
    """sectors/sites of each run and those added and removed, per unit × tech × operator (and all)."""
    projected = units_in_crs(units, crs)
    old_s, new_s = old.sectors, new.sectors

    def keys(frame, columns):
        return pd.MultiIndex.from_frame(frame[list(columns)].astype(str))

    sector_key, site_key = ("operator", "cell_id", "tech"), ("operator", "site_id", "tech")
    counts = {
        "old": count_sectors(projected, old_s),
        "new": count_sectors(projected, new_s),
        "sectors_added": count_sectors(projected, new_s[~keys(new_s, sector_key).isin(keys(old_s, sector_key))]),
        "sectors_removed": count_sectors(projected, old_s[~keys(old_s, sector_key).isin(keys(new_s, sector_key))]),
        "sites_added": count_sectors(projected, new_s[~keys(new_s, site_key).isin(keys(old_s, site_key))]),
        "sites_removed": count_sectors(projected, old_s[~keys(old_s, site_key).isin(keys(new_s, site_key))]),
    }
    index = ["_unit", "tech", "operator"]
    out = None
    for name, frame in counts.items():
        frame = frame.set_index(index)
        if name in ("old", "new"):
            part = frame.rename(columns={"sectors": f"sectors_{name}", "sites": f"sites_{name}"})
        else:
            part = frame[["sectors" if name.startswith("sectors") else "sites"]].rename(
                columns=lambda _c, n=name: n)
        out = part if out is None else out.join(part, how="outer")
    return out.reset_index() if out is not None else pd.DataFrame(columns=index)


def _change_table(units, keys, old: _RunInput, new: _RunInput, change_layers: Sequence[Layer], grid: _Grid,
                  step: Callable[[], None]) -> pd.DataFrame:
    index = ["_unit", "tech", "operator"]
    frame = pd.DataFrame([(u, t, o) for u in range(len(units)) for t, o in keys], columns=index)
    area_km2 = units_in_crs(units, grid.crs).geometry.area.to_numpy() / 1e6
    frame["area_km2"] = area_km2[frame["_unit"].to_numpy()]
    for run, suffix in ((old, "old"), (new, "new")):
        stats = _stats(units, run, keys).drop(columns="area_km2")
        stats = stats.rename(columns={"covered_km2": f"covered_km2_{suffix}", "deep_covered_km2": f"_deep_{suffix}"})
        frame = frame.merge(stats, on=index, how="left")
        step()
    change = layer_stats(units, list(change_layers))
    # a change raster's covered sum is the changed area, its deep sum the closed area (module docstring)
    change["gap_closed_km2"] = change["deep_covered_km2"]
    change["gap_opened_km2"] = change["covered_km2"] - change["deep_covered_km2"]
    frame = frame.merge(change[[*index, "gap_closed_km2", "gap_opened_km2"]], on=index, how="left")
    step()
    frame = frame.merge(_site_changes(units, old, new, grid.crs), on=index, how="left")
    step()
    count_columns = [c for c in CHANGE_COLUMNS if c.startswith(("sectors_", "sites_"))]
    for column in count_columns:
        frame[column] = frame[column].fillna(0).astype("int64") if column in frame else 0
    for column in ("covered_km2_old", "covered_km2_new", "_deep_old", "_deep_new", "gap_closed_km2",
                   "gap_opened_km2"):
        frame[column] = frame[column].fillna(0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = 100.0 / np.where(frame["area_km2"] > 0, frame["area_km2"], np.nan)
    for suffix in ("old", "new"):
        frame[f"coverage_pct_{suffix}"] = np.clip(frame[f"covered_km2_{suffix}"] * share, 0.0, 100.0)
        frame[f"deep_coverage_pct_{suffix}"] = np.clip(frame[f"_deep_{suffix}"] * share, 0.0, 100.0)
    frame["coverage_change_pp"] = frame["coverage_pct_new"] - frame["coverage_pct_old"]
    frame["deep_coverage_change_pp"] = frame["deep_coverage_pct_new"] - frame["deep_coverage_pct_old"]
    attrs = pd.DataFrame(units[list(UNIT_ATTRIBUTES)]).reset_index(drop=True)
    table = attrs.merge(frame, left_index=True, right_on="_unit", how="right")
    return table.loc[:, list(CHANGE_COLUMNS)].reset_index(drop=True)


def _wide(units: gpd.GeoDataFrame, table: pd.DataFrame) -> gpd.GeoDataFrame:
    out = units[[*UNIT_ATTRIBUTES, "geometry"]].copy()
    for tech in table["tech"].unique():
        part = table[table["tech"] == tech]
        for figure in WIDE_FIGURES:
            pivot = part.pivot(index="code", columns="operator", values=figure)
            for op in WIDE_OPERATORS:
                column = f"{tech}_{op.lower()}_{figure}"
                out[column] = out["code"].map(pivot[op]) if op in pivot.columns else np.nan
    return out


def _write_gpkg(path: Path, units_by_level: dict, tables: dict) -> Path:
    from coverage.aggregate import _GPKG_FIXED_DATE, _gdal_options

    with atomic_output(path) as tmp, _gdal_options(_GPKG_FIXED_DATE):
        mode = "w"
        for level, table in tables.items():
            _wide(units_by_level[level], table).to_file(tmp, layer=level, driver="GPKG", mode=mode)
            mode = "a"
    return path


def _claim_out_dir(out: Path, overwrite: bool) -> None:
    from coverage.files import is_run_dir

    if out.exists() and not out.is_dir():
        raise FileOverwriteError(f"{out} exists and is not a folder")
    if (out.is_dir() and any(out.iterdir()) and not (out / COMPARE_MARKER).exists() and not is_run_dir(out)
            and not overwrite):
        raise FileOverwriteError(f"{out} holds files that covmap compare did not write; "
                                 f"pass overwrite=True (--overwrite)")
    out.mkdir(parents=True, exist_ok=True)

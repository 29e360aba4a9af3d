"""Data of the published maps: units, gaps, sites and the coverage-class overlay.

Everything here turns the run's tables and rasters into small, display-ready
plain data (GeoJSON dicts, RGBA arrays, rows) for :mod:`coverage.publish.site`.
Nothing here draws a page.

Display rules
-------------
* Unit polygons are simplified with :func:`shapely.coverage_simplify`, which keeps
  the borders neighbours share (no slivers, no overlaps), then rounded to
  :data:`COORD_DECIMALS` decimals.
* Coverage figures are rounded to one decimal and put in one array per unit, in
  the order of :func:`figure_keys`; the page's script picks the entry to colour by.
* The public edition never carries a site position nor a distance to a sector
  (``nearest_sector_km``); the class overlay draws :func:`coverage.lookup.class_grid`
  (a mode rule to ``publish_resolution_m`` cells at least, never finer), the grid
  the location box and the public lookup answer from.
* With a GCJ-02 base map every overlay is shifted to GCJ-02 (vector vertices one
  by one; the raster overlay by the shift at its centre, which differs from the
  shift at its edges by well under one overlay cell at county scale).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from coverage.errors import EmptyCoverageError, InputReadError, SchemaError
from coverage.layout import (
    ALL_OPERATORS,
    CLASS_DEEP,
    CLASS_NONE,
    CLASS_OUTDOOR,
    RunLayout,
)
from coverage.lookup import class_grid
from coverage.schema import OPERATORS, TECH_IDS

log = logging.getLogger(__name__)

#: Operators in the switch, "all" first (lower-case, as in the stats columns).
OPERATOR_KEYS: tuple[str, ...] = (ALL_OPERATORS, *(op.code.lower() for op in OPERATORS))
#: Figures per technology and operator: (key, stats column suffix).
METRICS: tuple[tuple[str, str], ...] = (("coverage", "coverage_pct"), ("deep", "deep_coverage_pct"))

#: Upper edges of the coverage classes, percent; five classes: <50, 50–80, 80–90, 90–95, ≥95.
CLASS_BREAKS_PCT: tuple[float, ...] = (50.0, 80.0, 90.0, 95.0)
#: Cividis at 0, .25, .5, .75, 1 (colour-blind safe, monotone in lightness).
CLASS_COLOURS: tuple[str, ...] = ("#00204d", "#414d6b", "#7c7b78", "#bcaf6f", "#ffea46")
CLASS_NAMES: tuple[str, ...] = ("< 50 %", "50–80 %", "80–90 %", "90–95 %", "≥ 95 %")
NO_DATA_COLOUR = "#d9d9d9"

#: RGBA of the signal classes in the raster overlay (viridis ends; none is a light veil).
OVERLAY_RGBA: dict[int, tuple[int, int, int, int]] = {
    CLASS_NONE: (200, 200, 200, 110),
    CLASS_OUTDOOR: (59, 82, 139, 170),
    CLASS_DEEP: (253, 231, 37, 190),
}

#: Decimal places of published coordinates (1e-5 degree ≈ 1.1 m; display only).
COORD_DECIMALS = 5

SITE_COLUMNS = ("operator", "site_id", "cell_id", "tech")


def figure_keys() -> list[str]:
    """Keys of the figures array of every unit, in order: ``nbiot_all_coverage`` …

    Examples
    --------
    >>> figure_keys()[:3]
    ['nbiot_all_coverage', 'nbiot_all_deep', 'nbiot_ct_coverage']
    >>> len(figure_keys())
    20
    """
    return [f"{tech}_{op}_{metric}" for tech in TECH_IDS for op in OPERATOR_KEYS for metric, _ in METRICS]


def figure_columns() -> list[str]:
    """Stats columns (``<tech>_<op>_coverage_pct`` …) in the order of :func:`figure_keys`."""
    return [f"{tech}_{op}_{suffix}" for tech in TECH_IDS for op in OPERATOR_KEYS for _, suffix in METRICS]


def class_index(pct: float | None) -> int | None:
    """Index into :data:`CLASS_COLOURS` of a coverage percentage, None for no data.

    Examples
    --------
    >>> [class_index(v) for v in (0, 49.9, 50, 85, 94.99, 95, 100, None)]
    [0, 0, 1, 2, 3, 4, 4, None]
    """
    if pct is None or (isinstance(pct, float) and math.isnan(pct)):
        return None
    return int(np.searchsorted(np.asarray(CLASS_BREAKS_PCT), float(pct), side="right"))


# ---------------------------------------------------------------- reading the run


@dataclass(frozen=True)
class RunInfo:
    """What every page prints about the run: data date and version."""

    data_date: str
    data_version: str


def read_run_info(run_dir: str | os.PathLike, data_date: str | None = None,
                  data_version: str | None = None) -> RunInfo:
    """Data date and version from ``manifest.json`` (tolerant), overridden by arguments.

    A missing or unreadable manifest gives today's date and ``"unversioned"``.
    """
    import datetime as dt

    manifest: dict = {}
    path = RunLayout(run_dir).manifest
    if path.exists():
        try:
            manifest = json.loads(path.read_text(encoding="utf-8")) or {}
        except (OSError, ValueError) as exc:
            log.warning("manifest %s unreadable (%s); using today's date", path, exc)
    if not isinstance(manifest, dict):
        manifest = {}
    date = data_date or manifest.get("data_date") or manifest.get("created")
    date = str(date)[:10] if date else dt.date.today().isoformat()
    version = data_version or manifest.get("version") or manifest.get("run_id") or "unversioned"
    return RunInfo(data_date=date, data_version=str(version))


def _read_layer(path: Path, layer: str):
    import geopandas as gpd
    import pyogrio

    if not path.exists():
        raise InputReadError(f"{path} is missing: run the statistics stage first")
    if layer not in {name for name, _ in pyogrio.list_layers(path)}:
        return None
    try:
        frame = gpd.read_file(path, layer=layer)
    except Exception as exc:  # pyogrio raises several types
        raise InputReadError(f"{path} layer {layer!r} cannot be read: {exc}") from exc
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    return frame


def read_units(run_dir: str | os.PathLike, level: str = "county"):
    """The ``county`` or ``township`` layer of ``stats/coverage.gpkg`` (EPSG:4326).

    Returns None for a missing optional ``township`` layer.

    Raises
    ------
    InputReadError
        The GeoPackage is missing or unreadable.
    SchemaError
        The layer lacks ``code``, ``name`` or (for counties) ``province_code``.
    EmptyCoverageError
        The county layer has no rows.
    """
    path = RunLayout(run_dir).stats_gpkg
    frame = _read_layer(path, level)
    if frame is None:
        if level == "county":
            raise SchemaError(f"{path} has no 'county' layer")
        return None
    required = ["code", "name"] + (["province_code", "province"] if level == "county" else ["parent"])
    missing = [col for col in required if col not in frame.columns]
    if missing:
        raise SchemaError(f"{path} layer {level!r} lacks columns {missing}")
    if level == "county" and frame.empty:
        raise EmptyCoverageError(f"{path} layer 'county' has no rows")
    for col in ("code", "province_code", "parent"):
        if col in frame.columns:
            frame[col] = frame[col].astype(str)
    return frame


def read_gaps(run_dir: str | os.PathLike, tech: str):
    """The ``gaps_<tech>`` layer, or None when the run has none."""
    frame = _read_layer(RunLayout(run_dir).stats_gpkg, f"gaps_{tech}")
    if frame is not None:
        for col in ("county_code", "unit_code"):
            if col in frame.columns:
                frame[col] = frame[col].astype(str)
    return frame


def read_sites(run_dir: str | os.PathLike, operator: str):
    """One row per site of ``operator`` (code): site_id, techs, cells, lon, lat.

    Raises
    ------
    InputReadError
        ``sectors.parquet`` is missing or unreadable.
    """
    import geopandas as gpd

    path = RunLayout(run_dir).sectors
    if not path.exists():
        raise InputReadError(f"{path} is missing: the operator edition needs the run's sectors")
    try:
        sectors = gpd.read_parquet(path, columns=[*SITE_COLUMNS, "geometry"])
    except Exception as exc:
        raise InputReadError(f"{path} cannot be read: {exc}") from exc
    if sectors.crs is not None and sectors.crs.to_epsg() != 4326:
        sectors = sectors.to_crs(4326)
    own = sectors[sectors["operator"].astype(str) == operator]
    if own.empty:
        return own.assign(lon=[], lat=[], cells=[], techs=[])[["site_id", "techs", "cells", "lon", "lat"]]
    own = own.assign(lon=own.geometry.x, lat=own.geometry.y)
    grouped = own.groupby("site_id", sort=True)
    sites = grouped.agg(lon=("lon", "mean"), lat=("lat", "mean"), cells=("cell_id", "count"),
                        techs=("tech", lambda t: ", ".join(sorted(set(map(str, t))))))
    return sites.reset_index()


# ---------------------------------------------------------------- display geometry


def shift_to_gcj02(geometries):
    """Shift shapely geometries (array-like, WGS-84) to GCJ-02 vertex by vertex."""
    from coverage.chinacrs import wgs84_to_gcj02

    def _shift(coords: np.ndarray) -> np.ndarray:
        lon, lat = wgs84_to_gcj02(coords[:, 0], coords[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(np.asarray(geometries, dtype=object), _shift)


def display_geometries(geometries, tolerance_deg: float, decimals: int = COORD_DECIMALS,
                       gcj02: bool = False, clearance=None) -> np.ndarray:
    """Simplify polygons for display keeping shared borders, round, optionally shift.

    Parameters
    ----------
    geometries : array-like of shapely geometries, EPSG:4326
        A polygon coverage (units that do not overlap).
    tolerance_deg : float
        :func:`shapely.coverage_simplify` tolerance in degrees (0.01 ≈ 1 km); 0 keeps all.
    decimals : int, default :data:`COORD_DECIMALS`
    gcj02 : bool, default False
        Shift the result to GCJ-02 (for a GCJ-02 base map).
    clearance : SiteClearance, optional
        Keeps every vertex clear of the submitted sites (the public edition).

    Returns
    -------
    numpy.ndarray of shapely geometries
    """
    geoms = np.asarray(geometries, dtype=object)
    if tolerance_deg > 0 and len(geoms):
        polygonal = shapely.get_type_id(geoms) >= 0
        simplified = geoms.copy()
        try:
            simplified[polygonal] = shapely.coverage_simplify(geoms[polygonal], tolerance_deg)
        except shapely.errors.GEOSException as exc:  # an invalid coverage: fall back per polygon
            log.warning("coverage_simplify failed (%s); simplifying polygon by polygon", exc)
            simplified[polygonal] = shapely.simplify(geoms[polygonal], tolerance_deg, preserve_topology=True)
        geoms = simplified
    if gcj02:
        geoms = shift_to_gcj02(geoms)
    if clearance is not None:
        return clearance.geometries(geoms, decimals)
    scale = 10.0 ** decimals
    return shapely.transform(geoms, lambda xy: np.round(xy * scale) / scale)


def _rounded(value) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else round(value, 1)


def _text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def units_geojson(frame, tolerance_deg: float, decimals: int = COORD_DECIMALS,
                  gcj02: bool = False, clearance=None) -> dict:
    """A compact GeoJSON FeatureCollection of units with their figures.

    Properties per feature: ``c`` code, ``n`` name, ``p`` province (or parent) name,
    ``pc`` province code, ``s`` 1 for a synthetic unit, ``v`` the figures in the
    order of :func:`figure_keys` (None where missing). Strings are raw: the page
    escapes them when it shows them (it never uses them as HTML).
    """
    geoms = display_geometries(frame.geometry.values, tolerance_deg, decimals, gcj02, clearance)
    columns = figure_columns()
    present = [col if col in frame.columns else None for col in columns]
    features = []
    for i, (_, row) in enumerate(frame.iterrows()):
        geom = geoms[i]
        if geom is None or geom.is_empty:
            continue
        props = {
            "c": _text(row.get("code")),
            "n": _text(row.get("name")),
            "p": _text(row.get("province")) or _text(row.get("parent_name")),
            "pc": _text(row.get("province_code")),
            "v": [_rounded(row[col]) if col else None for col in present],
        }
        if bool(row.get("synthetic", False)) is True:
            props["s"] = 1
        features.append({"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)})
    return {"type": "FeatureCollection", "features": features}


def gaps_geojson(gaps, county_code: str, operator: str, limit: int, tolerance_deg: float,
                 decimals: int = COORD_DECIMALS, gcj02: bool = False, clearance=None) -> dict:
    """The ``limit`` largest gaps of one county for ``operator`` (``all`` or a code).

    Properties: ``r`` rank in county, ``a`` area km², ``n`` sites needed estimate,
    ``u`` unit name. No site position or distance to a sector is carried.
    """
    empty = {"type": "FeatureCollection", "features": []}
    if gaps is None or gaps.empty:
        return empty
    mine = gaps[(gaps["county_code"] == county_code)]
    if "operator" in mine.columns:
        mine = mine[mine["operator"].astype(str).str.lower() == operator.lower()]
    if mine.empty:
        return empty
    mine = mine.sort_values("area_km2", ascending=False).head(limit)
    geoms = shapely.simplify(np.asarray(mine.geometry.values, dtype=object), tolerance_deg, preserve_topology=True)
    geoms = display_geometries(geoms, 0.0, decimals, gcj02, clearance)
    features = []
    for geom, (_, row) in zip(geoms, mine.iterrows(), strict=True):
        if geom is None or geom.is_empty:
            continue
        props = {"r": int(row.get("rank_in_county", 0) or 0), "a": _rounded(row.get("area_km2")),
                 "n": _rounded(row.get("sites_needed_estimate")), "u": _text(row.get("unit_name"))}
        features.append({"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)})
    return {"type": "FeatureCollection", "features": features}


# ---------------------------------------------------------------- challenged hexagons

#: Statuses of ``challenge/hexes.gpkg`` the published pages carry (``insufficient`` stays in the run).
PUBLISHED_CHALLENGE_STATUSES = ("challenged", "rebutted")


def read_challenges(run_dir: str | os.PathLike):
    """The run's challenged and rebutted hexagons (``challenge/hexes.gpkg``), or None when it has none.

    Columns kept: h3_res8, tech, operator, tests, negative_tests, point_hexes,
    status, county_code, county_name and the hexagon (EPSG:4326). Nothing about
    sites is in that layer.
    """
    path = RunLayout(run_dir).challenge_gpkg
    if not path.is_file():
        return None
    frame = _read_layer(path, "hexes")
    if frame is None or frame.empty:
        return None
    missing = [c for c in ("h3_res8", "tech", "operator", "tests", "negative_tests", "point_hexes", "status")
               if c not in frame.columns]
    if missing:
        raise SchemaError(f"{path} layer 'hexes' lacks columns {missing}")
    frame = frame[frame["status"].isin(PUBLISHED_CHALLENGE_STATUSES)].copy()
    for col in ("county_code", "county_name"):
        frame[col] = frame[col].fillna("").astype(str) if col in frame.columns else ""
    return frame.sort_values(["county_code", "tech", "operator", "h3_res8"]).reset_index(drop=True)


def challenges_geojson(hexes, tech: str, decimals: int = COORD_DECIMALS, gcj02: bool = False,
                       clearance=None) -> dict:
    """The challenged hexagons of one technology as GeoJSON (rebutted ones are not drawn).

    Properties: ``h`` H3 id, ``o`` operator code, ``n`` tests, ``k`` negative tests,
    ``p`` point-hexes with a negative test.
    """
    empty = {"type": "FeatureCollection", "features": []}
    if hexes is None or hexes.empty:
        return empty
    mine = hexes[(hexes["tech"] == tech) & (hexes["status"] == "challenged")]
    if mine.empty:
        return empty
    geoms = display_geometries(mine.geometry.values, 0.0, decimals, gcj02, clearance)
    features = []
    for geom, (_, row) in zip(geoms, mine.iterrows(), strict=True):
        props = {"h": str(row["h3_res8"]), "o": str(row["operator"]), "n": int(row["tests"]),
                 "k": int(row["negative_tests"]), "p": int(row["point_hexes"])}
        features.append({"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geom)})
    return {"type": "FeatureCollection", "features": features}


# ---------------------------------------------------------------- the class overlay


@dataclass(frozen=True)
class Overlay:
    """An RGBA image in EPSG:3857 and its bounds ``[[south, west], [north, east]]``."""

    png: bytes
    bounds: list[list[float]]
    cell_m: float
    classes: np.ndarray  # the aggregated classes, 255 outside the unit (top row first)


def class_overlay(class_path: str | os.PathLike, geometry, publish_resolution_m: float,
                  gcj02: bool = False, palette: dict[int, tuple[int, int, int, int]] | None = None) -> Overlay | None:
    """The coverage classes inside one unit (:func:`coverage.lookup.class_grid`) as a web-mercator PNG overlay.

    Parameters
    ----------
    class_path : path
        ``raster/<tech>_class.tif`` (uint8, 0/1/2, nodata 255).
    geometry : shapely geometry, EPSG:4326
        The unit (a county) to clip to.
    publish_resolution_m : float, metres
        The finest cell the page may carry.
    gcj02 : bool, default False
        Shift the bounds by the GCJ-02 offset at the centre (approximate: the
        offset varies by a few metres across a county, far below one cell).
    palette : dict, optional
        RGBA per class value (default :data:`OVERLAY_RGBA`); other values are
        transparent. The change pages pass the change raster's codes.

    Returns
    -------
    Overlay or None
        None when the raster is missing or does not meet the unit.
    """
    grid = class_grid(class_path, geometry, publish_resolution_m)
    return overlay_of_grid(grid, gcj02, palette) if grid is not None else None


def overlay_of_grid(grid, gcj02: bool = False,
                    palette: dict[int, tuple[int, int, int, int]] | None = None) -> Overlay | None:
    """A :class:`coverage.lookup.ClassGrid` drawn as an RGBA PNG overlay; None when it has no class.

    ``palette``: RGBA per class value (default :data:`OVERLAY_RGBA`); other values are transparent.
    """
    from rasterio.warp import transform_bounds

    classes = grid.classes
    palette = OVERLAY_RGBA if palette is None else palette
    if not np.isin(classes, list(palette)).any():
        return None
    rgba = np.zeros((*classes.shape, 4), dtype=np.uint8)
    for value, colour in palette.items():
        rgba[classes == value] = colour
    height, width = classes.shape
    x0, y1 = grid.west_x, grid.north_y
    x1_grid = x0 + width * grid.cell_3857
    y0_grid = y1 - height * grid.cell_3857
    w, s, e, n = transform_bounds("EPSG:3857", "EPSG:4326", x0, y0_grid, x1_grid, y1)
    if gcj02:
        from coverage.chinacrs import wgs84_to_gcj02

        clon, clat = (w + e) / 2.0, (s + n) / 2.0
        glon, glat = wgs84_to_gcj02(clon, clat)
        dlon, dlat = float(glon) - clon, float(glat) - clat
        w, e, s, n = w + dlon, e + dlon, s + dlat, n + dlat
    bounds = [[round(s, 6), round(w, 6)], [round(n, 6), round(e, 6)]]
    return Overlay(png=_png_bytes(rgba), bounds=bounds, cell_m=grid.cell_m, classes=classes)


def _png_bytes(rgba: np.ndarray) -> bytes:
    from branca.utilities import write_png

    return write_png(np.ascontiguousarray(rgba, dtype=np.uint8), origin="upper")

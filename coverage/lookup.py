"""Lookup: answers for points — the coverage class (and signal) a run predicts at each.

Nothing here computes coverage: it reads the run's class and signal rasters, its
county and township boundaries (``stats/coverage.gpkg``) and its report, and
answers per point × technology × operator (and ``all``).

Editions
--------
* **public** (the default): every layer at the published resolution. The answer
  is the class of the point's cell in :func:`class_grid`, the very grid the
  public site's overlay and location box show (the mode of the raster's pixels in
  ``[publish] resolution_m`` cells of the county). Classes only: no signal, no CE
  level.
* **operator** (``operator=`` one operator): that operator's layers answer at the
  raster's own resolution, with ``rsrp_dbm`` and, for NB-IoT, ``ce_level``; the
  other operators' and ``all`` (which holds the others' signal) answer as in the
  public edition.

Answers (``lookup.csv`` / ``lookup.parquet``)
----------------------------------------------
One row per accepted point × layer of the run, in the order of the points:
``point_id`` (the file's id column, else the row number; ``<file>#<row>`` with
several files), ``name``, ``lon``, ``lat`` (WGS-84), ``county_code``,
``county_name``, ``township_code``, ``tech``, ``operator`` (``all``, ``ct`` …),
``coverage`` (``none``, ``outdoor``, ``deep``), ``ce_level`` (``CE0``–``CE2``
where NB-IoT covers it, operator edition), ``rsrp_dbm`` (operator edition only),
``resolution_m`` (the cell the answer comes from). A pixel beyond every sector's
reach is ``none``.

Points
------
CSV/XLSX/GeoJSON/GPKG/Shapefile, read by :mod:`coverage.tables` with the headers of :data:`POINT_COLUMNS` (经度/纬度/坐标系/
名称/编号 and English names). Coordinates in WGS-84, CGCS2000, GCJ-02 or BD-09,
per file (``crs``) or per row (坐标系). Every row read is answered or rejected
(``rejects.csv``: source_file, source_row, column, value, reason).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from coverage import chinacrs
from coverage.errors import ArgumentError, EmptyCoverageError, InputReadError, SchemaError
from coverage.layout import (
    ALL_OPERATORS,
    CLASS_DEEP,
    CLASS_NODATA,
    CLASS_NONE,
    CLASS_OUTDOOR,
    RSRP_NODATA_DBM,
    RunLayout,
)
from coverage.schema import COLUMN_BY_NAME, OPERATORS, TECH_IDS, HeaderIndex, normalise_operator

log = logging.getLogger(__name__)

EDITIONS = ("public", "operator")
#: Answer per class code (a pixel beyond reach is not covered).
COVERAGE_NAMES = {CLASS_NONE: "none", CLASS_OUTDOOR: "outdoor", CLASS_DEEP: "deep", CLASS_NODATA: "none"}
#: Operators of the answers, "all" first (lower-case, as in the stats columns).
OPERATOR_KEYS: tuple[str, ...] = (ALL_OPERATORS, *(op.code.lower() for op in OPERATORS))
ANSWER_COLUMNS = ("point_id", "name", "lon", "lat", "county_code", "county_name", "township_code", "tech",
                  "operator", "coverage", "ce_level", "rsrp_dbm", "resolution_m")
#: Longitude/latitude decimals in lookup.csv (1e-6° ≈ 0.1 m; the Parquet keeps float64).
CSV_COORD_DECIMALS = 6
#: NB-IoT coverage-enhancement levels, best first (TS 36.331 SIB2-NB; thresholds in raster/report.json).
CE_LEVEL_NAMES = ("CE0", "CE1", "CE2")
# China's extent, as ingest checks submissions (degrees)
_LON_RANGE = (73.0, 136.0)
_LAT_RANGE = (3.0, 54.0)

#: Headers of a points file: canonical name -> accepted headers (lon/lat/crs as in submissions).
POINT_COLUMNS: dict[str, tuple[str, ...]] = {
    "point_id": ("编号", "点位编号", "序号", "ID", "id", "point_id", "pointid", "no", "code", "编码"),
    "name": ("名称", "点位名称", "地址", "name", "address", "label"),
    "lon": (COLUMN_BY_NAME["lon"].name, *COLUMN_BY_NAME["lon"].aliases),
    "lat": (COLUMN_BY_NAME["lat"].name, *COLUMN_BY_NAME["lat"].aliases),
    "crs": (COLUMN_BY_NAME["crs"].name, *COLUMN_BY_NAME["crs"].aliases),
}
_POINT_HEADERS = HeaderIndex(POINT_COLUMNS.items())


def match_point_columns(headers) -> dict[str, str]:
    """Map point columns (point_id, name, lon, lat, crs) to the first header matching each.

    Examples
    --------
    >>> match_point_columns(["编号", "名称", "经度", "纬度", "坐标系", "备注"])
    {'point_id': '编号', 'name': '名称', 'lon': '经度', 'lat': '纬度', 'crs': '坐标系'}
    """
    return _POINT_HEADERS.match(headers)


# ---------------------------------------------------------------- the published grid


def lonlat_to_3857(xy: np.ndarray) -> np.ndarray:
    """WGS-84 ``(lon, lat)`` rows to EPSG:3857 metres (the spherical formula; the page's JS uses the same)."""
    radius_m = 6378137.0
    lon = np.radians(xy[:, 0])
    lat = np.radians(np.clip(xy[:, 1], -85.05112878, 85.05112878))
    return np.column_stack([radius_m * lon, radius_m * np.log(np.tan(np.pi / 4 + lat / 2))])


@dataclass(frozen=True)
class ClassGrid:
    """The coverage classes of one unit at the published resolution, in EPSG:3857.

    Cell ``[row, col]`` spans x ``west_x + col·cell_3857`` … ``+ cell_3857`` and y
    ``north_y − row·cell_3857`` … ``− cell_3857`` (EPSG:3857 metres); its class
    is the mode of the source pixels, :data:`CLASS_NODATA` outside the unit.
    The public site's overlay, its location box and the public answers of
    :func:`lookup_points` all read this grid, so a point's published class is the
    same wherever it is shown.
    """

    classes: np.ndarray  # uint8, top row first
    west_x: float
    north_y: float
    cell_3857: float
    cell_m: float  # on the ground at the unit's centre latitude

    def cells_of(self, lon_deg, lat_deg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, col, on_grid) of WGS-84 points; row/col are clipped where off the grid."""
        xy = lonlat_to_3857(np.column_stack([np.asarray(lon_deg, float).ravel(), np.asarray(lat_deg, float).ravel()]))
        col = np.floor((xy[:, 0] - self.west_x) / self.cell_3857).astype(np.int64)
        row = np.floor((self.north_y - xy[:, 1]) / self.cell_3857).astype(np.int64)
        height, width = self.classes.shape
        on_grid = (row >= 0) & (row < height) & (col >= 0) & (col < width)
        return np.clip(row, 0, height - 1), np.clip(col, 0, width - 1), on_grid

    def class_at(self, lon_deg, lat_deg) -> np.ndarray:
        """Class of each WGS-84 point (:data:`CLASS_NODATA` off the grid or outside the unit)."""
        row, col, on_grid = self.cells_of(lon_deg, lat_deg)
        return np.where(on_grid, self.classes[row, col], CLASS_NODATA).astype(np.uint8)


def class_grid(class_path: str | os.PathLike, geometry, publish_resolution_m: float) -> ClassGrid | None:
    """The coverage classes inside one unit, aggregated to the published resolution.

    The class raster (equal-area CRS) is warped straight onto an EPSG:3857 grid
    whose cells are ``publish_resolution_m`` on the ground (at the unit's centre
    latitude) or the source resolution if coarser, with the *mode* rule (the most
    frequent class of the source cells); cells outside ``geometry`` (all touched
    cells kept) are set to :data:`CLASS_NODATA`. This is the one place the public
    edition's raster resolution is made.

    Parameters
    ----------
    class_path : path
        ``raster/<tech>[_<op>]_class.tif`` (uint8, 0/1/2, nodata 255).
    geometry : shapely geometry, EPSG:4326
        The unit (a county) to clip to.
    publish_resolution_m : float, metres
        The finest cell the public edition may carry.

    Returns
    -------
    ClassGrid or None
        None when the raster is missing or the geometry empty.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.features import geometry_mask
    from rasterio.transform import from_origin
    from rasterio.warp import reproject, transform_bounds

    class_path = Path(class_path)
    if not class_path.exists() or geometry is None or geometry.is_empty:
        return None
    with rasterio.open(class_path) as src:
        src_res_m = float(max(abs(src.res[0]), abs(src.res[1])))
        cell_ground_m = max(float(publish_resolution_m), src_res_m)
        west, south, east, north = geometry.bounds
        lat0 = math.radians((south + north) / 2.0)
        cell_3857 = cell_ground_m / math.cos(lat0)
        x0, y0, x1, y1 = transform_bounds("EPSG:4326", "EPSG:3857", west, south, east, north)
        width = max(1, math.ceil((x1 - x0) / cell_3857))
        height = max(1, math.ceil((y1 - y0) / cell_3857))
        dst_transform = from_origin(x0, y1, cell_3857, cell_3857)
        classes = np.full((height, width), CLASS_NODATA, dtype=np.uint8)
        src_nodata = src.nodata if src.nodata is not None else CLASS_NODATA
        reproject(rasterio.band(src, 1), classes, src_nodata=src_nodata, dst_transform=dst_transform,
                  dst_crs="EPSG:3857", dst_nodata=CLASS_NODATA, resampling=Resampling.mode)
    geom_3857 = shapely.transform(geometry, lonlat_to_3857)
    outside = geometry_mask([geom_3857], out_shape=classes.shape, transform=dst_transform, all_touched=True)
    classes[outside] = CLASS_NODATA
    return ClassGrid(classes=classes, west_x=x0, north_y=y1, cell_3857=cell_3857, cell_m=cell_ground_m)


def publish_resolution_of(run_dir: str | os.PathLike, publish_resolution_m: float | None = None) -> float:
    """The public edition's cell (metres): the argument, else the run's ``[publish] resolution_m``, else 500.

    Never finer than the run's raster (as :func:`coverage.publish.write_site` publishes it).
    """
    from coverage.config import PublishConfig

    run = RunLayout(run_dir)
    resolution = publish_resolution_m
    manifest = _read_json(run.manifest)
    if resolution is None:
        resolution = ((manifest.get("config") or {}).get("publish") or {}).get("resolution_m")
    if resolution is None:
        resolution = PublishConfig().resolution_m
    grid_res = ((_read_json(run.predict_report).get("grid") or {}).get("resolution_m")) or 0
    return max(float(resolution), float(grid_res))


def _read_json(path: Path) -> dict:
    import json

    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- the run's layers and units


@dataclass(frozen=True)
class RunLayer:
    """One class raster of a run (and its signal raster, when there is one)."""

    tech: str
    operator: str  # "all" or a lower-case operator code
    class_path: Path
    rsrp_path: Path | None


def run_layers(run_dir: str | os.PathLike) -> list[RunLayer]:
    """The run's class rasters per technology × operator (``all`` first), those that exist.

    Raises
    ------
    EmptyCoverageError
        The run has no class raster at all.
    """
    run = RunLayout(run_dir)
    found = []
    for tech in TECH_IDS:
        for op in OPERATOR_KEYS:
            path = run.coverage_class(tech, op)
            if path.is_file():
                rsrp = run.rsrp(tech, op)
                found.append(RunLayer(tech, op, path, rsrp if rsrp.is_file() else None))
    if not found:
        raise EmptyCoverageError(f"{run.raster_dir} holds no coverage class raster: run covmap predict first")
    return found


def read_run_units(run_dir: str | os.PathLike):
    """The run's counties and (optional) townships from ``stats/coverage.gpkg``, WGS-84.

    Returns
    -------
    (counties, townships) : GeoDataFrames with ``code``, ``name`` (and ``parent``
        for townships); townships is None when the run has none.

    Raises
    ------
    InputReadError
        The GeoPackage is missing or unreadable.
    SchemaError
        No ``county`` layer, or it lacks ``code``/``name``.
    """
    import pyogrio

    path = RunLayout(run_dir).stats_gpkg
    if not path.is_file():
        raise InputReadError(f"{path} is missing: run covmap aggregate first")
    try:
        names = {str(name) for name, _ in pyogrio.list_layers(path)}
        if "county" not in names:
            raise SchemaError(f"{path} has no 'county' layer")
        counties = pyogrio.read_dataframe(path, layer="county", columns=["code", "name"])
        townships = (pyogrio.read_dataframe(path, layer="township", columns=["code", "parent"])
                     if "township" in names else None)
    except SchemaError:
        raise
    except Exception as exc:  # pyogrio raises several types
        raise InputReadError(f"{path} cannot be read: {exc}") from exc
    for frame in (counties, townships):
        if frame is None:
            continue
        if frame.crs is not None and frame.crs.to_epsg() != 4326:
            frame.to_crs(4326, inplace=True)
        for col in ("code", "name", "parent"):
            if col in frame.columns:
                frame[col] = frame[col].astype(str)
    if counties.empty:
        raise EmptyCoverageError(f"{path} layer 'county' has no rows")
    return counties, townships


def _unit_of(geometries, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Index of the polygon holding each point (the first when on a shared border), -1 for none.

    The points are sorted by longitude once; each polygon tests only those inside
    its bounding box (a slice of the sorted points), against its prepared geometry.
    """
    out = np.full(len(lon), -1, dtype=np.int64)
    if not len(lon) or not len(geometries):
        return out
    geoms = np.asarray(geometries, dtype=object)
    shapely.prepare(geoms)
    order = np.argsort(lon, kind="stable")
    sorted_lon = lon[order]
    for i, (west, south, east, north) in enumerate(shapely.bounds(geoms)):
        if not np.isfinite(west):
            continue
        start = np.searchsorted(sorted_lon, west, side="left")
        stop = np.searchsorted(sorted_lon, east, side="right")
        candidates = order[start:stop]
        candidates = candidates[(lat[candidates] >= south) & (lat[candidates] <= north) & (out[candidates] < 0)]
        if len(candidates):
            hit = shapely.intersects_xy(geoms[i], lon[candidates], lat[candidates])
            out[candidates[hit]] = i
    return out


# ---------------------------------------------------------------- reading points


@dataclass
class Points:
    """Accepted points (WGS-84) and the rows rejected, as :func:`read_points` returns them."""

    frame: pd.DataFrame  # point_id, name, lon, lat, source_file, source_row
    rejects: pd.DataFrame  # source_file, source_row, column, value, reason
    rows_read: dict[str, int]

    @property
    def total_read(self) -> int:
        return int(sum(self.rows_read.values()))


def read_points(paths: str | os.PathLike | Iterable[str | os.PathLike],
                crs: str | Mapping[str, str] = chinacrs.WGS84) -> Points:
    """Read point files and convert their coordinates to WGS-84.

    Parameters
    ----------
    paths : path or iterable of paths
        CSV (UTF-8, BOM, GBK), XLSX, GeoJSON, GeoPackage or Shapefile with the
        headers of :data:`POINT_COLUMNS`; vector files may give point geometry.
    crs : str or mapping, default 'wgs84'
        Datum where a row's 坐标系 is blank: ``wgs84``, ``cgcs2000``, ``gcj02``,
        ``bd09`` (any alias of :func:`coverage.chinacrs.normalise_crs_name`), or
        ``{path: crs}`` per file.

    Returns
    -------
    Points
        Accepted rows plus rejected ones; ``accepted + distinct rejected rows =
        rows read``.

    Raises
    ------
    ArgumentError
        No file, or an unknown ``crs``.
    InputReadError
        A file is missing, of an unknown format or has no 经度/纬度 columns.
    """
    from coverage.row_checks import Rejects, cells, resolve_datums
    from coverage.tables import normalise_ids, parse_degrees, read_raw_table

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [str(p) for p in paths]
    if not paths:
        raise ArgumentError("read_points: no point files given")
    crs_of = _crs_of_files(crs, paths)
    frames, problems, rows_read = [], [], {}
    offset = 0
    for path in paths:
        table = read_raw_table(path, match_point_columns)
        frame = table.frame.reset_index(drop=True)
        for col in ("point_id", "name", "lon", "lat", "crs"):
            frame[col] = (frame[col].astype("str").fillna("").str.strip() if col in frame
                          else pd.Series("", index=frame.index, dtype="str"))
        header = {col: table.headers.get(col, col) for col in ("lon", "lat", "crs")}
        # a reprojected layer is WGS-84 now, whatever its rows say
        frame["_wgs84"] = table.crs_fixed
        frame["_default_crs"] = crs_of[path] or table.default_crs or chinacrs.WGS84
        frame["source_file"] = table.name
        frame["_lon_header"], frame["_lat_header"], frame["_crs_header"] = header["lon"], header["lat"], header["crs"]
        problems += [(offset + pos, col, value, reason, check) for pos, col, value, reason, check in table.problems]
        frames.append(frame)
        rows_read[table.name] = int(len(frame))
        offset += len(frame)
    raw = pd.concat(frames, ignore_index=True)
    n = len(raw)
    rej = Rejects(n, pd.DataFrame(problems, columns=["pos", "column", "value", "reason", "check"]))

    def add(mask, header, value, reason, check):
        """One line per rejected row: the first problem found (a swapped pair is not also out of range)."""
        rej.add(np.asarray(mask, dtype=bool) & ~rej.bad, header, value, reason, check)

    lon, lon_blank, lon_bad = parse_degrees(raw["lon"])
    lat, lat_blank, lat_bad = parse_degrees(raw["lat"])
    lon_h, lat_h = cells(raw["_lon_header"]), cells(raw["_lat_header"])
    lon_value, lat_value = cells(raw["lon"]), cells(raw["lat"])
    add(lon_blank, lon_h, "", "longitude missing (经度 is blank)", "missing")
    add(lat_blank, lat_h, "", "latitude missing (纬度 is blank)", "missing")
    add(lon_bad, lon_h, lon_value, lambda p: "longitude is not a number (" + lon_value(p) + ")", "not a number")
    add(lat_bad, lat_h, lat_value, lambda p: "latitude is not a number (" + lat_value(p) + ")", "not a number")
    in_lon = (lon >= _LON_RANGE[0]) & (lon <= _LON_RANGE[1])
    in_lat = (lat >= _LAT_RANGE[0]) & (lat <= _LAT_RANGE[1])
    swapped = ~(in_lon & in_lat) & (lat >= _LON_RANGE[0]) & (lat <= _LON_RANGE[1]) & (lon >= _LAT_RANGE[0]) & (
        lon <= _LAT_RANGE[1])

    def pair(p):
        return lon_value(p) + ", " + lat_value(p)

    def pair_h(p):
        return lon_h(p) + "/" + lat_h(p)

    add(swapped, pair_h, pair, "纬度/经度 appear swapped: the longitude looks like a latitude and the "
                               "latitude like a longitude", "swapped")
    add(~in_lon, lon_h, lon_value, "longitude is outside China's extent (73–136°E)", "out of range")
    add(~in_lat, lat_h, lat_value, "latitude is outside China's extent (3–54°N)", "out of range")
    resolve_datums(rej, raw["crs"].where(~raw["_wgs84"], ""), raw["_default_crs"], cells(raw["_crs_header"]),
                   lon, lat, ~rej.bad, already_wgs84=raw["_wgs84"].to_numpy(bool), noun="points")
    ok = ~rej.bad
    ids = normalise_ids(raw["point_id"][ok]).to_numpy(object)
    blank_id = ids == ""
    if blank_id.any():  # the row number, with the file's name when there are several
        rows = raw["source_row"].to_numpy(np.int64)[ok][blank_id].astype(str).astype(object)
        if len(paths) > 1:
            rows = np.array([Path(f).name for f in raw["source_file"].to_numpy(object)[ok][blank_id]],
                            dtype=object) + "#" + rows
        ids[blank_id] = rows
    accepted = pd.DataFrame({
        "point_id": ids, "name": raw["name"].to_numpy(object)[ok],
        "lon": lon[ok], "lat": lat[ok],
        "source_file": raw["source_file"].to_numpy(object)[ok],
        "source_row": raw["source_row"].to_numpy(np.int64)[ok],
    })
    lines = rej.frame()
    pos = lines["pos"].to_numpy(np.int64)
    rejects = pd.DataFrame({
        "source_file": raw["source_file"].to_numpy(object)[pos], "source_row": raw["source_row"].to_numpy(np.int64)[pos],
        "column": lines["column"].to_numpy(object), "value": lines["value"].to_numpy(object),
        "reason": lines["reason"].to_numpy(object)})
    log.info("read %d points from %d files: %d accepted, %d rejected", n, len(paths), int(ok.sum()),
             int((~ok).sum()))
    return Points(accepted, rejects, rows_read)


def _crs_of_files(crs, paths: list[str]) -> dict[str, str | None]:
    given = {str(k): v for k, v in crs.items()} if isinstance(crs, Mapping) else {p: crs for p in paths}
    out: dict[str, str | None] = {}
    for path in paths:
        value = given.get(path)
        if value is None:
            out[path] = None
            continue
        name = chinacrs.normalise_crs_name(value)
        if name is None:
            raise ArgumentError(f"unknown coordinate system {value!r} for {path}; use one of "
                                f"{', '.join(chinacrs.CRS_NAMES)}")
        out[path] = name
    return out


# ---------------------------------------------------------------- answering


def lookup_points(run_dir: str | os.PathLike, points: pd.DataFrame, edition: str = "public",
                  operator: str | None = None, publish_resolution_m: float | None = None,
                  progress: Callable[[int, int], None] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Answer the coverage at WGS-84 points from a run's rasters.

    Parameters
    ----------
    run_dir : path
        A run directory with ``raster/`` and ``stats/coverage.gpkg``.
    points : pandas.DataFrame
        ``point_id``, ``lon``, ``lat`` (WGS-84 degrees), optional ``name``.
    edition : {"public", "operator"}, default "public"
        See the module docstring.
    operator : str, optional
        Any spelling of one operator (``中国电信``, ``CT``); operator edition only.
    publish_resolution_m : float, metres, optional
        The public cell; default the run's ``[publish] resolution_m``
        (:func:`publish_resolution_of`).
    progress : callable(done, total), optional
        Called after each layer.

    Returns
    -------
    (answers, outside) : (pandas.DataFrame, numpy.ndarray of bool)
        ``answers`` has :data:`ANSWER_COLUMNS` (no ``rsrp_dbm`` in the public
        edition), point-major; ``outside`` marks the points in no county of the
        run (they get no answer).

    Raises
    ------
    ArgumentError
        Bad edition or operator, or ``points`` lacks columns.
    InputReadError, SchemaError, EmptyCoverageError
        The run's boundaries or rasters are missing.
    """
    own = _check_edition(edition, operator)
    missing = [c for c in ("point_id", "lon", "lat") if c not in points.columns]
    if missing:
        raise ArgumentError(f"points lack columns {missing}")
    layers = run_layers(run_dir)
    counties, townships = read_run_units(run_dir)
    resolution_m = publish_resolution_of(run_dir, publish_resolution_m)
    lon = points["lon"].to_numpy(np.float64)
    lat = points["lat"].to_numpy(np.float64)
    county = _unit_of(counties.geometry.values, lon, lat)
    outside = county < 0
    keep = np.flatnonzero(~outside)
    lon, lat, county = lon[keep], lat[keep], county[keep]
    town = _unit_of(townships.geometry.values, lon, lat) if townships is not None else np.full(len(keep), -1)
    town_codes = np.append(townships["code"].to_numpy(object), "") if townships is not None else np.array([""])
    ce = _ce_thresholds(run_dir)
    n = len(keep)
    groups = _county_groups(county) if n else None
    blocks = []
    for done, layer in enumerate(layers, start=1):
        full = own is not None and layer.operator == own
        if full:
            classes, rsrp, cell_m = _pixel_answers(layer, lon, lat)
        else:
            classes, cell_m = _published_answers(layer, counties.geometry.values, county, lon, lat, resolution_m,
                                                 groups)
            rsrp = np.full(n, np.nan, dtype=np.float32)
        ce_level = _ce_levels(classes, rsrp, ce.get(layer.tech) if full else None)
        blocks.append((layer, classes, rsrp, ce_level, cell_m))
        if progress is not None:
            progress(done, len(layers))
    answers = _answer_frame(points.iloc[keep], counties, county, town_codes, np.where(town < 0, len(town_codes) - 1,
                                                                                  town), blocks, edition)
    log.info("answered %d points × %d layers (%s edition); %d points in no county of the run", n, len(layers),
             edition, int(outside.sum()))
    return answers, outside


def _check_edition(edition: str, operator: str | None) -> str | None:
    if edition not in EDITIONS:
        raise ArgumentError(f"edition {edition!r} is not one of {', '.join(EDITIONS)}")
    if edition == "public":
        if operator:
            raise ArgumentError("operator is only for the operator edition (edition='operator')")
        return None
    if not operator:
        raise ArgumentError("the operator edition needs an operator (e.g. 中国电信)")
    code = normalise_operator(operator)
    if code is None:
        raise ArgumentError(f"unknown operator {operator!r}: use 中国电信/中国移动/中国联通/中国广电 or CT/CM/CU/CBN")
    return code.lower()


def _ce_thresholds(run_dir) -> dict[str, dict[str, float]]:
    report = _read_json(RunLayout(run_dir).predict_report)
    out = {}
    for tech, entry in (report.get("techs") or {}).items():
        ce = ((entry or {}).get("thresholds_dbm") or {}).get("ce")
        if ce:
            out[tech] = {k: float(v) for k, v in ce.items()}
    return out


def _ce_levels(classes: np.ndarray, rsrp: np.ndarray, thresholds: dict | None) -> np.ndarray:
    """Index into ``("", *CE_LEVEL_NAMES)`` of each point: its CE level where covered, 0 (blank) elsewhere.

    The statistics' rule (:mod:`coverage.zonal`): CE0 ``rsrp ≥ CE0``, CE1 ``CE1 ≤ rsrp < CE0``,
    CE2 ``CE2 ≤ rsrp < CE1``, for covered points (class ≥ 1).
    """
    out = np.zeros(len(classes), dtype=np.int8)
    if not thresholds:
        return out
    covered = (classes == CLASS_OUTDOOR) | (classes == CLASS_DEEP)
    for code, level in enumerate(CE_LEVEL_NAMES[::-1]):  # CE2 first: the better levels overwrite
        if level in thresholds:
            out[covered & (rsrp >= thresholds[level])] = len(CE_LEVEL_NAMES) - code
    return out


def _published_answers(layer: RunLayer, county_geoms, county: np.ndarray, lon, lat, resolution_m: float,
                       groups: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Class of each point's cell in its county's :func:`class_grid`, and that cell's size (m).

    ``groups`` is :func:`_county_groups` of ``county`` when the caller has it (one sort for every layer).
    """
    classes = np.full(len(lon), CLASS_NODATA, dtype=np.uint8)
    cell_m = np.full(len(lon), np.nan)
    if not len(lon):
        return classes, cell_m
    order, starts = groups if groups is not None else _county_groups(county)
    for start, stop in zip(starts, np.r_[starts[1:], len(order)], strict=True):
        idx = order[start:stop]
        grid = class_grid(layer.class_path, county_geoms[county[idx[0]]], resolution_m)
        if grid is None:
            continue
        classes[idx] = grid.class_at(lon[idx], lat[idx])
        cell_m[idx] = grid.cell_m
    return classes, cell_m


def _county_groups(county: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points ordered by county (stable) and where each county's run starts in that order."""
    order = np.argsort(county, kind="stable")
    return order, np.flatnonzero(np.r_[True, np.diff(county[order]) != 0])


def _pixel_answers(layer: RunLayer, lon, lat) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Class and RSRP of each point's own raster pixel (read block by block, never per point)."""
    import rasterio
    from pyproj import Transformer

    with rasterio.open(layer.class_path) as src:
        to_raster = Transformer.from_crs("EPSG:4326", src.crs, always_xy=True)
        x, y = to_raster.transform(lon, lat)
        inverse = ~src.transform
        col_f, row_f = inverse @ (np.asarray(x), np.asarray(y))
        row = np.floor(row_f).astype(np.int64)
        col = np.floor(col_f).astype(np.int64)
        res_m = float(max(abs(src.res[0]), abs(src.res[1])))
        classes = sample_pixels(src, row, col, CLASS_NODATA).astype(np.uint8)
    rsrp = np.full(len(lon), np.nan, dtype=np.float32)
    if layer.rsrp_path is not None:
        with rasterio.open(layer.rsrp_path) as src:
            values = sample_pixels(src, row, col, RSRP_NODATA_DBM).astype(np.float32)
            nodata = src.nodata if src.nodata is not None else RSRP_NODATA_DBM
        rsrp = np.where(values == nodata, np.nan, values).astype(np.float32)
    return classes, rsrp, np.full(len(lon), res_m)


def sample_pixels(src, row: np.ndarray, col: np.ndarray, fill) -> np.ndarray:
    """Values of band 1 of an open raster at integer pixel positions, ``fill`` off the raster.

    Reads only the internal blocks that hold a point, each once (points sorted by
    block): a million points cost as many reads as blocks they fall in.
    """
    from rasterio.windows import Window

    out = np.full(len(row), fill, dtype=src.dtypes[0])
    on = (row >= 0) & (row < src.height) & (col >= 0) & (col < src.width)
    if not on.any():
        return out
    block_h, block_w = src.block_shapes[0]
    idx = np.flatnonzero(on)
    brow, bcol = row[idx] // block_h, col[idx] // block_w
    key = brow * (src.width // block_w + 1) + bcol
    order = np.argsort(key, kind="stable")
    idx, key, brow, bcol = idx[order], key[order], brow[order], bcol[order]
    starts = np.flatnonzero(np.r_[True, np.diff(key) != 0])
    for start, stop in zip(starts, np.r_[starts[1:], len(idx)], strict=True):
        r0, c0 = int(brow[start]) * block_h, int(bcol[start]) * block_w
        window = Window(c0, r0, min(block_w, src.width - c0), min(block_h, src.height - r0))
        block = src.read(1, window=window)
        part = idx[start:stop]
        out[part] = block[row[part] - r0, col[part] - c0]
    return out


def _categorical(values: np.ndarray, pick: np.ndarray) -> pd.Categorical:
    """``values[pick]`` as a categorical, factorising ``values`` (short) rather than the picked rows (long)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    return _from_codes(codes, uniques, pick)


def _unit_categorical(unit_values: np.ndarray, unit_of_point: np.ndarray, pick: np.ndarray) -> pd.Categorical:
    """``unit_values[unit_of_point][pick]`` as :func:`_categorical` gives it, factorising the few units only.

    The categories come in the order the points first name them, as factorising the
    points' values would give them.
    """
    present, first = np.unique(unit_of_point, return_index=True)
    in_order = present[np.argsort(first, kind="stable")]
    value_codes, uniques = pd.factorize(np.asarray(unit_values, dtype=object)[in_order])
    code_of_unit = np.full(len(unit_values), -1, dtype=np.int64)
    code_of_unit[in_order] = value_codes
    return _from_codes(code_of_unit[unit_of_point], uniques, pick)


def _from_codes(codes: np.ndarray, uniques, pick: np.ndarray) -> pd.Categorical:
    small = np.int8 if len(uniques) < 128 else np.int16 if len(uniques) < 32768 else np.int32
    return pd.Categorical.from_codes(codes.astype(small)[pick], categories=pd.Index(uniques, dtype=object))


def _answer_frame(points: pd.DataFrame, counties, county: np.ndarray, town_codes: np.ndarray, town: np.ndarray,
                  blocks, edition: str) -> pd.DataFrame:
    """Point-major answers: point 1's layers, then point 2's …

    ``town`` indexes ``town_codes`` per point (its last entry, '', for no township).
    """
    n, k = len(points), len(blocks)
    per_point = np.repeat(np.arange(n), k)  # row r answers point r // k, layer r % k
    per_layer = np.tile(np.arange(k), n)

    def layered(values_per_layer, dtype) -> np.ndarray:
        return np.column_stack(values_per_layer).ravel().astype(dtype) if n else np.array([], dtype=dtype)

    names = points["name"].to_numpy(object) if "name" in points else np.full(n, "", dtype=object)
    classes = layered([b[1] for b in blocks], np.uint8)
    class_codes = np.zeros(256, dtype=np.int8)
    class_codes[CLASS_OUTDOOR], class_codes[CLASS_DEEP] = 1, 2
    ce_names = ["", *CE_LEVEL_NAMES]
    ce_codes = layered([b[3] for b in blocks], np.int8)
    frame = pd.DataFrame({
        "point_id": _categorical(points["point_id"].to_numpy(object), per_point),
        "name": _categorical(names, per_point),
        "lon": points["lon"].to_numpy(np.float64)[per_point],
        "lat": points["lat"].to_numpy(np.float64)[per_point],
        "county_code": _unit_categorical(counties["code"].to_numpy(object), county, per_point),
        "county_name": _unit_categorical(counties["name"].to_numpy(object), county, per_point),
        "township_code": _unit_categorical(town_codes, town, per_point),
        "tech": _categorical(np.array([b[0].tech for b in blocks], dtype=object), per_layer),
        "operator": _categorical(np.array([b[0].operator for b in blocks], dtype=object), per_layer),
        "coverage": pd.Categorical.from_codes(class_codes[classes], categories=pd.Index(
            ["none", "outdoor", "deep"], dtype=object)),
        "ce_level": pd.Categorical.from_codes(ce_codes, categories=pd.Index(ce_names, dtype=object)),
        "rsrp_dbm": layered([b[2] for b in blocks], np.float32),
        "resolution_m": layered([b[4] for b in blocks], np.float64),
    }, columns=list(ANSWER_COLUMNS), copy=False)  # fresh arrays: no 2-D float block to copy them into
    if edition == "public":
        frame = frame.drop(columns=["rsrp_dbm"])
    return frame


# ---------------------------------------------------------------- the batch


@dataclass
class LookupResult:
    """What :func:`lookup` wrote and counted."""

    out_dir: Path
    edition: str
    operator: str | None
    rows_read: int
    points: int  # answered
    rejected: int  # distinct rows rejected
    answers: int  # rows of lookup.csv
    layers: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)  # read, answer, write (wall seconds)


def lookup(run_dir: str | os.PathLike, paths, out_dir: str | os.PathLike, edition: str = "public",
           operator: str | None = None, crs: str | Mapping[str, str] = chinacrs.WGS84,
           publish_resolution_m: float | None = None, overwrite: bool = False,
           progress: Callable[[int, int], None] | None = None) -> LookupResult:
    """Read point files, answer them from a run and write ``lookup.csv``, ``lookup.parquet``, ``rejects.csv``.

    Parameters
    ----------
    run_dir : path
        The run to answer from.
    paths : path or iterable of paths
        Point files (see :func:`read_points`).
    out_dir : path
        Folder of the three files (created). Existing files there need ``overwrite``.
    edition, operator, publish_resolution_m, progress
        As :func:`lookup_points`.
    crs : str or mapping, default 'wgs84'
        As :func:`read_points`.
    overwrite : bool, default False

    Returns
    -------
    LookupResult
        ``rows_read == points + rejected`` always.

    Raises
    ------
    ArgumentError, InputReadError, SchemaError, EmptyCoverageError, FileOverwriteError

    Examples
    --------
    >>> lookup("runs/sample", ["meters.xlsx"], "out", crs="gcj02")  # doctest: +SKIP
    LookupResult(out_dir=PosixPath('out'), edition='public', ..., points=200000, rejected=12, ...)
    """
    from coverage.files import check_writable

    own = _check_edition(edition, operator)
    out = Path(out_dir)
    targets = {"csv": out / "lookup.csv", "parquet": out / "lookup.parquet", "rejects": out / "rejects.csv"}
    for path in targets.values():
        check_writable(path, overwrite)
    started = time.perf_counter()
    points = read_points(paths, crs)
    timings = {"read": time.perf_counter() - started}
    started = time.perf_counter()
    answers, outside = lookup_points(run_dir, points.frame, edition, operator, publish_resolution_m, progress)
    timings["answer"] = time.perf_counter() - started
    started = time.perf_counter()
    lost = points.frame[outside]
    rejects = points.rejects
    if len(lost):
        rejects = pd.concat([rejects, pd.DataFrame({
            "source_file": lost["source_file"].to_numpy(object), "source_row": lost["source_row"].to_numpy(),
            "column": "经度/纬度",
            "value": [f"{x:.6f}, {y:.6f}" for x, y in zip(lost["lon"], lost["lat"], strict=True)],
            "reason": "point (WGS-84) is in no county of this run"})], ignore_index=True)
    rejects = rejects.sort_values(["source_file", "source_row"], kind="stable").reset_index(drop=True)
    out.mkdir(parents=True, exist_ok=True)
    write_answers(answers, targets["csv"], targets["parquet"], overwrite=True)
    from coverage.row_checks import write_rejects

    write_rejects(rejects, targets["rejects"], overwrite=True)
    timings["write"] = time.perf_counter() - started
    rejected = int(len(rejects[["source_file", "source_row"]].drop_duplicates()))
    answered = int(len(points.frame) - len(lost))
    if answered + rejected != points.total_read:
        raise SchemaError(f"lookup lost rows: {points.total_read} read, {answered} answered, {rejected} rejected")
    layer_keys = [f"{t}_{o}" for t, o in answers[["tech", "operator"]].drop_duplicates().itertuples(index=False)]
    return LookupResult(out_dir=out, edition=edition, operator=own,
                        rows_read=points.total_read, points=answered, rejected=rejected, answers=int(len(answers)),
                        layers=layer_keys, files=targets, timings_s=timings)


def write_answers(answers: pd.DataFrame, csv_path: str | os.PathLike, parquet_path: str | os.PathLike,
                  overwrite: bool = False) -> None:
    """Write answers as Parquet (full precision) and UTF-8-BOM CSV (coordinates to 1e-6°, formulas neutralised).

    The CSV goes through Arrow's writer: ten million rows take seconds, not minutes.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from coverage.files import atomic_output
    from coverage.row_checks import neutralise_formulas

    # dictionary pages for the few-valued columns only: the point ids (a million
    # distinct) and the coordinates compress better plain, in a third of the time
    few_valued = [name for name, column in answers.items()
                  if isinstance(column.dtype, pd.CategoricalDtype) and name != "point_id"]
    table = pa.Table.from_pandas(answers, preserve_index=False)
    with atomic_output(parquet_path, overwrite) as tmp:
        pq.write_table(table, tmp, compression="zstd", use_dictionary=few_valued)
    # the people's table is the same Arrow table with a few columns replaced (no second conversion)
    for col in ("lon", "lat", "rsrp_dbm"):
        if col in answers:
            decimals = 1 if col == "rsrp_dbm" else CSV_COORD_DECIMALS
            rounded = np.round(answers[col].to_numpy(np.float64), decimals)
            table = table.set_column(table.schema.get_field_index(col), col, pa.array(rounded, from_pandas=True))
    for col in ("point_id", "name"):  # neutralised once per distinct value, in the categories
        categories = pd.Series(answers[col].cat.categories.astype(object))
        safe = neutralise_formulas(pd.DataFrame({col: categories}))[col]
        if not categories.equals(safe):
            column = table.column(col).combine_chunks()
            safe_column = pa.DictionaryArray.from_arrays(column.indices, pa.array(safe.to_numpy(object), pa.string()))
            table = table.set_column(table.schema.get_field_index(col), col, safe_column)
    with atomic_output(csv_path, overwrite) as tmp:
        with open(tmp, "wb") as handle:
            handle.write("\ufeff".encode())
            # 16,384 rows a batch, not Arrow's 1,024: a fifth less time for the same bytes
            pacsv.write_csv(table, handle, pacsv.WriteOptions(quoting_style="needed", batch_size=1 << 14))


# ---------------------------------------------------------------- the map's data

#: Letters of the classes in the run-length text of :func:`grid_data` (the page's ``covmap.js`` reads them).
RUN_LETTERS = {CLASS_NONE: "n", CLASS_OUTDOOR: "o", CLASS_DEEP: "d", CLASS_NODATA: "x"}
#: Decimals of the grid origin published for the page (1e-7° ≈ 1 cm, far below a cell).
GRID_ORIGIN_DECIMALS = 7


def run_length_text(classes: np.ndarray) -> str:
    """The classes, row by row, as runs: a letter of :data:`RUN_LETTERS` and its count when above 1.

    Examples
    --------
    >>> run_length_text(np.array([[255, 255, 0], [1, 2, 2]], dtype=np.uint8))
    'x2nod2'
    """
    flat = np.asarray(classes, dtype=np.uint8).ravel()
    if not len(flat):
        return ""
    flat = np.where(np.isin(flat, list(RUN_LETTERS)), flat, CLASS_NODATA)
    starts = np.r_[0, np.flatnonzero(np.diff(flat)) + 1]
    lengths = np.diff(np.r_[starts, len(flat)])
    letters = [RUN_LETTERS[int(v)] for v in flat[starts]]
    return "".join(ch if n == 1 else f"{ch}{n}" for ch, n in zip(letters, lengths.tolist(), strict=True))


def grid_data(grids: Mapping[str, ClassGrid], too_close: Callable[[float, float], bool] | None = None) -> dict | None:
    """One unit's published grids as the compact data the map's location box reads.

    Parameters
    ----------
    grids : mapping
        ``{"<tech>_<op>": ClassGrid}`` of one unit (one lattice: same origin and cell).
    too_close : callable(lon, lat) -> bool, optional
        True when a published coordinate would lie near a submitted site (the
        public edition); the grid then grows by whole rows and columns of
        :data:`CLASS_NODATA` at its north-west corner until its origin is clear.
        The lattice, hence every point's cell, stays the same.

    Returns
    -------
    dict or None
        ``lon``/``lat`` of the north-west corner (WGS-84), ``cell`` (EPSG:3857
        metres), ``m`` (ground metres), ``w``, ``h`` and ``g``: per layer the
        :func:`run_length_text` of its classes. None without grids.
    """
    if not grids:
        return None
    first = next(iter(grids.values()))
    pad = 0
    while True:
        x0, y1 = first.west_x - pad * first.cell_3857, first.north_y + pad * first.cell_3857
        lon, lat = _mercator_to_lonlat(x0, y1)
        lon, lat = round(lon, GRID_ORIGIN_DECIMALS), round(lat, GRID_ORIGIN_DECIMALS)
        if too_close is None or not too_close(lon, lat) or pad >= 8:
            break
        pad += 1
    height, width = first.classes.shape
    runs = {}
    for key, grid in grids.items():
        if grid.classes.shape != (height, width) or grid.cell_3857 != first.cell_3857:
            log.warning("layer %s of a unit is on another lattice; left out of the map's data", key)
            continue
        classes = np.pad(grid.classes, ((pad, 0), (pad, 0)), constant_values=CLASS_NODATA)
        runs[key] = run_length_text(classes)
    return {"lon": lon, "lat": lat, "cell": round(first.cell_3857, 6), "m": first.cell_m,
            "w": width + pad, "h": height + pad, "g": runs}


def _mercator_to_lonlat(x: float, y: float) -> tuple[float, float]:
    radius_m = 6378137.0
    return math.degrees(x / radius_m), math.degrees(2.0 * math.atan(math.exp(y / radius_m)) - math.pi / 2.0)

"""Row checks every intake shares: the reject collector, datums, China's boundary, reject files.

:class:`Rejects` gathers one line per problem (row position, column, value, reason,
check); :func:`resolve_datums` reads each row's coordinate system and converts GCJ-02
and BD-09 rows to WGS-84; :func:`refuse_beyond_boundary` refuses points beyond the national
outline's tolerance; :func:`write_rejects` writes the lines so that Excel shows, and
does not run, what a sender typed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from coverage import chinacrs
from coverage.errors import SchemaError
from coverage.files import write_csv_bom
from coverage.schema import REJECT_COLUMNS
from coverage.tables import map_unique

log = logging.getLogger(__name__)

DEFAULT_BOUNDARY_TOLERANCE_KM = 5.0
"""Points up to this far outside the national outline are accepted (coast, islands, borders)."""

_METRES_PER_DEGREE = 111_320.0
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class Rejects:
    """Collects reject lines as (row position, column header, value, reason, check)."""

    def __init__(self, n_rows: int, reader_problems: pd.DataFrame | None = None):
        self.parts: list[pd.DataFrame] = []
        self.bad = np.zeros(n_rows, dtype=bool)
        if reader_problems is not None and len(reader_problems):
            self.parts.append(reader_problems)
            self.bad[reader_problems["pos"].to_numpy(dtype=np.int64)] = True

    def add(self, mask, header, value, reason, check: str) -> None:
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        pos = np.flatnonzero(mask)

        def pick(x):
            if callable(x):
                return np.asarray(x(pos), dtype=object)
            if isinstance(x, pd.Series):
                return x.to_numpy()[pos]
            if isinstance(x, np.ndarray):
                return x[pos]
            return np.full(len(pos), x, dtype=object)

        self.parts.append(pd.DataFrame({
            "pos": pos, "column": pick(header), "value": pick(value), "reason": pick(reason), "check": check,
        }))
        self.bad[pos] = True

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({"pos": pd.Series([], dtype="int64"), "column": [], "value": [], "reason": [],
                                 "check": []})
        return pd.concat(self.parts, ignore_index=True)


_OUTLINE_CACHE: dict[int, tuple[object, shapely.STRtree, np.ndarray]] = {}


def _outline_index(outline) -> tuple[shapely.STRtree, np.ndarray]:
    """An STRtree over the outline's boundary segments (cached per outline object)."""
    cached = _OUTLINE_CACHE.get(id(outline))
    if cached is not None and cached[0] is outline:
        return cached[1], cached[2]
    rings = shapely.get_parts(shapely.boundary(outline))
    segments = []
    for ring in rings:
        coords = shapely.get_coordinates(ring)
        if len(coords) > 1:
            segments.append(np.stack([coords[:-1], coords[1:]], axis=1))
    segs = shapely.linestrings(np.concatenate(segments)) if segments else np.array([], dtype=object)
    tree = shapely.STRtree(segs)
    _OUTLINE_CACHE.clear()
    _OUTLINE_CACHE[id(outline)] = (outline, tree, segs)
    return tree, segs


def outline_check(outline, lon: np.ndarray, lat: np.ndarray, tolerance_m: float) -> np.ndarray:
    """True where (lon, lat) is inside ``outline`` or within ``tolerance_m`` metres (geodesic) of it.

    Point-in-polygon on the prepared outline; points outside are then matched to the
    nearest boundary segments through an STRtree (a generous radius in degrees) and
    measured on the ellipsoid, so 1.5 million points take seconds.
    """
    from pyproj import Geod

    shapely.prepare(outline)
    inside = shapely.contains_xy(outline, lon, lat)
    if inside.all() or tolerance_m <= 0:
        return inside
    out_pos = np.flatnonzero(~inside)
    pts = shapely.points(lon[out_pos], lat[out_pos])
    # a degree of longitude is the shortest degree: the radius never misses a near point
    max_lat = float(np.clip(np.abs(lat[out_pos]).max(), 0.0, 80.0))
    radius_deg = tolerance_m / (_METRES_PER_DEGREE * np.cos(np.radians(max_lat)))
    tree, segs = _outline_index(outline)
    (pt_idx, seg_idx) = tree.query_nearest(pts, max_distance=radius_deg, all_matches=True)
    ok = np.zeros(len(out_pos), dtype=bool)
    if len(pt_idx):
        lines = shapely.shortest_line(pts[pt_idx], segs[seg_idx])
        coords = shapely.get_coordinates(lines).reshape(-1, 2, 2)
        _, _, dist_m = Geod(ellps="WGS84").inv(coords[:, 0, 0], coords[:, 0, 1], coords[:, 1, 0], coords[:, 1, 1])
        near = np.zeros(len(out_pos), dtype=bool)
        np.logical_or.at(near, pt_idx, dist_m <= tolerance_m)
        ok = near
    inside[out_pos] = ok
    return inside


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells starting with ``= + - @`` (or tab/CR) with ``'`` so Excel shows, not runs, them.

    Examples
    --------
    >>> neutralise_formulas(pd.DataFrame({"v": ["=1+1", "ok", "-5", "@SUM(A1)"]}))["v"].tolist()
    ["'=1+1", 'ok', "'-5", "'@SUM(A1)"]
    """
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind in "iufb":
            continue
        values = out[col].astype(object).where(out[col].notna(), "").astype(str)
        risky = values.str.startswith(_FORMULA_PREFIXES)
        out[col] = values.where(~risky, "'" + values)
    return out


def write_rejects(rejects: pd.DataFrame, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write rejects as UTF-8 CSV with BOM, atomically, with formulas neutralised.

    Parameters
    ----------
    rejects : pandas.DataFrame
        Columns source_file, source_row, column, value, reason.
    path : path-like
    overwrite : bool, default False
        Replace an existing file outside a run directory.

    Raises
    ------
    SchemaError
        Columns are missing.
    FileOverwriteError
        ``path`` is a user's existing file and ``overwrite`` is False.
    """
    missing = [c for c in REJECT_COLUMNS if c not in rejects.columns]
    if missing:
        raise SchemaError(f"rejects lacks columns {missing}")
    return write_csv_bom(neutralise_formulas(rejects[list(REJECT_COLUMNS)]), path, overwrite)


def cells(series: pd.Series):
    """The reject value of the rejected positions: the cell as read."""
    return lambda p: series.to_numpy(dtype=object)[p]


def quoted_cells(series: pd.Series):
    """The cell as read, quoted, for a reason text."""
    return lambda p: np.array([repr(v) for v in series.to_numpy(dtype=object)[p]], dtype=object)


def resolve_datums(rej: Rejects, crs_text: pd.Series, default_crs: pd.Series, crs_header, lon: np.ndarray,
                   lat: np.ndarray, coord_ok: np.ndarray, *, already_wgs84: np.ndarray | None = None,
                   noun: str = "rows") -> np.ndarray:
    """Each row's datum, and GCJ-02 / BD-09 rows converted to WGS-84 in ``lon``/``lat`` in place.

    A row's ``crs`` text names its datum (:func:`coverage.chinacrs.normalise_crs_name`),
    a blank one takes ``default_crs`` (the file's); an unknown name is rejected.
    ``already_wgs84`` marks rows reprojected by the reader. Returns the unknown-crs mask.
    """
    row_crs = map_unique(crs_text, chinacrs.normalise_crs_name)
    bad_crs = (crs_text != "").to_numpy() & row_crs.isna().to_numpy()
    rej.add(bad_crs, crs_header, cells(crs_text),
            lambda p: "unknown coordinate system " + quoted_cells(crs_text)(p) + ": use wgs84, cgcs2000, gcj02 or bd09",
            "unknown crs")
    datum = row_crs.where(row_crs.notna(), default_crs).to_numpy(dtype=object)
    if already_wgs84 is not None:
        datum = np.where(already_wgs84, chinacrs.WGS84, datum)
    for shifted_datum, label in ((chinacrs.GCJ02, "GCJ-02"), (chinacrs.BD09, "BD-09")):
        shifted = coord_ok & (datum == shifted_datum)
        if shifted.any():
            lon[shifted], lat[shifted] = chinacrs.to_wgs84(lon[shifted], lat[shifted], shifted_datum)
            log.info("converted %d %s from %s to WGS-84", int(shifted.sum()), noun, label)
    return bad_crs


def refuse_beyond_boundary(rej: Rejects, outline, lon: np.ndarray, lat: np.ndarray, check: np.ndarray, tolerance_m: float,
                   pair_header, pair_value) -> None:
    """Reject the ``check`` rows farther than ``tolerance_m`` outside ``outline`` (None: no check)."""
    if outline is None:
        return
    inside = np.ones(len(lon), dtype=bool)
    if check.any():
        inside[check] = outline_check(outline, lon[check], lat[check], tolerance_m)
    rej.add(~inside, pair_header, pair_value,
            lambda p: "point (" + pair_value(p) + ") is outside China's national boundary by more than "
            f"{tolerance_m / 1000:g} km", "outside boundary")

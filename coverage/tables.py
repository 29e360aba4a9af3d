"""Tables people send, read as text: CSV/TSV/TXT, XLSX and point layers, headers matched to a schema.

The readers serve every intake (submissions in :mod:`coverage.ingest`, measurements in
:mod:`coverage.measure.intake`, points to look up in :mod:`coverage.lookup`): each gives
a ``match`` function from a header row to ``{canonical column: header}`` and gets a
:class:`RawTable` of text columns back; the cell parsers below turn that text into
numbers, degrees and identifiers the same way for all of them.

* CSV / TXT / TSV in UTF-8, UTF-8 with BOM, UTF-16 (Excel "Unicode text") or
  GBK/GB18030 (detected); comma, tab, semicolon or ``|`` separated; the header row
  may sit below a few title rows (the first of the first 10 rows naming both 经度 and
  纬度 — lon and lat in the caller's schema — is taken).
* XLSX / XLSM (openpyxl): the first sheet that has a header row.
* GeoJSON, GeoPackage, Shapefile (pyogrio): point geometry gives lon/lat; a layer in a
  CRS other than WGS-84 / CGCS2000 is reprojected to WGS-84 with pyproj.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from coverage import chinacrs
from coverage.errors import InputReadError, RepeatedColumnError
from coverage.schema import match_columns, repeated_columns

log = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")
SUPPORTED_SUFFIXES = CSV_SUFFIXES + EXCEL_SUFFIXES + VECTOR_SUFFIXES
_HEADER_SCAN_ROWS = 10


@dataclass
class RawTable:
    """One file as text: canonical columns (str), their headers, and reader-level problems."""

    name: str
    frame: pd.DataFrame  # canonical column -> text; plus "source_row"
    headers: dict[str, str]  # canonical column -> header in the file
    default_crs: str | None = None  # from the file itself (vector layers)
    crs_fixed: bool = False  # coordinates already WGS-84 after reprojection
    problems: list[tuple[int, str, str, str, str]] = field(default_factory=list)  # (pos, col, value, reason, check)
    warnings: list[str] = field(default_factory=list)


def _decode(raw: bytes, name: str) -> str:
    return _decode_with_encoding(raw, name)[0]


def _decode_with_encoding(raw: bytes, name: str) -> tuple[str, str]:
    """The text and the codec that decoded it (utf-8-sig, utf-16, utf-8 or gb18030)."""
    if raw.startswith(codecs.BOM_UTF8):
        encodings = ("utf-8-sig",)
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encodings = ("utf-16",)
    else:
        encodings = ("utf-8", "gb18030")
    for encoding in encodings:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        log.debug("%s decoded as %s", name, encoding)
        return text, encoding
    raise InputReadError(f"{name}: cannot decode the text as UTF-8 or GBK/GB18030; save it as UTF-8 CSV")


def _sniff_delimiter(text: str) -> str:
    first_lines = text[:20_000].splitlines()[:_HEADER_SCAN_ROWS] or [""]
    counts = {sep: sum(line.count(sep) for line in first_lines) for sep in (",", "\t", ";", "|")}
    return max(counts, key=counts.get) if max(counts.values()) else ","


def _find_header(rows: list[list[str]], name: str, match=match_columns) -> int:
    for i, row in enumerate(rows[:_HEADER_SCAN_ROWS]):
        matched = match(row)
        if "lon" in matched and "lat" in matched:
            return i
    seen = ", ".join(str(c) for c in (rows[0] if rows else [])[:12]) or "nothing"
    raise InputReadError(
        f"{name}: no coordinate columns (经度/纬度 or lon/lat) in the first {_HEADER_SCAN_ROWS} rows; "
        f"first row has: {seen}"
    )


def _refuse_repeated_columns(headers, name: str, match=match_columns) -> None:
    """Raise RepeatedColumnError when two headers name one submission column: which one holds the
    data is the operator's to say (reading the first silently dropped the other).

    Only submissions are checked: other tables read through these readers (measurements,
    points to look up) have their own schemas, whose exports may carry two headers the
    submission schema takes as one column (G-NetTrack's ``Operator`` and ``Operatorname``).
    """
    if match is not match_columns:
        return
    repeated = repeated_columns(headers)
    if repeated:
        listed = "; ".join(f"{col} given by {' and '.join(repr(h) for h in found)}" for col, found in repeated.items())
        raise RepeatedColumnError(f"{name}: a column appears more than once ({listed}); keep one of each")


def _table_from_rows(rows: list[list[str]], name: str, match=match_columns) -> RawTable:
    """Header detection, padding and blank-row skipping shared by CSV and XLSX.

    ``match`` maps headers to canonical columns (the submission schema's
    :func:`coverage.schema.match_columns` unless another schema reads the file).
    """
    h = _find_header(rows, name, match)
    header = [str(c).strip() for c in rows[h]]
    _refuse_repeated_columns(header, name, match)
    n_cols = len(header)
    problems = []
    data = []
    numbers = []
    for offset, row in enumerate(rows[h + 1:]):
        if not any(str(c).strip() for c in row):
            continue
        source_row = offset + 1
        if len(row) > n_cols:
            extra = [c for c in row[n_cols:] if str(c).strip()]
            if extra:
                problems.append((len(data), "(row)", ",".join(extra)[:80],
                                 f"row has {len(row)} fields but the header has {n_cols}", "malformed row"))
            row = row[:n_cols]
        elif len(row) < n_cols:
            row = list(row) + [""] * (n_cols - len(row))
        data.append(row)
        numbers.append(source_row)
    matched = match(header)
    positions = {name_: header.index(hdr) for name_, hdr in matched.items()}
    if data:
        columns = list(zip(*data, strict=True))
        frame = pd.DataFrame({c: pd.Series(columns[p], dtype=object) for c, p in positions.items()})
    else:
        frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in positions})
    frame["source_row"] = np.asarray(numbers, dtype=np.int64)
    return RawTable(name, frame, dict(matched), problems=problems)


def read_csv(path: Path, name: str, match=match_columns) -> RawTable:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputReadError(f"{name}: cannot read the file ({exc.strerror or exc})") from exc
    text, encoding = _decode_with_encoding(raw, name)
    sep = "\t" if path.suffix.lower() == ".tsv" else _sniff_delimiter(text)
    try:
        head = list(itertools.islice(csv.reader(io.StringIO(text[:200_000], newline=""), delimiter=sep),
                                     _HEADER_SCAN_ROWS))
        h = _find_header(head, name, match)
        fast = _arrow_csv(raw, text, encoding, sep, h, head, name, match)
        if fast is None:
            fast = _fast_csv(text, sep, h, head[h], name, match)
        if fast is not None:
            return fast
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    except csv.Error as exc:
        raise InputReadError(f"{name}: not a readable CSV ({exc})") from exc
    return _table_from_rows(rows, name, match)


_LINE_END = re.compile(r"\r\n|\n|\r")


def _arrow_csv(raw: bytes, text: str, encoding: str, sep: str, h: int, head: list[list[str]], name: str,
               match=match_columns) -> RawTable | None:
    """Arrow's CSV reader for the common file, every row as wide as the header (a tenth of pandas' time).

    None (the pandas and csv-module readers then take the file, and report what is
    irregular) when a row has another number of fields, the header rows hold a
    quoted line break, there is no data row, or Arrow refuses the text. The values
    are the text the other readers give: quoted fields unquoted, nothing stripped,
    blank cells ''; empty lines are blank rows, skipped with their numbers kept.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    header = [c.strip() for c in head[h]]
    _refuse_repeated_columns(header, name, match)
    ends = list(itertools.islice(_LINE_END.finditer(text), h + 1))
    if len(ends) < h + 1:
        return None  # no data row below the header
    start = ends[h].end()
    if list(csv.reader(io.StringIO(text[:start], newline=""), delimiter=sep)) != head[:h + 1]:
        return None  # a header row spans lines
    if encoding.startswith("utf-8"):
        bom = len(codecs.BOM_UTF8) if encoding == "utf-8-sig" else 0
        data = pa.py_buffer(raw).slice(bom + len(text[:start].encode("utf-8")))
    else:  # GBK / UTF-16: Arrow reads UTF-8
        data = pa.py_buffer(text[start:].encode("utf-8"))
    names = [f"f{i}" for i in range(len(header))]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            # one thread: as fast as two on a shared machine, and the other core stays free
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 22),
            # an empty line is kept as a row of blank cells, so the row numbers after it stay right
            parse_options=pacsv.ParseOptions(delimiter=sep, newlines_in_values=True, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.large_string()),
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if table.num_rows == 0:
        return None
    # a blank row is blank in its first column: the other columns are looked at on those rows only
    candidates = np.flatnonzero(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(table.column(0))), 0).to_numpy())
    for column in table.columns[1:]:
        if not len(candidates):
            break
        cells = pc.take(column, pa.array(candidates))
        candidates = candidates[pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(cells)), 0).to_numpy()]
    kept = np.ones(table.num_rows, dtype=bool)
    kept[candidates] = False
    keep = np.flatnonzero(kept)
    if len(keep) < table.num_rows:
        table = table.take(keep)
    matched = match(header)
    frame = pd.DataFrame({c: table.column(header.index(hdr)).to_pandas() for c, hdr in matched.items()})
    frame["source_row"] = (keep + 1).astype(np.int64)
    log.debug("%s: %d data rows below header row %d (Arrow reader)", name, len(frame), h + 1)
    return RawTable(name, frame, dict(matched))


def _fast_csv(text: str, sep: str, h: int, header: list[str], name: str,
              match=match_columns) -> RawTable | None:
    """pandas' C parser for well-formed files; None when a row has more fields than the first."""
    header = [c.strip() for c in header]
    _refuse_repeated_columns(header, name, match)
    matched = match(header)
    try:
        data = pd.read_csv(io.StringIO(text), sep=sep, header=None, skiprows=h + 1, dtype=str,
                           keep_default_na=False, na_filter=False, skip_blank_lines=False, index_col=False)
    except pd.errors.EmptyDataError:
        data = pd.DataFrame()
    except pd.errors.ParserError:
        return None
    if data.shape[1] > len(header):
        return None  # the slow path reports the extra fields per row
    blank = np.ones(len(data), dtype=bool)
    for col in data.columns:
        blank &= (data[col].str.strip() == "").to_numpy()
    keep = np.flatnonzero(~blank)
    frame = pd.DataFrame({
        c: (data[header.index(hdr)].iloc[keep].reset_index(drop=True) if header.index(hdr) < data.shape[1]
            else pd.Series("", index=range(len(keep)), dtype="str"))
        for c, hdr in matched.items()
    })
    frame["source_row"] = (keep + 1).astype(np.int64)
    log.debug("%s: %d data rows below header row %d", name, len(frame), h + 1)
    return RawTable(name, frame, dict(matched))


def _cell_text(value: object) -> str:
    """A spreadsheet / attribute cell as text: integral floats lose their '.0', NaN is ''."""
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value)
    if isinstance(value, (np.floating, np.integer)):
        return _cell_text(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


def read_excel(path: Path, name: str, match=match_columns) -> RawTable:
    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=object, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many types for a corrupt file
        raise InputReadError(f"{name}: not a readable XLSX workbook ({type(exc).__name__}: {exc})") from exc
    for sheet_name, sheet in sheets.items():
        rows = [[_cell_text(v) for v in row] for row in sheet.itertuples(index=False, name=None)]
        try:
            table = _table_from_rows(rows, name, match)
        except InputReadError:
            continue
        log.debug("%s: using sheet %r", name, sheet_name)
        return table
    raise InputReadError(f"{name}: no sheet has coordinate columns (经度/纬度 or lon/lat) in its first rows")


def _crs_name_of_layer(crs) -> str | None:
    """'wgs84' / 'cgcs2000' for geographic WGS-84/CGCS2000 layers, None for anything else."""
    if not crs.is_geographic:
        return None
    datum = crs.datum.name if crs.datum is not None else ""
    if crs.to_epsg() == 4490 or "China 2000" in datum:
        return chinacrs.CGCS2000
    if crs.to_epsg() == 4326 or "World Geodetic System 1984" in datum:
        return chinacrs.WGS84
    return None


def _geojson_repeated_keys(path: Path) -> list[str]:
    """Keys that one JSON object of the file holds twice (GDAL keeps the last without a word)."""
    import json

    repeated: set[str] = set()

    def note_repeats(pairs):
        keys = [key for key, _ in pairs]
        repeated.update(key for key in keys if keys.count(key) > 1)
        return dict(pairs)

    try:
        json.loads(path.read_bytes(), object_pairs_hook=note_repeats)
    except (OSError, ValueError):  # unreadable or not JSON: GDAL has read it, or says why
        return []
    return sorted(repeated)


def _read_vector(path: Path, name: str, match=match_columns) -> RawTable:
    import pyogrio

    try:
        layers = pyogrio.list_layers(path)
        layer = next((str(lyr) for lyr, gtype in layers if gtype and "Point" in str(gtype)), None)
        if layer is None and len(layers):
            layer = str(layers[0][0])
        gdf = pyogrio.read_dataframe(path, layer=layer)
    except Exception as exc:  # pyogrio.errors.DataSourceError and friends
        raise InputReadError(f"{name}: not a readable vector file ({type(exc).__name__}: {exc})") from exc
    warnings = []
    default_crs, crs_fixed = None, False
    if gdf.crs is not None:
        default_crs = _crs_name_of_layer(gdf.crs)
        if default_crs is None:
            source_crs = gdf.crs.to_string()
            gdf = gdf.to_crs(4326)
            default_crs, crs_fixed = chinacrs.WGS84, True
            warnings.append(f"{name}: reprojected from {source_crs} to WGS-84")
    attrs = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    repeated_keys = _geojson_repeated_keys(path) if path.suffix.lower() in (".geojson", ".json") else []
    _refuse_repeated_columns([*(str(c) for c in attrs.columns), *(k for k in repeated_keys if k in attrs)], name,
                             match)
    headers = match([str(c) for c in attrs.columns])
    frame = pd.DataFrame({c: attrs[h].map(_cell_text).astype(object) for c, h in headers.items()})
    geom = gdf.geometry.array
    problems = []
    is_point = np.asarray(gdf.geometry.geom_type == "Point") & ~np.asarray(gdf.geometry.is_empty)
    single_multi = np.asarray(gdf.geometry.geom_type == "MultiPoint") & (
        shapely.get_num_geometries(geom) == 1
    )
    points = np.where(single_multi, shapely.get_geometry(geom, 0), geom)
    usable = is_point | single_multi
    x = np.where(usable, shapely.get_x(np.where(usable, points, None)), np.nan)
    y = np.where(usable, shapely.get_y(np.where(usable, points, None)), np.nan)
    has_attr = "lon" in headers and "lat" in headers
    lon_text = pd.Series([repr(float(v)) for v in x], dtype=object)
    lat_text = pd.Series([repr(float(v)) for v in y], dtype=object)
    if has_attr:
        lon_text = lon_text.where(usable, frame["lon"])
        lat_text = lat_text.where(usable, frame["lat"])
    else:
        kinds = gdf.geometry.geom_type.fillna("no geometry").to_numpy()
        for pos in np.flatnonzero(~usable):
            problems.append((int(pos), "geometry", str(kinds[pos]),
                             f"geometry is {kinds[pos]}, not a point, and there are no 经度/纬度 columns",
                             "not a point"))
        lon_text = lon_text.where(usable, "")
        lat_text = lat_text.where(usable, "")
    frame["lon"], frame["lat"] = lon_text.to_numpy(), lat_text.to_numpy()
    headers["lon"] = headers["lat"] = "geometry"
    if has_attr:
        headers["lon"], headers["lat"] = "geometry/" + match(attrs.columns)["lon"], (
            "geometry/" + match(attrs.columns)["lat"])
    frame["source_row"] = np.arange(1, len(frame) + 1, dtype=np.int64)
    return RawTable(name, frame, headers, default_crs=default_crs, crs_fixed=crs_fixed, problems=problems,
                     warnings=warnings)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read one submission file as text columns with canonical names (no validation).

    Parameters
    ----------
    path : str or path-like
        CSV/TXT/TSV, XLSX/XLSM, GeoJSON, GeoPackage or Shapefile.

    Returns
    -------
    pandas.DataFrame
        Columns named after :data:`coverage.schema.COLUMNS` (only those found, as
        text; lon/lat from point geometry for vector files) plus ``source_row``.

    Raises
    ------
    InputReadError
        The file is missing, of an unknown format, undecodable or has no
        coordinate columns.
    """
    return _read_any(Path(path), str(path)).frame


def read_raw_table(path: str | os.PathLike, match=match_columns) -> RawTable:
    """Read one file of any supported format with a caller's column matcher (no validation).

    The readers of submissions serve other point tables too (``coverage.lookup``):
    ``match`` maps a header row to ``{canonical name: header}`` and must find
    ``lon`` and ``lat`` (:func:`coverage.schema.match_columns` by default).

    Returns
    -------
    RawTable
        ``frame`` (canonical columns as text, plus ``source_row``), ``headers``,
        ``default_crs`` of a vector layer, ``crs_fixed`` when it was reprojected,
        and reader-level ``problems`` (position, column, value, reason, check).

    Raises
    ------
    InputReadError
        As :func:`read_table`.
    """
    return _read_any(Path(path), str(path), match)


def _read_any(path: Path, name: str, match=match_columns) -> RawTable:
    if not path.exists():
        raise InputReadError(f"{name}: no such file")
    if path.is_dir():
        raise InputReadError(f"{name}: is a directory, not a submission file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return read_csv(path, name, match)
    if suffix in EXCEL_SUFFIXES:
        return read_excel(path, name, match)
    if suffix in VECTOR_SUFFIXES:
        return _read_vector(path, name, match)
    if suffix == ".xls":
        raise InputReadError(f"{name}: old .xls workbooks are not supported; save it as .xlsx or CSV")
    raise InputReadError(
        f"{name}: unknown format {suffix or '(no extension)'!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
    )



# ---------------------------------------------------------------- cells as values


_DMS = (
    r"^(?P<sign>-)?(?P<d>\d+(?:\.\d+)?)\s*[°度:]\s*(?:(?P<m>\d+(?:\.\d+)?)\s*['′’分:]?\s*)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)\s*(?:\"|″|”|''|秒)?\s*)?(?P<hemi>[EWNSewns东西南北])?$"
)
_HEMISPHERE = r"^(?P<d>\d+(?:\.\d+)?)\s*°?\s*(?P<hemi>[EWNSewns东西南北])$"
_UNIT_SUFFIX = r"(?i)\s*(?:°|度|dbm|dbi|mhz|db|m|米)$"
_NEGATIVE_HEMISPHERES = ["W", "S", "w", "s", "西", "南"]


def as_text(values: pd.Series) -> pd.Series:
    """Any column as stripped text (pandas ``str`` dtype), missing as ''."""
    return values.astype("str").fillna("").str.strip()


def parse_numbers(text: pd.Series, degrees: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse stripped text to float64. Returns (values, blank mask, unparsable-or-infinite mask).

    Plain numbers take the fast path; only the rest are NFKC-normalised (full-width
    digits), stripped of a unit (``30m``, ``43dBm``, ``116.4°``) and, for degrees,
    read as degrees-minutes-seconds or with a hemisphere letter.
    """
    blank = (text == "").to_numpy()
    if blank.all():
        return np.full(len(text), np.nan), blank, np.zeros(len(text), dtype=bool)
    values = _fast_float(text, blank)
    failed = np.isnan(values) & ~blank
    if failed.any():  # only text with a digit (full-width too) can still be one
        positions = np.flatnonzero(failed)
        failed[positions] = text.iloc[positions].str.contains(r"\d", regex=True).to_numpy(dtype=bool)
    if failed.any():
        norm = text[failed].str.normalize("NFKC").str.replace("\u2212", "-", regex=False).str.strip()
        cleaned = norm.str.replace(_UNIT_SUFFIX, "", regex=True)
        retry = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=np.float64, copy=True)
        if degrees:
            parts = norm.str.extract(_DMS)
            dms = (parts["d"].astype(float) + parts["m"].astype(float).fillna(0) / 60
                   + parts["s"].astype(float).fillna(0) / 3600)
            negative = parts["sign"].eq("-") | parts["hemi"].isin(_NEGATIVE_HEMISPHERES)
            hemi = norm.str.extract(_HEMISPHERE)
            simple = hemi["d"].astype(float)
            simple = simple.where(~hemi["hemi"].isin(_NEGATIVE_HEMISPHERES), -simple).to_numpy()
            dms_values = np.where(negative.to_numpy(), -dms.to_numpy(), dms.to_numpy())
            retry = np.where(np.isnan(retry), np.where(np.isnan(dms_values), simple, dms_values), retry)
        values[failed] = retry
    bad = ~blank & ~np.isfinite(values)
    return values, blank, bad


def parse_degrees(text: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates as submissions accept them (decimal, ``116.4°``, DMS, ``24.5N``), float64 degrees.

    Returns (values, blank mask, unparsable-or-infinite mask); ``text`` is stripped text.
    """
    return parse_numbers(text, degrees=True)


_PLAIN_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_MAYBE_NUMBER = r"(?i)[0-9]|inf|nan"


def _fast_float(text: pd.Series, blank: np.ndarray) -> np.ndarray:
    """float64 of text; NaN where blank or unparsable.

    Arrow's cast reads the plain decimal numbers (all of them at once when every
    value is one); pandas reads the few other values (``inf``, ``1,5`` …) as before.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(text.dtype, pd.StringDtype) and text.dtype.storage == "pyarrow":
        arrow_text = pa.array(text.array)  # pandas' Arrow-backed str as it is: no copy to Python objects
    else:
        arrow_text = pa.array(text.to_numpy(dtype=object), type=pa.string())
    nothing = pa.scalar(None, type=arrow_text.type)
    try:
        arr = pc.if_else(pa.array(blank), nothing, arrow_text)
        return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64, copy=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    plain = pc.match_substring_regex(arrow_text, _PLAIN_NUMBER).to_numpy(zero_copy_only=False) & ~blank
    values = pc.cast(pc.if_else(pa.array(plain), arrow_text, nothing), pa.float64()).to_numpy(
        zero_copy_only=False).astype(np.float64, copy=True)
    # text without a digit is no number (无服务, 'no service'), unless it spells inf or nan
    other = ~plain & ~blank & pc.match_substring_regex(arrow_text, _MAYBE_NUMBER).to_numpy(zero_copy_only=False)
    if other.any():
        values[other] = pd.to_numeric(text[other], errors="coerce").to_numpy(dtype=np.float64, copy=True)
    return values


def normalise_ids(text: pd.Series) -> pd.Series:
    """IDs as text: Excel's ``12345.0`` becomes ``12345``; leading zeros are kept.

    >>> normalise_ids(pd.Series(["12345.0", "12.00", "007", "1.5", "A.0"])).tolist()
    ['12345', '12', '007', '1.5', 'A.0']
    """
    # the regex only where a '.0' occurs: a million plain IDs take a scan, not a million matches
    maybe = text.str.contains(".0", regex=False).fillna(False).to_numpy(bool)
    out = text.copy()
    if not maybe.any():
        return out
    out[maybe] = text[maybe].str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return out


def map_unique(values: pd.Series, func) -> pd.Series:
    """``values.map(func)`` calling ``func`` once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    mapped = np.array([func(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)

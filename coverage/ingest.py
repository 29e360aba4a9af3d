"""Ingest: read operators' submission files, normalise and validate them.

``read_submissions`` turns any number of submission files into one
:class:`IngestResult`: the accepted ``sectors`` (GeoDataFrame, EPSG:4326, the
columns of docs/CONTRACTS.md) and the ``rejects`` (one line per problem found).
Nothing is lost: every data row read is either accepted or rejected.

Readers
-------
* CSV / TXT / TSV in UTF-8, UTF-8 with BOM, UTF-16 (Excel "Unicode text") or
  GBK/GB18030 (detected); comma, tab, semicolon or ``|`` separated. The header
  row may sit below a few title rows (the first of the first 10 rows naming
  both 经度 and 纬度 is taken).
* XLSX / XLSM (openpyxl): the first sheet that has a header row.
* GeoJSON, GeoPackage, Shapefile (pyogrio): point geometry gives lon/lat. A layer
  in EPSG:4326 / EPSG:4490 (or without a CRS) is taken as WGS-84 / CGCS2000 unless
  ``crs`` or a row's ``crs`` column says GCJ-02 (a CRS cannot declare GCJ-02);
  a layer in any other CRS is reprojected to WGS-84 with pyproj.

Row numbers
-----------
``source_row`` is the 1-based data row: row 1 is the first row below the header
(a spreadsheet row number minus the header's). Entirely blank rows are skipped:
they are neither read nor rejected, but keep their number.

rejects semantics
-----------------
One line per problem: a row rejected for several reasons has several lines.
``rows_read = accepted + distinct (source_file, source_row) among rejects``;
:meth:`IngestResult.summary` counts rejected *rows*, not lines.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import itertools
import logging
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from coverage import chinacrs
from coverage.errors import ArgumentError, InputReadError, RepeatedColumnError, SchemaError
from coverage.files import atomic_output, check_writable, claim_run_dir, write_csv_bom
from coverage.layout import ALL_OPERATORS, RunLayout
from coverage.schema import (
    COLUMN_BY_NAME,
    ENVIRONMENTS,
    OPERATORS,
    REJECT_COLUMNS,
    SECTOR_COLUMNS,
    TECH_BY_ID,
    TECH_FREQ_RANGES_MHZ,
    freq_ranges_text,
    match_columns,
    normalise_environment,
    normalise_operator,
    normalise_tech,
    repeated_columns,
)

log = logging.getLogger(__name__)

DEFAULT_BOUNDARY_TOLERANCE_KM = 5.0
"""Points up to this far outside the national outline are accepted (coast, islands, borders)."""

CSV_SUFFIXES = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp")
SUPPORTED_SUFFIXES = CSV_SUFFIXES + EXCEL_SUFFIXES + VECTOR_SUFFIXES

UNKNOWN_OPERATOR = "unknown"
_HEADER_SCAN_ROWS = 10
_METRES_PER_DEGREE = 111_320.0
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_COLUMNS = (
    "lon", "lat", "freq_mhz", "eirp_dbm", "tx_power_dbm", "antenna_gain_dbi", "height_m", "azimuth_deg",
    "beamwidth_deg", "downtilt_deg", "electrical_downtilt_deg", "mechanical_downtilt_deg",
)
_TEXT_COLUMNS = ("operator", "site_id", "cell_id", "tech", "band", "environment", "crs")


# ---------------------------------------------------------------- result


@dataclass
class IngestResult:
    """What :func:`read_submissions` returns.

    Attributes
    ----------
    sectors : geopandas.GeoDataFrame
        Accepted rows, columns :data:`coverage.schema.SECTOR_COLUMNS`, EPSG:4326.
    rejects : pandas.DataFrame
        source_file, source_row, column, value, reason: one line per problem.
    rows_read : dict
        ``{source_file: non-blank data rows read}``.
    warnings : list of str
        Things the user should know that rejected nothing (e.g. a reprojected layer).
    reject_operator, reject_check : pandas.Series
        Aligned with ``rejects``: the row's operator code (``"unknown"`` when not
        known) and a short label of the check that failed; used by :meth:`summary`.
    """

    sectors: gpd.GeoDataFrame
    rejects: pd.DataFrame
    rows_read: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    # per reject line: the row's operator code (or "unknown") and a short check label
    reject_operator: pd.Series = field(default_factory=lambda: pd.Series(dtype=object), repr=False)
    reject_check: pd.Series = field(default_factory=lambda: pd.Series(dtype=object), repr=False)

    @property
    def total_read(self) -> int:
        """Rows read over all files."""
        return int(sum(self.rows_read.values()))

    @property
    def rejected_rows(self) -> int:
        """Distinct rows rejected (a row with several problems counts once)."""
        return int(len(self.rejects[["source_file", "source_row"]].drop_duplicates()))

    def summary(self, top: int = 3) -> pd.DataFrame:
        """Per-operator counts: operator, rows_read, accepted, rejected, top_reasons.

        ``rejected`` counts distinct rows (a row with three problems counts once);
        ``top_reasons`` names the ``top`` most frequent checks with the number of
        rows each rejected. Rows whose operator is not known are under
        ``"unknown"``; the last row, ``"all"``, is the total.

        Returns
        -------
        pandas.DataFrame
        """
        accepted = self.sectors["operator"].value_counts() if len(self.sectors) else pd.Series(dtype="int64")
        detail = self.rejects[["source_file", "source_row"]].assign(
            operator=self.reject_operator.to_numpy(), check=self.reject_check.to_numpy()
        )
        rows = detail.drop_duplicates(["source_file", "source_row"])
        rejected = rows["operator"].value_counts()
        per_check = detail.drop_duplicates(["source_file", "source_row", "check"])
        order = [op.code for op in OPERATORS] + [UNKNOWN_OPERATOR]
        present = [op for op in order if op in accepted.index or op in rejected.index]
        records = []
        for op in [*present, ALL_OPERATORS]:
            if op == ALL_OPERATORS:
                n_acc, n_rej, checks = int(accepted.sum()), int(rejected.sum()), per_check["check"]
            else:
                n_acc, n_rej = int(accepted.get(op, 0)), int(rejected.get(op, 0))
                checks = per_check.loc[per_check["operator"] == op, "check"]
            counts = checks.value_counts().head(top)
            reasons = "; ".join(f"{name} ×{n}" for name, n in counts.items())
            records.append({"operator": op, "rows_read": n_acc + n_rej, "accepted": n_acc,
                             "rejected": n_rej, "top_reasons": reasons})
        return pd.DataFrame.from_records(
            records, columns=["operator", "rows_read", "accepted", "rejected", "top_reasons"]
        )


# ---------------------------------------------------------------- reading


@dataclass
class _RawTable:
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


def _table_from_rows(rows: list[list[str]], name: str, match=match_columns) -> _RawTable:
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
    return _RawTable(name, frame, dict(matched), problems=problems)


def _read_csv(path: Path, name: str, match=match_columns) -> _RawTable:
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
               match=match_columns) -> _RawTable | None:
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
    return _RawTable(name, frame, dict(matched))


def _fast_csv(text: str, sep: str, h: int, header: list[str], name: str,
              match=match_columns) -> _RawTable | None:
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
    return _RawTable(name, frame, dict(matched))


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


def _read_excel(path: Path, name: str, match=match_columns) -> _RawTable:
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


def _read_vector(path: Path, name: str, match=match_columns) -> _RawTable:
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
    return _RawTable(name, frame, headers, default_crs=default_crs, crs_fixed=crs_fixed, problems=problems,
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


def read_raw_table(path: str | os.PathLike, match=match_columns) -> _RawTable:
    """Read one file of any supported format with a caller's column matcher (no validation).

    The readers of submissions serve other point tables too (``coverage.lookup``):
    ``match`` maps a header row to ``{canonical name: header}`` and must find
    ``lon`` and ``lat`` (:func:`coverage.schema.match_columns` by default).

    Returns
    -------
    _RawTable
        ``frame`` (canonical columns as text, plus ``source_row``), ``headers``,
        ``default_crs`` of a vector layer, ``crs_fixed`` when it was reprojected,
        and reader-level ``problems`` (position, column, value, reason, check).

    Raises
    ------
    InputReadError
        As :func:`read_table`.
    """
    return _read_any(Path(path), str(path), match)


def _read_any(path: Path, name: str, match=match_columns) -> _RawTable:
    if not path.exists():
        raise InputReadError(f"{name}: no such file")
    if path.is_dir():
        raise InputReadError(f"{name}: is a directory, not a submission file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return _read_csv(path, name, match)
    if suffix in EXCEL_SUFFIXES:
        return _read_excel(path, name, match)
    if suffix in VECTOR_SUFFIXES:
        return _read_vector(path, name, match)
    if suffix == ".xls":
        raise InputReadError(f"{name}: old .xls workbooks are not supported; save it as .xlsx or CSV")
    raise InputReadError(
        f"{name}: unknown format {suffix or '(no extension)'!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


# ---------------------------------------------------------------- validation helpers


class _Rejects:
    """Collects reject lines as (row position, column header, value, reason, check)."""

    def __init__(self, n_rows: int):
        self.parts: list[pd.DataFrame] = []
        self.bad = np.zeros(n_rows, dtype=bool)

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


_DMS = (
    r"^(?P<sign>-)?(?P<d>\d+(?:\.\d+)?)\s*[°度:]\s*(?:(?P<m>\d+(?:\.\d+)?)\s*['′’分:]?\s*)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)\s*(?:\"|″|”|''|秒)?\s*)?(?P<hemi>[EWNSewns东西南北])?$"
)
_HEMISPHERE = r"^(?P<d>\d+(?:\.\d+)?)\s*°?\s*(?P<hemi>[EWNSewns东西南北])$"
_UNIT_SUFFIX = r"(?i)\s*(?:°|度|dbm|dbi|mhz|db|m|米)$"
_NEGATIVE_HEMISPHERES = ["W", "S", "w", "s", "西", "南"]


def _as_text(values: pd.Series) -> pd.Series:
    """Any column as stripped text (pandas ``str`` dtype), missing as ''."""
    return values.astype("str").fillna("").str.strip()


def _parse_numbers(text: pd.Series, degrees: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    return _parse_numbers(text, degrees=True)


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


def _normalise_ids(text: pd.Series) -> pd.Series:
    """IDs as text: Excel's ``12345.0`` becomes ``12345``; leading zeros are kept."""
    return text.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)


def _map_unique(values: pd.Series, func) -> pd.Series:
    """``values.map(func)`` calling ``func`` once per distinct value."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    mapped = np.array([func(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


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


def _outline_check(outline, lon: np.ndarray, lat: np.ndarray, tolerance_m: float) -> np.ndarray:
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


# ---------------------------------------------------------------- the validator


def _validate(raw: pd.DataFrame, header_of, problems: pd.DataFrame, *, outline,
              tolerance_m: float) -> tuple[gpd.GeoDataFrame, pd.DataFrame, np.ndarray]:
    """Validate the concatenated text table (canonical columns as stripped ``str``).

    Returns (sectors, reject lines with a ``pos`` column, operator label per row).
    Reason texts are built lazily (``lambda p: ...`` over the rejected positions
    only), so 1.5 million clean rows cost no string work.
    """
    from coverage.radio.profiles import band_to_freq_mhz, sector_defaults

    n = len(raw)
    rej = _Rejects(n)
    if len(problems):
        rej.parts.append(problems)
        rej.bad[problems["pos"].to_numpy(dtype=np.int64)] = True
    reader_bad = rej.bad.copy()  # reader-level problems (e.g. a polygon geometry), already explained

    def at(series: pd.Series):
        return lambda p: series.to_numpy(dtype=object)[p]

    def quoted(series: pd.Series):
        return lambda p: np.array([repr(v) for v in series.to_numpy(dtype=object)[p]], dtype=object)

    # --- operator and technology
    op_text = raw["operator"]
    op = _map_unique(op_text, normalise_operator)
    op_blank = (op_text == "").to_numpy()
    rej.add(op_blank, header_of("operator"), "", "operator missing (运营商 is blank and no --operator given)",
            "missing operator")
    rej.add(~op_blank & op.isna().to_numpy(), header_of("operator"), at(op_text),
            lambda p: "unknown operator " + quoted(op_text)(p) + ": use 中国电信/中国移动/中国联通/中国广电 or CT/CM/CU/CBN",
            "unknown operator")
    op_label = op.fillna(UNKNOWN_OPERATOR).to_numpy(dtype=object)

    tech_text = raw["tech"]
    tech = _map_unique(tech_text, normalise_tech)
    tech_blank = (tech_text == "").to_numpy()
    rej.add(tech_blank, header_of("tech"), "", "technology (制式) missing", "missing technology")
    rej.add(~tech_blank & tech.isna().to_numpy(), header_of("tech"), at(tech_text),
            lambda p: "unknown technology " + quoted(tech_text)(p) + ": use NB-IoT or RedCap", "unknown technology")
    tech_ids = tech.to_numpy(dtype=object)
    tech_ok = tech.notna().to_numpy()
    tech_label = np.array([TECH_BY_ID[t].label if t in TECH_BY_ID else "" for t in tech_ids], dtype=object)

    # --- identifiers
    site_id = _normalise_ids(raw["site_id"])
    cell_raw = _normalise_ids(raw["cell_id"])
    for col, ids in (("site_id", site_id), ("cell_id", cell_raw)):
        rej.add((ids == "").to_numpy(), header_of(col), "",
                f"{col} missing ({COLUMN_BY_NAME[col].aliases[0]} is blank)", f"missing {col}")
    # a bare local cell number (0-255) is unique only within its site
    local = (cell_raw.str.fullmatch(r"\d{1,3}") & (site_id != "")).to_numpy(dtype=bool, copy=True)
    local[local] = pd.to_numeric(cell_raw[local]).to_numpy() <= 255
    cell_id = cell_raw.where(~local, site_id + "-" + cell_raw)

    # --- numbers: parse, finite, in range
    num: dict[str, np.ndarray] = {}
    blank: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    for col in _NUMBER_COLUMNS:
        src = raw[col]
        values, is_blank, is_bad = _parse_numbers(src, degrees=col in ("lon", "lat"))
        rej.add(is_bad, header_of(col), at(src),
                lambda p, col=col, src=src, values=values: np.where(
                    np.isinf(values[p]), f"{col} is not finite", f"{col} is not a number") + " (" + at(src)(p) + ")",
                f"{col} not a number")
        values[is_bad] = np.nan
        num[col], blank[col], missing[col] = values, is_blank | is_bad, is_blank
        spec = COLUMN_BY_NAME[col]
        if col in ("lon", "lat", "eirp_dbm") or spec.valid_min is None:
            continue
        out = ~blank[col] & ((values < spec.valid_min) | (values > spec.valid_max))
        rej.add(out, header_of(col), at(src), lambda p, col=col, src=src, spec=spec:
                f"{col} " + at(src)(p) + f" is outside {spec.valid}", f"{col} out of range")

    # --- coordinates: present, inside China's extent, swapped?
    lon, lat = num["lon"], num["lat"]
    lon_text, lat_text = raw["lon"], raw["lat"]
    for col, zh in (("lon", "经度"), ("lat", "纬度")):
        rej.add(missing[col] & ~reader_bad, header_of(col), "", f"{col} missing ({zh} is blank)", "missing coordinate")
    have = np.isfinite(lon) & np.isfinite(lat)
    in_lon = (lon >= 73.0) & (lon <= 136.0)
    in_lat = (lat >= 3.0) & (lat <= 54.0)
    swapped = have & ~(in_lon & in_lat) & (lat >= 73.0) & (lat <= 136.0) & (lon >= 3.0) & (lon <= 54.0)
    pair_header = header_of("lon") + "/" + header_of("lat")

    def pair_value(p):
        return at(lon_text)(p) + ", " + at(lat_text)(p)

    rej.add(swapped, pair_header, pair_value,
            lambda p: "纬度/经度 appear swapped: 经度 " + at(lon_text)(p) + " looks like a latitude and 纬度 "
            + at(lat_text)(p) + " like a longitude", "lat/lon swapped")
    rej.add(have & ~swapped & ~in_lon, header_of("lon"), at(lon_text),
            lambda p: "longitude " + at(lon_text)(p) + " is outside China's extent (73–136°E)", "outside China")
    rej.add(have & ~swapped & in_lon & ~in_lat, header_of("lat"), at(lat_text),
            lambda p: "latitude " + at(lat_text)(p) + " is outside China's extent (3–54°N)", "outside China")
    coord_ok = have & in_lon & in_lat

    # --- coordinate system per row; GCJ-02 and BD-09 -> WGS-84
    crs_text = raw["crs"]
    row_crs = _map_unique(crs_text, chinacrs.normalise_crs_name)
    bad_crs = (crs_text != "").to_numpy() & row_crs.isna().to_numpy()
    rej.add(bad_crs, header_of("crs"), at(crs_text),
            lambda p: "unknown coordinate system " + quoted(crs_text)(p) + ": use wgs84, cgcs2000, gcj02 or bd09",
            "unknown crs")
    crs_final = row_crs.where(row_crs.notna(), raw["_default_crs"]).to_numpy(dtype=object)
    crs_final = np.where(raw["_crs_fixed"].to_numpy(dtype=bool), chinacrs.WGS84, crs_final)
    for datum, label in ((chinacrs.GCJ02, "GCJ-02"), (chinacrs.BD09, "BD-09")):
        shifted = coord_ok & (crs_final == datum)
        if shifted.any():
            lon[shifted], lat[shifted] = chinacrs.to_wgs84(lon[shifted], lat[shifted], datum)
            log.info("converted %d rows from %s to WGS-84", int(shifted.sum()), label)

    # --- national boundary, with a coastal tolerance
    if outline is not None:
        check = coord_ok & ~bad_crs
        inside = np.ones(n, dtype=bool)
        if check.any():
            inside[check] = _outline_check(outline, lon[check], lat[check], tolerance_m)
        rej.add(~inside, pair_header, pair_value,
                lambda p: "point (" + pair_value(p) + ") is outside China's national boundary by more than "
                f"{tolerance_m / 1000:g} km", "outside boundary")

    # --- technology defaults (coverage.radio.profiles)
    defaults = {t: sector_defaults(t) for t in TECH_BY_ID}
    tech_codes = np.array([list(TECH_BY_ID).index(t) if t in TECH_BY_ID else len(TECH_BY_ID) for t in tech_ids],
                          dtype=np.int64) if n else np.zeros(0, dtype=np.int64)

    def default(key: str) -> np.ndarray:
        table = np.array([defaults[t][key] for t in TECH_BY_ID] + [np.nan], dtype=np.float64)
        return table[tech_codes]

    def fill(col: str) -> np.ndarray:
        return np.where(blank[col], default(col), num[col])

    # --- frequency: freq_mhz, else band, else the profile's default band
    band_text = raw["band"]
    freq = num["freq_mhz"].copy()
    use_band = missing["freq_mhz"] & (band_text != "").to_numpy() & tech_ok
    if use_band.any():
        pairs = pd.Series(tech_ids[use_band] + "\x1f" + band_text.to_numpy(dtype=object)[use_band], dtype=object)
        band_freq = _map_unique(pairs, lambda k: band_to_freq_mhz(*k.split("\x1f", 1))).to_numpy(dtype=np.float64)
        freq[use_band] = band_freq
        unknown_band = np.zeros(n, dtype=bool)
        unknown_band[np.flatnonzero(use_band)[np.isnan(band_freq)]] = True
        rej.add(unknown_band, header_of("band"), at(band_text),
                lambda p: "unknown band " + quoted(band_text)(p) + " for " + tech_label[p], "unknown band")
    freq = np.where(missing["freq_mhz"] & ~use_band, default("freq_mhz"), freq)
    freq_given = ~blank["freq_mhz"]
    freq_out = np.zeros(n, dtype=bool)
    for tech_id, ranges in TECH_FREQ_RANGES_MHZ.items():
        in_band = np.zeros(n, dtype=bool)
        for lo, hi in ranges:
            in_band |= (freq >= lo) & (freq <= hi)
        freq_out |= (tech_ids == tech_id) & freq_given & ~in_band
    rej.add(freq_out, header_of("freq_mhz"), at(raw["freq_mhz"]),
            lambda p: "frequency " + at(raw["freq_mhz"])(p) + " MHz is outside " + tech_label[p] + " bands ("
            + np.array([freq_ranges_text(t) for t in tech_ids[p]], dtype=object)
            + "); give the centre frequency in MHz, not an EARFCN", "frequency outside bands")

    # --- EIRP: eirp_dbm, else tx_power_dbm + antenna_gain_dbi, else the profile
    from_tx = blank["eirp_dbm"] & ~blank["tx_power_dbm"]
    eirp = np.where(from_tx, num["tx_power_dbm"] + fill("antenna_gain_dbi"), num["eirp_dbm"])
    eirp = np.where(missing["eirp_dbm"] & missing["tx_power_dbm"], default("eirp_dbm"), eirp)
    spec = COLUMN_BY_NAME["eirp_dbm"]
    eirp_out = (eirp < spec.valid_min) | (eirp > spec.valid_max)
    rej.add(eirp_out & ~blank["eirp_dbm"], header_of("eirp_dbm"), at(raw["eirp_dbm"]),
            lambda p: "EIRP " + at(raw["eirp_dbm"])(p) + f" dBm is outside {spec.valid}", "eirp_dbm out of range")
    rej.add(eirp_out & from_tx, header_of("tx_power_dbm"), at(raw["tx_power_dbm"]),
            lambda p: "EIRP = tx_power_dbm + antenna_gain_dbi = " + np.array([f"{v:g}" for v in eirp[p]], dtype=object)
            + f" dBm is outside {spec.valid}", "eirp_dbm out of range")

    # --- antenna geometry
    height = fill("height_m")
    azimuth = np.mod(num["azimuth_deg"], 360.0)  # blank stays NaN = omnidirectional
    beamwidth = fill("beamwidth_deg")
    split = blank["downtilt_deg"] & ~(blank["electrical_downtilt_deg"] & blank["mechanical_downtilt_deg"])
    downtilt = np.where(split, np.nan_to_num(num["electrical_downtilt_deg"]) + np.nan_to_num(
        num["mechanical_downtilt_deg"]), fill("downtilt_deg"))

    # --- environment
    env_text = raw["environment"]
    env = _map_unique(env_text, normalise_environment)
    rej.add((env_text != "").to_numpy() & env.isna().to_numpy(), header_of("environment"), at(env_text),
            lambda p: "unknown environment " + quoted(env_text)(p) + f": use {', '.join(ENVIRONMENTS)} "
            "(密集城区, 一般城区, 郊区, 农村)", "unknown environment")

    table = pd.DataFrame({
        "operator": op.to_numpy(dtype=object), "site_id": site_id.to_numpy(dtype=object),
        "cell_id": cell_id.to_numpy(dtype=object), "tech": tech_ids, "freq_mhz": freq, "eirp_dbm": eirp,
        "height_m": height, "azimuth_deg": azimuth, "beamwidth_deg": beamwidth, "downtilt_deg": downtilt,
        "environment": env.to_numpy(dtype=object), "source_file": raw["source_file"].to_numpy(dtype=object),
        "source_row": raw["source_row"].to_numpy(dtype=np.int64), "lon": lon, "lat": lat,
    })
    _check_duplicates(table, rej, header_of("cell_id"), raw["cell_id"].to_numpy(dtype=object))

    accepted = table.loc[~rej.bad]
    sectors = gpd.GeoDataFrame(
        accepted.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(accepted["lon"].to_numpy(), accepted["lat"].to_numpy()), crs="EPSG:4326",
    )
    sectors = sectors[list(SECTOR_COLUMNS)].reset_index(drop=True)
    sectors["environment"] = sectors["environment"].astype(object).where(sectors["environment"].notna(), None)
    return sectors, rej.frame(), op_label


_DUPLICATE_VALUE_COLUMNS = ("site_id", "tech", "freq_mhz", "eirp_dbm", "height_m", "azimuth_deg",
                            "beamwidth_deg", "downtilt_deg", "environment", "lon", "lat")


def _check_duplicates(table: pd.DataFrame, rej: _Rejects, cell_header: np.ndarray, cell_text: np.ndarray) -> None:
    """Reject repeated (operator, cell_id) keys among rows that passed every other check.

    Identical repeats: the first is kept, the others are rejected as duplicates.
    Repeats with different values: all of them are rejected.
    """
    candidates = np.flatnonzero(~rej.bad)
    key = table.iloc[candidates][["operator", "cell_id"]]
    dup = key.duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    sub = table.iloc[candidates[dup]]
    values = sub[list(_DUPLICATE_VALUE_COLUMNS)].assign(lon=sub["lon"].round(7), lat=sub["lat"].round(7))
    signature = pd.util.hash_pandas_object(values.astype(str), index=False)
    by_key = [sub["operator"], sub["cell_id"]]
    distinct = signature.groupby(by_key, sort=False).transform("nunique").to_numpy()
    first = (sub.groupby(by_key, sort=False).cumcount() == 0).to_numpy()
    where = sub["source_file"] + " row " + sub["source_row"].astype(str)
    first_where = where.groupby(by_key, sort=False).transform("first").to_numpy(dtype=object)
    all_where = where.groupby(by_key, sort=False).transform(
        lambda s: ", ".join(s.head(5)) + (" …" if len(s) > 5 else "")).to_numpy(dtype=object)
    cells = (sub["operator"] + "/" + sub["cell_id"]).to_numpy(dtype=object)
    pos = candidates[dup]
    n = len(table)

    def spread(mask_sub: np.ndarray, values_sub) -> tuple[np.ndarray, np.ndarray]:
        mask = np.zeros(n, dtype=bool)
        mask[pos[mask_sub]] = True
        full = np.empty(n, dtype=object)
        full[pos] = values_sub
        return mask, full

    mask, reason = spread((distinct == 1) & ~first,
                          "duplicate of " + first_where + " (identical values; that one is kept)")
    rej.add(mask, cell_header, cell_text, reason, "duplicate")
    mask, reason = spread(distinct > 1, "cell " + cells + " appears with conflicting values in " + all_where
                          + "; all are rejected")
    rej.add(mask, cell_header, cell_text, reason, "conflicting duplicate")


# ---------------------------------------------------------------- entry points


def _national_outline():
    from coverage.boundaries import national_outline

    return national_outline()


def read_submissions(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    crs: str = chinacrs.WGS84,
    operator: str | Mapping[str, str] | None = None,
    boundary_tolerance_km: float = DEFAULT_BOUNDARY_TOLERANCE_KM,
    check_boundary: bool = True,
    outline=None,
) -> IngestResult:
    """Read, normalise and validate submission files.

    Parameters
    ----------
    paths : path or iterable of paths
        CSV (UTF-8, UTF-8 BOM, GBK/GB18030), XLSX, GeoJSON, GeoPackage or Shapefile.
    crs : str or mapping, default 'wgs84'
        Coordinate system of lon/lat where a row's ``crs`` (坐标系) column is blank
        (a mapping ``{path: crs}`` gives one per file, WGS-84 for files not named):
        ``'wgs84'``, ``'cgcs2000'`` or ``'gcj02'`` (aliases such as ``'EPSG:4326'``,
        ``'火星坐标'`` accepted). GCJ-02 is converted to WGS-84; CGCS2000 is taken as
        WGS-84. Ignored for vector layers in a projected CRS (they are reprojected).
    operator : str or mapping, optional
        Operator for rows whose operator column is blank or absent; a mapping
        ``{path: operator}`` gives one per file.
    boundary_tolerance_km : float, default 5.0
        Points up to this far (geodesic) outside the national outline are accepted.
    check_boundary : bool, default True
        Check points against :func:`coverage.boundaries.national_outline`.
    outline : shapely geometry, optional
        WGS-84 outline to check against instead of the national outline.

    Returns
    -------
    IngestResult

    Raises
    ------
    InputReadError
        A file is missing, of an unknown format, undecodable or has no coordinate
        columns (the message names the file).
    ArgumentError
        ``paths`` is empty, or ``crs``, ``operator`` or ``boundary_tolerance_km``
        is invalid.

    Examples
    --------
    >>> result = read_submissions(["ct.csv", "cm.xlsx"], crs="gcj02")   # doctest: +SKIP
    >>> result.summary()                                                 # doctest: +SKIP
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ArgumentError("read_submissions: no submission files given")
    crs_of_file = _crs_per_file(crs, paths)
    if not isinstance(boundary_tolerance_km, (int, float)) or not boundary_tolerance_km >= 0:
        raise ArgumentError(f"boundary_tolerance_km must be a number >= 0, got {boundary_tolerance_km!r}")
    per_file_operator = _operator_per_file(operator, paths)

    tables: list[_RawTable] = []
    for path in paths:
        table = _read_any(Path(path), str(path))
        tables.append(table)
    warnings = [w for t in tables for w in t.warnings]

    frames, problem_frames, header_maps = [], [], []
    offset = 0
    for i, (path, table) in enumerate(zip(paths, tables, strict=True)):
        frame = table.frame.copy()
        headers = dict(table.headers)
        file_op = per_file_operator.get(str(path))
        if file_op is not None:
            op_col = _as_text(frame["operator"]) if "operator" in frame else pd.Series("", index=frame.index)
            frame["operator"] = op_col.where(op_col != "", file_op)
            headers.setdefault("operator", "--operator")
        frame["source_file"] = table.name
        frame["_file"] = i
        # A geographic WGS-84/CGCS2000 layer takes the crs option: GCJ-02 data is often tagged EPSG:4326.
        crs_name = crs_of_file[str(path)]
        frame["_default_crs"] = crs_name
        if table.crs_fixed and crs_name == chinacrs.GCJ02:
            warnings.append(f"{table.name}: layer was reprojected from a projected CRS; --crs gcj02 not applied")
        frame["_crs_fixed"] = table.crs_fixed
        frames.append(frame)
        header_maps.append(headers)
        if table.problems:
            p = pd.DataFrame(table.problems, columns=["pos", "column", "value", "reason", "check"])
            p["pos"] += offset
            problem_frames.append(p)
        offset += len(frame)
    raw = pd.concat(frames, ignore_index=True)
    for col in (*_TEXT_COLUMNS, *_NUMBER_COLUMNS):
        raw[col] = _as_text(raw[col]) if col in raw else pd.Series("", index=raw.index, dtype="str")
    problems = pd.concat(problem_frames, ignore_index=True) if problem_frames else pd.DataFrame(
        columns=["pos", "column", "value", "reason", "check"])
    file_idx = raw["_file"].to_numpy()

    @functools.cache
    def header_of(col: str) -> np.ndarray:
        names = np.array([h.get(col, col) for h in header_maps], dtype=object)
        return names[file_idx]

    if check_boundary and outline is None:
        outline = _national_outline()
    if not check_boundary:
        outline = None
    sectors, lines, op_label = _validate(raw, header_of, problems, outline=outline,
                                         tolerance_m=float(boundary_tolerance_km) * 1000.0)
    lines = lines.sort_values("pos", kind="stable")
    pos = lines["pos"].to_numpy(dtype=np.int64)
    rejects = pd.DataFrame({
        "source_file": raw["source_file"].to_numpy(dtype=object)[pos],
        "source_row": raw["source_row"].to_numpy(dtype=np.int64)[pos],
        "column": lines["column"].astype(str).to_numpy(dtype=object),
        "value": lines["value"].fillna("").astype(str).to_numpy(dtype=object),
        "reason": lines["reason"].astype(str).to_numpy(dtype=object),
    })
    rows_read = {t.name: int(len(t.frame)) for t in tables}
    result = IngestResult(
        sectors=sectors, rejects=rejects, rows_read=rows_read, warnings=warnings,
        reject_operator=pd.Series(op_label[pos], dtype=object),
        reject_check=pd.Series(lines["check"].to_numpy(dtype=object), dtype=object),
    )
    for w in warnings:
        log.warning(w)
    log.info("read %d rows from %d files: %d accepted, %d rejected", result.total_read, len(tables),
             len(sectors), result.rejected_rows)
    return result


def _crs_per_file(crs, paths) -> dict[str, str]:
    """``{path: crs name}`` from one crs for all files or a mapping (unnamed files: WGS-84)."""
    if isinstance(crs, Mapping):
        given = {str(k): v for k, v in crs.items()}
        chosen = {str(p): given.get(str(p), chinacrs.WGS84) for p in paths}
    else:
        chosen = {str(p): crs for p in paths}
    out = {}
    for path, value in chosen.items():
        name = chinacrs.normalise_crs_name(value)
        if name is None:
            raise ArgumentError(f"crs {value!r} (for {path}) is not one of {', '.join(chinacrs.CRS_NAMES)}")
        out[path] = name
    return out


def _operator_per_file(operator, paths) -> dict[str, str]:
    if operator is None:
        return {}
    if isinstance(operator, Mapping):
        chosen = {str(k): v for k, v in operator.items()}
    else:
        chosen = {str(p): operator for p in paths}
    out = {}
    for path, value in chosen.items():
        code = normalise_operator(value)
        if code is None:
            raise ArgumentError(f"operator {value!r} (for {path}) is not one of CT, CM, CU, CBN / 中国电信, …")
        out[path] = code
    return out


def write_sectors(sectors: gpd.GeoDataFrame, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write sectors as GeoParquet, atomically.

    Parameters
    ----------
    sectors : geopandas.GeoDataFrame
        With the columns of :data:`coverage.schema.SECTOR_COLUMNS`, EPSG:4326.
    path : path-like
    overwrite : bool, default False
        Replace an existing file outside a run directory.

    Raises
    ------
    SchemaError
        Columns are missing or the CRS is not EPSG:4326.
    FileOverwriteError
        ``path`` is a user's existing file and ``overwrite`` is False.
    """
    _check_sectors(sectors, "sectors")
    with atomic_output(path, overwrite) as tmp:
        sectors.to_parquet(tmp, index=False)
    return Path(path)


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


def _check_sectors(sectors, name: str) -> None:
    if not isinstance(sectors, gpd.GeoDataFrame):
        raise SchemaError(f"{name} must be a GeoDataFrame, got {type(sectors).__name__}")
    missing = [c for c in SECTOR_COLUMNS if c not in sectors.columns]
    if missing:
        raise SchemaError(f"{name} lacks columns {missing}")
    if sectors.crs is None or sectors.crs.to_epsg() != 4326:
        raise SchemaError(f"{name} must be in EPSG:4326, got {sectors.crs}")


def read_sectors(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """Read a sectors GeoParquet written by :func:`write_sectors`.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns of :data:`coverage.schema.SECTOR_COLUMNS`; ``environment`` is a str
        or None, ``azimuth_deg`` NaN for omni.

    Raises
    ------
    InputReadError
        The file is missing or not GeoParquet.
    SchemaError
        Columns are missing or the CRS is not EPSG:4326.
    """
    try:
        sectors = gpd.read_parquet(path)
    except Exception as exc:
        raise InputReadError(f"{path}: not a readable sectors GeoParquet ({type(exc).__name__}: {exc})") from exc
    _check_sectors(sectors, str(path))
    sectors["environment"] = sectors["environment"].astype(object).where(sectors["environment"].notna(), None)
    return sectors


def validate_to_dir(
    paths, out_dir: str | os.PathLike, *, crs: str = chinacrs.WGS84, operator=None,
    boundary_tolerance_km: float = DEFAULT_BOUNDARY_TOLERANCE_KM, check_boundary: bool = True,
    overwrite: bool = False,
) -> IngestResult:
    """Read and validate submissions, then write ``out_dir/sectors.parquet`` and ``rejects.csv``.

    A new or empty ``out_dir`` is claimed as a run directory (``manifest.json``), so
    validating again replaces the outputs. In a directory holding other files and no
    manifest, existing outputs are only replaced with ``overwrite``. Both outputs are
    checked before anything is read or written, so a refusal leaves the directory
    untouched.

    Parameters
    ----------
    paths, crs, operator, boundary_tolerance_km, check_boundary
        As :func:`read_submissions`.
    out_dir : path-like
        Output directory (created if missing). Other files in it are left alone.
    overwrite : bool, default False
        Replace existing outputs in a directory that is not a run directory.

    Returns
    -------
    IngestResult

    Raises
    ------
    FileOverwriteError, InputReadError, ArgumentError
    """
    layout = RunLayout(out_dir)
    claim_run_dir(layout.root)  # a new or empty directory becomes the tool's run directory
    check_writable(layout.sectors, overwrite)
    check_writable(layout.rejects, overwrite)
    result = read_submissions(paths, crs=crs, operator=operator, boundary_tolerance_km=boundary_tolerance_km,
                              check_boundary=check_boundary)
    write_sectors(result.sectors, layout.sectors, overwrite=overwrite)
    write_rejects(result.rejects, layout.rejects, overwrite=overwrite)
    return result

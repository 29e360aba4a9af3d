"""Measurement intake: read drive tests, scanner and handset logs and MR exports, validate them.

``read_measurements`` turns any number of measurement files into one
:class:`MeasurementIntake`: the accepted ``measurements`` (GeoDataFrame, EPSG:4326,
the columns of :data:`coverage.measure.schema.MEASUREMENT_COLUMNS`) and the
``rejects`` (the submission rejects' columns, one line per problem). Nothing is
lost: every data row read is accepted or rejected with a reason.

Readers
-------
* CSV / TXT / TSV (UTF-8, UTF-8 with BOM, UTF-16, GBK/GB18030) and XLSX, with
  English or Chinese headers (:data:`coverage.measure.schema.COLUMNS`). The text
  readers are those of :mod:`coverage.tables`, given the measurement columns.
* The G-NetTrack Pro export: the same reader (tab-separated, ``Timestamp``
  ``2024.05.01_10.00.00``, ``Operatorname``, ``Operator`` = MCC-MNC, ``NetworkTech``,
  ``Level`` = RSRP, ``SNR``, ``CellID``/``CGI``, ``PSC``, ``ARFCN``, ``Accuracy``,
  ``Speed``); its GPS positions are WGS-84.
* MRO XML (``bulkPmMrDataFile``; ``.xml`` or ``.xml.gz``): one row per ``<object>``
  (its first ``<v>``: the serving-cell sample; further ``<v>`` rows repeat it with
  neighbour cells) of every ``<measurement>`` whose ``<smr>`` has a serving RSRP.
  Raw report values become dBm with :func:`rsrp_dbm_of_report`; positions are
  ``MR.Longitude``/``MR.Latitude``; the time is the object's ``TimeStamp``, else
  the header's ``startTime``. ``MR.LteSc*`` files are NB-IoT only when the file
  name says so (``NB``/``NBIOT``); ``MR.NrSc*`` fields are NR (RedCap).

Row numbers
-----------
``source_row`` is the 1-based data row below the header (blank rows keep their
number and are neither read nor rejected); in MRO files the 1-based object.

rejects semantics
-----------------
One line per problem; ``rows_read = accepted + distinct (source_file, source_row)
among rejects``. Values Excel would run as formulas are neutralised when the
rejects are written (:func:`coverage.row_checks.write_rejects`).
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import chinacrs
from coverage.errors import ArgumentError, InputReadError, SchemaError
from coverage.files import atomic_output, check_writable, claim_run_dir
from coverage.measure import schema
from coverage.measure.schema import MEASUREMENT_COLUMNS
from coverage.row_checks import (
    DEFAULT_BOUNDARY_TOLERANCE_KM,
    Rejects,
    cells,
    quoted_cells,
    refuse_beyond_boundary,
    resolve_datums,
    write_rejects,
)
from coverage.tables import (
    RawTable,
    as_text,
    map_unique,
    normalise_ids,
    parse_numbers,
    read_csv,
    read_excel,
)

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
MRO_SUFFIXES = (".xml", ".gz")
SUPPORTED_SUFFIXES = TEXT_SUFFIXES + EXCEL_SUFFIXES + (".xml", ".xml.gz")

_TEXT_COLUMNS = ("time", "operator", "plmn", "tech", "cell_id", "band", "source_kind", "setting",
                 "external_antenna", "crs")
_NUMBER_COLUMNS = ("lon", "lat", "rsrp_dbm", "sinr_db", "pci", "earfcn", "position_accuracy_m", "speed_kmh")
_GNETTRACK_HEADERS = {"timestamp", "operatorname", "networktech", "level"}


# ---------------------------------------------------------------- result


@dataclass
class MeasurementIntake:
    """What :func:`read_measurements` returns.

    Attributes
    ----------
    measurements : geopandas.GeoDataFrame
        Accepted rows, columns :data:`coverage.measure.schema.MEASUREMENT_COLUMNS`, EPSG:4326.
    rejects : pandas.DataFrame
        source_file, source_row, column, value, reason: one line per problem.
    rows_read : int
        Non-blank data rows read over all files.
    warnings : list of str
        Things the user should know that rejected nothing (e.g. coordinates taken as WGS-84).
    rows_read_by_file : dict
        ``{source_file: rows read}``.
    reject_check : pandas.Series
        Aligned with ``rejects``: a short label of the check that failed.
    timings_s : dict
        Wall seconds of ``read`` (the files parsed to text columns) and ``validate``
        (with loading the national outline when none is given).
    """

    measurements: gpd.GeoDataFrame
    rejects: pd.DataFrame
    rows_read: int
    warnings: list[str] = field(default_factory=list)
    rows_read_by_file: dict[str, int] = field(default_factory=dict)
    reject_check: pd.Series = field(default_factory=lambda: pd.Series(dtype=object), repr=False)
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def rejected_rows(self) -> int:
        """Distinct rows rejected (a row with several problems counts once)."""
        return int(len(self.rejects[["source_file", "source_row"]].drop_duplicates()))

    def summary(self) -> pd.DataFrame:
        """Per-check counts of rejected rows, most frequent first: check, rows."""
        detail = self.rejects[["source_file", "source_row"]].assign(check=self.reject_check.to_numpy())
        counts = detail.drop_duplicates().groupby("check").size().sort_values(ascending=False)
        return counts.rename("rows").rename_axis("check").reset_index()


# ---------------------------------------------------------------- MRO


_RSRP_REPORT_OFFSET_DB = {
    # 3GPP TS 36.133 Table 9.1.4-1: RSRP_n means n − 141 ≤ RSRP < n − 140 dBm (RSRP_00 < −140,
    # RSRP_97 ≥ −44; Release 13 extends down to RSRP_−17 for coverage enhancement).
    "lte": 141.0,
    # TS 36.133 NRSRP report mapping (NB-IoT): NRSRP_n means n − 157 ≤ NRSRP < n − 156 dBm
    # (NRSRP_00 < −156, NRSRP_113 ≥ −44).
    "nb": 157.0,
    # TS 38.133 Table 10.1.6.1-1: SS-RSRP_n means n − 157 ≤ SS-RSRP < n − 156 dBm
    # (SS-RSRP_0 < −156, SS-RSRP_126 ≥ −31).
    "nr": 157.0,
}


def rsrp_dbm_of_report(report, family: str) -> np.ndarray:
    """dBm of raw RSRP report values (the lower edge of each 1 dB reporting bin).

    Parameters
    ----------
    report : array-like of int
        Reported values as an MRO file holds them (``MR.LteScRSRP``, ``MR.NrScSsRsrp`` …).
    family : {'lte', 'nb', 'nr'}
        LTE RSRP (TS 36.133 Table 9.1.4-1: value − 141), NB-IoT NRSRP (TS 36.133:
        value − 157) or NR SS-RSRP (TS 38.133 Table 10.1.6.1-1: value − 157).

    Returns
    -------
    numpy.ndarray of float64

    Examples
    --------
    >>> rsrp_dbm_of_report([0, 31, 97], "lte").tolist()
    [-141.0, -110.0, -44.0]
    >>> rsrp_dbm_of_report([1, 126], "nr").tolist()
    [-156.0, -31.0]
    """
    if family not in _RSRP_REPORT_OFFSET_DB:
        raise ArgumentError(f"family must be one of {sorted(_RSRP_REPORT_OFFSET_DB)}, got {family!r}")
    return np.asarray(report, dtype=np.float64) - _RSRP_REPORT_OFFSET_DB[family]


def _mr_field(name: str) -> str:
    return re.sub(r"^mr\.", "", name.strip().lower())


_MR_RSRP_FIELDS = {"ltescrsrp": "lte", "nbscrsrp": "nb", "nbscnrsrp": "nb", "nrscssrsrp": "nr", "nrscrsrp": "nr",
                   "nrsssrsrp": "nr"}
_MR_EARFCN_FIELDS = ("ltescearfcn", "nbscearfcn", "nrscarfcn", "nrscssbarfcn", "nrscnrarfcn")
_MR_PCI_FIELDS = ("ltescpci", "nbscpci", "nrscpci")
_MR_SINR_FIELDS = ("nrscsssinr", "nrscsinr")  # downlink only: LteScSinrUL is uplink and left out


def _read_mro(path: Path, name: str) -> RawTable:
    """One row per object of the measurements that carry a serving RSRP (see the module docstring)."""
    try:
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        with opener(path, "rb") as handle:
            root = ET.parse(handle).getroot()
    except (OSError, EOFError, ET.ParseError) as exc:
        raise InputReadError(f"{name}: not a readable MRO XML file ({type(exc).__name__}: {exc})") from exc
    if root.tag.split("}")[-1] != "bulkPmMrDataFile":
        raise InputReadError(f"{name}: not an MRO file (root element is <{root.tag}>, not <bulkPmMrDataFile>)")
    header = root.find("fileHeader")
    start_time = header.get("startTime", "") if header is not None else ""
    nb_file = re.search(r"(?i)(^|[_\-.])nb(-?iot)?([_\-.]|$)", path.name) is not None
    records: list[dict[str, str]] = []
    for enb in root.iter("eNB"):
        for measurement in enb.iter("measurement"):
            smr = measurement.find("smr")
            if smr is None or not (smr.text or "").split():
                continue
            fields = [_mr_field(f) for f in smr.text.split()]
            rsrp_field = next((f for f in fields if f in _MR_RSRP_FIELDS), None)
            if rsrp_field is None:
                continue
            family = _MR_RSRP_FIELDS[rsrp_field]
            tech = {"nr": "NR", "nb": "NB-IoT"}.get(family, "NB-IoT" if nb_file else "LTE")
            index = {f: i for i, f in enumerate(fields)}

            def pick(values, names, index=index):
                for f in names:
                    if f in index and index[f] < len(values) and values[index[f]].upper() != "NIL":
                        return values[index[f]]
                return ""

            for obj in measurement.iter("object"):
                first = obj.find("v")
                values = (first.text or "").split() if first is not None else []
                raw_rsrp = pick(values, (rsrp_field,))
                try:
                    rsrp = f"{float(rsrp_dbm_of_report(float(raw_rsrp), family)):g}" if raw_rsrp else ""
                except ValueError:
                    rsrp = raw_rsrp
                cell = obj.get("id", "")
                records.append({
                    "time": obj.get("TimeStamp", "") or start_time, "lon": pick(values, ("longitude",)),
                    "lat": pick(values, ("latitude",)), "rsrp_dbm": rsrp, "tech": tech,
                    "earfcn": pick(values, _MR_EARFCN_FIELDS), "pci": pick(values, _MR_PCI_FIELDS),
                    "sinr_db": pick(values, _MR_SINR_FIELDS), "cell_id": cell,
                    "plmn": m.group(0) if (m := re.match(r"460-?\d{2}", cell)) else "",
                })
    columns = ["time", "lon", "lat", "rsrp_dbm", "tech", "earfcn", "pci", "sinr_db", "cell_id", "plmn"]
    frame = pd.DataFrame.from_records(records, columns=columns).astype(object)
    frame["source_row"] = np.arange(1, len(frame) + 1, dtype=np.int64)
    headers = {c: f"MR:{c}" for c in columns}
    headers.update({"lon": "MR.Longitude", "lat": "MR.Latitude", "rsrp_dbm": "MR.*ScRSRP", "time": "TimeStamp",
                    "cell_id": "object id", "earfcn": "MR.*ScEarfcn", "pci": "MR.*ScPci"})
    log.debug("%s: %d MRO objects", name, len(frame))
    return RawTable(name, frame, headers, default_crs=chinacrs.WGS84)


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class _FileDefaults:
    source_kind: str
    setting: str
    crs_known: bool  # the format fixes the datum (GPS logs are WGS-84)


def _read_any(path: Path, name: str) -> tuple[RawTable, _FileDefaults]:
    if not path.exists():
        raise InputReadError(f"{name}: no such file")
    if path.is_dir():
        raise InputReadError(f"{name}: is a directory, not a measurement file")
    lower = path.name.lower()
    suffix = path.suffix.lower()
    if lower.endswith((".xml", ".xml.gz")):
        return _read_mro(path, name), _FileDefaults("mr", "indoor", True)
    if suffix in TEXT_SUFFIXES:
        table = read_csv(path, name, match=schema.match_columns)
    elif suffix in EXCEL_SUFFIXES:
        table = read_excel(path, name, match=schema.match_columns)
    elif suffix == ".xls":
        raise InputReadError(f"{name}: old .xls workbooks are not supported; save it as .xlsx or CSV")
    else:
        raise InputReadError(
            f"{name}: unknown format {suffix or '(no extension)'!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    folded = {re.sub(r"[\s_\-.]+", "", h).lower() for h in table.headers.values()}
    gnettrack = _GNETTRACK_HEADERS <= folded
    return table, _FileDefaults("handset", "outdoor", gnettrack)


def _per_file(value, paths, normalise, what: str) -> dict[str, str | None]:
    """``{path: normalised value or None}`` from one value for all files or a ``{path: value}`` mapping."""
    if isinstance(value, Mapping):
        given = {str(k): v for k, v in value.items()}
        chosen = {str(p): given.get(str(p)) for p in paths}
    else:
        chosen = {str(p): value for p in paths}
    out = {}
    for path, v in chosen.items():
        if v is None:
            out[path] = None
            continue
        name = normalise(v)
        if name is None:
            raise ArgumentError(f"{what} {v!r} (for {path}) is not known")
        out[path] = name
    return out


# ---------------------------------------------------------------- time


_OFFSET = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
_COMMON_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y.%m.%d_%H.%M.%S", "%Y/%m/%d %H:%M:%S")  # G-NetTrack's second
_DATE_ONLY = re.compile(r"\s*\d{4}\s*[-/.年]\s*\d{1,2}\s*[-/.月]\s*\d{1,2}\s*日?\s*")
_LOOSE_TIME = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*[T_ ]?\s*"
    r"(\d{1,2})\s*[:.时]\s*(\d{1,2})\s*(?:[:.分]\s*(\d{1,2})(?:[.,](\d{1,9}))?\s*秒?)?\s*$"
)


def _canonical_time(text: str) -> str:
    """'2024/5/1 9:05' or '2024.05.01_09.05.00' as '2024-05-01 09:05:00'; '' when it is not one."""
    m = _LOOSE_TIME.match(text)
    if not m:
        return ""
    y, mo, d, h, mi, s, frac = m.groups()
    return f"{y}-{int(mo):02d}-{int(d):02d} {int(h):02d}:{int(mi):02d}:{int(s or 0):02d}" + (
        f".{frac}" if frac else "")


def parse_times(text: pd.Series, default_tz: str = schema.DEFAULT_TIMEZONE) -> tuple[pd.Series, np.ndarray]:
    """Times as ``datetime64[ns, Asia/Shanghai]`` and a mask of values that are not a date and time.

    Values with an offset (``Z``, ``+08:00``) keep their instant; the others are local
    time in ``default_tz``. A date without a time of day does not parse.

    Examples
    --------
    >>> t, bad = parse_times(pd.Series(["2024-05-01 10:00:00", "2024.05.01_10.00.00", "2024-05-01T02:00:00Z",
    ...                                 "2024/5/1 10:00", "2024-05-01", "x"]))
    >>> [str(v) for v in t[:4]], bad.tolist()
    (['2024-05-01 10:00:00+08:00', '2024-05-01 10:00:00+08:00', '2024-05-01 10:00:00+08:00', \
'2024-05-01 10:00:00+08:00'], [False, False, False, False, True, True])
    """
    text = text.astype("str").fillna("").str.strip()
    n = len(text)
    utc_ns = np.full(n, _NAT_NS, dtype=np.int64)
    todo = np.ones(n, dtype=bool)
    # the common forms by strptime in C; only the rest by the slower rules below
    for fmt in _COMMON_TIME_FORMATS:
        if not todo.any():
            break
        positions = np.flatnonzero(todo)
        parsed = pd.to_datetime(text.iloc[positions], format=fmt, errors="coerce")
        ok = parsed.notna().to_numpy()
        utc_ns[positions[ok]] = _utc_ns(parsed[ok], default_tz)
        todo[positions[ok]] = False
    if todo.any():
        positions = np.flatnonzero(todo)
        utc_ns[positions] = _parse_times_slowly(text.iloc[positions], default_tz)
    times = pd.DatetimeIndex(utc_ns.view("datetime64[ns]")).tz_localize("UTC").tz_convert(schema.DEFAULT_TIMEZONE)
    out = pd.Series(times, index=text.index)
    bad = (utc_ns == _NAT_NS) & (text != "").to_numpy()
    return out, bad


_NAT_NS = np.iinfo(np.int64).min


def _utc_ns(parsed: pd.Series, default_tz: str) -> np.ndarray:
    """Nanoseconds since 1970 UTC of parsed times; naive ones are local time in ``default_tz``."""
    if parsed.dt.tz is None:
        try:
            parsed = parsed.dt.tz_localize(default_tz, ambiguous="NaT", nonexistent="NaT")
        except Exception as exc:  # an unknown zone name
            raise ArgumentError(f"default_tz {default_tz!r} is not a time zone ({exc})") from exc
    naive_utc = parsed.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")
    return naive_utc.to_numpy().view(np.int64)


def _parse_times_slowly(text: pd.Series, default_tz: str) -> np.ndarray:
    """ISO 8601 with or without an offset, then the loose forms of :func:`_canonical_time` (UTC ns)."""
    out = np.full(len(text), _NAT_NS, dtype=np.int64)
    # a date and a time of day, the year first (a date alone, a clock alone or '-100' are not times)
    candidate = (text.str.match(r"(?:19|20)\d{2}\D") & ~text.str.fullmatch(_DATE_ONLY)).to_numpy(dtype=bool)
    with_offset = candidate & text.str.contains(_OFFSET, regex=True).to_numpy(dtype=bool)
    naive = candidate & ~with_offset
    if with_offset.any():
        out[with_offset] = _utc_ns(pd.to_datetime(text[with_offset], format="ISO8601", utc=True, errors="coerce"),
                                   default_tz)
    if naive.any():
        sub = text[naive]
        parsed = pd.to_datetime(sub, format="ISO8601", errors="coerce")
        failed = parsed.isna().to_numpy()
        if failed.any():
            retry = sub[failed].map(_canonical_time)
            parsed[failed] = pd.to_datetime(retry, format="ISO8601", errors="coerce").to_numpy()
        out[naive] = _utc_ns(parsed, default_tz)
    return out


# ---------------------------------------------------------------- validation


def _validate(raw: pd.DataFrame, header_of, problems: pd.DataFrame, *, outline, tolerance_m: float,
              now: pd.Timestamp) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    n = len(raw)
    rej = Rejects(n, problems)
    reader_bad = rej.bad.copy()

    # --- time
    time_text = raw["time"]
    times, time_bad = parse_times(time_text, raw.attrs["default_tz"])
    time_blank = (time_text == "").to_numpy()
    rej.add(time_blank, header_of("time"), "", "time missing (测试时间 is blank)", "missing time")
    rej.add(time_bad, header_of("time"), cells(time_text),
            lambda p: "time " + quoted_cells(time_text)(p) + " is not a date and time (e.g. 2024-05-01 10:00:00)",
            "time not parsable")
    too_early = (times < pd.Timestamp(schema.EARLIEST_TIME, tz=schema.DEFAULT_TIMEZONE)).to_numpy(dtype=bool)
    future = (times > now + pd.Timedelta(days=1)).to_numpy(dtype=bool)
    rej.add(too_early, header_of("time"), cells(time_text),
            lambda p: "time " + cells(time_text)(p) + f" is before {schema.EARLIEST_TIME} (no NB-IoT or RedCap yet)",
            "time out of range")
    rej.add(future, header_of("time"), cells(time_text),
            lambda p: "time " + cells(time_text)(p) + " is in the future", "time out of range")

    # --- operator: name, code or MCC-MNC; else the plmn column
    op_text, plmn_text = raw["operator"], raw["plmn"]
    op = map_unique(op_text, schema.normalise_measurement_operator)
    op_from_plmn = map_unique(plmn_text, schema.normalise_measurement_operator)
    op = op.where(op.notna(), op_from_plmn)
    op_missing = (op_text == "").to_numpy() & (plmn_text == "").to_numpy()
    rej.add(op_missing, header_of("operator"), "", "operator missing (运营商 and MCC-MNC are blank)",
            "missing operator")
    rej.add(~op_missing & op.isna().to_numpy(), header_of("operator"),
            lambda p: np.where(cells(op_text)(p) != "", cells(op_text)(p), cells(plmn_text)(p)),
            lambda p: "unknown operator " + np.where(cells(op_text)(p) != "", quoted_cells(op_text)(p), quoted_cells(plmn_text)(p))
            + ": use 中国电信/中国移动/中国联通/中国广电, CT/CM/CU/CBN or an MCC-MNC such as 460-00",
            "unknown operator")

    # --- technology
    tech_text = raw["tech"]
    tech = map_unique(tech_text, schema.normalise_measurement_tech)
    tech_blank = (tech_text == "").to_numpy()
    other = map_unique(tech_text, schema.is_other_technology).to_numpy(dtype=bool)
    rej.add(tech_blank, header_of("tech"), "", "technology (制式) missing", "missing technology")
    rej.add(other, header_of("tech"), cells(tech_text),
            lambda p: "technology " + quoted_cells(tech_text)(p) + " is neither NB-IoT nor 5G NR/RedCap", "other technology")
    rej.add(~tech_blank & ~other & tech.isna().to_numpy(), header_of("tech"), cells(tech_text),
            lambda p: "unknown technology " + quoted_cells(tech_text)(p) + ": use NB-IoT, RedCap or NR", "unknown technology")

    # --- numbers: parse, finite, in range
    num: dict[str, np.ndarray] = {}
    blank: dict[str, np.ndarray] = {}
    rsrp_text = raw["rsrp_dbm"]
    no_service = map_unique(rsrp_text, lambda v: re.sub(r"[\s_\-.]+", "", str(v)).lower()
                                    in schema.NO_SERVICE_LOOKUP).to_numpy(dtype=bool)
    for col in _NUMBER_COLUMNS:
        src = raw[col]
        values, is_blank, is_bad = parse_numbers(src, degrees=col in ("lon", "lat"))
        if col == "rsrp_dbm":
            is_bad &= ~no_service
        rej.add(is_bad, header_of(col), cells(src),
                lambda p, col=col, src=src, values=values: np.where(
                    np.isinf(values[p]), f"{col} is not finite", f"{col} is not a number") + " (" + cells(src)(p) + ")",
                f"{col} not a number")
        values[is_bad] = np.nan
        num[col], blank[col] = values, is_blank | is_bad
        spec = schema.COLUMN_BY_NAME[col]
        if col in ("lon", "lat"):
            continue
        lo = -np.inf if spec.valid_min is None else spec.valid_min
        hi = np.inf if spec.valid_max is None else spec.valid_max
        out = ~blank[col] & ((values < lo) | (values > hi))
        valid = spec.valid if spec.valid_max is None or col == "pci" else f"{lo:g}…{hi:g} {spec.unit}".strip()
        rej.add(out, header_of(col), cells(src), lambda p, col=col, src=src, valid=valid:
                f"{col} " + cells(src)(p) + f" is outside {valid}", f"{col} out of range")
        if col in ("pci", "earfcn"):
            fractional = ~blank[col] & ~out & (values != np.floor(values))
            rej.add(fractional, header_of(col), cells(src),
                    lambda p, col=col, src=src: f"{col} " + cells(src)(p) + " is not a whole number", f"{col} not whole")
    rej.add(blank["rsrp_dbm"] & ~no_service & (rsrp_text == "").to_numpy(), header_of("rsrp_dbm"), "",
            "RSRP missing (blank; write 无服务 or 'no service' for a test without service)", "missing rsrp")
    rej.add(num["position_accuracy_m"] > schema.MAX_POSITION_ACCURACY_M, header_of("position_accuracy_m"),
            cells(raw["position_accuracy_m"]),
            lambda p: "position accuracy " + cells(raw["position_accuracy_m"])(p)
            + f" m is worse than {schema.MAX_POSITION_ACCURACY_M:g} m", "position_accuracy_m out of range")

    # --- words: source kind, setting, external antenna
    words = {}
    for col, normalise, valid in (
        ("source_kind", schema.normalise_source_kind, "scanner, handset, mr or mdt (扫频仪, 手机, 测量报告)"),
        ("setting", schema.normalise_setting, "outdoor, in-vehicle or indoor (室外, 车内, 室内)"),
        ("external_antenna", schema.normalise_bool, "是/否 or yes/no"),
    ):
        src = raw[col]
        value = map_unique(src, normalise)
        rej.add((src != "").to_numpy() & value.isna().to_numpy(), header_of(col), cells(src),
                lambda p, col=col, src=src, valid=valid: f"unknown {col} " + quoted_cells(src)(p) + f": use {valid}",
                f"unknown {col}")
        words[col] = value
    source_kind = words["source_kind"].where(words["source_kind"].notna(), raw["_source_kind"])
    moving = num["speed_kmh"] >= schema.IN_VEHICLE_SPEED_KMH
    setting_default = np.where(moving, "in-vehicle", raw["_setting"].to_numpy(dtype=object))
    setting = words["setting"].where(words["setting"].notna(), pd.Series(setting_default, index=raw.index))
    external = words["external_antenna"].where(words["external_antenna"].notna(), False).astype(bool)

    # --- coordinates: present, inside China's extent, swapped?
    lon, lat = num["lon"], num["lat"]
    lon_text, lat_text = raw["lon"], raw["lat"]
    for col, zh in (("lon", "经度"), ("lat", "纬度")):
        rej.add((raw[col] == "").to_numpy() & ~reader_bad, header_of(col), "", f"{col} missing ({zh} is blank)",
                "missing coordinate")
    have = np.isfinite(lon) & np.isfinite(lat)
    in_lon = (lon >= 73.0) & (lon <= 136.0)
    in_lat = (lat >= 3.0) & (lat <= 54.0)
    swapped = have & ~(in_lon & in_lat) & (lat >= 73.0) & (lat <= 136.0) & (lon >= 3.0) & (lon <= 54.0)
    pair_header = header_of("lon") + "/" + header_of("lat")

    def pair_value(p):
        return cells(lon_text)(p) + ", " + cells(lat_text)(p)

    rej.add(swapped, pair_header, pair_value, lambda p: "纬度/经度 appear swapped: 经度 " + cells(lon_text)(p)
            + " looks like a latitude and 纬度 " + cells(lat_text)(p) + " like a longitude", "lat/lon swapped")
    rej.add(have & ~swapped & ~(in_lon & in_lat), pair_header, pair_value,
            lambda p: "point (" + pair_value(p) + ") is outside China's extent (73–136°E, 3–54°N)", "outside China")
    coord_ok = have & in_lon & in_lat

    bad_crs = resolve_datums(rej, raw["crs"], raw["_default_crs"], header_of("crs"), lon, lat, coord_ok,
                             noun="measurements")
    refuse_beyond_boundary(rej, outline, lon, lat, coord_ok & ~bad_crs, tolerance_m, pair_header, pair_value)

    table = pd.DataFrame({
        "time": times.array, "operator": op.array, "tech": tech.array,
        "rsrp_dbm": np.where(no_service, np.nan, num["rsrp_dbm"]), "sinr_db": num["sinr_db"],
        "pci": pd.array(np.where(blank["pci"], np.nan, num["pci"]), dtype="Float64").round().astype("Int64")
        if n else pd.array([], dtype="Int64"),
        "cell_id": normalise_ids(raw["cell_id"]).array, "band": raw["band"].array,
        "earfcn": pd.array(np.where(blank["earfcn"], np.nan, num["earfcn"]), dtype="Float64").round()
        .astype("Int64") if n else pd.array([], dtype="Int64"),
        "source_kind": source_kind.array, "setting": setting.array,
        "external_antenna": external.to_numpy(dtype=bool),
        "position_accuracy_m": num["position_accuracy_m"],
        "source_file": raw["source_file"].array,
        "source_row": raw["source_row"].to_numpy(dtype=np.int64), "lon": lon, "lat": lat,
    })
    _check_duplicates(table, rej, header_of("time"), time_text)

    accepted = table.loc[~rej.bad]
    measurements = gpd.GeoDataFrame(
        accepted.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(accepted["lon"].to_numpy(), accepted["lat"].to_numpy()), crs="EPSG:4326",
    )
    return measurements[list(MEASUREMENT_COLUMNS)].reset_index(drop=True), rej.frame()


_DUPLICATE_KEY = ("time", "operator", "tech", "lon", "lat", "rsrp_dbm", "cell_id")


def _check_duplicates(table: pd.DataFrame, rej, header: np.ndarray, value: pd.Series) -> None:
    """Reject repeats of (time, operator, tech, position to 1e-6°, RSRP, cell) among rows that passed.

    The first is kept (a log submitted twice, or two files overlapping in time). The
    rows are hashed first, so only rows sharing a hash are compared by their values.
    """
    candidates = np.flatnonzero(~rej.bad)
    key = table[list(_DUPLICATE_KEY)].iloc[candidates].assign(
        lon=table["lon"].iloc[candidates].round(6), lat=table["lat"].iloc[candidates].round(6),
        rsrp_dbm=table["rsrp_dbm"].iloc[candidates].fillna(1.0),  # no service is a value too
    )
    hashed = pd.util.hash_pandas_object(key, index=False)
    shared = hashed.duplicated(keep=False).to_numpy()
    if not shared.any():
        return
    sub = key.loc[shared]
    dup = sub.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    pos = candidates[shared]
    where = table["source_file"].iloc[pos].astype(str) + " row " + table["source_row"].iloc[pos].astype(str)
    where.index = sub.index
    first_where = where.groupby([sub[c] for c in _DUPLICATE_KEY], sort=False, dropna=False).transform("first")
    mask = np.zeros(len(table), dtype=bool)
    mask[pos[dup]] = True
    reason = np.empty(len(table), dtype=object)
    reason[pos] = ("duplicate of " + first_where + " (same time, place, operator, technology and signal; "
                   "that one is kept)").to_numpy(dtype=object)
    rej.add(mask, header, lambda p: value.iloc[p].to_numpy(dtype=object), reason, "duplicate")


# ---------------------------------------------------------------- entry points


def read_measurements(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    crs: str | Mapping[str, str] | None = None,
    *,
    outline=None,
    default_tz: str = schema.DEFAULT_TIMEZONE,
    operator: str | Mapping[str, str] | None = None,
    boundary_tolerance_km: float = DEFAULT_BOUNDARY_TOLERANCE_KM,
) -> MeasurementIntake:
    """Read, normalise and validate measurement files.

    Parameters
    ----------
    paths : path or iterable of paths
        CSV/TXT/TSV (UTF-8, UTF-8 BOM, GBK), XLSX, G-NetTrack exports (tab-separated
        text) and MRO XML (``.xml``, ``.xml.gz``).
    crs : str or mapping, optional
        Datum of lon/lat where a row's 坐标系 column is blank: ``'wgs84'``,
        ``'cgcs2000'``, ``'gcj02'`` or ``'bd09'`` (aliases accepted), or ``{path: datum}``
        per file. None: G-NetTrack and MRO positions are WGS-84 (GPS); other files are
        taken as WGS-84 with a warning.
    outline : shapely geometry, optional
        WGS-84 outline the points must lie in (within ``boundary_tolerance_km``);
        default :func:`coverage.boundaries.national_outline`.
    default_tz : str, default 'Asia/Shanghai'
        Zone of times written without an offset. Output times are Asia/Shanghai.
    operator : str or mapping, optional
        Operator for rows without one (MRO files name none); ``{path: operator}`` per file.
    boundary_tolerance_km : float, default 5.0
        Points up to this far outside the outline are accepted (coast, islands).

    Returns
    -------
    MeasurementIntake

    Raises
    ------
    InputReadError
        A file is missing, of an unknown format, undecodable or has no coordinate
        columns (the message names the file).
    ArgumentError
        ``paths`` is empty, or ``crs``, ``operator`` or ``default_tz`` is invalid.

    Examples
    --------
    >>> intake = read_measurements(["drive.csv"], crs="gcj02")    # doctest: +SKIP
    >>> intake.measurements[["time", "operator", "tech", "rsrp_dbm"]].head()   # doctest: +SKIP
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise ArgumentError("read_measurements: no measurement files given")
    crs_of_file = _per_file(crs, paths, chinacrs.normalise_crs_name, "crs")
    operator_of_file = _per_file(operator, paths, schema.normalise_measurement_operator, "operator")
    if not isinstance(boundary_tolerance_km, (int, float)) or not boundary_tolerance_km >= 0:
        raise ArgumentError(f"boundary_tolerance_km must be a number >= 0, got {boundary_tolerance_km!r}")

    started = time.perf_counter()
    frames, problem_frames, header_maps, warnings = [], [], [], []
    offset = 0
    for i, path in enumerate(paths):
        table, defaults = _read_any(Path(path), str(path))
        warnings += table.warnings
        frame = table.frame.copy()
        headers = dict(table.headers)
        for col in (*_TEXT_COLUMNS, *_NUMBER_COLUMNS):
            frame[col] = as_text(frame[col]) if col in frame else pd.Series("", index=frame.index, dtype="str")
        file_op = operator_of_file[str(path)]
        if file_op is not None:
            frame["operator"] = frame["operator"].where((frame["operator"] != "") | (frame["plmn"] != ""), file_op)
            headers.setdefault("operator", "--operator")
        datum = crs_of_file[str(path)]
        if datum is None:
            datum = chinacrs.WGS84
            unstated = int((frame["crs"] == "").sum())
            if unstated and not defaults.crs_known:
                warnings.append(f"{table.name}: {unstated} rows name no coordinate system (坐标系) and no crs was "
                                "given; taken as WGS-84 (pass crs='gcj02' for Amap/Tencent positions, 'bd09' for Baidu)")
        frame["_default_crs"] = datum
        frame["_source_kind"] = defaults.source_kind
        frame["_setting"] = defaults.setting
        frame["source_file"] = table.name
        frame["_file"] = i
        frames.append(frame)
        header_maps.append(headers)
        if table.problems:
            p = pd.DataFrame(table.problems, columns=["pos", "column", "value", "reason", "check"])
            p["pos"] += offset
            problem_frames.append(p)
        offset += len(frame)
    raw = pd.concat(frames, ignore_index=True)
    raw.attrs["default_tz"] = default_tz
    problems = pd.concat(problem_frames, ignore_index=True) if problem_frames else pd.DataFrame(
        columns=["pos", "column", "value", "reason", "check"])
    file_idx = raw["_file"].to_numpy()

    @functools.cache
    def header_of(col: str) -> np.ndarray:
        names = np.array([h.get(col, col) for h in header_maps], dtype=object)
        return names[file_idx]

    read_s = time.perf_counter() - started
    started = time.perf_counter()
    if outline is None:
        from coverage.boundaries import national_outline

        outline = national_outline()
    now = pd.Timestamp.now(tz=schema.DEFAULT_TIMEZONE)
    measurements, lines = _validate(raw, header_of, problems, outline=outline,
                                    tolerance_m=float(boundary_tolerance_km) * 1000.0, now=now)
    lines = lines.sort_values("pos", kind="stable")
    pos = lines["pos"].to_numpy(dtype=np.int64)
    rejects = pd.DataFrame({
        "source_file": raw["source_file"].to_numpy(dtype=object)[pos],
        "source_row": raw["source_row"].to_numpy(dtype=np.int64)[pos],
        "column": lines["column"].astype(str).to_numpy(dtype=object),
        "value": lines["value"].fillna("").astype(str).to_numpy(dtype=object),
        "reason": lines["reason"].astype(str).to_numpy(dtype=object),
    })
    by_file = raw.groupby("source_file", sort=False).size()
    result = MeasurementIntake(
        measurements=measurements, rejects=rejects, rows_read=int(len(raw)), warnings=warnings,
        rows_read_by_file={str(k): int(v) for k, v in by_file.items()},
        reject_check=pd.Series(lines["check"].to_numpy(dtype=object), dtype=object),
        timings_s={"read": read_s, "validate": time.perf_counter() - started},
    )
    for w in warnings:
        log.warning(w)
    log.info("read %d measurement rows from %d files: %d accepted, %d rejected", result.rows_read, len(paths),
             len(measurements), result.rejected_rows)
    return result


def write_measurements(measurements: gpd.GeoDataFrame, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write accepted measurements as GeoParquet, atomically.

    Raises
    ------
    SchemaError
        Columns are missing or the CRS is not EPSG:4326.
    FileOverwriteError
        ``path`` is a user's existing file and ``overwrite`` is False.
    """
    check_measurements(measurements, "measurements")
    with atomic_output(path, overwrite) as tmp:
        measurements.to_parquet(tmp, index=False)
    return Path(path)


def read_measurement_table(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """Read a measurements GeoParquet written by :func:`write_measurements`.

    Raises
    ------
    InputReadError, SchemaError
    """
    try:
        measurements = gpd.read_parquet(path)
    except Exception as exc:
        raise InputReadError(f"{path}: not a readable measurements GeoParquet ({type(exc).__name__}: {exc})") from exc
    check_measurements(measurements, str(path))
    return measurements


def check_measurements(measurements, name: str) -> None:
    """Raise :class:`SchemaError` unless ``measurements`` has the contract's columns in EPSG:4326."""
    if not isinstance(measurements, gpd.GeoDataFrame):
        raise SchemaError(f"{name} must be a GeoDataFrame, got {type(measurements).__name__}")
    missing = [c for c in MEASUREMENT_COLUMNS if c not in measurements.columns]
    if missing:
        raise SchemaError(f"{name} lacks columns {missing}")
    if measurements.crs is None or measurements.crs.to_epsg() != 4326:
        raise SchemaError(f"{name} must be in EPSG:4326, got {measurements.crs}")


def validate_measurements_to_dir(paths, out_dir: str | os.PathLike, *, crs=None, operator=None,
                                 default_tz: str = schema.DEFAULT_TIMEZONE, outline=None,
                                 overwrite: bool = False) -> MeasurementIntake:
    """Read and validate measurements; write ``out_dir/measurements.parquet`` and ``measurement_rejects.csv``.

    A new or empty ``out_dir`` is claimed as a run directory; in a directory holding
    other files and no manifest, existing outputs are only replaced with ``overwrite``.
    Both outputs are checked before anything is read.

    Returns
    -------
    MeasurementIntake

    Raises
    ------
    FileOverwriteError, InputReadError, ArgumentError
    """
    out_dir = Path(out_dir)
    claim_run_dir(out_dir)
    accepted_path, rejects_path = out_dir / "measurements.parquet", out_dir / "measurement_rejects.csv"
    check_writable(accepted_path, overwrite)
    check_writable(rejects_path, overwrite)
    intake = read_measurements(paths, crs, outline=outline, default_tz=default_tz, operator=operator)
    write_measurements(intake.measurements, accepted_path, overwrite=overwrite)
    write_rejects(intake.rejects, rejects_path, overwrite=overwrite)
    return intake

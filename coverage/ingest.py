"""Ingest: read operators' submission files, normalise and validate them.

``read_submissions`` turns any number of submission files into one
:class:`IngestResult`: the accepted ``sectors`` (GeoDataFrame, EPSG:4326, the
columns of docs/CONTRACTS.md) and the ``rejects`` (one line per problem found).
Nothing is lost: every data row read is either accepted or rejected.

Readers
-------
CSV/TXT/TSV (UTF-8, UTF-8 with BOM, UTF-16 or GBK/GB18030), XLSX/XLSM and GeoJSON,
GeoPackage or Shapefile point layers, read by :mod:`coverage.tables` (shared with the
measurement intake and lookup). A layer in EPSG:4326 / EPSG:4490 (or without a CRS)
is taken as WGS-84 / CGCS2000 unless ``crs`` or a row's ``crs`` column says GCJ-02 or
BD-09 (a CRS cannot declare those); a layer in any other CRS is reprojected.

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

import functools
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from coverage import chinacrs
from coverage.errors import ArgumentError, InputReadError, SchemaError
from coverage.files import atomic_output, check_writable, claim_run_dir
from coverage.layout import ALL_OPERATORS, RunLayout
from coverage.row_checks import (
    DEFAULT_BOUNDARY_TOLERANCE_KM,
    Rejects,
    cells,
    quoted_cells,
    refuse_beyond_boundary,
    resolve_datums,
    write_rejects,
)
from coverage.schema import (
    COLUMN_BY_NAME,
    ENVIRONMENTS,
    OPERATORS,
    SECTOR_COLUMNS,
    TECH_BY_ID,
    TECH_FREQ_RANGES_MHZ,
    freq_ranges_text,
    normalise_environment,
    normalise_operator,
    normalise_tech,
)
from coverage.tables import (
    RawTable,
    as_text,
    map_unique,
    normalise_ids,
    parse_numbers,
    read_raw_table,
)

log = logging.getLogger(__name__)

UNKNOWN_OPERATOR = "unknown"
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
    rej = Rejects(n, problems)
    reader_bad = rej.bad.copy()  # reader-level problems (e.g. a polygon geometry), already explained

    # --- operator and technology
    op_text = raw["operator"]
    op = map_unique(op_text, normalise_operator)
    op_blank = (op_text == "").to_numpy()
    rej.add(op_blank, header_of("operator"), "", "operator missing (运营商 is blank and no --operator given)",
            "missing operator")
    rej.add(~op_blank & op.isna().to_numpy(), header_of("operator"), cells(op_text),
            lambda p: "unknown operator " + quoted_cells(op_text)(p) + ": use 中国电信/中国移动/中国联通/中国广电 or CT/CM/CU/CBN",
            "unknown operator")
    op_label = op.fillna(UNKNOWN_OPERATOR).to_numpy(dtype=object)

    tech_text = raw["tech"]
    tech = map_unique(tech_text, normalise_tech)
    tech_blank = (tech_text == "").to_numpy()
    rej.add(tech_blank, header_of("tech"), "", "technology (制式) missing", "missing technology")
    rej.add(~tech_blank & tech.isna().to_numpy(), header_of("tech"), cells(tech_text),
            lambda p: "unknown technology " + quoted_cells(tech_text)(p) + ": use NB-IoT or RedCap", "unknown technology")
    tech_ids = tech.to_numpy(dtype=object)
    tech_ok = tech.notna().to_numpy()
    tech_label = np.array([TECH_BY_ID[t].label if t in TECH_BY_ID else "" for t in tech_ids], dtype=object)

    # --- identifiers
    site_id = normalise_ids(raw["site_id"])
    cell_raw = normalise_ids(raw["cell_id"])
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
        values, is_blank, is_bad = parse_numbers(src, degrees=col in ("lon", "lat"))
        rej.add(is_bad, header_of(col), cells(src),
                lambda p, col=col, src=src, values=values: np.where(
                    np.isinf(values[p]), f"{col} is not finite", f"{col} is not a number") + " (" + cells(src)(p) + ")",
                f"{col} not a number")
        values[is_bad] = np.nan
        num[col], blank[col], missing[col] = values, is_blank | is_bad, is_blank
        spec = COLUMN_BY_NAME[col]
        if col in ("lon", "lat", "eirp_dbm") or spec.valid_min is None:
            continue
        out = ~blank[col] & ((values < spec.valid_min) | (values > spec.valid_max))
        rej.add(out, header_of(col), cells(src), lambda p, col=col, src=src, spec=spec:
                f"{col} " + cells(src)(p) + f" is outside {spec.valid}", f"{col} out of range")

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
        return cells(lon_text)(p) + ", " + cells(lat_text)(p)

    rej.add(swapped, pair_header, pair_value,
            lambda p: "纬度/经度 appear swapped: 经度 " + cells(lon_text)(p) + " looks like a latitude and 纬度 "
            + cells(lat_text)(p) + " like a longitude", "lat/lon swapped")
    rej.add(have & ~swapped & ~in_lon, header_of("lon"), cells(lon_text),
            lambda p: "longitude " + cells(lon_text)(p) + " is outside China's extent (73–136°E)", "outside China")
    rej.add(have & ~swapped & in_lon & ~in_lat, header_of("lat"), cells(lat_text),
            lambda p: "latitude " + cells(lat_text)(p) + " is outside China's extent (3–54°N)", "outside China")
    coord_ok = have & in_lon & in_lat

    # --- coordinate system per row; GCJ-02 and BD-09 -> WGS-84; the national boundary, with a coastal tolerance
    bad_crs = resolve_datums(rej, raw["crs"], raw["_default_crs"], header_of("crs"), lon, lat, coord_ok,
                             already_wgs84=raw["_crs_fixed"].to_numpy(dtype=bool))
    refuse_beyond_boundary(rej, outline, lon, lat, coord_ok & ~bad_crs, tolerance_m, pair_header, pair_value)

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
        band_freq = map_unique(pairs, lambda k: band_to_freq_mhz(*k.split("\x1f", 1))).to_numpy(dtype=np.float64)
        freq[use_band] = band_freq
        unknown_band = np.zeros(n, dtype=bool)
        unknown_band[np.flatnonzero(use_band)[np.isnan(band_freq)]] = True
        rej.add(unknown_band, header_of("band"), cells(band_text),
                lambda p: "unknown band " + quoted_cells(band_text)(p) + " for " + tech_label[p], "unknown band")
    freq = np.where(missing["freq_mhz"] & ~use_band, default("freq_mhz"), freq)
    freq_given = ~blank["freq_mhz"]
    freq_out = np.zeros(n, dtype=bool)
    for tech_id, ranges in TECH_FREQ_RANGES_MHZ.items():
        in_band = np.zeros(n, dtype=bool)
        for lo, hi in ranges:
            in_band |= (freq >= lo) & (freq <= hi)
        freq_out |= (tech_ids == tech_id) & freq_given & ~in_band
    rej.add(freq_out, header_of("freq_mhz"), cells(raw["freq_mhz"]),
            lambda p: "frequency " + cells(raw["freq_mhz"])(p) + " MHz is outside " + tech_label[p] + " bands ("
            + np.array([freq_ranges_text(t) for t in tech_ids[p]], dtype=object)
            + "); give the centre frequency in MHz, not an EARFCN", "frequency outside bands")

    # --- EIRP: eirp_dbm, else tx_power_dbm + antenna_gain_dbi, else the profile
    from_tx = blank["eirp_dbm"] & ~blank["tx_power_dbm"]
    eirp = np.where(from_tx, num["tx_power_dbm"] + fill("antenna_gain_dbi"), num["eirp_dbm"])
    eirp = np.where(missing["eirp_dbm"] & missing["tx_power_dbm"], default("eirp_dbm"), eirp)
    spec = COLUMN_BY_NAME["eirp_dbm"]
    eirp_out = (eirp < spec.valid_min) | (eirp > spec.valid_max)
    rej.add(eirp_out & ~blank["eirp_dbm"], header_of("eirp_dbm"), cells(raw["eirp_dbm"]),
            lambda p: "EIRP " + cells(raw["eirp_dbm"])(p) + f" dBm is outside {spec.valid}", "eirp_dbm out of range")
    rej.add(eirp_out & from_tx, header_of("tx_power_dbm"), cells(raw["tx_power_dbm"]),
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
    env = map_unique(env_text, normalise_environment)
    rej.add((env_text != "").to_numpy() & env.isna().to_numpy(), header_of("environment"), cells(env_text),
            lambda p: "unknown environment " + quoted_cells(env_text)(p) + f": use {', '.join(ENVIRONMENTS)} "
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


def _check_duplicates(table: pd.DataFrame, rej: Rejects, cell_header: np.ndarray, cell_text: np.ndarray) -> None:
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

    tables: list[RawTable] = []
    for path in paths:
        table = read_raw_table(path)
        tables.append(table)
    warnings = [w for t in tables for w in t.warnings]

    frames, problem_frames, header_maps = [], [], []
    offset = 0
    for i, (path, table) in enumerate(zip(paths, tables, strict=True)):
        frame = table.frame.copy()
        headers = dict(table.headers)
        file_op = per_file_operator.get(str(path))
        if file_op is not None:
            op_col = as_text(frame["operator"]) if "operator" in frame else pd.Series("", index=frame.index)
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
        raw[col] = as_text(raw[col]) if col in raw else pd.Series("", index=raw.index, dtype="str")
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

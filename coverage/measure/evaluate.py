"""Evaluation: accepted measurements binned to a run's pixels and compared with its prediction.

Bins
----
Each accepted measurement falls in one pixel of the run's global lattice
(:mod:`coverage.grid`: column ``floor(x / res)``, row ``floor(−y / res)`` in the
China Albers plane). Per pixel × operator × technology a bin holds the sample
count and the median in dB (Lee's averaging: the median of the samples keeps the
shadowing and drops the fast fading; research note §2.2). A sample without service
(``rsrp_dbm`` NaN) counts as below any threshold: it takes part in the median as
−∞, and a bin whose median is −∞ is "no service" (measured not covered, no error).
Bins with fewer than ``[evaluation] min_samples_per_bin`` samples are kept in
``bins.parquet`` (``enough_samples`` false) and left out of every statistic.

Each bin is compared with the predicted best-server signal of its operator
(``raster/<tech>_<op>_rsrp.tif``); ``error_db = predicted − measured``. Its site
attributes come from ``sectors.parquet``: the nearest site of that operator and
technology (the serving site of a best-server prediction in all but the sectors'
back lobes), its distance, its environment and its band (``site_band``; ``band`` is
the measurement's band when the file gives one, else the site's). The county is the run's county under the pixel centre.

Outputs in ``RUN_DIR/evaluation/``
----------------------------------
``bins.parquet``
    One row per bin (full precision; site distances are internal and never published).
``summary.csv`` (UTF-8 with BOM)
    ``group, tech, operator, n_bins, mean_error_db, std_error_db, rmse_db, mae_db,
    p10_db, p50_db, p90_db, precision, recall``; ``group`` is ``all``, then
    ``band:<band>``, ``environment:<env>``, ``county:<name> <code>``,
    ``distance:<decade>``; per technology, each operator and ``all``. dB figures
    are rounded to 0.01 dB, precision and recall are percentages rounded to 0.1.
    ``precision`` is the share of bins predicted covered (predicted ≥ the outdoor
    threshold of the bin's environment) that the measurement finds covered (the
    FCC MF-II figure, 62 % in 2019), ``recall`` the share of bins measured covered
    that the prediction covers. Error figures use the bins with a predicted and a
    measured value; precision and recall use every bin (a pixel no sector reaches
    is predicted not covered; a no-service bin is measured not covered).
``confusion.csv`` (UTF-8 with BOM)
    Per technology and operator, bins counted by predicted state × measured state,
    each ``covered``, ``uncertain`` (within ``[evaluation] uncertain_db``, 3 dB,
    of the threshold) or ``not covered``.
``report.html``
    A self-contained page (figures embedded as PNG): error histogram, error against
    log-distance, predicted against measured, mean error by county on a map.
``evaluation.json``
    The headline per technology (bins, mean error, RMSE, precision, recall), read
    by the published pages.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from coverage.errors import CRSMismatchError, InputReadError, SchemaError
from coverage.files import atomic_output, write_csv_bom
from coverage.layout import ALL_OPERATORS, RSRP_NODATA_DBM, RunLayout
from coverage.schema import TECH_IDS

log = logging.getLogger(__name__)

#: Columns of the measurements the evaluation reads (the intake's contract has more).
REQUIRED_COLUMNS = ("operator", "tech", "rsrp_dbm", "geometry")
#: Columns of summary.csv, in order (issue 14).
SUMMARY_COLUMNS = ("group", "tech", "operator", "n_bins", "mean_error_db", "std_error_db", "rmse_db", "mae_db",
                   "p10_db", "p50_db", "p90_db", "precision", "recall")
#: Upper edges of the distance decades, km, and their labels.
DISTANCE_DECADES_KM = (0.1, 1.0, 10.0, math.inf)
DISTANCE_LABELS = ("<0.1 km", "0.1-1 km", "1-10 km", ">=10 km")
STATES = ("covered", "uncertain", "not covered")
#: The steps of :func:`evaluate_run` whose seconds :attr:`Evaluation.timings_s` holds, in order.
TIMED_STEPS = ("read", "validate", "bin", "compare", "statistics", "write")


@dataclass
class Evaluation:
    """What :func:`evaluate_run` returns.

    Attributes
    ----------
    bins : DataFrame
        One row per bin (``bins.parquet``).
    summary : DataFrame
        ``summary.csv`` (rounded as written).
    confusion : DataFrame
        ``confusion.csv``.
    headline : dict
        Per technology: ``n_bins, mean_error_db, rmse_db, precision, recall``.
    paths : list of Path
        The files written (empty when ``write`` is False).
    rows_read, rejected : int
        Measurement rows read and rejected by the intake (rejects in
        ``evaluation/measurement_rejects.csv``).
    warnings : list of str
        The intake's warnings.
    timings_s : dict
        Wall seconds per step: ``read`` and ``validate`` (the intake; ``read`` alone
        for accepted tables), ``bin``, ``compare`` (prediction, sites, counties,
        thresholds), ``statistics`` and ``write``.
    """

    bins: pd.DataFrame
    summary: pd.DataFrame
    confusion: pd.DataFrame
    headline: dict
    paths: list[Path] = field(default_factory=list)
    rows_read: int = 0
    rejected: int = 0
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)


def _check_measurements(measurements):
    import geopandas as gpd

    if not isinstance(measurements, gpd.GeoDataFrame):
        raise TypeError(f"measurements must be a GeoDataFrame, got {type(measurements).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in measurements.columns]
    if missing:
        raise SchemaError(f"measurements lack the column(s) {', '.join(missing)}")
    if measurements.crs is not None and not measurements.crs.equals("EPSG:4326"):
        try:
            measurements = measurements.to_crs("EPSG:4326")
        except Exception as exc:  # noqa: BLE001
            raise CRSMismatchError(f"measurements in {measurements.crs} cannot be brought to EPSG:4326: {exc}") from exc
    return measurements


def bin_measurements(measurements, resolution_m: float, min_samples: int = 1) -> pd.DataFrame:
    """Measurements binned to the pixels of the global lattice at ``resolution_m``.

    Parameters
    ----------
    measurements : GeoDataFrame
        Accepted measurements (EPSG:4326) with ``operator, tech, rsrp_dbm`` and
        optionally ``band``.
    resolution_m : float
        Pixel size of the run, metres.
    min_samples : int, default 1
        Bins with fewer samples are marked ``enough_samples = False``.

    Returns
    -------
    DataFrame
        ``tech, operator, col, row, x_m, y_m, n_samples, n_no_service,
        measured_dbm`` (median, NaN where it is no service), ``band``
        (the commonest band given, '' if none), ``enough_samples``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> m = gpd.GeoDataFrame({"operator": ["CT"] * 3, "tech": ["nbiot"] * 3, "rsrp_dbm": [-100.0, -104.0, -90.0]},
    ...                      geometry=[shapely.Point(118.1, 24.5)] * 3, crs="EPSG:4326")
    >>> bin_measurements(m, 100.0)[["n_samples", "measured_dbm"]].to_dict("records")
    [{'n_samples': 3, 'measured_dbm': -100.0}]
    """
    from coverage.grid import project_lonlat

    measurements = _check_measurements(measurements)
    if len(measurements) == 0:
        return _empty_bins()
    x_m, y_m = project_lonlat(measurements.geometry.x.to_numpy(), measurements.geometry.y.to_numpy())
    res = float(resolution_m)
    rsrp = measurements["rsrp_dbm"].to_numpy(dtype=np.float64, na_value=np.nan)
    frame = pd.DataFrame({
        "tech": measurements["tech"].astype(str).to_numpy(),
        "operator": measurements["operator"].astype(str).to_numpy(),
        "col": np.floor(np.asarray(x_m) / res).astype(np.int64),
        "row": np.floor(-np.asarray(y_m) / res).astype(np.int64),
        "rsrp": np.where(np.isnan(rsrp), -np.inf, rsrp),
        "no_service": np.isnan(rsrp),
    })
    keys = ["tech", "operator", "col", "row"]
    grouped = frame.groupby(keys, sort=True)
    bins = grouped.agg(n_samples=("rsrp", "size"), n_no_service=("no_service", "sum"),
                       measured_dbm=("rsrp", "median")).reset_index()
    bins["measured_dbm"] = bins["measured_dbm"].where(np.isfinite(bins["measured_dbm"]), np.nan)
    bins["band"] = _commonest_band(measurements, frame, keys, bins)
    bins["x_m"] = (bins["col"] + 0.5) * res
    bins["y_m"] = -(bins["row"] + 0.5) * res
    bins["n_samples"] = bins["n_samples"].astype(np.int64)
    bins["n_no_service"] = bins["n_no_service"].astype(np.int64)
    bins["enough_samples"] = bins["n_samples"] >= int(min_samples)
    return bins[["tech", "operator", "col", "row", "x_m", "y_m", "n_samples", "n_no_service", "measured_dbm",
                 "band", "enough_samples"]]


def _commonest_band(measurements, frame, keys, bins) -> np.ndarray:
    if "band" not in measurements.columns:
        return np.full(len(bins), "", dtype=object)
    band = measurements["band"].fillna("").astype(str).str.strip().to_numpy()
    given = band != ""
    if not given.any():
        return np.full(len(bins), "", dtype=object)
    named = frame.loc[given, keys].assign(band=band[given])
    mode = named.groupby([*keys, "band"]).size().rename("n").reset_index()
    mode = mode.sort_values([*keys, "n", "band"], ascending=[True] * len(keys) + [False, True])
    mode = mode.drop_duplicates(keys)
    return bins[keys].merge(mode[[*keys, "band"]], on=keys, how="left")["band"].fillna("").to_numpy(dtype=object)


def _empty_bins() -> pd.DataFrame:
    return pd.DataFrame({
        "tech": pd.Series(dtype=object), "operator": pd.Series(dtype=object),
        "col": pd.Series(dtype=np.int64), "row": pd.Series(dtype=np.int64),
        "x_m": pd.Series(dtype=np.float64), "y_m": pd.Series(dtype=np.float64),
        "n_samples": pd.Series(dtype=np.int64), "n_no_service": pd.Series(dtype=np.int64),
        "measured_dbm": pd.Series(dtype=np.float64), "band": pd.Series(dtype=object),
        "enough_samples": pd.Series(dtype=bool),
    })


# ---------------------------------------------------------------- reading


@dataclass
class MeasurementFiles:
    """Accepted measurements read from files, with the rejected rows (the intake's contract)."""

    measurements: object
    rejects: pd.DataFrame
    rows_read: int
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)  # read, validate (the intake's)


#: Suffix of an already accepted measurement table (GeoParquet, EPSG:4326, the intake's columns).
ACCEPTED_SUFFIX = ".parquet"


#: File endings a folder of measurements contributes (the intake's formats and accepted tables).
MEASUREMENT_SUFFIXES = (".csv", ".txt", ".tsv", ".xlsx", ".xml", ".xml.gz", ".parquet")


def _expand_folders(paths: list[Path]) -> list[Path]:
    out = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                          and p.name.lower().endswith(MEASUREMENT_SUFFIXES))
        else:
            out.append(path)
    return out


def read_measurement_files(paths, crs=None) -> MeasurementFiles:
    """Read measurement files: accepted GeoParquet tables as they are, the rest through the intake.

    Parameters
    ----------
    paths : path or sequence of paths
        ``.parquet`` files hold accepted measurements (the intake's output); any
        other file goes to :func:`coverage.measure.read_measurements`. A folder
        contributes its files ending in :data:`MEASUREMENT_SUFFIXES`, recursively.
    crs : None, str or mapping
        Datum of the raw files, as ``read_measurements``'s ``crs``.

    Raises
    ------
    InputReadError
        A file cannot be read, or raw files are given but the intake is not installed.
    """
    import geopandas as gpd

    paths = _expand_folders([Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths])
    if not paths:
        raise InputReadError("no measurement file given (or the folders hold none)")
    accepted = [p for p in paths if p.suffix.lower() == ACCEPTED_SUFFIX]
    raw = [p for p in paths if p.suffix.lower() != ACCEPTED_SUFFIX]
    frames, rejects, rows_read, warnings = [], [], 0, []
    timings = {"read": 0.0, "validate": 0.0}
    started = time.perf_counter()
    for path in accepted:
        try:
            frame = gpd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure names the file
            raise InputReadError(f"{path}: cannot read accepted measurements: {exc}") from exc
        frames.append(frame)
        rows_read += len(frame)
    timings["read"] += time.perf_counter() - started
    if raw:
        try:
            from coverage.measure import read_measurements
        except ImportError as exc:
            raise InputReadError(f"{raw[0]}: the measurement intake (coverage.measure.read_measurements) is not "
                                 "available; give accepted measurements as .parquet") from exc
        intake = read_measurements([str(p) for p in raw], crs=crs)
        frames.append(intake.measurements)
        rejects.append(intake.rejects)
        rows_read += int(intake.rows_read)
        warnings += list(intake.warnings)
        for step, seconds in intake.timings_s.items():
            timings[step] += seconds
    frames = [f.to_crs("EPSG:4326") if f.crs is not None and not f.crs.equals("EPSG:4326") else f for f in frames]
    measurements = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs="EPSG:4326")
    reject_columns = ["source_file", "source_row", "column", "value", "reason"]
    rejected = pd.concat(rejects, ignore_index=True) if rejects else pd.DataFrame(columns=reject_columns)
    return MeasurementFiles(measurements=measurements, rejects=rejected, rows_read=rows_read, warnings=warnings,
                            timings_s=timings)


# ---------------------------------------------------------------- the run's side


def read_run_report(run_dir) -> dict:
    """The run's ``raster/report.json`` (grid and thresholds), or InputReadError naming it."""
    path = RunLayout(run_dir).predict_report
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputReadError(f"{path}: no prediction report; run `covmap build` or `covmap predict` first") from exc
    except (OSError, ValueError) as exc:
        raise InputReadError(f"{path}: cannot read the prediction report: {exc}") from exc


def run_config(run_dir, config=None):
    """``config`` if given (a Config or a TOML path), else the run's own: its manifest's effective configuration.

    A run without a manifest (``covmap predict`` alone) or with an unreadable one
    gets the defaults, with a warning.
    """
    from coverage.config import config_from_dict
    from coverage.predict.sectors import _load_config

    if config is not None:
        return _load_config(config)
    path = RunLayout(run_dir).manifest
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["config"]
        return config_from_dict(recorded, source=f"{path} (config)")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: no recorded configuration (%s); using the defaults", path, exc)
        return _load_config(None)


def attach_prediction(bins: pd.DataFrame, run_dir) -> pd.DataFrame:
    """Add ``predicted_dbm`` (NaN where no sector reaches the pixel or no layer exists).

    Reads each operator's ``raster/<tech>_<op>_rsrp.tif`` block by block, only the
    blocks that hold bins.
    """
    import rasterio
    from rasterio.windows import Window

    layout = RunLayout(run_dir)
    predicted = np.full(len(bins), np.nan, dtype=np.float64)
    for (tech, operator), index in bins.groupby(["tech", "operator"]).indices.items():
        path = layout.rsrp(tech, operator)
        if not path.exists():
            log.warning("%s: no layer for %s %s; its bins have no prediction", path, tech, operator)
            continue
        with rasterio.open(path) as ds:
            res = ds.transform.a
            col_off = int(round(ds.transform.c / res))
            row_off = int(round(-ds.transform.f / res))
            cols = bins["col"].to_numpy()[index] - col_off
            rows = bins["row"].to_numpy()[index] - row_off
            inside = (cols >= 0) & (rows >= 0) & (cols < ds.width) & (rows < ds.height)
            block_h, block_w = ds.block_shapes[0]
            block_key = (rows // block_h) * (ds.width // block_w + 1) + cols // block_w
            values = np.full(index.size, np.nan)
            for key in np.unique(block_key[inside]):
                here = inside & (block_key == key)
                r0 = int(rows[here][0] // block_h) * block_h
                c0 = int(cols[here][0] // block_w) * block_w
                window = Window(c0, r0, min(block_w, ds.width - c0), min(block_h, ds.height - r0))
                block = ds.read(1, window=window)
                values[here] = block[rows[here] - r0, cols[here] - c0]
            nodata = ds.nodata if ds.nodata is not None else RSRP_NODATA_DBM
            values[values == nodata] = np.nan
            predicted[index] = values
    out = bins.copy()
    out["predicted_dbm"] = predicted
    return out


def attach_sites(bins: pd.DataFrame, sectors, config=None) -> pd.DataFrame:
    """Add the nearest site of the bin's operator and technology: ``distance_m, environment, site_band``.

    The band of the bin (``band``) is the measurement's where given, else the site's
    (the profile band nearest the sector's frequency). Bins of an operator and
    technology without sectors get NaN distance, environment and band ''.
    """
    from scipy.spatial import cKDTree

    from coverage.grid import project_lonlat
    from coverage.predict.sectors import _environments, _load_config

    config = _load_config(config)
    out = bins.copy()
    distance = np.full(len(out), np.nan)
    environment = np.full(len(out), "", dtype=object)
    site_band = np.full(len(out), "", dtype=object)
    if len(sectors):
        sx, sy = project_lonlat(sectors.geometry.x.to_numpy(), sectors.geometry.y.to_numpy())
        sx, sy = np.asarray(sx, dtype=np.float64), np.asarray(sy, dtype=np.float64)
        env = _environments(sectors)
        freq = sectors["freq_mhz"].to_numpy(dtype=np.float64, na_value=np.nan)
        ops = sectors["operator"].astype(str).to_numpy()
        techs = sectors["tech"].astype(str).to_numpy()
        for (tech, operator), index in out.groupby(["tech", "operator"]).indices.items():
            mine = np.flatnonzero((ops == operator) & (techs == tech))
            if mine.size == 0 or tech not in config.profiles:
                continue
            profile = config.profiles[tech]
            tree = cKDTree(np.column_stack([sx[mine], sy[mine]]))
            d, k = tree.query(np.column_stack([out["x_m"].to_numpy()[index], out["y_m"].to_numpy()[index]]))
            nearest = mine[k]
            distance[index] = d
            environment[index] = env[nearest]
            f = freq[nearest]
            site_band[index] = [profile.band_of(v) if np.isfinite(v) else profile.default_band for v in f]
    out["distance_m"] = distance
    out["environment"] = environment
    out["site_band"] = site_band
    given = out["band"].fillna("").astype(str).to_numpy() if "band" in out else np.full(len(out), "")
    out["band"] = np.where(given != "", given, site_band)
    return out


def attach_counties(bins: pd.DataFrame, counties) -> pd.DataFrame:
    """Add ``county_code, county_name`` of the county under each bin's pixel centre ('' outside)."""
    import geopandas as gpd

    from coverage.grid import china_albers_crs

    out = bins.copy()
    out["county_code"] = ""
    out["county_name"] = ""
    if counties is None or len(counties) == 0 or len(out) == 0:
        return out
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(out["x_m"], out["y_m"]), crs=china_albers_crs())
    points = points.to_crs(counties.crs or "EPSG:4326")
    hit = gpd.sjoin(points, counties[["code", "name", "geometry"]], how="left", predicate="within")
    hit = hit[~hit.index.duplicated(keep="first")]
    out["county_code"] = hit["code"].fillna("").astype(str).to_numpy()
    out["county_name"] = hit["name"].fillna("").astype(str).to_numpy()
    return out


def _run_counties(layout: RunLayout):
    if not layout.stats_gpkg.exists():
        return None
    import geopandas as gpd

    try:
        return gpd.read_file(layout.stats_gpkg, layer="county", columns=["code", "name"])
    except Exception as exc:  # noqa: BLE001 - the county group is optional
        log.warning("%s: county layer unreadable (%s); no county groups", layout.stats_gpkg, exc)
        return None


def attach_thresholds(bins: pd.DataFrame, report: dict) -> pd.DataFrame:
    """Add ``threshold_dbm`` (outdoor threshold of the bin's environment) and the covered states."""
    out = bins.copy()
    threshold = np.full(len(out), np.nan)
    techs = report.get("techs", {})
    for tech, entry in techs.items():
        thresholds = entry.get("thresholds_dbm", {})
        by_env = thresholds.get("by_environment", {})
        mine = out["tech"].to_numpy() == tech
        for env, values in by_env.items():
            threshold[mine & (out["environment"].to_numpy() == env)] = float(values["outdoor"])
        fallback = thresholds.get("outdoor")
        if fallback is not None:
            threshold[mine & np.isnan(threshold)] = float(fallback)
    out["threshold_dbm"] = threshold
    return out


def _state(value_dbm: np.ndarray, threshold_dbm: np.ndarray, uncertain_db: float) -> np.ndarray:
    """covered / uncertain / not covered; NaN values (no service, no sector) are not covered."""
    value = np.where(np.isnan(value_dbm), -np.inf, value_dbm)
    state = np.where(value >= threshold_dbm, STATES[0], STATES[2]).astype(object)
    state[np.abs(value - threshold_dbm) < uncertain_db] = STATES[1]
    return state


# ---------------------------------------------------------------- statistics


def distance_label(distance_m: np.ndarray) -> np.ndarray:
    """The distance decade of each distance (``<0.1 km`` … ``>=10 km``; '' for NaN)."""
    km = np.asarray(distance_m, dtype=np.float64) / 1000.0
    index = np.searchsorted(np.asarray(DISTANCE_DECADES_KM), km, side="right")
    labels = np.array([*DISTANCE_LABELS, ""], dtype=object)
    index = np.where(np.isnan(km), len(DISTANCE_LABELS), np.minimum(index, len(DISTANCE_LABELS) - 1))
    return labels[index]


def _error_row(frame: pd.DataFrame) -> dict:
    error = frame["error_db"].to_numpy(dtype=np.float64)
    error = error[np.isfinite(error)]
    predicted_cov = frame["predicted_covered"].to_numpy(dtype=bool)
    measured_cov = frame["measured_covered"].to_numpy(dtype=bool)
    n_pred, n_meas = int(predicted_cov.sum()), int(measured_cov.sum())
    both = int((predicted_cov & measured_cov).sum())
    row = {"n_bins": int(len(frame))}
    if error.size:
        p10, p50, p90 = np.percentile(error, [10, 50, 90])
        row.update(mean_error_db=float(error.mean()), std_error_db=float(error.std(ddof=1)) if error.size > 1 else 0.0,
                   rmse_db=float(np.sqrt(np.mean(error ** 2))), mae_db=float(np.mean(np.abs(error))),
                   p10_db=float(p10), p50_db=float(p50), p90_db=float(p90))
    else:
        row.update({name: np.nan for name in SUMMARY_COLUMNS[4:11]})
    row["precision"] = 100.0 * both / n_pred if n_pred else np.nan
    row["recall"] = 100.0 * both / n_meas if n_meas else np.nan
    return row


def _groupings(frame: pd.DataFrame):
    yield "all", pd.Series("all", index=frame.index)
    yield "band", "band:" + frame["band"].astype(str)
    yield "environment", "environment:" + frame["environment"].astype(str)
    county = ("county:" + frame["county_name"].astype(str) + " " + frame["county_code"].astype(str)).where(
        frame["county_code"].astype(str) != "", "county:outside")
    yield "county", county
    yield "distance", "distance:" + frame["distance_decade"].astype(str)


def summarise(bins: pd.DataFrame) -> pd.DataFrame:
    """summary.csv's rows at full precision (see the module docstring for the groups)."""
    used = bins[bins["enough_samples"]]
    rows = []
    for _, labels in _groupings(used):
        for tech in [t for t in TECH_IDS if (used["tech"] == t).any()]:
            of_tech = used["tech"] == tech
            operators = sorted(used.loc[of_tech, "operator"].unique())
            for operator in [*operators, ALL_OPERATORS]:
                mask = of_tech if operator == ALL_OPERATORS else of_tech & (used["operator"] == operator)
                sub = used[mask]
                for group in sorted(labels[mask].unique()):
                    if group.endswith(":"):
                        continue
                    rows.append({"group": group, "tech": tech, "operator": operator,
                                 **_error_row(sub[labels[mask] == group])})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def rounded_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """summary.csv as written: dB to 0.01, percentages to 0.1 (issue 15)."""
    out = summary.copy()
    out[list(SUMMARY_COLUMNS[4:11])] = out[list(SUMMARY_COLUMNS[4:11])].round(2)
    out[["precision", "recall"]] = out[["precision", "recall"]].round(1)
    return out


def confusion_table(bins: pd.DataFrame) -> pd.DataFrame:
    """Bins per technology, operator (and all), predicted state × measured state."""
    used = bins[bins["enough_samples"]]
    rows = []
    for tech in [t for t in TECH_IDS if (used["tech"] == t).any()]:
        of_tech = used[used["tech"] == tech]
        for operator in [*sorted(of_tech["operator"].unique()), ALL_OPERATORS]:
            sub = of_tech if operator == ALL_OPERATORS else of_tech[of_tech["operator"] == operator]
            for predicted in STATES:
                row = {"tech": tech, "operator": operator, "predicted": predicted}
                for measured in STATES:
                    row[f"measured {measured}"] = int(((sub["predicted_state"] == predicted)
                                                       & (sub["measured_state"] == measured)).sum())
                rows.append(row)
    return pd.DataFrame(rows, columns=["tech", "operator", "predicted", *(f"measured {s}" for s in STATES)])


def headline(summary: pd.DataFrame) -> dict:
    """Per technology, the ``all`` group of all operators: bins, mean error, RMSE, precision, recall."""
    out = {}
    rows = summary[(summary["group"] == "all") & (summary["operator"] == ALL_OPERATORS)]
    for row in rows.itertuples(index=False):
        out[row.tech] = {key: (None if pd.isna(getattr(row, key)) else
                               (int(getattr(row, key)) if key == "n_bins" else round(float(getattr(row, key)), 2)))
                         for key in ("n_bins", "mean_error_db", "rmse_db", "precision", "recall")}
    return out


# ---------------------------------------------------------------- the entry point


def compare_bins(bins: pd.DataFrame, run_dir, config=None, sectors=None, counties=None,
                 report: dict | None = None) -> pd.DataFrame:
    """Bins with the run's prediction, sites, counties, thresholds and states attached.

    ``sectors``, ``counties`` and ``report`` default to the run's own
    (``sectors.parquet``, ``stats/coverage.gpkg`` county layer, ``raster/report.json``).
    """
    import geopandas as gpd

    from coverage.predict.sectors import _load_config

    config = _load_config(config)
    layout = RunLayout(run_dir)
    report = read_run_report(run_dir) if report is None else report
    if sectors is None:
        try:
            sectors = gpd.read_parquet(layout.sectors)
        except Exception as exc:  # noqa: BLE001
            raise InputReadError(f"{layout.sectors}: cannot read the run's sectors: {exc}") from exc
    counties = _run_counties(layout) if counties is None else counties
    out = attach_prediction(bins, run_dir)
    out = attach_sites(out, sectors, config)
    out = attach_counties(out, counties)
    out = attach_thresholds(out, report)
    out["error_db"] = out["predicted_dbm"] - out["measured_dbm"]
    out["distance_decade"] = distance_label(out["distance_m"].to_numpy())
    uncertain_db = float(config.evaluation.uncertain_db)
    out["predicted_state"] = _state(out["predicted_dbm"].to_numpy(), out["threshold_dbm"].to_numpy(), uncertain_db)
    out["measured_state"] = _state(out["measured_dbm"].to_numpy(), out["threshold_dbm"].to_numpy(), uncertain_db)
    predicted = np.where(np.isnan(out["predicted_dbm"]), -np.inf, out["predicted_dbm"])
    measured = np.where(np.isnan(out["measured_dbm"]), -np.inf, out["measured_dbm"])
    out["predicted_covered"] = predicted >= out["threshold_dbm"].to_numpy()
    out["measured_covered"] = measured >= out["threshold_dbm"].to_numpy()
    return out


def accepted_measurements(run_dir, measurements, crs=None, write: bool = True) -> MeasurementFiles:
    """Measurements as given (a GeoDataFrame) or read from files, their rejects written to the run.

    Files go through :func:`read_measurement_files`; with ``write`` the rejected rows
    go to ``RUN_DIR/evaluation/measurement_rejects.csv`` (UTF-8 with BOM), so that
    accepted + rejected = rows read.
    """
    import geopandas as gpd

    if isinstance(measurements, gpd.GeoDataFrame):
        return MeasurementFiles(measurements=measurements, rejects=pd.DataFrame(), rows_read=len(measurements))
    files = read_measurement_files(measurements, crs)
    if write:
        out = evaluation_dir(run_dir)
        out.mkdir(parents=True, exist_ok=True)
        from coverage.row_checks import write_rejects

        started = time.perf_counter()
        write_rejects(files.rejects, out / "measurement_rejects.csv", overwrite=True)
        files.timings_s["write"] = time.perf_counter() - started
    return files


def evaluate_run(run_dir, measurements, config=None, *, crs=None, write: bool = True, progress=None) -> Evaluation:
    """Compare accepted measurements with a run's prediction; write ``RUN_DIR/evaluation/``.

    Parameters
    ----------
    run_dir : path
        A run directory with ``raster/`` and ``sectors.parquet`` (``covmap build``).
    measurements : GeoDataFrame, path or sequence of paths
        Accepted measurements (``read_measurements(...).measurements``), or files
        (:func:`read_measurement_files`).
    config : Config or path, optional
        For ``[evaluation]`` (min samples per bin, uncertain band) and the profiles'
        bands; default the run's own (:func:`run_config`).
    write : bool, default True
        Write bins.parquet, summary.csv, confusion.csv, evaluation.json, report.html.
    progress : callable, optional
        ``progress(done, total)`` over the steps.

    Returns
    -------
    Evaluation

    Raises
    ------
    InputReadError
        The run has no prediction report or sectors.
    SchemaError
        The measurements lack a required column.
    """
    config = run_config(run_dir, config)
    tick = progress or (lambda done, total: None)
    report = read_run_report(run_dir)
    files = accepted_measurements(run_dir, measurements, crs, write)
    timings = dict(files.timings_s)
    measurements = files.measurements
    resolution_m = float(report["grid"]["resolution_m"])
    started = time.perf_counter()
    bins = bin_measurements(measurements, resolution_m, config.evaluation.min_samples_per_bin)
    timings["bin"] = time.perf_counter() - started
    tick(1, 4)
    started = time.perf_counter()
    bins = compare_bins(bins, run_dir, config, report=report)
    timings["compare"] = time.perf_counter() - started
    tick(2, 4)
    started = time.perf_counter()
    summary = summarise(bins)
    evaluation = Evaluation(bins=bins, summary=rounded_summary(summary), confusion=confusion_table(bins),
                            headline=headline(summary), rows_read=files.rows_read, rejected=len(files.rejects),
                            warnings=list(files.warnings))
    timings["statistics"] = time.perf_counter() - started
    tick(3, 4)
    if write:
        started = time.perf_counter()
        evaluation.paths = write_evaluation(run_dir, evaluation, n_measurements=len(measurements))
        timings["write"] = timings.get("write", 0.0) + time.perf_counter() - started
    evaluation.timings_s = {step: timings[step] for step in TIMED_STEPS if step in timings}
    tick(4, 4)
    log.info("evaluation: %d measurements in %d bins (%d with enough samples)", len(measurements), len(bins),
             int(bins["enough_samples"].sum()))
    return evaluation


def evaluation_dir(run_dir) -> Path:
    return Path(run_dir) / "evaluation"


def write_evaluation(run_dir, evaluation: Evaluation, n_measurements: int | None = None) -> list[Path]:
    """Write the evaluation files atomically into ``RUN_DIR/evaluation/`` (the tool's own folder)."""
    from coverage.measure.report import write_report

    out = evaluation_dir(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with atomic_output(out / "bins.parquet") as tmp:
        evaluation.bins.to_parquet(tmp, index=False)
    paths.append(out / "bins.parquet")
    paths.append(write_csv_bom(evaluation.summary, out / "summary.csv"))
    paths.append(write_csv_bom(evaluation.confusion, out / "confusion.csv"))
    document = {"measurements": n_measurements, "bins": int(len(evaluation.bins)),
                "bins_used": int(evaluation.bins["enough_samples"].sum()), "by_tech": evaluation.headline,
                "prediction": prediction_fingerprint(read_run_report(run_dir))}
    with atomic_output(out / "evaluation.json") as tmp:
        tmp.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    paths.append(out / "evaluation.json")
    paths.append(write_report(out / "report.html", evaluation, run_name=Path(run_dir).resolve().name))
    return paths


def prediction_fingerprint(report: dict) -> str:
    """sha256 of the layer fingerprints of a prediction report: which prediction an evaluation compared."""
    import hashlib

    layers = sorted((tech, layer.get("operator"), layer.get("fingerprint"))
                    for tech, entry in report.get("techs", {}).items() for layer in entry.get("layers", []))
    return hashlib.sha256(json.dumps(layers).encode("utf-8")).hexdigest()


def read_headline(run_dir: str | os.PathLike) -> dict | None:
    """``evaluation/evaluation.json`` of a run if it compared the run's current prediction, else None.

    None too when the run was not evaluated or a file is unreadable: an evaluation
    of an earlier prediction (before a calibrated rebuild) says nothing of this one.
    """
    path = evaluation_dir(run_dir) / "evaluation.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        current = prediction_fingerprint(read_run_report(run_dir))
    except (OSError, ValueError, InputReadError):
        return None
    if document.get("prediction") != current:
        log.info("%s compared an earlier prediction; not used", path)
        return None
    return document


__all__ = ["Evaluation", "MeasurementFiles", "SUMMARY_COLUMNS", "attach_prediction", "bin_measurements", "compare_bins",
           "confusion_table", "distance_label", "evaluate_run", "read_headline", "read_measurement_files", "summarise"]

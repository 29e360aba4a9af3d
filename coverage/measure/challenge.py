"""The public challenge process on H3: measurements that contest the published map.

Anyone may contest the map with field tests; an operator may answer with its own.
The rules are the FCC's for its Broadband Data Collection mobile challenge
(DA 22-241; research note measurements-and-challenge.md §1), with signal strength in
place of speed. Every threshold is in the ``[challenge]`` table of the
configuration (:class:`coverage.config.ChallengeConfig`, each with its source).

Which tests count
-----------------
A test counts when it was taken outdoors or in a vehicle (never indoors), between
``day_start_hour`` and ``day_end_hour`` local time (06:00-22:00), within
``max_test_age_days`` (a year) of the run's data date (``manifest.json``), and
inside predicted coverage: the class raster of the test's technology and operator
(``raster/<tech>_<op>_class.tif``) says outdoor or deep coverage at the test's
pixel. Every other test is kept, with its reason, in ``challenge/tests.csv``.

A counted test is **negative** when it recorded no service (``rsrp_dbm`` NaN) or a
signal below the technology's service threshold: the level a device needs at the
cell edge, ``rsrp_threshold_dbm + device_loss_db + body_loss_db −
ue_antenna_gain_dbi`` of the run's profile (the pixel's coverage threshold before
the shadow-fading margin; the map promises that level at 90 % of the locations of a
covered pixel), less ``rsrp_tolerance_db``.

When a hexagon is challenged
----------------------------
Tests are grouped per H3 resolution-8 hexagon × technology × operator. A group is
**challenged** when all three thresholds hold:

* geographic: negative tests lie in at least ``min_point_hexes`` (4) of the
  hexagon's 7 resolution-9 children (its point-hexes), or in all of the children
  that overlap land when fewer do. A child overlaps land when its hexagon
  intersects a county polygon of the run (``stats/coverage.gpkg``, the national
  boundary's counties, coastline included); a run without boundaries counts all
  seven (the FCC's "accessible" point-hexes are those with a road, which the run
  does not know);
* temporal: two negative tests at least ``min_hours_apart`` (4 h) apart in time of
  day, on any dates (the latest time of day less the earliest; the day window
  never crosses midnight);
* testing: at least ``min_negative_tests`` (5) negative tests, and at least the
  number a one-sided binomial test at ``confidence`` (95 %) needs to find the
  negative share above ``1 − cell_edge_reliability`` (10 %) of the technology
  (:func:`required_negative_tests`: 20 tests -> 5, 100 -> 16).

Any other group is **insufficient**; its ``reason`` names each threshold it misses.

When a challenge is rebutted
----------------------------
The FCC lets the operator answer with on-the-ground tests of its own that meet the
same thresholds, taken after the challenge (DA 22-241; research note §1.5). Here a
challenged group becomes **rebutted** when the operator's rebuttal tests for that
technology (screened like the challenge's, and taken after the group's last counted
challenge test) meet the mirror of the three thresholds with *positive* tests —
positives in at least as many point-hexes as the challenge needs, two positives
``min_hours_apart`` apart, at least ``min_negative_tests`` positives — and, with the
challenge's and the rebuttal's tests together, the testing threshold no longer
holds (the negative share is no longer significantly above what the map allows).
Rebuttal tests of another operator than the group's do not count for it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from coverage.errors import ArgumentError, SchemaError
from coverage.layout import CLASS_DEEP, CLASS_OUTDOOR, RunLayout

log = logging.getLogger(__name__)

CHALLENGED, INSUFFICIENT, REBUTTED = "challenged", "insufficient", "rebutted"
STATUSES = (CHALLENGED, INSUFFICIENT, REBUTTED)
#: Settings whose tests count: the FCC takes tests outdoors (stationary) or in a
#: moving vehicle, never indoors (FCC BDC help centre, research note §1.2).
COUNTED_SETTINGS = ("outdoor", "in-vehicle")
#: Columns of ``challenge/hexes.csv``, in order (the issue's contract first).
HEX_COLUMNS = ("h3_res8", "tech", "operator", "tests", "negative_tests", "point_hexes", "status", "reason",
               "required_negative_tests", "required_point_hexes", "land_point_hexes", "hours_apart",
               "rebuttal_tests", "rebuttal_positive_tests", "county_code", "county_name")
#: Columns the screening adds to each test (``challenge/tests.csv``).
TEST_COLUMNS = ("role", "source_file", "source_row", "time", "operator", "tech", "rsrp_dbm", "setting",
                "lon", "lat", "h3_res8", "h3_res9", "predicted_class", "threshold_dbm", "counted", "negative",
                "excluded")
_REQUIRED = ("time", "operator", "tech", "rsrp_dbm", "setting", "geometry")


# ---------------------------------------------------------------- the thresholds


def required_negative_tests(tests, allowed_failure_share: float = 0.10, confidence: float = 0.95,
                            minimum: int = 5):
    """Negative tests a hexagon with ``tests`` tests needs to be challenged (testing threshold).

    The smallest k with P(X ≥ k) ≤ 1 − ``confidence`` for X ~ Binomial(tests,
    ``allowed_failure_share``) — a one-sided binomial test that the negative share
    exceeds what the cell-edge reliability allows — and at least ``minimum``.
    When no k ≤ tests is enough, the answer is larger than ``tests``.

    Parameters
    ----------
    tests : int or array of int
        Counted tests in the hexagon.
    allowed_failure_share : float, default 0.10
        ``1 − cell_edge_reliability`` (90 % -> 10 %).
    confidence : float, default 0.95
    minimum : int, default 5

    Examples
    --------
    >>> [int(k) for k in required_negative_tests([20, 25, 50, 100, 200], minimum=0)]
    [5, 6, 10, 16, 28]
    >>> int(required_negative_tests(3))
    5
    """
    from scipy.stats import binom

    n = np.asarray(tests, dtype=np.int64)
    alpha = 1.0 - float(confidence)
    # the smallest k with cdf(k - 1) >= 1 - alpha, i.e. sf(k - 1) <= alpha
    k = np.asarray(binom.ppf(1.0 - alpha, n, allowed_failure_share), dtype=float) + 1.0
    k = np.where(np.isfinite(k), k, n + 1).astype(np.int64)
    # ppf works in cdf; confirm in sf and step where rounding put k one off
    too_low = binom.sf(k - 1, n, allowed_failure_share) > alpha * (1 + 1e-9)
    k = np.where(too_low, k + 1, k)
    lower_ok = (k > 1) & (binom.sf(k - 2, n, allowed_failure_share) <= alpha * (1 - 1e-9))
    k = np.where(lower_ok, k - 1, k)
    k = np.maximum(k, int(minimum))
    return k if k.ndim else np.int64(k)


def service_threshold_dbm(profile, tolerance_db: float = 0.0) -> float:
    """RSRP below which a test is negative, dBm: the cell-edge level, less ``tolerance_db``.

    ``rsrp_threshold_dbm + device_loss_db + body_loss_db − ue_antenna_gain_dbi −
    tolerance_db`` of a :class:`coverage.radio.profiles.TechProfile`.

    Examples
    --------
    >>> from coverage.radio.profiles import NBIOT, REDCAP
    >>> service_threshold_dbm(NBIOT), service_threshold_dbm(REDCAP)
    (-131.79, -102.0)
    """
    return float(profile.rsrp_threshold_dbm + profile.device_loss_db + profile.body_loss_db
                 - profile.ue_antenna_gain_dbi - tolerance_db)


def max_hours_apart(hours: np.ndarray) -> float:
    """Largest difference in time of day between two of ``hours``, h: the latest less the earliest.

    The day window (06:00-22:00; ``day_start_hour < day_end_hour``) never crosses
    midnight, so the times of day of counted tests are ordered within one day.

    Examples
    --------
    >>> max_hours_apart(np.array([7.0, 9.5, 13.0]))
    6.0
    >>> max_hours_apart(np.array([9.0]))
    0.0
    """
    hours = np.asarray(hours, dtype=float)
    return float(hours.max() - hours.min()) if len(hours) >= 2 else 0.0


# ---------------------------------------------------------------- results


@dataclass
class ChallengeResult:
    """What :func:`assess_challenges` found.

    Attributes
    ----------
    hexes : GeoDataFrame
        One row per res-8 hexagon × technology × operator with counted challenge
        tests: :data:`HEX_COLUMNS` and the hexagon's polygon (EPSG:4326).
    tests : DataFrame
        Every challenge and rebuttal test with its screening (:data:`TEST_COLUMNS`).
    data_date : str
        The run's data date the tests' age is measured from.
    thresholds_dbm : dict
        Service threshold per technology, dBm.
    """

    hexes: object
    tests: pd.DataFrame
    data_date: str
    thresholds_dbm: dict[str, float]
    settings: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Rows per status (every status, zero included)."""
        found = self.hexes["status"].value_counts() if len(self.hexes) else pd.Series(dtype=int)
        return {status: int(found.get(status, 0)) for status in STATUSES}


# ---------------------------------------------------------------- the run


def _run_manifest(layout: RunLayout) -> dict:
    try:
        data = json.loads(layout.manifest.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SchemaError(f"{layout.manifest} is missing: the challenge needs the run's data date") from exc
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{layout.manifest} cannot be read: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _data_date(manifest: dict, layout: RunLayout, as_of) -> dt.date:
    value = as_of if as_of is not None else (manifest.get("data_date") or manifest.get("created"))
    if value is None:
        raise SchemaError(f"{layout.manifest} has no data_date: the challenge cannot date the tests")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as exc:
        raise SchemaError(f"{layout.manifest}: data_date {value!r} is not a date") from exc


def _run_profiles(manifest: dict) -> dict:
    """The technology profiles the run was built with (manifest ``config``), else the defaults."""
    from coverage.config import config_from_dict
    from coverage.errors import ConfigError
    from coverage.radio.profiles import PROFILES

    recorded = manifest.get("config") or {}
    tables = {tech: recorded[tech] for tech in PROFILES if isinstance(recorded.get(tech), dict)}
    if not tables:
        return dict(PROFILES)
    try:
        return config_from_dict(tables, source="manifest.json config").profiles
    except ConfigError as exc:
        log.warning("the run's recorded profiles cannot be read (%s): using the defaults", exc)
        return dict(PROFILES)


def _challenge_config(manifest: dict, config):
    """``config`` (a path or Config) when given, else the run's recorded [challenge], else the defaults."""
    from coverage.config import ChallengeConfig, Config, config_from_dict, load_config
    from coverage.errors import ConfigError

    if isinstance(config, Config):
        return config.challenge
    if config is not None:
        return load_config(config).challenge
    recorded = (manifest.get("config") or {}).get("challenge")
    if isinstance(recorded, dict):
        try:
            return config_from_dict({"challenge": recorded}, source="manifest.json config").challenge
        except ConfigError as exc:
            log.warning("the run's recorded [challenge] cannot be read (%s): using the defaults", exc)
    return ChallengeConfig()


def _sample_classes(layout: RunLayout, tech: str, operator: str, lon: np.ndarray, lat: np.ndarray):
    """Coverage class at each point from ``raster/<tech>_<op>_class.tif``; None without that layer."""
    import rasterio
    from pyproj import Transformer

    path = layout.coverage_class(tech, operator)
    if not path.is_file():
        return None
    with rasterio.open(path) as src:
        x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(lon, lat)
        rows, cols = rasterio.transform.rowcol(src.transform, x, y)
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        nodata = 255 if src.nodata is None else int(src.nodata)
        classes = np.full(len(lon), nodata, dtype=np.int64)
        inside = (rows >= 0) & (rows < src.height) & (cols >= 0) & (cols < src.width)
        if inside.any():
            r0, r1 = int(rows[inside].min()), int(rows[inside].max()) + 1
            c0, c1 = int(cols[inside].min()), int(cols[inside].max()) + 1
            window = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
            if window.width * window.height <= 64_000_000:  # one read of the tests' extent
                block = src.read(1, window=window)
                classes[inside] = block[rows[inside] - r0, cols[inside] - c0]
            else:  # tests spread over a national raster: read around each test
                points = list(zip(np.asarray(x)[inside], np.asarray(y)[inside], strict=True))
                classes[inside] = [int(v[0]) for v in src.sample(points, indexes=1)]
    return classes


def _counties(layout: RunLayout):
    """The run's county polygons (EPSG:4326), or None when the run has no boundaries."""
    import geopandas as gpd
    import pyogrio

    path = layout.stats_gpkg
    if not path.is_file() or "county" not in {name for name, _ in pyogrio.list_layers(path)}:
        return None
    counties = gpd.read_file(path, layer="county", columns=["code", "name"])
    return counties.to_crs(4326) if counties.crs is not None and counties.crs.to_epsg() != 4326 else counties


# ---------------------------------------------------------------- screening


def _check_tests(tests, what: str):
    import geopandas as gpd

    if not isinstance(tests, gpd.GeoDataFrame):
        raise ArgumentError(f"{what} must be a GeoDataFrame of measurements, got {type(tests).__name__}")
    missing = [col for col in _REQUIRED if col not in tests.columns]
    if missing:
        raise SchemaError(f"{what} lack the measurement columns {missing}")
    if tests.crs is not None and tests.crs.to_epsg() != 4326:
        tests = tests.to_crs(4326)
    times = tests["time"]
    if not isinstance(times.dtype, pd.DatetimeTZDtype):
        raise SchemaError(f"{what}: 'time' must be timezone-aware local time (datetime64[ns, tz]), got {times.dtype}")
    return tests


def _screen(tests, role: str, layout: RunLayout, settings, profiles, data_date: dt.date) -> pd.DataFrame:
    """One row per test: where it is, whether it counts (and why not), whether it is negative."""
    import h3

    point_res, hex_res = settings.hex_resolution + 1, settings.hex_resolution
    lon = tests.geometry.x.to_numpy(dtype=float)
    lat = tests.geometry.y.to_numpy(dtype=float)
    times = tests["time"]
    frame = pd.DataFrame({
        "role": role,
        "source_file": tests["source_file"].astype(str).to_numpy() if "source_file" in tests else "",
        "source_row": tests["source_row"].to_numpy() if "source_row" in tests else np.arange(1, len(tests) + 1),
        "time": times.to_numpy(),
        "operator": tests["operator"].astype(str).to_numpy(),
        "tech": tests["tech"].astype(str).to_numpy(),
        "rsrp_dbm": tests["rsrp_dbm"].to_numpy(dtype=float),
        "setting": tests["setting"].astype(str).to_numpy(),
        "lon": lon, "lat": lat,
    })
    frame["time"] = times.reset_index(drop=True)
    cells9 = [h3.latlng_to_cell(y, x, point_res) if math.isfinite(x) and math.isfinite(y) else ""
              for x, y in zip(lon, lat, strict=True)]
    frame["h3_res9"] = cells9
    frame["h3_res8"] = [h3.cell_to_parent(c, hex_res) if c else "" for c in cells9]

    excluded = np.full(len(frame), "", dtype=object)

    def exclude(mask, reason):
        mask = np.asarray(mask, dtype=bool)
        excluded[mask] = np.where(excluded[mask] == "", reason, excluded[mask] + "; " + reason)

    exclude(~frame["setting"].isin(COUNTED_SETTINGS), "not outdoors or in a vehicle")
    hours = _hours(times)
    frame["hour_of_day"] = hours
    exclude((hours < settings.day_start_hour) | (hours > settings.day_end_hour),
            f"outside {_clock(settings.day_start_hour)}-{_clock(settings.day_end_hour)} local time")
    local_days = times.dt.tz_localize(None).dt.normalize().reset_index(drop=True)
    age_days = (local_days - pd.Timestamp(data_date)).dt.days.to_numpy()
    exclude(np.abs(age_days) > settings.max_test_age_days,
            f"more than {settings.max_test_age_days} days from the data date {data_date.isoformat()}")
    exclude(~frame["tech"].isin(list(profiles)), "technology not in the run")

    classes = np.full(len(frame), -1, dtype=np.int64)
    for (tech, operator), idx in frame.groupby(["tech", "operator"]).groups.items():
        idx = np.asarray(idx)
        sampled = _sample_classes(layout, tech, operator, lon[idx], lat[idx]) if tech in profiles else None
        if sampled is None:
            exclude(np.isin(np.arange(len(frame)), idx), f"the run has no {tech} layer for {operator}")
            continue
        classes[idx] = sampled
    covered = np.isin(classes, (CLASS_OUTDOOR, CLASS_DEEP))
    exclude((classes >= 0) & ~covered, "outside predicted coverage")
    frame["predicted_class"] = classes

    thresholds = {tech: service_threshold_dbm(profile, settings.rsrp_tolerance_db)
                  for tech, profile in profiles.items()}
    frame["threshold_dbm"] = frame["tech"].map(thresholds).astype(float)
    rsrp = frame["rsrp_dbm"].to_numpy()
    frame["negative"] = np.isnan(rsrp) | (rsrp < frame["threshold_dbm"].to_numpy())
    frame["excluded"] = excluded
    frame["counted"] = excluded == ""
    return frame


def _clock(hour: float) -> str:
    return f"{int(hour):02d}:{int(round((hour % 1) * 60)):02d}"


# ---------------------------------------------------------------- judging


@dataclass(frozen=True)
class _Verdict:
    met: bool
    point_hexes: int
    hours_apart: float
    reasons: tuple[str, ...]


def _thresholds(cells9: Iterable[str], hours: np.ndarray, count: int, required_points: int,
                required_count: int, settings, word: str) -> _Verdict:
    """The geographic, temporal and count thresholds for one set of tests (negatives or positives)."""
    points = len(set(cells9))
    apart = max_hours_apart(hours)
    reasons = []
    if points < required_points:
        reasons.append(f"geographic: {word} tests in {points} of the {required_points} point-hexes needed")
    if apart < settings.min_hours_apart:
        reasons.append(f"temporal: {word} tests {apart:.1f} h apart, {settings.min_hours_apart:g} h needed")
    if count < required_count:
        reasons.append(f"testing: {count} {word} tests, {required_count} needed")
    return _Verdict(not reasons, points, apart, tuple(reasons))


def _land_children(hex_ids: Sequence[str], counties, point_res: int) -> np.ndarray:
    """Res-(n+1) children of each hexagon that overlap land (a county polygon); all 7 without boundaries."""
    import h3
    import shapely

    children = [h3.cell_to_children(h, point_res) for h in hex_ids]
    if counties is None or counties.empty:
        return np.array([len(c) for c in children], dtype=np.int64)
    owner = np.repeat(np.arange(len(hex_ids)), [len(c) for c in children])
    polygons = _hex_polygons([c for kids in children for c in kids])
    hits, _ = shapely.STRtree(counties.geometry.values).query(polygons, predicate="intersects")
    on_land = np.zeros(len(polygons), dtype=bool)
    on_land[hits] = True
    return np.bincount(owner[on_land], minlength=len(hex_ids)).astype(np.int64)


def _hex_counties(hex_ids: Sequence[str], counties) -> dict[str, tuple[str, str]]:
    """County (code, name) holding each hexagon's centre; ('', '') outside every county."""
    import h3
    import shapely

    out = {h: ("", "") for h in hex_ids}
    if counties is None or counties.empty or not hex_ids:
        return out
    centres = [h3.cell_to_latlng(h) for h in hex_ids]
    points = shapely.points([c[1] for c in centres], [c[0] for c in centres])
    tree = shapely.STRtree(counties.geometry.values)
    point_idx, county_idx = tree.query(points, predicate="within")
    codes, names = counties["code"].astype(str).to_numpy(), counties["name"].astype(str).to_numpy()
    for p, c in zip(point_idx, county_idx, strict=True):
        out[hex_ids[p]] = (codes[c], names[c])
    return out


def _judge(screened: pd.DataFrame, rebuttal: pd.DataFrame | None, settings, profiles, counties) -> pd.DataFrame:
    """One row per res-8 hexagon × technology × operator with counted tests (see the module docstring)."""
    point_res = settings.hex_resolution + 1
    counted = screened[screened["counted"]].reset_index(drop=True)
    if counted.empty:
        return pd.DataFrame(columns=list(HEX_COLUMNS))
    keys = counted["h3_res8"] + "|" + counted["tech"] + "|" + counted["operator"]
    gid, labels = pd.factorize(keys, sort=True)
    n_groups = len(labels)
    first = np.unique(gid, return_index=True)[1]
    hex_of, tech_of = counted["h3_res8"].to_numpy()[first], counted["tech"].to_numpy()[first]
    operator_of = counted["operator"].to_numpy()[first]
    negative = counted["negative"].to_numpy(dtype=bool)
    tests = np.bincount(gid, minlength=n_groups)
    negatives = np.bincount(gid[negative], minlength=n_groups)
    cell_code = pd.factorize(counted["h3_res9"])[0]
    pairs = np.unique(np.stack([gid[negative], cell_code[negative]]), axis=1)
    point_hexes = np.bincount(pairs[0], minlength=n_groups)
    hours = counted["hour_of_day"].to_numpy()
    by_group = pd.DataFrame({"g": gid[negative], "h": hours[negative]}).groupby("g")["h"]
    apart = np.zeros(n_groups)
    spread = by_group.max() - by_group.min()
    apart[spread.index.to_numpy()] = spread.to_numpy()

    allowed = np.array([1.0 - profiles[t].cell_edge_reliability for t in tech_of])
    required = np.asarray(required_negative_tests(tests, allowed, settings.confidence, settings.min_negative_tests))
    unique_hexes, hex_index = np.unique(hex_of, return_inverse=True)
    land = _land_children(list(unique_hexes), counties, point_res)[hex_index]
    required_points = np.minimum(settings.min_point_hexes, np.maximum(land, 1))
    geographic = point_hexes >= required_points
    temporal = apart >= settings.min_hours_apart
    testing = negatives >= required
    met = geographic & temporal & testing
    county_of = _hex_counties(list(unique_hexes), counties)

    status = np.where(met, CHALLENGED, INSUFFICIENT).astype(object)
    reason = np.empty(n_groups, dtype=object)
    for i in range(n_groups):
        if met[i]:
            reason[i] = "all three thresholds met"
            continue
        missed = []
        if not geographic[i]:
            missed.append(f"geographic: negative tests in {point_hexes[i]} of the {required_points[i]} point-hexes needed")
        if not temporal[i]:
            missed.append(f"temporal: negative tests {apart[i]:.1f} h apart, {settings.min_hours_apart:g} h needed")
        if not testing[i]:
            missed.append(f"testing: {negatives[i]} negative tests, {required[i]} needed")
        reason[i] = "; ".join(missed)

    rebuttal_tests = np.zeros(n_groups, dtype=np.int64)
    rebuttal_positives = np.zeros(n_groups, dtype=np.int64)
    if rebuttal is not None and rebuttal["counted"].any():
        answers = rebuttal[rebuttal["counted"]]
        group_of_label = {label: i for i, label in enumerate(labels)}
        last_time = counted.groupby(gid)["time"].max()
        answer_keys = answers["h3_res8"] + "|" + answers["tech"] + "|" + answers["operator"]
        for label, answer in answers.groupby(answer_keys.to_numpy()):
            i = group_of_label.get(label)
            if i is None:
                continue
            answer = answer[answer["time"] > last_time.loc[i]]
            positives = answer[~answer["negative"]]
            rebuttal_tests[i], rebuttal_positives[i] = len(answer), len(positives)
            if met[i] and len(answer):
                status[i], reason[i] = _rebut(int(tests[i]), int(negatives[i]), answer, positives,
                                              int(required_points[i]), float(allowed[i]), settings)

    return pd.DataFrame({
        "h3_res8": hex_of, "tech": tech_of, "operator": operator_of, "tests": tests,
        "negative_tests": negatives, "point_hexes": point_hexes, "status": status, "reason": reason,
        "required_negative_tests": required, "required_point_hexes": required_points, "land_point_hexes": land,
        "hours_apart": np.round(apart, 2), "rebuttal_tests": rebuttal_tests,
        "rebuttal_positive_tests": rebuttal_positives,
        "county_code": [county_of[h][0] for h in hex_of], "county_name": [county_of[h][1] for h in hex_of],
    }, columns=list(HEX_COLUMNS))


def _rebut(challenge_tests: int, challenge_negatives: int, answer: pd.DataFrame, positives: pd.DataFrame,
           required_points: int, allowed: float, settings) -> tuple[str, str]:
    """``(status, reason)`` of a challenged group given the operator's later tests."""
    verdict = _thresholds(positives["h3_res9"], positives["hour_of_day"].to_numpy(), len(positives),
                          required_points, settings.min_negative_tests, settings, "positive")
    combined_tests = challenge_tests + len(answer)
    combined_negatives = challenge_negatives + int(answer["negative"].sum())
    still = int(required_negative_tests(combined_tests, allowed, settings.confidence, settings.min_negative_tests))
    reasons = list(verdict.reasons)
    if combined_negatives >= still:
        reasons.append(f"testing: with the rebuttal, {combined_negatives} negatives of {combined_tests} tests "
                       f"still reach the {still} that challenge")
    if reasons:
        return CHALLENGED, "all three thresholds met; rebuttal not enough: " + "; ".join(reasons)
    return REBUTTED, (f"rebuttal: {len(positives)} positive tests in {verdict.point_hexes} point-hexes, "
                      f"{verdict.hours_apart:.1f} h apart; {combined_negatives} negatives of {combined_tests} "
                      f"tests, below the {still} that challenge")


def _hours(times: pd.Series) -> np.ndarray:
    return (times.dt.hour + times.dt.minute / 60.0 + times.dt.second / 3600.0).to_numpy(dtype=float)


def _hex_polygons(hex_ids: Sequence[str]):
    import h3
    import shapely

    return [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(h)]) for h in hex_ids]


# ---------------------------------------------------------------- entry points


def assess_challenges(run_dir: str | os.PathLike, tests, rebuttal=None, *, config=None,
                      as_of: str | dt.date | None = None) -> ChallengeResult:
    """Judge challenge tests (and an operator's rebuttal) against a run's predicted coverage.

    Parameters
    ----------
    run_dir : path
        A run directory: ``manifest.json`` (data date, profiles), per-operator class
        rasters ``raster/<tech>_<op>_class.tif`` and, for the land test and the
        county of each hexagon, ``stats/coverage.gpkg``.
    tests : GeoDataFrame
        Challenge tests in the measurement contract's shape (EPSG:4326; ``time``
        tz-aware, ``operator``, ``tech``, ``rsrp_dbm`` NaN for no service,
        ``setting``, ``source_file``, ``source_row``, point geometry), as
        :func:`coverage.measure.read_measurements` returns them.
    rebuttal : GeoDataFrame, optional
        The operators' rebuttal tests, same shape.
    config : path or Config, optional
        Where the ``[challenge]`` thresholds come from; default: the run's recorded
        configuration, else the defaults. The technology profiles (service
        thresholds, cell-edge reliability) are always the run's.
    as_of : date or ISO string, optional
        The data date tests are dated from; default the manifest's ``data_date``.

    Returns
    -------
    ChallengeResult

    Raises
    ------
    ArgumentError
        ``tests`` is not a GeoDataFrame.
    SchemaError
        Columns missing, ``time`` not tz-aware, or the run has no readable manifest
        or data date.
    """
    import geopandas as gpd

    layout = RunLayout(run_dir)
    tests = _check_tests(tests, "challenge tests")
    if rebuttal is not None:
        rebuttal = _check_tests(rebuttal, "rebuttal tests")
    manifest = _run_manifest(layout)
    data_date = _data_date(manifest, layout, as_of)
    profiles = _run_profiles(manifest)
    settings = _challenge_config(manifest, config)
    screened = _screen(tests, "challenge", layout, settings, profiles, data_date)
    answered = _screen(rebuttal, "rebuttal", layout, settings, profiles, data_date) if rebuttal is not None else None
    counties = _counties(layout)
    table = _judge(screened, answered, settings, profiles, counties)
    hexes = gpd.GeoDataFrame(table, geometry=_hex_polygons(table["h3_res8"].tolist()), crs=4326)
    all_tests = pd.concat([screened, answered], ignore_index=True) if answered is not None else screened
    result = ChallengeResult(hexes=hexes, tests=all_tests[list(TEST_COLUMNS)], data_date=data_date.isoformat(),
                             thresholds_dbm={t: service_threshold_dbm(p, settings.rsrp_tolerance_db)
                                             for t, p in profiles.items()},
                             settings=_settings_dict(settings))
    counts = result.counts()
    log.info("challenge: %d tests (%d counted) in %d hexagon groups: %d challenged, %d insufficient, %d rebutted",
             len(screened), int(screened["counted"].sum()), len(hexes), counts[CHALLENGED], counts[INSUFFICIENT],
             counts[REBUTTED])
    return result


def _settings_dict(settings) -> dict:
    from dataclasses import asdict

    return asdict(settings)


def write_challenge(result: ChallengeResult, run_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``challenge/hexes.csv``, ``hexes.gpkg`` (layer ``hexes``) and ``tests.csv`` of a run.

    The CSVs are UTF-8 with a BOM (Excel); text that Excel would run as a formula
    is prefixed with ``'``. The run directory belongs to the tool: the files are
    replaced atomically.
    """
    from coverage.files import atomic_output

    layout = RunLayout(run_dir)
    layout.challenge_dir.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(result.hexes.drop(columns="geometry"))
    with atomic_output(layout.challenge_csv, overwrite=True) as tmp:
        _excel_safe(table).to_csv(tmp, index=False, encoding="utf-8-sig")
    with atomic_output(layout.challenge_gpkg, overwrite=True) as tmp:
        result.hexes.to_file(tmp, layer="hexes", driver="GPKG")
    tests = result.tests.copy()
    tests["time"] = tests["time"].map(lambda t: t.isoformat() if pd.notna(t) else "")
    tests["lon"], tests["lat"] = tests["lon"].round(6), tests["lat"].round(6)
    with atomic_output(layout.challenge_tests_csv, overwrite=True) as tmp:
        _excel_safe(tests).to_csv(tmp, index=False, encoding="utf-8-sig")
    return {"hexes_csv": layout.challenge_csv, "hexes_gpkg": layout.challenge_gpkg,
            "tests_csv": layout.challenge_tests_csv}


def _excel_safe(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str) and v and v[0] in "=+-@" else v)
    return out


def run_challenge(run_dir: str | os.PathLike, tests: Sequence[str | os.PathLike],
                  rebuttal: Sequence[str | os.PathLike] = (), *, crs=None, config=None) -> dict:
    """Read test files, judge them against the run and write ``RUN_DIR/challenge/``.

    Parameters
    ----------
    run_dir : path
    tests, rebuttal : sequence of paths
        Measurement files (any format :func:`coverage.measure.read_measurements`
        reads); rebuttal files are the operators' answer.
    crs : str or mapping, optional
        Coordinate system of the files (as ``read_measurements``).
    config : path, optional
        TOML file with a ``[challenge]`` table.

    Returns
    -------
    dict
        ``result`` (:class:`ChallengeResult`), ``written`` (name -> path),
        ``rows_read``, ``rejected`` (rows the intake rejected, challenge and
        rebuttal together) and ``warnings``.
    """
    from coverage.measure import read_measurements

    if not tests:
        raise ArgumentError("give at least one challenge test file")
    layout = RunLayout(run_dir)
    intake = read_measurements(list(tests), crs=crs)
    answer = read_measurements(list(rebuttal), crs=crs) if rebuttal else None
    result = assess_challenges(run_dir, intake.measurements, None if answer is None else answer.measurements,
                               config=config)
    written = write_challenge(result, run_dir)
    rejects = [intake.rejects] + ([answer.rejects] if answer is not None else [])
    rejected_rows = sum(int(r[["source_file", "source_row"]].drop_duplicates().shape[0]) for r in rejects)
    if rejected_rows:
        from coverage.files import atomic_output

        with atomic_output(layout.challenge_dir / "rejects.csv", overwrite=True) as tmp:
            _excel_safe(pd.concat(rejects, ignore_index=True)).to_csv(tmp, index=False, encoding="utf-8-sig")
        written["rejects_csv"] = layout.challenge_dir / "rejects.csv"
    else:  # no stale rejects of an earlier challenge
        (layout.challenge_dir / "rejects.csv").unlink(missing_ok=True)
    return {"result": result, "written": written,
            "rows_read": intake.rows_read + (answer.rows_read if answer is not None else 0),
            "rejected": rejected_rows,
            "warnings": list(intake.warnings) + (list(answer.warnings) if answer is not None else [])}


__all__ = ["CHALLENGED", "COUNTED_SETTINGS", "HEX_COLUMNS", "INSUFFICIENT", "REBUTTED", "STATUSES",
           "ChallengeResult", "assess_challenges", "max_hours_apart", "required_negative_tests", "run_challenge",
           "service_threshold_dbm", "write_challenge"]

"""coverage.measure.challenge: the FCC-style challenge process on H3 hexagons.

The fake run is a 6 km square near Xiamen: CT's NB-IoT class raster says "outdoor"
everywhere except a western strip (not covered); one county polygon covers all of
it but the sea east of 118.14° E. Tests are GeoDataFrames in the measurement
contract's shape, placed at the centres of the point-hexes (res-9 children) of
chosen res-8 hexagons, so each case misses one threshold by one.
"""

from __future__ import annotations

import json

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Point, box

from coverage.config import ChallengeConfig, config_from_dict
from coverage.errors import ArgumentError, ConfigError, SchemaError
from coverage.layout import RunLayout
from coverage.measure.challenge import (
    CHALLENGED,
    INSUFFICIENT,
    REBUTTED,
    assess_challenges,
    max_hours_apart,
    required_negative_tests,
    service_threshold_dbm,
    write_challenge,
)
from coverage.radio.profiles import NBIOT

ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +x_0=0 +y_0=0 +datum=WGS84 +units=m"
DATA_DATE = "2026-06-30"
# a res-8 hexagon well inside the covered, on-land part, and one whose children straddle the coast
INLAND = h3.latlng_to_cell(24.500, 118.100, 8)
WEST, SOUTH, EAST, NORTH = 118.07, 24.47, 118.16, 24.53
COAST_LON = 118.14
NOT_COVERED_WEST_OF = 118.08
NEGATIVE_DBM, POSITIVE_DBM = -140.0, -100.0  # NB-IoT service threshold -131.79 dBm


def _write_class(layout: RunLayout, tech: str, operator: str) -> None:
    area = gpd.GeoSeries([box(WEST - 0.01, SOUTH - 0.01, EAST + 0.01, NORTH + 0.01)], crs=4326).to_crs(ALBERS)
    west, south, east, north = area.total_bounds
    res = 100.0
    width, height = int((east - west) // res) + 1, int((north - south) // res) + 1
    transform = from_origin(west, north, res, res)
    xs = west + (np.arange(width) + 0.5) * res
    ys = north - (np.arange(height) + 0.5) * res
    gx, gy = np.meshgrid(xs, ys)
    lon = gpd.GeoSeries(gpd.points_from_xy(gx.ravel(), gy.ravel()), crs=ALBERS).to_crs(4326).x.to_numpy()
    classes = np.where(lon.reshape(gx.shape) < NOT_COVERED_WEST_OF, 0, 1).astype(np.uint8)
    layout.raster_dir.mkdir(parents=True, exist_ok=True)
    with rasterio.open(layout.coverage_class(tech, operator), "w", driver="GTiff", width=width, height=height,
                       count=1, dtype="uint8", crs=ALBERS, transform=transform, nodata=255) as dst:
        dst.write(classes, 1)


def make_run(root) -> RunLayout:
    """A run directory: manifest (data date, default profiles), CT NB-IoT classes, one county."""
    layout = RunLayout(root)
    layout.stats_dir.mkdir(parents=True, exist_ok=True)
    from coverage.config import Config

    layout.manifest.write_text(json.dumps({"data_date": DATA_DATE, "run_id": "challenge-test",
                                           "config": Config().as_dict()}), encoding="utf-8")
    _write_class(layout, "nbiot", "CT")
    county = gpd.GeoDataFrame({"code": ["350203"], "name": ["思明区"], "province_code": ["350000"],
                               "province": ["福建省"]},
                              geometry=[box(WEST - 0.01, SOUTH - 0.01, COAST_LON, NORTH + 0.01)], crs=4326)
    county.to_file(layout.stats_gpkg, layer="county", driver="GPKG")
    return layout


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The fake run (see module docstring)."""
    return make_run(tmp_path_factory.mktemp("challenge") / "run")


def children(hex_id: str) -> list[str]:
    return sorted(h3.cell_to_children(hex_id, 9))


def frame_of(rows, operator="CT", tech="nbiot") -> gpd.GeoDataFrame:
    """Tests from (res-9 cell, 'YYYY-MM-DD HH:MM', rsrp_dbm[, setting]) rows, at the cell's centre."""
    records, points = [], []
    for i, row in enumerate(rows):
        cell, when, rsrp = row[:3]
        setting = row[3] if len(row) > 3 else "outdoor"
        lat, lon = h3.cell_to_latlng(cell)
        points.append(Point(lon, lat))
        records.append({"time": pd.Timestamp(when, tz="Asia/Shanghai"), "operator": operator, "tech": tech,
                        "rsrp_dbm": rsrp, "sinr_db": np.nan, "setting": setting, "source_file": "tests.csv",
                        "source_row": i + 1})
    frame = gpd.GeoDataFrame(records, geometry=points, crs=4326)
    frame["time"] = frame["time"].astype("datetime64[ns, Asia/Shanghai]")
    return frame


def challenge_rows(hex_id=INLAND, cells=4, negatives=5, hours=("08:00", "13:00"), positives=0,
                   day="2026-05-10"):
    """``negatives`` negative tests spread over the first ``cells`` children, alternating ``hours``."""
    kids = children(hex_id)
    rows = [(kids[i % cells], f"{day} {hours[i % len(hours)]}", NEGATIVE_DBM) for i in range(negatives)]
    rows += [(kids[i % 7], f"{day} 10:00", POSITIVE_DBM) for i in range(positives)]
    return rows


def one_hex(result, hex_id=INLAND):
    rows = result.hexes[result.hexes["h3_res8"] == hex_id]
    assert len(rows) == 1
    return rows.iloc[0]


# ---------------------------------------------------------------- the figures


def test_binomial_rule_reproduces_the_fcc_table():
    """One-sided binomial at 95 % against 10 %: 20 -> 5 and 100 -> 16 (DA 22-241), computed."""
    from scipy.stats import binom

    assert int(required_negative_tests(20, minimum=0)) == 5
    assert int(required_negative_tests(100, minimum=0)) == 16
    n = np.array([20, 25, 30, 40, 50, 60, 70, 100, 200])
    assert required_negative_tests(n, minimum=0).tolist() == [5, 6, 7, 8, 10, 11, 12, 16, 28]
    for tests, k in zip(n, required_negative_tests(n, minimum=0), strict=True):  # k is the smallest that rejects
        assert binom.sf(k - 1, tests, 0.1) <= 0.05 < binom.sf(k - 2, tests, 0.1)
    assert required_negative_tests(np.arange(1, 21)).min() == 5  # at least five, always
    assert int(required_negative_tests(1, minimum=0)) == 2  # one test can never be significant


def test_service_threshold_is_the_cell_edge_level():
    assert service_threshold_dbm(NBIOT) == pytest.approx(-131.79)
    assert service_threshold_dbm(NBIOT, 3.0) == pytest.approx(-134.79)


def test_hours_apart_in_time_of_day():
    assert max_hours_apart(np.array([8.0, 11.99, 9.0])) == pytest.approx(3.99)
    assert max_hours_apart(np.array([21.5, 6.0])) == pytest.approx(15.5)  # within one day's window
    assert max_hours_apart(np.array([9.0])) == 0.0


# ---------------------------------------------------------------- each threshold, met and missed by one


def test_all_three_thresholds_challenge(run):
    result = assess_challenges(run.root, frame_of(challenge_rows()))
    row = one_hex(result)
    assert row["status"] == CHALLENGED, row["reason"]
    assert (row["tests"], row["negative_tests"], row["point_hexes"]) == (5, 5, 4)
    assert row["required_negative_tests"] == 5 and row["land_point_hexes"] == 7
    assert row["hours_apart"] == pytest.approx(5.0)
    assert (row["county_code"], row["county_name"]) == ("350203", "思明区")
    assert row.geometry.contains(Point(118.100, 24.500))


def test_geographic_three_of_seven_point_hexes_is_not_enough(run):
    row = one_hex(assess_challenges(run.root, frame_of(challenge_rows(cells=3))))
    assert row["status"] == INSUFFICIENT and row["point_hexes"] == 3
    assert row["reason"] == "geographic: negative tests in 3 of the 4 point-hexes needed"


def test_temporal_negatives_within_four_hours_is_not_enough(run):
    row = one_hex(assess_challenges(run.root, frame_of(challenge_rows(hours=("08:00", "11:59")))))
    assert row["status"] == INSUFFICIENT
    assert row["reason"] == "temporal: negative tests 4.0 h apart, 4 h needed"  # 3.98 h, printed to 0.1
    assert row["hours_apart"] == pytest.approx(3.98)
    exactly = one_hex(assess_challenges(run.root, frame_of(challenge_rows(hours=("08:00", "12:00")))))
    assert exactly["status"] == CHALLENGED


def test_testing_four_negatives_is_not_enough(run):
    row = one_hex(assess_challenges(run.root, frame_of(challenge_rows(negatives=4))))
    assert row["status"] == INSUFFICIENT
    assert row["reason"] == "testing: 4 negative tests, 5 needed"


def test_testing_share_must_be_significant(run):
    """With 100 tests, 15 negatives are not enough and 16 are (5 would be for 20 tests)."""
    row = one_hex(assess_challenges(run.root, frame_of(challenge_rows(negatives=15, positives=85))))
    assert (row["tests"], row["required_negative_tests"], row["status"]) == (100, 16, INSUFFICIENT)
    assert row["reason"] == "testing: 15 negative tests, 16 needed"
    row = one_hex(assess_challenges(run.root, frame_of(challenge_rows(negatives=16, positives=84))))
    assert row["status"] == CHALLENGED


def test_no_service_is_negative(run):
    rows = [(cell, when, np.nan) for cell, when, _ in challenge_rows()]
    row = one_hex(assess_challenges(run.root, frame_of(rows)))
    assert row["status"] == CHALLENGED and row["negative_tests"] == 5


def test_geographic_counts_only_point_hexes_over_land(run):
    """A coastal hexagon: fewer than 4 children touch land, so tests in all of those suffice."""
    candidates = (h3.latlng_to_cell(lat, lon, 8) for lat in np.arange(24.48, 24.52, 0.002)
                  for lon in np.arange(118.13, 118.15, 0.001))
    coastal = next(h for h in candidates if 2 <= _land(h) < 4)
    land_kids = [c for c in children(coastal) if _on_land(c)]
    rows = [(land_kids[i % len(land_kids)], f"2026-05-10 {'08:00' if i % 2 else '14:00'}", NEGATIVE_DBM)
            for i in range(5)]
    row = one_hex(assess_challenges(run.root, frame_of(rows)), coastal)
    assert row["land_point_hexes"] == len(land_kids) and row["required_point_hexes"] == len(land_kids)
    assert row["status"] == CHALLENGED, row["reason"]
    short = [(land_kids[i % (len(land_kids) - 1)], f"2026-05-10 {'08:00' if i % 2 else '14:00'}", NEGATIVE_DBM)
             for i in range(5)]  # one land point-hex without a test
    row = one_hex(assess_challenges(run.root, frame_of(short)), coastal)
    assert row["status"] == INSUFFICIENT
    assert row["reason"] == f"geographic: negative tests in {len(land_kids) - 1} of the {len(land_kids)} point-hexes needed"


def _on_land(cell: str) -> bool:
    return any(lng < COAST_LON for _, lng in h3.cell_to_boundary(cell))


def _land(hex_id: str) -> int:
    return sum(_on_land(c) for c in children(hex_id))


# ---------------------------------------------------------------- the filters


@pytest.mark.parametrize("change, reason", [
    (lambda r: (*r[:3], "indoor"), "not outdoors or in a vehicle"),
    (lambda r: (r[0], "2026-05-10 22:30", r[2]), "outside 06:00-22:00 local time"),
    (lambda r: (r[0], "2026-05-10 05:59", r[2]), "outside 06:00-22:00 local time"),
    (lambda r: (r[0], "2025-06-29 09:00", r[2]), "more than 365 days from the data date 2026-06-30"),
])
def test_filters_drop_a_test_and_the_hexagon_falls_short(run, change, reason):
    rows = challenge_rows()
    rows[0] = change(rows[0])
    result = assess_challenges(run.root, frame_of(rows))
    assert one_hex(result)["status"] == INSUFFICIENT
    dropped = result.tests[~result.tests["counted"]]
    assert len(dropped) == 1 and dropped["excluded"].iloc[0] == reason and dropped["source_row"].iloc[0] == 1


def test_in_vehicle_counts_and_a_year_old_test_still_counts(run):
    rows = challenge_rows()
    rows[0] = (rows[0][0], "2025-06-30 09:00", rows[0][2], "in-vehicle")
    assert one_hex(assess_challenges(run.root, frame_of(rows)))["status"] == CHALLENGED


def test_tests_outside_predicted_coverage_do_not_count(run):
    """West of 118.08° E the class raster says 'not covered': a map cannot be challenged where it claims nothing."""
    west = h3.latlng_to_cell(24.5, 118.074, 8)
    result = assess_challenges(run.root, frame_of(challenge_rows(hex_id=west)))
    assert result.hexes.empty
    assert set(result.tests["excluded"]) == {"outside predicted coverage"}
    assert result.tests["predicted_class"].eq(0).all()


def test_operator_without_a_layer_does_not_count(run):
    result = assess_challenges(run.root, frame_of(challenge_rows(), operator="CM"))
    assert result.hexes.empty and set(result.tests["excluded"]) == {"the run has no nbiot layer for CM"}


# ---------------------------------------------------------------- rebuttal


def rebuttal_rows(cells=4, positives=5, hours=("09:00", "15:00"), day="2026-06-20"):
    kids = children(INLAND)
    return [(kids[i % cells], f"{day} {hours[i % len(hours)]}", POSITIVE_DBM) for i in range(positives)]


def test_rebuttal_meeting_the_same_rules_rebuts(run):
    result = assess_challenges(run.root, frame_of(challenge_rows()), frame_of(rebuttal_rows(positives=30)))
    row = one_hex(result)
    assert row["status"] == REBUTTED, row["reason"]
    assert (row["rebuttal_tests"], row["rebuttal_positive_tests"]) == (30, 30)
    assert row["reason"].startswith("rebuttal: 30 positive tests in 4 point-hexes, 6.0 h apart")


def test_rebuttal_too_small_to_outweigh_stays_challenged(run):
    """5 positives meet the mirror thresholds, but 5 negatives of 10 still challenge."""
    row = one_hex(assess_challenges(run.root, frame_of(challenge_rows()), frame_of(rebuttal_rows())))
    assert row["status"] == CHALLENGED
    assert "with the rebuttal, 5 negatives of 10 tests still reach the 5 that challenge" in row["reason"]


def test_rebuttal_in_three_point_hexes_stays_challenged(run):
    row = one_hex(assess_challenges(run.root, frame_of(challenge_rows()),
                                    frame_of(rebuttal_rows(cells=3, positives=30))))
    assert row["status"] == CHALLENGED
    assert "geographic: positive tests in 3 of the 4 point-hexes needed" in row["reason"]


def test_rebuttal_before_the_challenge_or_of_another_operator_does_not_count(run):
    early = assess_challenges(run.root, frame_of(challenge_rows()),
                              frame_of(rebuttal_rows(positives=30, day="2026-05-01")))
    assert one_hex(early)["status"] == CHALLENGED and one_hex(early)["rebuttal_tests"] == 0
    other = assess_challenges(run.root, frame_of(challenge_rows()),
                              frame_of(rebuttal_rows(positives=30), operator="CM"))
    assert one_hex(other)["status"] == CHALLENGED and one_hex(other)["rebuttal_tests"] == 0


# ---------------------------------------------------------------- outputs, config and errors


def test_write_challenge_csv_and_gpkg(run, tmp_path):
    result = assess_challenges(run.root, frame_of(challenge_rows() + challenge_rows(negatives=4, day="2026-05-11")))
    written = write_challenge(result, run.root)
    raw = written["hexes_csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(written["hexes_csv"], encoding="utf-8-sig", dtype={"county_code": str})
    assert list(table.columns[:8]) == ["h3_res8", "tech", "operator", "tests", "negative_tests", "point_hexes",
                                       "status", "reason"]
    assert table.iloc[0][["tests", "negative_tests", "status"]].tolist() == [9, 9, CHALLENGED]
    layer = gpd.read_file(written["hexes_gpkg"], layer="hexes")
    assert layer.crs.to_epsg() == 4326 and layer["status"].tolist() == [CHALLENGED]
    area_km2 = layer.to_crs(ALBERS).geometry.iloc[0].area / 1e6
    assert area_km2 == pytest.approx(h3.cell_area(INLAND, "km^2"), rel=0.01)
    tests = pd.read_csv(written["tests_csv"], encoding="utf-8-sig")
    assert len(tests) == 9 and tests["counted"].all()
    assert tests["excluded"].isna().all()  # empty, not neutralised into "'"


def test_challenge_config_validated():
    cfg = config_from_dict({"challenge": {"min_point_hexes": 3, "min_hours_apart": 2}})
    assert cfg.challenge.min_point_hexes == 3 and cfg.challenge.min_hours_apart == 2.0
    assert cfg.fingerprint() == config_from_dict({}).fingerprint()  # changes no build stage
    with pytest.raises(ConfigError, match=r"\[challenge\] min_point_hexes"):
        config_from_dict({"challenge": {"min_point_hexes": 8}})
    with pytest.raises(ConfigError, match="did you mean 'confidence'"):
        config_from_dict({"challenge": {"confidance": 0.9}})
    with pytest.raises(ConfigError, match="day_end_hour"):
        config_from_dict({"challenge": {"day_start_hour": 22, "day_end_hour": 6}})
    assert ChallengeConfig().min_negative_tests == 5


def test_config_changes_the_thresholds(run, tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("[challenge]\nmin_point_hexes = 3\n", encoding="utf-8")
    row = one_hex(assess_challenges(run.root, frame_of(challenge_rows(cells=3)), config=toml))
    assert row["status"] == CHALLENGED


def test_bad_inputs_raise_typed_errors(run, tmp_path):
    with pytest.raises(ArgumentError, match="GeoDataFrame"):
        assess_challenges(run.root, pd.DataFrame())
    with pytest.raises(SchemaError, match="rsrp_dbm"):
        assess_challenges(run.root, frame_of(challenge_rows()).drop(columns="rsrp_dbm"))
    with pytest.raises(SchemaError, match="manifest.json is missing"):
        assess_challenges(tmp_path, frame_of(challenge_rows()))

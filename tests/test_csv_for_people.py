"""The statistics CSVs are for people: areas to 0.01 km², percentages to 0.1; GPKG keeps every digit.

Before, county.csv carried 15 significant digits (`99.9999999968242`), which a person
opening it in Excel should not see.
"""

from __future__ import annotations

import re

import geopandas as gpd
import pandas as pd
import pytest
from test_cli_aggregate import counties, run_dir  # noqa: F401  (fixtures)

from coverage.aggregate import aggregate
from coverage.files import round_for_people, write_csv_bom
from coverage.layout import RunLayout

_DECIMALS = re.compile(r"\.(\d+)$")


def _most_decimals(values: pd.Series) -> int:
    """The most digits after the point among the texts of a CSV column."""
    found = [len(m.group(1)) for text in values.dropna().astype(str) if (m := _DECIMALS.search(text))]
    return max(found, default=0)


def test_round_for_people_by_unit_suffix():
    frame = pd.DataFrame({"area_km2": [85.42721239572512], "coverage_pct": [99.9999999968242],
                          "deep_coverage_pct": [98.30224578063218], "sectors": [274], "code": ["350203"],
                          "median_rsrp_dbm": [-73.72868953483457], "centroid_lon": [117.93820068085961],
                          "nearest_sector_km": [1.8295343192551352], "population": [float("nan")]})
    rounded = round_for_people(frame).iloc[0]
    assert rounded["area_km2"] == 85.43 and rounded["coverage_pct"] == 100.0
    assert rounded["deep_coverage_pct"] == 98.3 and rounded["median_rsrp_dbm"] == -73.7
    assert rounded["centroid_lon"] == 117.938201 and rounded["nearest_sector_km"] == 1.83
    assert rounded["sectors"] == 274 and rounded["code"] == "350203" and pd.isna(rounded["population"])
    assert frame.loc[0, "area_km2"] == 85.42721239572512  # the caller's frame is not changed


def test_write_csv_bom_rounds_unless_told_to_keep_every_digit(tmp_path):
    frame = pd.DataFrame({"coverage_pct": [99.9999999968242]})
    people = write_csv_bom(frame, tmp_path / "people.csv").read_text(encoding="utf-8-sig")
    exact = write_csv_bom(frame, tmp_path / "exact.csv", for_people=False).read_text(encoding="utf-8-sig")
    assert people == "coverage_pct\n100.0\n" and exact == "coverage_pct\n99.9999999968242\n"


def test_statistics_csvs_are_rounded_and_the_geopackage_keeps_full_precision(run_dir, counties):  # noqa: F811
    aggregate(run_dir, counties=counties)
    layout = RunLayout(run_dir)
    text = {c: str for c in ("code", "parent", "province_code", "county_code", "unit_code")}
    county = pd.read_csv(layout.county_csv, encoding="utf-8-sig", dtype=text, keep_default_na=False,
                         na_values=[""])
    raw = pd.read_csv(layout.county_csv, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    for column in ("area_km2", "covered_km2", "deep_covered_km2"):
        assert _most_decimals(raw[column]) <= 2, column
    for column in ("coverage_pct", "deep_coverage_pct", "ce0_pct", "ce1_pct", "ce2_pct"):
        assert _most_decimals(raw[column]) <= 1, column
    summary = pd.read_csv(layout.summary_csv, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert _most_decimals(summary["coverage_pct"]) <= 1 and _most_decimals(summary["area_km2"]) <= 2
    gaps = pd.read_csv(layout.gaps_csv("nbiot"), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert _most_decimals(gaps["area_km2"]) <= 2

    wide = gpd.read_file(layout.stats_gpkg, layer="county").set_index("code")
    rows = county.set_index(["code", "tech", "operator"])
    exact = wide.loc["420101", "nbiot_ct_coverage_pct"]
    assert _most_decimals(pd.Series([repr(float(exact))])) > 1  # π r² / 50 km²: not a round number
    assert rows.loc[("420101", "nbiot", "CT"), "coverage_pct"] == pytest.approx(exact, abs=0.05)
    assert rows.loc[("420101", "nbiot", "CT"), "coverage_pct"] == round(exact, 1)

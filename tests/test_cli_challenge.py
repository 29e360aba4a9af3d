"""`covmap challenge` on the bundled sample challenge set (sample_data/measurements/challenge/).

The run is a small, real prediction of the sample: China Telecom's NB-IoT sectors
within 8 km of the two test areas, flat earth at 200 m, with the real county
polygons of 厦门市 and a manifest dated 2026-12-01 (the tests are from Oct/Nov 2026).
The sample's generator chose areas covered with 15 dB to spare, so this coarser,
flat prediction covers them as the full sample build does.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h3
import pandas as pd
import pytest

from cli import main

ROOT = Path(__file__).resolve().parents[1]
CHALLENGE = ROOT / "sample_data" / "measurements" / "challenge"
TESTS_CSV = CHALLENGE / "challenge_tests_synthetic.csv"
DATA_DATE = "2026-12-01"


@pytest.fixture(scope="module")
def sample_manifest():
    """sample_data/measurements/challenge/manifest.json (written by its generator)."""
    return json.loads((CHALLENGE / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory, sample_manifest):
    """A run directory predicting CT NB-IoT around the sample's two challenge areas."""
    import geopandas as gpd
    from shapely.geometry import Point

    from coverage.boundaries import load_counties
    from coverage.config import Config
    from coverage.ingest import read_submissions
    from coverage.layout import RunLayout
    from coverage.predict import predict

    layout = RunLayout(tmp_path_factory.mktemp("cli_challenge") / "run")
    layout.root.mkdir(parents=True)
    sectors = read_submissions([ROOT / "sample_data/submissions/ct_sites.csv"]).sectors
    areas = [h3.cell_to_latlng(a["h3_res8"]) for a in sample_manifest["areas"].values()]
    near = gpd.GeoSeries([Point(lon, lat) for lat, lon in areas], crs=4326).to_crs(3857).buffer(8000).to_crs(4326)
    keep = (sectors["tech"] == "nbiot") & sectors.geometry.intersects(near.union_all())
    sectors[keep].to_parquet(layout.sectors)
    predict(layout.sectors, layout.root, techs=("nbiot",), resolution_m=200, scheduler="synchronous")
    layout.stats_dir.mkdir(parents=True, exist_ok=True)
    load_counties(city="350200").to_file(layout.stats_gpkg, layer="county", driver="GPKG")
    layout.manifest.write_text(json.dumps({"data_date": DATA_DATE, "run_id": "cli-challenge",
                                           "config": Config().as_dict()}), encoding="utf-8")
    return layout


def _hexes(layout) -> pd.DataFrame:
    return pd.read_csv(layout.challenge_csv, encoding="utf-8-sig", dtype={"county_code": str})


def test_sample_set_one_area_challenged_one_not(runner, sample_run, sample_manifest):
    result = runner.invoke(main, ["challenge", str(sample_run.root), "--tests", str(TESTS_CSV)])
    assert result.exit_code == 1, result.output  # a challenged hexagon is a finding
    assert "26 rows read, 0 rejected; 26 tests, 24 counted (data date 2026-12-01)" in result.output
    assert "2 hexagons: 1 challenged, 1 insufficient, 0 rebutted" in result.output
    table = _hexes(sample_run).set_index("h3_res8")
    for area in sample_manifest["areas"].values():
        row = table.loc[area["h3_res8"]]
        assert row["status"] == area["expected_status"]
        assert (row["tests"], row["negative_tests"], row["point_hexes"]) == (
            area["tests_counted"], area["negative_tests"], area["point_hexes"])
        assert (row["operator"], row["tech"], row["county_name"]) == ("CT", "nbiot", "湖里区")
    b = table.loc[sample_manifest["areas"]["B"]["h3_res8"]]
    assert b["reason"] == "geographic: negative tests in 3 of the 4 point-hexes needed"
    tests = pd.read_csv(sample_run.challenge_tests_csv, encoding="utf-8-sig")
    assert sorted(tests["excluded"].dropna()) == ["not outdoors or in a vehicle", "outside 06:00-22:00 local time"]


def test_tests_take_several_files_at_once(runner, sample_run, tmp_path):
    lines = TESTS_CSV.read_text(encoding="utf-8-sig").splitlines()
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("\n".join(lines[:14]) + "\n", encoding="utf-8-sig")
    second.write_text("\n".join([lines[0], *lines[14:]]) + "\n", encoding="utf-8-sig")
    result = runner.invoke(main, ["challenge", str(sample_run.root), "--tests", str(first), str(second)])
    assert result.exit_code == 1, result.output
    assert "26 rows read" in result.output and "1 challenged, 1 insufficient" in result.output


def test_operator_rebuttal_rebuts_area_a(runner, sample_run, sample_manifest, tmp_path):
    """CT answers with 40 positive tests in 5 point-hexes, after the challenge, at 09:00 and 16:00."""
    from coverage.chinacrs import wgs84_to_gcj02

    area_a = sample_manifest["areas"]["A"]["h3_res8"]
    kids = sorted(h3.cell_to_children(area_a, 9))
    rebuttal = tmp_path / "ct_rebuttal.csv"
    with rebuttal.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["测试时间", "经度", "纬度", "坐标系", "运营商", "制式", "RSRP", "场景"])
        for i in range(40):
            lat, lon = h3.cell_to_latlng(kids[i % 5])
            (x,), (y,) = wgs84_to_gcj02([lon], [lat])
            writer.writerow([f"2026-11-2{i % 5} {'09' if i % 2 else '16'}:{i:02d}:00", f"{x:.6f}", f"{y:.6f}",
                             "GCJ-02", "中国电信", "NB-IoT", "-105.0", "室外"])
    result = runner.invoke(main, ["challenge", str(sample_run.root), "--tests", str(TESTS_CSV),
                                  "--rebuttal", str(rebuttal)])
    assert result.exit_code == 0, result.output  # nothing left challenged
    assert "0 challenged, 1 insufficient, 1 rebutted" in result.output
    row = _hexes(sample_run).set_index("h3_res8").loc[area_a]
    assert row["status"] == "rebutted" and row["rebuttal_positive_tests"] == 40
    assert row["reason"].startswith("rebuttal: 40 positive tests in 5 point-hexes")


def test_cannot_run_exits_2(runner, sample_run, tmp_path):
    assert runner.invoke(main, ["challenge", str(sample_run.root)]).exit_code == 2  # --tests missing
    missing = runner.invoke(main, ["challenge", str(sample_run.root), "--tests", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "none.csv" in missing.output
    no_run = runner.invoke(main, ["challenge", str(tmp_path), "--tests", str(TESTS_CSV)])
    assert no_run.exit_code == 2 and "manifest.json is missing" in no_run.output

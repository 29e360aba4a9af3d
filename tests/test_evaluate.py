"""Evaluation: measurements binned to a run's pixels and compared with its prediction (issue 14 part 2)."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from measure_helpers import make_run, measurements_from_run

from cli import main
from coverage.errors import SchemaError
from coverage.grid import china_albers_crs
from coverage.measure.evaluate import (
    SUMMARY_COLUMNS,
    bin_measurements,
    compare_bins,
    distance_label,
    evaluate_run,
    read_headline,
)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Three omni NB-IoT sites of CT near Xiamen, predicted flat at 200 m (sectors.parquet, raster/)."""
    return make_run(tmp_path_factory.mktemp("run"))


def _points(lonlat, **columns):
    n = len(lonlat)
    base = {"operator": ["CT"] * n, "tech": ["nbiot"] * n}
    base.update(columns)
    return gpd.GeoDataFrame(base, geometry=[shapely.Point(lon, lat) for lon, lat in lonlat], crs="EPSG:4326")


def test_bins_hold_count_median_and_no_service():
    """Five samples in one pixel (one without service, as −∞), two in another; the minimum count flags the second."""
    here, there = (118.1000, 24.5000), (118.2, 24.6)
    frame = _points([here] * 5 + [there] * 2, rsrp_dbm=[-100.0, -104.0, -90.0, np.nan, -110.0, -95.0, -97.0],
                    band=["B8", "B8", "B5", "", "B8", "", ""])
    bins = bin_measurements(frame, 100.0, min_samples=3).sort_values("n_samples", ascending=False)
    first, second = bins.iloc[0], bins.iloc[1]
    assert (first["n_samples"], first["n_no_service"], first["band"]) == (5, 1, "B8")
    assert first["measured_dbm"] == -104.0  # median of −∞, −110, −104, −100, −90
    assert bool(first["enough_samples"]) and not bool(second["enough_samples"])
    assert second["measured_dbm"] == -96.0 and second["band"] == ""
    # the pixel is the global lattice's: its centre is (col + 0.5)·res, −(row + 0.5)·res
    assert first["x_m"] == (first["col"] + 0.5) * 100.0 and first["y_m"] == -(first["row"] + 0.5) * 100.0


def test_a_bin_without_service_is_measured_not_covered():
    frame = _points([(118.1, 24.5)] * 3, rsrp_dbm=[np.nan, np.nan, -80.0])
    bins = bin_measurements(frame, 100.0)
    assert np.isnan(bins["measured_dbm"].iloc[0]) and bins["n_no_service"].iloc[0] == 2


def test_measurements_without_the_columns_are_refused():
    frame = gpd.GeoDataFrame({"operator": ["CT"]}, geometry=[shapely.Point(118.1, 24.5)], crs="EPSG:4326")
    with pytest.raises(SchemaError, match="tech, rsrp_dbm"):
        bin_measurements(frame, 100.0)


def test_distance_decades():
    labels = distance_label(np.array([50.0, 100.0, 999.0, 5_000.0, 25_000.0, np.nan]))
    assert list(labels) == ["<0.1 km", "0.1-1 km", "0.1-1 km", "1-10 km", ">=10 km", ""]


def test_a_known_offset_is_the_mean_error(run_dir):
    """Measured = predicted − 5 dB exactly: mean error 5.00, σ 0, and the groups of the issue in order."""
    measurements = measurements_from_run(run_dir, offset_db=5.0, n_pixels=2000)
    evaluation = evaluate_run(run_dir, measurements)
    summary = evaluation.summary
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    assert summary["group"].iloc[0] == "all"
    first = summary.iloc[0]
    assert (first["tech"], first["operator"], first["n_bins"]) == ("nbiot", "CT", 2000)
    assert first["mean_error_db"] == pytest.approx(5.0, abs=0.01)
    assert first["std_error_db"] == pytest.approx(0.0, abs=0.01)
    assert first["rmse_db"] == pytest.approx(5.0, abs=0.01) and first["p90_db"] == pytest.approx(5.0, abs=0.01)
    prefixes = [g.split(":")[0] for g in summary["group"]]
    order = ["all", "band", "environment", "county", "distance"]
    assert sorted(set(prefixes), key=order.index) == order
    assert [order.index(p) for p in prefixes] == sorted(order.index(p) for p in prefixes)
    assert set(summary.loc[summary["group"].str.startswith("environment:"), "group"]) == {
        "environment:urban", "environment:suburban"}
    assert set(summary.loc[summary["group"].str.startswith("band:"), "group"]) == {"band:B8"}
    # every bin is in one distance decade: the decades' bins add up to all
    decades = summary[summary["group"].str.startswith("distance:") & (summary["operator"] == "all")]
    assert decades["n_bins"].sum() == 2000
    assert evaluation.headline["nbiot"]["mean_error_db"] == pytest.approx(5.0, abs=0.01)


def test_precision_and_recall_follow_the_threshold(run_dir):
    """No error: precision = recall = 100 %. Measured 40 dB stronger: all measured covered, recall = the
    share of those the prediction covers; precision stays 100 %."""
    exact = evaluate_run(run_dir, measurements_from_run(run_dir, n_pixels=1500, seed=3), write=False)
    assert exact.headline["nbiot"]["precision"] == 100.0 and exact.headline["nbiot"]["recall"] == 100.0
    confusion = exact.confusion[exact.confusion["operator"] == "all"].set_index("predicted")
    off_diagonal = sum(int(confusion.loc[p, f"measured {m}"]) for p in confusion.index for m in
                       ("covered", "uncertain", "not covered") if p != m)
    assert off_diagonal == 0
    strong = evaluate_run(run_dir, measurements_from_run(run_dir, offset_db=-40.0, n_pixels=1500, seed=3),
                          write=False)
    bins = strong.bins
    assert bins["measured_covered"].all()
    expected_recall = 100.0 * bins["predicted_covered"].mean()
    assert 0.0 < expected_recall < 100.0
    assert strong.headline["nbiot"]["recall"] == pytest.approx(expected_recall, abs=0.01)
    assert strong.headline["nbiot"]["precision"] == 100.0


def test_confusion_counts_every_bin_once(run_dir):
    evaluation = evaluate_run(run_dir, measurements_from_run(run_dir, offset_db=2.0, noise_db=6.0, seed=5),
                              write=False)
    table = evaluation.confusion[evaluation.confusion["operator"] == "all"]
    counts = table[["measured covered", "measured uncertain", "measured not covered"]].to_numpy()
    assert counts.sum() == int(evaluation.bins["enough_samples"].sum())
    bins = evaluation.bins
    uncertain = (bins["measured_dbm"] - bins["threshold_dbm"]).abs() < 3.0
    assert int(table["measured uncertain"].sum()) == int(uncertain.sum())
    assert bins["threshold_dbm"].notna().all()


def test_county_groups_from_the_county_under_each_bin(run_dir):
    """Two counties split at 118.1° E: each bin in its county's group, none outside."""
    measurements = measurements_from_run(run_dir, offset_db=1.0, n_pixels=1000, seed=2)
    west = shapely.box(117.0, 23.5, 118.1, 25.5)
    east = shapely.box(118.1, 23.5, 119.5, 25.5)
    counties = gpd.GeoDataFrame({"code": ["350201", "350202"], "name": ["西区", "东区"]}, geometry=[west, east],
                                crs="EPSG:4326")
    bins = bin_measurements(measurements, 200.0)
    compared = compare_bins(bins, run_dir, counties=counties)
    lon = gpd.GeoSeries(gpd.points_from_xy(bins["x_m"], bins["y_m"]), crs=china_albers_crs()).to_crs(4326).x
    assert (compared["county_code"] == np.where(lon < 118.1, "350201", "350202")).all()
    assert set(compared["county_name"]) == {"西区", "东区"}


def test_files_written_and_report_is_self_contained(run_dir):
    measurements = measurements_from_run(run_dir, offset_db=3.0, noise_db=4.0, n_pixels=800, seed=7)
    evaluation = evaluate_run(run_dir, measurements)
    names = sorted(p.name for p in evaluation.paths)
    assert names == ["bins.parquet", "confusion.csv", "evaluation.json", "report.html", "summary.csv"]
    out = run_dir / "evaluation"
    raw = (out / "summary.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    written = pd.read_csv(out / "summary.csv", encoding="utf-8-sig")
    assert tuple(written.columns) == SUMMARY_COLUMNS
    # rounded as issue 15 asks: dB to 0.01, percentages to 0.1
    assert (written["mean_error_db"].dropna() == written["mean_error_db"].dropna().round(2)).all()
    assert (written["precision"].dropna() == written["precision"].dropna().round(1)).all()
    bins = pd.read_parquet(out / "bins.parquet")
    assert len(bins) == 800 and {"predicted_dbm", "measured_dbm", "error_db", "distance_m"} <= set(bins.columns)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 4
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<script" not in page
    headline = read_headline(run_dir)
    assert headline["bins"] == 800 and headline["by_tech"]["nbiot"]["n_bins"] == 800
    assert json.loads((out / "evaluation.json").read_text())["measurements"] == 2400


def test_cli_evaluate_prints_the_headline(run_dir, runner, tmp_path):
    path = tmp_path / "accepted.parquet"
    measurements_from_run(run_dir, offset_db=4.0, n_pixels=500, seed=11).to_parquet(path)
    result = runner.invoke(main, ["evaluate", str(run_dir), "--measurements", str(path)])
    assert result.exit_code == 0, result.output
    assert "measurements read 1,500: 1,500 accepted, 0 rejected" in result.output
    assert re.search(r"nbiot\s+500 bins\s+mean error\s+\+4\.00 dB\s+RMSE\s+4\.00 dB", result.output)
    assert (run_dir / "evaluation" / "summary.csv").exists()


def test_cli_evaluate_unreadable_measurements_exit_2(run_dir, runner, tmp_path):
    bad = tmp_path / "broken.parquet"
    bad.write_text("not parquet")
    result = runner.invoke(main, ["evaluate", str(run_dir), "--measurements", str(bad)])
    assert result.exit_code == 2
    assert "broken.parquet" in result.output


def test_cli_evaluate_run_without_prediction_exit_2(runner, tmp_path):
    path = tmp_path / "m.parquet"
    _points([(118.1, 24.5)], rsrp_dbm=[-100.0]).to_parquet(path)
    result = runner.invoke(main, ["evaluate", str(tmp_path), "--measurements", str(path)])
    assert result.exit_code == 2
    assert "report.json" in result.output


def test_cli_evaluate_reads_the_intakes_chinese_header_csv(run_dir, runner, tmp_path):
    """The real-shaped GCJ-02 drive-test CSV through the intake: its three CT NB-IoT rows (~25 m apart) fall in
    the run's pixels with a prediction; the other operators' rows have no layer here."""
    from pathlib import Path

    data = Path(__file__).parent / "data" / "measurements_drive_gcj02.csv"
    config = tmp_path / "one.toml"
    config.write_text("[evaluation]\nmin_samples_per_bin = 1\n")
    result = runner.invoke(main, ["evaluate", str(run_dir), "--measurements", str(data), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "measurements read 6: 6 accepted, 0 rejected" in result.output
    bins = pd.read_parquet(run_dir / "evaluation" / "bins.parquet")
    ct = bins[(bins["operator"] == "CT") & (bins["tech"] == "nbiot")]
    assert 1 <= len(ct) <= 2 and ct["n_samples"].sum() == 3
    assert set(ct["measured_dbm"]) <= {-95.5, -96.0, -97.25, -95.75, -96.625}  # the samples or medians of two
    assert (ct["band"] == "B5").all() and np.isfinite(ct["predicted_dbm"]).all()
    rejects = (run_dir / "evaluation" / "measurement_rejects.csv").read_bytes()
    assert rejects.startswith(b"\xef\xbb\xbf") and rejects.count(b"\n") == 1  # header only

"""The library reports the wall seconds of its steps, as the benches print them (bench/evaluate.py, bench/lookup.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from measure_helpers import measurements_from_run
from test_evaluate import run_dir  # noqa: F401 - the fixture
from test_publish import make_run

from coverage.lookup import lookup
from coverage.measure import read_measurements
from coverage.measure.evaluate import TIMED_STEPS, evaluate_run

SAMPLE_DRIVE = Path(__file__).parents[1] / "sample_data" / "measurements" / "drive_scanner_gcj02.csv"


def test_intake_times_reading_and_validating():
    intake = read_measurements(SAMPLE_DRIVE, crs="gcj02")
    assert list(intake.timings_s) == ["read", "validate"]
    assert all(seconds >= 0 for seconds in intake.timings_s.values())


def test_evaluation_times_each_step_in_order(run_dir, tmp_path):  # noqa: F811 - the fixture
    evaluation = evaluate_run(run_dir, measurements_from_run(run_dir, n_pixels=200, seed=1))
    assert list(evaluation.timings_s) == ["bin", "compare", "statistics", "write"]
    path = tmp_path / "accepted.parquet"
    measurements_from_run(run_dir, n_pixels=200, seed=1).to_parquet(path)
    evaluation = evaluate_run(run_dir, [path])
    assert list(evaluation.timings_s) == list(TIMED_STEPS)
    assert all(seconds >= 0 for seconds in evaluation.timings_s.values())


def test_lookup_times_read_answer_write(tmp_path):
    run = make_run(tmp_path / "run")
    points = tmp_path / "points.csv"
    pd.DataFrame({"编号": ["a", "b"], "经度": [118.1, 118.12], "纬度": [24.5, 24.52]}).to_csv(points, index=False)
    result = lookup(run, [points], tmp_path / "out")
    assert list(result.timings_s) == ["read", "answer", "write"]
    assert all(seconds >= 0 for seconds in result.timings_s.values())

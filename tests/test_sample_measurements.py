"""The synthetic sample measurements: readable, the documented bad rows rejected, the truth file complete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from coverage.measure import read_measurements

HERE = Path(__file__).resolve().parents[1] / "sample_data" / "measurements"
TRUTH = json.loads((HERE / "truth.json").read_text(encoding="utf-8"))
FILES = sorted(HERE / name for name in TRUTH["files"])


@pytest.fixture(scope="module")
def intake():
    """All four sample files read with the real national outline."""
    return read_measurements(FILES)


def test_every_file_reads_and_only_the_bad_rows_are_rejected(intake):
    assert intake.rows_read == sum(info["rows"] for info in TRUTH["files"].values())
    bad = TRUTH["files"]["drive_scanner_gcj02.csv"]["bad_rows"]
    rejected = sorted(zip(intake.rejects["source_file"], intake.rejects["source_row"], strict=True))
    assert rejected == sorted((str(HERE / "drive_scanner_gcj02.csv"), row) for row in bad.values())
    assert intake.warnings == []  # every file states its datum or is GPS (WGS-84)
    m = intake.measurements
    per_file = m.groupby("source_file").size()
    for name, info in TRUTH["files"].items():
        expected = info["rows"] - len(info.get("bad_rows", {}))
        assert per_file[str(HERE / name)] == expected
        no_service = m.loc[m["source_file"] == str(HERE / name), "rsrp_dbm"].isna().sum()
        assert no_service == info["no_service_rows"]


def test_sample_covers_operators_technologies_settings_and_sources(intake):
    m = intake.measurements
    assert set(m["operator"]) == {"CT", "CM", "CU"} and set(m["tech"]) == {"nbiot", "redcap"}
    assert set(m["source_kind"]) == {"scanner", "handset", "mr"}
    assert {"in-vehicle", "outdoor", "indoor"} >= set(m["setting"]) >= {"in-vehicle"}
    # in 厦门市, after the GCJ-02 conversion
    assert m.geometry.x.between(117.8, 118.45).all() and m.geometry.y.between(24.38, 24.95).all()
    hours = m["time"].dt.hour
    assert hours.between(6, 21).all()  # inside the challenge's 06:00–22:00 window


def test_truth_documents_the_offsets_for_every_group():
    assert TRUTH["synthetic"] is True and TRUTH["shadowing"]["sigma_db"] == 8.0
    offsets = TRUTH["offsets_db"]
    assert offsets["CU"]["dense_urban"] == -8.0 and offsets["CM"]["suburban"] == 0.0
    for tech, per_op in TRUTH["realised_offsets_db"].items():
        for op, per_env in per_op.items():
            for env, realised in per_env.items():
                assert realised["n"] > 50, (tech, op, env)
                # one realisation of σ = 8 dB shadowing correlated over ~100 m: within 7 dB of the injected offset
                assert abs(realised["mean_db"] - offsets[op][env]) < 7.0
    # pooled over every group, the realised departures average out near the injected ones
    diffs = [r["mean_db"] - offsets[op][env] for per_op in TRUTH["realised_offsets_db"].values()
             for op, per_env in per_op.items() for env, r in per_env.items()]
    assert abs(float(np.mean(diffs))) < 1.0


def test_sample_stays_small():
    assert sum(p.stat().st_size for p in HERE.iterdir()) < 2.2 * 2**20

"""covmap build --measurements: the evaluate stage after the statistics, and every page saying how well the map
matched measurements, or that it was not measured (issue 14 part 5)."""

from __future__ import annotations

import json
import re

from measure_helpers import measurements_from_run
from test_pipeline import _build, _coarse_config, submissions  # noqa: F401 - the fixture

from cli import main

NOT_MEASURED = "实测检验 Measurements: not measured"


def _pages(site):
    return sorted(site.rglob("*.html"))


def test_pages_say_not_measured_then_the_measured_figures(submissions, tmp_path):  # noqa: F811
    run, config = tmp_path / "run", _coarse_config(tmp_path)
    plain = _build(submissions, run, config)
    assert "evaluate" not in plain.stages
    pages = _pages(run / "site")
    assert len(pages) >= 3
    for page in pages:
        assert NOT_MEASURED in page.read_text(encoding="utf-8"), page

    accepted = tmp_path / "drive.parquet"
    measurements_from_run(run, offset_db=5.0, n_pixels=400, per_pixel=3, seed=1, operator="CT").to_parquet(accepted)
    measured = _build(submissions, run, config, measurements=[accepted])
    assert [name for name, stage in measured.stages.items() if not stage.reused] == ["evaluate", "publish"]
    detail = measured.stages["evaluate"].detail
    assert detail["rows_read"] == 1200 and detail["by_tech"]["nbiot"]["n_bins"] == 400
    assert detail["by_tech"]["nbiot"]["mean_error_db"] == 5.0
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["inputs"]["measurements"][0]["path"] == str(accepted)
    assert len(manifest["inputs"]["measurements"][0]["sha256"]) == 64
    for page in _pages(run / "site"):
        text = page.read_text(encoding="utf-8")
        assert "NB-IoT 400 bins, mean error +5.0 dB (predicted − measured), RMSE 5.0 dB, precision" in text, page
        assert "5G RedCap not measured" in text
    # unchanged measurements: the evaluation and the pages are reused
    again = _build(submissions, run, config, measurements=[accepted])
    assert again.reused_stages == ["validate", "predict", "aggregate", "evaluate", "publish"]


def test_an_evaluation_of_an_earlier_prediction_is_not_shown(submissions, tmp_path):  # noqa: F811
    """After a rebuild that changes the prediction, the old evaluation says nothing of the new map."""
    run = tmp_path / "run"
    _build(submissions, run, _coarse_config(tmp_path))
    accepted = tmp_path / "drive.parquet"
    measurements_from_run(run, offset_db=2.0, n_pixels=300, seed=2).to_parquet(accepted)
    _build(submissions, run, _coarse_config(tmp_path), measurements=[accepted])
    assert NOT_MEASURED not in (run / "site" / "index.html").read_text(encoding="utf-8")
    stronger = tmp_path / "stronger.toml"
    stronger.write_text("[grid]\nresolution_m = 250\ntile_size_px = 64\n[nbiot]\neirp_dbm = 60.0\n")
    rebuilt = _build(submissions, run, stronger)
    assert "predict" not in rebuilt.reused_stages
    assert NOT_MEASURED in (run / "site" / "index.html").read_text(encoding="utf-8")


def test_cli_build_with_measurements_prints_the_comparison(submissions, tmp_path, runner):  # noqa: F811
    run, config = tmp_path / "run", _coarse_config(tmp_path)
    _build(submissions, run, config)
    accepted = tmp_path / "drive"
    accepted.mkdir()
    measurements_from_run(run, offset_db=-3.0, n_pixels=200, seed=3).to_parquet(accepted / "ct.parquet")
    result = runner.invoke(main, ["build", "--submissions", str(submissions), "--out", str(run), "--config",
                                  str(config), "--dem", "none", "--clutter", "none", "--scheduler", "synchronous",
                                  "--measurements", str(accepted)])
    assert result.exit_code == 0, result.output
    assert "measurements read 600: 0 rejected; 200 bins" in result.output
    assert re.search(r"nbiot\s+200 bins\s+mean error\s+-3\.00 dB", result.output)

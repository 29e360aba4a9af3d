"""Incremental prediction: ``predict(..., reuse=True)`` keeps unchanged operators' layers.

The monthly update case (issue 6): one operator resubmits, only its layers and the
combined layers are recomputed, and every file equals a clean run's byte for byte.
"""

from __future__ import annotations

import json

import pytest
from test_predict import make_config, make_sectors, sha256

from coverage.layout import RunLayout
from coverage.predict import predict

ROWS = [
    {"lon": 105.00, "lat": 30.00, "operator": "CT"},
    {"lon": 105.06, "lat": 30.03, "operator": "CT", "azimuth_deg": 120.0},
    {"lon": 105.03, "lat": 29.97, "operator": "CM", "azimuth_deg": 240.0},
    {"lon": 104.97, "lat": 30.02, "operator": "CM", "environment": "dense_urban"},
    {"lon": 105.02, "lat": 30.05, "operator": "CU", "environment": "suburban"},
]
RUN = dict(techs=("nbiot",), resolution_m=500, scheduler="synchronous", tile_size_px=32)


def _predict(rows, out, **kwargs):
    return predict(make_sectors(rows), out, config=make_config(), **{**RUN, **kwargs})


def _files(run_dir):
    """sha256 of every raster and of report.json, by name."""
    raster = RunLayout(run_dir).raster_dir
    return {p.name: sha256(p) for p in sorted(raster.iterdir()) if p.suffix in (".tif", ".json")}


def _reused(report):
    return {layer["operator"]: layer["reused"] for layer in report["techs"]["nbiot"]["layers"]}


def _without_reuse_flags(path):
    report = json.loads(path.read_text(encoding="utf-8"))
    for entry in report["techs"].values():
        for layer in entry["layers"]:
            layer.pop("reused")
    return report


def _moved(rows, operator, d_lon):
    """The rows with the first site of ``operator`` moved east by ``d_lon`` degrees."""
    out, done = [], False
    for row in rows:
        if row["operator"] == operator and not done:
            row, done = {**row, "lon": row["lon"] + d_lon}, True
        out.append(row)
    return out


def test_second_run_reuses_every_operator_layer_and_writes_the_same_bytes(tmp_path):
    first = _predict(ROWS, tmp_path, reuse=True)
    assert _reused(first) == {"CT": False, "CM": False, "CU": False, "all": False}
    before = _files(tmp_path)
    first_report = _without_reuse_flags(RunLayout(tmp_path).predict_report)
    mtimes = {p.name: p.stat().st_mtime_ns for p in RunLayout(tmp_path).raster_dir.glob("nbiot_*_*.tif")}
    second = _predict(ROWS, tmp_path, reuse=True)
    assert _reused(second) == {"CT": True, "CM": True, "CU": True, "all": False}
    assert second["evaluations_computed"] == 0 and second["evaluations"] == first["evaluations"] > 0
    after = _files(tmp_path)
    assert {k: v for k, v in after.items() if k != "report.json"} == {
        k: v for k, v in before.items() if k != "report.json"}
    # the operator files were not even rewritten
    assert mtimes == {p.name: p.stat().st_mtime_ns for p in RunLayout(tmp_path).raster_dir.glob("nbiot_*_*.tif")}
    # the report differs only in the reuse flags, and a third run writes it byte for byte again
    assert _without_reuse_flags(RunLayout(tmp_path).predict_report) == first_report
    _predict(ROWS, tmp_path, reuse=True)
    assert _files(tmp_path) == after


@pytest.mark.parametrize("change", ["move", "delete"])
def test_one_operator_resubmits_only_its_layers_and_the_combined_ones_are_recomputed(tmp_path, change):
    _predict(ROWS, tmp_path / "run", reuse=True)
    rows = _moved(ROWS, "CM", 0.01) if change == "move" else [r for r in ROWS if r is not ROWS[3]]
    report = _predict(rows, tmp_path / "run", reuse=True)
    assert _reused(report) == {"CT": True, "CM": False, "CU": True, "all": False}
    cm_evaluations = next(layer["evaluations"] for layer in report["techs"]["nbiot"]["layers"]
                          if layer["operator"] == "CM")
    assert report["evaluations_computed"] == cm_evaluations < report["evaluations"]
    clean = _predict(rows, tmp_path / "clean", reuse=False)
    assert _reused(clean) == {"CT": False, "CM": False, "CU": False, "all": False}
    updated, fresh = _files(tmp_path / "run"), _files(tmp_path / "clean")
    assert set(updated) == set(fresh) and len(fresh) == 9
    for name in fresh:
        if name != "report.json":
            assert updated[name] == fresh[name], name
    assert (_without_reuse_flags(RunLayout(tmp_path / "run").predict_report)
            == _without_reuse_flags(RunLayout(tmp_path / "clean").predict_report))


def test_a_grid_change_recomputes_everything(tmp_path, caplog):
    _predict(ROWS, tmp_path, reuse=True)
    with caplog.at_level("INFO", logger="coverage.predict"):
        report = _predict(ROWS, tmp_path, reuse=True, resolution_m=400)
    assert not any(_reused(report).values())
    assert any("grid changed" in record.getMessage() for record in caplog.records)
    # a far site of one operator widens the extent: the grid changes, nothing is reused
    report = _predict([*ROWS, {"lon": 105.6, "lat": 30.0, "operator": "CU"}], tmp_path, reuse=True,
                      resolution_m=400)
    assert not any(_reused(report).values())
    clean = _predict([*ROWS, {"lon": 105.6, "lat": 30.0, "operator": "CU"}], tmp_path / "clean",
                     resolution_m=400)
    assert report["grid"] == clean["grid"]


def test_an_update_killed_before_its_report_is_redone_by_the_next_run(tmp_path, monkeypatch):
    """Layer files replaced, report not yet written: the rerun trusts only what the report vouches for.

    The update (CM moved) dies after writing its COGs. The old report must no longer
    vouch for CM, so a rerun with the *original* sectors recomputes CM instead of
    keeping the moved-site files, and ends equal to a clean run.
    """
    from coverage.predict import writers

    _predict(ROWS, tmp_path / "run", reuse=True)
    finish = writers._LayerWriters.finish

    def finish_then_die(self):
        finish(self)
        raise KeyboardInterrupt("killed after the layer files, before report.json")

    monkeypatch.setattr(writers._LayerWriters, "finish", finish_then_die)
    with pytest.raises(KeyboardInterrupt):
        _predict(_moved(ROWS, "CM", 0.01), tmp_path / "run", reuse=True)
    monkeypatch.undo()
    vouched = json.loads(RunLayout(tmp_path / "run").predict_report.read_text(encoding="utf-8"))
    assert {layer["operator"]: layer["fingerprint"] is not None
            for layer in vouched["techs"]["nbiot"]["layers"]} == {"CT": True, "CM": False, "CU": True,
                                                                  "all": False}
    report = _predict(ROWS, tmp_path / "run", reuse=True)
    assert _reused(report) == {"CT": True, "CM": False, "CU": True, "all": False}
    _predict(ROWS, tmp_path / "clean")
    assert _files(tmp_path / "run") | {"report.json": ""} == _files(tmp_path / "clean") | {"report.json": ""}
    assert not list(RunLayout(tmp_path / "run").raster_dir.glob(".*"))


def test_the_order_of_the_rows_changes_nothing(tmp_path):
    """Sectors are put in a canonical order: shuffled rows reuse every layer and give the same bytes."""
    _predict(ROWS, tmp_path / "run", reuse=True)
    shuffled = [ROWS[i] for i in (3, 0, 4, 2, 1)]
    report = _predict(shuffled, tmp_path / "run", reuse=True)
    assert _reused(report) == {"CT": True, "CM": True, "CU": True, "all": False}
    _predict(shuffled, tmp_path / "clean")
    assert _files(tmp_path / "run") | {"report.json": ""} == _files(tmp_path / "clean") | {"report.json": ""}


def test_temporaries_left_by_a_killed_run_are_removed(tmp_path):
    """SIGKILL during COG writing leaves GDAL scratch files beside the layers; the next run removes them."""
    _predict(ROWS, tmp_path, reuse=True)
    raster = RunLayout(tmp_path).raster_dir
    stale = [raster / ".nbiot_ct_rsrp.k1ll3d.tif", raster / ".nbiot_ct_rsrp.k1ll3d.tif.ovr.tmp",
             raster / ".nbiot_class.work.k1ll3d.tif", raster / ".report.k1ll3d.json"]
    for path in stale:
        path.write_bytes(b"partial")
    _predict(ROWS, tmp_path, reuse=True)
    assert not list(raster.glob(".*"))

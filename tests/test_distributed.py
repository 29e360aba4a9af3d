"""Prediction on a dask.distributed cluster reached by its address (``scheduler="tcp://…"``).

A LocalCluster of two single-threaded worker *processes* stands in for a real cluster:
the tiles are pickled to other processes, run there, and come back in any order. The
files must still equal the synchronous run's, byte for byte.
"""

from __future__ import annotations

import pytest
from test_predict import make_config, make_sectors, sha256

from coverage.layout import RunLayout
from coverage.predict import predict
from coverage.predict.executors import SCHEDULER_HTTP

ROWS = [
    {"lon": 105.0 + 0.05 * i, "lat": 30.0 + 0.03 * (i % 3), "operator": ("CT", "CM", "CU", "CBN")[i % 4],
     "azimuth_deg": (float("nan"), 0.0, 120.0, 240.0)[i % 4], "environment": ("urban", "suburban")[i % 2]}
    for i in range(8)
] + [
    {"lon": 105.1, "lat": 30.05, "operator": "CT", "tech": "redcap", "freq_mhz": 3500.0, "eirp_dbm": 63.0,
     "azimuth_deg": 45.0},
    {"lon": 105.2, "lat": 30.0, "operator": "CM", "tech": "redcap", "freq_mhz": 2595.0, "eirp_dbm": 63.0,
     "environment": "rural"},
]
RUN = dict(resolution_m=300, tile_size_px=32)


@pytest.fixture(scope="module")
def cluster_address():
    """The address of a LocalCluster with 2 worker processes of one thread each."""
    from dask.distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           scheduler_kwargs=SCHEDULER_HTTP)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _files(run_dir):
    raster = RunLayout(run_dir).raster_dir
    return {p.name: sha256(p) for p in sorted(raster.iterdir()) if p.suffix in (".tif", ".json")}


@pytest.mark.slow
def test_a_tcp_cluster_writes_the_same_bytes_as_the_synchronous_run(tmp_path, cluster_address):
    assert cluster_address.startswith("tcp://")
    sectors = make_sectors(ROWS)
    seen = []
    sync = predict(sectors, tmp_path / "sync", config=make_config(), scheduler="synchronous", **RUN)
    dist = predict(sectors, tmp_path / "dask", config=make_config(), scheduler=cluster_address,
                   progress=lambda done, total: seen.append((done, total)), **RUN)
    assert seen[-1][0] == seen[-1][1] == len(seen) > 4
    assert dist["evaluations"] == sync["evaluations"] > 0
    files = _files(tmp_path / "sync")
    assert len([name for name in files if name.endswith(".tif")]) == 2 * (5 + 3)  # nbiot 4 ops + all, redcap 2 + all
    assert _files(tmp_path / "dask") == files  # rasters and report.json


@pytest.mark.slow
def test_a_reusing_update_on_the_cluster_equals_a_clean_synchronous_run(tmp_path, cluster_address):
    predict(make_sectors(ROWS), tmp_path / "run", config=make_config(), scheduler=cluster_address, reuse=True, **RUN)
    update = [dict(row, lon=row["lon"] + 0.01) if row["operator"] == "CU" else row for row in ROWS]
    report = predict(make_sectors(update), tmp_path / "run", config=make_config(), scheduler=cluster_address,
                     reuse=True, **RUN)
    assert [layer["reused"] for layer in report["techs"]["nbiot"]["layers"]] == [True, True, False, True, False]
    predict(make_sectors(update), tmp_path / "clean", config=make_config(), scheduler="synchronous", **RUN)
    updated, clean = _files(tmp_path / "run"), _files(tmp_path / "clean")
    assert {k: v for k, v in updated.items() if k != "report.json"} == {
        k: v for k, v in clean.items() if k != "report.json"}

"""A build says only what is the user's business: no warnings of Dask, tornado or affine.

Dask's scheduler used to serve its HTTP routes on port 8787 even without a dashboard:
with that port taken (a second build, any other cluster) distributed warned "Port 8787
is already in use" and leaked the socket of the failed bind ("unclosed <socket…>").
covmap's own `*` on affine transforms warned "Use `@` matmul". The build recorded every
warning raised while predicting and printed it as a finding.
"""

from __future__ import annotations

import gc
import logging
import re
import socket
import subprocess
import sys
import warnings

import pytest
from distributed.diagnostics.plugin import WorkerPlugin
from test_pipeline import _coarse_config, submissions  # noqa: F401  (the fixture)

from coverage.errors import CoverageWarning, ModelValidityWarning
from coverage.pipeline import _covmap_warnings_recorded
from coverage.predict.executors import _Distributed

DASK_PORT = 8787
OUR_OWN_WARNING = re.compile(r"/coverage/\S+\.py:\d+: \w*Warning")


@pytest.fixture
def dask_port_taken():
    """Port 8787 is in use while the test runs (by this socket, or already by someone else)."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", DASK_PORT))
        holder.listen()
    except OSError:
        pass  # taken already: just as good
    try:
        yield DASK_PORT
    finally:
        holder.close()


def _is_noise(message: str) -> bool:
    return "already in use" in message or "unclosed" in message or "matmul" in message


def test_a_local_cluster_starts_quietly_when_port_8787_is_taken(dask_port_taken):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        executor = _Distributed("threads", 1)
        try:
            port = executor._cluster.scheduler.services["dashboard"].port
        finally:
            executor.close()
        gc.collect()  # a leaked socket warns when it is collected
    assert port != dask_port_taken
    assert [str(w.message) for w in caught if _is_noise(str(w.message))] == []
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_only_covmap_warnings_are_recorded_and_the_others_pass_on():
    found = []
    with warnings.catch_warnings(record=True) as outside:
        warnings.simplefilter("always")
        with _covmap_warnings_recorded(found):
            warnings.warn("Hata used beyond 20 km", ModelValidityWarning, stacklevel=1)
            warnings.warn("a library's own matter", UserWarning, stacklevel=1)
    assert found == ["Hata used beyond 20 km"]
    assert [(w.category, str(w.message)) for w in outside] == [(UserWarning, "a library's own matter")]
    # with Python's default filters a ResourceWarning stays hidden, and is not a finding either
    found.clear()
    with warnings.catch_warnings(record=True) as outside:
        warnings.resetwarnings()
        warnings.simplefilter("ignore", ResourceWarning)
        with _covmap_warnings_recorded(found):
            warnings.warn("unclosed <socket>", ResourceWarning, stacklevel=1)
            warnings.warn("synthetic", CoverageWarning, stacklevel=1)
    assert found == ["synthetic"] and outside == []


@pytest.mark.slow
def test_the_cli_build_on_a_process_cluster_prints_no_library_warning(submissions, tmp_path,  # noqa: F811
                                                                       dask_port_taken):
    """As a user runs it (a cluster of worker processes), every warning shown (`-W always`)."""
    code = "import sys; from cli import main; sys.exit(main())"
    args = ["build", "--submissions", str(submissions), "--out", str(tmp_path / "run"),
            "--config", str(_coarse_config(tmp_path)), "--scheduler", "processes",
            "--dem", "none", "--clutter", "none"]
    done = subprocess.run([sys.executable, "-W", "always", "-c", code, *args],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "map: " in done.stdout
    assert "Port 8787" not in done.stderr and "already in use" not in done.stderr
    assert "unclosed" not in done.stderr and "ResourceWarning" not in done.stderr
    assert OUR_OWN_WARNING.findall(done.stderr) == []  # no warning raised in covmap's own code
    assert "warning: Use `@` matmul" not in done.stderr


class _SlowToExit(WorkerPlugin):
    """A worker plugin whose teardown outlasts the nanny's 4 s wait, as on a loaded machine."""

    name = "slow-to-exit"

    def teardown(self, worker):
        import time

        time.sleep(6)


class _Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.slow
def test_a_worker_killed_at_shutdown_is_not_reported():
    executor = _Distributed("processes", 1)
    recorder = _Recorder()
    nanny_log = logging.getLogger("distributed.nanny")
    nanny_log.addHandler(recorder)
    try:
        executor.client.register_plugin(_SlowToExit())
        executor.close()
    finally:
        nanny_log.removeHandler(recorder)
    assert [m for m in recorder.messages if "still alive" in m] == []
    assert logging.getLogger("distributed").level == executor._dask_level  # put back afterwards

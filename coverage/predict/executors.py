"""Where the tiles run: in this process (``synchronous``) or on a Dask cluster."""

from __future__ import annotations

import contextlib
import logging
import os

from coverage.errors import ConfigError

log = logging.getLogger(__package__)  # "coverage.predict", as before the split: the same log lines

SCHEDULERS = ("processes", "threads", "synchronous")

# glibc settings of the worker processes we start. Dask's nannies set
# MALLOC_TRIM_THRESHOLD_=64 KiB, and setting any threshold freezes glibc's mmap threshold
# at 128 KiB: every array of a tile (tens of MB a task) was mapped, faulted in page by
# page and unmapped again, a third of a worker's time on the Guangdong bench. The heap
# keeps them instead (a worker holds at most 256 MiB it does not use).
WORKER_MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": str(256 << 20), "MALLOC_MMAP_THRESHOLD_": str(64 << 20)}

# The scheduler of our own LocalCluster serves its HTTP routes (health, metrics) even
# without a dashboard, on port 8787 unless told otherwise: a second build or any other
# Dask cluster on the machine made distributed warn "Port 8787 is already in use" and
# leak the socket of the failed bind (an "unclosed socket" ResourceWarning). A free
# port on the loopback interface never collides and is not reachable from outside.
SCHEDULER_HTTP = {"dashboard_address": "127.0.0.1:0"}


@contextlib.contextmanager
def _worker_malloc_env():
    """Nannies created inside start their workers with :data:`WORKER_MALLOC_ENV`.

    A nanny takes ``distributed.nanny.pre-spawn-environ`` from the Dask configuration,
    but a value already in this process's environment wins, and every nanny leaves its
    own values there (an earlier cluster's 64 KiB would win): both are set while the
    cluster starts, and the environment is put back afterwards.
    """
    import dask

    saved = {name: os.environ.get(name) for name in WORKER_MALLOC_ENV}
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_MALLOC_ENV}
    os.environ.update(WORKER_MALLOC_ENV)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Synchronous:
    """Runs each task when asked for results: no Dask, one tile in memory at a time."""

    workers = 1

    def __init__(self):
        self._pending = []

    def submit(self, key, fn, *args):
        self._pending.append((key, fn, args))

    def next_done(self):
        key, fn, args = self._pending.pop(0)
        return key, fn(*args)

    def close(self):
        self._pending.clear()


class _Distributed:
    """A dask.distributed client (own LocalCluster or an existing scheduler)."""

    def __init__(self, scheduler: str, n_workers: int | None):
        from dask.distributed import Client, LocalCluster, as_completed

        # distributed logs its cluster's life at INFO; keep that out of a normal run
        self._dask_log = logging.getLogger("distributed")
        self._dask_level = self._dask_log.level
        if not log.isEnabledFor(logging.DEBUG):
            self._dask_log.setLevel(logging.WARNING)
        self._cluster = None
        if scheduler.startswith("tcp://"):
            self.client = Client(scheduler)
        else:
            n_workers = n_workers or os.cpu_count() or 1
            if scheduler == "processes":
                with _worker_malloc_env():
                    self._cluster = LocalCluster(
                        n_workers=n_workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, scheduler_kwargs=SCHEDULER_HTTP, silence_logs=logging.WARNING,
                    )
            else:
                self._cluster = LocalCluster(
                    n_workers=1, threads_per_worker=n_workers, processes=False,
                    dashboard_address=None, scheduler_kwargs=SCHEDULER_HTTP, silence_logs=logging.WARNING,
                )
            self.client = Client(self._cluster)
        info = self.client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
        self._done = as_completed()
        self._keys = {}

    def submit(self, key, fn, *args):
        future = self.client.submit(fn, *args, key=key, pure=False)
        self._keys[future.key] = key
        self._done.add(future)

    def next_done(self):
        future = next(self._done)
        result = future.result()
        key = self._keys.pop(future.key)
        future.release()
        return key, result

    def close(self):
        try:
            self.client.close()
            if self._cluster is not None:
                # Every result is in. On a loaded machine a worker can take longer than its
                # nanny's 4 s to exit and is killed, with a "still alive … killing" WARNING
                # that says nothing about the run.
                if not log.isEnabledFor(logging.DEBUG):
                    self._dask_log.setLevel(logging.ERROR)
                self._cluster.close()
        finally:
            self._dask_log.setLevel(self._dask_level)


def _executor(scheduler: str, n_workers: int | None):
    if scheduler == "synchronous":
        return _Synchronous()
    if scheduler in ("processes", "threads") or scheduler.startswith("tcp://"):
        return _Distributed(scheduler, n_workers)
    raise ConfigError(f"scheduler={scheduler!r} is not one of {', '.join(SCHEDULERS)} or tcp://HOST:PORT")

"""Worker processes of the aggregate and publish stages: how many, and their pool.

The pools are spawned (not forked: the parent holds GDAL handles and threads), so a
script whose call reaches one must run under ``if __name__ == "__main__":``.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor


def worker_count(workers: int | None, n_items: int, items_per_worker: int) -> int:
    """Processes for ``n_items`` jobs: ``workers`` (at most one per item), by default
    one per CPU but at most one per ``items_per_worker`` items (a process starts in
    about a second); at least one.

    >>> worker_count(None, 10, 50), worker_count(3, 2, 50), worker_count(0, 10, 50)
    (1, 2, 1)
    """
    if workers is None:
        return max(1, min(os.cpu_count() or 1, n_items // items_per_worker))
    return max(1, min(int(workers), n_items))


def spawn_pool(workers: int, **kwargs) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes (``kwargs`` as for ProcessPoolExecutor)."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"), **kwargs)

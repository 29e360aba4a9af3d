"""Peak resident memory of this process, for the bench scripts (Linux ``/proc``, else getrusage)."""
from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mib() -> float:
    """VmHWM since :func:`reset_peak_rss`: unlike getrusage's ru_maxrss it is not inherited over fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss() -> None:
    """Start VmHWM again from the current resident size (writing 5 to clear_refs; ignored elsewhere)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass

"""Writing outputs safely: atomic replacement and no silent clobbering.

Every writer in the library goes through :func:`atomic_output`, so a run killed at
any moment leaves either the old file or the new one, never half of one; and
through :func:`check_writable`, the one place that decides whether an existing
file may be replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from coverage.errors import FileOverwriteError

RUN_MARKER = "manifest.json"


def is_run_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` is (inside) a run directory the tool made itself."""
    path = Path(path)
    return any((parent / RUN_MARKER).exists() for parent in [path, *path.parents][:4])


def claim_run_dir(path: str | os.PathLike) -> bool:
    """Mark ``path`` as a run directory when it is new or empty; True if it is one now.

    A folder that already holds other files and no ``manifest.json`` is left
    unclaimed, so :func:`check_writable` keeps protecting what is in it.
    """
    path = Path(path)
    marker = path / RUN_MARKER
    if marker.exists():
        return True
    if path.exists() and any(path.iterdir()):
        return False
    path.mkdir(parents=True, exist_ok=True)
    marker.write_text('{"tool": "covmap", "stages": {}}\n', encoding="utf-8")
    return True


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Refuse to replace a user's existing file unless ``overwrite`` is set.

    Files inside a run directory (one holding ``manifest.json``) belong to the tool
    and may always be replaced.

    Raises
    ------
    FileOverwriteError
        ``path`` exists, is not in a run directory and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite and not is_run_dir(path.parent):
        raise FileOverwriteError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    The temporary file keeps the suffix of ``path`` so that format drivers which
    look at the extension (GDAL, pyogrio) pick the right one.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "table.csv"
    >>> with atomic_output(target) as tmp:
    ...     _ = tmp.write_text("a,b\\n1,2\\n")
    >>> target.read_text()
    'a,b\\n1,2\\n'
    """
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# Decimals of the CSVs people open (issue 15: "areas 0.01 km², percentages 0.1"), by the
# unit at the end of a column's name, or before a last qualifier (``covered_km2_old``);
# the first matching unit wins. Full precision
# stays in the GeoPackage and Parquet outputs.
DECIMALS_FOR_PEOPLE = (
    ("_km2", 2),   # 0.01 km²
    ("_pct", 1),   # 0.1 percentage point
    ("_pp", 1),    # a change in percentage points, 0.1
    ("_km", 2),    # 10 m
    ("_dbm", 1),   # 0.1 dB: the models are good to a few dB
    ("_db", 1),
    ("_lon", 6),   # 0.000001° ≈ 0.1 m
    ("_lat", 6),
)


def round_for_people(frame):
    """A copy of ``frame`` with its float columns rounded by :data:`DECIMALS_FOR_PEOPLE`.

    Columns named for no unit there (counts, codes, text) are left as they are.

    Examples
    --------
    >>> import pandas as pd
    >>> row = pd.DataFrame({"area_km2": [85.42721239572512], "coverage_pct": [99.9999999968242],
    ...                     "sectors": [274], "median_rsrp_dbm": [-67.6619757228692]})
    >>> round_for_people(row).iloc[0].tolist()
    [85.43, 100.0, 274.0, -67.7]
    """
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_float_dtype(out[column]):
            continue
        name = str(column)
        decimals = next((d for unit, d in DECIMALS_FOR_PEOPLE
                         if name.endswith(unit) or f"{unit}_" in name.rsplit("_", 1)[0] + "_"), None)
        if decimals is not None:
            out[column] = out[column].round(decimals)
    return out


def write_csv_bom(frame, path: str | os.PathLike, overwrite: bool = True, for_people: bool = True) -> Path:
    """Write a pandas frame as UTF-8 CSV with a BOM (so Chinese Excel opens it), atomically.

    ``for_people`` (the default) rounds it first with :func:`round_for_people`;
    ``False`` keeps every digit (for a CSV that machines read back exactly).
    """
    if for_people:
        frame = round_for_people(frame)
    with atomic_output(path, overwrite) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8-sig", lineterminator="\n")
    return Path(path)


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()

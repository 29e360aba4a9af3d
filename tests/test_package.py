"""The package is importable beside numba in either order (our name shadows coverage.py)."""

import subprocess
import sys

import pytest

ORDERS = {
    "ours first": "import coverage, numba",
    "numba first": "import numba, coverage",
}


@pytest.mark.parametrize("imports", ORDERS.values(), ids=ORDERS.keys())
def test_numba_compiles_whichever_is_imported_first(imports):
    code = (
        f"{imports}\n"
        "import coverage.layout\n"
        "f = numba.njit(lambda x: x + 1)\n"
        "assert f(1) == 2\n"
        "assert numba.misc.coverage_support.coverage_available is False\n"
        "assert coverage.layout.CLASS_DEEP == 2\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

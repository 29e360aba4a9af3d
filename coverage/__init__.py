"""covmap: China's national NB-IoT and 5G RedCap coverage map.

The package is a pipeline of stage modules, data flowing one way::

    ingest -> predict -> zonal / gaps -> publish

``coverage.pipeline.build`` runs them all; each stage is also a plain function.
"""

import importlib
import logging
import sys

__version__ = "0.1.0"

_NUMBA_COVERAGE_HOOK = "numba.misc.coverage_support"


def _numba_is_probing_for_coverage_py() -> bool:
    probing = sys.modules.get(_NUMBA_COVERAGE_HOOK)
    return probing is not None and not hasattr(probing, "coverage_available")


# This package shares its import name with coverage.py. numba probes for coverage.py
# with ``import coverage`` and, finding us instead, fails on ``coverage.types``.
# So numba must see an ImportError: either now, if it is probing while we load...
if _numba_is_probing_for_coverage_py():
    raise ImportError("the 'coverage' package here is covmap, not coverage.py")

# ...or, when we load first, by letting numba probe while the name is blocked.
if _NUMBA_COVERAGE_HOOK not in sys.modules:
    _this_package = sys.modules[__name__]
    sys.modules[__name__] = None  # makes ``import coverage`` raise ImportError
    try:
        importlib.import_module(_NUMBA_COVERAGE_HOOK)
    except ImportError:  # numba not installed: nothing to shield
        pass
    finally:
        sys.modules[__name__] = _this_package

logging.getLogger(__name__).addHandler(logging.NullHandler())

"""Radio models: technology profiles, path loss, antenna patterns, environments.

* :mod:`coverage.radio.profiles`: per-technology link budgets and thresholds.
* :mod:`coverage.radio.pathloss`: path-loss models (numba scalar + numpy wrappers).
* :mod:`coverage.radio.antenna`: the 3GPP sector antenna pattern.
* :mod:`coverage.radio.environment`: environment inference from site density.

Submodules are imported on demand so that ``import coverage.radio.profiles`` does
not compile numba code.
"""

ENVIRONMENTS = ("dense_urban", "urban", "suburban", "rural")

"""Terminal clutter correction of Rec. ITU-R P.2108-1 §3.1, and covmap's foliage term.

The height-gain terminal correction model (P.2108-1 Annex 1 §3.1, 0.03-3 GHz)
gives the median extra loss of a terminal at height ``h`` standing in clutter of
representative height ``R`` (Table 3), to be added to a basic transmission loss
computed to/from the height ``R``. For ``h < R``::

    knife-edge (eq. 4a)   h_dif = R − h,  θ_clut = atan(h_dif / w_s)  [degrees]
                          K_ν = 0.342 √f,  ν = K_ν √(h_dif · θ_clut)
                          A_h = J(ν) − 6.03
                          J(ν) = 6.9 + 20 log(√((ν − 0.1)² + 1) + ν − 0.1)  (ν > −0.78), else 0
    height gain (eq. 4b)  K_h2 = 21.8 + 6.2 log f
                          A_h = −K_h2 log(h / R)

and ``A_h = 0`` for ``h ≥ R`` (``f`` in GHz, ``w_s`` = 27 m street width, ``log`` =
log10). Table 3:

=====================  =======  ===================
clutter type           R, m     model
=====================  =======  ===================
water/sea              10       height gain (4b)
open/rural             10       height gain (4b)
suburban               10       knife-edge (4a)
urban/trees/forest     15       knife-edge (4a)
dense urban            20       knife-edge (4a)
=====================  =======  ===================

Suburban uses the knife-edge model: Table 3 of P.2108-1 says so, and so do the
ITU-R SG 3 reference code (eeveetza/javaP2108 ``cl_loss1``: suburban ``eqnum = 1``)
and crc-covlib (``itur_p2108.HeightGainModelClutterLoss``). With the height-gain
model suburban would equal open/rural (both R = 10 m).

What covmap uses it for
-----------------------
Only :func:`foliage_excess_db`: the correction for trees/forest minus the one for
open/rural, i.e. the extra median loss of a device among trees over one in the
open. The prediction adds it on forest land-cover classes, where the receiver's
environment is the empirical models' open-area / rural variant (which has no
trees). The urban and suburban corrections are not added to Hata-urban or
TR 38.901 UMa, which already contain the loss of the clutter around the device
(see :mod:`coverage.terrain.clutter`).

Frequencies above 3 GHz (RedCap n78, 3.5 GHz) are outside the model's published
range; the formulas are smooth in ``f`` (``√f`` and ``log f``) and are
extrapolated; :func:`validity_issues` says so for the prediction report.
"""

from __future__ import annotations

import numpy as np

from coverage.errors import ArgumentError

# P.2108-1 Table 3: clutter type -> (representative clutter height R, m; knife-edge model?)
CLUTTER_TYPES: tuple[str, ...] = ("water_sea", "open_rural", "suburban", "urban_trees_forest", "dense_urban")
REPRESENTATIVE_HEIGHT_M: dict[str, float] = {
    "water_sea": 10.0,  # P.2108-1 Table 3
    "open_rural": 10.0,  # P.2108-1 Table 3
    "suburban": 10.0,  # P.2108-1 Table 3
    "urban_trees_forest": 15.0,  # P.2108-1 Table 3
    "dense_urban": 20.0,  # P.2108-1 Table 3
}
_KNIFE_EDGE: frozenset[str] = frozenset({"suburban", "urban_trees_forest", "dense_urban"})  # P.2108-1 Table 3

# P.2108-1 §3.1: w_s "relates to the width of the street", 27 m unless local data say otherwise.
STREET_WIDTH_M = 27.0
# P.2108-1 §3.1 eq. (4a) / (4b) coefficients; J(ν) from Rec. ITU-R P.526 eq. (31).
_K_NU_PER_SQRT_GHZ = 0.342
_KNIFE_EDGE_OFFSET_DB = 6.03
_KH2_A_DB, _KH2_B_DB = 21.8, 6.2
# P.2108-1 §3.1: frequency range of the model, MHz.
VALIDITY_FREQ_MHZ = (30.0, 3000.0)


def _j_db(nu: np.ndarray) -> np.ndarray:
    """Knife-edge diffraction loss J(ν) of Rec. ITU-R P.526 eq. (31), 0 for ν ≤ −0.78."""
    x = nu - 0.1
    j = 6.9 + 20.0 * np.log10(np.sqrt(x * x + 1.0) + x)
    return np.where(nu > -0.78, j, 0.0)


def _check_positive(name: str, value: np.ndarray, unit: str) -> None:
    bad = ~(np.isfinite(value) & (value > 0))
    if np.any(bad):
        raise ArgumentError(f"{name} must be positive and finite ({unit}), got {value[bad].flat[0]!r}")


def terminal_clutter_correction_db(freq_mhz, ue_height_m, clutter_type: str, *,
                                   representative_height_m: float | None = None,
                                   street_width_m: float = STREET_WIDTH_M):
    """Median terminal clutter loss of Rec. ITU-R P.2108-1 §3.1 (height-gain model).

    Parameters
    ----------
    freq_mhz : float or array_like
        Frequency, MHz (model range 30-3000 MHz; higher values are extrapolated).
    ue_height_m : float or array_like
        Terminal antenna height above ground, m (> 0). Broadcast with ``freq_mhz``.
    clutter_type : str
        One of :data:`CLUTTER_TYPES`: ``water_sea``, ``open_rural``, ``suburban``,
        ``urban_trees_forest``, ``dense_urban``.
    representative_height_m : float, optional
        The clutter height R, m; default the type's Table 3 value
        (:data:`REPRESENTATIVE_HEIGHT_M`).
    street_width_m : float, default 27
        w_s of the knife-edge model, m.

    Returns
    -------
    float or numpy.ndarray
        A_h, dB (≥ 0 below R for the default heights; 0 at and above R). A float for
        scalar inputs, else an array of the broadcast shape.

    Raises
    ------
    ArgumentError
        Unknown clutter type, or a non-positive frequency, height, R or street width.

    Examples
    --------
    >>> round(terminal_clutter_correction_db(900.0, 1.5, "open_rural"), 2)
    17.73
    >>> round(terminal_clutter_correction_db(900.0, 1.5, "urban_trees_forest"), 2)
    22.58
    >>> terminal_clutter_correction_db(900.0, 20.0, "urban_trees_forest")
    0.0
    """
    if clutter_type not in REPRESENTATIVE_HEIGHT_M:
        raise ArgumentError(f"unknown clutter type {clutter_type!r}; choose from {', '.join(CLUTTER_TYPES)}")
    f_mhz, h_m = np.broadcast_arrays(np.asarray(freq_mhz, dtype=np.float64),
                                     np.asarray(ue_height_m, dtype=np.float64))
    _check_positive("freq_mhz", f_mhz, "MHz")
    _check_positive("ue_height_m", h_m, "m")
    r_m = REPRESENTATIVE_HEIGHT_M[clutter_type] if representative_height_m is None else float(representative_height_m)
    _check_positive("representative_height_m", np.asarray(r_m), "m")
    _check_positive("street_width_m", np.asarray(float(street_width_m)), "m")
    f_ghz = f_mhz / 1000.0
    below = h_m < r_m
    if clutter_type in _KNIFE_EDGE:
        h_dif_m = np.where(below, r_m - h_m, 0.0)
        theta_deg = np.degrees(np.arctan(h_dif_m / street_width_m))
        nu = _K_NU_PER_SQRT_GHZ * np.sqrt(f_ghz) * np.sqrt(h_dif_m * theta_deg)
        a_db = _j_db(nu) - _KNIFE_EDGE_OFFSET_DB
    else:
        k_h2 = _KH2_A_DB + _KH2_B_DB * np.log10(f_ghz)
        a_db = -k_h2 * np.log10(np.minimum(h_m, r_m) / r_m)
    out = np.where(below, a_db, 0.0)
    return float(out) if out.ndim == 0 else out


def foliage_excess_db(freq_mhz, ue_height_m):
    """Extra median loss of a device among trees over one in the open (P.2108-1 §3.1).

    ``terminal_clutter_correction_db(f, h, "urban_trees_forest")
    − terminal_clutter_correction_db(f, h, "open_rural")``: knife-edge over 15 m
    of trees minus height gain to 10 m over open ground. This is the term covmap
    adds at a receiver on a forest land-cover class, where the empirical model's
    open-area / rural variant (no trees) applies.

    Parameters
    ----------
    freq_mhz : float or array_like
        Frequency, MHz (model range 30-3000 MHz; higher values are extrapolated).
    ue_height_m : float or array_like
        Device height above ground, m (> 0).

    Returns
    -------
    float or numpy.ndarray
        dB (0 at and above 15 m).

    Raises
    ------
    ArgumentError
        A non-positive frequency or height.

    Examples
    --------
    >>> round(foliage_excess_db(900.0, 1.5), 2)
    4.85
    """
    trees = terminal_clutter_correction_db(freq_mhz, ue_height_m, "urban_trees_forest")
    open_ = terminal_clutter_correction_db(freq_mhz, ue_height_m, "open_rural")
    return trees - open_


def validity_issues(freq_mhz: float) -> list[str]:
    """How a use of the P.2108-1 §3.1 model falls outside its frequency range.

    Parameters
    ----------
    freq_mhz : float
        Frequency, MHz.

    Returns
    -------
    list of str
        One line when ``freq_mhz`` is outside 30-3000 MHz, else empty.

    Examples
    --------
    >>> validity_issues(3500.0)
    ['ITU-R P.2108-1 §3.1 foliage correction used at 3500 MHz, valid 30–3000 MHz']
    >>> validity_issues(942.5)
    []
    """
    lo, hi = VALIDITY_FREQ_MHZ
    if lo <= float(freq_mhz) <= hi:
        return []
    return [f"ITU-R P.2108-1 §3.1 foliage correction used at {float(freq_mhz):g} MHz, valid {lo:g}–{hi:g} MHz"]


__all__ = ["CLUTTER_TYPES", "REPRESENTATIVE_HEIGHT_M", "STREET_WIDTH_M", "VALIDITY_FREQ_MHZ",
           "foliage_excess_db", "terminal_clutter_correction_db", "validity_issues"]

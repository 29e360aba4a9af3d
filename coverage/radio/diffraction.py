"""Terrain terms of the path loss: knife-edge diffraction, Bullington, effective height.

Every function here is a pure function of plain numbers (numba-jitted scalars, so the
prediction kernel and the terrain sweep call the very same code as the tests).

Knife-edge diffraction (ITU-R P.526-15 §4.1, eq. 31)
----------------------------------------------------
The loss of a single ideal knife edge as a function of the dimensionless parameter
``ν``::

    J(ν) = 6.9 + 20 log10( √((ν − 0.1)² + 1) + ν − 0.1 )    for ν > −0.78, else 0 dB

Bullington (ITU-R P.526-15 §4.5.1; the same text as P.1812-6 §4.3.1 and P.452-17 §4.2.1)
-------------------------------------------------------------------------------------------
A path of length ``d`` km from a transmitter at ``h_ts`` m above sea level to a
receiver at ``h_rs`` m, over intermediate profile points ``(d_i km, h_i m)``, on an
Earth of effective curvature ``C_e = 1 / (k · 6371 km)`` (k = 4/3 by default)::

    S_tim = max_i (h_i + 500 C_e d_i (d − d_i) − h_ts) / d_i       slope to the highest obstacle seen from Tx
    S_tr  = (h_rs − h_ts) / d                                      slope of the direct line

* line of sight (``S_tim < S_tr``): ``ν_max = max_i [h_i + 500 C_e d_i (d − d_i) −
  (h_ts (d − d_i) + h_rs d_i) / d] · √(0.002 d / (λ d_i (d − d_i)))`` and
  ``L_uc = J(ν_max)``;
* otherwise ``S_rim = max_i (h_i + 500 C_e d_i (d − d_i) − h_rs) / (d − d_i)``, the
  Bullington point ``d_bp = (h_rs − h_ts + S_rim d) / (S_tim + S_rim)``, ``ν_b = [h_ts +
  S_tim d_bp − (h_ts (d − d_bp) + h_rs d_bp) / d] · √(0.002 d / (λ d_bp (d − d_bp)))``
  and ``L_uc = J(ν_b)``;
* ``L_bull = L_uc + (1 − exp(−L_uc / 6)) (10 + 0.02 d)``.

covmap applies it to the bare terrain only: the empirical models (Hata, COST-231,
TR 38.901) already contain the diffraction over the roofs and trees around the
receiver, so clutter heights are never added to the profile (double counting).

Effective base-station height (ITU-R P.1546-6 Annex 5 §3.1, eqs. 4-5; NTIA eHata)
---------------------------------------------------------------------------------
``h_eff`` is the antenna's height above the mean terrain 3-15 km toward the receiver
(``h_a + z_site − mean z``). Below 15 km P.1546 ramps from the height above ground::

    h1 = h_a                              d ≤ 3 km
    h1 = h_a + (h_eff − h_a)(d − 3) / 12   3 km < d < 15 km
    h1 = h_eff                            d ≥ 15 km

and h1 is clamped to eHata's 30-200 m (NTIA ``ExtendedHata``: ``h_b_eff`` 30-200 m,
the Hata validity range), except that terrain never moves it past the antenna's own
height above ground: the limits are ``min(h_a, 30 m)`` and ``max(h_a, 200 m)``, so a
20 m mast keeps its 20 m on flat land (flat terrain gives the flat-earth result) and
in a valley, and a 40 m mast in a valley is lowered to 30 m at most. The Hata
family's loss changes by ``−(13.82 + 6.55 log10 d_km) · log10(h1 / h_a)`` (its
base-height terms; the COST-231 extension has the same coefficients).
"""

from __future__ import annotations

import math

from numba import njit

EARTH_RADIUS_KM = 6371.0  # ITU-R P.452-17 / P.1812-6: a = 6371 km
DEFAULT_K_FACTOR = 4.0 / 3.0  # ITU-R P.453 / P.834: median effective Earth radius factor
# J(ν) is 0 below this ν (P.526-15 eq. 31 is only used for ν > −0.78)
KNIFE_EDGE_MIN_NU = -0.78
# P.1546-6 Annex 5 §3.1: the ramp of the effective height between 3 and 15 km
HEFF_RAMP_START_KM = 3.0
HEFF_RAMP_END_KM = 15.0
# NTIA eHata (ExtendedHata.cpp): h_b_eff clamped to 30-200 m
HEFF_MIN_M = 30.0
HEFF_MAX_M = 200.0
SPEED_OF_LIGHT_M_S = 299_792_458.0


def earth_curvature_per_km(k_factor: float = DEFAULT_K_FACTOR) -> float:
    """``C_e = 1 / (k · 6371 km)``, km⁻¹ (P.1812-6 eq. 15's effective radius)."""
    return 1.0 / (float(k_factor) * EARTH_RADIUS_KM)


def wavelength_m(freq_mhz: float) -> float:
    """Free-space wavelength, metres."""
    return SPEED_OF_LIGHT_M_S / (float(freq_mhz) * 1e6)


@njit(cache=True, inline="always")
def knife_edge_loss_db(nu):
    """J(ν) of ITU-R P.526-15 eq. 31, dB (0 for ν ≤ −0.78).

    >>> round(knife_edge_loss_db(0.0), 2)
    6.03
    >>> knife_edge_loss_db(-1.0)
    0.0
    """
    if nu <= KNIFE_EDGE_MIN_NU:
        return 0.0
    v = nu - 0.1
    return 6.9 + 20.0 * math.log10(math.sqrt(v * v + 1.0) + v)


@njit(cache=True, inline="always")
def bullington_correction_db(uncorrected_db, d_km):
    """``L_uc + (1 − exp(−L_uc / 6)) (10 + 0.02 d)`` (P.526-15 §4.5.1), dB."""
    return uncorrected_db + (1.0 - math.exp(-uncorrected_db / 6.0)) * (10.0 + 0.02 * d_km)


@njit(cache=True, inline="always")
def nu_at(h_i, d_i, d_km, h_ts, h_rs, wavelength, ce):
    """Diffraction parameter of a profile point (d_i km, h_i m) under the direct line."""
    clearance = h_i + 500.0 * ce * d_i * (d_km - d_i) - (h_ts * (d_km - d_i) + h_rs * d_i) / d_km
    return clearance * math.sqrt(0.002 * d_km / (wavelength * d_i * (d_km - d_i)))


@njit(cache=True)
def bullington_profile_db(d_i, h_i, n, d_km, h_ts, h_rs, wavelength, ce):
    """Bullington loss over the ``n`` intermediate points of a profile: ``(loss_db, line_of_sight)``.

    The reference form of the method (module docstring): every point is looked at
    for every path. ``d_i`` (km from the transmitter, increasing, strictly between 0
    and ``d_km``) and ``h_i`` (m above sea level) are arrays of at least ``n`` points;
    ``h_ts``/``h_rs`` the antenna heights above sea level, m; ``wavelength`` m; ``ce``
    the effective Earth curvature, km⁻¹. ``line_of_sight`` is False where the terrain
    rises above the direct line (the terrain blocks the path).
    """
    if n == 0:
        return 0.0, True
    s_tim = -math.inf
    for i in range(n):
        s_tim = max(s_tim, (h_i[i] + 500.0 * ce * d_i[i] * (d_km - d_i[i]) - h_ts) / d_i[i])
    s_tr = (h_rs - h_ts) / d_km
    if s_tim < s_tr:
        nu_max = -math.inf
        for i in range(n):
            nu_max = max(nu_max, nu_at(h_i[i], d_i[i], d_km, h_ts, h_rs, wavelength, ce))
        return bullington_correction_db(knife_edge_loss_db(nu_max), d_km), True
    s_rim = -math.inf
    for i in range(n):
        s_rim = max(s_rim, (h_i[i] + 500.0 * ce * d_i[i] * (d_km - d_i[i]) - h_rs) / (d_km - d_i[i]))
    return bullington_from_slopes_db(s_tim, s_rim, d_km, h_ts, h_rs, wavelength), False


@njit(cache=True, inline="always")
def bullington_from_slopes_db(s_tim, s_rim, d_km, h_ts, h_rs, wavelength):
    """The non-line-of-sight Bullington loss from its two slopes (m/km), dB."""
    d_bp = (h_rs - h_ts + s_rim * d_km) / (s_tim + s_rim)
    d_bp = min(max(d_bp, 1e-9 * d_km), d_km * (1.0 - 1e-9))
    nu_b = (h_ts + s_tim * d_bp - (h_ts * (d_km - d_bp) + h_rs * d_bp) / d_km) * math.sqrt(
        0.002 * d_km / (wavelength * d_bp * (d_km - d_bp)))
    return bullington_correction_db(knife_edge_loss_db(nu_b), d_km)


@njit(cache=True, inline="always")
def ramped_effective_height_m(h_a, h_eff, d_km):
    """P.1546-6 Annex 5 eqs. 4-5 ramp, then the clamp of the module docstring, m."""
    if d_km <= HEFF_RAMP_START_KM:
        h1 = h_a
    elif d_km < HEFF_RAMP_END_KM:
        h1 = h_a + (h_eff - h_a) * (d_km - HEFF_RAMP_START_KM) / (HEFF_RAMP_END_KM - HEFF_RAMP_START_KM)
    else:
        h1 = h_eff
    return min(max(h1, min(h_a, HEFF_MIN_M)), max(h_a, HEFF_MAX_M))


@njit(cache=True, inline="always")
def hata_height_correction_db(h1_m, h_a_m, d_km):
    """Change of the Hata-family loss when the base height h_a becomes h1, dB.

    ``−(13.82 + 6.55 log10 d) · log10(h1 / h_a)``: Hata's ``−13.82 log hb`` and
    ``−6.55 log hb · log d`` terms (COST-231 has the same), with Hata's 100 m
    distance floor and covmap's 1 m height floor.
    """
    if h1_m == h_a_m:
        return 0.0
    d = max(d_km, 0.1)
    return -(13.82 + 6.55 * math.log10(d)) * math.log10(max(h1_m, 1.0) / max(h_a_m, 1.0))


def max_effective_height_m(h_a_m: float, h_eff_max_m: float) -> float:
    """The largest h1 any distance can have (for the sector's reach): ramp + clamp of its maximum."""
    return float(min(max(max(h_a_m, h_eff_max_m), min(h_a_m, HEFF_MIN_M)), max(h_a_m, HEFF_MAX_M)))


__all__ = [
    "DEFAULT_K_FACTOR", "EARTH_RADIUS_KM", "HEFF_MAX_M", "HEFF_MIN_M", "bullington_correction_db",
    "bullington_from_slopes_db", "bullington_profile_db", "earth_curvature_per_km", "hata_height_correction_db",
    "knife_edge_loss_db", "max_effective_height_m", "nu_at", "ramped_effective_height_m", "wavelength_m",
]


@njit(cache=True, inline="always")
def _concave_argmax(i_continuous, n):
    """The integer in 1..n nearest a concave function's continuous maximiser (candidates around it)."""
    return min(max(int(math.floor(i_continuous)), 1), n)


@njit(cache=True)
def smooth_bullington_db(d_km, h_a_m, h_ue_m, sample_km, wavelength, ce):
    """Bullington loss of the same path over smooth ground, dB (:func:`smooth_bullington_from_db` without a guess)."""
    return smooth_bullington_from_db(d_km, h_a_m, h_ue_m, sample_km, wavelength, ce, 0)[0]


@njit(cache=True)
def smooth_bullington_from_db(d_km, h_a_m, h_ue_m, sample_km, wavelength, ce, guess):
    """Bullington loss of the same path over smooth ground, dB, and the profile point of largest ν.

    Exactly :func:`bullington_profile_db` over the profile points ``i · sample_km``
    (i = 1, 2, … before ``d_km``) at height 0 with the antennas ``h_a_m`` and
    ``h_ue_m`` above it (the smooth-earth profile of the delta-Bullington method,
    ITU-R P.1812-6 §4.3.3), in O(log n): on a smooth Earth both slopes are concave in
    the point's distance (their maximum is next to the continuous maximiser) and ν is
    unimodal along the profile.

    covmap counts terrain diffraction as the excess of the real profile's Bullington
    loss over this one: the empirical models already hold the loss over smooth ground
    (on flat land the excess is 0).

    On a line-of-sight path the largest ν is found from ``guess`` (a profile point
    index, e.g. the previous cell's answer on the same ray; 0: none) by climbing, which
    gives the binary search's maximum of a unimodal sequence in a step or two when the
    guess is close. Returns ``(loss_db, index)``, index 0 when the path is not line of sight.
    """
    n = int(math.ceil(d_km / sample_km - 1e-9)) - 1
    if n <= 0:
        return 0.0, 0
    k500 = 500.0 * ce
    # transmitter side: max_i (−h_a/d_i − 500 C_e d_i), concave, maximiser √(h_a / 500 C_e)
    best_a = -math.inf
    centre = _concave_argmax(math.sqrt(max(h_a_m, 1e-9) / k500) / sample_km, n)
    for i in range(max(centre - 1, 1), min(centre + 2, n + 1)):
        d_i = i * sample_km
        best_a = max(best_a, -h_a_m / d_i - k500 * d_i)
    s_tim = k500 * d_km + best_a
    s_tr = (h_ue_m - h_a_m) / d_km
    if s_tim < s_tr:
        if 1 <= guess <= n:
            lo = guess
            nu_max = nu_at(0.0, lo * sample_km, d_km, h_a_m, h_ue_m, wavelength, ce)
            moved = False
            while lo < n:
                ahead = nu_at(0.0, (lo + 1) * sample_km, d_km, h_a_m, h_ue_m, wavelength, ce)
                if not ahead > nu_max:
                    break
                lo += 1
                nu_max = ahead
                moved = True
            while not moved and lo > 1:
                back = nu_at(0.0, (lo - 1) * sample_km, d_km, h_a_m, h_ue_m, wavelength, ce)
                if not back > nu_max:
                    break
                lo -= 1
                nu_max = back
        else:
            lo = 1
            hi = n
            while lo < hi:
                mid = (lo + hi) // 2
                if nu_at(0.0, mid * sample_km, d_km, h_a_m, h_ue_m, wavelength, ce) < nu_at(
                        0.0, (mid + 1) * sample_km, d_km, h_a_m, h_ue_m, wavelength, ce):
                    lo = mid + 1
                else:
                    hi = mid
            nu_max = nu_at(0.0, lo * sample_km, d_km, h_a_m, h_ue_m, wavelength, ce)
        return bullington_correction_db(knife_edge_loss_db(nu_max), d_km), lo
    # receiver side: max_i (500 C_e d_i − h_ue/(d − d_i)), concave, maximiser d − √(h_ue / 500 C_e)
    s_rim = -math.inf
    centre = _concave_argmax((d_km - math.sqrt(max(h_ue_m, 1e-9) / k500)) / sample_km, n)
    for i in range(max(centre - 1, 1), min(centre + 2, n + 1)):
        d_i = i * sample_km
        s_rim = max(s_rim, k500 * d_i - h_ue_m / (d_km - d_i))
    return bullington_from_slopes_db(s_tim, s_rim, d_km, h_a_m, h_ue_m, wavelength), 0

"""Path-loss models: Okumura-Hata, COST-231 Hata, 3GPP TR 38.901 RMa/UMa/UMi, free space.

Each model has an integer id (module constants, :data:`MODEL_NAMES`) so that the
numba kernel can dispatch on it. :func:`path_loss_db` is the jitted scalar
(float64 in, float64 out) that other numba code calls; :func:`path_loss` is the
vectorised numpy face for everyone else.

Models and formulas (``f`` MHz, ``fc`` GHz, ``hb``/``hm`` metres, ``d`` km for
Hata, ``d2D``/``d3D`` metres for TR 38.901, ``log`` = log10)

* Free space (Friis): ``20 log(4π d3D f / c)``; ``d3D`` includes the height
  difference.
* Okumura-Hata (Hata 1980; ITU-R SM.2028 / COST 231 final report §4.4.1)::

      L_urban = 69.55 + 26.16 log f − 13.82 log hb − a(hm) + (44.9 − 6.55 log hb) log d
      a(hm) medium city = (1.1 log f − 0.7) hm − (1.56 log f − 0.8)
      a(hm) large city  = 3.2 (log 11.75 hm)² − 4.97   (f ≥ 300 MHz)
                          8.29 (log 1.54 hm)² − 1.1    (f < 300 MHz)
      L_suburban = L_urban − 2 (log(f/28))² − 5.4
      L_rural    = L_urban − 4.78 (log f)² + 18.33 log f − 40.94   (open area)

  ``OKUMURA_HATA_URBAN`` uses the medium-city a(hm), ``OKUMURA_HATA_DENSE_URBAN``
  the large-city a(hm); suburban and rural apply their corrections to the
  medium-city urban value.
* COST-231 Hata (COST 231 final report §4.4.1)::

      L = 46.3 + 33.9 log f − 13.82 log hb − a(hm) + (44.9 − 6.55 log hb) log d + C

  with the medium-city a(hm); C = 0 dB (``COST231_HATA_URBAN``), 3 dB
  (``COST231_HATA_DENSE_URBAN``, metropolitan centres). ``COST231_HATA_SUBURBAN``
  and ``COST231_HATA_RURAL`` apply Hata's suburban and open-area corrections to
  the C = 0 value.
* TR 38.901 Table 7.4.1-1 (RMa, UMa, UMi street canyon), LOS and NLOS, with the
  breakpoint distances of its note 1 (RMa ``dBP = 2π hBS hUT fc/c``; UMa/UMi
  ``d'BP = 4 h'BS h'UT fc/c`` with effective heights ``h' = h − hE``, hE = 1 m).
  RMa uses the table's default building height h = 5 m and street width W = 20 m;
  UMa uses hE = 1 m (exact for hUT < 13 m, where C(d2D, hUT) = 0).
  The NLOS value is ``max(PL_LOS, PL'_NLOS)`` as the table defines it.
  The plain ids (``TR38901_RMA``, ``TR38901_UMA``, ``TR38901_UMI``) are the
  LOS-probability-weighted path loss *in dB*::

      PL = P_LOS(d2D) · PL_LOS + (1 − P_LOS(d2D)) · PL_NLOS

  with ``P_LOS`` from TR 38.901 Table 7.4.2-1 (outdoor users). Weighting the dB
  values (rather than the linear powers) gives the expected path loss in dB, the
  quantity a median coverage prediction needs.

Distances and heights
---------------------
Distances below :data:`MIN_DISTANCE_M` of a model are clamped to it (the path
loss is flat inside it): 10 m for TR 38.901 (its published minimum), 1 m for free
space, and 100 m for the Hata family. Hata's published validity starts at 1 km,
but clamping there would flatten the signal across the first kilometre of every
site, where dense networks live; the log-distance formula is extrapolated down to
100 m (where it still exceeds free-space loss) and the use is documented rather
than warned about. Antenna heights below 1 m are treated as 1 m.

Validity
--------
:data:`VALIDITY` holds each model's published ranges; :func:`validity_issues`
lists the ways a use falls outside them. Using a model outside its range is
allowed: the prediction stage records the issues in its report.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from coverage.errors import RadioModelError

# ---------------------------------------------------------------- model ids

FREE_SPACE = 0
OKUMURA_HATA_URBAN = 1
OKUMURA_HATA_DENSE_URBAN = 2
OKUMURA_HATA_SUBURBAN = 3
OKUMURA_HATA_RURAL = 4
COST231_HATA_URBAN = 5
COST231_HATA_DENSE_URBAN = 6
COST231_HATA_SUBURBAN = 7
COST231_HATA_RURAL = 8
TR38901_RMA = 9
TR38901_RMA_LOS = 10
TR38901_RMA_NLOS = 11
TR38901_UMA = 12
TR38901_UMA_LOS = 13
TR38901_UMA_NLOS = 14
TR38901_UMI = 15
TR38901_UMI_LOS = 16
TR38901_UMI_NLOS = 17

MODEL_NAMES: dict[int, str] = {
    FREE_SPACE: "free_space",
    OKUMURA_HATA_URBAN: "okumura_hata_urban",
    OKUMURA_HATA_DENSE_URBAN: "okumura_hata_dense_urban",
    OKUMURA_HATA_SUBURBAN: "okumura_hata_suburban",
    OKUMURA_HATA_RURAL: "okumura_hata_rural",
    COST231_HATA_URBAN: "cost231_hata_urban",
    COST231_HATA_DENSE_URBAN: "cost231_hata_dense_urban",
    COST231_HATA_SUBURBAN: "cost231_hata_suburban",
    COST231_HATA_RURAL: "cost231_hata_rural",
    TR38901_RMA: "tr38901_rma",
    TR38901_RMA_LOS: "tr38901_rma_los",
    TR38901_RMA_NLOS: "tr38901_rma_nlos",
    TR38901_UMA: "tr38901_uma",
    TR38901_UMA_LOS: "tr38901_uma_los",
    TR38901_UMA_NLOS: "tr38901_uma_nlos",
    TR38901_UMI: "tr38901_umi",
    TR38901_UMI_LOS: "tr38901_umi_los",
    TR38901_UMI_NLOS: "tr38901_umi_nlos",
}
MODEL_IDS: dict[str, int] = {name: model_id for model_id, name in MODEL_NAMES.items()}

# Human-readable labels for reports.
MODEL_LABELS: dict[int, str] = {
    FREE_SPACE: "Free space",
    OKUMURA_HATA_URBAN: "Okumura-Hata urban (medium city)",
    OKUMURA_HATA_DENSE_URBAN: "Okumura-Hata dense urban (large city)",
    OKUMURA_HATA_SUBURBAN: "Okumura-Hata suburban",
    OKUMURA_HATA_RURAL: "Okumura-Hata rural (open area)",
    COST231_HATA_URBAN: "COST-231 Hata urban (C = 0 dB)",
    COST231_HATA_DENSE_URBAN: "COST-231 Hata dense urban (C = 3 dB)",
    COST231_HATA_SUBURBAN: "COST-231 Hata suburban",
    COST231_HATA_RURAL: "COST-231 Hata rural (open area)",
    TR38901_RMA: "TR 38.901 RMa (LOS-probability weighted)",
    TR38901_RMA_LOS: "TR 38.901 RMa LOS",
    TR38901_RMA_NLOS: "TR 38.901 RMa NLOS",
    TR38901_UMA: "TR 38.901 UMa (LOS-probability weighted)",
    TR38901_UMA_LOS: "TR 38.901 UMa LOS",
    TR38901_UMA_NLOS: "TR 38.901 UMa NLOS",
    TR38901_UMI: "TR 38.901 UMi street canyon (LOS-probability weighted)",
    TR38901_UMI_LOS: "TR 38.901 UMi street canyon LOS",
    TR38901_UMI_NLOS: "TR 38.901 UMi street canyon NLOS",
}

_HATA_FAMILY = (OKUMURA_HATA_URBAN, OKUMURA_HATA_DENSE_URBAN, OKUMURA_HATA_SUBURBAN, OKUMURA_HATA_RURAL)
_COST231_FAMILY = (COST231_HATA_URBAN, COST231_HATA_DENSE_URBAN, COST231_HATA_SUBURBAN, COST231_HATA_RURAL)
_RMA_FAMILY = (TR38901_RMA, TR38901_RMA_LOS, TR38901_RMA_NLOS)
_UMA_FAMILY = (TR38901_UMA, TR38901_UMA_LOS, TR38901_UMA_NLOS)
_UMI_FAMILY = (TR38901_UMI, TR38901_UMI_LOS, TR38901_UMI_NLOS)

# Clamp distance of each model, metres (see the module docstring).
MIN_DISTANCE_M: dict[int, float] = {FREE_SPACE: 1.0}
MIN_DISTANCE_M.update({m: 100.0 for m in _HATA_FAMILY + _COST231_FAMILY})
MIN_DISTANCE_M.update({m: 10.0 for m in _RMA_FAMILY + _UMA_FAMILY + _UMI_FAMILY})

_HATA_MIN_M = 100.0
_TR38901_MIN_M = 10.0
_FREE_SPACE_MIN_M = 1.0
_MIN_HEIGHT_M = 1.0

SPEED_OF_LIGHT_M_S = 299_792_458.0
# TR 38.901 Table 7.4.1-1 RMa defaults: average building height and street width.
RMA_BUILDING_HEIGHT_M = 5.0
RMA_STREET_WIDTH_M = 20.0
# TR 38.901 Table 7.4.1-1 note 1: effective environment height hE = 1 m (UMi; UMa
# when C(d2D, hUT) = 0, i.e. hUT < 13 m).
EFFECTIVE_ENV_HEIGHT_M = 1.0

# Published validity ranges: (low, high) per quantity.
_HATA_VALIDITY = {  # Hata 1980 / COST 231 final report §4.4.1
    "freq_mhz": (150.0, 1500.0), "distance_m": (1000.0, 20000.0),
    "h_bs_m": (30.0, 200.0), "h_ue_m": (1.0, 10.0),
}
_COST231_VALIDITY = {  # COST 231 final report §4.4.1
    "freq_mhz": (1500.0, 2000.0), "distance_m": (1000.0, 20000.0),
    "h_bs_m": (30.0, 200.0), "h_ue_m": (1.0, 10.0),
}
# TR 38.901 Table 7.4.1-1 and its notes (fc 0.5-100 GHz for UMa/UMi; RMa 0.5-30 GHz).
_RMA_LOS_VALIDITY = {"freq_mhz": (500.0, 30000.0), "distance_m": (10.0, 10000.0),
                     "h_bs_m": (10.0, 150.0), "h_ue_m": (1.0, 10.0)}
_RMA_NLOS_VALIDITY = {"freq_mhz": (500.0, 30000.0), "distance_m": (10.0, 5000.0),
                      "h_bs_m": (10.0, 150.0), "h_ue_m": (1.0, 10.0)}
_UMA_VALIDITY = {"freq_mhz": (500.0, 100000.0), "distance_m": (10.0, 5000.0),
                 "h_bs_m": (25.0, 25.0), "h_ue_m": (1.5, 22.5)}
_UMI_VALIDITY = {"freq_mhz": (500.0, 100000.0), "distance_m": (10.0, 5000.0),
                 "h_bs_m": (10.0, 10.0), "h_ue_m": (1.5, 22.5)}

VALIDITY: dict[int, dict[str, tuple[float, float]]] = {
    FREE_SPACE: {"freq_mhz": (0.0, math.inf), "distance_m": (1.0, math.inf),
                 "h_bs_m": (0.0, math.inf), "h_ue_m": (0.0, math.inf)},
}
VALIDITY.update({m: dict(_HATA_VALIDITY) for m in _HATA_FAMILY})
VALIDITY.update({m: dict(_COST231_VALIDITY) for m in _COST231_FAMILY})
VALIDITY.update({TR38901_RMA: dict(_RMA_LOS_VALIDITY), TR38901_RMA_LOS: dict(_RMA_LOS_VALIDITY),
                 TR38901_RMA_NLOS: dict(_RMA_NLOS_VALIDITY)})
VALIDITY.update({m: dict(_UMA_VALIDITY) for m in _UMA_FAMILY})
VALIDITY.update({m: dict(_UMI_VALIDITY) for m in _UMI_FAMILY})


# ---------------------------------------------------------------- the formulas (numba)


@njit(cache=True)
def _a_hm_medium_db(freq_mhz, h_ue_m):
    lf = math.log10(freq_mhz)
    return (1.1 * lf - 0.7) * h_ue_m - (1.56 * lf - 0.8)


@njit(cache=True)
def _a_hm_large_db(freq_mhz, h_ue_m):
    if freq_mhz >= 300.0:
        return 3.2 * math.log10(11.75 * h_ue_m) ** 2 - 4.97
    return 8.29 * math.log10(1.54 * h_ue_m) ** 2 - 1.1


@njit(cache=True)
def _hata_family_db(model_id, d_m, freq_mhz, h_bs_m, h_ue_m):
    lf = math.log10(freq_mhz)
    lhb = math.log10(h_bs_m)
    slope = (44.9 - 6.55 * lhb) * math.log10(d_m / 1000.0)
    cost = model_id >= COST231_HATA_URBAN
    if cost:
        base = 46.3 + 33.9 * lf - 13.82 * lhb + slope
    else:
        base = 69.55 + 26.16 * lf - 13.82 * lhb + slope
    variant = model_id - (COST231_HATA_URBAN if cost else OKUMURA_HATA_URBAN)  # 0 urban, 1 dense, 2 sub, 3 rural
    if variant == 1:
        if cost:
            return base - _a_hm_medium_db(freq_mhz, h_ue_m) + 3.0
        return base - _a_hm_large_db(freq_mhz, h_ue_m)
    urban = base - _a_hm_medium_db(freq_mhz, h_ue_m)
    if variant == 2:
        return urban - 2.0 * math.log10(freq_mhz / 28.0) ** 2 - 5.4
    if variant == 3:
        return urban - 4.78 * lf * lf + 18.33 * lf - 40.94
    return urban


@njit(cache=True)
def _free_space_db(d2d_m, freq_mhz, h_bs_m, h_ue_m):
    d3d = math.sqrt(d2d_m * d2d_m + (h_bs_m - h_ue_m) ** 2)
    return 20.0 * math.log10(4.0 * math.pi * d3d * freq_mhz * 1e6 / SPEED_OF_LIGHT_M_S)


@njit(cache=True)
def _rma_pl1_db(d3d, fc_ghz, h_bld):
    return (20.0 * math.log10(40.0 * math.pi * d3d * fc_ghz / 3.0)
            + min(0.03 * h_bld ** 1.72, 10.0) * math.log10(d3d)
            - min(0.044 * h_bld ** 1.72, 14.77)
            + 0.002 * math.log10(h_bld) * d3d)


@njit(cache=True)
def _rma_breakpoint_m(fc_ghz, h_bs_m, h_ue_m):
    return 2.0 * math.pi * h_bs_m * h_ue_m * fc_ghz * 1e9 / SPEED_OF_LIGHT_M_S


@njit(cache=True)
def _rma_los_db(d2d, fc_ghz, h_bs_m, h_ue_m):
    h_bld = RMA_BUILDING_HEIGHT_M
    d3d = math.sqrt(d2d * d2d + (h_bs_m - h_ue_m) ** 2)
    d_bp = _rma_breakpoint_m(fc_ghz, h_bs_m, h_ue_m)
    if d2d <= d_bp:
        return _rma_pl1_db(d3d, fc_ghz, h_bld)
    return _rma_pl1_db(d_bp, fc_ghz, h_bld) + 40.0 * math.log10(d3d / d_bp)


@njit(cache=True)
def _rma_nlos_db(d2d, fc_ghz, h_bs_m, h_ue_m):
    h_bld = RMA_BUILDING_HEIGHT_M
    w = RMA_STREET_WIDTH_M
    d3d = math.sqrt(d2d * d2d + (h_bs_m - h_ue_m) ** 2)
    pl_nlos = (161.04 - 7.1 * math.log10(w) + 7.5 * math.log10(h_bld)
               - (24.37 - 3.7 * (h_bld / h_bs_m) ** 2) * math.log10(h_bs_m)
               + (43.42 - 3.1 * math.log10(h_bs_m)) * (math.log10(d3d) - 3.0)
               + 20.0 * math.log10(fc_ghz)
               - (3.2 * math.log10(11.75 * h_ue_m) ** 2 - 4.97))
    return max(_rma_los_db(d2d, fc_ghz, h_bs_m, h_ue_m), pl_nlos)


@njit(cache=True)
def _effective_breakpoint_m(fc_ghz, h_bs_m, h_ue_m):
    h_bs_eff = max(h_bs_m - EFFECTIVE_ENV_HEIGHT_M, 0.0)
    h_ue_eff = max(h_ue_m - EFFECTIVE_ENV_HEIGHT_M, 0.0)
    return 4.0 * h_bs_eff * h_ue_eff * fc_ghz * 1e9 / SPEED_OF_LIGHT_M_S


@njit(cache=True)
def _uma_los_db(d2d, fc_ghz, h_bs_m, h_ue_m):
    d3d = math.sqrt(d2d * d2d + (h_bs_m - h_ue_m) ** 2)
    d_bp = _effective_breakpoint_m(fc_ghz, h_bs_m, h_ue_m)
    if d2d <= d_bp:
        return 28.0 + 22.0 * math.log10(d3d) + 20.0 * math.log10(fc_ghz)
    return (28.0 + 40.0 * math.log10(d3d) + 20.0 * math.log10(fc_ghz)
            - 9.0 * math.log10(d_bp * d_bp + (h_bs_m - h_ue_m) ** 2))


@njit(cache=True)
def _uma_nlos_db(d2d, fc_ghz, h_bs_m, h_ue_m):
    d3d = math.sqrt(d2d * d2d + (h_bs_m - h_ue_m) ** 2)
    pl_nlos = 13.54 + 39.08 * math.log10(d3d) + 20.0 * math.log10(fc_ghz) - 0.6 * (h_ue_m - 1.5)
    return max(_uma_los_db(d2d, fc_ghz, h_bs_m, h_ue_m), pl_nlos)


@njit(cache=True)
def _umi_los_db(d2d, fc_ghz, h_bs_m, h_ue_m):
    d3d = math.sqrt(d2d * d2d + (h_bs_m - h_ue_m) ** 2)
    d_bp = _effective_breakpoint_m(fc_ghz, h_bs_m, h_ue_m)
    if d2d <= d_bp:
        return 32.4 + 21.0 * math.log10(d3d) + 20.0 * math.log10(fc_ghz)
    return (32.4 + 40.0 * math.log10(d3d) + 20.0 * math.log10(fc_ghz)
            - 9.5 * math.log10(d_bp * d_bp + (h_bs_m - h_ue_m) ** 2))


@njit(cache=True)
def _umi_nlos_db(d2d, fc_ghz, h_bs_m, h_ue_m):
    d3d = math.sqrt(d2d * d2d + (h_bs_m - h_ue_m) ** 2)
    pl_nlos = 35.3 * math.log10(d3d) + 22.4 + 21.3 * math.log10(fc_ghz) - 0.3 * (h_ue_m - 1.5)
    return max(_umi_los_db(d2d, fc_ghz, h_bs_m, h_ue_m), pl_nlos)


@njit(cache=True)
def los_probability(scenario_id, d2d_m, h_ue_m):
    """LOS probability of TR 38.901 Table 7.4.2-1 (outdoor users).

    ``scenario_id`` is any id of the RMa, UMa or UMi family; 1.0 for others.

    * RMa: 1 for d2D ≤ 10 m, else ``exp(−(d2D − 10)/1000)``;
    * UMi: 1 for d2D ≤ 18 m, else ``18/d2D + exp(−d2D/36)(1 − 18/d2D)``;
    * UMa: 1 for d2D ≤ 18 m, else ``[18/d2D + exp(−d2D/63)(1 − 18/d2D)]
      [1 + C'(hUT) 5/4 (d2D/100)³ exp(−d2D/150)]``, C'(hUT) = 0 for hUT ≤ 13 m,
      ``((hUT − 13)/10)^1.5`` up to 23 m.
    """
    d = d2d_m
    if TR38901_RMA <= scenario_id <= TR38901_RMA_NLOS:
        if d <= 10.0:
            return 1.0
        return math.exp(-(d - 10.0) / 1000.0)
    if TR38901_UMA <= scenario_id <= TR38901_UMA_NLOS:
        if d <= 18.0:
            return 1.0
        c = 0.0
        if h_ue_m > 13.0:
            c = ((min(h_ue_m, 23.0) - 13.0) / 10.0) ** 1.5
        return ((18.0 / d + math.exp(-d / 63.0) * (1.0 - 18.0 / d))
                * (1.0 + c * 1.25 * (d / 100.0) ** 3 * math.exp(-d / 150.0)))
    if TR38901_UMI <= scenario_id <= TR38901_UMI_NLOS:
        if d <= 18.0:
            return 1.0
        return 18.0 / d + math.exp(-d / 36.0) * (1.0 - 18.0 / d)
    return 1.0


@njit(cache=True)
def path_loss_db(model_id, d2d_m, freq_mhz, h_bs_m, h_ue_m):
    """Path loss of one link, dB (numba scalar; callable from other jitted code).

    Parameters
    ----------
    model_id : int
        One of the module's model ids (``OKUMURA_HATA_URBAN`` …).
    d2d_m : float
        Horizontal distance, metres; clamped up to the model's
        :data:`MIN_DISTANCE_M` (10 m TR 38.901, 100 m Hata family, 1 m free space).
    freq_mhz : float
        Carrier frequency, MHz.
    h_bs_m, h_ue_m : float
        Base-station antenna and device heights above ground, metres (≥ 1 m).

    Returns
    -------
    float
        Path loss in dB (float64); NaN for an unknown model id.
    """
    h_bs = max(float(h_bs_m), _MIN_HEIGHT_M)
    h_ue = max(float(h_ue_m), _MIN_HEIGHT_M)
    d = float(d2d_m)
    if model_id == FREE_SPACE:
        return _free_space_db(max(d, _FREE_SPACE_MIN_M), freq_mhz, h_bs, h_ue)
    if OKUMURA_HATA_URBAN <= model_id <= COST231_HATA_RURAL:
        return _hata_family_db(model_id, max(d, _HATA_MIN_M), freq_mhz, h_bs, h_ue)
    d = max(d, _TR38901_MIN_M)
    fc = freq_mhz / 1000.0
    if model_id == TR38901_RMA_LOS:
        return _rma_los_db(d, fc, h_bs, h_ue)
    if model_id == TR38901_RMA_NLOS:
        return _rma_nlos_db(d, fc, h_bs, h_ue)
    if model_id == TR38901_RMA:
        p = los_probability(model_id, d, h_ue)
        return p * _rma_los_db(d, fc, h_bs, h_ue) + (1.0 - p) * _rma_nlos_db(d, fc, h_bs, h_ue)
    if model_id == TR38901_UMA_LOS:
        return _uma_los_db(d, fc, h_bs, h_ue)
    if model_id == TR38901_UMA_NLOS:
        return _uma_nlos_db(d, fc, h_bs, h_ue)
    if model_id == TR38901_UMA:
        p = los_probability(model_id, d, h_ue)
        return p * _uma_los_db(d, fc, h_bs, h_ue) + (1.0 - p) * _uma_nlos_db(d, fc, h_bs, h_ue)
    if model_id == TR38901_UMI_LOS:
        return _umi_los_db(d, fc, h_bs, h_ue)
    if model_id == TR38901_UMI_NLOS:
        return _umi_nlos_db(d, fc, h_bs, h_ue)
    if model_id == TR38901_UMI:
        p = los_probability(model_id, d, h_ue)
        return p * _umi_los_db(d, fc, h_bs, h_ue) + (1.0 - p) * _umi_nlos_db(d, fc, h_bs, h_ue)
    return math.nan


@njit(cache=True)
def _min_distance_m(model_id):
    if model_id == FREE_SPACE:
        return _FREE_SPACE_MIN_M
    if OKUMURA_HATA_URBAN <= model_id <= COST231_HATA_RURAL:
        return _HATA_MIN_M
    return _TR38901_MIN_M


@njit(cache=True)
def _breakpoint_m(model_id, freq_mhz, h_bs_m, h_ue_m):
    """Distance where a model's formula switches (a possible jump), or −1."""
    fc = freq_mhz / 1000.0
    h_bs = max(h_bs_m, _MIN_HEIGHT_M)
    h_ue = max(h_ue_m, _MIN_HEIGHT_M)
    if TR38901_RMA <= model_id <= TR38901_RMA_NLOS:
        return _rma_breakpoint_m(fc, h_bs, h_ue)
    if TR38901_UMA <= model_id <= TR38901_UMI_NLOS:
        return _effective_breakpoint_m(fc, h_bs, h_ue)
    return -1.0


_SCAN_POINTS = 384


@njit(cache=True)
def max_range_scalar_m(model_id, max_path_loss_db, freq_mhz, h_bs_m, h_ue_m, upper_m):
    """Jitted core of :func:`max_range_m` (same arguments, ``upper_m`` required)."""
    d_min = _min_distance_m(model_id)
    if not max_path_loss_db >= path_loss_db(model_id, d_min, freq_mhz, h_bs_m, h_ue_m):
        return 0.0
    if upper_m <= d_min:
        return upper_m
    # Scan: a log-spaced grid plus the points either side of the formula's breakpoint,
    # so every piece on which the model is monotonic starts on a scan point.
    pts = np.empty(_SCAN_POINTS + 2)
    ratio = math.log(upper_m / d_min) / (_SCAN_POINTS - 1)
    for i in range(_SCAN_POINTS):
        pts[i] = d_min * math.exp(ratio * i)
    pts[_SCAN_POINTS - 1] = upper_m
    bp = _breakpoint_m(model_id, freq_mhz, h_bs_m, h_ue_m)
    if bp > d_min and bp < upper_m:
        pts[_SCAN_POINTS] = bp
        pts[_SCAN_POINTS + 1] = bp * (1.0 + 1e-12) + 1e-9
    else:
        pts[_SCAN_POINTS] = d_min
        pts[_SCAN_POINTS + 1] = d_min
    pts = np.sort(pts)
    last_ok = -1
    for i in range(pts.size):
        if path_loss_db(model_id, pts[i], freq_mhz, h_bs_m, h_ue_m) <= max_path_loss_db:
            last_ok = i
    if last_ok == pts.size - 1:
        return upper_m
    lo = pts[last_ok]
    hi = pts[last_ok + 1]
    # Bisect to 1 mm; return the upper end, so the range never falls short.
    for _ in range(200):
        if hi - lo <= 1e-3:
            break
        mid = 0.5 * (lo + hi)
        if path_loss_db(model_id, mid, freq_mhz, h_bs_m, h_ue_m) <= max_path_loss_db:
            lo = mid
        else:
            hi = mid
    return hi


@njit(cache=True, parallel=True)
def _max_range_many(model_ids, max_pl, freq, h_bs, h_ue, upper_m):
    out = np.empty(model_ids.size)
    for i in prange(model_ids.size):
        out[i] = max_range_scalar_m(model_ids[i], max_pl[i], freq[i], h_bs[i], h_ue[i], upper_m)
    return out


# ---------------------------------------------------------------- public numpy face


def _model_id(model) -> int:
    """Model id from an id or a name (``"okumura_hata_urban"``)."""
    if isinstance(model, (int, np.integer)) and not isinstance(model, bool):
        if int(model) in MODEL_NAMES:
            return int(model)
    elif isinstance(model, str):
        key = model.strip().lower().replace("-", "_").replace(" ", "_")
        if key in MODEL_IDS:
            return MODEL_IDS[key]
    raise RadioModelError(f"unknown path-loss model {model!r}; choose from {', '.join(MODEL_IDS)}")


@njit(cache=True)
def _path_loss_many(model_ids, d, f, hb, hu):
    out = np.empty(d.size)
    for i in range(d.size):
        out[i] = path_loss_db(model_ids[i], d[i], f[i], hb[i], hu[i])
    return out


def path_loss(model, distance_m, freq_mhz, h_bs_m, h_ue_m):
    """Vectorised path loss, dB: the numpy face of :func:`path_loss_db`.

    Parameters
    ----------
    model : int, str or array of int
        Model id(s) or a model name from :data:`MODEL_NAMES`.
    distance_m : float or array
        Horizontal (2-D) distance, metres; clamped to the model's minimum.
    freq_mhz, h_bs_m, h_ue_m : float or array
        Frequency (MHz), base-station and device antenna heights (m).

    Returns
    -------
    numpy.ndarray or float
        float64 path loss, broadcast over all arguments (a float for scalars).

    Raises
    ------
    RadioModelError
        For an unknown model (a ``ValueError``).

    Examples
    --------
    >>> round(path_loss("okumura_hata_urban", 2000.0, 900.0, 30.0, 1.5), 2)
    137.01
    """
    if isinstance(model, (int, np.integer, str)):
        ids = np.asarray(_model_id(model), dtype=np.int64)
    else:
        ids = np.asarray(model)
        for value in np.unique(ids):
            _model_id(int(value))
        ids = ids.astype(np.int64)
    arrays = np.broadcast_arrays(ids, *(np.asarray(a, dtype=np.float64)
                                        for a in (distance_m, freq_mhz, h_bs_m, h_ue_m)))
    shape = arrays[0].shape
    flat = [np.ascontiguousarray(a).ravel() for a in arrays]
    out = _path_loss_many(flat[0], flat[1], flat[2], flat[3], flat[4]).reshape(shape)
    return float(out) if out.ndim == 0 else out


def max_range_m(model_id, max_path_loss_db, freq_mhz, h_bs_m, h_ue_m, upper_m=100_000.0) -> float:
    """The largest distance at which the path loss stays ≤ ``max_path_loss_db``, metres.

    Safe for models that are not monotonic in distance (the TR 38.901 LOS
    breakpoint has a small downward step): the distance axis is scanned on 384
    log-spaced points plus the breakpoint, then the last crossing is bisected to
    1 mm and its *upper* end is returned, so no reachable pixel is left out.

    Parameters
    ----------
    model_id : int or str
        The model.
    max_path_loss_db : float
        Link budget: the largest tolerable path loss, dB.
    freq_mhz, h_bs_m, h_ue_m : float
        Frequency (MHz), base-station and device heights (m).
    upper_m : float, default 100 000
        Search limit; returned when the loss is still within budget there.

    Returns
    -------
    float
        Metres; 0.0 when even the model's minimum distance exceeds the budget.

    Examples
    --------
    >>> r = max_range_m(OKUMURA_HATA_URBAN, 137.007, 900.0, 30.0, 1.5)
    >>> round(r / 1000, 3)
    2.0
    """
    return float(max_range_scalar_m(_model_id(model_id), float(max_path_loss_db), float(freq_mhz),
                                    float(h_bs_m), float(h_ue_m), float(upper_m)))


def max_range_m_array(model_id, max_path_loss_db, freq_mhz, h_bs_m, h_ue_m, upper_m=100_000.0):
    """:func:`max_range_m` for arrays of sectors (broadcast), metres.

    Computes each distinct parameter combination once (numba, in parallel), so
    millions of sectors sharing a few link budgets take well under a second.

    Returns
    -------
    numpy.ndarray
        float64, the broadcast shape of the inputs.
    """
    ids = np.asarray(model_id)
    if ids.dtype.kind in "US":
        ids = np.vectorize(_model_id, otypes=[np.int64])(ids)
    arrays = np.broadcast_arrays(ids.astype(np.float64), *(np.asarray(a, dtype=np.float64) for a in (
        max_path_loss_db, freq_mhz, h_bs_m, h_ue_m)))
    shape = arrays[0].shape
    table = np.column_stack([np.ravel(a) for a in arrays])
    if table.shape[0] == 0:
        return np.empty(shape)
    for value in np.unique(table[:, 0]):
        _model_id(int(value))
    import pandas as pd

    # Group identical rows (pandas hashing: ~0.1 s for 1.5 million rows).
    frame = pd.DataFrame(table)
    inverse = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    first = np.unique(inverse, return_index=True)[1]
    unique = table[first]
    ranges = _max_range_many(unique[:, 0].astype(np.int64), np.ascontiguousarray(unique[:, 1]),
                             np.ascontiguousarray(unique[:, 2]), np.ascontiguousarray(unique[:, 3]),
                             np.ascontiguousarray(unique[:, 4]), float(upper_m))
    return ranges[inverse].reshape(shape)


# ---------------------------------------------------------------- model choice


def select_model(tech: str, freq_mhz: float, environment: str) -> int:
    """Default path-loss model for a technology, band and environment.

    =====================  ===================  ==================  ==================  ==================
    frequency              dense_urban          urban               suburban            rural
    =====================  ===================  ==================  ==================  ==================
    ≤ 1500 MHz             Okumura-Hata large   Okumura-Hata        Okumura-Hata        Okumura-Hata open
                           city                 medium city         suburban            area
    1500 - 2000 MHz        COST-231 C = 3 dB    COST-231 C = 0 dB   COST-231 suburban   COST-231 open area
    > 2000 MHz             TR 38.901 UMa        TR 38.901 UMa       TR 38.901 UMa       TR 38.901 RMa
    =====================  ===================  ==================  ==================  ==================

    So NB-IoT (B5/B8 sub-GHz) and RedCap n28 (700 MHz) use Hata, NB-IoT B3
    (1.8 GHz) COST-231, and RedCap n1/n41/n78 (2.1-3.5 GHz) TR 38.901, all
    LOS-probability weighted. Suburban China above 2 GHz (county towns, mid-rise
    housing) is closer to UMa than to RMa's 5 m buildings and 35 m masts, and UMa
    is the more cautious of the two, so suburban uses UMa. ``tech`` is checked but
    does not change the choice today: the band decides.

    Parameters
    ----------
    tech : str
        ``nbiot`` or ``redcap``.
    freq_mhz : float
        Carrier frequency, MHz.
    environment : str
        ``dense_urban``, ``urban``, ``suburban`` or ``rural``.

    Returns
    -------
    int
        A model id.

    Raises
    ------
    RadioModelError
        For an unknown technology or environment, or a non-positive frequency
        (a ``ValueError``).

    Examples
    --------
    >>> MODEL_NAMES[select_model("nbiot", 942.5, "urban")]
    'okumura_hata_urban'
    >>> MODEL_NAMES[select_model("redcap", 3500.0, "rural")]
    'tr38901_rma'
    """
    from coverage.radio import ENVIRONMENTS
    from coverage.schema import normalise_tech

    if normalise_tech(tech) is None:
        raise RadioModelError(f"unknown technology {tech!r}")
    if environment not in ENVIRONMENTS:
        raise RadioModelError(f"unknown environment {environment!r}; choose from {', '.join(ENVIRONMENTS)}")
    if not float(freq_mhz) > 0:
        raise RadioModelError(f"frequency must be positive, got {freq_mhz!r} MHz")
    column = ENVIRONMENTS.index(environment)
    if freq_mhz <= 1500.0:
        return (OKUMURA_HATA_DENSE_URBAN, OKUMURA_HATA_URBAN, OKUMURA_HATA_SUBURBAN, OKUMURA_HATA_RURAL)[column]
    if freq_mhz <= 2000.0:
        return (COST231_HATA_DENSE_URBAN, COST231_HATA_URBAN, COST231_HATA_SUBURBAN, COST231_HATA_RURAL)[column]
    return (TR38901_UMA, TR38901_UMA, TR38901_UMA, TR38901_RMA)[column]


# ---------------------------------------------------------------- validity


def _fmt(value: float) -> str:
    return f"{value:g}"


def validity_issues(model_id, freq_mhz, h_bs_m, h_ue_m, max_distance_m) -> list[str]:
    """How a use of a model falls outside its published validity ranges.

    Parameters
    ----------
    model_id : int or str
        The model.
    freq_mhz, h_bs_m, h_ue_m : float
        Frequency (MHz), base-station and device heights (m).
    max_distance_m : float
        Largest distance the model is evaluated at (e.g. the sector's range), m.

    Returns
    -------
    list of str
        One human-readable line per quantity out of range; empty when all fit.

    Examples
    --------
    >>> validity_issues(OKUMURA_HATA_URBAN, 3500.0, 30.0, 1.5, 5000.0)
    ['Okumura-Hata urban (medium city) used at 3500 MHz, valid 150–1500 MHz']
    """
    model_id = _model_id(model_id)
    label = MODEL_LABELS[model_id]
    issues = []
    checks = (
        ("freq_mhz", float(freq_mhz), "at {v} MHz, valid {lo}–{hi} MHz"),
        ("h_bs_m", float(h_bs_m), "with a base-station height of {v} m, valid {lo}–{hi} m"),
        ("h_ue_m", float(h_ue_m), "with a device height of {v} m, valid {lo}–{hi} m"),
    )
    for key, value, text in checks:
        lo, hi = VALIDITY[model_id][key]
        if not lo <= value <= hi:
            if lo == hi:
                text = text.split(", valid")[0] + ", defined for {lo} m"
            issues.append(f"{label} used " + text.format(v=_fmt(value), lo=_fmt(lo), hi=_fmt(hi)))
    hi = VALIDITY[model_id]["distance_m"][1]
    if float(max_distance_m) > hi:
        issues.append(f"{label} used up to {_fmt(round(float(max_distance_m)))} m, valid up to {_fmt(hi)} m")
    return issues


def _span(values: np.ndarray, unit: str) -> str:
    lo, hi = float(values.min()), float(values.max())
    return f"{_fmt(round(lo))} {unit}" if round(lo) == round(hi) else f"{_fmt(round(lo))}–{_fmt(round(hi))} {unit}"


def _sectors(mask: np.ndarray) -> str:
    n = int(mask.sum())
    return f"{n} sector" if n == 1 else f"{n} sectors"


def validity_summary(model_ids, freq_mhz, h_bs_m, h_ue_m, max_distance_m) -> list[str]:
    """:func:`validity_issues` for many sectors at once, one line per model and quantity.

    Parameters
    ----------
    model_ids, freq_mhz, h_bs_m, h_ue_m, max_distance_m : array-like
        Per sector: model id, frequency (MHz), base-station and device heights (m)
        and the largest distance the model is evaluated at (m); broadcast together.

    Returns
    -------
    list of str
        E.g. ``"Okumura-Hata urban (medium city) used with base-station heights
        20–29 m, valid 30–200 m (113 sectors)"``; empty when every use is in range.

    Examples
    --------
    >>> validity_summary([OKUMURA_HATA_URBAN] * 3, 942.5, [20.0, 25.0, 40.0], 1.5, 5000.0)
    ['Okumura-Hata urban (medium city) used with base-station heights 20–25 m, valid 30–200 m (2 sectors)']
    """
    model_ids, freq, h_bs, h_ue, dist = np.broadcast_arrays(
        np.asarray(model_ids, dtype=np.int64), *(np.asarray(v, dtype=np.float64)
                                                  for v in (freq_mhz, h_bs_m, h_ue_m, max_distance_m)))
    lines = []
    quantities = (("freq_mhz", freq, "at frequencies", "MHz"), ("h_bs_m", h_bs, "with base-station heights", "m"),
                  ("h_ue_m", h_ue, "with device heights", "m"))
    for model_id in np.unique(model_ids):
        mine = model_ids == model_id
        ranges, label = VALIDITY[int(model_id)], MODEL_LABELS[int(model_id)]
        for key, values, words, unit in quantities:
            lo, hi = ranges[key]
            out = mine & ((values < lo) | (values > hi))
            if out.any():
                valid = f"defined for {_fmt(lo)} {unit}" if lo == hi else f"valid {_fmt(lo)}–{_fmt(hi)} {unit}"
                lines.append(f"{label} used {words} {_span(values[out], unit)}, {valid} ({_sectors(out)})")
        hi = ranges["distance_m"][1]
        out = mine & (dist > hi)
        if out.any():
            lines.append(f"{label} used up to {_span(dist[out], 'm')}, valid up to {_fmt(hi)} m ({_sectors(out)})")
    return lines


__all__ = [name for name in dir() if name.isupper() and not name.startswith("_")] + [
    "los_probability", "max_range_m", "max_range_m_array", "max_range_scalar_m", "path_loss",
    "path_loss_db", "select_model", "validity_issues", "validity_summary",
]

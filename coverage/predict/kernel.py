"""The per-tile numba kernel: best server, rsrp and class of each pixel of one tile.

"The model of a pixel" in the package docstring (:mod:`coverage.predict`) says what
it computes; :func:`predict_tile` is its plain-arrays entry point and
:func:`combine_layers` the all-operators layer.

Note for developers: numba's on-disk cache (``cache=True``) is keyed on this
file only (``coverage/predict/kernel.py``); after editing
``coverage/radio/pathloss.py`` or ``antenna.py``, delete
``coverage/predict/__pycache__/kernel.*.nbi|nbc`` (or touch this file), or the kernel
keeps the old formulas. ``test_kernel_matches_library_pathloss_on_every_model``
catches a stale cache.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numba import njit

from coverage.layout import (
    CLASS_DEEP,
    CLASS_NODATA,
    CLASS_NONE,
    CLASS_OUTDOOR,
    RSRP_NODATA_DBM,
)
from coverage.radio.pathloss import (
    _FREE_SPACE_MIN_M,
    _HATA_MIN_M,
    _MIN_HEIGHT_M,
    _TR38901_MIN_M,
    COST231_HATA_RURAL,
    EFFECTIVE_ENV_HEIGHT_M,
    FREE_SPACE,
    OKUMURA_HATA_URBAN,
    RMA_BUILDING_HEIGHT_M,
    RMA_STREET_WIDTH_M,
    SPEED_OF_LIGHT_M_S,
    TR38901_RMA,
    TR38901_RMA_LOS,
    TR38901_RMA_NLOS,
    TR38901_UMA,
    TR38901_UMA_LOS,
    TR38901_UMA_NLOS,
    TR38901_UMI_LOS,
    TR38901_UMI_NLOS,
    los_probability,
    path_loss_db,
)

# Per-sector arrays the kernel needs, in its argument order (after the tile geometry).
SECTOR_FIELDS = (
    "x_m", "y_m", "rs_eirp_dbm", "height_m", "freq_mhz", "model_id",
    "azimuth_deg", "beamwidth_deg", "downtilt_deg", "vertical_beamwidth_deg",
    "front_to_back_db", "sla_v_db", "reach_m", "outdoor_dbm", "deep_dbm",
)



# ---------------------------------------------------------------- the kernel
# Optional per-sector array: the calibrated correction of the log-distance slope, dB/decade
# (absent = 0; set by prepare_sectors from [calibration], part of the layers' fingerprint
# through the configuration's).
CALIBRATED_SLOPE_FIELD = "loss_slope_db_per_decade"

# Bump when the kernel's maths changes: it is part of every layer's fingerprint, so a
# run reusing layers never mixes the outputs of two kernels.
KERNEL_VERSION = 3

# How a sector's path loss is evaluated per pixel (see _sector_loss_coefficients).
_LOSS_LOG_DISTANCE = 0  # Hata family: c0 + c1·log10(max(d, 100 m) / 1000)
_LOSS_FREE_SPACE = 1  # c0 + 10·log10(max(d, 1 m)² + c1), c1 = Δh²
_LOSS_TR38901 = 2  # the TR 38.901 formulas, per-sector constants c0..c7
_LOSS_UNKNOWN = 3  # not a model id: NaN, as the library


@njit(cache=True)
def _sector_loss_coefficients(model, freq_mhz, h_bs_m, h_ue_m):
    """Per-sector path-loss constants, so that a pixel costs one log10 instead of five.

    Returns ``(kind, c0, …, c7)`` for :func:`_loss_from_coefficients`. The constants
    are the library's formulas (:mod:`coverage.radio.pathloss`) with everything that
    does not depend on the distance taken out; the per-pixel value equals
    :func:`~coverage.radio.pathloss.path_loss_db` to about 1e-12 dB (tested).
    """
    h_bs = max(h_bs_m, _MIN_HEIGHT_M)
    h_ue = max(h_ue_m, _MIN_HEIGHT_M)
    dh2 = (h_bs - h_ue) * (h_bs - h_ue)
    if OKUMURA_HATA_URBAN <= model <= COST231_HATA_RURAL:
        # linear in log10(d_km): at d = 1 km the distance term vanishes
        return (_LOSS_LOG_DISTANCE, path_loss_db(model, 1000.0, freq_mhz, h_bs, h_ue),
                44.9 - 6.55 * math.log10(h_bs), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    if model == FREE_SPACE:
        return (_LOSS_FREE_SPACE, 20.0 * math.log10(4.0 * math.pi * freq_mhz * 1e6 / SPEED_OF_LIGHT_M_S),
                dh2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    fc = freq_mhz / 1000.0
    lfc20 = 20.0 * math.log10(fc)
    if TR38901_RMA <= model <= TR38901_RMA_NLOS:
        h_bld = RMA_BUILDING_HEIGHT_M
        d_bp = 2.0 * math.pi * h_bs * h_ue * fc * 1e9 / SPEED_OF_LIGHT_M_S
        k1 = min(0.03 * h_bld ** 1.72, 10.0)
        k2 = min(0.044 * h_bld ** 1.72, 14.77)
        k3 = 0.002 * math.log10(h_bld)
        # PL1(x) = 20 log10(40π x fc / 3) + k1 log10(x) − k2 + k3 x
        near_const = 20.0 * math.log10(40.0 * math.pi * fc / 3.0) - k2
        pl1_bp = (20.0 * math.log10(40.0 * math.pi * d_bp * fc / 3.0) + k1 * math.log10(d_bp) - k2
                  + k3 * d_bp)
        nlos_const = (161.04 - 7.1 * math.log10(RMA_STREET_WIDTH_M) + 7.5 * math.log10(h_bld)
                      - (24.37 - 3.7 * (h_bld / h_bs) ** 2) * math.log10(h_bs)
                      + lfc20 - (3.2 * math.log10(11.75 * h_ue) ** 2 - 4.97))
        return (_LOSS_TR38901, dh2, d_bp, near_const, 20.0 + k1, k3,
                pl1_bp - 40.0 * math.log10(d_bp), nlos_const, 43.42 - 3.1 * math.log10(h_bs))
    if TR38901_UMA <= model <= TR38901_UMI_NLOS:
        h_bs_eff = max(h_bs - EFFECTIVE_ENV_HEIGHT_M, 0.0)
        h_ue_eff = max(h_ue - EFFECTIVE_ENV_HEIGHT_M, 0.0)
        d_bp = 4.0 * h_bs_eff * h_ue_eff * fc * 1e9 / SPEED_OF_LIGHT_M_S
        if model <= TR38901_UMA_NLOS:
            return (_LOSS_TR38901, dh2, d_bp, 28.0 + lfc20, 22.0,
                    28.0 + lfc20 - 9.0 * math.log10(d_bp * d_bp + dh2),
                    13.54 + lfc20 - 0.6 * (h_ue - 1.5), 39.08, 0.0)
        return (_LOSS_TR38901, dh2, d_bp, 32.4 + lfc20, 21.0,
                32.4 + lfc20 - 9.5 * math.log10(d_bp * d_bp + dh2),
                22.4 + 21.3 * math.log10(fc) - 0.3 * (h_ue - 1.5), 35.3, 0.0)
    return (_LOSS_UNKNOWN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@njit(cache=True, inline="always")
def _loss_from_coefficients(kind, model, d2d_m, h_ue_m, c0, c1, c2, c3, c4, c5, c6, c7):
    """Path loss at horizontal distance ``d2d_m`` from :func:`_sector_loss_coefficients`, dB."""
    if kind == _LOSS_LOG_DISTANCE:
        return c0 + c1 * math.log10(max(d2d_m, _HATA_MIN_M) / 1000.0)
    if kind == _LOSS_FREE_SPACE:
        d = max(d2d_m, _FREE_SPACE_MIN_M)
        return c0 + 10.0 * math.log10(d * d + c1)
    if kind != _LOSS_TR38901:
        return math.nan
    d = max(d2d_m, _TR38901_MIN_M)
    log_d3d = 0.5 * math.log10(d * d + c0)
    if model <= TR38901_RMA_NLOS:  # RMa: c2 + c3 log10(d3D) + c4 d3D below the breakpoint c1
        if d <= c1:
            los = c2 + c3 * log_d3d + c4 * math.sqrt(d * d + c0)
        else:
            los = c5 + 40.0 * log_d3d
        if model == TR38901_RMA_LOS:
            return los
        nlos = max(los, c6 + c7 * (log_d3d - 3.0))
    else:  # UMa / UMi: c2 + c3 log10(d3D) below the breakpoint c1, c4 + 40 log10(d3D) above
        los = c2 + c3 * log_d3d if d <= c1 else c4 + 40.0 * log_d3d
        if model == TR38901_UMA_LOS or model == TR38901_UMI_LOS:
            return los
        nlos = max(los, c5 + c6 * log_d3d)
    if model == TR38901_RMA_NLOS or model == TR38901_UMA_NLOS or model == TR38901_UMI_NLOS:
        return nlos
    p = los_probability(model, d, max(h_ue_m, _MIN_HEIGHT_M))
    return p * los + (1.0 - p) * nlos


@njit(cache=True, inline="always")
def _calibrated_slope(kind, c1, loss_slope_db_per_decade):
    """The log-distance slope with a calibration's correction (``[calibration]``; other kinds keep ``c1``).

    The correction stays within ±15 dB/decade (coverage.config), so the slope stays
    positive and the loss grows with distance, as the block bounds assume.
    """
    if kind == _LOSS_LOG_DISTANCE:
        return c1 + loss_slope_db_per_decade
    return c1


# rsrp is written in steps of 1/128 dB (a power of two: exact in float32, whose low
# mantissa bits are then zero and compress away; 0.004 dB at most from the model's value,
# three orders of magnitude below its accuracy)
_RSRP_STEPS_PER_DB = 128.0
RSRP_STEP_DB = 1.0 / _RSRP_STEPS_PER_DB

# Pixels per side of the smallest blocks the kernel bounds sectors on (see _best_server_kernel).
PRUNE_BLOCK_PX = 8
# dB added to every upper bound and taken from every lower bound: the bounds are
# exact, this only absorbs floating-point rounding so pruning never changes a pixel.
_BOUND_SLACK_DB = 1e-6


@njit(cache=True, inline="always")
def _horizontal_gain_db(phi_deg, beamwidth_deg, front_to_back_db):
    """A_H at ``phi_deg`` off boresight (the library's formula; monotone in |φ|)."""
    return -min(12.0 * (phi_deg / beamwidth_deg) ** 2, front_to_back_db)


@njit(cache=True, inline="always")
def _off_boresight_range_deg(sx, sy, ux, uy, x_lo, x_hi, y_lo, y_hi):
    """Smallest and largest angle off boresight from a site to a rectangle outside it.

    The directions from a point outside a rectangle form an arc spanned by its
    corners, narrower than 180°: it holds the boresight when the corners' signed
    angles change sign within 180° of each other, the back direction when they
    change sign across it.
    """
    lo = 180.0
    hi = 0.0
    neg = 0.0
    pos = 0.0
    for k in range(4):
        cx = (x_lo if k < 2 else x_hi) - sx
        cy = (y_lo if k % 2 == 0 else y_hi) - sy
        signed = math.degrees(math.atan2(cx * uy - cy * ux, cx * ux + cy * uy))
        lo = min(lo, abs(signed))
        hi = max(hi, abs(signed))
        neg = min(neg, signed)
        pos = max(pos, signed)
    if neg < 0.0 < pos:
        if pos - neg < 180.0:
            lo = 0.0
        else:
            hi = 180.0
    return lo, hi


@njit(cache=True, nogil=True)
def _bound_sectors(
    pool, pool_n, c_first, c_last, r_first, r_last, res_m, prune, floor_in,
    x_m, y_m, reach_m, rs_eirp_dbm, height_m, model_id, kinds, coefs, directional, ux, uy,
    beamwidth_deg, front_to_back_db, vertical_beamwidth_deg, tilt, sla_v_db, ue_height_m,
    candidates, upper,
):
    """The sectors of ``pool[:pool_n]`` in reach of a block of pixels, with bounds.

    The block is the global lattice columns ``c_first..c_last`` and rows
    ``r_first..r_last``. Fills ``candidates[:m]`` (in pool order) and ``upper[:m]``,
    the most each can deliver to a pixel of the block, and returns ``(m, floor)``:
    the best of their least values over the block, from the sectors whose reach holds
    the whole block, or ``floor_in`` if higher (the floor of an enclosing block holds
    for this one too; every bound is −inf/+inf when ``prune`` is False). A sector
    with ``upper < floor`` is the best server of no pixel in the block. A sector
    whose distance alone puts it below ``floor_in`` is left out at the cost of one
    log10 (most of them, in a dense network).
    """
    # the rectangle of the block's pixel centres
    x_lo = (c_first + 0.5) * res_m
    x_hi = (c_last + 0.5) * res_m
    y_hi = -(r_first + 0.5) * res_m
    y_lo = -(r_last + 0.5) * res_m
    floor_dbm = floor_in
    m = 0
    for i in range(pool_n):
        s = pool[i]
        sx = x_m[s]
        sy = y_m[s]
        near_dx = max(x_lo - sx, 0.0, sx - x_hi)
        near_dy = max(y_lo - sy, 0.0, sy - y_hi)
        d_near = math.sqrt(near_dx * near_dx + near_dy * near_dy)
        reach = reach_m[s]
        if d_near > reach:
            continue
        if not prune:
            candidates[m] = s
            upper[m] = math.inf
            m += 1
            continue
        k = coefs[s]
        boresight_near = rs_eirp_dbm[s] + _BOUND_SLACK_DB - _loss_from_coefficients(
            kinds[s], model_id[s], d_near, ue_height_m, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7])
        if boresight_near < floor_in:
            continue
        candidates[m] = s
        m += 1
        far_dx = max(abs(sx - x_lo), abs(sx - x_hi))
        far_dy = max(abs(sy - y_lo), abs(sy - y_hi))
        d_far = math.sqrt(far_dx * far_dx + far_dy * far_dy)
        phi_lo, phi_hi = 0.0, 180.0
        if directional[s] and d_near > 0.0:
            phi_lo, phi_hi = _off_boresight_range_deg(sx, sy, ux[s], uy[s], x_lo, x_hi, y_lo, y_hi)
        fbr_s = front_to_back_db[s]
        a_h_best = max(_horizontal_gain_db(phi_lo, beamwidth_deg[s], fbr_s), -fbr_s) if directional[s] else 0.0
        upper[m - 1] = boresight_near + a_h_best
        if d_far > reach:
            continue
        a_h_worst = _horizontal_gain_db(phi_hi, beamwidth_deg[s], fbr_s) if directional[s] else 0.0
        a_v_worst = 0.0
        vbw_s = vertical_beamwidth_deg[s]
        if vbw_s > 0.0:
            dh_m = height_m[s] - ue_height_m
            off_tilt = max(abs(math.degrees(math.atan2(dh_m, d_near)) - tilt[s]),
                           abs(math.degrees(math.atan2(dh_m, d_far)) - tilt[s]))
            a_v_worst = -min(12.0 * (off_tilt / vbw_s) ** 2, sla_v_db[s])
        lower = rs_eirp_dbm[s] - min(-(a_h_worst + a_v_worst), fbr_s) - _BOUND_SLACK_DB - _loss_from_coefficients(
            kinds[s], model_id[s], d_far, ue_height_m, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7])
        floor_dbm = max(floor_dbm, lower)
    return m, floor_dbm


@njit(cache=True, nogil=True)
def _keep_contenders(
    pool, pool_n, c_first, c_last, r_first, r_last, res_m, prune, floor_in,
    x_m, y_m, reach_m, rs_eirp_dbm, height_m, model_id, kinds, coefs, directional, ux, uy,
    beamwidth_deg, front_to_back_db, vertical_beamwidth_deg, tilt, sla_v_db, ue_height_m,
    candidates, upper, kept,
):
    """:func:`_bound_sectors`, then the sectors that can win a pixel into ``kept``: ``(number, floor)``."""
    m, floor_dbm = _bound_sectors(
        pool, pool_n, c_first, c_last, r_first, r_last, res_m, prune, floor_in,
        x_m, y_m, reach_m, rs_eirp_dbm, height_m, model_id, kinds, coefs, directional, ux, uy,
        beamwidth_deg, front_to_back_db, vertical_beamwidth_deg, tilt, sla_v_db, ue_height_m,
        candidates, upper)
    n_kept = 0
    for i in range(m):
        if upper[i] >= floor_dbm:
            kept[n_kept] = candidates[i]
            n_kept += 1
    return n_kept, floor_dbm


@njit(cache=True, nogil=True)
def _best_server_kernel(
    col0, row0, width, height, res_m,
    x_m, y_m, rs_eirp_dbm, height_m, freq_mhz, model_id,
    azimuth_deg, beamwidth_deg, downtilt_deg, vertical_beamwidth_deg,
    front_to_back_db, sla_v_db, reach_m, ue_height_m, block_px,
    loss_slope_db_per_decade, best_dbm, best_sector,
):
    """Best server of each pixel of one tile, block by block with bounds.

    ``best_dbm`` (float64, -inf) and ``best_sector`` (int64, -1) are updated in place;
    returns the number of pixel × sector pairs evaluated.

    The tile is cut into blocks of ``block_px`` × ``block_px`` pixels (0: no
    pruning, every sector in reach is evaluated). For each block and sector the
    kernel bounds the sector's rsrp over the block: at most its value at the
    nearest pixel-centre distance in the least attenuated direction, at least its
    value at the farthest distance in the most attenuated direction (only when the
    whole block is in reach). A sector whose upper bound is below the best lower
    bound of the block cannot be the best server of any pixel in it, nor tie:
    it is skipped, which changes no pixel (the far sectors of a dense network, most
    of the pairs of a national run).

    Per pixel, in order of cost, each step stopping as soon as the sector cannot beat
    the pixel's best so far (every antenna term only subtracts): the distance and the
    reach test; the path loss (one log10, constants per sector); the horizontal
    pattern from the dot and cross products with the boresight unit vector (beyond
    the angle where A_H reaches −Am the whole pattern is −Am: no trigonometry at
    all); then the elevation angle and the vertical pattern. Within a block the
    sectors run in their input order, so ties go to the first sector as before.
    """
    n = x_m.shape[0]
    kinds = np.empty(n, dtype=np.int64)
    coefs = np.empty((n, 8), dtype=np.float64)
    ux = np.empty(n, dtype=np.float64)
    uy = np.empty(n, dtype=np.float64)
    cos_clip = np.empty(n, dtype=np.float64)
    directional = np.empty(n, dtype=np.bool_)
    tilt = np.empty(n, dtype=np.float64)
    for s in range(n):
        kind, k0, k1, k2, k3, k4, k5, k6, k7 = _sector_loss_coefficients(
            model_id[s], freq_mhz[s], height_m[s], ue_height_m)
        kinds[s] = kind
        coefs[s, 0] = k0
        coefs[s, 1] = _calibrated_slope(kind, k1, loss_slope_db_per_decade[s])
        coefs[s, 2] = k2
        coefs[s, 3] = k3
        coefs[s, 4] = k4
        coefs[s, 5] = k5
        coefs[s, 6] = k6
        coefs[s, 7] = k7
        beamwidth_s = beamwidth_deg[s]
        directional[s] = not math.isnan(azimuth_deg[s]) and beamwidth_s > 0.0
        # boresight unit vector (east, north) in the grid, and the cosine of the angle
        # off boresight beyond which 12 (φ/φ3dB)² ≥ Am
        ux[s] = math.sin(math.radians(azimuth_deg[s])) if directional[s] else 0.0
        uy[s] = math.cos(math.radians(azimuth_deg[s])) if directional[s] else 1.0
        clip_deg = beamwidth_s * math.sqrt(max(front_to_back_db[s], 0.0) / 12.0) if directional[s] else 360.0
        cos_clip[s] = math.cos(math.radians(clip_deg)) if clip_deg < 180.0 else -2.0
        tilt[s] = 0.0 if math.isnan(downtilt_deg[s]) else downtilt_deg[s]

    prune = block_px > 0
    step = block_px if prune else max(width, height, 1)
    # bounded in three rounds, each on the survivors of the round before: squares of
    # 16 x 16 blocks, of 4 x 4 blocks, then the blocks (the pixels are evaluated)
    outer_step = step * 16 if prune else step
    middle_step = step * 4 if prune else step
    everyone = np.arange(n)
    outer_kept = np.empty(n, dtype=np.int64)
    middle_kept = np.empty(n, dtype=np.int64)
    candidates = np.empty(n, dtype=np.int64)
    upper = np.empty(n, dtype=np.float64)
    evaluations = 0
    for or0 in range(0, height, outer_step):
        or1 = min(or0 + outer_step, height) - 1
        for oc0 in range(0, width, outer_step):
            oc1 = min(oc0 + outer_step, width) - 1
            n_outer, outer_floor = _keep_contenders(
                everyone, n, col0 + oc0, col0 + oc1, row0 + or0, row0 + or1, res_m, prune, -math.inf,
                x_m, y_m, reach_m, rs_eirp_dbm, height_m, model_id, kinds, coefs, directional, ux, uy,
                beamwidth_deg, front_to_back_db, vertical_beamwidth_deg, tilt, sla_v_db, ue_height_m,
                candidates, upper, outer_kept)
            for mr0 in range(or0, or1 + 1, middle_step):
                mr1 = min(mr0 + middle_step - 1, or1)
                for mc0 in range(oc0, oc1 + 1, middle_step):
                    mc1 = min(mc0 + middle_step - 1, oc1)
                    n_middle, middle_floor = _keep_contenders(
                        outer_kept, n_outer, col0 + mc0, col0 + mc1, row0 + mr0, row0 + mr1, res_m, prune,
                        outer_floor,
                        x_m, y_m, reach_m, rs_eirp_dbm, height_m, model_id, kinds, coefs, directional, ux, uy,
                        beamwidth_deg, front_to_back_db, vertical_beamwidth_deg, tilt, sla_v_db, ue_height_m,
                        candidates, upper, middle_kept)
                    for br0 in range(mr0, mr1 + 1, step):
                        br1 = min(br0 + step - 1, mr1)
                        for bc0 in range(mc0, mc1 + 1, step):
                            bc1 = min(bc0 + step - 1, mc1)
                            m, floor_dbm = _bound_sectors(
                                middle_kept, n_middle, col0 + bc0, col0 + bc1, row0 + br0, row0 + br1, res_m,
                                prune, middle_floor, x_m, y_m, reach_m, rs_eirp_dbm, height_m, model_id, kinds, coefs,
                                directional, ux, uy, beamwidth_deg, front_to_back_db, vertical_beamwidth_deg,
                                tilt, sla_v_db, ue_height_m, candidates, upper)
                            for i in range(m):
                                if upper[i] < floor_dbm:
                                    continue
                                s = candidates[i]
                                evaluations += _evaluate_sector_on_block(
                                    s, br0, br1, bc0, bc1, col0, row0, res_m, x_m[s], y_m[s], reach_m[s],
                                    kinds[s], model_id[s], coefs[s], ue_height_m, height_m[s] - ue_height_m,
                                    rs_eirp_dbm[s], front_to_back_db[s], directional[s], ux[s], uy[s],
                                    cos_clip[s], beamwidth_deg[s], vertical_beamwidth_deg[s], tilt[s],
                                    sla_v_db[s], best_dbm, best_sector)
    return evaluations


@njit(cache=True, inline="always")
def _evaluate_sector_on_block(
    s, br0, br1, bc0, bc1, col0, row0, res_m, sx, sy, reach,
    kind, model_s, k, ue_height_m, dh_m, eirp_s, fbr_s, directional, ux, uy, cos_clip,
    beamwidth_s, vbw_s, tilt_s, sla_s, best_dbm, best_sector,
):
    """One sector over the pixels of a block within its reach; returns the pairs evaluated."""
    evaluations = 0
    k0, k1, k2, k3, k4, k5, k6, k7 = k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]
    vertical = vbw_s > 0.0
    for r in range(br0, br1 + 1):
        dy = -((row0 + r) + 0.5) * res_m - sy
        # the row's chord of the reach disc, widened by a pixel: the exact test is d <= reach
        half_m = math.sqrt(max(reach * reach - dy * dy, 0.0))
        c_from = max(int(math.floor((sx - half_m) / res_m - 0.5)) - col0 - 1, bc0)
        c_to = min(int(math.ceil((sx + half_m) / res_m - 0.5)) - col0 + 1, bc1)
        for c in range(c_from, c_to + 1):
            dx = ((col0 + c) + 0.5) * res_m - sx
            d_m = math.sqrt(dx * dx + dy * dy)
            if d_m > reach:
                continue
            evaluations += 1
            boresight_dbm = eirp_s - _loss_from_coefficients(
                kind, model_s, d_m, ue_height_m, k0, k1, k2, k3, k4, k5, k6, k7)
            best = best_dbm[r, c]
            if not boresight_dbm > best:
                continue
            a_h = 0.0
            if directional:
                # the library's bearing of the site's own point is atan2(0, 0) = north
                ex, ey, e_d = (dx, dy, d_m) if d_m > 0.0 else (0.0, 1.0, 1.0)
                dot = ex * ux + ey * uy
                if dot < e_d * cos_clip:
                    # A_H = −Am, so A = max(−Am + A_V, −Am) = −Am whatever the elevation
                    value = boresight_dbm + (0.0 - fbr_s)
                    if value > best:
                        best_dbm[r, c] = value
                        best_sector[r, c] = s
                    continue
                phi_deg = math.degrees(math.atan2(abs(ex * uy - ey * ux), dot))
                a_h = -min(12.0 * (phi_deg / beamwidth_s) ** 2, fbr_s)
                if not boresight_dbm + a_h > best:
                    continue
            a_v = 0.0
            if vertical:
                elevation_deg = math.degrees(math.atan2(dh_m, d_m))
                a_v = -min(12.0 * ((elevation_deg - tilt_s) / vbw_s) ** 2, sla_s)
            value = boresight_dbm + (0.0 - min(-(a_h + a_v), fbr_s))
            if value > best:
                best_dbm[r, c] = value
                best_sector[r, c] = s
    return evaluations


@njit(cache=True, nogil=True)
def _classify_kernel(best_dbm, best_sector, outdoor_dbm, deep_dbm, rsrp_out, class_out):
    """float32 rsrp (in steps of :data:`RSRP_STEP_DB`) and uint8 class from the best server of each pixel."""
    for r in range(best_dbm.shape[0]):
        for c in range(best_dbm.shape[1]):
            s = best_sector[r, c]
            if s < 0:
                rsrp_out[r, c] = RSRP_NODATA_DBM
                class_out[r, c] = CLASS_NODATA
                continue
            value = np.float32(round(best_dbm[r, c] * _RSRP_STEPS_PER_DB) / _RSRP_STEPS_PER_DB)
            rsrp_out[r, c] = value
            if value >= deep_dbm[s]:
                class_out[r, c] = CLASS_DEEP
            elif value >= outdoor_dbm[s]:
                class_out[r, c] = CLASS_OUTDOOR
            else:
                class_out[r, c] = CLASS_NONE


def predict_tile(
    sectors: Mapping[str, np.ndarray],
    col0: int,
    row0: int,
    width_px: int,
    height_px: int,
    resolution_m: float,
    ue_height_m: float,
    block_px: int = PRUNE_BLOCK_PX,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Best-server rsrp and class of one block of pixels (plain arrays in and out).

    Parameters
    ----------
    sectors : mapping of str to 1-D array
        One array per name in :data:`SECTOR_FIELDS`, one element per sector:
        ``x_m, y_m`` (grid CRS, metres), ``rs_eirp_dbm`` (per-RE reference-signal
        EIRP, dBm), ``height_m`` (antenna above ground), ``freq_mhz``, ``model_id``
        (:mod:`coverage.radio.pathloss` id), ``azimuth_deg`` (NaN = omni),
        ``beamwidth_deg``, ``downtilt_deg``, ``vertical_beamwidth_deg``,
        ``front_to_back_db``, ``sla_v_db``, ``reach_m``, ``outdoor_dbm``, ``deep_dbm``
        (the sector's class thresholds). The order of the sectors breaks exact ties.
    col0, row0 : int
        Global lattice column and row of the block's top-left pixel
        (``Grid.col0 + tile.col_off``, ``Grid.row0 + tile.row_off``).
    width_px, height_px : int
        Block size, pixels.
    resolution_m : float
        Pixel size, metres.
    ue_height_m : float
        Device height above ground, metres.
    block_px : int
        Edge of the blocks on which sectors that cannot win are skipped
        (:func:`_best_server_kernel`); 0 evaluates every pair in reach. The
        pixels do not depend on it.

    Returns
    -------
    rsrp_dbm : ndarray of float32, shape (height_px, width_px)
        Best-server RSRP, nodata −9999 where no sector is in reach.
    coverage_class : ndarray of uint8, shape (height_px, width_px)
        0 none, 1 outdoor, 2 deep, 255 nodata.
    evaluations : int
        Pixel × sector pairs evaluated (pairs within reach of sectors not skipped).
    """
    arrays = _kernel_arrays(sectors)
    best_dbm = np.full((height_px, width_px), -np.inf, dtype=np.float64)
    best_sector = np.full((height_px, width_px), -1, dtype=np.int64)
    evaluations = _best_server_kernel(
        np.int64(col0), np.int64(row0), np.int64(width_px), np.int64(height_px), np.float64(resolution_m),
        arrays["x_m"], arrays["y_m"], arrays["rs_eirp_dbm"], arrays["height_m"], arrays["freq_mhz"],
        arrays["model_id"], arrays["azimuth_deg"], arrays["beamwidth_deg"], arrays["downtilt_deg"],
        arrays["vertical_beamwidth_deg"], arrays["front_to_back_db"], arrays["sla_v_db"],
        arrays["reach_m"], np.float64(ue_height_m), np.int64(block_px), loss_slope_array(sectors, arrays["x_m"].size),
        best_dbm, best_sector,
    )
    rsrp = np.empty((height_px, width_px), dtype=np.float32)
    cls = np.empty((height_px, width_px), dtype=np.uint8)
    _classify_kernel(best_dbm, best_sector, arrays["outdoor_dbm"], arrays["deep_dbm"], rsrp, cls)
    return rsrp, cls, int(evaluations)


def loss_slope_array(sectors: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The sectors' ``loss_slope_db_per_decade`` (a calibration's, :mod:`coverage.measure.calibrate`), else zeros."""
    if CALIBRATED_SLOPE_FIELD in sectors:
        return np.ascontiguousarray(sectors[CALIBRATED_SLOPE_FIELD], dtype=np.float64)
    return np.zeros(n, dtype=np.float64)


def _kernel_arrays(sectors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    missing = [name for name in SECTOR_FIELDS if name not in sectors]
    if missing:
        raise KeyError(f"predict_tile: sector arrays missing {missing}")
    out = {}
    for name in SECTOR_FIELDS:
        dtype = np.int64 if name == "model_id" else np.float64
        out[name] = np.ascontiguousarray(sectors[name], dtype=dtype)
    n = {a.shape for a in out.values()}
    if len(n) != 1 or out["x_m"].ndim != 1:
        raise ValueError("predict_tile: sector arrays must be 1-D and of one length")
    return out


def combine_layers(rsrp_layers: np.ndarray, class_layers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The all-operators layer from per-operator layers (stacked on axis 0).

    rsrp: per-pixel maximum (nodata −9999 is below every real value); class: maximum
    of the classes that are not nodata (a pixel is covered / deep when ANY operator
    covers it / deeply), nodata 255 only where every operator is nodata.
    """
    rsrp = np.max(rsrp_layers, axis=0)
    cls = np.where(class_layers == CLASS_NODATA, -1, class_layers.astype(np.int16)).max(axis=0)
    cls = np.where(cls < 0, CLASS_NODATA, cls).astype(np.uint8)
    return rsrp.astype(np.float32), cls

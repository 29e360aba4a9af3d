"""The best-server kernel over terrain and land cover.

The same model of a pixel as :mod:`coverage.predict.kernel`, with three changes::

    rsrp(p, s) = rs_eirp_dbm[s] + A_H(bearing) + A_V(true elevation)
                 − path_loss_db(model(s, env(p)), d, …) − terrain_db(s, p) − extra_db(p)

* ``env(p)``: the receiver environment of the pixel's land-cover class
  (:mod:`coverage.terrain.clutter`: a fixed environment, ``built_up`` = the sector's own
  when dense urban or urban, else urban; ``sector`` = the sector's own) selects the
  environment variant of the sector's model (Hata urban/suburban/open area, TR 38.901
  UMa/RMa) and the class thresholds; without land cover every pixel is ``sector``;
* ``terrain_db``: the per-site table of :func:`coverage.terrain.sweep.sweep_site`
  (Bullington diffraction × weight + the effective-height change of the Hata family),
  on the terrain lattice (every ``k``-th pixel centre), bilinear between lattice
  points; the TR 38.901 LOS-probability models weight their LOS part by the
  interpolated terrain visibility (where the terrain blocks the direct line, the NLOS
  formula applies);
* the vertical pattern uses the true elevation angle from the antenna (``h_ts`` m above
  sea level) to the device (``h_ue`` m above the pixel's ground ``z_rx``): a device on
  a slope above the antenna gets an upward angle;
* ``extra_db``: the land-cover class's foliage and extra loss.

A sector is evaluated within the reach of each direction (its site's effective height
there, :mod:`coverage.predict.terrain_sites`): its table holds +inf beyond, so those
pixels are skipped as pixels beyond a flat sector's reach are.

The block bounds stay exact: a sector's terrain term is bounded by its table's least
and largest value, the environment by every variant the tile's classes can give it
(LOS-weighted at best, NLOS at worst), the elevation by the block's lowest and highest
ground. So pruning changes no pixel (tested with and without), and the pixels do not
depend on the tile size (every input is a function of the pixel's position).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from coverage.layout import CLASS_DEEP, CLASS_NODATA, CLASS_NONE, CLASS_OUTDOOR, RSRP_NODATA_DBM
from coverage.predict.kernel import (
    _BOUND_SLACK_DB,
    _LOSS_TR38901,
    _RSRP_STEPS_PER_DB,
    _calibrated_slope,
    _horizontal_gain_db,
    _loss_from_coefficients,
    _off_boresight_range_deg,
    _sector_loss_coefficients,
)
from coverage.radio.pathloss import (
    _MIN_HEIGHT_M,
    _TR38901_MIN_M,
    TR38901_RMA,
    TR38901_RMA_LOS,
    TR38901_RMA_NLOS,
    TR38901_UMA,
    TR38901_UMA_LOS,
    TR38901_UMA_NLOS,
    TR38901_UMI,
    TR38901_UMI_LOS,
    TR38901_UMI_NLOS,
    los_probability,
)

N_ENVIRONMENTS = 4  # coverage.radio.ENVIRONMENTS: dense_urban, urban, suburban, rural
URBAN_INDEX = 1
# pixel environment codes beyond 0..3 (coverage.terrain.clutter.ENV_CODES)
PIXEL_BUILT_UP = 4
PIXEL_SECTOR = 5


@njit(cache=True, inline="always")
def resolve_environment(code, sector_env):
    """Environment index (0..3) of a pixel code for a sector of environment ``sector_env``."""
    if code < N_ENVIRONMENTS:
        return code
    if code == PIXEL_BUILT_UP:
        return sector_env if sector_env <= URBAN_INDEX else URBAN_INDEX
    return sector_env


@njit(cache=True, inline="always")
def _nlos_variant(model):
    """The NLOS id of a TR 38.901 model (the loss where the terrain blocks the line); others unchanged."""
    if model == TR38901_RMA or model == TR38901_RMA_LOS:
        return TR38901_RMA_NLOS
    if model == TR38901_UMA or model == TR38901_UMA_LOS:
        return TR38901_UMA_NLOS
    if model == TR38901_UMI or model == TR38901_UMI_LOS:
        return TR38901_UMI_NLOS
    return model


@njit(cache=True, inline="always")
def _terrain_loss(kind, model, d2d_m, h_ue_m, k, visible):
    """Path loss with the LOS part of a TR 38.901 model weighted by the terrain visibility, dB."""
    if kind != _LOSS_TR38901 or visible >= 1.0:
        return _loss_from_coefficients(kind, model, d2d_m, h_ue_m, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7])
    nlos = _loss_from_coefficients(kind, _nlos_variant(model), d2d_m, h_ue_m,
                                   k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7])
    if model == TR38901_RMA_NLOS or model == TR38901_UMA_NLOS or model == TR38901_UMI_NLOS:
        return nlos
    # the LOS formula of the family (the LOS id is the weighted id + 1)
    los_model = model if (model == TR38901_RMA_LOS or model == TR38901_UMA_LOS or model == TR38901_UMI_LOS) else model + 1
    los = _loss_from_coefficients(kind, los_model, d2d_m, h_ue_m, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7])
    if los_model == model:
        p = 1.0
    else:
        p = los_probability(model, max(d2d_m, _TR38901_MIN_M), max(h_ue_m, _MIN_HEIGHT_M))
    p *= visible
    return p * los + (1.0 - p) * nlos


@njit(cache=True, inline="always")
def _lattice_coordinate(pixel, k):
    """Lattice index at or before a global pixel index, and the fraction toward the next one."""
    lattice = int(math.floor(pixel / k))
    return lattice, (pixel - lattice * k) / k


@njit(cache=True, inline="always")
def _table_value(values, off, ni, li, lj, fu, fv):
    """Bilinear value of a site table at local cell (li, lj) + (fu, fv)."""
    base = off + lj * ni + li
    v00 = float(values[base])
    if fu == 0.0 and fv == 0.0:
        return v00
    v10 = float(values[base + 1]) if fu > 0.0 else v00
    if fv == 0.0:
        return v00 * (1.0 - fu) + v10 * fu
    v01 = float(values[base + ni])
    v11 = float(values[base + ni + 1]) if fu > 0.0 else v01
    return (v00 * (1.0 - fu) + v10 * fu) * (1.0 - fv) + (v01 * (1.0 - fu) + v11 * fu) * fv


@njit(cache=True, nogil=True)
def pixel_ground_m(z, gi0, gj0, k, col0, row0, width, height):
    """Ground height of every pixel of a tile from the terrain lattice window ``z``, metres."""
    out = np.empty((height, width), dtype=np.float64)
    for r in range(height):
        lj, fv = _lattice_coordinate(row0 + r, k)
        lj -= gj0
        for c in range(width):
            li, fu = _lattice_coordinate(col0 + c, k)
            li -= gi0
            v00 = z[lj, li]
            if fu == 0.0 and fv == 0.0:
                out[r, c] = v00
                continue
            v10 = z[lj, li + 1] if fu > 0.0 else v00
            v01 = z[lj + 1, li] if fv > 0.0 else v00
            v11 = z[lj + 1, li + 1] if (fu > 0.0 and fv > 0.0) else (v10 if fv == 0.0 else v01)
            out[r, c] = (v00 * (1.0 - fu) + v10 * fu) * (1.0 - fv) + (v01 * (1.0 - fu) + v11 * fu) * fv
    return out


@njit(cache=True, nogil=True)
def _block_ground_range(z_rx, r0, r1, c0, c1):
    lo = math.inf
    hi = -math.inf
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            v = z_rx[r, c]
            lo = min(lo, v)
            hi = max(hi, v)
    return lo, hi


@njit(cache=True, inline="always")
def _table_range(tab, c_first, c_last, r_first, r_last, k, t_i0, t_j0, t_ni, t_nj, t_off, t_db):
    """Least and largest value of a site table's cells under a block of pixels (and its bilinear reads)."""
    li0 = max(int(math.floor(c_first / k)) - t_i0[tab], 0)
    li1 = min(int(math.floor(c_last / k)) + 1 - t_i0[tab], t_ni[tab] - 1)
    lj0 = max(int(math.floor(r_first / k)) - t_j0[tab], 0)
    lj1 = min(int(math.floor(r_last / k)) + 1 - t_j0[tab], t_nj[tab] - 1)
    lo = math.inf
    hi = -math.inf
    if li0 > li1 or lj0 > lj1:
        return 0.0, 0.0
    for lj in range(lj0, lj1 + 1):
        row = t_off[tab] + lj * t_ni[tab]
        for li in range(li0, li1 + 1):
            v = float(t_db[row + li])
            lo = min(lo, v)
            hi = max(hi, v)
    return lo, hi


@njit(cache=True, inline="always")
def _elevation_range_deg(dh_lo, dh_hi, d_near, d_far):
    """Least and largest elevation angle atan2(dh, d) for dh in [dh_lo, dh_hi], d in [d_near, d_far]."""
    el_hi = math.degrees(math.atan2(dh_hi, d_near if dh_hi > 0.0 else d_far))
    el_lo = math.degrees(math.atan2(dh_lo, d_far if dh_lo > 0.0 else d_near))
    return el_lo, el_hi


@njit(cache=True, nogil=True)
def _bound_terrain(
    pool, pool_n, c_first, c_last, r_first, r_last, res_m, prune, floor_in, z_lo, z_hi,
    x_m, y_m, reach_m, rs_eirp_dbm, h_ts, env_mask, kinds, coefs, model_by_env, directional, ux, uy,
    beamwidth_deg, front_to_back_db, vertical_beamwidth_deg, tilt, sla_v_db, ue_height_m,
    tables, extra_min, extra_max, candidates, upper,
):
    """:func:`coverage.predict.kernel._bound_sectors` with the terrain and environment terms bounded.

    ``tables`` is ``(table_of, k, t_i0, t_j0, t_ni, t_nj, t_off, t_db)``: each sector's site
    table, whose cells under the block bound its terrain term.
    """
    table_of, k_lat, t_i0, t_j0, t_ni, t_nj, t_off, t_db = tables
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
        terrain_lo, terrain_hi = _table_range(table_of[s], c_first, c_last, r_first, r_last, k_lat,
                                              t_i0, t_j0, t_ni, t_nj, t_off, t_db)
        if terrain_lo == math.inf:  # the whole block is beyond the sector's reach in its direction
            continue
        least_loss = math.inf
        for e in range(N_ENVIRONMENTS):
            if env_mask[s] & (1 << e):
                k = coefs[s, e]
                least_loss = min(least_loss, _loss_from_coefficients(
                    kinds[s, e], model_by_env[s, e], d_near, ue_height_m, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]))
        boresight_near = rs_eirp_dbm[s] + _BOUND_SLACK_DB - least_loss - terrain_lo - extra_min
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
            el_lo, el_hi = _elevation_range_deg(h_ts[s] - z_hi - ue_height_m, h_ts[s] - z_lo - ue_height_m,
                                                d_near, d_far)
            off_tilt = max(abs(el_lo - tilt[s]), abs(el_hi - tilt[s]))
            a_v_worst = -min(12.0 * (off_tilt / vbw_s) ** 2, sla_v_db[s])
        most_loss = -math.inf
        for e in range(N_ENVIRONMENTS):
            if env_mask[s] & (1 << e):
                k = coefs[s, e]
                most_loss = max(most_loss, _loss_from_coefficients(
                    kinds[s, e], _nlos_variant(model_by_env[s, e]), d_far, ue_height_m,
                    k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]))
        lower = (rs_eirp_dbm[s] - min(-(a_h_worst + a_v_worst), fbr_s) - _BOUND_SLACK_DB - most_loss
                 - terrain_hi - extra_max)
        floor_dbm = max(floor_dbm, lower)
    return m, floor_dbm


@njit(cache=True, nogil=True)
def _keep_terrain_contenders(
    pool, pool_n, c_first, c_last, r_first, r_last, res_m, prune, floor_in, z_lo, z_hi,
    x_m, y_m, reach_m, rs_eirp_dbm, h_ts, env_mask, kinds, coefs, model_by_env, directional, ux, uy,
    beamwidth_deg, front_to_back_db, vertical_beamwidth_deg, tilt, sla_v_db, ue_height_m,
    tables, extra_min, extra_max, candidates, upper, kept,
):
    m, floor_dbm = _bound_terrain(
        pool, pool_n, c_first, c_last, r_first, r_last, res_m, prune, floor_in, z_lo, z_hi,
        x_m, y_m, reach_m, rs_eirp_dbm, h_ts, env_mask, kinds, coefs, model_by_env, directional, ux, uy,
        beamwidth_deg, front_to_back_db, vertical_beamwidth_deg, tilt, sla_v_db, ue_height_m,
        tables, extra_min, extra_max, candidates, upper)
    n_kept = 0
    for i in range(m):
        if upper[i] >= floor_dbm:
            kept[n_kept] = candidates[i]
            n_kept += 1
    return n_kept, floor_dbm


@njit(cache=True, nogil=True)
def best_server_terrain_kernel(
    col0, row0, width, height, res_m,
    x_m, y_m, rs_eirp_dbm, height_m, h_ts, freq_mhz, env_index, model_by_env,
    azimuth_deg, beamwidth_deg, downtilt_deg, vertical_beamwidth_deg,
    front_to_back_db, sla_v_db, reach_m, ue_height_m, block_px,
    table_of, t_i0, t_j0, t_ni, t_nj, t_off, t_db, t_vis, k_lattice,
    z_rx, pixel_env, pixel_extra_db, loss_slope_db_per_decade,
    best_dbm, best_sector, best_env,
):
    """Best server of each pixel of one tile over terrain; returns the pairs evaluated.

    As :func:`coverage.predict.kernel._best_server_kernel` (blocks of ``block_px``
    bounded in three rounds, staged early exits per pixel), with the terms of the
    module docstring. ``best_env`` (uint8) receives the environment index the best
    server was evaluated in (its thresholds classify the pixel).
    """
    n = x_m.shape[0]
    kinds = np.empty((n, N_ENVIRONMENTS), dtype=np.int64)
    coefs = np.empty((n, N_ENVIRONMENTS, 8), dtype=np.float64)
    ux = np.empty(n, dtype=np.float64)
    uy = np.empty(n, dtype=np.float64)
    cos_clip = np.empty(n, dtype=np.float64)
    directional = np.empty(n, dtype=np.bool_)
    tilt = np.empty(n, dtype=np.float64)
    env_mask = np.zeros(n, dtype=np.int64)
    present = np.zeros(8, dtype=np.bool_)
    for r in range(height):
        for c in range(width):
            present[min(pixel_env[r, c], 7)] = True
    extra_min = math.inf
    extra_max = -math.inf
    for r in range(height):
        for c in range(width):
            extra_min = min(extra_min, pixel_extra_db[r, c])
            extra_max = max(extra_max, pixel_extra_db[r, c])
    tables = (table_of, k_lattice, t_i0, t_j0, t_ni, t_nj, t_off, t_db)
    for s in range(n):
        for e in range(N_ENVIRONMENTS):
            kind, k0, k1, k2, k3, k4, k5, k6, k7 = _sector_loss_coefficients(
                model_by_env[s, e], freq_mhz[s], height_m[s], ue_height_m)
            kinds[s, e] = kind
            coefs[s, e, 0] = k0
            coefs[s, e, 1] = _calibrated_slope(kind, k1, loss_slope_db_per_decade[s])
            coefs[s, e, 2] = k2
            coefs[s, e, 3] = k3
            coefs[s, e, 4] = k4
            coefs[s, e, 5] = k5
            coefs[s, e, 6] = k6
            coefs[s, e, 7] = k7
        for code in range(8):
            if present[code]:
                env_mask[s] |= 1 << resolve_environment(code, env_index[s])
        beamwidth_s = beamwidth_deg[s]
        directional[s] = not math.isnan(azimuth_deg[s]) and beamwidth_s > 0.0
        ux[s] = math.sin(math.radians(azimuth_deg[s])) if directional[s] else 0.0
        uy[s] = math.cos(math.radians(azimuth_deg[s])) if directional[s] else 1.0
        clip_deg = beamwidth_s * math.sqrt(max(front_to_back_db[s], 0.0) / 12.0) if directional[s] else 360.0
        cos_clip[s] = math.cos(math.radians(clip_deg)) if clip_deg < 180.0 else -2.0
        tilt[s] = 0.0 if math.isnan(downtilt_deg[s]) else downtilt_deg[s]

    prune = block_px > 0
    step = block_px if prune else max(width, height, 1)
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
            z_lo, z_hi = _block_ground_range(z_rx, or0, or1, oc0, oc1)
            n_outer, outer_floor = _keep_terrain_contenders(
                everyone, n, col0 + oc0, col0 + oc1, row0 + or0, row0 + or1, res_m, prune, -math.inf, z_lo, z_hi,
                x_m, y_m, reach_m, rs_eirp_dbm, h_ts, env_mask, kinds, coefs, model_by_env, directional, ux, uy,
                beamwidth_deg, front_to_back_db, vertical_beamwidth_deg, tilt, sla_v_db, ue_height_m,
                tables, extra_min, extra_max, candidates, upper, outer_kept)
            for mr0 in range(or0, or1 + 1, middle_step):
                mr1 = min(mr0 + middle_step - 1, or1)
                for mc0 in range(oc0, oc1 + 1, middle_step):
                    mc1 = min(mc0 + middle_step - 1, oc1)
                    z_lo, z_hi = _block_ground_range(z_rx, mr0, mr1, mc0, mc1)
                    n_middle, middle_floor = _keep_terrain_contenders(
                        outer_kept, n_outer, col0 + mc0, col0 + mc1, row0 + mr0, row0 + mr1, res_m, prune,
                        outer_floor, z_lo, z_hi,
                        x_m, y_m, reach_m, rs_eirp_dbm, h_ts, env_mask, kinds, coefs, model_by_env, directional,
                        ux, uy, beamwidth_deg, front_to_back_db, vertical_beamwidth_deg, tilt, sla_v_db, ue_height_m,
                        tables, extra_min, extra_max, candidates, upper, middle_kept)
                    for br0 in range(mr0, mr1 + 1, step):
                        br1 = min(br0 + step - 1, mr1)
                        for bc0 in range(mc0, mc1 + 1, step):
                            bc1 = min(bc0 + step - 1, mc1)
                            z_lo, z_hi = _block_ground_range(z_rx, br0, br1, bc0, bc1)
                            m, floor_dbm = _bound_terrain(
                                middle_kept, n_middle, col0 + bc0, col0 + bc1, row0 + br0, row0 + br1, res_m,
                                prune, middle_floor, z_lo, z_hi,
                                x_m, y_m, reach_m, rs_eirp_dbm, h_ts, env_mask, kinds, coefs, model_by_env,
                                directional, ux, uy, beamwidth_deg, front_to_back_db, vertical_beamwidth_deg,
                                tilt, sla_v_db, ue_height_m, tables, extra_min, extra_max,
                                candidates, upper)
                            # strongest bound first: each sector evaluated raises the block's weakest
                            # best value, which then prunes the rest as a lower bound does
                            _sort_by_upper(candidates, upper, m)
                            for i in range(m):
                                if upper[i] < floor_dbm:
                                    break
                                s = candidates[i]
                                tab = table_of[s]
                                evaluations += _evaluate_terrain_block(
                                    s, br0, br1, bc0, bc1, col0, row0, res_m, x_m[s], y_m[s], reach_m[s],
                                    kinds[s], model_by_env[s], coefs[s], env_index[s], ue_height_m, h_ts[s],
                                    rs_eirp_dbm[s], front_to_back_db[s], directional[s], ux[s], uy[s],
                                    cos_clip[s], beamwidth_deg[s], vertical_beamwidth_deg[s], tilt[s], sla_v_db[s],
                                    t_i0[tab], t_j0[tab], t_ni[tab], t_off[tab], t_db, t_vis, k_lattice,
                                    z_rx, pixel_env, pixel_extra_db, best_dbm, best_sector, best_env)
                                floor_dbm = max(floor_dbm, _block_floor(best_dbm, br0, br1, bc0, bc1))
    return evaluations


@njit(cache=True, nogil=True)
def _sort_by_upper(candidates, upper, m):
    """Sort the first ``m`` candidates by their upper bound, strongest first (insertion sort: m is small)."""
    for i in range(1, m):
        u = upper[i]
        c = candidates[i]
        j = i - 1
        while j >= 0 and upper[j] < u:
            upper[j + 1] = upper[j]
            candidates[j + 1] = candidates[j]
            j -= 1
        upper[j + 1] = u
        candidates[j + 1] = c


@njit(cache=True, nogil=True)
def _block_floor(best_dbm, r0, r1, c0, c1):
    """The weakest best value of a block so far: no sector bounded below it can change a pixel there."""
    lo = math.inf
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            lo = min(lo, best_dbm[r, c])
    return lo


@njit(cache=True, inline="always")
def _beats(value, sector, best, best_sector):
    """Whether ``value`` of ``sector`` replaces a pixel's best: stronger, or as strong with a lower number.

    With the tie rule the result does not depend on the order the sectors are evaluated
    in (in ascending order, as the flat kernel goes, "stronger" alone gives the same).
    """
    return value > best or (value == best and sector < best_sector)


@njit(cache=True, nogil=True)
def _evaluate_terrain_block(
    s, br0, br1, bc0, bc1, col0, row0, res_m, sx, sy, reach,
    kinds, models, coefs, env_s, ue_height_m, h_ts, eirp_s, fbr_s, directional, ux, uy, cos_clip,
    beamwidth_s, vbw_s, tilt_s, sla_s, ti0, tj0, tni, toff, t_db, t_vis, k_lattice,
    z_rx, pixel_env, pixel_extra_db, best_dbm, best_sector, best_env,
):
    """One sector over the pixels of a block within its reach; returns the pairs evaluated."""
    evaluations = 0
    vertical = vbw_s > 0.0
    for r in range(br0, br1 + 1):
        dy = -((row0 + r) + 0.5) * res_m - sy
        half_m = math.sqrt(max(reach * reach - dy * dy, 0.0))
        c_from = max(int(math.floor((sx - half_m) / res_m - 0.5)) - col0 - 1, bc0)
        c_to = min(int(math.ceil((sx + half_m) / res_m - 0.5)) - col0 + 1, bc1)
        lj, fv = _lattice_coordinate(row0 + r, k_lattice)
        lj -= tj0
        for c in range(c_from, c_to + 1):
            dx = ((col0 + c) + 0.5) * res_m - sx
            d_m = math.sqrt(dx * dx + dy * dy)
            if d_m > reach:
                continue
            li, fu = _lattice_coordinate(col0 + c, k_lattice)
            li -= ti0
            terrain_db = _table_value(t_db, toff, tni, li, lj, fu, fv)
            if not terrain_db < math.inf:  # beyond the reach in this direction (module docstring)
                continue
            evaluations += 1
            e = resolve_environment(pixel_env[r, c], env_s)
            kind = kinds[e]
            visible = 1.0
            if kind == _LOSS_TR38901:
                visible = _table_value(t_vis, toff, tni, li, lj, fu, fv)
            boresight_dbm = eirp_s - _terrain_loss(kind, models[e], d_m, ue_height_m, coefs[e], visible) \
                - terrain_db - pixel_extra_db[r, c]
            best = best_dbm[r, c]
            holder = best_sector[r, c]
            if not _beats(boresight_dbm, s, best, holder):
                continue
            a_h = 0.0
            if directional:
                ex, ey, e_d = (dx, dy, d_m) if d_m > 0.0 else (0.0, 1.0, 1.0)
                dot = ex * ux + ey * uy
                if dot < e_d * cos_clip:
                    value = boresight_dbm + (0.0 - fbr_s)
                    if _beats(value, s, best, holder):
                        best_dbm[r, c] = value
                        best_sector[r, c] = s
                        best_env[r, c] = e
                    continue
                phi_deg = math.degrees(math.atan2(abs(ex * uy - ey * ux), dot))
                a_h = -min(12.0 * (phi_deg / beamwidth_s) ** 2, fbr_s)
                if not _beats(boresight_dbm + a_h, s, best, holder):
                    continue
            a_v = 0.0
            if vertical:
                elevation_deg = math.degrees(math.atan2(h_ts - z_rx[r, c] - ue_height_m, d_m))
                a_v = -min(12.0 * ((elevation_deg - tilt_s) / vbw_s) ** 2, sla_s)
            value = boresight_dbm + (0.0 - min(-(a_h + a_v), fbr_s))
            if _beats(value, s, best, holder):
                best_dbm[r, c] = value
                best_sector[r, c] = s
                best_env[r, c] = e
    return evaluations


@njit(cache=True, nogil=True)
def classify_by_environment(best_dbm, best_sector, best_env, outdoor_by_env, deep_by_env, rsrp_out, class_out):
    """float32 rsrp and uint8 class, the thresholds of the environment the best server was evaluated in."""
    for r in range(best_dbm.shape[0]):
        for c in range(best_dbm.shape[1]):
            if best_sector[r, c] < 0:
                rsrp_out[r, c] = RSRP_NODATA_DBM
                class_out[r, c] = CLASS_NODATA
                continue
            value = np.float32(round(best_dbm[r, c] * _RSRP_STEPS_PER_DB) / _RSRP_STEPS_PER_DB)
            rsrp_out[r, c] = value
            e = best_env[r, c]
            if value >= deep_by_env[e]:
                class_out[r, c] = CLASS_DEEP
            elif value >= outdoor_by_env[e]:
                class_out[r, c] = CLASS_OUTDOOR
            else:
                class_out[r, c] = CLASS_NONE

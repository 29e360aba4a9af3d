"""Best-server prediction: the per-tile numba kernel and the Dask tile scheduler.

The model of a pixel
--------------------
For every pixel centre ``p`` of a tile and every candidate sector ``s`` whose
reach disc holds ``p`` (2-D distance ``d ≤ reach_m[s]``)::

    rsrp(p, s) = rs_eirp_dbm[s]
                 + relative_gain_db(bearing(s→p), elevation(s→p), antenna of s)
                 - path_loss_db(model_id[s], d, freq_mhz[s], height_m[s], ue_height_m)

with the bearing clockwise from north and the elevation the angle below the
horizon from the antenna (``height_m``) to the device (``ue_height_m``) on flat
ground: ``atan2(height_m − ue_height_m, d)``. A pixel keeps the strongest sector
(the best server; on an exact tie the first sector in the canonical order of
:func:`prepare_sectors`, so the order of the input rows changes nothing). Distances are
float64 throughout (float32 distances moved the coverage edge by dB).

Outputs per pixel: ``rsrp`` (float32 dBm in steps of :data:`RSRP_STEP_DB`, 1/128 dB,
:data:`~coverage.layout.RSRP_NODATA_DBM` where no sector is in reach) and ``class``
(uint8): 255 outside every sector's
reach, else 2 (deep) when rsrp reaches the best server's deep threshold, 1
(outdoor) when it reaches its outdoor threshold, 0 otherwise. The thresholds are
those of the best server's environment (``TechProfile.thresholds_dbm``); the class
is decided on the float32 rsrp that is written, so a consumer comparing the raster
with the thresholds gets the same answer.

A sector's reach is the largest distance at which its boresight (0 dB relative
gain, the maximum) still delivers the outdoor threshold: ``max_range_m(model,
rs_eirp_dbm − outdoor_dbm, …)``, capped at the radio horizon
(:func:`radio_horizon_m`, ``4.12 (√h_bs_m + √h_ue_m)`` km over a 4/3 Earth: 27.6 km
for a 30 m mast and a 1.5 m device). None of the empirical models includes the
Earth's curvature, and beyond the horizon diffraction losses grow far faster than
they predict: without the cap a rural NB-IoT sector (Hata open area, far beyond
its 20 km validity, 164 dB MCL) would reach ~100 km. ``report.json`` records per
technology how many sectors were capped (``sectors_capped_at_horizon``). The
pattern only subtracts, so beyond the reach the sector cannot cover anything:
those pixels are nodata, not "0".

Operators and the combined layer
--------------------------------
Each tile is computed per operator (only that operator's sectors), then the
combined layer ("all") takes, per pixel, the maximum of the operators' rsrp
(identical to the best server over all sectors) and the maximum of the operators'
classes where they are not nodata: a pixel is covered (deep) when ANY operator
covers it (deeply). It is nodata only where every operator is.

Execution
---------
Tiles (only those with a candidate sector; the others stay nodata) run through
Dask: ``scheduler="processes"`` starts a ``LocalCluster`` of one single-threaded
worker process per CPU inside :func:`predict` and closes it at the end;
``"threads"`` a threaded in-process cluster (the kernel releases the GIL);
``"tcp://HOST:PORT"`` connects to an existing ``dask.distributed`` scheduler;
``"synchronous"`` runs the tiles in a plain loop in this process (debugging, small
runs). At most ``2 × workers + 2`` tiles are in flight. Each task also computes
its tile's share of every overview level (:func:`tile_overviews`: nodata-aware
``average`` for rsrp, ``nearest`` for class, whose categories must not be
averaged). Each finished tile is written at once into its window of a tiled,
ZSTD-compressed working GeoTIFF per layer and of one file per overview level
(``.ovr`` chained), so memory is bounded by the tile size, not the extent (the
levels narrower than 32 px per tile are held in memory: 1/1024 of the extent's
pixels). Each working GeoTIFF is then copied with its overviews into a
Cloud-Optimized GeoTIFF (GDAL's COG driver, 512-pixel blocks, ZSTD) and
atomically moved into place; GDAL no longer resamples the whole (national,
mostly empty) extent for the overviews.
No timestamps are written, so the same inputs give byte-identical files, and
since a pixel's coordinates come from the global lattice
(:mod:`coverage.grid`), the pixels do not depend on the tile size. Workers of a
``tcp://`` cluster must be able to import this package.

The report (``raster/report.json``)
-----------------------------------
As docs/CONTRACTS.md shows. The thresholds depend on the environment (through
the shadow-fading margin): ``thresholds_dbm.outdoor``/``deep`` are those of
:data:`REPORT_REFERENCE_ENVIRONMENT` (urban) and ``thresholds_dbm.by_environment``
holds all four; ``ce`` (NB-IoT) does not depend on it. ``evaluations`` counts the
pixel × sector pairs the kernel evaluated (each one path-loss evaluation; the pairs
of sectors that the block bounds skip are not counted), per layer and
in total (a reused layer keeps its count, so the total describes the layers, not
this run's work); ``warnings`` holds skipped technologies, defaulted columns and
the path-loss validity issues (one line per distinct message, with its number of
sectors); ``sectors_capped_at_horizon`` per technology. Each layer also has a
``fingerprint`` and ``reused``. The file holds no timings, so the same inputs
(and the same previous run) give a byte-identical report; :func:`predict`
returns the timings (``timings_s``) and this run's kernel work
(``evaluations_computed``) beside it.

Reusing layers (the monthly update)
-----------------------------------
``predict(..., reuse=True)`` keeps an operator's layer of a technology when the
previous ``raster/report.json`` has the same grid (``Grid.as_dict()``; the grid
follows the extent of all reach discs, so moving an outlying site can change it,
and then everything is recomputed, with a log line saying why), the same layer
fingerprint (:func:`layer_fingerprint`: that operator's kernel inputs, the
configuration, the grid, the covmap version and :data:`KERNEL_VERSION`) and both
of its files. Its kernel work is skipped and its files are not touched; the
combined layer is recomputed for every tile, reading the kept operators' tiles
from their COGs (the combination is exact, so the bytes equal a clean run's).
A killed run is safe: before any layer file is replaced the old report is
rewritten without the fingerprints of the layers being replaced, each file is
replaced atomically, and the new report is written last; so a rerun recomputes
whatever the report on disk does not vouch for.

Sector azimuths are bearings from true north; the kernel works in the grid,
so each azimuth is turned by the meridian convergence at its site
(:func:`coverage.grid.grid_north_bearing_deg`, up to ±17° at China's edges).

Note for developers: numba's on-disk cache (``cache=True``) is keyed on this
file only; after editing ``coverage/radio/pathloss.py`` or ``antenna.py``, delete
``coverage/__pycache__/predict.*.nbi|nbc`` (or touch this file), or the kernel
keeps the old formulas. ``test_kernel_matches_library_pathloss_on_every_model``
catches a stale cache.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

from coverage.errors import ConfigError, CRSMismatchError, EmptyCoverageError, SchemaError
from coverage.files import atomic_output
from coverage.grid import (
    Grid,
    check_resolution,
    check_tile_size,
    grid_for_sectors,
    grid_north_bearing_deg,
    project_lonlat,
    sectors_by_tile,
)
from coverage.layout import (
    ALL_OPERATORS,
    CLASS_DEEP,
    CLASS_NODATA,
    CLASS_NONE,
    CLASS_OUTDOOR,
    RSRP_NODATA_DBM,
    RunLayout,
)
from coverage.radio import ENVIRONMENTS
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
from coverage.schema import OPERATORS, TECH_IDS, normalise_operator, normalise_tech

log = logging.getLogger(__name__)

SCHEDULERS = ("processes", "threads", "synchronous")
REQUIRED_COLUMNS = (
    "operator", "tech", "freq_mhz", "eirp_dbm", "height_m", "azimuth_deg",
    "beamwidth_deg", "downtilt_deg", "environment", "geometry",
)
# Sector columns filled from the technology profile where blank.
_DEFAULTED_COLUMNS = ("freq_mhz", "eirp_dbm", "height_m", "beamwidth_deg", "downtilt_deg")
# The thresholds reported at the top of ``thresholds_dbm`` in report.json are this
# environment's; every environment's are under ``by_environment``.
REPORT_REFERENCE_ENVIRONMENT = "urban"

# GeoTIFF creation options: the working file tiles are written into, and the COG.
# working files are read once, by the COG translation: the fastest codec GDAL has
_WORK_OPTIONS = {"tiled": True, "compress": "ZSTD", "zstd_level": 1, "sparse_ok": True, "bigtiff": "IF_SAFER", "num_threads": 2}
# ZSTD level 3, not DEFLATE: on a national NB-IoT rsrp layer (616 MiB as DEFLATE) it
# compressed in 16.6 s instead of 33.6 s for 6 % more bytes; GDAL ≥ 2.3 reads it
_COG_OPTIONS = {
    "compress": "ZSTD", "level": 3, "blocksize": 512, "bigtiff": "IF_SAFER", "predictor": "YES",
    # blocks with no sector in reach are not written (readers see nodata): a national
    # raster is mostly empty; the threads compress blocks in parallel, output unchanged
    "sparse_ok": "TRUE", "num_threads": "ALL_CPUS",
}
# GDAL block cache while writing, MB (GDAL's default is 5 % of RAM whatever the job).
GDAL_CACHE_MB = 256

# Radio horizon over a 4/3 Earth: √(2 · 4/3 · 6 371 000 m · h) = 4 121.8 m · √(h / 1 m),
# the textbook 4.12 km per √m (ITU-R P.834 effective Earth radius factor k = 4/3).
RADIO_HORIZON_M_PER_SQRT_M = 4120.0

# Per-sector arrays the kernel needs, in its argument order (after the tile geometry).
SECTOR_FIELDS = (
    "x_m", "y_m", "rs_eirp_dbm", "height_m", "freq_mhz", "model_id",
    "azimuth_deg", "beamwidth_deg", "downtilt_deg", "vertical_beamwidth_deg",
    "front_to_back_db", "sla_v_db", "reach_m", "outdoor_dbm", "deep_dbm",
)


# ---------------------------------------------------------------- the kernel

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
    best_dbm, best_sector,
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
        coefs[s, 1] = k1
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
        arrays["reach_m"], np.float64(ue_height_m), np.int64(block_px), best_dbm, best_sector,
    )
    rsrp = np.empty((height_px, width_px), dtype=np.float32)
    cls = np.empty((height_px, width_px), dtype=np.uint8)
    _classify_kernel(best_dbm, best_sector, arrays["outdoor_dbm"], arrays["deep_dbm"], rsrp, cls)
    return rsrp, cls, int(evaluations)


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


def overview_factors(width_px: int, height_px: int, tile_size_px: int, block_px: int = 512) -> list[int]:
    """Decimation factors of the rasters' overviews: 2, 4, … (GDAL's COG rule).

    Halving goes on while the previous level is at least one ``block_px`` block
    wide; a factor must divide the tile, since each tile computes its own share of
    every level (:func:`tile_overviews`).

    >>> overview_factors(48_640, 51_712, 512)
    [2, 4, 8, 16, 32, 64, 128]
    >>> overview_factors(4096, 4096, 512), overview_factors(600, 300, 16), overview_factors(400, 400, 512)
    ([2, 4, 8, 16], [2], [])
    """
    factors = []
    factor = 2
    while tile_size_px % factor == 0 and max(width_px, height_px) / (factor // 2) >= block_px:
        factors.append(factor)
        factor *= 2
    return factors


def tile_overviews(rsrp: np.ndarray, cls: np.ndarray, factors: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """One tile's share of each overview level: ``[(rsrp, class)]`` per factor.

    rsrp: the mean of the pixels that are not nodata (nodata where all are; sums in
    float64, so every level is exact whatever the order, in :data:`RSRP_STEP_DB`
    steps), as GDAL's ``average``; class: the pixel nearest the centre of each
    ``factor × factor`` square, as GDAL's ``nearest`` (classes are not averaged).
    """
    valid = rsrp != RSRP_NODATA_DBM
    total, count = np.where(valid, rsrp, 0.0), valid.astype(np.int64)
    levels = []
    done = 1
    for factor in factors:
        while done < factor:
            total, count = _halve_sums(total, count)
            done *= 2
        levels.append((_level_mean(total, count, RSRP_NODATA_DBM),
                       np.ascontiguousarray(cls[factor // 2::factor, factor // 2::factor])))
    return levels


# The overview sums are in numba: numpy's strided ``reshape(...).sum(axis=(1, 3))`` cost a
# fifth of a national tile task. Every rsrp is a whole number of 1/128 dB steps, so
# the float64 sums are exact in any order.
@njit(cache=True, nogil=True)
def _halve_sums(total, count):
    """Sums of ``total`` and ``count`` over each 2 × 2 square."""
    h, w = total.shape[0] // 2, total.shape[1] // 2
    out_total = np.zeros((h, w), dtype=np.float64)
    out_count = np.zeros((h, w), dtype=np.int64)
    for r in range(2 * h):
        for c in range(2 * w):
            out_total[r // 2, c // 2] += total[r, c]
            out_count[r // 2, c // 2] += count[r, c]
    return out_total, out_count


@njit(cache=True, nogil=True)
def _level_mean(total, count, nodata):
    """Mean in whole :data:`RSRP_STEP_DB` steps (float32), ``nodata`` where nothing is valid."""
    out = np.empty(total.shape, dtype=np.float32)
    for r in range(total.shape[0]):
        for c in range(total.shape[1]):
            if count[r, c] > 0:
                out[r, c] = np.float32(np.rint(total[r, c] / count[r, c] * _RSRP_STEPS_PER_DB) / _RSRP_STEPS_PER_DB)
            else:
                out[r, c] = np.float32(nodata)
    return out


def _with_overviews(layer, factors):
    return None if layer is None else (layer[0], layer[1], tile_overviews(layer[0], layer[1], factors))


def _tile_task(col0, row0, size_px, resolution_m, ue_height_m, sectors, operator_index, n_operators, factors=()):
    """One tile of the operators given: (layers, evaluations per operator).

    ``layers`` holds one ``(rsrp, class, overviews)`` triple per operator
    (:func:`tile_overviews` at ``factors``), None for an operator with no sector in
    the tile (all nodata: neither sent back nor written, the GeoTIFF's sparse blocks
    read as nodata), then their combination (:func:`combine_layers`).
    """
    layers: list = [None] * (n_operators + 1)
    evaluations = np.zeros(n_operators, dtype=np.int64)
    for k in range(n_operators):
        mine = np.flatnonzero(operator_index == k)
        if mine.size == 0:
            continue
        subset = {name: values[mine] for name, values in sectors.items()}
        rsrp, cls, evaluations[k] = predict_tile(subset, col0, row0, size_px, size_px, resolution_m, ue_height_m)
        layers[k] = (rsrp, cls)
    computed = [layer for layer in layers[:n_operators] if layer is not None]
    if len(computed) == 1:
        layers[n_operators] = computed[0]
    elif computed:
        layers[n_operators] = combine_layers(np.stack([r for r, _ in computed]), np.stack([c for _, c in computed]))
    with_overviews = {}  # a lone operator's layer is also the combined one: one set of overviews
    for layer in layers:
        if layer is not None and id(layer) not in with_overviews:
            with_overviews[id(layer)] = _with_overviews(layer, factors)
    return [None if layer is None else with_overviews[id(layer)] for layer in layers], evaluations


# ---------------------------------------------------------------- sector preparation


@dataclass
class PreparedTech:
    """The sectors of one technology as kernel arrays, with their operators."""

    tech: str
    arrays: dict[str, np.ndarray]
    operator_index: np.ndarray
    operators: list[str]
    sectors_per_operator: dict[str, int]
    ue_height_m: float
    warnings: list[str] = field(default_factory=list)
    capped_at_horizon: int = 0

    @property
    def n(self) -> int:
        return int(self.arrays["x_m"].size)


def _load_config(config):
    if config is not None and not isinstance(config, (str, os.PathLike)):
        return config
    from coverage.config import load_config

    return load_config() if config is None else load_config(config)


def _config_grid_value(config, name: str, default):
    grid = getattr(config, "grid", None)
    for holder in (grid, config):
        if holder is None:
            continue
        if isinstance(holder, Mapping) and name in holder:
            return holder[name]
        if hasattr(holder, name):
            return getattr(holder, name)
    return default


def _read_sectors(sectors):
    import geopandas as gpd

    if isinstance(sectors, (str, os.PathLike)):
        path = Path(sectors)
        try:
            sectors = gpd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure names the file
            from coverage.errors import InputReadError

            raise InputReadError(f"cannot read sectors from {path}: {exc}") from exc
    if not isinstance(sectors, gpd.GeoDataFrame):
        raise TypeError(f"sectors must be a GeoDataFrame or a path, got {type(sectors).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in sectors.columns]
    if missing:
        raise SchemaError(f"sectors lack the column(s) {', '.join(missing)} (see docs/CONTRACTS.md)")
    if sectors.crs is None:
        log.warning("sectors have no CRS; taking them as EPSG:4326")
    elif not sectors.crs.equals("EPSG:4326"):
        try:
            sectors = sectors.to_crs("EPSG:4326")
        except Exception as exc:  # noqa: BLE001
            raise CRSMismatchError(f"sectors in {sectors.crs} cannot be brought to EPSG:4326: {exc}") from exc
    geometry = sectors.geometry
    missing_position = geometry.isna() | geometry.is_empty
    if missing_position.any():
        raise SchemaError(f"{int(missing_position.sum())} sector(s) have no position (empty geometry)")
    if len(sectors) and not (geometry.geom_type == "Point").all():
        raise SchemaError("sectors geometry must be Points")
    return sectors


def _environments(sectors) -> np.ndarray:
    """Each sector's environment: the given one, else inferred from site density.

    Raises
    ------
    SchemaError
        An environment is neither blank nor one of :data:`coverage.radio.ENVIRONMENTS`,
        or a blank one cannot be inferred (no position).
    """
    from coverage.radio.environment import infer_environment, is_blank

    given = sectors["environment"].astype(object)
    blank = is_blank(given)
    unknown = sorted({str(v) for v in given[~blank] if v not in ENVIRONMENTS})
    if unknown:
        raise SchemaError(
            f"unknown environment value(s) {', '.join(map(repr, unknown))}; use {', '.join(ENVIRONMENTS)} or blank"
        )
    if not blank.any():
        return given.to_numpy(dtype=object)
    env = infer_environment(sectors)
    bad = ~env.isin(ENVIRONMENTS)
    if bad.any():
        raise SchemaError(f"environment could not be inferred for {int(bad.sum())} sector(s)")
    return env.to_numpy(dtype=object)


def _reach_m(model_id, max_loss_db, freq_mhz, height_m, ue_height_m) -> np.ndarray:
    """max_range_m per sector (each distinct parameter set computed once)."""
    from coverage.radio.pathloss import max_range_m_array

    reach = np.asarray(max_range_m_array(model_id, max_loss_db, freq_mhz, height_m, ue_height_m), dtype=np.float64)
    if not np.all(np.isfinite(reach)):
        raise SchemaError(f"{int((~np.isfinite(reach)).sum())} sector(s) have no finite reach (check eirp_dbm, freq_mhz)")
    return reach


def _validity_warnings(tech, model_id, freq_mhz, height_m, reach_m, ue_height_m) -> list[str]:
    from coverage.radio.pathloss import validity_summary

    return [f"{tech}: {line}" for line in validity_summary(model_id, freq_mhz, height_m, ue_height_m, reach_m)]


def prepare_sectors(sectors, tech: str, config, environment=None) -> PreparedTech:
    """Kernel arrays of one technology's sectors (projected, defaulted, with reach).

    Parameters
    ----------
    sectors : GeoDataFrame
        Sectors (docs/CONTRACTS.md), already filtered to ``tech``.
    tech : str
        ``nbiot`` or ``redcap``.
    config : Config
        From :func:`coverage.config.load_config`.
    environment : array of str, optional
        Environments; inferred where blank when omitted.

    Returns
    -------
    PreparedTech
    """
    from coverage.radio.pathloss import select_model

    profile = config.profiles[tech]
    n = len(sectors)
    warnings: list[str] = []
    lon_deg, lat_deg = sectors.geometry.x.to_numpy(), sectors.geometry.y.to_numpy()
    x_m, y_m = project_lonlat(lon_deg, lat_deg)
    if environment is None:
        environment = _environments(sectors)
    defaults = profile.sector_defaults()
    values = {}
    for name in _DEFAULTED_COLUMNS:
        column = sectors[name].to_numpy(dtype=np.float64, na_value=np.nan)
        blank = ~np.isfinite(column)
        if blank.any():
            column = np.where(blank, float(defaults[name]), column)
            warnings.append(f"{tech}: {int(blank.sum())} sector(s) without {name}; profile default used")
        values[name] = column
    # azimuths are from true north; the kernel measures bearings from grid north
    azimuth_true = sectors["azimuth_deg"].to_numpy(dtype=np.float64, na_value=np.nan)
    azimuth = np.where(
        np.isfinite(azimuth_true), (azimuth_true + grid_north_bearing_deg(lon_deg, lat_deg)) % 360.0, np.nan
    )
    freq = values["freq_mhz"]
    # one model choice / RS offset / threshold per distinct value, then broadcast
    pairs = pd.MultiIndex.from_arrays([freq, environment])
    codes, uniques = pd.factorize(pairs)
    model_id = np.array([select_model(tech, f, e) for f, e in uniques], dtype=np.int64)[codes]
    freq_codes, freq_uniques = pd.factorize(freq)
    rs_offset_db = np.array([profile.rs_offset_db(f) for f in freq_uniques], dtype=np.float64)[freq_codes]
    rs_eirp = values["eirp_dbm"] - rs_offset_db
    env_codes = pd.Categorical(environment, categories=ENVIRONMENTS).codes
    thresholds = [profile.thresholds_dbm(env) for env in ENVIRONMENTS]
    outdoor = np.array([t["outdoor"] for t in thresholds], dtype=np.float64)[env_codes]
    deep = np.array([t["deep"] for t in thresholds], dtype=np.float64)[env_codes]
    ue_height_m = float(profile.ue_height_m)
    model_reach = _reach_m(model_id, rs_eirp - outdoor, freq, values["height_m"], ue_height_m)
    horizon = radio_horizon_m(values["height_m"], ue_height_m)
    reach = np.minimum(model_reach, horizon)
    capped = int(np.count_nonzero(model_reach > horizon))
    warnings += _validity_warnings(tech, model_id, freq, values["height_m"], reach, ue_height_m)
    arrays = {
        "x_m": np.asarray(x_m, dtype=np.float64),
        "y_m": np.asarray(y_m, dtype=np.float64),
        "rs_eirp_dbm": rs_eirp,
        "height_m": values["height_m"],
        "freq_mhz": freq,
        "model_id": model_id,
        "azimuth_deg": azimuth,
        "beamwidth_deg": values["beamwidth_deg"],
        "downtilt_deg": values["downtilt_deg"],
        "vertical_beamwidth_deg": np.full(n, float(profile.vertical_beamwidth_deg)),
        "front_to_back_db": np.full(n, float(profile.front_to_back_db)),
        "sla_v_db": np.full(n, float(profile.sla_v_db)),
        "reach_m": reach,
        "outdoor_dbm": outdoor,
        "deep_dbm": deep,
    }
    codes = sectors["operator"].to_numpy(dtype=object)
    operators = [op.code for op in OPERATORS if (codes == op.code).any()]
    operator_index = np.full(n, -1, dtype=np.int64)
    for k, code in enumerate(operators):
        operator_index[codes == code] = k
    # a canonical order (operator, then every kernel field), so that neither the
    # outputs (exact ties) nor the layer fingerprints depend on the order of the rows
    order = np.lexsort([arrays[name] for name in reversed(SECTOR_FIELDS)] + [operator_index])
    arrays = {name: values[order] for name, values in arrays.items()}
    operator_index = operator_index[order]
    return PreparedTech(
        tech=tech,
        arrays=arrays,
        operator_index=operator_index,
        operators=operators,
        sectors_per_operator={code: int((codes == code).sum()) for code in operators},
        ue_height_m=ue_height_m,
        warnings=warnings,
        capped_at_horizon=capped,
    )


def typical_cell_radius_m(tech: str, config) -> dict[str, float]:
    """Outdoor reach of a default sector of ``tech`` per environment, metres.

    The profile's default EIRP, frequency and height, the model
    :func:`~coverage.radio.pathloss.select_model` picks, boresight gain.
    """
    from coverage.radio.pathloss import max_range_m, select_model

    profile = config.profiles[tech]
    defaults = profile.sector_defaults()
    radius = {}
    for env in ENVIRONMENTS:
        model = select_model(tech, defaults["freq_mhz"], env)
        max_loss_db = profile.rs_eirp_dbm(defaults["eirp_dbm"], defaults["freq_mhz"]) - profile.thresholds_dbm(env)["outdoor"]
        reach_m = max_range_m(model, max_loss_db, defaults["freq_mhz"], defaults["height_m"], profile.ue_height_m)
        radius[env] = float(min(reach_m, radio_horizon_m(defaults["height_m"], profile.ue_height_m)))
    return radius


def radio_horizon_m(height_m, ue_height_m):
    """Radio horizon between an antenna and a device over a smooth 4/3 Earth, metres.

    ``d_km = 4.12 (√h_bs_m + √h_ue_m)``: the line-of-sight distance ``√(2 k R h)`` of
    each end, with the effective Earth radius k·R (k = 4/3, R = 6371 km, ITU-R
    P.834/P.453 standard atmosphere). None of the empirical models
    (:mod:`coverage.radio.pathloss`) includes the Earth's curvature, and beyond the
    horizon diffraction losses grow far faster than they predict, so a sector's
    reach is capped here (see the module docstring).

    Parameters
    ----------
    height_m : float or array
        Antenna height above ground, metres (negative counts as 0).
    ue_height_m : float or array
        Device height above ground, metres.

    Returns
    -------
    float or ndarray
        Metres (float64).

    Examples
    --------
    >>> round(float(radio_horizon_m(30.0, 1.5)))
    27612
    """
    h_bs = np.maximum(np.asarray(height_m, dtype=np.float64), 0.0)
    h_ue = np.maximum(np.asarray(ue_height_m, dtype=np.float64), 0.0)
    return RADIO_HORIZON_M_PER_SQRT_M * (np.sqrt(h_bs) + np.sqrt(h_ue))


def _thresholds_entry(tech: str, config) -> dict:
    profile = config.profiles[tech]
    by_env = {env: {k: float(v) for k, v in profile.thresholds_dbm(env).items()} for env in ENVIRONMENTS}
    entry = dict(by_env[REPORT_REFERENCE_ENVIRONMENT])
    entry["ce"] = {k: float(v) for k, v in dict(profile.ce_thresholds_dbm).items()}
    entry["by_environment"] = by_env
    return entry


# ---------------------------------------------------------------- execution

# glibc settings of the worker processes we start. Dask's nannies set
# MALLOC_TRIM_THRESHOLD_=64 KiB, and setting any threshold freezes glibc's mmap threshold
# at 128 KiB: every array of a tile (tens of MB a task) was mapped, faulted in page by
# page and unmapped again, a third of a worker's time on the Guangdong bench. The heap
# keeps them instead (a worker holds at most 256 MiB it does not use).
WORKER_MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": str(256 << 20), "MALLOC_MMAP_THRESHOLD_": str(64 << 20)}


@contextlib.contextmanager
def _worker_malloc_env():
    """Nannies created inside start their workers with :data:`WORKER_MALLOC_ENV`.

    A nanny takes ``distributed.nanny.pre-spawn-environ`` from the Dask configuration,
    but a value already in this process's environment wins, and every nanny leaves its
    own values there (an earlier cluster's 64 KiB would win): both are set while the
    cluster starts, and the environment is put back afterwards.
    """
    import dask

    saved = {name: os.environ.get(name) for name in WORKER_MALLOC_ENV}
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_MALLOC_ENV}
    os.environ.update(WORKER_MALLOC_ENV)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class _Synchronous:
    """Runs each task when asked for results: no Dask, one tile in memory at a time."""

    workers = 1

    def __init__(self):
        self._pending = []

    def submit(self, key, fn, *args):
        self._pending.append((key, fn, args))

    def next_done(self):
        key, fn, args = self._pending.pop(0)
        return key, fn(*args)

    def close(self):
        self._pending.clear()


class _Distributed:
    """A dask.distributed client (own LocalCluster or an existing scheduler)."""

    def __init__(self, scheduler: str, n_workers: int | None):
        from dask.distributed import Client, LocalCluster, as_completed

        # distributed logs its cluster's life at INFO; keep that out of a normal run
        self._dask_log = logging.getLogger("distributed")
        self._dask_level = self._dask_log.level
        if not log.isEnabledFor(logging.DEBUG):
            self._dask_log.setLevel(logging.WARNING)
        self._cluster = None
        if scheduler.startswith("tcp://"):
            self.client = Client(scheduler)
        else:
            n_workers = n_workers or os.cpu_count() or 1
            if scheduler == "processes":
                with _worker_malloc_env():
                    self._cluster = LocalCluster(
                        n_workers=n_workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.WARNING,
                    )
            else:
                self._cluster = LocalCluster(
                    n_workers=1, threads_per_worker=n_workers, processes=False,
                    dashboard_address=None, silence_logs=logging.WARNING,
                )
            self.client = Client(self._cluster)
        info = self.client.scheduler_info()
        self.workers = max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))
        self._done = as_completed()
        self._keys = {}

    def submit(self, key, fn, *args):
        future = self.client.submit(fn, *args, key=key, pure=False)
        self._keys[future.key] = key
        self._done.add(future)

    def next_done(self):
        future = next(self._done)
        result = future.result()
        key = self._keys.pop(future.key)
        future.release()
        return key, result

    def close(self):
        try:
            self.client.close()
            if self._cluster is not None:
                self._cluster.close()
        finally:
            self._dask_log.setLevel(self._dask_level)


def _executor(scheduler: str, n_workers: int | None):
    if scheduler == "synchronous":
        return _Synchronous()
    if scheduler in ("processes", "threads") or scheduler.startswith("tcp://"):
        return _Distributed(scheduler, n_workers)
    raise ConfigError(f"scheduler={scheduler!r} is not one of {', '.join(SCHEDULERS)} or tcp://HOST:PORT")


def _translate_to_cog(job: tuple[Path, list[Path], Path]) -> list[Path]:
    """Working GeoTIFF + its overview files -> Cloud-Optimized GeoTIFF, atomically.

    The overviews were computed tile by tile (:func:`tile_overviews`) into
    ``work.tif.ovr``, ``work.tif.ovr.ovr``, … (GDAL takes each file's external
    overview as the next level): GDAL copies them (``OVERVIEWS=FORCE_USE_EXISTING``)
    instead of resampling the whole extent, which at a national extent meant reading
    tens of GB of empty blocks. Returns the working files, to be removed.
    """
    import rasterio
    from rasterio.shutil import copy as rio_copy

    work, levels, target = job
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), atomic_output(target) as tmp:
        rio_copy(work, tmp, driver="COG", overviews="FORCE_USE_EXISTING", **_COG_OPTIONS)
    return [work, *levels]


# An overview level whose share of a tile is narrower than this is kept in memory
# (GeoTIFF blocks are multiples of 16 px; a partial block would be rewritten per tile).
_SMALLEST_LEVEL_BLOCK_PX = 32


class _LevelSink:
    """One overview level of one layer: a tiled GeoTIFF, or an array when its tiles' share is tiny."""

    def __init__(self, path: Path, profile: dict, share_px: int):
        import rasterio

        self.path = path
        self.profile = profile
        self.array = None
        self.dataset = None
        if share_px >= _SMALLEST_LEVEL_BLOCK_PX:
            self.dataset = rasterio.open(path, "w", **profile, blockxsize=share_px, blockysize=share_px)
        else:
            self.array = np.full((profile["height"], profile["width"]), profile["nodata"], dtype=profile["dtype"])

    def write(self, values: np.ndarray, window) -> None:
        if self.dataset is not None:
            self.dataset.write(values, 1, window=window)
        else:
            r, c = int(window.row_off), int(window.col_off)
            self.array[r:r + values.shape[0], c:c + values.shape[1]] = values

    def close(self) -> None:
        import rasterio

        if self.dataset is not None:
            self.dataset.close()
            self.dataset = None
        elif self.array is not None:
            with rasterio.open(self.path, "w", **self.profile) as ds:
                ds.write(self.array, 1)
            self.array = None


class _LayerWriters:
    """The working GeoTIFFs of one technology's layers and of their overview levels, tile by tile."""

    def __init__(self, grid: Grid, paths: Sequence[tuple[Path, Path]], work_dir: Path):
        import rasterio
        from rasterio.crs import CRS

        self.grid = grid
        self.factors = overview_factors(grid.width, grid.height, grid.tile_size_px)
        self.jobs = []  # (work file, [level files], target)
        self.layers = []  # per layer: {"rsrp": (dataset, [level sinks]), "class": (…)}
        crs = CRS.from_string(grid.crs)

        def profile(kind, factor):
            out = {
                "driver": "GTiff", "width": grid.width // factor, "height": grid.height // factor, "count": 1,
                "crs": crs, "transform": grid.transform * grid.transform.scale(factor), **_WORK_OPTIONS,
            }
            if kind == "rsrp":
                out.update(dtype="float32", nodata=RSRP_NODATA_DBM, predictor=3)
            else:
                out.update(dtype="uint8", nodata=CLASS_NODATA)
            return out

        try:
            for rsrp_path, class_path in paths:
                layer = {}
                for kind, target in (("rsrp", rsrp_path), ("class", class_path)):
                    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.work.", suffix=".tif", dir=work_dir)
                    os.close(fd)
                    work = Path(name)
                    levels = [Path(name + ".ovr" * (i + 1)) for i in range(len(self.factors))]
                    self.jobs.append((work, levels, target))
                    size = grid.tile_size_px
                    dataset = rasterio.open(work, "w", **profile(kind, 1), blockxsize=size, blockysize=size)
                    layer[kind] = (dataset, [])
                    for factor, path in zip(self.factors, levels, strict=True):
                        layer[kind][1].append(_LevelSink(path, profile(kind, factor), size // factor))
                self.layers.append(layer)
        except BaseException:
            self.discard()
            raise

    def write(self, tile, layers):
        """Write ``(rsrp, class, overviews)`` triples in the order of the paths; None = all nodata, skipped."""
        from rasterio.windows import Window

        window = tile.window()
        for sinks, layer in zip(self.layers, layers, strict=True):
            if layer is None:
                continue
            rsrp, cls, overviews = layer
            sinks["rsrp"][0].write(rsrp, 1, window=window)
            sinks["class"][0].write(cls, 1, window=window)
            for factor, rsrp_sink, class_sink, (rsrp_level, class_level) in zip(
                    self.factors, sinks["rsrp"][1], sinks["class"][1], overviews, strict=True):
                level_window = Window(window.col_off // factor, window.row_off // factor,
                                      window.width // factor, window.height // factor)
                rsrp_sink.write(rsrp_level, level_window)
                class_sink.write(class_level, level_window)

    def close(self):
        for layer in self.layers:
            for dataset, sinks in layer.values():
                dataset.close()
                for sink in sinks:
                    sink.close()
        self.layers = []

    def finish(self):
        """Close, translate the working files to COGs at their targets, remove the work files.

        The translations run side by side in threads (GDAL releases the GIL).
        """
        from concurrent.futures import ThreadPoolExecutor

        self.close()
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            for leftovers in pool.map(_translate_to_cog, self.jobs):
                for path in leftovers:
                    path.unlink(missing_ok=True)
        self.jobs = []

    def discard(self):
        for layer in self.layers:  # closing without writing the in-memory levels
            for dataset, sinks in layer.values():
                dataset.close()
                for sink in sinks:
                    sink.array = None
                    sink.close()
        self.layers = []
        for work, levels, _ in self.jobs:
            for path in (work, *levels):
                path.unlink(missing_ok=True)


def _normalise_techs(techs) -> tuple[str, ...]:
    if isinstance(techs, str):
        techs = (techs,)
    out = []
    for value in techs:
        tech = normalise_tech(value)
        if tech is None:
            raise ConfigError(f"unknown technology {value!r}; choose from {', '.join(TECH_IDS)}")
        if tech not in out:
            out.append(tech)
    if not out:
        raise ConfigError("no technology to predict")
    return tuple(out)


def _normalise_operators(operators) -> set[str] | None:
    if operators is None:
        return None
    if isinstance(operators, str):
        operators = (operators,)
    codes = set()
    for value in operators:
        code = normalise_operator(value)
        if code is None:
            raise ConfigError(f"unknown operator {value!r}; choose from {', '.join(op.code for op in OPERATORS)}")
        codes.add(code)
    return codes


def predict(
    sectors,
    out_dir,
    techs: Sequence[str] = ("nbiot", "redcap"),
    resolution_m: float | None = None,
    config=None,
    scheduler: str = "processes",
    tile_size_px: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    operators: Sequence[str] | None = None,
    reuse: bool = False,
) -> dict:
    """Predict best-server coverage rasters for every technology and operator.

    Parameters
    ----------
    sectors : GeoDataFrame or path
        Sectors as in docs/CONTRACTS.md (EPSG:4326 points), or a ``sectors.parquet``.
    out_dir : path
        Run directory; rasters go to ``out_dir/raster/`` (:class:`~coverage.layout.RunLayout`).
    techs : sequence of str, default ("nbiot", "redcap")
        Technologies to predict; one without sectors is skipped with a warning.
    resolution_m : float, optional
        Pixel size, metres, 30-1000; default from the config (100 m).
    config : Config, path or None
        :func:`coverage.config.load_config` result or a TOML path; None = defaults.
    scheduler : str, default "processes"
        ``processes``, ``threads``, ``synchronous`` or ``tcp://HOST:PORT``.
    tile_size_px : int, optional
        Tile edge in pixels (multiple of 16); default from the config (512).
        Does not change any output pixel.
    progress : callable, optional
        Called as ``progress(done, total)`` after each tile (tiles of all techs).
    operators : sequence of str, optional
        Only these operators (codes or names); default every operator present.
    reuse : bool, default False
        Keep an operator's layers from the previous run in ``out_dir`` when its
        ``raster/report.json`` has the same grid and that layer's fingerprint
        (:func:`layer_fingerprint`) and both its files exist; the combined layers
        are always recomputed (see "Reusing layers" in the module docstring).

    Returns
    -------
    dict
        The report, also written to ``raster/report.json``: ``grid``, ``techs``
        (thresholds, typical cell radius per environment, sectors capped at the
        radio horizon, layers with their evaluations, fingerprint and ``reused``),
        ``warnings``, ``evaluations`` (pixel × sector pairs within reach, all
        layers). Only in the returned dict: ``evaluations_computed`` (this run's
        kernel work) and ``timings_s``.

    Raises
    ------
    EmptyCoverageError
        No sector of the requested technologies and operators.
    ConfigError
        Resolution, tile size, scheduler, technology or operator not valid.
    SchemaError, CRSMismatchError, InputReadError
        The sectors are not readable or not as the contract says.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    techs = _normalise_techs(techs)
    wanted_operators = _normalise_operators(operators)
    config = _load_config(config)
    resolution_m = check_resolution(
        resolution_m if resolution_m is not None else _config_grid_value(config, "resolution_m", 100.0)
    )
    tile_size_px = check_tile_size(
        tile_size_px if tile_size_px is not None else _config_grid_value(config, "tile_size_px", 512)
    )
    n_workers = os.cpu_count() or 1
    if not (scheduler in SCHEDULERS or str(scheduler).startswith("tcp://")):
        raise ConfigError(f"scheduler={scheduler!r} is not one of {', '.join(SCHEDULERS)} or tcp://HOST:PORT")

    frame = _read_sectors(sectors)
    frame = frame.assign(
        tech=frame["tech"].map(normalise_tech), operator=frame["operator"].map(normalise_operator)
    ).reset_index(drop=True)
    # environments from the whole table, so they do not depend on --tech / operators
    frame = frame.assign(environment=_environments(frame) if len(frame) else frame["environment"])
    keep = frame["tech"].isin(techs) & frame["operator"].notna()
    if wanted_operators is not None:
        keep &= frame["operator"].isin(wanted_operators)
    frame = frame[keep]
    if len(frame) == 0:
        raise EmptyCoverageError(
            f"no sectors of {', '.join(techs)}"
            + (f" for operator(s) {', '.join(sorted(wanted_operators))}" if wanted_operators else "")
            + " to predict"
        )
    frame = frame.reset_index(drop=True)
    env_all = frame["environment"].to_numpy(dtype=object)
    warnings: list[str] = []
    prepared: dict[str, PreparedTech] = {}
    for tech in techs:
        rows = np.flatnonzero((frame["tech"] == tech).to_numpy())
        if rows.size == 0:
            warnings.append(f"{tech}: no sectors; technology skipped")
            continue
        prepared[tech] = prepare_sectors(frame.iloc[rows], tech, config, env_all[rows])
        warnings += prepared[tech].warnings
    timings["prepare"] = time.perf_counter() - started

    t0 = time.perf_counter()
    grid = grid_for_sectors(
        np.concatenate([p.arrays["x_m"] for p in prepared.values()]),
        np.concatenate([p.arrays["y_m"] for p in prepared.values()]),
        np.concatenate([p.arrays["reach_m"] for p in prepared.values()]),
        resolution_m=resolution_m,
        tile_size_px=tile_size_px,
    )
    binned = {
        tech: sectors_by_tile(grid, p.arrays["x_m"], p.arrays["y_m"], p.arrays["reach_m"])
        for tech, p in prepared.items()
    }
    timings["grid"] = time.perf_counter() - t0
    log.info(
        "grid %d x %d px at %g m, %d tiles; tiles with sectors: %s",
        grid.width, grid.height, resolution_m, grid.n_tiles, {t: len(b) for t, b in binned.items()},
    )

    layout = RunLayout(out_dir)
    layout.raster_dir.mkdir(parents=True, exist_ok=True)
    grid_dict = grid.as_dict()
    config_fp = config.fingerprint() if hasattr(config, "fingerprint") else _json_sha256(config)
    fingerprints = {
        tech: {op: layer_fingerprint(prep, op, config_fp, grid_dict) for op in prep.operators}
        for tech, prep in prepared.items()
    }
    previous = _previous_report(layout)
    reused = _reusable_layers(previous, grid_dict, fingerprints, layout) if reuse else {}
    # from here on the old report must not vouch for any layer this run replaces
    _invalidate_previous_report(layout, previous, prepared, reused)
    layer_evaluations = _run_tiles(grid, prepared, binned, layout, scheduler, n_workers, progress, timings, reused)

    report = {"grid": grid_dict, "techs": {}, "warnings": warnings, "evaluations": 0}
    computed = 0
    for tech, prep in prepared.items():
        layers = []
        for op in prep.operators:
            old = reused.get(tech, {}).get(op)
            n = int(old["evaluations"]) if old is not None else int(layer_evaluations[tech][op])
            computed += 0 if old is not None else n
            layers.append({
                "operator": op,
                "rsrp": layout.rsrp(tech, op).name,
                "class": layout.coverage_class(tech, op).name,
                "sectors": prep.sectors_per_operator[op],
                "evaluations": n,
                "fingerprint": fingerprints[tech][op],
                "reused": old is not None,
            })
        tech_evaluations = sum(layer["evaluations"] for layer in layers)
        layers.append({
            "operator": ALL_OPERATORS,
            "rsrp": layout.rsrp(tech).name,
            "class": layout.coverage_class(tech).name,
            "sectors": prep.n,
            "evaluations": tech_evaluations,
            "fingerprint": _combined_fingerprint(fingerprints[tech]),
            "reused": False,
        })
        report["evaluations"] += tech_evaluations
        report["techs"][tech] = {
            "thresholds_dbm": _thresholds_entry(tech, config),
            "typical_cell_radius_m": typical_cell_radius_m(tech, config),
            "sectors_capped_at_horizon": prep.capped_at_horizon,
            "layers": layers,
        }
    # written last, so that it vouches only for layers already in place
    with atomic_output(layout.predict_report) as tmp:
        tmp.write_text(_report_text(report), encoding="utf-8")
    timings["total"] = time.perf_counter() - started
    log.info("predicted %s: %d evaluations computed (%d in the layers) in %.1f s",
             ", ".join(prepared), computed, report["evaluations"], timings["total"])
    # what this run did (not part of the file: it would make the file depend on the run)
    return {**report, "evaluations_computed": computed, "timings_s": timings}


def layer_fingerprint(prep: PreparedTech, operator: str, config_fingerprint: str, grid: Mapping) -> str:
    """sha256 of everything one operator's layer of one technology depends on.

    The operator's kernel arrays (:data:`SECTOR_FIELDS`, in the canonical order of
    :func:`prepare_sectors`: what the kernel sees, so that an environment inferred
    from another operator's sites counts, and ids or source rows do not), the
    device height, the configuration's fingerprint, the grid (``Grid.as_dict()``),
    the covmap version and :data:`KERNEL_VERSION`.
    """
    import hashlib

    from coverage import __version__

    digest = hashlib.sha256()
    header = {"covmap": __version__, "kernel": KERNEL_VERSION, "config": config_fingerprint,
              "grid": grid, "tech": prep.tech, "operator": operator, "ue_height_m": prep.ue_height_m}
    digest.update(json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    rows = prep.operator_index == prep.operators.index(operator)
    for name in SECTOR_FIELDS:
        values = np.ascontiguousarray(prep.arrays[name][rows])
        digest.update(f"|{name}:{values.dtype.str}:{values.size}|".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def _combined_fingerprint(per_operator: Mapping[str, str]) -> str:
    return _json_sha256(sorted(per_operator.items()))


def _json_sha256(value) -> str:
    import hashlib

    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _report_text(report: Mapping) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _previous_report(layout: RunLayout) -> dict | None:
    path = layout.predict_report
    if not path.exists():
        return None
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.info("%s unreadable (%s): nothing in it is reused", path, exc)
        return None
    return report if isinstance(report, dict) else None


def _reusable_layers(previous, grid_dict, fingerprints, layout) -> dict[str, dict[str, dict]]:
    """Operator layers the previous report vouches for: ``{tech: {operator: old layer entry}}``."""
    if previous is None:
        log.info("no previous %s: every layer is computed", layout.predict_report)
        return {}
    # compare as JSON data: the old grid went through json (tuples became lists)
    if previous.get("grid") != json.loads(json.dumps(grid_dict)):
        log.info("the grid changed since the previous run (extent, resolution or tile size): "
                 "every layer is recomputed")
        return {}
    out: dict[str, dict[str, dict]] = {}
    for tech, wanted in fingerprints.items():
        old_layers = previous.get("techs", {}).get(tech, {}).get("layers", [])
        for entry in old_layers:
            op = entry.get("operator")
            if op not in wanted or entry.get("fingerprint") != wanted[op]:
                continue
            if entry.get("rsrp") != layout.rsrp(tech, op).name or entry.get("class") != layout.coverage_class(tech, op).name:
                continue
            if not (layout.rsrp(tech, op).exists() and layout.coverage_class(tech, op).exists()):
                log.info("%s %s: fingerprint matches but a file is missing: recomputed", tech, op)
                continue
            if not isinstance(entry.get("evaluations"), int):
                continue
            out.setdefault(tech, {})[op] = entry
    for tech, wanted in fingerprints.items():
        kept = sorted(out.get(tech, {}))
        log.info("%s: reusing %s; computing %s", tech, kept or "nothing",
                 sorted(set(wanted) - set(kept)) or "no operator layer")
    return out


def _invalidate_previous_report(layout, previous, prepared, reused) -> None:
    """Rewrite the old report without a fingerprint for every layer this run replaces.

    Layer files are replaced one by one (each atomically) and the new report comes
    last; a run killed in between leaves a report that vouches only for the layers
    still as it describes them, so the next run recomputes the rest.
    """
    if previous is None:
        return
    changed = False
    for tech, entry in previous.get("techs", {}).items():
        for layer in entry.get("layers", []):
            if tech in prepared and layer.get("operator") not in reused.get(tech, {}) and layer.get("fingerprint"):
                layer["fingerprint"] = None
                changed = True
    if changed:
        with atomic_output(layout.predict_report) as tmp:
            tmp.write_text(_report_text(previous), encoding="utf-8")


def _run_tiles(grid, prepared, binned, layout, scheduler, n_workers, progress, timings, reused) -> dict:
    """Compute every tile with a candidate sector and write the layers (see :func:`_write_tiles`)."""
    import rasterio

    # GDAL's block cache defaults to 5 % of RAM and fills with the blocks of every
    # layer being written: a fixed size keeps this process's memory independent of
    # the extent (the bytes written do not depend on it)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        return _write_tiles(grid, prepared, binned, layout, scheduler, n_workers, progress, timings, reused)


def _write_tiles(grid, prepared, binned, layout, scheduler, n_workers, progress, timings, reused) -> dict:
    """Compute every tile with a candidate sector and write the layers.

    Operator layers in ``reused`` (``{tech: {operator: …}}``) are not computed: their
    COGs stay as they are and the combined layer reads their tiles from them.
    Returns the evaluations of each computed operator layer, ``{tech: {operator: n}}``,
    and adds ``scheduler_start``, ``tiles`` and ``cog`` (seconds) to ``timings``.
    """
    import rasterio

    # temporaries a killed run left beside our layers: working files, atomic-output
    # files and GDAL's overview scratch files (".nbiot_ct_rsrp.x1y2.tif.ovr.tmp")
    stems = {layout.predict_report.stem}
    for tech, prep in prepared.items():
        for op in (*prep.operators, ALL_OPERATORS):
            stems |= {layout.rsrp(tech, op).stem, layout.coverage_class(tech, op).stem}
    for stem in stems:
        for stale in layout.raster_dir.glob(f".{stem}.*"):
            stale.unlink(missing_ok=True)
    plans = {}  # tech -> (computed operators, reused operators)
    for tech, prep in prepared.items():
        kept = [op for op in prep.operators if op in reused.get(tech, {})]
        plans[tech] = ([op for op in prep.operators if op not in kept], kept)
    jobs = []  # (tech, tile index, candidate rows)
    for tech, tiles in binned.items():
        for tile_id, rows in tiles.items():
            jobs.append((tech, tile_id, rows))
    total = len(jobs)
    evaluations = {tech: dict.fromkeys(plans[tech][0], 0) for tech in prepared}
    writers: dict[str, _LayerWriters] = {}
    sources: dict[str, list] = {}  # tech -> [(operator index, rsrp dataset, class dataset)] of reused layers
    executor = None
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    def write(tech, tile_id, rows, layers):
        """Write the computed layers, and the combined one with the reused layers' tile."""
        tile = grid.tile(tile_id)
        if sources[tech]:
            present = set(prepared[tech].operator_index[rows].tolist())
            window = tile.window()
            parts = [layers[-1]] if layers[-1] is not None else []
            for k, rsrp_ds, class_ds in sources[tech]:
                if k in present:
                    parts.append((rsrp_ds.read(1, window=window), class_ds.read(1, window=window)))
            combined = combine_layers(np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]))
            layers[-1] = _with_overviews(combined, writers[tech].factors)
        writers[tech].write(tile, layers)

    try:
        for tech, prep in prepared.items():
            computed, kept = plans[tech]
            paths = [(layout.rsrp(tech, op), layout.coverage_class(tech, op)) for op in computed]
            paths.append((layout.rsrp(tech), layout.coverage_class(tech)))
            writers[tech] = _LayerWriters(grid, paths, layout.raster_dir)
            sources[tech] = [
                (prep.operators.index(op), rasterio.open(layout.rsrp(tech, op)),
                 rasterio.open(layout.coverage_class(tech, op)))
                for op in kept
            ]
        t0 = time.perf_counter()
        executor = _executor(scheduler, n_workers)
        timings["scheduler_start"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        max_in_flight = 2 * executor.workers + 2
        pending = iter(jobs)
        in_flight = 0

        def submit_next() -> bool:
            """Submit the next tile that has a sector of a computed layer (others are combined here)."""
            while True:
                job = next(pending, None)
                if job is None:
                    return False
                tech, tile_id, rows = job
                prep = prepared[tech]
                computed = plans[tech][0]
                local = np.full(len(prep.operators), -1, dtype=np.int64)
                for j, op in enumerate(computed):
                    local[prep.operators.index(op)] = j
                op_index = local[prep.operator_index[rows]]
                mine = rows[op_index >= 0]
                if mine.size == 0:
                    # only reused operators' sectors here: the combined layer alone
                    write(tech, tile_id, rows, [None] * (len(computed) + 1))
                    tick()
                    continue
                tile = grid.tile(tile_id)
                subset = {name: values[mine] for name, values in prep.arrays.items()}
                executor.submit(
                    f"covmap-tile-{tech}-{tile_id}", _tile_task,
                    grid.col0 + tile.col_off, grid.row0 + tile.row_off, grid.tile_size_px, grid.resolution_m,
                    prep.ue_height_m, subset, op_index[op_index >= 0], len(computed), writers[tech].factors,
                )
                job_rows[(tech, tile_id)] = rows
                return True

        job_rows: dict[tuple[str, int], np.ndarray] = {}
        while in_flight < max_in_flight and submit_next():
            in_flight += 1
        while in_flight:
            key, (layers, n) = executor.next_done()
            in_flight -= 1
            _, _, tech, tile_id = key.split("-", 3)
            rows = job_rows.pop((tech, int(tile_id)))
            write(tech, int(tile_id), rows, layers)
            for j, op in enumerate(plans[tech][0]):
                evaluations[tech][op] += int(n[j])
            tick()
            if submit_next():
                in_flight += 1
        executor.close()
        executor = None
        timings["tiles"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for tech_sources in sources.values():
            for _, rsrp_ds, class_ds in tech_sources:
                rsrp_ds.close()
                class_ds.close()
        sources.clear()
        for writer in writers.values():
            writer.finish()
        timings["cog"] = time.perf_counter() - t0
    except BaseException:
        for tech_sources in sources.values():
            for _, rsrp_ds, class_ds in tech_sources:
                rsrp_ds.close()
                class_ds.close()
        for writer in writers.values():
            writer.discard()
        if executor is not None:
            executor.close()
        raise
    return evaluations

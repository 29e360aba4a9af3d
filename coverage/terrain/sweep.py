"""The per-site terrain sweep: diffraction and effective height for every cell a site reaches.

What it computes
----------------
For one site (antenna at ``h_ts`` m above sea level, ``h_a`` m above its ground) and
every cell of a terrain lattice (a grid of step ``t`` on the China Albers plane whose
points are pixel centres of the run's global lattice) inside the site's reach, the
terrain part of the path loss to a device ``h_ue`` m above that cell's ground::

    terrain_db = Δ_heff + w · max(L_bull − L_smooth, 0)     visible = direct line clear of the terrain

* ``L_bull``: ITU-R P.526-15 Bullington over the bare-terrain profile from the site to
  the cell (:mod:`coverage.radio.diffraction`, Earth curvature ``C_e = 1/(k a)``);
* ``L_smooth``: the same over smooth ground with the antennas at their heights above
  ground (:func:`~coverage.radio.diffraction.smooth_bullington_db`, the smooth profile
  of P.1812's delta-Bullington): the empirical models already hold the loss over
  smooth ground (a 30 m mast and a 1.5 m device at 900 MHz: 5.5 dB at 5 km), so only
  the terrain's excess counts and flat land adds nothing;
* ``Δ_heff``: the Hata-family change for the effective base height of P.1546-6 Annex 5
  §3.1 (the site's height above the mean terrain 3-15 km in the cell's direction,
  ramped from ``h_a`` below 15 km and clamped; 0 for TR 38.901 sites);
* ``w``: ``[terrain] diffraction_weight`` of the configuration.

How (radial sweep with exact end points)
----------------------------------------
Rays leave the site at azimuth steps fine enough that neighbouring rays are at most
``RAY_SPACING`` × ``t`` apart at the farthest cell, and the profile is sampled every
``t / 2`` along each ray (bilinear in the lattice). Each cell is answered from the ray
nearest its direction, with its own exact distance and ground height, from two
running summaries of the ray's samples before it (the idea of the research note
§2.2), and from the samples of the last :data:`TAIL_M` taken on the exact path to the
cell (near the receiver a ray's sideways offset would move the ground under the
first Fresnel zone by metres on a steep slope; every maximum below splits exactly
between the ray's prefix and the tail):

* the transmitter side ``S_tim = 500 C_e d + max_i [(h_i − h_ts)/d_i − 500 C_e d_i]``,
  a running maximum (exact, O(1) per sample);
* the receiver side ``S_rim = max_i (g_i − G_r)/(d − d_i) − 500 C_e d`` with
  ``g_i = h_i − 500 C_e d_i²`` and ``G_r = h_rs − 500 C_e d²``: the tangent from the
  receiver to the upper convex hull of the points ``(d_i, g_i)`` (monotone chain,
  amortised O(1) per sample, a binary search per cell). Exact, curvature included.

On a line-of-sight path Bullington needs ``ν_max`` over every point, which no running
summary gives: covmap takes the largest ν over the hull's vertices (a binary search:
ν is unimodal along the hull when every point is below the line), the
transmitter-side maximum and every tail point. Points under the hull can in principle
have a larger ν; tests/test_terrain_sweep.py measures the agreement with the per-path
reference on two real mountain DEMs.

Cells are visited in a canonical order (sorted by ray, then distance) and every
number depends only on the site, the lattice values and the cell's position, so a
cell's result does not depend on the tile it is computed for.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from coverage.radio.diffraction import (
    bullington_correction_db,
    bullington_from_slopes_db,
    hata_height_correction_db,
    knife_edge_loss_db,
    nu_at,
    ramped_effective_height_m,
    smooth_bullington_from_db,
)

# Neighbouring rays are at most this many lattice steps apart at the farthest cell (a
# cell is then at most an eighth of a step off its ray; tests/test_terrain_sweep.py
# measured the agreement with the per-path reference for 0.5, 0.25 and 0.125).
RAY_SPACING = 0.35
# Profile samples per lattice step along a ray (the reference samples every half pixel).
SAMPLES_PER_STEP = 2
# The samples within this distance before each cell are taken on the exact path to it,
# not on its ray: near the receiver a ray's sideways offset moves the ground under the
# first Fresnel zone by metres on steep slopes (the maxima split exactly between prefix
# and tail). 800 m: 16 samples on a 100 m lattice (measured against the reference), at
# least TAIL_MIN_SAMPLES on a coarse one.
TAIL_M = 800.0
TAIL_MIN_SAMPLES = 2
# Azimuth bins of a site's effective-height table (10°; linear between bin centres).
HEFF_BINS = 36
# Within this many lattice steps of the site every cell is answered whatever the
# direction's reach (a pixel's bilinear neighbours may lie two bins away there).
NEAR_STEPS = 10.0


@njit(cache=True, inline="always")
def lattice_bilinear(z, x_origin, y_origin, step, x, y):
    """Bilinear value of lattice ``z`` (rows go south) at plane point (x, y); edges clamp."""
    u = (x - x_origin) / step
    v = (y_origin - y) / step
    ny, nx = z.shape
    u = min(max(u, 0.0), nx - 1.0)
    v = min(max(v, 0.0), ny - 1.0)
    i = min(int(math.floor(u)), nx - 2) if nx > 1 else 0
    j = min(int(math.floor(v)), ny - 2) if ny > 1 else 0
    fu = u - i
    fv = v - j
    i1 = min(i + 1, nx - 1)
    j1 = min(j + 1, ny - 1)
    top = z[j, i] * (1.0 - fu) + z[j, i1] * fu
    bottom = z[j1, i] * (1.0 - fu) + z[j1, i1] * fu
    return top * (1.0 - fv) + bottom * fv


@njit(cache=True, inline="always")
def heff_at_bearing(table, bearing_deg):
    """A site's effective height toward ``bearing_deg`` (grid bearing), linear between bin centres."""
    n = table.shape[0]
    pos = (bearing_deg % 360.0) / (360.0 / n)
    b0 = int(math.floor(pos)) % n
    frac = pos - math.floor(pos)
    # a + (b − a)·frac, not a(1 − frac) + b·frac: exact where the two bins agree (flat land gives h_eff = h_a)
    return table[b0] + (table[(b0 + 1) % n] - table[b0]) * frac


@njit(cache=True, inline="always")
def _tangent_index(hull_d, hull_g, n_hull, d_km, g_r):
    """Index of the hull vertex maximising (g_i − G_r)/(d − d_i) (unimodal along the upper hull)."""
    lo = 0
    hi = n_hull - 1
    while lo < hi:
        mid = (lo + hi) // 2
        f_mid = (hull_g[mid] - g_r) / (d_km - hull_d[mid])
        f_next = (hull_g[mid + 1] - g_r) / (d_km - hull_d[mid + 1])
        if f_mid < f_next:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, inline="always")
def _hull_nu(hull_d, hull_g, t, d_km, h_ts, h_rs, wavelength, ce):
    h = hull_g[t] + 500.0 * ce * hull_d[t] * hull_d[t]
    return nu_at(h, hull_d[t], d_km, h_ts, h_rs, wavelength, ce)


@njit(cache=True, inline="always")
def _hull_nu_max(hull_d, hull_g, n_hull, d_km, h_ts, h_rs, wavelength, ce):
    """Largest ν over the hull's vertices (unimodal along the hull when every point is below the line)."""
    lo = 0
    hi = n_hull - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _hull_nu(hull_d, hull_g, mid, d_km, h_ts, h_rs, wavelength, ce) < _hull_nu(
                hull_d, hull_g, mid + 1, d_km, h_ts, h_rs, wavelength, ce):
            lo = mid + 1
        else:
            hi = mid
    return _hull_nu(hull_d, hull_g, lo, d_km, h_ts, h_rs, wavelength, ce)


@njit(cache=True)
def sweep_site(
    z, x_origin, y_origin, step,
    sx, sy, h_ts, h_a, h_ue, wavelength, ce, weight, hata, heff_table, reach_m,
    i_first, i_last, j_first, j_last, out_db, out_visible, reach_by_bearing_m,
):
    """Terrain loss and visibility of the lattice cells ``[j_first..j_last] × [i_first..i_last]``.

    ``z`` is the lattice window (metres above sea level; cell (j, i) at
    ``(x_origin + i·step, y_origin − j·step)``, plane metres); it must hold every
    point of the rays, i.e. the site's whole reach. ``out_db`` (float32) and
    ``out_visible`` (uint8) have the box's shape; cells farther than ``reach_m`` + 2
    steps get 0 dB and visible (no pixel in reach reads them).
    ``reach_by_bearing_m`` (:data:`HEFF_BINS` values; interval ``b`` spans the grid
    bearings between bin centres ``b`` and ``b + 1``) is the site's reach in each
    direction: cells farther than the largest of their interval's and its
    neighbours' reach, plus 2 steps, and more than :data:`NEAR_STEPS` steps from the
    site, are out of reach (+inf dB, not visible; not answered). Returns the number
    of profile samples taken.
    """
    n_rows = j_last - j_first + 1
    n_cols = i_last - i_first + 1
    n_cells = n_rows * n_cols
    limit_m = reach_m + 2.0 * step
    # the cells to answer, with their ray and distance
    d_cell = np.empty(n_cells, dtype=np.float64)
    bearing = np.empty(n_cells, dtype=np.float64)
    flat = np.empty(n_cells, dtype=np.int64)
    m = 0
    far_m = 0.0
    n_bins = reach_by_bearing_m.shape[0]
    for jj in range(n_rows):
        y = y_origin - (j_first + jj) * step
        for ii in range(n_cols):
            x = x_origin + (i_first + ii) * step
            dx = x - sx
            dy = y - sy
            d = math.sqrt(dx * dx + dy * dy)
            out_db[jj, ii] = 0.0
            out_visible[jj, ii] = 1
            if d > limit_m:
                continue
            theta = math.atan2(dx, dy)
            if d > NEAR_STEPS * step:
                b = int(math.floor((math.degrees(theta) % 360.0) / (360.0 / n_bins))) % n_bins
                reach_here = max(reach_by_bearing_m[(b - 1) % n_bins], reach_by_bearing_m[b],
                                 reach_by_bearing_m[(b + 1) % n_bins])
                if d > reach_here + 2.0 * step:
                    out_db[jj, ii] = math.inf
                    out_visible[jj, ii] = 0
                    continue
            d_cell[m] = d
            bearing[m] = theta
            flat[m] = jj * n_cols + ii
            far_m = max(far_m, d)
            m += 1
    if m == 0:
        return 0
    sample_m = step / SAMPLES_PER_STEP
    sample_km = sample_m / 1000.0
    tail_m = max(TAIL_MIN_SAMPLES, int(math.ceil(TAIL_M / sample_m - 1e-9))) * sample_m
    # from the reach, not from this box: a cell's ray must not depend on the tile
    n_rays = max(8, int(math.ceil(2.0 * math.pi * limit_m / (RAY_SPACING * step))))
    ray_step = 2.0 * math.pi / n_rays
    ray = np.empty(m, dtype=np.int64)
    for q in range(m):
        ray[q] = int(round(bearing[q] / ray_step)) % n_rays
    key = ray.astype(np.float64) * (2.0 * limit_m + 1.0) + d_cell[:m]
    order = np.argsort(key, kind="mergesort")
    n_samples_max = int(far_m / sample_m) + 2
    hull_d = np.empty(n_samples_max, dtype=np.float64)
    hull_g = np.empty(n_samples_max, dtype=np.float64)
    sampled = 0
    q = 0
    while q < m:
        r = ray[order[q]]
        theta = r * ray_step
        ux = math.sin(theta)
        uy = math.cos(theta)
        # the ray's running summaries of its samples 1..k-1
        k = 1
        best_a = -math.inf  # max_i (h_i − h_ts)/d_i − 500 C_e d_i
        best_d = 0.0
        best_h = 0.0
        n_hull = 0
        smooth_at = 0  # the smooth-earth profile point of largest ν of the ray's previous cell
        while q < m and ray[order[q]] == r:
            c = order[q]
            d_m = d_cell[c]
            # ray samples up to TAIL_SAMPLES before the cell, then the exact path to it
            while k * sample_m < d_m - tail_m - 1e-6:
                s_m = k * sample_m
                h = lattice_bilinear(z, x_origin, y_origin, step, sx + s_m * ux, sy + s_m * uy)
                s_km = s_m / 1000.0
                a = (h - h_ts) / s_km - 500.0 * ce * s_km
                if a > best_a:
                    best_a = a
                    best_d = s_km
                    best_h = h
                g = h - 500.0 * ce * s_km * s_km
                while n_hull >= 2 and ((hull_d[n_hull - 1] - hull_d[n_hull - 2]) * (g - hull_g[n_hull - 2])
                                       - (hull_g[n_hull - 1] - hull_g[n_hull - 2]) * (s_km - hull_d[n_hull - 2])) >= 0.0:
                    n_hull -= 1
                hull_d[n_hull] = s_km
                hull_g[n_hull] = g
                n_hull += 1
                k += 1
                sampled += 1
            jj = flat[c] // n_cols
            ii = flat[c] - jj * n_cols
            d_km = d_m / 1000.0
            h_rs = z[j_first + jj, i_first + ii] + h_ue
            g_r = h_rs - 500.0 * ce * d_km * d_km
            # the tail: samples k, k+1, … before the cell, on the exact path
            ex = (x_origin + (i_first + ii) * step - sx) / d_m if d_m > 0.0 else 0.0  # sin, cos of the bearing
            ey = (y_origin - (j_first + jj) * step - sy) / d_m if d_m > 0.0 else 1.0
            tail_a = -math.inf
            tail_rim = -math.inf
            tail_nu = -math.inf
            kk = k
            while kk * sample_m < d_m - 1e-6:
                s_m = kk * sample_m
                h = lattice_bilinear(z, x_origin, y_origin, step, sx + s_m * ex, sy + s_m * ey)
                s_km = s_m / 1000.0
                a = (h - h_ts) / s_km - 500.0 * ce * s_km
                tail_a = max(tail_a, a)
                tail_rim = max(tail_rim, (h - 500.0 * ce * s_km * s_km - g_r) / (d_km - s_km))
                tail_nu = max(tail_nu, nu_at(h, s_km, d_km, h_ts, h_rs, wavelength, ce))
                kk += 1
                sampled += 1
            loss_db = 0.0
            visible = True
            if kk > 1 and d_m > 0.0:
                s_tim = 500.0 * ce * d_km + max(best_a, tail_a)
                s_tr = (h_rs - h_ts) / d_km
                if s_tim < s_tr:
                    nu = tail_nu
                    if n_hull > 0:
                        nu = max(nu, _hull_nu_max(hull_d, hull_g, n_hull, d_km, h_ts, h_rs, wavelength, ce))
                        nu = max(nu, nu_at(best_h, best_d, d_km, h_ts, h_rs, wavelength, ce))
                    loss_db = bullington_correction_db(knife_edge_loss_db(nu), d_km)
                else:
                    visible = False
                    rim = tail_rim
                    if n_hull > 0:
                        t = _tangent_index(hull_d, hull_g, n_hull, d_km, g_r)
                        rim = max(rim, (hull_g[t] - g_r) / (d_km - hull_d[t]))
                    loss_db = bullington_from_slopes_db(s_tim, rim - 500.0 * ce * d_km, d_km, h_ts, h_rs, wavelength)
                # only the excess over smooth ground: the empirical models hold that part
                smooth_db, smooth_at = smooth_bullington_from_db(d_km, h_a, h_ue, sample_km, wavelength, ce,
                                                                 smooth_at)
                loss_db = max(loss_db - smooth_db, 0.0)
            terrain_db = weight * loss_db
            if hata:
                h1 = ramped_effective_height_m(h_a, heff_at_bearing(heff_table, math.degrees(bearing[c])), d_km)
                terrain_db += hata_height_correction_db(h1, h_a, d_km)
            out_db[jj, ii] = terrain_db
            out_visible[jj, ii] = 1 if visible else 0
            q += 1
    return sampled


@njit(cache=True)
def heff_tables(x_m, y_m, h_ts, z_along, n_bins, n_samples):
    """Effective heights ``h_ts − mean z`` per site and bin from sampled terrain ``z_along``.

    ``z_along`` has shape (sites, bins, samples): the terrain 3-15 km along each bin's
    grid bearing. Returns (sites, bins) float64, metres.
    """
    n = x_m.shape[0]
    out = np.empty((n, n_bins), dtype=np.float64)
    for s in range(n):
        for b in range(n_bins):
            total = 0.0
            for k in range(n_samples):
                total += z_along[s, b, k]
            out[s, b] = h_ts[s] - total / n_samples
    return out


__all__ = ["HEFF_BINS", "RAY_SPACING", "SAMPLES_PER_STEP", "heff_at_bearing", "heff_tables", "lattice_bilinear",
           "sweep_site"]

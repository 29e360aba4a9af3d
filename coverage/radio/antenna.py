"""The 3GPP sector antenna pattern (TR 36.814 Table A.2.1.1-2, TR 38.901 Table 7.3-1).

Gains are *relative to boresight*, in dB (≤ 0)::

    A_H(φ) = −min(12 (φ / φ3dB)², Am)                      horizontal
    A_V(θ) = −min(12 ((θ − θtilt) / θ3dB)², SLAv)          vertical
    A(φ, θ) = −min(−(A_H(φ) + A_V(θ)), Am)                   combined

``Am`` is the front-to-back ratio (TR 36.814: 25 dB; TR 38.901: 30 dB),
``SLAv`` the vertical side-lobe level (20 dB in TR 36.814).

Conventions
-----------
* ``bearing_deg`` (sector to ground point) and ``azimuth_deg`` (boresight) are
  clockwise from north, degrees. ``φ`` is their difference wrapped to (−180, 180].
* ``elevation_deg`` is the angle *below the horizon* from the antenna to the
  ground point (positive = below); ``downtilt_deg`` is positive downwards, the
  total of mechanical and electrical tilt. ``θ − θtilt`` is therefore 0 on the
  tilted boresight.
* ``azimuth_deg`` NaN (or ``beamwidth_deg`` NaN or ≤ 0) = omnidirectional
  horizontally: A_H = 0 and only the vertical pattern applies.
  ``vertical_beamwidth_deg`` NaN or ≤ 0 switches the vertical pattern off;
  ``downtilt_deg`` NaN counts as 0.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def relative_gain_db(bearing_deg, elevation_deg, azimuth_deg, beamwidth_deg, downtilt_deg,
                     vertical_beamwidth_deg, front_to_back_db, sla_v_db):
    """Antenna gain towards a point relative to boresight, dB (≤ 0; numba scalar).

    Parameters
    ----------
    bearing_deg : float
        Direction from the sector to the point, degrees clockwise from north.
    elevation_deg : float
        Angle below the horizon from the antenna to the point, degrees.
    azimuth_deg : float
        Boresight direction, degrees clockwise from north; NaN = omnidirectional.
    beamwidth_deg : float
        Horizontal half-power beamwidth φ3dB, degrees.
    downtilt_deg : float
        Total downtilt θtilt, degrees (positive = down).
    vertical_beamwidth_deg : float
        Vertical half-power beamwidth θ3dB, degrees.
    front_to_back_db : float
        Maximum attenuation Am, dB (positive).
    sla_v_db : float
        Vertical side-lobe attenuation limit SLAv, dB (positive).

    Returns
    -------
    float
        Relative gain in dB, between −``front_to_back_db`` and 0.
    """
    a_h = 0.0
    if not math.isnan(azimuth_deg) and beamwidth_deg > 0.0:
        phi = (bearing_deg - azimuth_deg) % 360.0
        if phi > 180.0:
            phi -= 360.0
        a_h = -min(12.0 * (phi / beamwidth_deg) ** 2, front_to_back_db)
    a_v = 0.0
    if vertical_beamwidth_deg > 0.0:
        tilt = 0.0 if math.isnan(downtilt_deg) else downtilt_deg
        a_v = -min(12.0 * ((elevation_deg - tilt) / vertical_beamwidth_deg) ** 2, sla_v_db)
    return 0.0 - min(-(a_h + a_v), front_to_back_db)


@njit(cache=True)
def bearing_deg(dx_east_m, dy_north_m):
    """Bearing of a displacement, degrees clockwise from north in [0, 360).

    The displacement must be measured along true east and north; in a projected
    grid, correct for the meridian convergence first.
    """
    return math.degrees(math.atan2(dx_east_m, dy_north_m)) % 360.0


@njit(cache=True)
def elevation_below_horizon_deg(d2d_m, h_bs_m, h_ue_m):
    """Angle below the horizon from an antenna at ``h_bs_m`` to a point at ``h_ue_m``, degrees."""
    return math.degrees(math.atan2(h_bs_m - h_ue_m, d2d_m))


@njit(cache=True)
def _relative_gain_many(b, e, az, bw, tilt, vbw, fb, sla):
    out = np.empty(b.size)
    for i in range(b.size):
        out[i] = relative_gain_db(b[i], e[i], az[i], bw[i], tilt[i], vbw[i], fb[i], sla[i])
    return out


def relative_gain(bearing_deg, elevation_deg, azimuth_deg, beamwidth_deg=65.0, downtilt_deg=0.0,
                  vertical_beamwidth_deg=10.0, front_to_back_db=25.0, sla_v_db=20.0):
    """Vectorised :func:`relative_gain_db` (numpy broadcasting), dB.

    Defaults are TR 36.814 Table A.2.1.1-2 (φ3dB 65°, θ3dB 10°, Am 25 dB,
    SLAv 20 dB) with no downtilt.

    Returns
    -------
    numpy.ndarray or float
        float64 relative gain (a float for scalar inputs).

    Examples
    --------
    >>> relative_gain(0.0, 0.0, 0.0), relative_gain(32.5, 0.0, 0.0)
    (0.0, -3.0)
    >>> relative_gain(180.0, 0.0, 0.0)
    -25.0
    """
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (
        bearing_deg, elevation_deg, azimuth_deg, beamwidth_deg, downtilt_deg,
        vertical_beamwidth_deg, front_to_back_db, sla_v_db)))
    shape = arrays[0].shape
    out = _relative_gain_many(*(np.ascontiguousarray(a).ravel() for a in arrays)).reshape(shape)
    return float(out) if out.ndim == 0 else out


__all__ = ["bearing_deg", "elevation_below_horizon_deg", "relative_gain", "relative_gain_db"]

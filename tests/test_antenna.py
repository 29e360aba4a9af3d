"""The 3GPP sector pattern: A = −min(−(A_H + A_V), Am)."""

import math

import numpy as np
import pytest

from coverage.radio.antenna import (
    bearing_deg,
    elevation_below_horizon_deg,
    relative_gain,
    relative_gain_db,
)

# TR 36.814 Table A.2.1.1-2 parameters: φ3dB 65°, θ3dB 10°, Am 25 dB, SLAv 20 dB.
PATTERN = dict(beamwidth_deg=65.0, vertical_beamwidth_deg=10.0, front_to_back_db=25.0, sla_v_db=20.0)


def gain(bearing, elevation, azimuth, downtilt=0.0, **kw):
    p = {**PATTERN, **kw}
    return relative_gain_db(bearing, elevation, azimuth, p["beamwidth_deg"], downtilt,
                            p["vertical_beamwidth_deg"], p["front_to_back_db"], p["sla_v_db"])


def test_boresight_is_zero_db():
    assert gain(90.0, 0.0, 90.0) == 0.0
    assert gain(90.0, 6.0, 90.0, downtilt=6.0) == 0.0


def test_half_beamwidth_is_minus_three_db_both_ways_and_across_north():
    # 12 (32.5/65)² = 3 dB
    assert gain(90.0 + 32.5, 0.0, 90.0) == pytest.approx(-3.0)
    assert gain(90.0 - 32.5, 0.0, 90.0) == pytest.approx(-3.0)
    assert gain(350.0, 0.0, 22.5) == pytest.approx(-3.0)  # φ = −32.5° across north
    # 40° off: 12 (40/65)² = 4.5444 dB
    assert gain(130.0, 0.0, 90.0) == pytest.approx(-12 * (40 / 65) ** 2)


def test_front_to_back_caps_the_pattern():
    assert gain(270.0, 0.0, 90.0) == -25.0  # behind: 12 (180/65)² = 92 dB, capped at Am
    # Horizontal and vertical sums are capped too: 20 (SLAv) + 25 would be 45.
    assert gain(270.0, 60.0, 90.0) == -25.0
    assert gain(270.0, 0.0, 90.0, front_to_back_db=30.0) == -30.0


def test_downtilt_moves_the_vertical_beam():
    # 6° downtilt, point 1° below the horizon: 12 ((1 − 6)/10)² = 3 dB
    assert gain(0.0, 1.0, 0.0, downtilt=6.0) == pytest.approx(-3.0)
    # Without tilt the same point is 12 (1/10)² = 0.12 dB down.
    assert gain(0.0, 1.0, 0.0) == pytest.approx(-0.12)
    # Far above the beam: the side-lobe level SLAv = 20 dB.
    assert gain(0.0, -30.0, 0.0, downtilt=6.0) == -20.0
    # Combined: 20° off azimuth (12·(20/65)² = 1.1361) + 5° off the tilt (3 dB)
    assert gain(20.0, 11.0, 0.0, downtilt=6.0) == pytest.approx(-(12 * (20 / 65) ** 2 + 3.0))


def test_omnidirectional_when_azimuth_is_nan():
    for bearing in (0.0, 90.0, 180.0, 271.3):
        assert gain(bearing, 6.0, math.nan, downtilt=6.0) == 0.0
    # The vertical pattern still applies.
    assert gain(123.0, 1.0, math.nan, downtilt=6.0) == pytest.approx(-3.0)
    # Vertical beamwidth NaN switches the vertical pattern off.
    assert gain(123.0, 40.0, math.nan, vertical_beamwidth_deg=math.nan) == 0.0


def test_vectorised_equals_scalar_and_stays_in_range():
    rng = np.random.default_rng(1)
    b = rng.uniform(0, 360, 2000)
    e = rng.uniform(-10, 60, 2000)
    az = np.where(rng.random(2000) < 0.1, np.nan, rng.uniform(0, 360, 2000))
    vec = relative_gain(b, e, az, 65.0, 6.0, 10.0, 25.0, 20.0)
    scalar = np.array([gain(b[i], e[i], az[i], downtilt=6.0) for i in range(2000)])
    np.testing.assert_array_equal(vec, scalar)
    assert vec.max() <= 0.0 and vec.min() >= -25.0
    assert relative_gain(np.array([0.0, 32.5, 180.0]), 0.0, 0.0).tolist() == pytest.approx([0.0, -3.0, -25.0])


def test_geometry_helpers():
    assert bearing_deg(1.0, 0.0) == pytest.approx(90.0)
    assert bearing_deg(0.0, -1.0) == pytest.approx(180.0)
    assert bearing_deg(-1.0, 0.0) == pytest.approx(270.0)
    # 28.5 m drop over 1 km: atan(0.0285) = 1.6325°
    assert elevation_below_horizon_deg(1000.0, 30.0, 1.5) == pytest.approx(1.63255, abs=1e-4)

"""coverage.radio.diffraction against hand-worked ITU-R P.526-15 / P.1546-6 / Hata numbers.

Every expected value is worked out here from the published formulas (written out as
Python arithmetic, with the intermediate figures in comments), not read back from the
module under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from coverage.radio.diffraction import (
    DEFAULT_K_FACTOR,
    EARTH_RADIUS_KM,
    HEFF_MAX_M,
    HEFF_MIN_M,
    bullington_correction_db,
    bullington_profile_db,
    earth_curvature_per_km,
    hata_height_correction_db,
    knife_edge_loss_db,
    max_effective_height_m,
    ramped_effective_height_m,
    wavelength_m,
)
from coverage.radio.pathloss import (
    COST231_HATA_RURAL,
    COST231_HATA_URBAN,
    OKUMURA_HATA_RURAL,
    OKUMURA_HATA_SUBURBAN,
    OKUMURA_HATA_URBAN,
    path_loss_db,
)

C = 299_792_458.0
LAMBDA_900 = C / 900e6  # 0.33310 m
CE = 1.0 / (4.0 / 3.0 * 6371.0)  # 1.17721e-4 km⁻¹, the 4/3 Earth


def j_formula(nu: float) -> float:
    """P.526-15 eq. 31 written out."""
    return 6.9 + 20.0 * math.log10(math.sqrt((nu - 0.1) ** 2 + 1.0) + nu - 0.1)


def bullington(l_uc: float, d_km: float) -> float:
    """P.526-15 §4.5.1: L_uc + (1 − e^(−L_uc/6))(10 + 0.02 d)."""
    return l_uc + (1.0 - math.exp(-l_uc / 6.0)) * (10.0 + 0.02 * d_km)


def arrays(*points):
    d = np.array([p[0] for p in points], dtype=np.float64)
    h = np.array([p[1] for p in points], dtype=np.float64)
    return d, h


# ---------------------------------------------------------------- constants


def test_constants_and_helpers():
    assert EARTH_RADIUS_KM == 6371.0
    assert DEFAULT_K_FACTOR == pytest.approx(4.0 / 3.0)
    assert earth_curvature_per_km() == pytest.approx(CE, rel=1e-15)
    assert earth_curvature_per_km(1.0) == pytest.approx(1.0 / 6371.0, rel=1e-15)
    assert wavelength_m(900.0) == pytest.approx(LAMBDA_900, rel=1e-15)
    assert wavelength_m(3500.0) == pytest.approx(0.0856550, abs=1e-7)


# ---------------------------------------------------------------- J(ν)


def test_knife_edge_at_grazing_is_six_db():
    # ν = 0: the exact Fresnel integral gives 20 log10 2 = 6.02 dB; eq. 31 gives
    # 6.9 + 20 log10(√(0.01 + 1) − 0.1) = 6.9 + 20 log10(0.904988) = 6.0324 dB
    assert knife_edge_loss_db(0.0) == pytest.approx(6.9 + 20.0 * math.log10(math.sqrt(1.01) - 0.1), abs=1e-12)
    assert knife_edge_loss_db(0.0) == pytest.approx(20.0 * math.log10(2.0), abs=0.015)


def test_knife_edge_zero_at_and_below_minus_078():
    assert knife_edge_loss_db(-0.78) == 0.0
    assert knife_edge_loss_db(-1.0) == 0.0
    assert knife_edge_loss_db(-50.0) == 0.0
    # just above the threshold eq. 31 is itself ≈ 0: 6.9 + 20 log10(√(0.88² + 1) − 0.88) = 0.0043 dB
    assert knife_edge_loss_db(-0.7799) == pytest.approx(j_formula(-0.7799), abs=1e-12)
    assert 0.0 < knife_edge_loss_db(-0.7799) < 0.01


@pytest.mark.parametrize(("nu", "expected"), [
    # ν = 1: 6.9 + 20 log10(√(0.81 + 1) + 0.9) = 6.9 + 20 log10(2.24536) = 13.926 dB
    (1.0, 6.9 + 20.0 * math.log10(math.sqrt(0.9 ** 2 + 1.0) + 0.9)),
    # ν = 2.4: 6.9 + 20 log10(√(5.29 + 1) + 2.3) = 6.9 + 20 log10(4.80799) = 20.539 dB
    (2.4, 6.9 + 20.0 * math.log10(math.sqrt(2.3 ** 2 + 1.0) + 2.3)),
    # ν = −0.5: 6.9 + 20 log10(√(0.36 + 1) − 0.6) = 6.9 + 20 log10(0.566190) = 1.9604 dB
    (-0.5, 6.9 + 20.0 * math.log10(math.sqrt(0.6 ** 2 + 1.0) - 0.6)),
])
def test_knife_edge_formula(nu, expected):
    assert knife_edge_loss_db(nu) == pytest.approx(expected, abs=1e-12)


def test_knife_edge_values_rounded():
    assert round(knife_edge_loss_db(1.0), 2) == 13.93
    assert round(knife_edge_loss_db(2.4), 2) == 20.54


def test_knife_edge_large_nu_tends_to_13_plus_20lognu():
    # P.526 approximation for ν > 1: J ≈ 13 + 20 log10 ν; at ν = 5: 13 + 13.979 = 26.979 dB
    # vs eq. 31: 6.9 + 20 log10(√(4.9² + 1) + 4.9) = 6.9 + 20 log10(9.90101) = 26.814 dB
    assert abs(knife_edge_loss_db(5.0) - (13.0 + 20.0 * math.log10(5.0))) < 0.5
    # and the gap shrinks as ν grows, toward eq. 31's own asymptote 6.9 + 20 log10(2ν):
    # 13 − (6.9 + 20 log10 2) = 0.0794 dB
    gaps = [abs(knife_edge_loss_db(nu) - (13.0 + 20.0 * math.log10(nu))) for nu in (5.0, 10.0, 50.0, 1000.0)]
    assert gaps[0] > gaps[1] > gaps[2] > gaps[3]
    assert gaps[3] == pytest.approx(13.0 - 6.9 - 20.0 * math.log10(2.0), abs=1e-3)


def test_knife_edge_is_monotone():
    nus = np.linspace(-0.77, 20.0, 500)
    values = [knife_edge_loss_db(float(nu)) for nu in nus]
    assert np.all(np.diff(values) > 0.0)


def test_bullington_correction():
    # L_uc = 6 dB over 10 km: 6 + (1 − e⁻¹)(10.2) = 6 + 0.632121 × 10.2 = 12.4476 dB
    assert bullington_correction_db(6.0, 10.0) == pytest.approx(6.0 + (1.0 - math.exp(-1.0)) * 10.2, abs=1e-12)
    assert bullington_correction_db(0.0, 50.0) == 0.0


# ---------------------------------------------------------------- Bullington over profiles


def test_single_ridge_mid_path_is_the_knife_edge():
    # 900 MHz, d = 10 km, a 200 m ridge at 5 km, Tx 30 m, Rx 1.5 m above sea-level ground, 4/3 Earth
    d, d1, ridge, h_ts, h_rs = 10.0, 5.0, 200.0, 30.0, 1.5
    bulge = 500.0 * CE * d1 * (d - d1)  # 1.47151 m
    clearance = ridge + bulge - (h_ts * (d - d1) + h_rs * d1) / d  # 200 + 1.4715 − 15.75 = 185.7215 m
    nu = clearance * math.sqrt(0.002 * d / (LAMBDA_900 * d1 * (d - d1)))  # × 0.0490070 = 9.1017
    assert nu == pytest.approx(9.1017, abs=1e-3)
    l_uc = j_formula(nu)  # 6.9 + 20 log10(√(9.0017² + 1) + 9.0017) = 32.04 dB
    expected = bullington(l_uc, d)  # + (1 − e^(−5.34))(10.2) = 42.19 dB
    assert expected == pytest.approx(42.19, abs=0.01)
    di, hi = arrays((d1, ridge))
    loss, los = bullington_profile_db(di, hi, 1, d, h_ts, h_rs, LAMBDA_900, CE)
    assert loss == pytest.approx(expected, abs=0.01)
    assert los is False


def test_single_ridge_off_centre():
    # 900 MHz, d = 10 km, a 150 m ridge 2 km from the Tx; Tx 500 + 30 m, Rx ground 400 m + 1.5 m,
    # the ridge 650 m above sea level
    d, d1, ridge, h_ts, h_rs = 10.0, 2.0, 650.0, 530.0, 401.5
    bulge = 500.0 * CE * d1 * (d - d1)  # 500 × 1.17721e-4 × 16 = 0.94177 m
    line = (h_ts * (d - d1) + h_rs * d1) / d  # (530 × 8 + 401.5 × 2)/10 = 504.3 m
    nu = (ridge + bulge - line) * math.sqrt(0.002 * d / (LAMBDA_900 * d1 * (d - d1)))  # 146.64 × 0.0612633
    assert nu == pytest.approx(8.9837, abs=1e-3)
    expected = bullington(j_formula(nu), d)
    di, hi = arrays((d1, ridge))
    loss, los = bullington_profile_db(di, hi, 1, d, h_ts, h_rs, LAMBDA_900, CE)
    assert loss == pytest.approx(expected, abs=0.01)
    assert not los
    # lower points around the ridge change nothing (they are neither the Tx- nor the Rx-side maximum)
    di, hi = arrays((1.0, 560.0), (d1, ridge), (3.0, 600.0), (6.0, 420.0))
    loss2, los2 = bullington_profile_db(di, hi, 4, d, h_ts, h_rs, LAMBDA_900, CE)
    assert loss2 == pytest.approx(expected, abs=0.01)
    assert not los2


def test_ridge_below_the_line_of_sight():
    # the same geometry as the mid-path ridge, with the ridge lowered to ν = −0.4
    d, d1, h_ts, h_rs = 10.0, 5.0, 30.0, 1.5
    bulge = 500.0 * CE * d1 * (d - d1)
    line = (h_ts * (d - d1) + h_rs * d1) / d  # 15.75 m
    factor = math.sqrt(0.002 * d / (LAMBDA_900 * d1 * (d - d1)))  # 0.0490070 /m
    ridge = -0.4 / factor + line - bulge  # −8.1621 + 15.75 − 1.4715 = 6.1164 m
    assert ridge == pytest.approx(6.1164, abs=1e-3)
    # J(−0.4) = 6.9 + 20 log10(√1.25 − 0.5) = 2.7202 dB; + (1 − e^(−0.4534)) × 10.2 = 6.4384 dB
    expected = bullington(j_formula(-0.4), d)
    assert 0.0 < j_formula(-0.4) < 6.0
    di, hi = arrays((d1, ridge))
    loss, los = bullington_profile_db(di, hi, 1, d, h_ts, h_rs, LAMBDA_900, CE)
    assert loss == pytest.approx(expected, abs=0.01)
    assert expected == pytest.approx(6.438, abs=1e-3)
    assert los is True


def test_clear_path_has_no_loss():
    # 1 km over flat ground at sea level, Tx 30 m, Rx 1.5 m, a point every 50 m
    d, h_ts, h_rs = 1.0, 30.0, 1.5
    d_points = [0.05 * k for k in range(1, 20)]
    nus = [(0.0 + 500.0 * CE * x * (d - x) - (h_ts * (d - x) + h_rs * x) / d)
           * math.sqrt(0.002 * d / (LAMBDA_900 * x * (d - x))) for x in d_points]
    # the largest ν is next to the receiver (0.95 km: (0.0028 − 2.925 m) × 0.35546 = −1.039), all below −0.78
    assert max(nus) < -0.78
    di, hi = arrays(*[(x, 0.0) for x in d_points])
    loss, los = bullington_profile_db(di, hi, len(d_points), d, h_ts, h_rs, LAMBDA_900, CE)
    assert loss == 0.0
    assert los is True
    # and an empty profile
    assert bullington_profile_db(di, hi, 0, d, h_ts, h_rs, LAMBDA_900, CE) == (0.0, True)


def test_two_ridges_bullington_point():
    # 900 MHz, 10 km; ridge A 150 m at 3 km, ridge B 120 m at 7 km; Tx 30 m, Rx 1.5 m
    d, h_ts, h_rs = 10.0, 30.0, 1.5
    (da, ha), (db, hb) = (3.0, 150.0), (7.0, 120.0)
    bulge_a = 500.0 * CE * da * (d - da)  # 1.23607 m
    bulge_b = 500.0 * CE * db * (d - db)  # the same, 1.23607 m
    # slopes from the Tx: A (150 + 1.236 − 30)/3 = 40.412, B (120 + 1.236 − 30)/7 = 13.034 → A
    s_tim = max((ha + bulge_a - h_ts) / da, (hb + bulge_b - h_ts) / db)
    assert s_tim == pytest.approx((ha + bulge_a - h_ts) / da)
    # slopes from the Rx: A (150 + 1.236 − 1.5)/7 = 21.391, B (120 + 1.236 − 1.5)/3 = 39.912 → B
    s_rim = max((ha + bulge_a - h_rs) / (d - da), (hb + bulge_b - h_rs) / (d - db))
    assert s_rim == pytest.approx((hb + bulge_b - h_rs) / (d - db))
    # the intersection of the two lines: (1.5 − 30 + 39.912 × 10)/(40.412 + 39.912) = 4.6141 km
    d_bp = (h_rs - h_ts + s_rim * d) / (s_tim + s_rim)
    assert d_bp == pytest.approx(4.6141, abs=1e-3)
    # its height above the direct line: 30 + 40.412 × 4.6141 − (30 × 5.3859 + 1.5 × 4.6141)/10 = 199.61 m,
    # × √(0.02/(0.33310 × 4.6141 × 5.3859)) = × 0.049153
    nu_b = (h_ts + s_tim * d_bp - (h_ts * (d - d_bp) + h_rs * d_bp) / d) * math.sqrt(
        0.002 * d / (LAMBDA_900 * d_bp * (d - d_bp)))
    assert nu_b == pytest.approx(9.8117, abs=1e-3)
    expected = bullington(j_formula(nu_b), d)
    di, hi = arrays((da, ha), (db, hb))
    loss, los = bullington_profile_db(di, hi, 2, d, h_ts, h_rs, LAMBDA_900, CE)
    assert loss == pytest.approx(expected, abs=0.01)
    assert not los
    # more than either ridge alone
    for point in ((da, ha), (db, hb)):
        di1, hi1 = arrays(point)
        assert loss > bullington_profile_db(di1, hi1, 1, d, h_ts, h_rs, LAMBDA_900, CE)[0]


def test_flat_earth_short_path_clear_long_path_beyond_horizon():
    # constant ground height 100 m. Short: 1 km, Tx 30 m, Rx 1.5 m above it, a point every 50 m:
    # the ground stays outside the first Fresnel zone (max ν −1.039 < −0.78, as at sea level)
    n = 19
    di = np.arange(1, n + 1) * 0.05
    hi = np.full(n, 100.0)
    assert bullington_profile_db(di, hi, n, 1.0, 130.0, 101.5, LAMBDA_900, CE) == (0.0, True)
    # Long: 60 km, Tx 10 m, Rx 1.5 m: the radio horizons √(2 k a h) are √(2 × 8494.67 × 0.010) =
    # 13.03 km and √(2 × 8494.67 × 0.0015) = 5.05 km, 18.1 km together < 60 km: the bulge blocks
    d = 60.0
    assert math.sqrt(2 * 8494.67 * 0.010) + math.sqrt(2 * 8494.67 * 0.0015) < d
    n = 599
    di = np.arange(1, n + 1) * 0.1
    hi = np.full(n, 100.0)
    loss, los = bullington_profile_db(di, hi, n, d, 110.0, 101.5, LAMBDA_900, CE)
    assert not los
    # the bulge at the middle, 500 C_e 30 × 30 = 52.97 m, is far above the antennas: a deep loss
    assert 500.0 * CE * 30.0 * 30.0 == pytest.approx(52.97, abs=0.01)
    assert loss > 20.0


def test_flat_ground_near_the_receiver_costs_some_db():
    # a documented property of P.526 Bullington without the smooth-Earth subtraction of
    # P.1812's delta-Bullington: over flat ground a 1.5 m receiver has ground in its first
    # Fresnel zone (max ν ≈ −2 √(0.002 h_rs (h_ts − h_rs)/(d λ)) > −0.78 beyond ~1.7 km at 900 MHz)
    d = 5.0
    n = int(d / 0.05) - 1
    di = np.arange(1, n + 1) * 0.05
    hi = np.zeros(n)
    nu_approx = -2.0 * math.sqrt(0.002 * 1.5 * (30.0 - 1.5) / (d * LAMBDA_900))  # −0.453
    nu_max = max((500.0 * CE * x * (d - x) - (30.0 * (d - x) + 1.5 * x) / d)
                 * math.sqrt(0.002 * d / (LAMBDA_900 * x * (d - x))) for x in di)
    assert nu_max == pytest.approx(nu_approx, abs=0.02)
    loss, los = bullington_profile_db(di, hi, n, d, 30.0, 1.5, LAMBDA_900, CE)
    assert los
    assert loss == pytest.approx(bullington(j_formula(nu_max), d), abs=1e-9)
    assert 5.0 < loss < 6.0


# ---------------------------------------------------------------- effective height


def test_ramp_distances():
    h_a, h_eff = 30.0, 130.0
    assert ramped_effective_height_m(h_a, h_eff, 0.5) == h_a
    assert ramped_effective_height_m(h_a, h_eff, 3.0) == h_a
    # 9 km is halfway from 3 to 15 km: 30 + (130 − 30) × 6/12 = 80 m
    assert ramped_effective_height_m(h_a, h_eff, 9.0) == pytest.approx(30.0 + (130.0 - 30.0) * 6.0 / 12.0)
    assert ramped_effective_height_m(h_a, h_eff, 6.0) == pytest.approx(30.0 + 100.0 * 3.0 / 12.0)  # 55 m
    assert ramped_effective_height_m(h_a, h_eff, 15.0) == h_eff
    assert ramped_effective_height_m(h_a, h_eff, 40.0) == h_eff


def test_ramp_clamps():
    assert (HEFF_MIN_M, HEFF_MAX_M) == (30.0, 200.0)
    # a 20 m mast on flat land: h_eff = h_a = 20 m stays 20 m (not raised to eHata's 30 m)
    for d in (1.0, 9.0, 20.0):
        assert ramped_effective_height_m(20.0, 20.0, d) == 20.0
    # a 20 m mast in a valley (h_eff 8 m) is not lowered below its own 20 m
    assert ramped_effective_height_m(20.0, 8.0, 20.0) == 20.0
    # a site with h_eff 500 m: capped at 200 m (and at 9 km, 30 + 470/2 = 265 → 200)
    assert ramped_effective_height_m(30.0, 500.0, 20.0) == 200.0
    assert ramped_effective_height_m(30.0, 500.0, 9.0) == 200.0
    # below the cap the ramp is untouched: 5 km → 30 + 470 × 2/12 = 108.33 m
    assert ramped_effective_height_m(30.0, 500.0, 5.0) == pytest.approx(30.0 + 470.0 * 2.0 / 12.0)
    # a 40 m mast in a valley with h_eff 5 m: lowered to 30 m at most (9 km: 40 − 35/2 = 22.5 → 30)
    assert ramped_effective_height_m(40.0, 5.0, 20.0) == 30.0
    assert ramped_effective_height_m(40.0, 5.0, 9.0) == 30.0
    assert ramped_effective_height_m(40.0, 5.0, 5.0) == pytest.approx(40.0 - 35.0 * 2.0 / 12.0)  # 34.17 m
    # a 250 m tower keeps its 250 m even on a high hill
    assert ramped_effective_height_m(250.0, 400.0, 20.0) == 250.0


def test_max_effective_height():
    assert max_effective_height_m(30.0, 330.0) == 200.0
    assert max_effective_height_m(30.0, 80.0) == 80.0
    assert max_effective_height_m(30.0, 10.0) == 30.0  # h1 = h_a below 3 km
    assert max_effective_height_m(20.0, 10.0) == 20.0
    assert max_effective_height_m(40.0, 5.0) == 40.0
    assert max_effective_height_m(250.0, 300.0) == 250.0
    assert isinstance(max_effective_height_m(30.0, 80.0), float)
    # it bounds the ramp at every distance
    for h_a in (10.0, 20.0, 30.0, 45.0, 250.0):
        for h_eff in (-50.0, 5.0, 30.0, 90.0, 180.0, 500.0):
            top = max_effective_height_m(h_a, h_eff)
            hs = [ramped_effective_height_m(h_a, h_eff, float(d)) for d in np.linspace(0.0, 30.0, 121)]
            assert max(hs) == pytest.approx(top)


def test_hata_height_correction_by_hand():
    # doubling 30 m → 60 m at 5 km: −(13.82 + 6.55 log10 5) log10 2 = −(13.82 + 4.5782) × 0.30103 = −5.5384 dB
    expected = -(13.82 + 6.55 * math.log10(5.0)) * math.log10(2.0)
    assert hata_height_correction_db(60.0, 30.0, 5.0) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(-5.538, abs=1e-3)
    assert hata_height_correction_db(30.0, 30.0, 5.0) == 0.0
    # lowering raises the loss
    assert hata_height_correction_db(30.0, 40.0, 10.0) > 0.0


@pytest.mark.parametrize(("model", "freq"), [
    (OKUMURA_HATA_URBAN, 900.0), (OKUMURA_HATA_SUBURBAN, 900.0), (OKUMURA_HATA_RURAL, 800.0),
    (COST231_HATA_URBAN, 1800.0), (COST231_HATA_RURAL, 1900.0),
])
def test_hata_height_correction_matches_the_model(model, freq):
    h_a, h_m = 30.0, 1.5
    for d_km in (1.0, 2.0, 5.0, 10.0, 15.0, 20.0):
        for h1 in (30.0, 45.0, 80.0, 120.0, 200.0, 22.5):
            delta = path_loss_db(model, d_km * 1000.0, freq, h1, h_m) - path_loss_db(model, d_km * 1000.0, freq, h_a, h_m)
            assert hata_height_correction_db(h1, h_a, d_km) == pytest.approx(delta, abs=1e-9)
    # below the 100 m distance floor both clamp the same way
    delta = path_loss_db(model, 50.0, freq, 60.0, h_m) - path_loss_db(model, 50.0, freq, h_a, h_m)
    assert hata_height_correction_db(60.0, h_a, 0.05) == pytest.approx(delta, abs=1e-9)


def test_smooth_bullington_is_the_profile_function_on_smooth_ground():
    # the O(log n) smooth-ground loss equals bullington_profile_db over the same points at height 0,
    # line of sight and beyond the horizon, for masts of 10-60 m, devices of 1.5-5 m, 0.9 and 3.5 GHz
    from coverage.radio.diffraction import smooth_bullington_db

    ce = earth_curvature_per_km()
    worst = 0.0
    for freq in (900.0, 3500.0):
        lam = wavelength_m(freq)
        for h_a in (10.0, 30.0, 60.0):
            for h_ue in (1.5, 5.0):
                for sample_km in (0.05, 0.2):
                    for d_km in np.linspace(0.05, 60.0, 120):
                        n = int(math.ceil(d_km / sample_km - 1e-9)) - 1
                        points = np.arange(1, n + 1) * sample_km
                        expected = bullington_profile_db(points, np.zeros(max(n, 1)), n, d_km, h_a, h_ue, lam, ce)[0]
                        worst = max(worst, abs(smooth_bullington_db(d_km, h_a, h_ue, sample_km, lam, ce) - expected))
    assert worst < 1e-9
    # a 30 m mast and a 1.5 m device at 900 MHz: the flat ground in the device's first Fresnel zone
    assert smooth_bullington_db(5.0, 30.0, 1.5, 0.05, wavelength_m(900.0), ce) == pytest.approx(5.53, abs=0.01)

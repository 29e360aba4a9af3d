"""Prediction over terrain and land cover: hand-worked values, invariances, a per-pixel reference.

The synthetic DEMs and land covers are GeoTIFFs in the grid's own CRS (China Albers,
:data:`coverage.grid.CHINA_ALBERS_PROJ4`) whose cells are the run's pixels, with
``[terrain] sweep_step_m`` = the resolution: the terrain lattice is then the pixel
grid (k = 1), every lattice point is a DEM cell centre (no interpolation), and the
hand arithmetic below is exact. Sites sit on pixel centres near 113° E, 23° N.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin
from test_predict import make_sectors

from coverage.config import config_from_dict
from coverage.grid import CHINA_ALBERS_PROJ4, project_lonlat
from coverage.layout import CLASS_NODATA, RSRP_NODATA_DBM, RunLayout
from coverage.predict import predict
from coverage.radio.diffraction import (
    bullington_profile_db,
    earth_curvature_per_km,
    hata_height_correction_db,
    ramped_effective_height_m,
    smooth_bullington_db,
    wavelength_m,
)
from coverage.radio.profiles import PROFILES

RES = 100.0
H_UE = 1.5
CE = earth_curvature_per_km()  # 4/3 Earth, km⁻¹
NBIOT = PROFILES["nbiot"]
REDCAP = PROFILES["redcap"]


# ---------------------------------------------------------------- helpers


def terrain_config(step_m=RES, **tables):
    """The default configuration with ``[terrain] sweep_step_m`` (k = 1 when it is the resolution)."""
    return config_from_dict({"terrain": {"sweep_step_m": step_m}, **tables})


def pixel_of(lon, lat, res=RES):
    """(column, row) of the global pixel holding a WGS-84 point (x = (col + ½)·res, y = −(row + ½)·res)."""
    (x,), (y,) = project_lonlat([lon], [lat])
    return int(math.floor(x / res)), int(math.floor(-y / res))


def lonlat_of(col, row, res=RES):
    """WGS-84 lon/lat of a global pixel centre (a site placed there sits on a lattice point)."""
    to_lonlat = Transformer.from_crs(CHINA_ALBERS_PROJ4, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform((col + 0.5) * res, -(row + 0.5) * res)
    return float(lon), float(lat)


SITE_COL, SITE_ROW = pixel_of(113.0, 23.0)
SITE_LON, SITE_LAT = lonlat_of(SITE_COL, SITE_ROW)


def write_albers_tif(path, col0, row0, values, res=RES, dtype="float32", nodata=None):
    """A GeoTIFF whose cell (j, i) is the global pixel (row0 + j, col0 + i) of the grid at ``res``."""
    values = np.asarray(values)
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype=dtype, crs=CHINA_ALBERS_PROJ4, nodata=nodata,
                       transform=from_origin(col0 * res, -row0 * res, res, res)) as ds:
        ds.write(values.astype(dtype), 1)
    return path


def dem_around(half_px, fn, res=RES, col=SITE_COL, row=SITE_ROW):
    """(col0, row0, z) of a square DEM of 2·half_px + 1 pixels centred on pixel (col, row).

    ``fn(dc, dr)`` gives the elevation from the offsets in pixels (east, south) of each cell.
    """
    dr, dc = np.mgrid[-half_px:half_px + 1, -half_px:half_px + 1]
    return col - half_px, row - half_px, np.asarray(fn(dc, dr), dtype=np.float64) + np.zeros(dc.shape)


class Layer:
    """One raster of a run, addressed by global pixel (col, row)."""

    def __init__(self, path, res=RES):
        with rasterio.open(path) as ds:
            self.values = ds.read(1)
            self.col0 = round(ds.transform.c / res)
            self.row0 = round(-ds.transform.f / res)
            self.nodata = ds.nodata

    def at(self, col, row):
        return self.values[row - self.row0, col - self.col0]

    def window(self, col0, row0, ncols, nrows):
        """The values over a global window, nodata outside the raster."""
        out = np.full((nrows, ncols), self.nodata, dtype=self.values.dtype)
        r0, c0 = max(row0, self.row0), max(col0, self.col0)
        r1 = min(row0 + nrows, self.row0 + self.values.shape[0])
        c1 = min(col0 + ncols, self.col0 + self.values.shape[1])
        if r1 > r0 and c1 > c0:
            out[r0 - row0:r1 - row0, c0 - col0:c1 - col0] = \
                self.values[r0 - self.row0:r1 - self.row0, c0 - self.col0:c1 - self.col0]
        return out


def run(tmp_path, name, sectors, *, dem=None, clutter=None, techs=("nbiot",), res=RES, config=None, tile=256):
    """predict() synchronously into tmp_path/name; returns ({tech: (rsrp Layer, class Layer)}, report)."""
    out = tmp_path / name
    report = predict(sectors, out, techs=techs, resolution_m=res, config=config or terrain_config(res),
                     scheduler="synchronous", tile_size_px=tile, dem=dem, clutter=clutter)
    layout = RunLayout(out)
    return {tech: (Layer(layout.rsrp(tech), res), Layer(layout.coverage_class(tech), res)) for tech in techs}, report


def common(a, b, res=RES):
    """Both runs' rsrp and class on the union of their grids (nodata where a run has none)."""
    (ra, ca), (rb, cb) = a, b
    col0 = min(ra.col0, rb.col0)
    row0 = min(ra.row0, rb.row0)
    ncols = max(ra.col0 + ra.values.shape[1], rb.col0 + rb.values.shape[1]) - col0
    nrows = max(ra.row0 + ra.values.shape[0], rb.row0 + rb.values.shape[0]) - row0
    return (ra.window(col0, row0, ncols, nrows), ca.window(col0, row0, ncols, nrows),
            rb.window(col0, row0, ncols, nrows), cb.window(col0, row0, ncols, nrows), col0, row0)


def a_v_db(elevation_deg, tilt_deg=0.0, profile=NBIOT):
    """TR 36.814 vertical pattern: −min(12 ((θ − θ_tilt)/θ3dB)², SLAv)."""
    return -min(12.0 * ((elevation_deg - tilt_deg) / profile.vertical_beamwidth_deg) ** 2, profile.sla_v_db)


# ---------------------------------------------------------------- 1. constant elevation = flat earth


def sector_reaches(sectors, tech, config, setup=None):
    """{(x, y, freq, azimuth): reach_m} of prepare_sectors' arrays (flat, or over ``setup``)."""
    from coverage.predict import prepare_sectors

    a = prepare_sectors(sectors[sectors["tech"] == tech], tech, config, terrain=setup).arrays
    return {(float(x), float(y), float(f), float(np.nan_to_num(az, nan=-1.0))): float(r)
            for x, y, f, az, r in zip(a["x_m"], a["y_m"], a["freq_mhz"], a["azimuth_deg"], a["reach_m"], strict=True)}


def reach_changed(flat_reach, terrain_reach, col0, row0, shape, res=RES):
    """Pixels some sector reaches in one run but not in the other (the sets of candidates differ there)."""
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    x = (col0 + cols + 0.5) * res
    y = -(row0 + rows + 0.5) * res
    out = np.zeros(shape, dtype=bool)
    for key, r_flat in flat_reach.items():
        d = np.hypot(x - key[0], y - key[1])
        out |= (d <= r_flat) != (d <= terrain_reach[key])
    return out


def constant_dem_sectors(rows_spec):
    rows = []
    for k, (dc, dr, tech, freq, env, az, h, eirp) in enumerate(rows_spec):
        lon, lat = lonlat_of(SITE_COL + dc, SITE_ROW + dr)
        rows.append({"lon": lon, "lat": lat, "tech": tech, "freq_mhz": freq, "environment": env, "azimuth_deg": az,
                     "height_m": h, "downtilt_deg": 4.0 + k % 3, "eirp_dbm": eirp})
    return make_sectors(rows)


def test_constant_elevation_dem_is_flat_earth(tmp_path):
    from coverage.predict.terrain_sites import resolve_terrain

    # NB-IoT (Hata, 875-942.5 MHz) and RedCap (3.5 GHz TR 38.901 UMa/RMa) sectors within 3 km of each other;
    # the rural NB-IoT one at 33 dBm reaches 21 km, inside its 25.6 km radio horizon (see the next test)
    sectors = constant_dem_sectors([
        (0, 0, "nbiot", 942.5, "urban", np.nan, 30.0, 55.0),
        (25, -12, "nbiot", 900.0, "suburban", 120.0, 40.0, 55.0),
        (-20, 18, "nbiot", 875.0, "rural", 300.0, 25.0, 33.0),
        (10, 22, "nbiot", 942.5, "dense_urban", 200.0, 35.0, 55.0),
        (-15, -25, "redcap", 3500.0, "urban", 45.0, 30.0, 75.0),
        (5, 10, "redcap", 3500.0, "rural", np.nan, 35.0, 75.0),
        (30, 20, "redcap", 3500.0, "suburban", 250.0, 25.0, 75.0)])
    # 500 m everywhere the reach discs (≤ 25 km) and the effective-height rings (3-15 km) can look
    col0, row0, z = dem_around(480, lambda dc, dr: 500.0)
    dem = write_albers_tif(tmp_path / "flat500.tif", col0, row0, z)
    techs = ("nbiot", "redcap")
    config = terrain_config()
    flat, _ = run(tmp_path, "flat", sectors, techs=techs)
    hilly, report = run(tmp_path, "dem", sectors, dem=dem, techs=techs)
    assert report["terrain"]["lattice_step_m"] == RES
    setup = resolve_terrain(str(dem), None, config, RES)
    # on a constant DEM h_ts − z_rx = h_a (the elevation angles are the flat ones), h_eff = h_a + 500 − 500
    # = h_a (Δ_heff = 0), and the profile is the smooth one lifted by 500 m (L_bull − L_smooth = 0)
    for tech in techs:
        r_flat, c_flat, r_dem, c_dem, c0, r0 = common(flat[tech], hilly[tech])
        in_flat = r_flat != RSRP_NODATA_DBM
        in_dem = r_dem != RSRP_NODATA_DBM
        # the terrain reach is a bound (each 10° direction's h_eff rounded up to 8 m): a little larger;
        # where a sector is a candidate in one run only, the best server may differ: left out
        changed = reach_changed(sector_reaches(sectors, tech, config), sector_reaches(sectors, tech, config, setup),
                                c0, r0, r_flat.shape)
        both = in_flat & in_dem & ~changed
        diff = np.abs(r_dem[both].astype(np.float64) - r_flat[both])
        print(f"\n{tech}: {both.sum()} pixels compared, max |Δ| {diff.max():.2e} dB, classes equal "
              f"{np.mean(c_flat[both] == c_dem[both]):.4%}; in the flat reach only {np.sum(in_flat & ~in_dem)}, "
              f"in the terrain reach only {np.sum(in_dem & ~in_flat)} (all class 0: {np.all(c_dem[in_dem & ~in_flat] == 0)}), "
              f"candidates differ at {np.sum(changed & (in_flat | in_dem))}")
        assert both.sum() > (100_000 if tech == "nbiot" else 500)
        assert diff.max() <= 0.1
        assert np.array_equal(c_flat[both], c_dem[both])
        # every pixel in the flat reach is in the terrain reach, and what the terrain reach adds is not covered
        assert not np.any(in_flat & ~in_dem)
        assert np.all(c_dem[in_dem & ~in_flat] == 0)
    # TR 38.901's LOS weighting uses the terrain visibility: the direct line clears the Earth's bulge
    # (smooth profile from h_a to 1.5 m, every 50 m) beyond 20 km for a 25-35 m mast, far beyond every
    # RedCap reach here (< 10 km), so no RedCap pixel had to be left out of the comparison
    for h_a in (25.0, 30.0, 35.0):
        d = 20.0  # km
        n = int(d / 0.05) - 1
        _, los = bullington_profile_db(np.arange(1, n + 1) * 0.05, np.zeros(n), n, d, h_a, H_UE,
                                       wavelength_m(3500.0), CE)
        assert los
    assert max(sector_reaches(sectors, "redcap", config, setup).values()) < 10_000.0


def test_constant_elevation_dem_keeps_the_flat_radio_horizon(tmp_path):
    # a rural NB-IoT sector whose budget reaches far beyond its radio horizon (Hata open area, 55 dBm):
    # flat earth caps it at 4.12 (√25 + √1.5) km = 25.65 km (the docstring of coverage.predict)
    sectors = constant_dem_sectors([(0, 0, "nbiot", 875.0, "rural", np.nan, 25.0, 55.0)])
    col0, row0, z = dem_around(480, lambda dc, dr: 500.0)
    dem = write_albers_tif(tmp_path / "flat500.tif", col0, row0, z)
    flat, _ = run(tmp_path, "flat", sectors)
    hilly, _ = run(tmp_path, "dem", sectors, dem=dem)
    r_flat, c_flat, r_dem, c_dem, c0, r0 = common(flat["nbiot"], hilly["nbiot"])
    horizon_m = 4120.0 * (math.sqrt(25.0) + math.sqrt(H_UE))  # 25 645 m
    rows, cols = np.mgrid[0:r_flat.shape[0], 0:r_flat.shape[1]]
    d = np.hypot((c0 + cols - SITE_COL) * RES, (r0 + rows - SITE_ROW) * RES)
    assert np.isin(c_flat, (1, 2)).any() and d[np.isin(c_flat, (1, 2))].max() <= horizon_m
    beyond = np.isin(c_dem, (1, 2)) & (d > horizon_m)
    print(f"\nconstant DEM, 25 m rural mast: {beyond.sum()} pixels covered beyond the 25.65 km horizon "
          f"(out to {d[np.isin(c_dem, (1, 2))].max():.0f} m; nodata in the flat run)")
    assert not beyond.any()
    both = (r_flat != RSRP_NODATA_DBM) & (r_dem != RSRP_NODATA_DBM)
    assert np.array_equal(r_flat[both], r_dem[both])


def test_beyond_the_dem_edge_the_ground_keeps_the_edge_values(tmp_path):
    from coverage.predict.terrain_tile import tile_terrain

    # a 500 m constant DEM 20 km square around the site: smaller than the reach (~13 km) plus the
    # effective-height rings (15 km)
    col0, row0, z = dem_around(100, lambda dc, dr: 500.0)
    dem = write_albers_tif(tmp_path / "small500.tif", col0, row0, z)
    sectors = make_sectors([{"lon": SITE_LON, "lat": SITE_LAT, "downtilt_deg": 0.0}])
    setup, tech, prep = tile_inputs(str(dem), None, sectors, terrain_config())
    heff = prep.arrays["heff_m"][0]
    terrain = tile_terrain(setup, tech, SITE_COL + 50, SITE_ROW - 32, 64, prep.arrays)  # across the east edge
    print(f"\nsmall DEM: h_eff {heff.min():.1f}-{heff.max():.1f} m (h_a 30 m), reach {prep.arrays['reach_m'][0]:.0f} m, "
          f"ground beyond the edge {terrain.ground_m[:, -1].min():.0f} m, filled {terrain.filled} of {terrain.samples}")
    assert np.all(terrain.ground_m == 500.0)  # the edge's value, as documented
    assert terrain.filled > 0  # and counted as filled
    np.testing.assert_allclose(heff, 30.0)  # h_ts − mean z = 530 − 500


# ---------------------------------------------------------------- 2. a single ridge across the path


def test_single_ridge_across_the_path(tmp_path):
    # plain at 0 m, a 200 m east-west ridge one lattice row wide 5 km north of a 30 m omni NB-IoT site
    # (900 MHz, open area: its reach is the ~27 km horizon), the pixel 10 km north on the site's column
    # (due north: the sweep's ray 0, sampled on lattice points and midpoints every 50 m)
    col0, row0, z = dem_around(480, lambda dc, dr: np.where(dr == -50, 200.0, 0.0))
    dem = write_albers_tif(tmp_path / "ridge.tif", col0, row0, z)
    sectors = make_sectors([{"lon": SITE_LON, "lat": SITE_LAT, "freq_mhz": 900.0, "environment": "rural",
                             "downtilt_deg": 0.0}])
    flat, _ = run(tmp_path, "flat", sectors)
    ridge, _ = run(tmp_path, "ridge", sectors, dem=dem)
    pixel = (SITE_COL, SITE_ROW - 100)
    loss = float(flat["nbiot"][0].at(*pixel)) - float(ridge["nbiot"][0].at(*pixel))
    # by hand, P.526-15: the knife edge at d1 = 5 km of the d = 10 km path, h_ts = 0 + 30 m, h_rs = 0 + 1.5 m,
    # with the 4/3 Earth's bulge 500 C_e d1 (d − d1):
    # ν = (200 + 500 C_e·25 − (30·5 + 1.5·5)/10) · √(0.002·10 / (λ·5·5)) = 185.72 × 0.04901 = 9.10
    d, d1, lam = 10.0, 5.0, wavelength_m(900.0)
    nu = (200.0 + 500.0 * CE * d1 * (d - d1) - (30.0 * (d - d1) + H_UE * d1) / d) * math.sqrt(
        0.002 * d / (lam * d1 * (d - d1)))
    j = 6.9 + 20.0 * math.log10(math.sqrt((nu - 0.1) ** 2 + 1.0) + nu - 0.1)  # J(ν) = 32.04 dB
    bullington = j + (1.0 - math.exp(-j / 6.0)) * (10.0 + 0.02 * d)  # 42.19 dB
    # less the same 10 km path over smooth ground, every half lattice step (50 m): line of sight, its
    # largest ν is the flat point 50 m before the 1.5 m device (first Fresnel zone): 8.08 dB
    n = int(round(d / 0.05)) - 1
    smooth, smooth_los = bullington_profile_db(np.arange(1, n + 1) * 0.05, np.zeros(n), n, d, 30.0, H_UE, lam, CE)
    assert smooth_los
    assert smooth == pytest.approx(smooth_bullington_db(d, 30.0, H_UE, 0.05, lam, CE), abs=1e-9)
    # Δ_heff: the ridge only raises the mean terrain (h_eff ≤ h_a), and eHata's clamp keeps h1 ≥ min(h_a, 30 m)
    # = 30 m = h_a: no change; the vertical pattern sees the same 28.5 m drop over 10 km in both runs
    assert ramped_effective_height_m(30.0, 30.0 - 200.0 / 13.0, d) == 30.0
    by_hand = bullington - smooth  # 42.19 − 8.08 = 34.10 dB
    print(f"\nridge: flat − terrain {loss:.3f} dB, by hand {by_hand:.3f} dB (ν {nu:.3f}, J {j:.2f}, "
          f"Bullington {bullington:.2f}, smooth {smooth:.2f})")
    assert by_hand == pytest.approx(34.10, abs=0.01)
    assert loss == pytest.approx(by_hand, abs=0.5)
    assert loss == pytest.approx(by_hand, abs=2.0 / 128.0)  # in fact exact, but for the 1/128 dB rounding
    # in front of the ridge (4 km north) nothing changes: the 200 m ridge is behind the device
    assert ridge["nbiot"][0].at(SITE_COL, SITE_ROW - 40) == flat["nbiot"][0].at(SITE_COL, SITE_ROW - 40)
    # and south of the site (the ridge is north) the terrain run is the flat one
    south = [(SITE_COL + dc, SITE_ROW + dr) for dc in range(-60, 61, 20) for dr in range(5, 200, 13)]
    assert all(ridge["nbiot"][0].at(*p) == flat["nbiot"][0].at(*p) for p in south)


# ---------------------------------------------------------------- 3. a plateau


def plateau_dem(tmp_path, height_m=300.0, half_px=10, name="plateau.tif"):
    """A (2·half_px + 1)-pixel square plateau centred on the site (2.1 km for 10) on a plain at 0 m."""
    col0, row0, z = dem_around(
        520, lambda dc, dr: np.where((np.abs(dc) <= half_px) & (np.abs(dr) <= half_px), height_m, 0.0))
    return write_albers_tif(tmp_path / name, col0, row0, z), z


def test_plateau_site_gains_the_effective_height(tmp_path):
    # a 50 m omni NB-IoT mast (900 MHz urban Hata), downtilt 0, on a 300 m plateau 2.1 km square vs on the plain.
    # (a 30 m mast on this plateau does not see the plain 9 km out: the line from 330 m to 1.5 m passes
    # 293.5 m over the plateau's edge 1 km out, below its 300 m; 50 m clears it by 11 m)
    h_a = 50.0
    dem, z = plateau_dem(tmp_path)
    plain = write_albers_tif(tmp_path / "plain.tif", SITE_COL - 520, SITE_ROW - 520, np.zeros_like(z))
    sectors = make_sectors([{"lon": SITE_LON, "lat": SITE_LAT, "freq_mhz": 900.0, "height_m": h_a,
                             "environment": "urban", "downtilt_deg": 0.0, "eirp_dbm": 50.0}])
    on_plateau, _ = run(tmp_path, "plateau", sectors, dem=dem)
    on_plain, _ = run(tmp_path, "plain", sectors, dem=plain)
    r_hi, c_hi, r_lo, c_lo, _, _ = common(on_plateau["nbiot"], on_plain["nbiot"])
    covered_hi = int(np.isin(c_hi, (1, 2)).sum())
    covered_lo = int(np.isin(c_lo, (1, 2)).sum())
    pixel = (SITE_COL + 90, SITE_ROW)  # 9 km due east, on the plain
    gain = float(on_plateau["nbiot"][0].at(*pixel)) - float(on_plain["nbiot"][0].at(*pixel))
    # by hand: h_eff = h_a + 300 − (mean terrain 3-15 km east = 0) = 350 m; the P.1546 ramp at 9 km:
    # h1 = 50 + (350 − 50)(9 − 3)/12 = 200 m (eHata's upper clamp, max(h_a, 200 m), just reached)
    d = 9.0
    h1 = h_a + (h_a + 300.0 - h_a) * (d - 3.0) / 12.0
    assert h1 == 200.0 == ramped_effective_height_m(h_a, 350.0, d)
    delta_heff = hata_height_correction_db(h1, h_a, d)  # −(13.82 + 6.55 log 9) log(200/50) = −12.08 dB
    assert delta_heff == pytest.approx(-(13.82 + 6.55 * math.log10(9.0)) * math.log10(4.0), abs=1e-12)
    # the vertical pattern (θ3dB 10°, tilt 0): the device is 348.5 m below the antenna on the plateau, 48.5 m
    # below it on the plain
    a_v_hi = a_v_db(math.degrees(math.atan2(h_a + 300.0 - H_UE, 9000.0)))  # −0.59 dB
    a_v_lo = a_v_db(math.degrees(math.atan2(h_a - H_UE, 9000.0)))  # −0.003 dB
    # diffraction: the profile (300 m to 1.0 km, 150 m at 1.05 km, 0 beyond) under the line from 350 m to
    # 1.5 m: line of sight, and Bullington's largest ν below −0.78 (J = 0): no terrain loss; the smooth
    # ground's own loss is subtracted only down to 0
    n = int(round(d / 0.05)) - 1
    d_i = np.arange(1, n + 1) * 0.05
    h_i = np.interp(d_i, [0.0, 1.0, 1.1, d], [300.0, 300.0, 0.0, 0.0])
    diffraction, los = bullington_profile_db(d_i, h_i, n, d, h_a + 300.0, H_UE, wavelength_m(900.0), CE)
    assert los and diffraction == 0.0
    by_hand = -delta_heff + (a_v_hi - a_v_lo) - 0.0  # 12.08 − 0.59 = 11.49 dB
    print(f"\nplateau: covered {covered_hi} px vs {covered_lo} on the plain; gain at 9 km {gain:.3f} dB, "
          f"by hand {by_hand:.3f} dB (Δ_heff {delta_heff:.3f}, A_V {a_v_hi:.3f} vs {a_v_lo:.3f})")
    assert gain == pytest.approx(by_hand, abs=0.5)
    assert gain == pytest.approx(by_hand, abs=2.0 / 128.0)
    assert covered_hi > 1.2 * covered_lo
    # the plain with the flat-ground DEM is the flat-earth run (h_eff = h_a, no diffraction)
    flat, _ = run(tmp_path, "flat", sectors)
    r_flat, _, r_plain, _, _, _ = common(flat["nbiot"], on_plain["nbiot"])
    both = (r_flat != RSRP_NODATA_DBM) & (r_plain != RSRP_NODATA_DBM)
    assert both.sum() > 20_000
    assert np.array_equal(r_flat[both], r_plain[both])
    assert np.all(both[r_flat != RSRP_NODATA_DBM])


# ---------------------------------------------------------------- 4. a mountain's shadow


def test_mountain_shadow(tmp_path):
    # a 400 m Gaussian hill (σ 600 m, cut to 0 beyond 2.5 km of its top) 3 km east of a 30 m NB-IoT
    # omni site on a plain at 0 m (urban Hata, 942.5 MHz, tilt 0)
    def hill(dc, dr):
        r2 = ((dc - 30) ** 2 + dr ** 2) * RES**2
        return np.where(r2 <= 2500.0**2, 400.0 * np.exp(-r2 / (2 * 600.0**2)), 0.0)

    col0, row0, z = dem_around(400, hill)
    dem = write_albers_tif(tmp_path / "hill.tif", col0, row0, z)
    sectors = make_sectors([{"lon": SITE_LON, "lat": SITE_LAT, "downtilt_deg": 0.0}])
    flat, _ = run(tmp_path, "flat", sectors)
    hilly, _ = run(tmp_path, "hill", sectors, dem=dem)
    r_flat, c_flat, r_dem, c_dem, c0, r0 = common(flat["nbiot"], hilly["nbiot"])
    rows, cols = np.mgrid[0:r_flat.shape[0], 0:r_flat.shape[1]]
    dc, dr = c0 + cols - SITE_COL, r0 + rows - SITE_ROW
    d_km = np.hypot(dc, dr) * RES / 1000.0
    both = (r_flat != RSRP_NODATA_DBM) & (r_dem != RSRP_NODATA_DBM)
    # the shadow: within 3° of due east, 4.5-9 km out (the hill's top at 3 km; flat-covered pixels)
    bearing = np.degrees(np.arctan2(dc, -dr))
    shadow = both & (np.abs(bearing - 90.0) <= 3.0) & (d_km >= 4.5) & (d_km <= 9.0) & np.isin(c_flat, (1, 2))
    loss = r_flat[shadow].astype(np.float64) - r_dem[shadow]
    # by hand for the pixel 6 km due east, as a first look: the knife edge at the top, d1 = 3 km, d = 6 km:
    # ν = (400 + 500 C_e·9 − (30·3 + 1.5·3)/6) · √(0.002·6/(λ·3·3)) = 384.8 × 0.0634 = 24.4, J = 40.8 dB
    lam = wavelength_m(942.5)
    nu = (400.0 + 500.0 * CE * 9.0 - (30.0 * 3.0 + H_UE * 3.0) / 6.0) * math.sqrt(0.002 * 6.0 / (lam * 9.0))
    j = 6.9 + 20.0 * math.log10(math.sqrt((nu - 0.1) ** 2 + 1.0) + nu - 0.1)
    knife = j + (1.0 - math.exp(-j / 6.0)) * (10.0 + 0.02 * 6.0)  # 50.9 dB
    # Bullington proper takes the tangents from both ends to the hill's flanks (their crossing is above
    # the top): the profile along the row every 50 m (the lattice points and the midpoints between them),
    # less the smooth-ground loss of the same 6 km path
    n = 119
    x_km = np.arange(1, n + 1) * 0.05
    lattice_z = hill(np.arange(0, 61), 0)
    profile = np.interp(x_km, np.arange(0, 61) * 0.1, lattice_z)
    bullington, los = bullington_profile_db(x_km, profile, n, 6.0, 30.0, H_UE, lam, CE)
    smooth = smooth_bullington_db(6.0, 30.0, H_UE, 0.05, lam, CE)
    assert not los and bullington > knife
    by_hand = bullington - smooth
    at_6km = float(flat["nbiot"][0].at(SITE_COL + 60, SITE_ROW)) - float(hilly["nbiot"][0].at(SITE_COL + 60, SITE_ROW))
    # west: every pixel with dc ≤ 0 has a flat profile (the hill is ≥ 0.5 km east of the site) and
    # h_eff = h_a in the bins looking west (the mean terrain 3-15 km is 0 there): the flat-earth value
    west = both & (dc <= 0)
    west_diff = np.abs(r_dem[west].astype(np.float64) - r_flat[west])
    print(f"\nshadow: {shadow.sum()} pixels east, loss {loss.min():.1f}-{loss.max():.1f} dB (median "
          f"{np.median(loss):.1f}), class kept {np.mean(c_dem[shadow] == c_flat[shadow]):.1%}; 6 km east "
          f"{at_6km:.2f} dB, by hand {by_hand:.2f} (Bullington {bullington:.2f} − smooth {smooth:.2f}; the top's "
          f"knife edge alone {knife:.2f}); "
          f"west {west.sum()} pixels max |Δ| {west_diff.max():.2e} dB")
    assert shadow.sum() > 50
    assert loss.min() >= 10.0
    assert np.all(c_dem[shadow] < c_flat[shadow])
    assert at_6km == pytest.approx(by_hand, abs=0.5)
    assert west.sum() > 20_000
    assert west_diff.max() <= 0.1
    assert np.array_equal(c_dem[west], c_flat[west])
    # the site's effective heights: h_ts − mean z 3-15 km = 30 m in every bin not looking across the hill,
    # and never above h_a (eHata's clamp at min(h_a, 30 m) keeps h1 = 30 m even east of it)
    from coverage.predict import prepare_sectors
    from coverage.predict.terrain_sites import resolve_terrain

    setup = resolve_terrain(str(dem), None, terrain_config(), RES)
    heff = prepare_sectors(sectors, "nbiot", terrain_config(), terrain=setup).arrays["heff_m"][0]
    assert np.all(heff[18:] == 30.0) and heff[0] == 30.0  # 180°-350° and 0° (grid bearings)
    assert heff.min() < 30.0 - 10.0 and heff.max() == 30.0


# ---------------------------------------------------------------- rough terrain and land cover


ROUGH_HALF_PX = 420  # 84 km square: every reach (≤ 25 km at 46 dBm) plus the 15 km effective-height rings


def rough_terrain(half_px=ROUGH_HALF_PX, seed=11):
    """Smoothed noise, 0-~900 m: hills a few km across (a synthetic mountain range)."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.normal(size=(2 * half_px + 1, 2 * half_px + 1)), 12.0)
    field = (field - field.min()) / (field.max() - field.min())
    return 900.0 * field**1.5


def worldcover_classes(half_px=ROUGH_HALF_PX, seed=5):
    """Patches of ESA WorldCover codes: 50 built-up, 10 trees, 40 cropland, 80 water."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    field = gaussian_filter(rng.normal(size=(2 * half_px + 1, 2 * half_px + 1)), 6.0)
    q = np.quantile(field, [0.25, 0.55, 0.9])
    return np.select([field < q[0], field < q[1], field < q[2]], [50, 10, 40], 80).astype(np.uint8)


@pytest.fixture(scope="module")
def rough(tmp_path_factory):
    """(dem path, land-cover path, sectors): ~30 NB-IoT sectors of two operators on rough terrain."""
    folder = tmp_path_factory.mktemp("rough")
    col0, row0 = SITE_COL - ROUGH_HALF_PX, SITE_ROW - ROUGH_HALF_PX
    dem = write_albers_tif(folder / "rough.tif", col0, row0, rough_terrain())
    landcover = write_albers_tif(folder / "worldcover.tif", col0, row0, worldcover_classes(), dtype="uint8")
    rng = np.random.default_rng(3)
    rows = []
    for site in range(10):
        dc, dr = (int(v) for v in rng.integers(-60, 61, 2))
        lon, lat = lonlat_of(SITE_COL + dc, SITE_ROW + dr)
        env = ["dense_urban", "urban", "suburban"][site % 3]
        first = float(rng.uniform(0, 120))
        for k in range(3):
            rows.append({"lon": lon, "lat": lat, "operator": "CT" if site % 2 else "CM", "environment": env,
                         "azimuth_deg": (first + 120.0 * k) % 360.0, "downtilt_deg": float(rng.uniform(2, 8)),
                         "height_m": float(rng.choice([20.0, 30.0, 45.0])), "eirp_dbm": 46.0,
                         "freq_mhz": float(rng.choice([900.0, 942.5, 1850.0]))})
    return dem, landcover, make_sectors(rows)


def tile_inputs(dem, landcover, sectors, config, operator=None, res=RES):
    """What coverage.predict.tiles._tile_task gets: (setup, tech terrain, prepared nbiot sectors)."""
    from coverage.predict import prepare_sectors
    from coverage.predict.terrain_sites import resolve_terrain, tech_terrain

    setup = resolve_terrain(dem, landcover, config, res)
    frame = sectors if operator is None else sectors[sectors["operator"] == operator]
    prep = prepare_sectors(frame.reset_index(drop=True), "nbiot", config, terrain=setup)
    return setup, tech_terrain(setup, config.profiles["nbiot"]), prep


def predict_one_tile(setup, tech, arrays, col0, row0, size_px, block_px=None):
    """_tile_task's terrain branch for one operator's sectors: (rsrp, class, evaluations)."""
    from coverage.predict.terrain_tile import predict_tile_terrain, tile_terrain

    terrain = tile_terrain(setup, tech, col0, row0, size_px, arrays)
    rsrp, cls, evaluations, _ = predict_tile_terrain(arrays, setup, tech, terrain, col0, row0, size_px, H_UE,
                                                     block_px=block_px)
    return rsrp, cls, evaluations


# ---------------------------------------------------------------- 5. pruning changes nothing


def test_pruning_changes_no_pixel_over_terrain_and_land_cover(rough):
    from coverage.predict.kernel import PRUNE_BLOCK_PX

    dem, landcover, sectors = rough
    setup, tech, prep = tile_inputs(dem, landcover, sectors, terrain_config(), operator="CT")
    assert setup.lattice_k == 1 and setup.class_table.name == "worldcover"
    assert prep.n == 15
    col0, row0, size = SITE_COL - 128, SITE_ROW - 128, 256  # the 25.6 km square around the sites
    exact = predict_one_tile(setup, tech, prep.arrays, col0, row0, size, block_px=0)
    pruned = predict_one_tile(setup, tech, prep.arrays, col0, row0, size)
    finer = predict_one_tile(setup, tech, prep.arrays, col0, row0, size, block_px=4)
    print(f"\npruning: {exact[2]} evaluations without, {pruned[2]} with {PRUNE_BLOCK_PX}-px blocks, "
          f"{finer[2]} with 4-px blocks; covered {np.isin(exact[1], (1, 2)).mean():.1%} of the tile, "
          f"classes {np.unique(exact[1]).tolist()}")
    assert np.isin(exact[1], (1, 2)).mean() > 0.2 and (exact[1] == 0).any()
    for rsrp, cls, _ in (pruned, finer):
        assert np.array_equal(rsrp, exact[0])
        assert np.array_equal(cls, exact[1])
    assert pruned[2] < exact[2] and finer[2] < exact[2]
    # all 15 sectors together (both operators' were split by _tile_task): the same with the CM ones
    setup, tech, prep = tile_inputs(dem, landcover, sectors, terrain_config(), operator="CM")
    exact = predict_one_tile(setup, tech, prep.arrays, col0, row0, size, block_px=0)
    pruned = predict_one_tile(setup, tech, prep.arrays, col0, row0, size)
    assert np.array_equal(pruned[0], exact[0]) and np.array_equal(pruned[1], exact[1])


# ---------------------------------------------------------------- 6. tile size changes no pixel


def test_tile_size_changes_no_pixel_over_terrain_and_land_cover(rough, tmp_path):
    dem, landcover, sectors = rough
    # 200 m pixels on a 400 m lattice (k = 2: pixels between lattice points are bilinear), the 100 m DEM
    # and land cover read between their cells
    res = 200.0
    config = terrain_config(400.0)
    layouts = {}
    for size in (128, 512):
        report = predict(sectors, tmp_path / f"t{size}", techs=("nbiot",), resolution_m=res, config=config,
                         scheduler="synchronous", tile_size_px=size, dem=dem, clutter=landcover)
        assert report["terrain"]["lattice_step_m"] == 400.0
        layouts[size] = (RunLayout(tmp_path / f"t{size}"), report)
    names = [layer[kind] for layer in layouts[128][1]["techs"]["nbiot"]["layers"] for kind in ("rsrp", "class")]
    assert len(names) == 6  # CT, CM and the combined layer
    compared = 0
    for name in names:
        small = Layer(layouts[128][0].raster_dir / name, res)
        large = Layer(layouts[512][0].raster_dir / name, res)
        window = large.window(small.col0, small.row0, small.values.shape[1], small.values.shape[0])
        assert np.array_equal(window.view(np.uint8), small.values.view(np.uint8)), name  # bit for bit
        # and nothing of the larger grid outside the smaller one
        outside = large.values.copy()
        outside[small.row0 - large.row0:small.row0 - large.row0 + small.values.shape[0],
                small.col0 - large.col0:small.col0 - large.col0 + small.values.shape[1]] = large.nodata
        assert np.all(outside == large.nodata)
        compared += int(np.sum(small.values != small.nodata))
    print(f"\ntile size: {compared} pixels of {len(names)} layers bit-identical with 128 and 512 px tiles")
    assert compared > 100_000
    assert len(np.unique(Layer(layouts[128][0].raster_dir / names[-1], res).values)) == 4  # 0, 1, 2, nodata


# ---------------------------------------------------------------- 7. the reach leaves no pixel out


def doubled(arrays):
    """The sectors with every reach (the sector's, the site's and the site's per direction) doubled."""
    out = dict(arrays)
    for name in ("reach_m", "site_reach_m", "site_reach_by_bearing_m"):
        if name in out:
            out[name] = 2.0 * out[name]
    return out


def reach_leaves_nothing_out(setup, tech, arrays, col0, row0, size):
    """Normal vs doubled reach on one tile.

    Returns (pixels covered with the doubled reach; of those, how many are out of the normal reach, not
    covered, of another class with it; max |Δ rsrp| over them; the share within 0.1 dB; max |Δ rsrp| where
    the class differs). The sweep's rays depend on the reach (neighbouring rays 0.35 lattice steps apart
    at its end), so the doubled reach changes the terrain term by the sweep's own approximation (tenths
    of a dB, ~1 dB at worst), which can move a pixel within that of a threshold across it.
    """
    normal = predict_one_tile(setup, tech, arrays, col0, row0, size)
    twice = predict_one_tile(setup, tech, doubled(arrays), col0, row0, size)
    covered = np.isin(twice[1], (1, 2))
    out_of_reach = covered & (normal[1] == CLASS_NODATA)
    not_covered = covered & (normal[1] == 0)
    other_class = covered & (normal[1] != twice[1])
    in_reach = covered & ~out_of_reach
    delta = np.abs(normal[0].astype(np.float64) - twice[0])
    return (int(covered.sum()), int(out_of_reach.sum()), int(not_covered.sum()), int(other_class.sum()),
            float(delta[in_reach].max()), float(np.mean(delta[in_reach] <= 0.1)),
            float(delta[other_class].max()) if other_class.any() else 0.0)


def test_the_reach_leaves_no_pixel_out(rough, tmp_path):
    dem, landcover, sectors = rough
    config = terrain_config()
    # the rough terrain with land cover, every sector (one operator at a time, as _tile_task)
    for operator, (col0, row0) in (("CT", (SITE_COL - 128, SITE_ROW - 128)), ("CM", (SITE_COL + 40, SITE_ROW - 300))):
        setup, tech, prep = tile_inputs(dem, landcover, sectors, config, operator=operator)
        figures = reach_leaves_nothing_out(setup, tech, prep.arrays, col0, row0, 256)
        print(f"\nrough {operator} tile ({col0}, {row0}): {figures[0]} covered with the doubled reach; "
              f"of them {figures[1]} out of the normal reach, {figures[2]} not covered, {figures[3]} another "
              f"class (Δ ≤ {figures[6]:.2f} dB there); max |Δ| {figures[4]:.3f} dB, {figures[5]:.2%} within 0.1 dB")
        assert figures[0] > 10_000
        assert figures[1] == 0  # the pixels a sector covers are all within its reach
        # the rest is the sweep's ray noise at a threshold: few pixels, each within the noise of it
        assert figures[3] <= 0.002 * figures[0] and figures[6] <= 1.5
        assert figures[4] <= 2.0 and figures[5] >= 0.95
    # a plateau site reaches farther than the same site on the plain, and leaves nothing out either
    h_a = 50.0
    dem_plateau, z = plateau_dem(tmp_path)
    dem_plain = write_albers_tif(tmp_path / "plain.tif", SITE_COL - 520, SITE_ROW - 520, np.zeros_like(z))
    one = make_sectors([{"lon": SITE_LON, "lat": SITE_LAT, "freq_mhz": 900.0, "height_m": h_a, "environment": "urban",
                         "downtilt_deg": 0.0, "eirp_dbm": 46.0}])
    setup, tech, prep = tile_inputs(str(dem_plateau), None, one, config)
    _, _, prep_plain = tile_inputs(str(dem_plain), None, one, config)
    reach, reach_plain = float(prep.arrays["reach_m"][0]), float(prep_plain.arrays["reach_m"][0])
    print(f"\nplateau reach {reach:.0f} m, on the plain {reach_plain:.0f} m")
    assert reach > 1.5 * reach_plain
    size = 256  # the tile north-east of the site, out to 25.6 km
    figures = reach_leaves_nothing_out(setup, tech, prep.arrays, SITE_COL, SITE_ROW - size + 1, size)
    print(f"plateau tile: {figures[0]} covered with the doubled reach; of them {figures[1]} out of the normal "
          f"reach, {figures[2]} not covered, {figures[3]} another class; max |Δ| {figures[4]:.3f} dB")
    assert figures[0] > 10_000
    assert figures[1] == 0
    assert figures[3] <= 0.002 * figures[0] and figures[6] <= 1.5


# ---------------------------------------------------------------- 8. land cover


def test_land_cover_selects_the_receiver_environment(tmp_path):
    from coverage.radio.clutter_loss import foliage_excess_db

    # WorldCover codes around the site: cropland (40) everywhere, trees (10) to the north-east, built-up
    # (50) to the south, water (80) in a strip to the west; no DEM (flat ground)
    half = 300

    def classes(dc, dr):
        out = np.full(dc.shape, 40)
        out[(dc > 20) & (dr < -20)] = 10
        out[dr > 20] = 50
        out[(dc < -40) & (np.abs(dr) <= 20)] = 80
        return out

    col0, row0, codes = dem_around(half, classes)
    landcover = write_albers_tif(tmp_path / "worldcover.tif", col0, row0, codes, dtype="uint8")
    freq = NBIOT.freq_mhz  # the foliage term is taken at the technology's default band
    lf = math.log10(freq)

    def sector(env):
        return make_sectors([{"lon": SITE_LON, "lat": SITE_LAT, "freq_mhz": freq, "environment": env}])

    runs = {}
    for name, env, clutter in (("urban_lc", "urban", landcover), ("dense_lc", "dense_urban", landcover),
                               ("urban", "urban", None), ("rural", "rural", None), ("dense", "dense_urban", None)):
        runs[name], _ = run(tmp_path, name, sector(env), clutter=clutter)
    window = (SITE_COL - half, SITE_ROW - half, 2 * half + 1, 2 * half + 1)
    rsrp = {k: v["nbiot"][0].window(*window).astype(np.float64) for k, v in runs.items()}
    cls = {k: v["nbiot"][1].window(*window) for k, v in runs.items()}
    in_all = np.logical_and.reduce([r != RSRP_NODATA_DBM for r in rsrp.values()])
    figures = {}

    def check(code, name, expected_rsrp, expected_cls, tol=1.0 / 128):
        here = in_all & (codes == code)
        diff = np.abs(rsrp[name][here] - expected_rsrp[here])
        figures[(code, name)] = (int(here.sum()), float(diff.max()))
        assert here.sum() > 500
        assert diff.max() <= tol
        assert np.array_equal(cls[name][here], expected_cls[here])

    # cropland and water → rural: the urban sector gets Hata's open-area variant there, i.e. the flat run
    # of the same sector declared rural, L_rural = L_urban − 4.78 (log f)² + 18.33 log f − 40.94, and the
    # rural thresholds (the flat rural run's classes)
    open_area_db = 4.78 * lf**2 - 18.33 * lf + 40.94  # 28.71 dB at 942.5 MHz
    for code in (40, 80):
        check(code, "urban_lc", rsrp["rural"], cls["rural"])
        check(code, "urban_lc", rsrp["urban"] + open_area_db, cls["rural"], tol=0.02)
    # trees → rural plus the P.2108 foliage excess at the device (4.9 dB at 942.5 MHz, 1.5 m)
    foliage = float(foliage_excess_db(freq, H_UE))
    assert 4.0 < foliage < 6.0
    rural = PROFILES["nbiot"].thresholds_dbm("rural")
    by_rural = np.where(rsrp["rural"] - foliage >= rural["deep"], 2,
                        np.where(rsrp["rural"] - foliage >= rural["outdoor"], 1, 0))
    check(10, "urban_lc", rsrp["rural"] - foliage, by_rural, tol=0.02)
    # built-up: the serving sector's own environment when dense urban or urban
    check(50, "urban_lc", rsrp["urban"], cls["urban"], tol=0.0)
    check(50, "dense_lc", rsrp["dense"], cls["dense"], tol=0.0)
    check(40, "dense_lc", rsrp["rural"], cls["rural"])
    print("\nland cover: " + "; ".join(f"class {code} {name}: {n} px, max |Δ| {d:.4f} dB"
                                       for (code, name), (n, d) in figures.items())
          + f"; open-area correction {open_area_db:.2f} dB, foliage {foliage:.2f} dB")
    # the land-cover reach covers every environment a pixel can have (here the rural one's, ~27 km)
    assert np.sum(rsrp["urban_lc"] != RSRP_NODATA_DBM) > 4 * np.sum(rsrp["urban"] != RSRP_NODATA_DBM)


# ---------------------------------------------------------------- 9. the fast path vs a per-pixel reference


def reference_window(setup, arrays, col0, row0, ncols, nrows, res=RES):
    """Best-server rsrp and class over a window, every pixel × sector in reach from scratch.

    Per pixel and sector: the profile on the exact path every half pixel (tests/test_terrain_sweep.py's
    ``reference_site``: ``bullington_profile_db`` less the same over smooth ground, × the weight, + the
    Hata effective-height term from the sector's own h_eff table), the Hata/COST-231 loss
    (``path_loss``), the TR 36.814 pattern at the true elevation angle (antenna h_ts above sea level to the
    device 1.5 m above the pixel's ground) and the grid bearing. Hata-family sectors only (no land cover).
    """
    from test_terrain_sweep import reference_site

    from coverage.radio import pathloss as pl
    from coverage.radio.antenna import relative_gain

    step = setup.lattice_k * res
    assert setup.lattice_k == 1
    x_m, y_m, reach = arrays["x_m"], arrays["y_m"], arrays["reach_m"]
    margin = 4
    gi0 = int(math.floor(min(x_m.min() / res, col0))) - margin
    gi1 = int(math.ceil(max(x_m.max() / res, col0 + ncols))) + margin
    gj0 = int(math.floor(min(-y_m.max() / res, row0))) - margin
    gj1 = int(math.ceil(max(-y_m.min() / res, row0 + nrows))) + margin
    x_origin, y_origin = gi0 * step + 0.5 * res, -(gj0 * step + 0.5 * res)
    z32, _ = setup.dem.lattice(x_origin, y_origin, step, gi1 - gi0 + 1, gj1 - gj0 + 1)
    z = np.where(np.isfinite(z32), z32, 0.0).astype(np.float64)
    i_first, j_first = col0 - gi0, row0 - gj0
    i_last, j_last = i_first + ncols - 1, j_first + nrows - 1
    z_rx = z[j_first:j_last + 1, i_first:i_last + 1]
    px = x_origin + np.arange(i_first, i_last + 1) * step
    py = y_origin - np.arange(j_first, j_last + 1) * step
    px, py = np.meshgrid(px, py)
    best = np.full((nrows, ncols), -np.inf)
    server = np.full((nrows, ncols), -1)
    tables = {}
    for s in range(x_m.size):
        assert pl.OKUMURA_HATA_URBAN <= arrays["model_id"][s] <= pl.COST231_HATA_RURAL
        key = (x_m[s], y_m[s], arrays["h_ts_m"][s], arrays["freq_mhz"][s], tuple(arrays["heff_m"][s]))
        if key not in tables:
            out = np.zeros((nrows, ncols))
            vis = np.zeros((nrows, ncols), np.uint8)
            reference_site(z, x_origin, y_origin, step, x_m[s], y_m[s], arrays["h_ts_m"][s], arrays["height_m"][s],
                           H_UE, wavelength_m(arrays["freq_mhz"][s]), setup.earth_curvature_per_km,
                           setup.diffraction_weight, True, np.ascontiguousarray(arrays["heff_m"][s]),
                           float(reach[s]), i_first, i_last, j_first, j_last, out, vis)
            tables[key] = out
        dx, dy = px - x_m[s], py - y_m[s]
        d = np.hypot(dx, dy)
        bearing = np.degrees(np.arctan2(dx, dy)) % 360.0
        elevation = np.degrees(np.arctan2(arrays["h_ts_m"][s] - z_rx - H_UE, d))
        gain = relative_gain(bearing, elevation, arrays["azimuth_deg"][s], arrays["beamwidth_deg"][s],
                             arrays["downtilt_deg"][s], arrays["vertical_beamwidth_deg"][s],
                             arrays["front_to_back_db"][s], arrays["sla_v_db"][s])
        value = (arrays["rs_eirp_dbm"][s] + gain
                 - pl.path_loss(int(arrays["model_id"][s]), d, arrays["freq_mhz"][s], arrays["height_m"][s], H_UE)
                 - tables[key])
        better = (d <= reach[s]) & (value > best)
        best[better] = value[better]
        server[better] = s
    safe = np.maximum(server, 0)
    cls = np.where(best >= arrays["deep_dbm"][safe], 2, np.where(best >= arrays["outdoor_dbm"][safe], 1, 0))
    return best, np.where(server >= 0, cls, CLASS_NODATA), z_rx


def mountain_sites(lon_c, lat_c, seed=4):
    rng = np.random.default_rng(seed)
    rows = []
    for site in range(5):
        lon, lat = lon_c + rng.uniform(-0.04, 0.04), lat_c + rng.uniform(-0.035, 0.035)
        first = float(rng.uniform(0, 120))
        for k in range(3):
            rows.append({"lon": lon, "lat": lat, "environment": ["urban", "suburban", "dense_urban"][site % 3],
                         "azimuth_deg": (first + 120.0 * k) % 360.0, "downtilt_deg": float(rng.uniform(0, 6)),
                         "height_m": float(rng.choice([20.0, 30.0, 40.0])), "eirp_dbm": 46.0,
                         "freq_mhz": float(rng.choice([900.0, 942.5, 1850.0]))})
    return make_sectors(rows)


@pytest.mark.slow
@pytest.mark.parametrize("place", ["jacksboro", "trinidad"])
def test_fast_path_agrees_with_a_per_pixel_reference_on_real_mountains(place, tmp_path):
    import os

    from conftest import NCARG_TRINIDAD_NC, write_jacksboro_dem_tif

    from coverage.predict import prepare_sectors
    from coverage.predict.terrain_sites import resolve_terrain
    from coverage.terrain.dem import open_dem

    # the real DEMs where they are (Tennessee, Colorado): the China Albers grid works anywhere (its scale
    # error depends on the latitude only, ~1 % at 36-38° N), 100 m pixels, k = 1
    if place == "jacksboro":  # USGS 3″, 236-1,076 m, 30 × 32 km
        dem = open_dem(write_jacksboro_dem_tif(tmp_path / "jacksboro.tif"))
        lon_c, lat_c = -84.246, 36.590
    else:  # SRTM 3″ in feet, the Sangre de Cristo range around Blanca Peak, 2,300-4,300 m
        if not os.path.exists(NCARG_TRINIDAD_NC):
            pytest.skip(f"{NCARG_TRINIDAD_NC} missing: apt-get install libncarg-data")
        dem = open_dem(NCARG_TRINIDAD_NC, vertical_scale=0.3048)
        lon_c, lat_c = -105.55, 37.62
    sectors = mountain_sites(lon_c, lat_c)
    config = terrain_config()
    runs, report = run(tmp_path, "fast", sectors, dem=dem, config=config, tile=256)
    setup = resolve_terrain(dem, None, config, RES)
    arrays = prepare_sectors(sectors, "nbiot", config, terrain=setup).arrays  # what predict prepared
    col_c, row_c = pixel_of(lon_c, lat_c)
    n = 120  # a 12 km window around the sites
    col0, row0 = col_c - n // 2, row_c - n // 2
    fast_rsrp = runs["nbiot"][0].window(col0, row0, n, n).astype(np.float64)
    fast_cls = runs["nbiot"][1].window(col0, row0, n, n)
    ref_rsrp, ref_cls, z_rx = reference_window(setup, arrays, col0, row0, n, n)
    covered = np.isin(fast_cls, (1, 2)) & np.isin(ref_cls, (1, 2))
    err = np.abs(fast_rsrp - ref_rsrp)[covered]
    within_1, within_3 = float(np.mean(err <= 1.0)), float(np.mean(err <= 3.0))
    same_class = float(np.mean(fast_cls[fast_cls != CLASS_NODATA] == ref_cls[fast_cls != CLASS_NODATA]))
    print(f"\n{place}: ground {z_rx.min():.0f}-{z_rx.max():.0f} m, {covered.sum()} pixels covered in both of "
          f"{n * n}; {within_1:.2%} within 1 dB, {within_3:.3%} within 3 dB, max {err.max():.2f} dB, "
          f"median {np.median(err):.3f} dB; same class {same_class:.2%}")
    assert z_rx.max() - z_rx.min() > 300.0  # real mountains
    assert covered.sum() > 5_000
    assert within_1 >= 0.99
    assert within_3 >= 0.999


def test_a_later_step_opens_the_runs_embedded_dem_as_the_build_did():
    """plan and calibration re-open the run's DEM from raster/report.json: the embedded one as ``default``.

    Opened by its path alone, the embedded NetCDF has no nodata of its own (GDAL's
    −32767 would leave the −999 sea fill as ground) and an assumed CRS.
    """
    from coverage.config import load_config
    from coverage.errors import TerrainSourceError
    from coverage.predict.terrain_sites import run_terrain_setup
    from coverage.terrain import data

    built = data.open_default_dem()
    report = {"terrain": {"dem": {"path": str(built.path), "sha256": built.sha256}, "clutter": None,
                          "lattice_step_m": 800.0}}
    setup = run_terrain_setup(report, load_config(), 100.0)
    assert setup.dem.info()["nodata"] == built.info()["nodata"] == -999.0
    assert setup.dem.info()["assumed_crs"] is False
    assert run_terrain_setup({"terrain": None}, load_config(), 100.0) is None
    changed = {"terrain": {"dem": {"path": str(built.path), "sha256": "0" * 64}, "clutter": None}}
    with pytest.raises(TerrainSourceError, match="has changed since the run"):
        run_terrain_setup(changed, load_config(), 100.0)

"""One tile over terrain: its lattice, its pixels' ground and environment, its sites' tables.

Run inside the tile task (a worker process): the DEM and land cover are read there,
by window (:class:`~coverage.terrain.dem.DemSource` and
:class:`~coverage.terrain.landcover.LandCoverSource` are picklable and reopen their
files in each process), so workers of a ``tcp://`` cluster need the files at the same
path.

* The terrain lattice window covers the tile and every candidate sector's reach (the
  sweep's rays start at the site): points ``(I·t + res/2, −(J·t + res/2))`` of the
  global lattice of step ``t = k·res`` (every k-th pixel centre).
* Each pixel's ground height is bilinear between lattice points (the lattice point
  itself when k = 1); its land-cover class is the lattice point nearest to it, read
  by nearest neighbour (classes are categories).
* Each site (sectors sharing position, antenna height above sea level, frequency and
  reach) gets one table from :func:`coverage.terrain.sweep.sweep_site` over the lattice
  cells its reach touches in this tile (one cell of margin for the bilinear reads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from coverage.predict.terrain_kernel import pixel_ground_m
from coverage.radio.diffraction import wavelength_m
from coverage.radio.pathloss import COST231_HATA_RURAL, OKUMURA_HATA_URBAN
from coverage.terrain.sweep import sweep_site


@dataclass
class TileTerrain:
    """Per-pixel terrain inputs of one tile, and the lattice window they came from."""

    z: np.ndarray | None  # lattice window (float64), None without a DEM
    gi0: int
    gj0: int
    ground_m: np.ndarray  # (size, size) float64
    pixel_env: np.ndarray  # (size, size) uint8 codes
    pixel_extra_db: np.ndarray  # (size, size) float64
    filled: int
    samples: int
    pixel_class: np.ndarray | None = None  # (size, size) uint8 land-cover codes, None without land cover


def tile_terrain(setup, tech_terrain, col0: int, row0: int, size_px: int, sectors) -> TileTerrain:
    """The lattice window and per-pixel inputs of one tile (module docstring)."""
    res = setup.resolution_m
    k = setup.lattice_k
    step = k * res
    x = sectors["x_m"]
    y = sectors["y_m"]
    reach = sectors["site_reach_m"]
    x_lo = min(float((x - reach).min()), (col0 + 0.5) * res)
    x_hi = max(float((x + reach).max()), (col0 + size_px - 0.5) * res)
    y_hi = max(float((y + reach).max()), -(row0 + 0.5) * res)
    y_lo = min(float((y - reach).min()), -(row0 + size_px - 0.5) * res)
    gi0 = int(math.floor((x_lo - 0.5 * res) / step)) - 2
    gi1 = int(math.ceil((x_hi - 0.5 * res) / step)) + 2
    gj0 = int(math.floor((-y_hi - 0.5 * res) / step)) - 2
    gj1 = int(math.ceil((-y_lo - 0.5 * res) / step)) + 2
    nx, ny = gi1 - gi0 + 1, gj1 - gj0 + 1
    x_first = gi0 * step + 0.5 * res
    y_first = -(gj0 * step + 0.5 * res)
    if setup.dem is not None:
        z32, filled = setup.dem.lattice(x_first, y_first, step, nx, ny, edge=True)
        z = np.where(np.isfinite(z32), z32, 0.0).astype(np.float64)
        ground = pixel_ground_m(z, gi0, gj0, k, col0, row0, size_px, size_px)
        samples = nx * ny
    else:
        z, filled, samples = None, 0, 0
        ground = np.zeros((size_px, size_px), dtype=np.float64)
    if setup.landcover is not None:
        # the lattice points nearest the tile's pixels
        li0 = int(math.floor(col0 / k + 0.5))
        li1 = int(math.floor((col0 + size_px - 1) / k + 0.5))
        lj0 = int(math.floor(row0 / k + 0.5))
        lj1 = int(math.floor((row0 + size_px - 1) / k + 0.5))
        classes = setup.landcover.lattice_classes(li0 * step + 0.5 * res, -(lj0 * step + 0.5 * res), step,
                                                  li1 - li0 + 1, lj1 - lj0 + 1)
        pick = _nearest_lattice(col0, row0, size_px, k, li0, lj0)
        cls = classes[pick[0], pick[1]]
        pixel_env = tech_terrain.env_lut[cls]
        pixel_extra = tech_terrain.extra_lut[cls]
    else:
        cls = None
        pixel_env = np.full((size_px, size_px), 5, dtype=np.uint8)  # every pixel: the sector's environment
        pixel_extra = np.zeros((size_px, size_px), dtype=np.float64)
    return TileTerrain(z=z, gi0=gi0, gj0=gj0, ground_m=ground, pixel_env=np.ascontiguousarray(pixel_env),
                       pixel_extra_db=np.ascontiguousarray(pixel_extra, dtype=np.float64),
                       filled=int(filled), samples=int(samples), pixel_class=cls)


def _nearest_lattice(col0, row0, size_px, k, li0, lj0):
    cols = np.floor((col0 + np.arange(size_px)) / k + 0.5).astype(np.int64) - li0
    rows = np.floor((row0 + np.arange(size_px)) / k + 0.5).astype(np.int64) - lj0
    return np.meshgrid(rows, cols, indexing="ij")


@dataclass
class SiteTables:
    """The terrain tables of a tile's sites, packed for the kernel."""

    table_of: np.ndarray  # per sector: its table
    i0: np.ndarray
    j0: np.ndarray
    ni: np.ndarray
    offset: np.ndarray
    values_db: np.ndarray  # float32, all tables one after the other
    visible: np.ndarray  # uint8
    nj: np.ndarray
    samples: int


def site_tables(setup, terrain: TileTerrain, sectors, col0: int, row0: int, size_px: int,
                ue_height_m: float) -> SiteTables:
    """One sweep per site of ``sectors`` over the lattice cells its reach touches in the tile."""
    hata = (sectors["model_id"] >= OKUMURA_HATA_URBAN) & (sectors["model_id"] <= COST231_HATA_RURAL)
    key = np.column_stack([sectors["x_m"], sectors["y_m"], sectors["h_ts_m"], sectors["freq_mhz"],
                           sectors["site_reach_m"], hata.astype(np.float64)])
    unique, first, table_of = np.unique(key, axis=0, return_index=True, return_inverse=True)
    table_of = np.ascontiguousarray(table_of.reshape(-1), dtype=np.int64)
    m = unique.shape[0]
    res = setup.resolution_m
    k = setup.lattice_k
    boxes = np.zeros((m, 4), dtype=np.int64)
    for s in range(m):
        sx, sy, _, _, reach, _ = unique[s]
        c_lo = max(col0, int(math.floor((sx - reach) / res - 0.5)) - 1)
        c_hi = min(col0 + size_px - 1, int(math.ceil((sx + reach) / res - 0.5)) + 1)
        r_lo = max(row0, int(math.floor(-(sy + reach) / res - 0.5)) - 1)
        r_hi = min(row0 + size_px - 1, int(math.ceil(-(sy - reach) / res - 0.5)) + 1)
        if c_lo > c_hi or r_lo > r_hi:  # reach disc outside the tile: a 1-cell table
            c_lo = c_hi = col0
            r_lo = r_hi = row0
        boxes[s] = (math.floor(c_lo / k), math.floor(c_hi / k) + (1 if k > 1 else 0),
                    math.floor(r_lo / k), math.floor(r_hi / k) + (1 if k > 1 else 0))
    ni = boxes[:, 1] - boxes[:, 0] + 1
    nj = boxes[:, 3] - boxes[:, 2] + 1
    offset = np.zeros(m, dtype=np.int64)
    offset[1:] = np.cumsum(ni * nj)[:-1]
    total = int((ni * nj).sum())
    values = np.zeros(total, dtype=np.float32)
    visible = np.ones(total, dtype=np.uint8)
    samples = 0
    if terrain.z is not None:
        heff = np.ascontiguousarray(sectors["heff_m"][first], dtype=np.float64)
        reach_bins = np.ascontiguousarray(sectors["site_reach_by_bearing_m"][first], dtype=np.float64)
        height = sectors["height_m"][first]
        wavelengths = np.array([wavelength_m(f) for f in unique[:, 3]])
        samples = _sweep_all(terrain.z, terrain.gi0, terrain.gj0, k * res, 0.5 * res, unique, height, heff,
                             reach_bins, wavelengths, boxes, offset, ni, nj, values, visible, ue_height_m,
                             setup.earth_curvature_per_km, setup.diffraction_weight)
    return SiteTables(table_of=table_of, i0=np.ascontiguousarray(boxes[:, 0]), j0=np.ascontiguousarray(boxes[:, 2]),
                      ni=np.ascontiguousarray(ni), offset=offset, values_db=values, visible=visible,
                      nj=np.ascontiguousarray(nj), samples=int(samples))


@njit(cache=True, nogil=True)
def _sweep_all(z, gi0, gj0, step, half_res, unique, height, heff, reach_bins, wavelengths, boxes, offset, ni, nj,
               values, visible, ue_height_m, ce, weight):
    x_origin = gi0 * step + half_res
    y_origin = -(gj0 * step + half_res)
    samples = 0
    for s in range(unique.shape[0]):
        cells = ni[s] * nj[s]
        out_db = values[offset[s]:offset[s] + cells].reshape((nj[s], ni[s]))
        out_vis = visible[offset[s]:offset[s] + cells].reshape((nj[s], ni[s]))
        samples += sweep_site(z, x_origin, y_origin, step, unique[s, 0], unique[s, 1], unique[s, 2], height[s],
                              ue_height_m, wavelengths[s], ce, weight, unique[s, 5] > 0.5, heff[s], unique[s, 4],
                              boxes[s, 0] - gi0, boxes[s, 1] - gi0, boxes[s, 2] - gj0, boxes[s, 3] - gj0,
                              out_db, out_vis, reach_bins[s])
    return samples


def predict_tile_terrain(sectors, setup, tech_terrain, terrain: TileTerrain, col0: int, row0: int, size_px: int,
                         ue_height_m: float, block_px: int | None = None, keep: dict | None = None,
                         tables: SiteTables | None = None):
    """Best-server rsrp and class of one tile over terrain (plain arrays in and out).

    ``sectors`` holds the kernel arrays (:data:`coverage.predict.kernel.SECTOR_FIELDS`)
    and the terrain ones (:data:`coverage.predict.terrain_sites.TERRAIN_FIELDS`) of
    one operator's candidate sectors. Returns ``(rsrp, class, evaluations, samples)``.
    ``keep``, a dict, receives ``best_sector`` (per pixel, −1 where none) and
    ``tables`` (:class:`SiteTables`), for the calibration's per-pixel terrain terms.
    ``tables``: this tile's :func:`site_tables` of ``sectors`` when already swept
    (``bench/terrain_tiles.py`` times the sweeps apart), else they are swept here.
    """
    from coverage.predict.kernel import PRUNE_BLOCK_PX, loss_slope_array
    from coverage.predict.terrain_kernel import best_server_terrain_kernel, classify_by_environment

    block_px = PRUNE_BLOCK_PX if block_px is None else block_px
    if tables is None:
        tables = site_tables(setup, terrain, sectors, col0, row0, size_px, ue_height_m)
    f64 = {name: np.ascontiguousarray(sectors[name], dtype=np.float64) for name in (
        "x_m", "y_m", "rs_eirp_dbm", "height_m", "h_ts_m", "freq_mhz", "azimuth_deg", "beamwidth_deg",
        "downtilt_deg", "vertical_beamwidth_deg", "front_to_back_db", "sla_v_db", "reach_m")}
    best_dbm = np.full((size_px, size_px), -np.inf, dtype=np.float64)
    best_sector = np.full((size_px, size_px), -1, dtype=np.int64)
    best_env = np.zeros((size_px, size_px), dtype=np.uint8)
    evaluations = best_server_terrain_kernel(
        np.int64(col0), np.int64(row0), np.int64(size_px), np.int64(size_px), np.float64(setup.resolution_m),
        f64["x_m"], f64["y_m"], f64["rs_eirp_dbm"], f64["height_m"], f64["h_ts_m"], f64["freq_mhz"],
        np.ascontiguousarray(sectors["env_index"], dtype=np.int64),
        np.ascontiguousarray(sectors["model_by_env"], dtype=np.int64),
        f64["azimuth_deg"], f64["beamwidth_deg"], f64["downtilt_deg"], f64["vertical_beamwidth_deg"],
        f64["front_to_back_db"], f64["sla_v_db"], f64["reach_m"], np.float64(ue_height_m), np.int64(block_px),
        tables.table_of, tables.i0, tables.j0, tables.ni, tables.nj, tables.offset, tables.values_db,
        tables.visible, np.int64(setup.lattice_k),
        terrain.ground_m, terrain.pixel_env, terrain.pixel_extra_db, loss_slope_array(sectors, f64["x_m"].size),
        best_dbm, best_sector, best_env,
    )
    rsrp = np.empty((size_px, size_px), dtype=np.float32)
    cls = np.empty((size_px, size_px), dtype=np.uint8)
    classify_by_environment(best_dbm, best_sector, best_env, tech_terrain.outdoor_by_env, tech_terrain.deep_by_env,
                            rsrp, cls)
    if keep is not None:
        keep.update(best_sector=best_sector, tables=tables)
    return rsrp, cls, int(evaluations), tables.samples

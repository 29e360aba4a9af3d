"""Per-unit coverage statistics from the prediction rasters (exactextract).

Every statistic is exact at the polygon edge: exactextract gives each pixel the
fraction of its area inside the unit, and the areas below are sums of
``coverage_fraction × pixel_area``. Units are reprojected to the raster's
equal-area CRS first.

Definitions (all areas in km², all ``_pct`` in percent of the unit's area)
--------------------------------------------------------------------------
``area_km2``
    The polygon's area in the raster's equal-area CRS (not a pixel count): parts
    of a unit outside the raster extent count as not covered.
``covered_km2`` / ``coverage_pct``
    Pixels of class 1 (outdoor) or 2 (deep); nodata (255) is not covered.
``deep_covered_km2`` / ``deep_coverage_pct``
    Pixels of class 2 only, so deep ≤ outdoor always.
``ce0_pct``, ``ce1_pct``, ``ce2_pct`` (NB-IoT)
    Share of the unit's *area* that is covered (class ≥ 1) and whose best-server
    RSRP lies in the coverage-enhancement level: CE0 ``rsrp ≥ CE0``, CE1
    ``CE1 ≤ rsrp < CE0``, CE2 ``CE2 ≤ rsrp < CE1`` (thresholds from
    ``report.json``). Being shares of the area, like ``coverage_pct``, they add
    up to at most ``coverage_pct``.
``median_rsrp_dbm``
    Coverage-fraction-weighted median of the best-server RSRP over the unit's
    *covered* pixels (class ≥ 1), to 0.1 dB (:data:`MEDIAN_STEP_DB`): a weighted
    histogram of the RSRP in 0.1 dB bins per unit, linear inside the median bin,
    so it lies in the same 0.1 dB bin as the weighted median of the unbinned
    values (where the cumulative weight reaches half). The bins keep memory
    bounded per unit however many distinct values the raster holds. Where only a
    few pixels are covered, weighted medians are ill-defined between distant
    values and exactextract's interpolated ``median`` (used before) can differ
    by more than a bin. Empty when nothing is covered.
``population`` / ``population_covered_pct``
    With a population raster (people per pixel, any CRS): the coverage class is
    warped onto the population grid as the area-weighted covered fraction of each
    population pixel (``rasterio.warp.reproject`` with average resampling of a
    0/1 covered mask read at the coverage resolution), and
    ``Σ population × covered fraction`` is summed per unit with exactextract.
    The population grid is processed in tiles, so memory stays bounded.

Performance: the rasters of all layers given (the aggregate stage passes every
technology's operators and "all") are read once, in strips of whole block rows (each block decompressed
once; the GDAL block cache is capped at :data:`GDAL_CACHE_MB`). On each strip
exactextract computes the units' coverage fractions (``cell_id`` / ``coverage`` on a
grid without values) and a numba kernel adds each cell's fraction to the unit's
covered, deep and CE sums of every layer and to its 0.1 dB RSRP histogram. The
builtin exactextract operations on one derived raster per layer, used before,
hashed every pixel into a per-unit table per raster: at national scale (1.9
gigapixels, nine layers) that was most of the aggregate stage.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from exactextract import exact_extract
from exactextract.feature import FeatureSource, JSONFeature
from exactextract.raster import NumPyRasterSource, RasterSource
from numba import njit
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.windows import Window

from coverage.errors import CRSMismatchError, EmptyCoverageError, SchemaError
from coverage.layout import ALL_OPERATORS, CLASS_DEEP, CLASS_OUTDOOR

log = logging.getLogger(__name__)

M2_PER_KM2 = 1.0e6
POPULATION_TILE_PX = 2048
_STRATEGY = "raster-sequential"
CE_LEVELS = ("CE0", "CE1", "CE2")

#: Columns of the long unit table (docs/CONTRACTS.md, stats).
UNIT_TABLE_COLUMNS = (
    "code", "name", "level", "parent", "parent_name", "province_code", "province",
    "tech", "operator", "area_km2", "covered_km2", "coverage_pct", "deep_covered_km2",
    "deep_coverage_pct", "ce0_pct", "ce1_pct", "ce2_pct", "sectors", "sites",
    "median_rsrp_dbm", "population", "population_covered_pct",
)
STAT_COLUMNS = (
    "area_km2", "covered_km2", "coverage_pct", "deep_covered_km2", "deep_coverage_pct",
    "ce0_pct", "ce1_pct", "ce2_pct", "median_rsrp_dbm", "population", "population_covered_pct",
)

# order of the values returned by the per-unit reducer
_N_OUT = 6  # covered_px, deep_px, ce0_px, ce1_px, ce2_px, median_dbm


@dataclass(frozen=True)
class Layer:
    """One coverage layer of a run: a technology × operator pair and its rasters.

    Parameters
    ----------
    tech : str
        Technology id (``nbiot``, ``redcap``).
    operator : str
        Operator code or ``"all"``.
    class_path : path
        Coverage class GeoTIFF (uint8, 0/1/2, nodata 255).
    rsrp_path : path or None
        Best-server RSRP GeoTIFF (float32 dBm, nodata −9999); None skips the
        median and CE statistics.
    ce_thresholds_dbm : mapping or None
        ``{"CE0": dBm, "CE1": dBm, "CE2": dBm}`` (NB-IoT) or None.
    """

    tech: str
    operator: str
    class_path: str | os.PathLike
    rsrp_path: str | os.PathLike | None = None
    ce_thresholds_dbm: Mapping[str, float] | None = field(default=None, hash=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.tech}|{self.operator}"


# ---------------------------------------------------------------- public API


def zonal_stats(units, class_raster, rsrp_raster=None, thresholds_dbm=None, population=None) -> pd.DataFrame:
    """Coverage statistics of each unit for one coverage layer.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Polygons (any CRS); returned rows keep its index and its ``code`` column
        when present.
    class_raster : path
        Coverage class GeoTIFF in an equal-area CRS (0 none, 1 outdoor, 2 deep,
        255 nodata).
    rsrp_raster : path, optional
        Best-server RSRP (dBm) on the same grid; needed for ``median_rsrp_dbm`` and
        the CE shares.
    thresholds_dbm : mapping, optional
        Either ``{"CE0": .., "CE1": .., "CE2": ..}`` or report.json's
        ``thresholds_dbm`` holding a ``"ce"`` entry. Without it the CE shares are NaN.
    population : path, optional
        Population raster (people per pixel, any CRS).

    Returns
    -------
    pandas.DataFrame
        One row per unit (index of ``units``): ``code`` (if present) and the
        columns of :data:`STAT_COLUMNS`; see the module docstring for definitions.

    Raises
    ------
    SchemaError
        ``units`` is not a GeoDataFrame with a CRS.
    EmptyCoverageError
        ``units`` is empty.
    CRSMismatchError
        The rasters have no CRS or do not share one grid.

    Examples
    --------
    >>> stats = zonal_stats(counties, "run/raster/nbiot_class.tif",
    ...                     "run/raster/nbiot_rsrp.tif")  # doctest: +SKIP
    >>> stats[["code", "coverage_pct"]]  # doctest: +SKIP
    """
    ce = _ce_thresholds(thresholds_dbm)
    layer = Layer("layer", ALL_OPERATORS, class_raster, rsrp_raster, ce)
    frame = layer_stats(units, [layer], population=population)
    out = frame.drop(columns=["tech", "operator"]).set_index("_unit")
    out.index = units.index
    if "code" in units.columns:
        out.insert(0, "code", units["code"].to_numpy())
    return out


def layer_stats(units, layers: Sequence[Layer], population=None,
                progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Statistics of every unit for several layers, one exactextract pass per grid.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Polygons (any CRS).
    layers : sequence of Layer
        Layers sharing one raster grid (as all layers of a run do).
    population : path, optional
        Population raster (people per pixel, any CRS).
    progress : callable, optional
        ``progress(done, total)`` called after each exactextract pass.

    Returns
    -------
    pandas.DataFrame
        Long rows ``_unit`` (positional index into ``units``), ``tech``,
        ``operator`` and :data:`STAT_COLUMNS`.
    """
    _check_units(units)
    if not layers:
        raise EmptyCoverageError("no coverage layers given")
    with rasterio.open(layers[0].class_path) as ref:
        crs, transform = ref.crs, ref.transform
    if crs is None:
        raise CRSMismatchError(f"{layers[0].class_path} has no CRS")
    pixel_km2 = abs(transform.a * transform.e - transform.b * transform.d) / M2_PER_KM2
    projected = units_in_crs(units, crs)
    area_km2 = projected.geometry.area.to_numpy() / M2_PER_KM2

    # one exactextract pass serves every layer (all rasters of a run share one grid)
    per_layer = _extract_group(projected, layers, crs, transform)
    if progress is not None:
        progress(1, 1)

    pop_total = pop_covered = None
    if population is not None:
        pop_total, pop_covered = population_sums(units, [lay.class_path for lay in layers], population)

    frames = []
    for i, lay in enumerate(layers):
        raw = per_layer[lay.key]
        # coverage fractions summed over pixels can exceed the polygon's own area by rounding (1e-10)
        covered_km2 = np.minimum(raw[:, 0] * pixel_km2, area_km2)
        deep_km2 = np.minimum(raw[:, 1] * pixel_km2, covered_km2)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = 100.0 / np.where(area_km2 > 0, area_km2, np.nan)
            frame = pd.DataFrame({
                "_unit": np.arange(len(units)),
                "tech": lay.tech,
                "operator": lay.operator,
                "area_km2": area_km2,
                "covered_km2": covered_km2,
                "coverage_pct": np.clip(covered_km2 * share, 0.0, 100.0),
                "deep_covered_km2": deep_km2,
                "deep_coverage_pct": np.clip(deep_km2 * share, 0.0, 100.0),
                "ce0_pct": raw[:, 2] * pixel_km2 * share,
                "ce1_pct": raw[:, 3] * pixel_km2 * share,
                "ce2_pct": raw[:, 4] * pixel_km2 * share,
                "median_rsrp_dbm": raw[:, 5],
                "population": np.nan if pop_total is None else pop_total,
                "population_covered_pct": np.nan if pop_total is None
                else np.clip(100.0 * pop_covered[:, i] / np.where(pop_total > 0, pop_total, np.nan), 0.0, 100.0),
            })
        if not lay.ce_thresholds_dbm or lay.rsrp_path is None:
            frame[["ce0_pct", "ce1_pct", "ce2_pct"]] = np.nan
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    log.info("zonal statistics: %d units × %d layers", len(units), len(layers))
    return out


def count_sectors(units, sectors) -> pd.DataFrame:
    """Sectors and sites inside each unit, per technology × operator and ``"all"``.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Polygons (any CRS).
    sectors : geopandas.GeoDataFrame
        The sectors table (points; ``operator``, ``site_id``, ``tech`` columns).

    Returns
    -------
    pandas.DataFrame
        ``_unit`` (positional index into ``units``), ``tech``, ``operator``,
        ``sectors``, ``sites``. Sites are distinct ``site_id`` per operator; for
        ``"all"`` distinct (operator, site_id) pairs. Only non-zero rows.
    """
    cols = ["_unit", "tech", "operator", "sectors", "sites"]
    if sectors is None or len(sectors) == 0:
        return pd.DataFrame(columns=cols)
    missing = {"operator", "site_id", "tech"} - set(sectors.columns)
    if missing:
        raise SchemaError(f"sectors table lacks columns {sorted(missing)}")
    points = sectors[["operator", "site_id", "tech", "geometry"]].to_crs(units.crs) if sectors.crs else sectors
    polys = gpd.GeoDataFrame({"_unit": np.arange(len(units))}, geometry=units.geometry.to_numpy(), crs=units.crs)
    joined = gpd.sjoin(points, polys, how="inner", predicate="within")
    # a point exactly on a border is in no unit's interior: count it once, in the first unit
    border = points.loc[~points.index.isin(joined.index)]
    if len(border):
        touching = gpd.sjoin(border, polys, how="inner", predicate="intersects").sort_values("_unit")
        joined = pd.concat([joined, touching.loc[~touching.index.duplicated()]])
    if joined.empty:
        return pd.DataFrame(columns=cols)
    joined = pd.DataFrame(joined.drop(columns="geometry"))
    joined["_site"] = joined["operator"].astype(str) + "\x1f" + joined["site_id"].astype(str)
    per_op = joined.groupby(["_unit", "tech", "operator"]).agg(sectors=("site_id", "size"), sites=("site_id", "nunique"))
    per_all = joined.groupby(["_unit", "tech"]).agg(sectors=("site_id", "size"), sites=("_site", "nunique"))
    per_all["operator"] = ALL_OPERATORS
    out = pd.concat([per_op.reset_index(), per_all.reset_index()], ignore_index=True)
    return out[cols]


def unit_table(units, layers: Sequence[Layer], sectors=None, population=None, level: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The long statistics table of docs/CONTRACTS.md: one row per unit × tech × operator.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Counties (``code, name, province_code, province, city_code, city``, as from
        ``coverage.boundaries.load_counties``) or townships (``code, name, parent,
        parent_name`` and, when known, ``province_code, province``). For counties
        without ``parent`` the parent is the city (the province when no city).
    layers : sequence of Layer
        The coverage layers (each technology × operator, ``"all"`` included).
    sectors : geopandas.GeoDataFrame, optional
        Sectors table for the ``sectors`` / ``sites`` counts (0 without it).
    population : path, optional
        Population raster (people per pixel, any CRS).
    level : str, optional
        ``county`` / ``township``; default the units' ``level`` column, else ``county``.
    progress : callable, optional
        ``progress(done, total)`` after each exactextract pass.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`UNIT_TABLE_COLUMNS`, ordered by code, tech, operator
        (``all`` first).
    """
    _check_units(units)
    stats = layer_stats(units, layers, population=population, progress=progress)
    if sectors is not None and len(sectors):
        with rasterio.open(layers[0].class_path) as ref:
            crs = ref.crs
        counts = count_sectors(units_in_crs(units, crs), sectors)
        stats = stats.merge(counts, on=["_unit", "tech", "operator"], how="left")
    else:
        stats["sectors"] = 0
        stats["sites"] = 0
    stats["sectors"] = stats["sectors"].fillna(0).astype("int64")
    stats["sites"] = stats["sites"].fillna(0).astype("int64")

    attrs = _unit_attributes(units, level)
    table = attrs.merge(stats, left_index=True, right_on="_unit", how="right")
    order = {ALL_OPERATORS: 0}
    table["_op_order"] = table["operator"].map(lambda op: order.get(op, 1))
    table = table.sort_values(["code", "tech", "_op_order", "operator"], kind="stable")
    return table.loc[:, list(UNIT_TABLE_COLUMNS)].reset_index(drop=True)


def population_sums(units, class_rasters: Sequence, population) -> tuple[np.ndarray, np.ndarray]:
    """People in each unit and people covered by each layer.

    The coverage class is warped onto the population grid, tile by tile: a 0/1
    covered mask (class 1 or 2) read at the coverage resolution is averaged onto
    each population pixel (``rasterio.warp.reproject``, average resampling, i.e.
    the area-weighted covered fraction). Per unit, exactextract sums
    ``population`` and ``population × covered fraction`` with edge fractions.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        Polygons (any CRS).
    class_rasters : sequence of path
        Coverage class rasters (one per layer).
    population : path
        Population raster, people per pixel, any CRS with a nodata value or none.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``population`` per unit (shape ``(n_units,)``) and people covered per unit
        and layer (shape ``(n_units, n_layers)``).
    """
    n_units, n_layers = len(units), len(class_rasters)
    total = np.zeros(n_units)
    covered = np.zeros((n_units, n_layers))
    with rasterio.open(population) as pop_ds:
        if pop_ds.crs is None:
            raise CRSMismatchError(f"population raster {population} has no CRS")
        pop_units = units_in_crs(units, pop_ds.crs)
        win = pixel_window(pop_units.total_bounds, pop_ds, pad_px=0)
        if win is None:
            log.warning("units lie outside the population raster %s", population)
            return total, covered
        sindex = pop_units.sindex
        class_dss = [rasterio.open(p) for p in class_rasters]
        try:
            for row0 in range(int(win.row_off), int(win.row_off + win.height), POPULATION_TILE_PX):
                for col0 in range(int(win.col_off), int(win.col_off + win.width), POPULATION_TILE_PX):
                    tile = Window(col0, row0,
                                  min(POPULATION_TILE_PX, int(win.col_off + win.width) - col0),
                                  min(POPULATION_TILE_PX, int(win.row_off + win.height) - row0))
                    _population_tile(pop_ds, tile, class_dss, pop_units, sindex, total, covered)
        finally:
            for ds in class_dss:
                ds.close()
    return total, covered


# ---------------------------------------------------------------- helpers


def _check_units(units) -> None:
    if not isinstance(units, gpd.GeoDataFrame):
        raise SchemaError(f"units must be a GeoDataFrame, got {type(units).__name__}")
    if units.crs is None:
        raise SchemaError("units have no CRS")
    if len(units) == 0:
        raise EmptyCoverageError("no units to compute statistics for")


def units_in_crs(units, crs) -> gpd.GeoDataFrame:
    """Units reprojected to ``crs``, geometries made valid, with a positional ``_uid``."""
    out = gpd.GeoDataFrame({"_uid": np.arange(len(units))}, geometry=units.geometry.to_numpy(), crs=units.crs)
    out = out.to_crs(crs)
    geoms = out.geometry.to_numpy()
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        geoms = geoms.copy()
        geoms[invalid] = shapely.make_valid(geoms[invalid])
        out = out.set_geometry(gpd.GeoSeries(geoms, crs=out.crs, index=out.index))
    return out


def _ce_thresholds(thresholds_dbm) -> dict[str, float] | None:
    if not thresholds_dbm:
        return None
    ce = thresholds_dbm.get("ce", thresholds_dbm)
    if not ce or not all(level in ce for level in CE_LEVELS):
        return None
    return {level: float(ce[level]) for level in CE_LEVELS}


#: Median RSRP is taken over RSRP rounded to this step (dB): a bounded histogram per unit.
MEDIAN_STEP_DB = 0.1
#: The median histogram's range, in steps: −250 dBm … +50 dBm (a received power outside
#: it is not physical; such a value counts in the end bin).
_MEDIAN_MIN_STEP = -2500
_MEDIAN_MAX_STEP = 500
#: Rows of a strip: a whole number of the rasters' block rows, about this many cells.
_STRIP_TARGET_CELLS = 16_000_000
#: GDAL block cache (MB) while extracting: strips are read once, a big cache only grows RSS.
GDAL_CACHE_MB = 256
_N_SUMS = 5  # covered, deep, CE0, CE1, CE2 (sums of coverage fractions, i.e. pixels)


class _GridSource(RasterSource):
    """The raster grid of a strip with no values: exactextract only computes coverage fractions on it."""

    def __init__(self, extent, res, srs_wkt):
        super().__init__()
        self._extent, self._res, self._srs_wkt = extent, res, srs_wkt
        self.set_name("g")

    def extent(self):
        return self._extent

    def res(self):
        return self._res

    def srs_wkt(self):
        return self._srs_wkt

    def nodata_value(self):
        return None

    def read_window(self, x0, y0, nx, ny):
        return np.zeros((ny, nx), dtype=np.uint8)


@njit(cache=True, nogil=True)
def _accumulate_unit(cell_ids, fractions, grid_width, col0, classes, rsrps, has_rsrp, rsrp_nodata, ce_dbm,
                     sums, histogram):
    """Add one unit's cells of a strip to its sums (``(layers, 5)``) and median histograms.

    ``cell_ids`` index the strip row-major (``grid_width`` columns); ``classes`` /
    ``rsrps`` are the layers' windows of the strip starting at column ``col0``.
    """
    n_layers = classes.shape[0]
    n_bins = histogram.shape[1]
    for k in range(cell_ids.size):
        row = cell_ids[k] // grid_width
        col = cell_ids[k] % grid_width - col0
        weight = fractions[k]
        for layer in range(n_layers):
            klass = classes[layer, row, col]
            if klass != CLASS_OUTDOOR and klass != CLASS_DEEP:
                continue
            sums[layer, 0] += weight
            if klass == CLASS_DEEP:
                sums[layer, 1] += weight
            if not has_rsrp[layer]:
                continue
            value = rsrps[layer, row, col]
            if np.isnan(value) or value == rsrp_nodata[layer]:
                continue
            if value >= ce_dbm[layer, 0]:
                sums[layer, 2] += weight
            elif value >= ce_dbm[layer, 1]:
                sums[layer, 3] += weight
            elif value >= ce_dbm[layer, 2]:
                sums[layer, 4] += weight
            step = int(np.rint(value / MEDIAN_STEP_DB)) - _MEDIAN_MIN_STEP
            histogram[layer, min(max(step, 0), n_bins - 1)] += weight


def _histogram_median(steps: np.ndarray, weights: np.ndarray) -> float:
    """Weighted median (in steps) of values binned to whole steps, linear inside the median bin.

    Bin ``k`` spans ``[k − ½, k + ½)``; its weight is spread evenly over it, so a
    constant value ``v`` gives ``v`` and the result lies in the same bin as the
    weighted median of the unbinned values (less than a step from it). When
    exactly half the weight lies below a gap between occupied bins (an even
    number of whole pixels), the median is the middle of the gap, as the
    ordinary median of an even count is the mean of the two middle values.
    """
    order = np.argsort(steps)
    steps, weights = steps[order], weights[order]
    cumulative = np.cumsum(weights)
    half = cumulative[-1] / 2.0
    tolerance = 1e-9 * cumulative[-1]
    k = min(int(np.searchsorted(cumulative, half - tolerance)), len(steps) - 1)
    if k < len(steps) - 1 and cumulative[k] <= half + tolerance:
        return float((steps[k] + steps[k + 1]) / 2.0)
    below = cumulative[k - 1] if k > 0 else 0.0
    inside = (half - below) / weights[k] if weights[k] > 0 else 0.5
    return float(steps[k] - 0.5 + min(max(inside, 0.0), 1.0))


def _unit_boxes_px(projected, transform, width, height) -> np.ndarray:
    """Pixel bounding boxes (col0, row0, col1, row1), padded by a pixel, of every unit."""
    bounds = projected.geometry.bounds.to_numpy()
    inv = ~transform
    col_a, row_a = inv @ (bounds[:, 0], bounds[:, 3])
    col_b, row_b = inv @ (bounds[:, 2], bounds[:, 1])
    boxes = np.column_stack([np.floor(np.minimum(col_a, col_b)) - 1, np.floor(np.minimum(row_a, row_b)) - 1,
                             np.ceil(np.maximum(col_a, col_b)) + 1, np.ceil(np.maximum(row_a, row_b)) + 1])
    boxes = np.nan_to_num(boxes, nan=0.0)  # empty geometries
    return np.clip(boxes, 0, [width, height, width, height]).astype(np.int64)


def _strip_rows(ds) -> int:
    """Rows of a strip: whole block rows, about :data:`_STRIP_TARGET_CELLS` cells."""
    block_rows = ds.block_shapes[0][0]
    return block_rows * max(1, _STRIP_TARGET_CELLS // (block_rows * ds.width))


def _histogram_slots(first_strip: np.ndarray, last_strip: np.ndarray) -> tuple[np.ndarray, int]:
    """A histogram slot per unit, reused once the unit's last strip is done; and the slots needed."""
    slot = np.full(first_strip.size, -1, dtype=np.int64)
    free: list[int] = []
    n_slots = 0
    releases: dict[int, list[int]] = {}
    for unit in np.argsort(first_strip, kind="stable"):
        if first_strip[unit] > last_strip[unit]:
            continue  # the unit misses the raster
        for strip in [s for s in releases if s < first_strip[unit]]:
            free += releases.pop(strip)
        if free:
            slot[unit] = free.pop()
        else:
            slot[unit], n_slots = n_slots, n_slots + 1
        releases.setdefault(int(last_strip[unit]), []).append(int(slot[unit]))
    return slot, n_slots


def _extract_group(projected, layers: Sequence[Layer], crs, transform) -> dict[str, np.ndarray]:
    """One pass over the rasters of all layers, strip by strip; raw sums per layer.

    exactextract computes each unit's coverage fractions on a strip of whole block
    rows (``cell_id`` and ``coverage`` on a grid without values); a numba kernel
    adds ``fraction`` to the unit's covered, deep and CE sums of every layer and to
    its 0.1 dB RSRP histogram, read from the layers' windows of the strip (each block
    decompressed once). A unit's histogram lives in a slot from its first strip to
    its last, when its median is taken, so memory follows the units of one strip.

    Returns per layer an array ``(n_units, 6)``: covered, deep, CE0, CE1, CE2
    (sums of coverage fractions, i.e. pixels) and the median RSRP (dBm).
    """
    n, n_layers = len(projected), len(layers)
    sums = np.zeros((n, n_layers, _N_SUMS))
    medians = np.full((n, n_layers), np.nan)
    has_rsrp = np.array([lay.rsrp_path is not None for lay in layers])
    # without CE thresholds no covered pixel reaches a level (+inf)
    ce_dbm = np.array([[math.inf] * 3 if lay.ce_thresholds_dbm is None or lay.rsrp_path is None
                       else [lay.ce_thresholds_dbm[level] for level in CE_LEVELS] for lay in layers])
    n_bins = _MEDIAN_MAX_STEP - _MEDIAN_MIN_STEP + 1
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), contextlib.ExitStack() as stack:
        class_dss, rsrp_dss = [], []
        for lay in layers:
            cds = stack.enter_context(rasterio.open(lay.class_path))
            _check_grid(cds, crs, transform, lay.class_path)
            class_dss.append(cds)
            rds = None
            if lay.rsrp_path is not None:
                rds = stack.enter_context(rasterio.open(lay.rsrp_path))
                _check_grid(rds, crs, transform, lay.rsrp_path)
            rsrp_dss.append(rds)
        rsrp_nodata = np.array([math.nan if rds is None or rds.nodata is None else float(rds.nodata)
                                for rds in rsrp_dss])
        ref = class_dss[0]
        width, height = ref.width, ref.height
        strip_rows = _strip_rows(ref)
        boxes = _unit_boxes_px(projected, transform, width, height)
        first_strip = boxes[:, 1] // strip_rows
        last_strip = np.where(boxes[:, 3] > boxes[:, 1], (boxes[:, 3] - 1) // strip_rows, -1)
        slot, n_slots = _histogram_slots(first_strip, last_strip)
        histograms = np.zeros((max(n_slots, 1), n_layers, n_bins))
        finishing = pd.Series(np.arange(n)).groupby(last_strip).agg(list).to_dict()
        # the strips' windows are read into the same memory (a national strip of 9 layers
        # is over a GB: allocated anew, every strip's pages were faulted in again)
        buffers = _StripBuffers(n_layers, strip_rows * width)
        for strip in range((height + strip_rows - 1) // strip_rows):
            row0 = strip * strip_rows
            rows = min(strip_rows, height - row0)
            hit = np.flatnonzero((first_strip <= strip) & (last_strip >= strip))
            if hit.size:
                _strip_sums(projected, hit, row0, rows, boxes, transform, width, crs, class_dss, rsrp_dss,
                            has_rsrp, rsrp_nodata, ce_dbm, sums, histograms, slot, buffers)
            for unit in finishing.get(strip, ()):
                for layer in range(n_layers):
                    medians[unit, layer] = _slot_median(histograms[slot[unit], layer])
                histograms[slot[unit]] = 0.0
    out = {}
    for i, lay in enumerate(layers):
        raw = np.zeros((n, _N_OUT))
        raw[:, :_N_SUMS] = sums[:, i]
        raw[:, 5] = medians[:, i] if has_rsrp[i] else np.nan
        out[lay.key] = raw
    return out


class _StripBuffers:
    """Memory for the class and RSRP windows of every layer, reused strip after strip."""

    def __init__(self, n_layers: int, cells: int):
        self._classes = np.empty(n_layers * cells, dtype=np.uint8)
        self._rsrps = np.empty(n_layers * cells, dtype=np.float32)
        self.n_layers = n_layers

    def windows(self, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
        """C-contiguous ``(layers, rows, cols)`` class and RSRP arrays (contents undefined)."""
        size = self.n_layers * rows * cols
        shape = (self.n_layers, rows, cols)
        return self._classes[:size].reshape(shape), self._rsrps[:size].reshape(shape)


def _strip_sums(projected, hit, row0, rows, boxes, transform, width, crs, class_dss, rsrp_dss, has_rsrp,
                rsrp_nodata, ce_dbm, sums, histograms, slot, buffers) -> None:
    """Add the cells of one strip to the sums and histograms of the units ``hit``."""
    top = transform.f + row0 * transform.e
    bottom = top + rows * transform.e
    grid = _GridSource((transform.c, bottom, transform.c + width * transform.a, top),
                       (transform.a, -transform.e), crs.wkt)
    # each unit cut to the strip, a pixel wider (its cells in the strip keep their
    # fractions): exactextract then walks only the vertices near the strip
    margin = abs(transform.e)
    parts = shapely.clip_by_rect(projected.geometry.to_numpy()[hit], transform.c - margin, bottom - margin,
                                 transform.c + width * transform.a + margin, top + margin)
    present = ~shapely.is_empty(parts)  # a unit whose padded box only grazes the strip
    if not present.any():
        return
    hit, parts = hit[present], parts[present]
    features = _WkbFeatures(hit, shapely.to_wkb(parts), crs.wkt)
    cells = exact_extract(grid, features, ["cell_id", "coverage"], include_cols=["_uid"], output="pandas",
                          strategy="feature-sequential")
    col0, col1 = int(boxes[hit, 0].min()), int(boxes[hit, 2].max())
    window = Window(col0, row0, col1 - col0, rows)
    # a layer without RSRP leaves its window unread: _accumulate_unit never looks at it
    classes, rsrps = buffers.windows(rows, col1 - col0)
    for i, (cds, rds) in enumerate(zip(class_dss, rsrp_dss, strict=True)):
        cds.read(1, window=window, out=classes[i])
        if rds is not None:
            rds.read(1, window=window, out=rsrps[i])
    for uid, cell_ids, fractions in zip(cells["_uid"], cells["cell_id"], cells["coverage"], strict=True):
        if len(cell_ids):
            _accumulate_unit(np.asarray(cell_ids, dtype=np.int64), np.asarray(fractions, dtype=np.float64), width,
                             col0, classes, rsrps, has_rsrp, rsrp_nodata, ce_dbm, sums[uid], histograms[slot[uid]])


class _WkbFeatures(FeatureSource):
    """Units as WKB for exactextract (its GeoDataFrame source goes through GeoJSON text)."""

    def __init__(self, uids, wkbs, srs_wkt):
        super().__init__()
        self.uids, self.wkbs, self._srs_wkt = uids, wkbs, srs_wkt

    def count(self):
        return len(self.uids)

    def __iter__(self):
        for uid, wkb in zip(self.uids, self.wkbs, strict=True):
            yield _WkbFeature(int(uid), wkb)

    def srs_wkt(self):
        return self._srs_wkt


class _WkbFeature(JSONFeature):
    def __init__(self, uid, wkb):
        super().__init__({"type": "Feature", "properties": {"_uid": uid}})
        self.wkb = wkb

    def geometry(self):
        return self.wkb

    def set_geometry_format(self):
        return "wkb"


def _slot_median(histogram: np.ndarray) -> float:
    """Median RSRP (dBm) of one unit and layer from its histogram; NaN when empty."""
    occupied = np.flatnonzero(histogram)
    if occupied.size == 0:
        return math.nan
    return _histogram_median((occupied + _MEDIAN_MIN_STEP).astype(np.float64), histogram[occupied]) * MEDIAN_STEP_DB


def _check_grid(ds, crs, transform, path) -> None:
    if ds.crs != crs or not ds.transform.almost_equals(transform):
        raise CRSMismatchError(f"{path} is not on the grid of the run's other rasters")


def _population_tile(pop_ds, tile: Window, class_dss, pop_units, sindex, total, covered) -> None:
    """Add one population tile's people (and people covered per layer) to the sums."""
    tile_transform = pop_ds.window_transform(tile)
    left, bottom, right, top = rasterio.windows.bounds(tile, pop_ds.transform)
    hits = sindex.query(shapely.box(left, bottom, right, top), predicate="intersects")
    if len(hits) == 0:
        return
    pop = pop_ds.read(1, window=tile, masked=True).astype(np.float64)
    pop = np.ma.masked_invalid(pop)
    pop_filled = np.ma.filled(pop, 0.0)
    pop_filled[pop_filled < 0] = 0.0
    if not pop_filled.any():
        return
    ext = (left, bottom, right, top)
    sources = [NumPyRasterSource(pop_filled, *ext, name="P", srs_wkt=pop_ds.crs.wkt)]
    for j, cds in enumerate(class_dss):
        frac = _covered_fraction_on(cds, pop_ds.crs, tile_transform, pop_filled.shape, ext)
        sources.append(NumPyRasterSource(pop_filled * frac, *ext, name=f"C{j}", srs_wkt=pop_ds.crs.wkt))
    feats = pop_units.iloc[hits]
    result = exact_extract(sources, feats, ["sum"], include_cols=["_uid"], output="pandas", strategy=_STRATEGY)
    uid = result["_uid"].to_numpy()
    total[uid] += result["P_sum"].to_numpy()
    for j in range(len(class_dss)):
        covered[uid, j] += result[f"C{j}_sum"].to_numpy()


def _covered_fraction_on(cds, dst_crs, dst_transform, shape, ext) -> np.ndarray:
    """Area-weighted covered fraction (0..1) of each destination pixel."""
    left, bottom, right, top = transform_bounds(dst_crs, cds.crs, *ext, densify_pts=21)
    dest = np.zeros(shape, dtype=np.float32)
    win = pixel_window((left, bottom, right, top), cds, pad_px=1)
    if win is None:  # no overlap with the coverage grid: nothing covered
        return dest
    cls = cds.read(1, window=win)
    mask = ((cls == CLASS_OUTDOOR) | (cls == CLASS_DEEP)).astype(np.float32)
    reproject(mask, dest, src_transform=cds.window_transform(win), src_crs=cds.crs, src_nodata=None,
              dst_transform=dst_transform, dst_crs=dst_crs, dst_nodata=None, resampling=Resampling.average)
    return np.nan_to_num(dest, nan=0.0)


def pixel_window(bounds, ds, pad_px: int = 0, clip: bool = True) -> Window | None:
    """Whole-pixel window of ``ds`` holding ``bounds`` (+ ``pad_px``), clipped to the raster.

    Returns None when ``clip`` is set and the bounds miss the raster.
    """
    xmin, ymin, xmax, ymax = bounds
    t = ds.transform  # north-up grids only (as written by the predict stage)
    cols = ((xmin - t.c) / t.a, (xmax - t.c) / t.a)
    rows = ((ymin - t.f) / t.e, (ymax - t.f) / t.e)
    col0, col1 = math.floor(min(cols)) - pad_px, math.ceil(max(cols)) + pad_px
    row0, row1 = math.floor(min(rows)) - pad_px, math.ceil(max(rows)) + pad_px
    if clip:
        col0, row0 = max(col0, 0), max(row0, 0)
        col1, row1 = min(col1, ds.width), min(row1, ds.height)
        if col1 <= col0 or row1 <= row0:
            return None
    return Window(col0, row0, max(col1 - col0, 1), max(row1 - row0, 1))


def _unit_attributes(units, level: str | None) -> pd.DataFrame:
    """code, name, level, parent, parent_name, province_code, province per unit (positional index)."""
    def col(name, fallback=None):
        if name in units.columns:
            return units[name].to_numpy()
        if fallback is not None and fallback in units.columns:
            return units[fallback].to_numpy()
        return np.full(len(units), None, dtype=object)

    if level is None:
        level = units["level"].to_numpy() if "level" in units.columns else "county"
    parent = col("parent", "city_code")
    parent_name = col("parent_name", "city")
    if "parent" not in units.columns and "province_code" in units.columns:
        # counties directly under a province (no city): the province is the parent
        prov, prov_name = units["province_code"].to_numpy(), units["province"].to_numpy() if "province" in units.columns else None
        empty = pd.isna(parent) | (pd.Series(parent).astype(str).str.len() == 0).to_numpy()
        parent = np.where(empty, prov, parent)
        if prov_name is not None:
            parent_name = np.where(empty, prov_name, parent_name)
    return pd.DataFrame({
        "code": col("code"), "name": col("name"), "level": level,
        "parent": parent, "parent_name": parent_name,
        "province_code": col("province_code"), "province": col("province"),
    }, index=np.arange(len(units)))


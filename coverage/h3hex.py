"""H3 open data: the coverage rasters as hexagons, by the FCC 5G Fund rule.

The aggregate stage writes, per technology (paths from :class:`coverage.layout.RunLayout`):

- ``stats/h3_res9_<tech>.parquet`` and ``.csv``: one row per H3 resolution-9
  hexagon (≈ 0.105 km²) × operator (and ``all``);
- ``stats/h3_res8_<tech>.parquet`` and ``.csv``: the same at resolution 8
  (≈ 0.74 km², about the public raster's 500 m), which the public site offers as
  downloads. Resolution 9 stays in the run directory and the operator edition.

The Parquet files are always written; each CSV by ``csv`` (``[h3] csv``): by default
only when its rows fit one spreadsheet sheet (:data:`SPREADSHEET_ROWS`), since the CSV
is for people and a national resolution-9 table (~4 × 10⁸ rows, 22 GB) opens in no
spreadsheet. The CSVs are written from the Parquet files after the walk.

The rule (47 CFR §54.1012(c)(1), the 5G Fund Phase I eligible areas)
----------------------------------------------------------------------
(i) a resolution-11 hexagon (hex-11) is served when its centre lies in covered
area; (ii) a hex-9's served share is its served grandchild hex-11s over all its
grandchild hex-11s, counting only those whose centre lies on land (inside the
country); (iii) the hex-9 is served when a "substantial majority" of them are.
Here the covered area is the class raster (class ≥ 1 outdoor, class 2 deep), the
land is the run's counties, and the "substantial majority" is the configuration's
``[h3] covered_fraction`` (:data:`DEFAULT_COVERED_FRACTION`).

Columns (:data:`H3_COLUMNS`)
----------------------------
``h3_index`` (hex string), ``resolution``, ``county_code`` (the county at the
hexagon's centre; for a centre off land, on a coast or the edge of the run's
counties, the county holding most of its counted hex-11 centres, ties: the lower
code), ``tech``,
``operator``, ``children`` (hex-11 centres counted: 49 per hex-9 on land, 343 per
hex-8), ``covered_children``, ``deep_children``, ``coverage_pct`` and
``deep_coverage_pct`` (of ``children``), ``covered`` (the FCC flag:
``covered_children ≥ covered_fraction × children``). A hex-8 sums the counts of
its seven hex-9 children (H3's index tree: their hex-11 descendants are the
hex-8's), so its shares are exact too. Hexagons with no counted centre are left
out. The Parquet files keep full precision; the CSV files (UTF-8 with BOM) round
the percentages to 0.1.

Bounded memory
--------------
The grid is walked in blocks of :data:`DEFAULT_BLOCK_PX` pixels a side (1,024). A block
takes the hex-8s whose centre lies in its footprint (so every hexagon belongs to
exactly one block), reads the class rasters of its technology with a margin that
holds all their hex-11 centres, and appends its rows to the open output files.
Memory is that of one block, whatever the extent.

Speed: sampling is vectorised (the centres are projected and looked up as
arrays). H3's cell functions take one cell at a time, so centres are computed
level by level only where needed: a hex-9 (then a hex-10) whose neighbourhood is
uniform (no class, nor the land, changes within reach of its hex-11 centres)
stands for its 49 (7) hex-11 centres, which all have the class of its centre's
pixel; only the others are split. ``bench/h3_national.py`` measures it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import rasterio
from h3.api import numpy_int as h3

try:  # h3-py's Cython core: the public cell_to_latlng less its per-call argument check, the same C call (2.2x)
    from h3._cy import cell_to_latlng as _cell_to_latlng
except ImportError:  # another h3-py layout: the public function, slower, the same numbers
    _cell_to_latlng = h3.cell_to_latlng
from pyproj import Transformer
from rasterio.features import rasterize
from rasterio.windows import Window
from scipy import ndimage

from coverage.config import H3_CSV_CHOICES
from coverage.errors import CRSMismatchError, SchemaError
from coverage.files import atomic_output
from coverage.layout import ALL_OPERATORS, CLASS_DEEP, CLASS_NODATA, CLASS_OUTDOOR, RunLayout
from coverage.processes import spawn_pool, worker_count
from coverage.zonal import GDAL_CACHE_MB, Layer, units_in_crs

log = logging.getLogger(__name__)

#: The open data's resolution, the 5G Fund's hex-9 (47 CFR §54.1012(c)).
H3_RESOLUTION = 9
#: The resolution whose centres are sampled, the 5G Fund's hex-11 (47 CFR §54.1012(c)(1)(i)).
CHILD_RESOLUTION = 11
#: The public download's resolution (≈ 0.74 km², about the public raster's 500 m cells).
PUBLIC_RESOLUTION = 8
#: 47 CFR §54.1012(c)(1)(iii): a hex-9 is served when a "substantial majority" of its
#: land hex-11s are. The stored copy of the rule read for this (law.lawstack.com,
#: verified against eCFR 2026-06-20) breaks off before the sentence that gives the
#: figure, so the default is a simple majority, and ``[h3] covered_fraction`` sets it.
DEFAULT_COVERED_FRACTION = 0.5
#: Side of a block of the walk, pixels (a national 100 m grid: ~2,600 blocks; 644 MiB peak with five layers in bench/h3_national.py).
DEFAULT_BLOCK_PX = 1024
#: Hex-11 centres lie within 0.98 of the average hex-9 edge of their hex-9's centre and
#: 1.08 of the average hex-8 edge of their hex-8's (measured over 3,000 random hex-8s
#: across China; 1.005 and, for hex-10s, 0.73 over the random cells of
#: tests/test_h3hex.py); the reach used for margins and uniform windows adds a safety factor.
_REACH_PER_EDGE = 1.25
#: Rows of one spreadsheet sheet, header included (Excel and LibreOffice Calc: 2²⁰). A national
#: resolution-9 table has some 4 × 10⁸ (a 22 GB CSV that no spreadsheet opens): ``auto``
#: leaves such CSVs out, and the Parquet file holds the same rows.
SPREADSHEET_ROWS = 1_048_576
# Mixed hex-9s whose descendants are sampled together (≈ 10⁶ hex-11 centres at most).
_MIXED_CHUNK = 20_000

H3_COLUMNS = ("h3_index", "resolution", "county_code", "tech", "operator", "children", "covered_children",
              "deep_children", "coverage_pct", "deep_coverage_pct", "covered")
_PCT_COLUMNS = ("coverage_pct", "deep_coverage_pct")
_SCHEMA = pa.schema([
    ("h3_index", pa.string()), ("resolution", pa.int8()), ("county_code", pa.string()), ("tech", pa.string()),
    ("operator", pa.string()), ("children", pa.int32()), ("covered_children", pa.int32()),
    ("deep_children", pa.int32()), ("coverage_pct", pa.float64()), ("deep_coverage_pct", pa.float64()),
    ("covered", pa.bool_()),
])
# no field holds a comma, a quote or a line break (ids, codes, numbers, true/false)
_CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="none")
_TO_ALBERS_CACHE: dict[str, Transformer] = {}


@dataclass(frozen=True)
class H3Outputs:
    """The files of one technology."""

    res9_parquet: os.PathLike
    res9_csv: os.PathLike
    res8_parquet: os.PathLike
    res8_csv: os.PathLike


def h3_paths(layout: RunLayout, tech: str) -> H3Outputs:
    """Where the H3 files of ``tech`` go in a run."""
    stats = layout.stats_dir
    return H3Outputs(stats / f"h3_res{H3_RESOLUTION}_{tech}.parquet", stats / f"h3_res{H3_RESOLUTION}_{tech}.csv",
                     stats / f"h3_res{PUBLIC_RESOLUTION}_{tech}.parquet",
                     stats / f"h3_res{PUBLIC_RESOLUTION}_{tech}.csv")


def write_h3(layout: RunLayout, layers: Sequence[Layer], counties: gpd.GeoDataFrame,
             covered_fraction: float = DEFAULT_COVERED_FRACTION, block_px: int = DEFAULT_BLOCK_PX,
             progress: Callable[[int, int], None] | None = None, workers: int | None = 1,
             csv: str = "auto") -> dict:
    """Write the H3 files of every technology of ``layers`` (see the module docstring).

    Parameters
    ----------
    layout : RunLayout
        The run; files go to its ``stats/``.
    layers : sequence of Layer
        The coverage layers (every technology × operator and ``all``), one grid.
    counties : geopandas.GeoDataFrame
        The run's counties (``code`` and polygons, any CRS): the land, and the
        ``county_code`` of each hexagon.
    covered_fraction : float, default :data:`DEFAULT_COVERED_FRACTION`
        Share of a hexagon's hex-11 centres that must be covered for ``covered``.
    block_px : int, default :data:`DEFAULT_BLOCK_PX`
        Side of a block of the walk, pixels (the outputs do not depend on it).
    progress : callable, optional
        ``progress(done, total)`` after each block.
    workers : int or None, default 1
        Processes computing the blocks (None: one per CPU when there are at least
        :data:`BLOCKS_PER_WORKER` blocks each); the files are written in block order,
        so they do not depend on it.
    csv : {"auto", "always", "never"}, default "auto"
        Which CSV files to write beside the Parquet ones: ``auto`` those whose rows fit
        one spreadsheet sheet (:data:`SPREADSHEET_ROWS` with the header), ``always``
        all of them, ``never`` none. A CSV not written is removed from the run.

    Returns
    -------
    dict
        ``{tech: H3Outputs}`` under ``files``; ``hexagons``: {tech: hex-9 count};
        ``rows``: {tech: {resolution: rows}}; ``csv``: {tech: {resolution: written}};
        ``seconds``.

    Raises
    ------
    SchemaError
        No layer, a bad ``covered_fraction``, counties without ``code``.
    CRSMismatchError
        The layers' rasters do not share one grid.
    """
    started = time.perf_counter()
    if not layers:
        raise SchemaError("no coverage layer to write H3 hexagons from")
    if not 0.0 < float(covered_fraction) <= 1.0:
        raise SchemaError(f"covered_fraction must be in (0, 1], got {covered_fraction!r}")
    _check_csv(csv)
    if not isinstance(counties, gpd.GeoDataFrame) or "code" not in counties.columns or counties.crs is None:
        raise SchemaError("counties must be a GeoDataFrame with a CRS and a 'code' column")
    techs = list(dict.fromkeys(lay.tech for lay in layers))
    hexagons = dict.fromkeys(techs, 0)
    layers_of = {tech: sum(lay.tech == tech for lay in layers) for tech in techs}
    with contextlib.ExitStack() as stack:
        walk = stack.enter_context(_Walk(layers, counties, covered_fraction))
        blocks = [b for b in walk.grid.blocks(block_px) if walk.land.touches(walk.grid, b)]
        sinks = {tech: _Sinks(stack, h3_paths(layout, tech)) for tech in techs}
        workers = worker_count(workers, len(blocks), BLOCKS_PER_WORKER)
        if workers > 1:
            pool = stack.enter_context(spawn_pool(workers, initializer=_open_walk,
                                                  initargs=(layers, counties, covered_fraction)))
            tables = pool.map(_walk_block, blocks)
        else:
            tables = map(walk.tables, blocks)
        for done, block_tables in enumerate(tables, start=1):  # in block order, whatever the processes
            for tech, (res9, res8) in block_tables.items():
                sinks[tech].write(res9, res8)
                hexagons[tech] += res9.num_rows // layers_of[tech]  # one row per layer of each hexagon
            if progress is not None:
                progress(done, len(blocks))
        for sink in sinks.values():
            sink.close()
    rows, csv_written = {}, {}
    for tech in techs:
        paths = h3_paths(layout, tech)
        for resolution, parquet_path, csv_path in ((H3_RESOLUTION, paths.res9_parquet, paths.res9_csv),
                                                   (PUBLIC_RESOLUTION, paths.res8_parquet, paths.res8_csv)):
            with pq.ParquetFile(parquet_path) as parquet:
                rows.setdefault(tech, {})[resolution] = parquet.metadata.num_rows
                csv_written.setdefault(tech, {})[resolution] = _csv_of(parquet, csv_path, csv)
            if not csv_written[tech][resolution]:
                log.info("H3: no %s (%s rows, csv=%s): the Parquet file holds them", Path(csv_path).name,
                         f"{rows[tech][resolution]:,}", csv)
    result = {"files": {tech: h3_paths(layout, tech) for tech in techs}, "hexagons": hexagons, "rows": rows,
              "csv": csv_written, "covered_fraction": float(covered_fraction),
              "seconds": time.perf_counter() - started}
    log.info("H3: %s hex-9s in %d blocks in %.1f s", ", ".join(f"{t} {n:,}" for t, n in hexagons.items()),
             len(blocks), result["seconds"])
    return result


#: Blocks per worker process below which the walk stays in this process (a process starts in ~1 s).
BLOCKS_PER_WORKER = 8


class _Walk:
    """The class rasters of every layer, their grid and the land, open for the blocks' tables."""

    def __init__(self, layers: Sequence[Layer], counties: gpd.GeoDataFrame, covered_fraction: float):
        self._stack = contextlib.ExitStack()
        # GDAL's block cache defaults to 5 % of the RAM per process (1.2 GB here), which a
        # national walk fills in each process: the readers of the other stages' bound
        self._stack.enter_context(rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB))
        datasets = [self._stack.enter_context(rasterio.open(lay.class_path)) for lay in layers]
        self.grid = _Grid.of(datasets[0])
        for lay, ds in zip(layers, datasets, strict=True):
            if ds.crs != datasets[0].crs or ds.transform != datasets[0].transform or ds.shape != datasets[0].shape:
                self._stack.close()
                raise CRSMismatchError(f"{lay.class_path} is not on the grid of {layers[0].class_path}")
        self.land = _Land(counties, datasets[0].crs)
        techs = list(dict.fromkeys(lay.tech for lay in layers))
        self.by_tech = {tech: [(lay, ds) for lay, ds in zip(layers, datasets, strict=True) if lay.tech == tech]
                        for tech in techs}
        self.covered_fraction = float(covered_fraction)

    def __enter__(self) -> _Walk:
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def tables(self, block: _Block) -> dict[str, tuple[pa.Table, pa.Table]]:
        """``{tech: (res-9 rows, res-8 rows)}`` of the hexagons whose hex-8 centre lies in ``block``."""
        cells8 = self.grid.hex8_in_block(block)
        if not cells8.size:
            return {}
        margin = self.grid.margin_px()
        county_idx = self.land.rasterize(self.grid, block, margin)
        out = {}
        for tech, pairs in self.by_tech.items():
            classes = [_read_padded(ds, block, margin) for _, ds in pairs]
            out[tech] = _block_tables(self.grid, block, margin, cells8, county_idx, classes,
                                      [lay.operator for lay, _ in pairs], self.land.codes, tech,
                                      self.covered_fraction)
        return out


_WORKER_WALK: _Walk | None = None


def _open_walk(layers, counties, covered_fraction) -> None:
    global _WORKER_WALK
    _WORKER_WALK = _Walk(layers, counties, covered_fraction)


def _walk_block(block: _Block) -> dict[str, tuple[pa.Table, pa.Table]]:
    return _WORKER_WALK.tables(block)


def read_h3(path: str | os.PathLike) -> pd.DataFrame:
    """An H3 table written by :func:`write_h3` (Parquet, full precision)."""
    return pd.read_parquet(path)


# ---------------------------------------------------------------- the grid and the land


@dataclass(frozen=True)
class _Block:
    row0: int
    col0: int
    rows: int
    cols: int


@dataclass(frozen=True)
class _Grid:
    x0_m: float
    y0_m: float
    res_m: float
    width: int
    height: int
    crs_wkt: str

    @classmethod
    def of(cls, ds) -> _Grid:
        t = ds.transform
        if t.b != 0 or t.d != 0 or not math.isclose(t.a, -t.e):
            raise CRSMismatchError(f"{ds.name}: H3 sampling needs a north-up grid of square cells")
        return cls(t.c, t.f, t.a, ds.width, ds.height, ds.crs.to_wkt())

    def blocks(self, block_px: int):
        for row0 in range(0, self.height, block_px):
            for col0 in range(0, self.width, block_px):
                yield _Block(row0, col0, min(block_px, self.height - row0), min(block_px, self.width - col0))

    def block_bounds(self, b: _Block) -> tuple[float, float, float, float]:
        west = self.x0_m + b.col0 * self.res_m
        north = self.y0_m - b.row0 * self.res_m
        return west, north - b.rows * self.res_m, west + b.cols * self.res_m, north

    def margin_px(self) -> int:
        """Pixels around a block that hold every hex-11 centre of its hex-8s."""
        return _reach_px(PUBLIC_RESOLUTION, self.res_m)

    def to_lonlat(self) -> Transformer:
        return Transformer.from_crs(self.crs_wkt, "EPSG:4326", always_xy=True)

    def to_grid(self) -> Transformer:
        key = self.crs_wkt
        if key not in _TO_ALBERS_CACHE:
            _TO_ALBERS_CACHE[key] = Transformer.from_crs("EPSG:4326", self.crs_wkt, always_xy=True)
        return _TO_ALBERS_CACHE[key]

    def hex8_in_block(self, b: _Block) -> np.ndarray:
        """The hex-8s whose centre lies in the block's footprint (uint64 cells, sorted)."""
        west, south, east, north = self.block_bounds(b)
        # the footprint's edges densified the same way on both sides of every block
        # border, so neighbouring footprints meet exactly and no centre is in two
        n = 64
        xs = np.concatenate([np.linspace(west, east, n, endpoint=False), np.full(n, east),
                             np.linspace(east, west, n, endpoint=False), np.full(n, west)])
        ys = np.concatenate([np.full(n, north), np.linspace(north, south, n, endpoint=False),
                             np.full(n, south), np.linspace(south, north, n, endpoint=False)])
        lon, lat = self.to_lonlat().transform(xs, ys)
        poly = h3.LatLngPoly(list(zip(lat.tolist(), lon.tolist(), strict=True)))
        return np.sort(np.asarray(h3.h3shape_to_cells(poly, PUBLIC_RESOLUTION), dtype=np.uint64))


def _reach_px(resolution: int, res_m: float) -> int:
    return int(math.ceil(_REACH_PER_EDGE * h3.average_hexagon_edge_length(resolution, "m") / res_m)) + 1


def _uniform_window_px(resolution: int, res_m: float) -> int:
    """Half-side of the window around a cell's centre pixel that holds the pixels of all its hex-11 centres.

    A point ``δ`` pixels from the centre (in x or y) lies at most ``ceil(δ)`` pixel
    columns (rows) from the centre's pixel, wherever the centre sits in it; the hex-11
    centres lie within ``_REACH_PER_EDGE`` average edges of the cell's centre.
    """
    return int(math.ceil(_REACH_PER_EDGE * h3.average_hexagon_edge_length(resolution, "m") / res_m))


class _Land:
    """The counties on the grid: a county index per pixel (0 = outside every county)."""

    def __init__(self, counties: gpd.GeoDataFrame, crs):
        projected = units_in_crs(counties, crs)
        self.geoms = projected.geometry.to_numpy()
        self.codes = np.array([""] + counties["code"].astype(str).tolist(), dtype=object)
        self.tree = gpd.GeoSeries(self.geoms).sindex
        self.bounds = projected.total_bounds

    def touches(self, grid: _Grid, b: _Block) -> bool:
        """Whether a county lies within reach of the block's hex-11 centres."""
        west, south, east, north = grid.block_bounds(b)
        pad = grid.margin_px() * grid.res_m
        return len(self.tree.query(_box(west - pad, south - pad, east + pad, north + pad))) > 0

    def rasterize(self, grid: _Grid, b: _Block, margin: int) -> np.ndarray:
        west, south, east, north = grid.block_bounds(b)
        pad = margin * grid.res_m
        hit = self.tree.query(_box(west - pad, south - pad, east + pad, north + pad))
        shape = (b.rows + 2 * margin, b.cols + 2 * margin)
        if hit.size == 0:
            return np.zeros(shape, dtype=np.int32)
        transform = rasterio.transform.from_origin(west - pad, north + pad, grid.res_m, grid.res_m)
        return rasterize(((self.geoms[i], int(i) + 1) for i in np.sort(hit)), out_shape=shape,
                         transform=transform, fill=0, dtype="int32")


def _box(west, south, east, north):
    import shapely

    return shapely.box(west, south, east, north)


def _read_padded(ds, b: _Block, margin: int) -> np.ndarray:
    """Coverage level of a block and its margin: 0 none (and nodata, beyond the raster), 1 outdoor, 2 deep."""
    r0, c0 = b.row0 - margin, b.col0 - margin
    rows, cols = b.rows + 2 * margin, b.cols + 2 * margin
    out = np.zeros((rows, cols), dtype=np.uint8)
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r0 + rows, ds.height), min(c0 + cols, ds.width)
    if rr1 > rr0 and cc1 > cc0:
        data = ds.read(1, window=Window(cc0, rr0, cc1 - cc0, rr1 - rr0))
        level = np.where(data == CLASS_DEEP, 2, np.where(data == CLASS_OUTDOOR, 1, 0)).astype(np.uint8)
        level[data == CLASS_NODATA] = 0
        out[rr0 - r0:rr1 - r0, cc0 - c0:cc1 - c0] = level
    return out


# ---------------------------------------------------------------- one block


def _block_tables(grid: _Grid, b: _Block, margin: int, cells8: np.ndarray, county_idx: np.ndarray,
                  classes: list[np.ndarray], operators: list[str], codes: np.ndarray, tech: str,
                  covered_fraction: float) -> tuple[pa.Table, pa.Table]:
    """The res-9 and res-8 rows of one block for one technology's layers."""
    land = county_idx > 0
    # only the hex-8s within reach of land have a counted hex-11
    rows8, cols8 = _pixels(grid, b, margin, _centres(cells8))
    near_land = ndimage.maximum_filter(land, size=2 * _reach_px(PUBLIC_RESOLUTION, grid.res_m) + 1,
                                       mode="constant")[rows8, cols8]
    cells8, rows8, cols8 = cells8[near_land], rows8[near_land], cols8[near_land]
    if cells8.size == 0:
        empty = _SCHEMA.empty_table()
        return empty, empty
    if np.isin(cells8, _PENTAGONS8).any():  # none lies on land; H3's own functions would serve one
        raise SchemaError("an H3 pentagon lies in the run's counties; covmap's H3 walk assumes hexagons")
    cells9 = _children(cells8, H3_RESOLUTION)
    parent8 = np.repeat(np.arange(cells8.size), 7)
    rows9, cols9 = _pixels(grid, b, margin, _centres(cells9))
    n9, n_layers = cells9.size, len(classes)

    # a hex-9 is uniform when neither a class nor the land changes within reach of its centre
    k = _uniform_window_px(H3_RESOLUTION, grid.res_m)
    code = _uniformity_code(land, classes)
    mixed = _mixed(code, k)[rows9, cols9]

    children = np.zeros(n9, dtype=np.int64)
    covered = np.zeros((n_layers, n9), dtype=np.int64)
    deep = np.zeros((n_layers, n9), dtype=np.int64)
    u = np.flatnonzero(~mixed & land[rows9, cols9])
    children[u] = 49
    for i, level in enumerate(classes):
        lv = level[rows9[u], cols9[u]]
        covered[i, u] = 49 * (lv >= 1)
        deep[i, u] = 49 * (lv == 2)

    # a hexagon's county: the county at its centre; off land (a coast, the border), the one
    # holding most of its counted hex-11 centres
    county9 = codes[county_idx[rows9, cols9]]
    m = np.flatnonzero(mixed)
    votes = []
    mixed_at = {}  # reach in pixels -> "not uniform" mask of the padded block
    for start in range(0, m.size, _MIXED_CHUNK):  # bounded memory: a chunk of mixed hex-9s at a time
        part = m[start:start + _MIXED_CHUNK]
        _descend(_children(cells9[part], H3_RESOLUTION + 1), np.repeat(part, 7), H3_RESOLUTION + 1, grid, b, margin,
                 county_idx, code, classes, mixed_at, children, covered, deep, votes, county9 == "")
    if votes:
        tally = pd.concat(votes, ignore_index=True)
        tally["code"] = codes[tally["county"].to_numpy()]
        hexes, best = _majority(tally.groupby(["hex", "code"], sort=False)["n"].sum().reset_index())
        county9[hexes] = best

    county8 = codes[county_idx[rows8, cols8]]
    offshore8 = np.flatnonzero(county8 == "")
    if offshore8.size:
        on = np.isin(parent8, offshore8) & (children > 0)
        tally = pd.DataFrame({"hex": parent8[on], "code": county9[on], "n": children[on]})
        hexes, best = _majority(tally.groupby(["hex", "code"], sort=False)["n"].sum().reset_index())
        county8[hexes] = best

    children8 = np.bincount(parent8, weights=children, minlength=cells8.size).astype(np.int64)
    covered8 = np.stack([np.bincount(parent8, weights=c, minlength=cells8.size) for c in covered]).astype(np.int64)
    deep8 = np.stack([np.bincount(parent8, weights=d, minlength=cells8.size) for d in deep]).astype(np.int64)
    res9 = _rows(cells9, H3_RESOLUTION, county9, tech, operators, children, covered, deep, covered_fraction)
    res8 = _rows(cells8, PUBLIC_RESOLUTION, county8, tech, operators, children8, covered8, deep8, covered_fraction)
    return res9, res8


def _descend(cells, owner, resolution, grid, b, margin, county_idx, code, classes, mixed_at, children, covered,
             deep, votes, offshore) -> None:
    """Add the hex-11 centres under ``cells`` (resolution 10 or 11, each of hex-9 ``owner``) to the counts.

    A resolution-10 cell whose neighbourhood is uniform stands for its 7 hex-11 centres
    (the class of its centre's pixel); the others are split into their hex-11s, whose
    centres are sampled one by one. ``code`` is the block's :func:`_uniformity_code`;
    ``offshore`` marks the hex-9s whose county is voted.
    """
    rows, cols = _pixels(grid, b, margin, _centres(cells))
    if resolution < CHILD_RESOLUTION:
        k = _uniform_window_px(resolution, grid.res_m)
        if k not in mixed_at:
            mixed_at[k] = _mixed(code, k)
        split = mixed_at[k][rows, cols]
        if split.any():
            _descend(_children(cells[split], resolution + 1), np.repeat(owner[split], 7), resolution + 1, grid, b, margin,
                     county_idx, code, classes, mixed_at, children, covered, deep, votes, offshore)
        keep = ~split
        cells, owner, rows, cols = cells[keep], owner[keep], rows[keep], cols[keep]
    weight = 7 ** (CHILD_RESOLUTION - resolution)
    county = county_idx[rows, cols]
    counted = county > 0
    owner, rows, cols, county = owner[counted], rows[counted], cols[counted], county[counted]
    n9 = children.size
    children += weight * np.bincount(owner, minlength=n9)
    for i, level in enumerate(classes):
        lv = level[rows, cols]
        covered[i] += weight * np.bincount(owner, weights=lv >= 1, minlength=n9).astype(np.int64)
        deep[i] += weight * np.bincount(owner, weights=lv == 2, minlength=n9).astype(np.int64)
    voting = offshore[owner]
    if voting.any():
        votes.append(pd.DataFrame({"hex": owner[voting], "county": county[voting], "n": weight}))


#: The twelve pentagons at resolution 8 (all at sea, far from China; checked all the same).
_PENTAGONS8 = np.asarray(h3.get_pentagons(PUBLIC_RESOLUTION), dtype=np.uint64)
_RES_SHIFT = np.uint64(52)  # H3 index bits 52-55: the resolution; digit r at bits 3·(15 − r) (H3 index spec)


def _children(cells: np.ndarray, resolution: int) -> np.ndarray:
    """The 7 children at ``resolution`` of each hexagon of the resolution above, in H3's order (vectorised).

    A child's index is its parent's with the resolution field raised and the next
    digit set to 0-6 (the H3 index format; pentagons, which skip digit 1, excluded).
    """
    cells = np.asarray(cells, dtype=np.uint64)
    base = (cells & ~(np.uint64(0xF) << _RES_SHIFT)) | (np.uint64(resolution) << _RES_SHIFT)
    shift = np.uint64(3 * (15 - resolution))
    base &= ~(np.uint64(7) << shift)
    return (base[:, None] | (np.arange(7, dtype=np.uint64) << shift)[None, :]).ravel()


def _centres(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lon, lat) of each cell's centre, degrees."""
    latlng = np.fromiter(itertools.chain.from_iterable(map(_cell_to_latlng, cells.tolist())), dtype=np.float64,
                         count=2 * cells.size).reshape(-1, 2)
    return latlng[:, 1], latlng[:, 0]


def _pixels(grid: _Grid, b: _Block, margin: int, lonlat) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each point in the block's padded window (clipped to it)."""
    x, y = grid.to_grid().transform(*lonlat)
    west = grid.x0_m + (b.col0 - margin) * grid.res_m
    north = grid.y0_m - (b.row0 - margin) * grid.res_m
    cols = np.floor((np.asarray(x) - west) / grid.res_m).astype(np.int64)
    rows = np.floor((north - np.asarray(y)) / grid.res_m).astype(np.int64)
    rows_max, cols_max = b.rows + 2 * margin - 1, b.cols + 2 * margin - 1
    return np.clip(rows, 0, rows_max), np.clip(cols, 0, cols_max)


def _uniformity_code(land: np.ndarray, classes: list[np.ndarray]) -> np.ndarray:
    """A value per pixel that is the same for two pixels only when their land and every level are.

    Land (0/1) plus each layer's level (0-2) as a base-3 digit: one pair of window
    filters tells where anything changes, instead of a pair per layer.
    """
    code = land.astype(np.min_scalar_type(2 * 3 ** len(classes) - 1))
    digit = 2
    for level in classes:
        code += level.astype(code.dtype) * code.dtype.type(digit)
        digit *= 3
    return code


def _mixed(values: np.ndarray, k: int) -> np.ndarray:
    """True where ``values`` is not constant in the (2k+1)² window around a pixel."""
    size = 2 * k + 1
    return ndimage.maximum_filter(values, size=size, mode="nearest") != \
        ndimage.minimum_filter(values, size=size, mode="nearest")


def _majority(tally: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per ``hex`` of a (hex, code, n) tally: the code with the most ``n`` (ties: the lower code)."""
    best = tally.sort_values(["hex", "n", "code"], ascending=[True, False, True], kind="stable")
    best = best.drop_duplicates("hex")
    return best["hex"].to_numpy(), best["code"].to_numpy()


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NIBBLE_SHIFTS = np.arange(56, -1, -4, dtype=np.uint64)  # the 15 hex digits below the index's top (always 0) one


def _hex_ids(cells: np.ndarray) -> pa.Array:
    """H3's string form of cells (``h3.int_to_str``), vectorised: lowercase hex, 15 digits.

    An H3 cell index has bit 63 reserved (0) and the mode 1 in bits 59-62, so its top
    hex digit is 0 and the next one at least 8: every cell's string has 15 digits.
    """
    nibbles = (np.asarray(cells, dtype=np.uint64)[:, None] >> _NIBBLE_SHIFTS[None, :]) & np.uint64(0xF)
    text = np.ascontiguousarray(_HEX_DIGITS[nibbles.astype(np.intp)]).view("S15").ravel()
    return pa.array(text, type=pa.binary(15)).cast(pa.string())


def _rows(cells, resolution, county, tech, operators, children, covered, deep, covered_fraction) -> pa.Table:
    """The rows of the hexagons with a counted centre: by ``h3_index``, then operator (``all`` first)."""
    keep = np.flatnonzero(children > 0)
    if keep.size == 0:
        return _SCHEMA.empty_table()
    keep = keep[np.argsort(cells[keep], kind="stable")]  # = the order of their ids (hex strings of one length)
    ids = _hex_ids(cells[keep])
    ranked = sorted(range(len(operators)), key=lambda i: (operators[i] != ALL_OPERATORS, operators[i]))
    hexagon = np.repeat(keep, len(ranked))
    layer = np.tile(np.asarray(ranked, dtype=np.int64), keep.size)
    n = children[hexagon]
    cov, dp = covered[layer, hexagon], deep[layer, hexagon]
    return pa.table({
        "h3_index": pc.take(ids, np.repeat(np.arange(keep.size), len(ranked))), "resolution": np.full(n.size, resolution, dtype=np.int8),
        "county_code": np.repeat(county[keep], len(ranked)), "tech": np.full(n.size, tech, dtype=object),
        "operator": np.asarray(operators, dtype=object)[layer], "children": n.astype(np.int32),
        "covered_children": cov.astype(np.int32), "deep_children": dp.astype(np.int32),
        "coverage_pct": 100.0 * cov / n, "deep_coverage_pct": 100.0 * dp / n, "covered": cov >= covered_fraction * n,
    }, schema=_SCHEMA)


# ---------------------------------------------------------------- streaming outputs


class H3Writer:
    """One H3 table streamed to its Parquet file (full precision) and/or its CSV (UTF-8 with
    BOM, percentages rounded to 0.1); temporary files renamed when ``stack`` closes without
    an error (removed on one).
    """

    def __init__(self, stack: contextlib.ExitStack, parquet_path: os.PathLike | None = None,
                 csv_path: os.PathLike | None = None):
        # no dictionary pages: zstd alone makes the files 40-55 % smaller and takes a quarter
        # less CPU (the sample's resolution-9 tables: 208-224 against 287 ns a row); the
        # Parquet writer is most of the main process's work in a national walk
        self._parquet = None if parquet_path is None else pq.ParquetWriter(
            stack.enter_context(atomic_output(parquet_path)), _SCHEMA, compression="zstd", use_dictionary=False)
        self._csv = None
        if csv_path is not None:
            self._csv = open(stack.enter_context(atomic_output(csv_path)), "wb")  # noqa: SIM115
            self._csv.write(("\ufeff" + ",".join(H3_COLUMNS) + "\n").encode("utf-8"))
        self._closed = False
        stack.callback(self._abort)

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self._parquet is not None:
            self._parquet.write_table(table)
        if self._csv is not None:
            for name in _PCT_COLUMNS:
                table = table.set_column(table.schema.get_field_index(name), name, pc.round(table[name], 1))
            pacsv.write_csv(table, self._csv, write_options=_CSV_OPTIONS)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._csv is not None:
            self._csv.close()
        self._closed = True

    def _abort(self) -> None:
        if not self._closed:  # an error: close the handles so the temporary files can be removed
            self.close()


class _Sinks:
    """The two Parquet tables (resolutions 9 and 8) of one technology."""

    def __init__(self, stack: contextlib.ExitStack, paths: H3Outputs):
        self._writers = (H3Writer(stack, paths.res9_parquet), H3Writer(stack, paths.res8_parquet))

    def write(self, res9: pa.Table, res8: pa.Table) -> None:
        for writer, table in zip(self._writers, (res9, res8), strict=True):
            writer.write(table)

    def close(self) -> None:
        for writer in self._writers:
            writer.close()


def _check_csv(csv: str) -> None:
    if csv not in H3_CSV_CHOICES:
        raise SchemaError(f"csv must be one of {', '.join(H3_CSV_CHOICES)}, got {csv!r}")


def _csv_of(parquet: pq.ParquetFile, csv_path: os.PathLike, csv: str) -> bool:
    """Write ``csv_path`` from an open Parquet table by the ``csv`` rule (``[h3] csv``); whether it was.

    A CSV not written is removed, so a run's directory never holds one of an earlier aggregate.
    """
    if csv == "never" or (csv == "auto" and parquet.metadata.num_rows > SPREADSHEET_ROWS - 1):
        Path(csv_path).unlink(missing_ok=True)
        return False
    with contextlib.ExitStack() as stack:
        writer = H3Writer(stack, csv_path=csv_path)
        for batch in parquet.iter_batches(batch_size=_COPY_BATCH_ROWS):
            writer.write(pa.Table.from_batches([batch]).cast(_SCHEMA))
        writer.close()
    return True


def write_operator_rows(source: os.PathLike, parquet_path: os.PathLike, csv_path: os.PathLike,
                        operator: str, csv: str = "auto") -> int:
    """Copy the rows of one operator from an H3 Parquet file of :func:`write_h3`; the rows written.

    Read and written batch by batch (a national resolution-9 file holds some 4 × 10⁸
    rows: its CSV is ~22 GB), so memory is that of one batch. ``csv`` as in
    :func:`write_h3`.
    """
    _check_csv(csv)
    with contextlib.ExitStack() as stack:
        writer = H3Writer(stack, parquet_path)
        rows = 0
        for batch in pq.ParquetFile(source).iter_batches(batch_size=_COPY_BATCH_ROWS):
            table = pa.Table.from_batches([batch]).cast(_SCHEMA)
            table = table.filter(pc.equal(table["operator"], operator))
            writer.write(table)
            rows += table.num_rows
        writer.close()
    with pq.ParquetFile(parquet_path) as parquet:
        _csv_of(parquet, csv_path, csv)
    return rows


# Rows read at a time by write_operator_rows (~100 MB of Arrow memory).
_COPY_BATCH_ROWS = 1_000_000


__all__ = ["CHILD_RESOLUTION", "DEFAULT_BLOCK_PX", "DEFAULT_COVERED_FRACTION", "H3Outputs", "H3Writer", "H3_COLUMNS",
           "H3_RESOLUTION", "PUBLIC_RESOLUTION", "SPREADSHEET_ROWS", "h3_paths", "read_h3", "write_h3", "write_operator_rows"]

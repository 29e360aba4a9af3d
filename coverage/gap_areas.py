"""Gaps a planner can act on: each county's gaps split into addressable areas, ranked.

A county's gap layer (:mod:`coverage.gaps`) can be one polygon of hundreds of km²
(everything outside a town's core). Here the union of a layer's gaps in a county is
cut by the township polygons of that county when a township file is given; what
lies outside every township (or everything, without townships) is cut by H3 res-7
cells (≈ 5.2 km², ``h3.average_hexagon_area(7)``). H3 cells tile the plane and the
townships do not overlap, so the areas of a county's pieces add up to its gap
area; slivers under :data:`SLIVER_KM2` left by township borders that do not quite
follow the county's are dropped (their total is in ``attrs["sliver_km2"]``).

Each area carries
- ``area_km2`` (the raster's equal-area CRS);
- ``built_up_km2``: its area whose land-cover class is built-up
  (:func:`coverage.pixel_weights.built_up_mask`), when the run used land cover,
  else empty;
- ``population``: people living in it, when a population raster is given, else
  empty;
- ``rank_in_county`` by the ranking key (:data:`RANK_KEYS`; default
  :func:`default_rank`), ties by area, then by code;
- ``gap_ids``: the county gaps it is part of (``;``-separated).

No site position enters these tables: they hold areas, not sectors.
"""

from __future__ import annotations

import contextlib
import logging
import math

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from coverage.config import GAP_RANKS
from coverage.errors import SchemaError
from coverage.grid import CHINA_ALBERS_PROJ4, project_lonlat
from coverage.layout import layer_key
from coverage.pixel_weights import GridWindow, built_up_mask, polygon_sums, population_on_window
from coverage.processes import spawn_pool, worker_count

log = logging.getLogger(__name__)

M2_PER_KM2 = 1.0e6
H3_RESOLUTION = 7
#: Pieces smaller than this (km², a tenth of a 100 m pixel) are slivers along boundaries, not places.
SLIVER_KM2 = 0.001
RANK_KEYS = tuple(key for key in GAP_RANKS if key != "auto")
_RANK_COLUMN = {"population": "population", "built-up": "built_up_km2", "area": "area_km2"}

#: Columns of a gap-areas table, geometry last.
GAP_AREA_COLUMNS = (
    "area_id", "tech", "operator", "county_code", "county_name", "unit_kind", "unit_code", "unit_name",
    "area_km2", "built_up_km2", "population", "centroid_lon", "centroid_lat", "rank_in_county", "gap_ids",
)


def default_rank(has_population: bool, has_built_up: bool) -> str:
    """``population`` when a population raster is given, else ``built-up`` with land cover, else ``area``.

    Examples
    --------
    >>> default_rank(False, True), default_rank(True, True), default_rank(False, False)
    ('built-up', 'population', 'area')
    """
    return "population" if has_population else "built-up" if has_built_up else "area"


def check_rank(rank: str | None, has_population: bool, has_built_up: bool) -> str:
    """The ranking key to use; a key without its data is an error.

    Raises
    ------
    SchemaError
        ``rank`` is not one of :data:`RANK_KEYS`, or names data the run does not have.
    """
    if rank is None or rank == "auto":
        return default_rank(has_population, has_built_up)
    text = str(rank).strip().lower().replace("_", "-")
    if text not in RANK_KEYS:
        raise SchemaError(f"rank {rank!r} is not one of {', '.join(RANK_KEYS)}")
    if text == "population" and not has_population:
        raise SchemaError("rank 'population' needs a population raster (--population)")
    if text == "built-up" and not has_built_up:
        raise SchemaError("rank 'built-up' needs a run predicted with land cover (--clutter)")
    return text


def split_gaps(gaps: gpd.GeoDataFrame, resolution_m: float, townships: gpd.GeoDataFrame | None = None,
               landcover=None, class_table=None, population=None, rank: str | None = None,
               workers: int | None = 1) -> gpd.GeoDataFrame:
    """Split each county's gaps of each layer into townships / H3 res-7 cells, with their weights.

    Parameters
    ----------
    gaps : geopandas.GeoDataFrame
        Gaps as :func:`coverage.gaps.gaps_by_layer` returns them (any layers).
    resolution_m : float
        Pixel size of the run's grid: built-up area and people are summed on it.
    townships : geopandas.GeoDataFrame, optional
        Township polygons with ``code``, ``name`` and ``parent`` (county code).
    landcover, class_table : optional
        The run's land cover (:class:`~coverage.terrain.landcover.LandCoverSource`) and
        its class table; give both or neither.
    population : path, optional
        Population raster (people per pixel, any CRS).
    rank : str, optional
        One of :data:`RANK_KEYS`; default :func:`default_rank`.
    workers : int or None, default 1
        Processes splitting the counties side by side (None: one per CPU when there
        are at least :data:`COUNTIES_PER_WORKER` counties each); the result does not
        depend on it.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns :data:`GAP_AREA_COLUMNS` + geometry, by layer, county, rank.
    """
    chunks = list(split_gaps_in_chunks(gaps, resolution_m, townships=townships, landcover=landcover,
                                       class_table=class_table, population=population, rank=rank, workers=workers,
                                       max_chunk_km2=math.inf))
    return chunks[0]


#: Gap area (km², all layers) of the counties split and written together by
#: :func:`split_gaps_in_chunks`: about 100,000 H3 pieces, ~0.4 GiB held (4.2 KiB a piece
#: measured); two chunks are held at a time when worker processes split them.
DEFAULT_CHUNK_KM2 = 5.0e5


def split_gaps_in_chunks(gaps: gpd.GeoDataFrame, resolution_m: float, townships: gpd.GeoDataFrame | None = None,
                         landcover=None, class_table=None, population=None, rank: str | None = None,
                         workers: int | None = 1, max_chunk_km2: float | None = None):
    """:func:`split_gaps` for a country: frames of consecutive counties, each ranked, for writing one by one.

    The counties go in code order into chunks whose gaps total at most ``max_chunk_km2``
    (default :data:`DEFAULT_CHUNK_KM2`; a county bigger than that is a chunk alone), so memory holds a chunk's pieces, not
    the country's (a national run without townships has ~10⁷ H3 pieces per technology).
    Ranks are per county, so they do not depend on the chunks. Yields at least one
    frame (an empty one when there is no gap). The worker processes, if any, serve all
    chunks and split the next one while the caller writes the one yielded (so two
    chunks are held).
    """
    rank = check_rank(rank, population is not None, landcover is not None)
    if townships is not None and "parent" not in townships.columns:
        raise SchemaError("townships lack the 'parent' (county code) column")
    max_chunk_km2 = DEFAULT_CHUNK_KM2 if max_chunk_km2 is None else float(max_chunk_km2)
    if len(gaps) == 0:
        yield _empty()
        return
    projected = gaps.to_crs(CHINA_ALBERS_PROJ4)
    towns = None if townships is None else townships.to_crs(CHINA_ALBERS_PROJ4)
    chunks, chunk, chunk_km2 = [], [], 0.0
    for county_code, county_gaps in projected.groupby("county_code", sort=True):
        county_km2 = float(shapely.area(county_gaps.geometry.to_numpy()).sum()) / M2_PER_KM2
        if chunk and chunk_km2 + county_km2 > max_chunk_km2:
            chunks.append(chunk)
            chunk, chunk_km2 = [], 0.0
        county_towns = None if towns is None else towns[towns["parent"].astype(str) == str(county_code)]
        chunk.append((county_code, county_gaps, county_towns))
        chunk_km2 += county_km2
    chunks.append(chunk)
    sources = (resolution_m, landcover, class_table, population, rank)
    workers = worker_count(workers, sum(len(c) for c in chunks), COUNTIES_PER_WORKER)
    with contextlib.ExitStack() as stack:
        if workers <= 1:
            for jobs in chunks:
                yield _chunk_frame(_split_counties((jobs, sources)), rank)
            return
        pool = stack.enter_context(spawn_pool(workers))
        stack.callback(pool.shutdown, cancel_futures=True)  # a caller that stops early waits for no chunk

        def submit(jobs):
            # interleaved parts, so that the vast western counties spread over the processes
            n_parts = min(len(jobs), _CHUNKS_PER_WORKER * workers)
            return [pool.submit(_split_counties, (jobs[k::n_parts], sources)) for k in range(n_parts)]

        # the next chunk is split while the caller writes the current one
        pending = submit(chunks[0])
        for index in range(len(chunks)):
            current = pending
            pending = submit(chunks[index + 1]) if index + 1 < len(chunks) else []
            done = [county for future in current for county in future.result()]
            done.sort(key=lambda county: county[0])
            yield _chunk_frame(done, rank)


def _chunk_frame(done, rank: str) -> gpd.GeoDataFrame:
    """The ranked areas of some counties (``_split_counties``' output, in county order) as one frame.

    Each county comes ranked already (ranks are per county); the frame is theirs
    concatenated and ordered by layer, then county, as :func:`rank_areas` orders them.
    """
    frames = [frame for _, frame, _ in done if frame is not None]
    sliver_km2 = sum(dropped for _, _, dropped in done)
    if not frames:
        frame = _empty()
    else:
        frame = pd.concat(frames, ignore_index=True)
        layer_codes, _ = pd.factorize(_layer_labels(frame), sort=True)
        frame = frame.take(np.argsort(layer_codes, kind="stable")).reset_index(drop=True)
    frame.attrs = {"rank": rank, "sliver_km2": sliver_km2}
    return frame


#: Counties per worker process below which the split stays in this process.
COUNTIES_PER_WORKER = 50
_CHUNKS_PER_WORKER = 8


def _split_counties(job) -> list[tuple[str, gpd.GeoDataFrame | None, float]]:
    """``(county code, its areas ranked in EPSG:4326 or None, sliver km² dropped)`` of each county of a chunk.

    The ranking and the reprojection happen here, in the worker processes, rather than
    in the process that writes the chunks: on Qinghai's RedCap gaps they were a third
    of the work and kept the writer from keeping up with two workers.
    """
    counties, (resolution_m, landcover, class_table, population, rank) = job
    out = []
    for county_code, county_gaps, county_towns in counties:
        columns, sliver_km2 = [], 0.0
        window = GridWindow.around(county_gaps.total_bounds, resolution_m, pad_px=2)
        values = {}
        if landcover is not None:
            values["built_up_km2"] = built_up_mask(window, landcover, class_table) * window.pixel_area_km2
        if population is not None:
            values["population"] = population_on_window(window, population)
        for (tech, operator), layer in county_gaps.groupby(["tech", "operator"], sort=False):
            pieces, dropped = _pieces(layer, county_towns)
            sliver_km2 += dropped
            count = len(pieces["geometry"])
            if count == 0:
                continue
            sums = polygon_sums(window, list(pieces["geometry"]), values) if values else {}
            columns.append({
                "tech": np.full(count, tech, dtype=object), "operator": np.full(count, operator, dtype=object),
                "county_code": np.full(count, county_code, dtype=object),
                "county_name": np.full(count, layer["county_name"].iloc[0], dtype=object), **pieces,
                **{name: np.asarray(sums[name], dtype=np.float64) if name in sums else np.full(count, np.nan)
                   for name in ("built_up_km2", "population")},
            })
        out.append((county_code, _county_frame(columns, rank) if columns else None, sliver_km2))
    return out


def _county_frame(columns: list[dict], rank: str) -> gpd.GeoDataFrame:
    """One county's pieces (columns per layer, lattice CRS) as ranked areas in EPSG:4326."""
    data = {name: np.concatenate([part[name] for part in columns]) for name in columns[0]}
    geometry = data.pop("geometry")
    frame = gpd.GeoDataFrame(data, geometry=geometry, crs=CHINA_ALBERS_PROJ4)
    frame["area_km2"] = shapely.area(geometry) / M2_PER_KM2
    centroids = gpd.GeoSeries(shapely.centroid(geometry), crs=CHINA_ALBERS_PROJ4).to_crs(4326)
    frame["centroid_lon"], frame["centroid_lat"] = centroids.x.to_numpy(), centroids.y.to_numpy()
    return rank_areas(frame.to_crs(4326), rank)


def _layer_labels(frame: pd.DataFrame) -> pd.Series:
    """``tech/operator`` of each area: the layer order of the tables."""
    return frame["tech"] + "/" + frame["operator"]


def rank_areas(frame: pd.DataFrame, rank: str) -> pd.DataFrame:
    """Order the areas of each layer and county by ``rank`` (then area, then code) and number them."""
    key = _RANK_COLUMN[rank]
    # rounded so that equal areas computed through different reprojections tie
    out = frame.assign(_key=frame[key].fillna(0.0).round(6), _area=frame["area_km2"].round(6),
                       _layer=_layer_labels(frame))
    out = out.sort_values(["_layer", "county_code", "_key", "_area", "unit_code"],
                          ascending=[True, True, False, False, True], kind="stable")
    out["rank_in_county"] = out.groupby(["_layer", "county_code"], sort=False).cumcount().astype("int64") + 1
    layers = list(zip(out["tech"].tolist(), out["operator"].tolist(), strict=True))
    keys = {layer: layer_key(*layer) for layer in set(layers)}
    out["area_id"] = [f"{keys[layer]}-{c}-{u}" for layer, c, u in
                      zip(layers, out["county_code"].tolist(), out["unit_code"].tolist(), strict=True)]
    columns = [*GAP_AREA_COLUMNS, "geometry"] if "geometry" in out.columns else list(GAP_AREA_COLUMNS)
    result = out.loc[:, columns].reset_index(drop=True)
    result.attrs = dict(frame.attrs)
    result.attrs["rank"] = rank
    return result


_PIECE_COLUMNS = ("unit_kind", "unit_code", "unit_name", "gap_ids", "geometry")


def _no_pieces() -> dict[str, np.ndarray]:
    return {name: np.zeros(0, dtype=object) for name in _PIECE_COLUMNS}


def _pieces(layer: gpd.GeoDataFrame, towns: gpd.GeoDataFrame | None) -> tuple[dict[str, np.ndarray], float]:
    """The pieces of one layer's gaps in one county (columns, lattice CRS) and the sliver area dropped (km²)."""
    gap_geoms = layer.geometry.to_numpy()
    gap_ids = layer["gap_id"].to_numpy()
    whole = shapely.union_all(gap_geoms)
    gap_tree = shapely.STRtree(gap_geoms)
    shapely.prepare(gap_geoms)
    found, dropped = [], 0.0
    remainder = whole
    if towns is not None and len(towns):
        town_geoms = towns.geometry.to_numpy()
        kept, slivers = _unit_pieces("township", towns["code"].astype(str).to_numpy(dtype=object),
                                     towns["name"].to_numpy(dtype=object), cut(whole, town_geoms),
                                     gap_geoms, gap_ids, gap_tree)
        found.append(kept)
        for area in slivers:
            dropped += area
        remainder = shapely.difference(whole, shapely.union_all(town_geoms))
    if not shapely.is_empty(remainder):
        cells, parts = _h3_parts(remainder)
        kept, slivers = _unit_pieces("h3_res7", cells, np.full(len(cells), None, dtype=object), parts,
                                     gap_geoms, gap_ids, gap_tree)
        found.append(kept)
        for area in slivers:
            dropped += area
    if not found:
        return _no_pieces(), dropped
    return {name: np.concatenate([part[name] for part in found]) for name in _PIECE_COLUMNS}, dropped


def _unit_pieces(kind: str, codes: np.ndarray, names: np.ndarray, parts: np.ndarray, gap_geoms, gap_ids,
                 gap_tree: shapely.STRtree) -> tuple[dict[str, np.ndarray], list[float]]:
    """The pieces (columns) of the units' ``parts`` of the gaps, and the sliver areas left out (km², in unit order).

    A piece's geometry is its part's polygons; its gaps are found with one query of
    the gaps' tree for all the parts.
    """
    areas = shapely.area(parts) / M2_PER_KM2
    kept = np.flatnonzero(areas >= SLIVER_KM2)
    slivers = areas[areas < SLIVER_KM2].tolist()
    if kept.size == 0:
        return _no_pieces(), slivers
    polygons = _polygonal(parts[kept])
    hit_part, hit_gap = gap_tree.query(polygons)
    order = np.lexsort((hit_gap, hit_part))
    hit_part, hit_gap = hit_part[order], hit_gap[order]
    near = np.split(hit_gap, np.searchsorted(hit_part, np.arange(1, kept.size)))
    held = [";".join(map(str, gap_ids[gaps if len(gaps) <= 1 else _holding_gaps(polygon, gaps, gap_geoms)]))
            for polygon, gaps in zip(polygons, near, strict=True)]
    return {"unit_kind": np.full(kept.size, kind, dtype=object),
            "unit_code": np.array([str(code) for code in codes[kept].tolist()], dtype=object),
            "unit_name": np.asarray(names[kept], dtype=object), "gap_ids": np.array(held, dtype=object),
            "geometry": polygons}, slivers


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Each geometry's polygons as one multipolygon (empty when it has none), vectorised."""
    parts, owner = shapely.get_parts(geoms, return_index=True)
    polygonal = shapely.get_type_id(parts) == 3
    out = np.full(len(geoms), _EMPTY_MULTIPOLYGON, dtype=object)
    if polygonal.any():
        shapely.multipolygons(parts[polygonal], indices=owner[polygonal], out=out)
    return out


_EMPTY_MULTIPOLYGON = shapely.from_wkt("MULTIPOLYGON EMPTY")
_EMPTY_POLYGON = shapely.from_wkt("POLYGON EMPTY")


def _holding_gaps(polygons, near: np.ndarray, gap_geoms) -> np.ndarray:
    """Of the gaps ``near`` a piece, those holding a point inside one of its polygons.

    Each polygon of a piece is a connected part of the county's disjoint gaps, so it
    lies in one of them: the gap holding a point inside it (prepared: no overlay with a
    county-sized gap).
    """
    inner = shapely.point_on_surface(shapely.get_parts(polygons))
    return near[[bool(shapely.intersects(gap_geoms[g], inner).any()) for g in near]]


def _h3_parts(region) -> tuple[np.ndarray, np.ndarray]:
    """Cells and ``region ∩ cell`` of the H3 res-7 cells overlapping ``region`` (lattice CRS), in cell order.

    The candidate cells are those overlapping the convex hull of each polygon's outer
    ring; :func:`cut` gives each its exact part and the empty ones are dropped. The
    polygon itself is not given to H3: h3 4.5's ``contain="overlap"`` leaves out cells
    that touch one of the polygon's holes, however much of them lies in it (a national
    run's Qinghai gaps lost 1,354 km², up to 66 km² in one county's layer), and it
    costs time in proportion to the vertices (half of the gap areas' time there).
    """
    lonlat = gpd.GeoSeries([region], crs=CHINA_ALBERS_PROJ4).to_crs(4326).iloc[0]
    cells = set()
    for poly in shapely.get_parts(lonlat):
        if shapely.get_type_id(poly) != 3 or poly.is_empty:
            continue
        hull = shapely.convex_hull(poly.exterior)
        if shapely.get_type_id(hull) != 3:  # a degenerate ring: no area to hold a piece
            continue
        shape = h3.LatLngPoly([(y, x) for x, y in hull.exterior.coords])
        cells.update(h3.h3shape_to_cells_experimental(shape, H3_RESOLUTION, contain="overlap"))
    cells = sorted(cells)
    if not cells:
        return np.zeros(0, dtype=object), np.zeros(0, dtype=object)
    parts = cut(region, _cell_polygons_xy(cells))
    keep = ~shapely.is_empty(parts)
    return np.asarray(cells, dtype=object)[keep], parts[keep]


def _cell_polygons_xy(cells: list[str]) -> np.ndarray:
    """The cells' boundaries as polygons on the lattice CRS (vertices projected as ``to_crs`` projects them)."""
    boundaries = [h3.cell_to_boundary(c) for c in cells]
    vertices = np.fromiter(map(len, boundaries), dtype=np.int64, count=len(boundaries))
    lat, lng = np.array([point for ring in boundaries for point in ring], dtype=np.float64).T
    x, y = project_lonlat(lng, lat)
    rings = shapely.linearrings(np.column_stack([x, y]), indices=np.repeat(np.arange(len(cells)), vertices))
    return shapely.polygons(rings)


#: Most vertices of a region's piece in :func:`cut` (the pieces' overlays stay cheap).
CUT_PIECE_VERTICES = 512


def cut(region, cutters: np.ndarray) -> np.ndarray:
    """``region ∩ cutter`` for each cutter, as ``shapely.intersection(region, cutters)`` gives it, fast.

    A county's gap region can have tens of thousands of vertices, and every overlay
    with it costs time in proportion to them (about 1 ms per H3 cell: hours for the
    country). A cutter lying wholly inside the region is its own intersection (a
    prepared-geometry test); the others meet only the pieces of the region (cut in
    halves until each has at most :data:`CUT_PIECE_VERTICES` vertices) their
    envelope touches, and their parts are joined again. The areas are the same.
    """
    cutters = np.asarray(cutters, dtype=object)
    out = np.empty(len(cutters), dtype=object)
    if len(cutters) == 0:
        return out
    shapely.prepare(region)
    inside = shapely.contains_properly(region, cutters)
    out[inside] = cutters[inside]
    out[~inside] = _EMPTY_POLYGON
    # cutters in the region's holes or beyond it meet no piece: no overlay for them
    rest = np.flatnonzero(~inside)
    rest = rest[shapely.intersects(region, cutters[rest])]
    if len(rest):
        pieces = _halves(region, CUT_PIECE_VERTICES)
        cutter_pos, piece_pos = shapely.STRtree(pieces).query(cutters[rest], predicate="intersects")
        parts = shapely.intersection(pieces[piece_pos], cutters[rest][cutter_pos])
        by_cutter: dict[int, list] = {}
        for position, part in zip(cutter_pos.tolist(), parts, strict=True):
            if not shapely.is_empty(part):
                by_cutter.setdefault(position, []).append(part)
        for position, cutter_index in enumerate(rest):
            found = by_cutter.get(position)
            out[cutter_index] = (_EMPTY_POLYGON if not found else found[0] if len(found) == 1
                                 else shapely.union_all(found))
    return out



def _halves(geom, max_vertices: int) -> np.ndarray:
    """``geom`` cut by its envelope's longer side into pieces of at most ``max_vertices`` vertices."""
    pieces, stack = [], [geom]
    while stack:
        g = stack.pop()
        if shapely.is_empty(g):
            continue
        x0, y0, x1, y1 = shapely.bounds(g)
        if shapely.get_num_coordinates(g) <= max_vertices or (x1 - x0 < 1e-6 and y1 - y0 < 1e-6):
            pieces.append(g)
        elif x1 - x0 >= y1 - y0:  # an overlay with a box, not clip_by_rect: its output may be invalid
            xm = 0.5 * (x0 + x1)
            stack += list(shapely.intersection(g, shapely.box([x0, xm], y0, [xm, x1], y1)))
        else:
            ym = 0.5 * (y0 + y1)
            stack += list(shapely.intersection(g, shapely.box(x0, [y0, ym], x1, [ym, y1])))
    return np.array(pieces, dtype=object)


def _empty() -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame({c: pd.Series(dtype=object) for c in GAP_AREA_COLUMNS}, geometry=gpd.GeoSeries([]),
                             crs=4326)
    frame.attrs["sliver_km2"] = 0.0
    return frame


def read_gap_areas(run_dir, county=None, operator=None, tech=None, rank: str | None = None) -> pd.DataFrame:
    """The gap areas of an aggregated run (``stats/gap_areas_<tech>.csv``), ranked per county.

    Parameters
    ----------
    run_dir : path
    county : str, optional
        6-digit county code; default every county.
    operator : str, optional
        Operator (any spelling) or ``all``; default every layer.
    tech : str, optional
        Technology (any spelling); default every technology with a file.
    rank : str, optional
        Re-rank by ``population``, ``built-up`` or ``area``; default the ranking the
        files were written with.

    Returns
    -------
    pandas.DataFrame
        :data:`GAP_AREA_COLUMNS`, by county then rank; ``attrs["sources"]`` the files
        read and ``attrs["rank"]`` the key.

    Raises
    ------
    InputReadError
        The run has no gap-areas file (aggregate it again).
    UnknownUnitError, SchemaError
        Unknown county, operator or technology; a rank without its data.
    """
    from coverage.aggregate import read_layer_tables

    frame = read_layer_tables(run_dir, "gap_areas", county=county, operator=operator, tech=tech, hint="again")
    sources = frame.attrs["sources"]
    has_population = bool(frame["population"].notna().any()) if len(frame) else False
    has_built_up = bool(frame["built_up_km2"].notna().any()) if len(frame) else False
    if rank is not None:
        frame = rank_areas(frame, check_rank(rank, has_population, has_built_up))
    else:
        frame = frame.sort_values(["tech", "operator", "county_code", "rank_in_county"], kind="stable")
        frame.attrs["rank"] = None
    frame = frame.reset_index(drop=True)
    frame.attrs["sources"] = sources
    return frame


def format_gap_areas(frame: pd.DataFrame, limit: int | None = 20) -> str:
    """An aligned text table of gap areas (in rank order) for the terminal; the last line sums them."""
    if frame.empty:
        return "no gaps"
    shown = frame if not limit else frame.head(limit)

    def number(values, fmt):
        return values.map(lambda v: "" if pd.isna(v) else format(v, fmt))

    table = pd.DataFrame({
        "rank": shown["rank_in_county"].astype("Int64"),
        "county": shown["county_code"].astype(str) + " " + shown["county_name"].astype(object).where(shown["county_name"].notna(), "").astype(str),
        "tech": shown["tech"],
        "operator": shown["operator"],
        "unit": shown["unit_kind"].map({"township": "township", "h3_res7": "H3 r7"}).fillna(shown["unit_kind"]),
        "code": shown["unit_code"],
        "name": shown["unit_name"].astype(object).where(shown["unit_name"].notna(), ""),
        "area_km2": number(shown["area_km2"], ",.2f"),
        "built_up_km2": number(shown["built_up_km2"], ",.2f"),
        "people": number(shown["population"], ",.0f"),
    })
    table = table.loc[:, [c for c in table.columns if (table[c] != "").any()]]
    text = table.to_string(index=False)
    total = f"{len(frame)} areas, {frame['area_km2'].sum():,.1f} km²"
    if frame["built_up_km2"].notna().any():
        total += f", {frame['built_up_km2'].sum():,.1f} km² built-up"
    if frame["population"].notna().any():
        total += f", {frame['population'].sum():,.0f} people"
    rank = frame.attrs.get("rank")
    if len(shown) < len(frame):
        text += f"\n… {len(frame) - len(shown)} more"
    return text + f"\n{total} in all" + (f" (ranked by {rank})" if rank else "")

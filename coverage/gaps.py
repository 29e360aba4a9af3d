"""Coverage gaps: the uncovered parts of each unit as ranked polygons.

A pixel is uncovered when its class is 0 (no coverage) or nodata (255), and
the parts of a unit outside the raster extent are uncovered too (the raster is
read with a boundless window padded with nodata). A gap is a connected part of
the unit's polygon minus its covered pixels, dropped below ``min_gap_km2``.
To get it, whichever of the covered or the uncovered pixels touching the unit
are fewer become polygons (``rasterio.features.shapes``, only over tiles holding
such pixels): the unit minus the covered ones, or the uncovered ones clipped
exactly to the unit; both give the same gaps. All layers given share one
rasterisation of each unit (:func:`gaps_by_layer`, :func:`find_layer_gaps`), and
worker processes can share the units and the nearest-sector search.

Each gap carries
- ``area_km2`` in the raster's equal-area CRS;
- ``centroid_lon`` / ``centroid_lat`` (WGS-84) of the gap's centroid computed in
  the equal-area CRS;
- ``sites_needed_estimate`` = ⌈gap area / cell area⌉, the cell area being a
  regular hexagon of circumradius ``r`` (3√3/2 · r²) with ``r`` the typical cell
  radius of the environment (report.json ``typical_cell_radius_m``; ``rural`` by
  default, since most large gaps are rural). It is a rough **estimate** that
  ignores terrain, shape of the gap and existing sites' overlap;
- ``rank_in_county``: 1 = biggest gap of its county (ties by position);
- ``nearest_sector_km``: geodesic distance (WGS-84 ellipsoid) from the gap's
  boundary to the nearest sector of the layer's operator and technology (0 when a
  sector lies inside the gap). Internal / operator use only: the publish stage
  drops it from public outputs.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import rasterio.features
import shapely
import shapely.affinity
from affine import Affine
from pyproj import Geod, Transformer
from rasterio.windows import Window
from shapely.geometry import shape

from coverage.errors import CRSMismatchError, EmptyCoverageError, SchemaError
from coverage.layout import ALL_OPERATORS, CLASS_DEEP, CLASS_NODATA, CLASS_OUTDOOR, layer_key
from coverage.processes import spawn_pool
from coverage.zonal import GDAL_CACHE_MB, pixel_window, units_in_crs

log = logging.getLogger(__name__)

M2_PER_KM2 = 1.0e6
DEFAULT_MIN_GAP_KM2 = 1.0
DEFAULT_GAP_ENVIRONMENT = "rural"
#: Tile (px) in which pixel masks are polygonised; tiles without a pixel of the mask are skipped.
_POLYGONISE_TILE_PX = 256

#: Columns of a gaps layer (docs/CONTRACTS.md), geometry last.
GAP_COLUMNS = (
    "gap_id", "tech", "operator", "county_code", "county_name", "unit_code", "unit_name",
    "area_km2", "centroid_lon", "centroid_lat", "sites_needed_estimate", "rank_in_county",
    "nearest_sector_km",
)

_GEOD = Geod(ellps="WGS84")


def hexagon_area_m2(radius_m: float) -> float:
    """Area of a regular hexagon of circumradius ``radius_m``: 3√3/2 · r² (m²).

    Examples
    --------
    >>> round(hexagon_area_m2(1000.0))
    2598076
    """
    return 1.5 * math.sqrt(3.0) * float(radius_m) ** 2


def find_gaps(class_raster, units, min_gap_km2: float = DEFAULT_MIN_GAP_KM2, sectors=None,
              typical_cell_radius_m: float | Mapping[str, float] | None = None, *,
              tech: str | None = None, operator: str = ALL_OPERATORS,
              environment: str = DEFAULT_GAP_ENVIRONMENT) -> gpd.GeoDataFrame:
    """Uncovered areas of each unit, as polygons ranked per county.

    Parameters
    ----------
    class_raster : path
        Coverage class GeoTIFF (0 none, 1 outdoor, 2 deep, 255 nodata) in an
        equal-area CRS.
    units : geopandas.GeoDataFrame
        Polygons (any CRS) with ``code`` and ``name``. Counties are their own
        county; units with a ``parent`` column (townships) take it as county code
        (and ``parent_name`` as county name).
    min_gap_km2 : float, default 1.0
        Gaps smaller than this (km², after clipping to the unit) are dropped.
    sectors : geopandas.GeoDataFrame, optional
        Sectors table; when given, ``nearest_sector_km`` is filled using the
        sectors of ``tech`` (if given) and ``operator`` (all operators for
        ``"all"``). NaN without sectors.
    typical_cell_radius_m : float or mapping, optional
        Typical cell radius (m), or report.json's mapping environment → radius of
        which ``environment`` is used. Without it ``sites_needed_estimate`` is empty.
    tech : str, optional
        Technology id, written to the ``tech`` column and used to pick sectors.
    operator : str, default "all"
        Operator code or ``"all"``, written to ``operator``.
    environment : str, default "rural"
        Which typical cell radius sizes the sites estimate.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns :data:`GAP_COLUMNS` + geometry, ordered by county then
        rank.

    Raises
    ------
    SchemaError
        ``units`` lacks a CRS or the ``code`` column, or ``min_gap_km2`` < 0.
    EmptyCoverageError
        ``units`` is empty.
    CRSMismatchError
        The raster has no CRS.

    Examples
    --------
    >>> gaps = find_gaps("run/raster/nbiot_class.tif", counties, 1.0,
    ...                  typical_cell_radius_m={"rural": 8000}, tech="nbiot")  # doctest: +SKIP
    """
    return find_layer_gaps({operator: class_raster}, units, min_gap_km2, sectors, typical_cell_radius_m,
                           tech=tech, environment=environment)


def find_layer_gaps(class_rasters: Mapping[str, object], units, min_gap_km2: float = DEFAULT_MIN_GAP_KM2,
                    sectors=None, typical_cell_radius_m: float | Mapping[str, float] | None = None, *,
                    tech: str | None = None, environment: str = DEFAULT_GAP_ENVIRONMENT,
                    workers: int = 1) -> gpd.GeoDataFrame:
    """Gaps of several layers of one technology (e.g. each operator and ``"all"``) in one pass.

    Same result as concatenating :func:`find_gaps` of each layer in the order of
    ``class_rasters``, but each unit is rasterised once and its window read once
    per layer, which matters at national scale.

    Parameters
    ----------
    class_rasters : mapping
        Operator code (or ``"all"``) → coverage class GeoTIFF; all on one grid.
    units, min_gap_km2, sectors, typical_cell_radius_m, tech, environment
        As for :func:`find_gaps`.
    workers : int, default 1
        As for :func:`gaps_by_layer`.

    Returns
    -------
    geopandas.GeoDataFrame
        The layers' gaps one after the other, each as :func:`find_gaps` returns it.
    """
    layers = [(tech, op, path) for op, path in class_rasters.items()]
    frames = gaps_by_layer(layers, units, min_gap_km2, sectors, {tech: typical_cell_radius_m},
                           environment=environment, workers=workers)
    return frames[0] if len(frames) == 1 else gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)


def gaps_by_layer(layers, units, min_gap_km2: float = DEFAULT_MIN_GAP_KM2, sectors=None,
                  typical_cell_radius_m: Mapping | None = None, *, environment: str = DEFAULT_GAP_ENVIRONMENT,
                  workers: int = 1) -> list[gpd.GeoDataFrame]:
    """Gaps of any layers on one grid (all technologies of a run), each unit rasterised once.

    Parameters
    ----------
    layers : sequence of (tech, operator, class raster path)
        ``tech`` may be None (as for :func:`find_gaps`).
    units, min_gap_km2, sectors, environment
        As for :func:`find_gaps`.
    typical_cell_radius_m : mapping, optional
        Technology → the ``typical_cell_radius_m`` of :func:`find_gaps`.
    workers : int, default 1
        Processes polygonising the units' gaps side by side (units are dealt out in
        interleaved chunks; the result does not depend on it).

    Returns
    -------
    list of geopandas.GeoDataFrame
        One frame per layer, in order, each as :func:`find_gaps` returns it.
    """
    if not isinstance(units, gpd.GeoDataFrame) or units.crs is None:
        raise SchemaError("units must be a GeoDataFrame with a CRS")
    if "code" not in units.columns:
        raise SchemaError("units lack the 'code' column")
    if len(units) == 0:
        raise EmptyCoverageError("no units to look for gaps in")
    if not min_gap_km2 >= 0:
        raise SchemaError(f"min_gap_km2 must be ≥ 0, got {min_gap_km2}")
    if not layers:
        raise EmptyCoverageError("no coverage layers to look for gaps in")
    radii = typical_cell_radius_m or {}
    radius_by_tech = {tech: _radius(radii.get(tech), environment) for tech, _, _ in layers}

    paths = [path for _, _, path in layers]
    with rasterio.open(paths[0]) as ref:
        crs, transform, shape = ref.crs, ref.transform, ref.shape
    if crs is None:
        raise CRSMismatchError(f"{paths[0]} has no CRS")
    for path in paths[1:]:
        with rasterio.open(path) as ds:
            if ds.crs != crs or not ds.transform.almost_equals(transform) or ds.shape != shape:
                raise CRSMismatchError(f"{path} is not on the grid of {paths[0]}")
    geoms = units_in_crs(units, crs).geometry.to_numpy()
    todo = [i for i, geom in enumerate(geoms) if geom is not None and not geom.is_empty]
    per_unit = _polygonise_units(paths, geoms, todo, min_gap_km2 * M2_PER_KM2, workers)
    unit_idx_by_layer, geoms_by_layer = [], []
    for k in range(len(layers)):
        rows = [(i, part) for i in todo for part in per_unit[i][k]]
        unit_idx_by_layer.append(np.array([i for i, _ in rows], dtype=int))
        geoms_by_layer.append(np.array([g for _, g in rows], dtype=object))
    del per_unit
    nearest = _nearest_by_layer(geoms_by_layer, crs, [_sector_xy(sectors, tech, op, crs) for tech, op, _ in layers],
                                workers)
    frames = []
    for (tech, op, _), unit_idx, gap_geoms, near_km in zip(layers, unit_idx_by_layer, geoms_by_layer, nearest,
                                                            strict=True):
        frame = _gap_frame(unit_idx, gap_geoms, units, crs, radius_by_tech[tech], tech, op, near_km)
        log.info("%s: %d gaps ≥ %.3g km² in %d units (%.1f km² in all)", layer_key(tech or "gap", op), len(frame),
                 min_gap_km2, len(units), float(frame["area_km2"].sum()) if len(frame) else 0.0)
        frames.append(frame)
    return frames


def _polygonise_units(paths, geoms, todo, min_gap_m2: float, workers: int) -> dict[int, list[list]]:
    """Unit index → per layer its gap polygons (:func:`_unit_gaps`), in ``workers`` processes."""
    workers = max(1, min(int(workers), len(todo)))
    if workers == 1:
        return dict(_gaps_of_units((paths, [(i, geoms[i]) for i in todo], min_gap_m2)))
    n_chunks = min(len(todo), _CHUNKS_PER_WORKER * workers)
    jobs = [(paths, [(i, geoms[i]) for i in todo[k::n_chunks]], min_gap_m2) for k in range(n_chunks)]
    out = {}
    with spawn_pool(workers) as pool:
        for part in pool.map(_gaps_of_units, jobs):
            out.update(part)
    return out


# Chunks of units per process: interleaved, so that the big units spread over the processes.
_CHUNKS_PER_WORKER = 8


def _gaps_of_units(job) -> list[tuple[int, list[list]]]:
    """``(unit index, per layer its gap polygons)`` of a chunk of units."""
    paths, units, min_gap_m2 = job
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), contextlib.ExitStack() as stack:
        dss = [stack.enter_context(rasterio.open(path)) for path in paths]
        return [(i, _unit_gaps(dss, geom, min_gap_m2)) for i, geom in units]


def _gap_frame(unit_idx, gap_geoms, units, crs, radius_m, tech, operator, nearest_km) -> gpd.GeoDataFrame:
    """The gaps table of one layer from its polygons (equal-area CRS), their units and their distances."""
    county_code, county_name = _county_columns(units)
    area_km2 = shapely.area(gap_geoms) / M2_PER_KM2 if len(gap_geoms) else np.zeros(0)
    centroids = gpd.GeoSeries(shapely.centroid(gap_geoms), crs=crs).to_crs(4326) if len(gap_geoms) else None
    frame = pd.DataFrame({
        "tech": tech,
        "operator": operator,
        "county_code": county_code[unit_idx],
        "county_name": county_name[unit_idx],
        "unit_code": units["code"].to_numpy()[unit_idx],
        "unit_name": (units["name"].to_numpy() if "name" in units.columns else np.full(len(units), None))[unit_idx],
        "area_km2": area_km2,
        "centroid_lon": centroids.x.to_numpy() if centroids is not None else np.zeros(0),
        "centroid_lat": centroids.y.to_numpy() if centroids is not None else np.zeros(0),
    })
    if radius_m:
        frame["sites_needed_estimate"] = pd.array(
            np.ceil(area_km2 * M2_PER_KM2 / hexagon_area_m2(radius_m)).astype("int64"), dtype="Int64")
    else:
        frame["sites_needed_estimate"] = pd.array([pd.NA] * len(frame), dtype="Int64")
    frame["nearest_sector_km"] = nearest_km
    frame["_geometry"] = gap_geoms

    frame = frame.sort_values(["county_code", "area_km2"], ascending=[True, False], kind="stable")
    frame["rank_in_county"] = frame.groupby("county_code", sort=False).cumcount().astype("int64") + 1
    key = layer_key(tech or "gap", operator)
    frame["gap_id"] = [f"{key}-{c}-{r}" for c, r in zip(frame["county_code"], frame["rank_in_county"], strict=True)]
    return gpd.GeoDataFrame(frame.loc[:, list(GAP_COLUMNS)].reset_index(drop=True),
                            geometry=gpd.GeoSeries(frame["_geometry"].to_numpy(), crs=crs).to_crs(4326).to_numpy(),
                            crs=4326)


# ---------------------------------------------------------------- helpers


def _radius(typical_cell_radius_m, environment: str) -> float | None:
    if typical_cell_radius_m is None:
        return None
    if isinstance(typical_cell_radius_m, Mapping):
        value = typical_cell_radius_m.get(environment)
        if value is None:
            raise SchemaError(f"typical_cell_radius_m has no entry for environment {environment!r}")
    else:
        value = typical_cell_radius_m
    value = float(value)
    if not value > 0:
        raise SchemaError(f"typical cell radius must be > 0 m, got {value}")
    return value


def _unit_gaps(dss, geom, min_gap_m2: float) -> list[list]:
    """Gap polygons (equal-area CRS) of one unit in each layer, clipped to it, ≥ ``min_gap_m2``."""
    if geom.area < min_gap_m2 or geom.area == 0:
        return [[] for _ in dss]
    ref = dss[0]
    win = pixel_window(geom.bounds, ref, pad_px=1, clip=False)
    transform = ref.window_transform(win)
    inside = rasterio.features.rasterize([(geom, 1)], out_shape=(int(win.height), int(win.width)),
                                         transform=transform, fill=0, all_touched=True, dtype="uint8").view(bool)
    shapely.prepare(geom)
    out = []
    for ds in dss:
        cls = _read_padded(ds, win, CLASS_NODATA)
        covered = inside & ((cls == CLASS_OUTDOOR) | (cls == CLASS_DEEP))
        uncovered = inside & ~covered
        n_uncovered = int(np.count_nonzero(uncovered))
        if n_uncovered == 0:
            out.append([])
            continue
        # Polygonise the side with fewer pixels: clipped to the unit, the uncovered
        # pixels are exactly the unit minus the covered ones (``inside`` holds every
        # pixel the unit touches).
        if np.count_nonzero(covered) < n_uncovered:
            covered_region = _pixel_region(covered, transform)
            clipped = [geom if covered_region is None else geom.difference(covered_region)]
        else:
            polys = shapely.get_parts(_pixel_region(uncovered, transform))
            # pixel polygons are an upper bound of the clipped area: drop the small ones early
            polys = polys[shapely.area(polys) >= min_gap_m2]
            whole = shapely.contains(geom, polys)
            clipped = polys.copy()
            if (~whole).any():
                clipped[~whole] = shapely.intersection(polys[~whole], geom)
        parts = shapely.get_parts(np.asarray(clipped, dtype=object))
        parts = parts[(shapely.get_type_id(parts) == 3) & (shapely.area(parts) >= min_gap_m2)]
        out.append(list(parts))
    return out


def _read_padded(ds, win, fill_value) -> np.ndarray:
    """Band 1 in ``win``, ``fill_value`` where the window leaves the raster.

    Outside the raster extent is uncovered (nodata). rasterio's boundless read does the
    same through a virtual warped dataset, several times slower per county.
    """
    col0, row0 = int(win.col_off), int(win.row_off)
    height, width = int(win.height), int(win.width)
    r0, r1 = max(row0, 0), min(row0 + height, ds.height)
    c0, c1 = max(col0, 0), min(col0 + width, ds.width)
    if (r0, r1, c0, c1) == (row0, row0 + height, col0, col0 + width):
        return ds.read(1, window=win)
    out = np.full((height, width), fill_value, dtype=ds.dtypes[0])
    if r1 > r0 and c1 > c0:
        ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0), out=out[r0 - row0:r1 - row0, c0 - col0:c1 - col0])
    return out


def _pixel_region(mask: np.ndarray, transform):
    """The union of the ``True`` pixels of ``mask`` as one (multi)polygon in map units, or None.

    ``rasterio.features.shapes`` costs about the same per pixel whatever the mask
    holds, so only the tiles holding some ``True`` pixel are polygonised. Tiles are
    polygonised in pixel units (exact integer coordinates) and merged with
    ``shapely.coverage_union_all`` before the pixel → map transform.
    """
    rows, cols = mask.shape
    pieces = []
    for row0 in range(0, rows, _POLYGONISE_TILE_PX):
        band = mask[row0:row0 + _POLYGONISE_TILE_PX]
        in_band = band.any(axis=0)
        for col0 in range(0, cols, _POLYGONISE_TILE_PX):
            if not in_band[col0:col0 + _POLYGONISE_TILE_PX].any():
                continue
            tile = np.ascontiguousarray(band[:, col0:col0 + _POLYGONISE_TILE_PX])
            offset = Affine.translation(col0, row0)
            pieces += [shape(g) for g, _ in rasterio.features.shapes(tile.view("uint8"), mask=tile, transform=offset)]
    if not pieces:
        return None
    if len(pieces) == 1:
        region = pieces[0]
    else:
        # a piece's edge along a tile border may span several pieces of the next
        # tile: vertices at every pixel corner make the shared edges identical
        # (coverage union needs that), and simplifying with tolerance 0 drops the
        # collinear vertices again (Douglas-Peucker: at tolerance 0 it removes only
        # those, as the topology-preserving simplifier does at ten times the cost)
        region = shapely.simplify(shapely.coverage_union_all(shapely.segmentize(pieces, 1.0)), 0.0,
                                  preserve_topology=False)
    return shapely.affinity.affine_transform(region, [transform.a, transform.b, transform.d, transform.e,
                                                      transform.c, transform.f])


def _county_columns(units) -> tuple[np.ndarray, np.ndarray]:
    codes = units["code"].astype(str).to_numpy()
    names = units["name"].to_numpy() if "name" in units.columns else np.full(len(units), None, dtype=object)
    if "parent" in units.columns:
        parent = units["parent"].astype("string").to_numpy(dtype=object, na_value=None)
        county_code = np.where(pd.isna(parent), codes, parent).astype(object)
        if "parent_name" in units.columns:
            county_name = np.where(pd.isna(parent), names, units["parent_name"].to_numpy()).astype(object)
        else:
            county_name = np.full(len(units), None, dtype=object)
        return county_code, county_name
    return codes.astype(object), names


def _nearest_sector_km(gap_geoms, crs, sectors, tech, operator) -> np.ndarray:
    """Geodesic km from each gap to the nearest selected sector (NaN without sectors).

    0 when a sector lies in the gap; otherwise the planar nearest point of the gap's
    boundary, measured geodesically. The boundary is cut into short runs of segments
    and each run finds its nearest sector: a gap is mostly a unit minus covered discs,
    so the sectors sit in its holes, inside its envelope, where a polygon-to-point
    search (GEOS nearest on whole polygons) has to measure every one of them against
    every vertex; a run's envelope is small, so it measures only the sectors near it.
    """
    return _nearest_km((np.asarray(gap_geoms, dtype=object), _crs_wkt(crs), _sector_xy(sectors, tech, operator, crs)))


def _crs_wkt(crs) -> str:
    return crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs)


def _sector_xy(sectors, tech, operator, crs) -> np.ndarray | None:
    """x, y (``crs``) of the sectors of ``tech`` and ``operator`` (all for ``"all"``); None without any."""
    if sectors is None or len(sectors) == 0:
        return None
    chosen = sectors
    if tech is not None and "tech" in chosen.columns:
        chosen = chosen[chosen["tech"] == tech]
    if operator != ALL_OPERATORS and "operator" in chosen.columns:
        chosen = chosen[chosen["operator"] == operator]
    if len(chosen) == 0:
        return None
    return shapely.get_coordinates(chosen.geometry.to_crs(crs).to_numpy())


def _nearest_by_layer(geoms_by_layer, crs, xy_by_layer, workers: int) -> list[np.ndarray]:
    """:func:`_nearest_km` of each layer's gaps; in ``workers`` processes, in pieces of whole gaps."""
    wkt = _crs_wkt(crs)
    if workers < 2:
        return [_nearest_km((geoms, wkt, xy)) for geoms, xy in zip(geoms_by_layer, xy_by_layer, strict=True)]
    jobs, owner = [], []
    for k, (geoms, xy) in enumerate(zip(geoms_by_layer, xy_by_layer, strict=True)):
        for piece in _vertex_pieces(geoms, _NEAREST_CHUNK_VERTICES):
            jobs.append((geoms[piece], wkt, xy))
            owner.append(k)
    parts: list[list[np.ndarray]] = [[] for _ in geoms_by_layer]
    with spawn_pool(workers) as pool:
        for k, part in zip(owner, pool.map(_nearest_km, jobs), strict=True):
            parts[k].append(part)
    return [np.concatenate(p) if p else np.zeros(0) for p in parts]


def _vertex_pieces(geoms, max_vertices: int) -> list[slice]:
    """Consecutive slices of ``geoms`` of about ``max_vertices`` vertices (at least one geometry each)."""
    vertices = np.cumsum(shapely.get_num_coordinates(geoms)) if len(geoms) else np.zeros(0, dtype=np.int64)
    pieces, first = [], 0
    while first < len(geoms):
        done_before = vertices[first - 1] if first else 0
        last = int(np.searchsorted(vertices, done_before + max_vertices, side="right"))
        last = min(max(last, first + 1), len(geoms))
        pieces.append(slice(first, last))
        first = last
    return pieces


def _nearest_km(job) -> np.ndarray:
    """:func:`_nearest_sector_km` of ``(gaps, CRS WKT, sector x y or None)``."""
    gap_geoms, crs_wkt, xy = job
    out = np.full(len(gap_geoms), np.nan)
    if xy is None or len(xy) == 0 or len(gap_geoms) == 0:
        return out
    points = shapely.points(xy)
    tree = shapely.STRtree(points)
    to_lonlat = Transformer.from_crs(crs_wkt, 4326, always_xy=True)
    # gaps in chunks of about _NEAREST_CHUNK_VERTICES boundary vertices: a national
    # layer's gaps have tens of millions, and the boundary pieces are GEOS geometries
    for piece in _vertex_pieces(gap_geoms, _NEAREST_CHUNK_VERTICES):
        chunk = np.arange(len(gap_geoms))[piece]
        gap_idx, best_piece, best_pt, pieces = _nearest_pieces(gap_geoms[chunk], tree)
        lines = shapely.shortest_line(pieces[best_piece], points[best_pt])
        line_coords = shapely.get_coordinates(lines).reshape(-1, 2, 2)
        lon0, lat0 = to_lonlat.transform(line_coords[:, 0, 0], line_coords[:, 0, 1])
        lon1, lat1 = to_lonlat.transform(line_coords[:, 1, 0], line_coords[:, 1, 1])
        _, _, dist_m = _GEOD.inv(lon0, lat0, lon1, lat1)
        out[chunk[gap_idx]] = np.asarray(dist_m) / 1000.0
    holding, _ = tree.query(gap_geoms, predicate="contains")
    out[np.unique(holding)] = 0.0
    return out


# Boundary vertices of the gaps handled at once by _nearest_km (and per process job).
_NEAREST_CHUNK_VERTICES = 1_000_000


#: Boundary segments per linestring searched for its nearest sector: one tree query per
#: run of segments instead of per segment (7x faster on a national layer, same answers:
#: the nearest point to a run is the nearest to one of its segments).
_SEGMENTS_PER_PIECE = 32


def _nearest_pieces(gap_geoms, tree):
    """Per gap (index into ``gap_geoms``): its boundary piece nearest to a tree point, and that point.

    Returns ``(gap index, piece index, point index, pieces)``: the boundary cut into
    linestrings of up to :data:`_SEGMENTS_PER_PIECE` consecutive segments of a ring.
    """
    pieces, gap_of_piece = _boundary_pieces(gap_geoms, _SEGMENTS_PER_PIECE)
    piece_idx, pt_idx = tree.query_nearest(pieces, all_matches=False)
    piece_dist = shapely.distance(pieces[piece_idx], tree.geometries[pt_idx])
    order = np.lexsort((piece_dist, gap_of_piece[piece_idx]))
    gap_sorted = gap_of_piece[piece_idx][order]
    first = np.flatnonzero(np.r_[True, gap_sorted[1:] != gap_sorted[:-1]])
    return gap_sorted[first], piece_idx[order][first], pt_idx[order][first], pieces


def _boundary_pieces(gap_geoms, segments_per_piece: int):
    """The rings of ``gap_geoms`` cut into linestrings of up to ``segments_per_piece`` segments.

    Consecutive pieces of a ring share their end vertex. Returns the pieces and the
    index of the gap each belongs to.
    """
    rings, gap_of_ring = shapely.get_rings(gap_geoms, return_index=True)
    coords, ring_of_vertex = shapely.get_coordinates(rings, return_index=True)
    n_vertices = np.bincount(ring_of_vertex, minlength=len(rings))
    ring_first = np.cumsum(n_vertices) - n_vertices
    n_segments = n_vertices - 1
    pieces_per_ring = -(-n_segments // segments_per_piece)
    piece_ring = np.repeat(np.arange(len(rings)), pieces_per_ring)
    piece_in_ring = np.arange(piece_ring.size) - np.repeat(np.cumsum(pieces_per_ring) - pieces_per_ring,
                                                           pieces_per_ring)
    first_vertex = ring_first[piece_ring] + piece_in_ring * segments_per_piece
    piece_vertices = np.minimum(segments_per_piece, n_segments[piece_ring] - piece_in_ring * segments_per_piece) + 1
    piece_start = np.cumsum(piece_vertices) - piece_vertices
    vertex = np.repeat(first_vertex - piece_start, piece_vertices) + np.arange(piece_vertices.sum())
    pieces = shapely.linestrings(coords[vertex], indices=np.repeat(np.arange(piece_ring.size), piece_vertices))
    return pieces, gap_of_ring[piece_ring]

"""The tile scheduler: which tiles to compute where, the combined layer, and writing them.

:func:`_tile_task` is what a worker runs (Dask pickles it by name:
``coverage.predict.tiles._tile_task``).
"""

from __future__ import annotations

import time

import numpy as np

from coverage.layout import ALL_OPERATORS
from coverage.predict.executors import _executor
from coverage.predict.kernel import combine_layers, predict_tile
from coverage.predict.overviews import tile_overviews
from coverage.predict.writers import GDAL_CACHE_MB, _LayerWriters


def _with_overviews(layer, factors):
    return None if layer is None else (layer[0], layer[1], tile_overviews(layer[0], layer[1], factors))


def _tile_task(col0, row0, size_px, resolution_m, ue_height_m, sectors, operator_index, n_operators, factors=(),
               terrain=None):
    """One tile of the operators given: (layers, evaluations per operator, terrain samples).

    ``layers`` holds one ``(rsrp, class, overviews)`` triple per operator
    (:func:`tile_overviews` at ``factors``), None for an operator with no sector in
    the tile (all nodata: neither sent back nor written, the GeoTIFF's sparse blocks
    read as nodata), then their combination (:func:`combine_layers`). ``terrain`` is
    None (flat earth, :func:`~coverage.predict.kernel.predict_tile`) or ``(setup,
    tech_terrain)`` (:mod:`coverage.predict.terrain_tile`); the third item counts the
    terrain lattice points read and how many of them were filled nodata.
    """
    layers: list = [None] * (n_operators + 1)
    evaluations = np.zeros(n_operators, dtype=np.int64)
    lattice = (0, 0)
    tile_inputs = None
    if terrain is not None:
        from coverage.predict.terrain_tile import predict_tile_terrain, tile_terrain

        setup, tech_inputs = terrain
        tile_inputs = tile_terrain(setup, tech_inputs, col0, row0, size_px, sectors)
        lattice = (tile_inputs.samples, tile_inputs.filled)
    for k in range(n_operators):
        mine = np.flatnonzero(operator_index == k)
        if mine.size == 0:
            continue
        subset = {name: values[mine] for name, values in sectors.items()}
        if tile_inputs is None:
            rsrp, cls, evaluations[k] = predict_tile(subset, col0, row0, size_px, size_px, resolution_m, ue_height_m)
        else:
            rsrp, cls, evaluations[k], _ = predict_tile_terrain(subset, setup, tech_inputs, tile_inputs, col0, row0,
                                                                size_px, ue_height_m)
        layers[k] = (rsrp, cls)
    computed = [layer for layer in layers[:n_operators] if layer is not None]
    if len(computed) == 1:
        layers[n_operators] = computed[0]
    elif computed:
        layers[n_operators] = combine_layers(np.stack([r for r, _ in computed]), np.stack([c for _, c in computed]))
    with_overviews = {}  # a lone operator's layer is also the combined one: one set of overviews
    for layer in layers:
        if layer is not None and id(layer) not in with_overviews:
            with_overviews[id(layer)] = _with_overviews(layer, factors)
    return [None if layer is None else with_overviews[id(layer)] for layer in layers], evaluations, lattice


def _run_tiles(grid, prepared, binned, layout, scheduler, n_workers, progress, timings, reused,
               terrain=None) -> dict:
    """Compute every tile with a candidate sector and write the layers (see :func:`_write_tiles`)."""
    import rasterio

    # GDAL's block cache defaults to 5 % of RAM and fills with the blocks of every
    # layer being written: a fixed size keeps this process's memory independent of
    # the extent (the bytes written do not depend on it)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        return _write_tiles(grid, prepared, binned, layout, scheduler, n_workers, progress, timings, reused,
                            terrain)


def _write_tiles(grid, prepared, binned, layout, scheduler, n_workers, progress, timings, reused,
                 terrain=None) -> dict:
    """Compute every tile with a candidate sector and write the layers.

    Operator layers in ``reused`` (``{tech: {operator: …}}``) are not computed: their
    COGs stay as they are and the combined layer reads their tiles from them.
    Returns the evaluations of each computed operator layer, ``{tech: {operator: n}}``,
    and adds ``scheduler_start``, ``tiles`` and ``cog`` (seconds) to ``timings``.
    ``terrain`` is None or ``{tech: (setup, tech_terrain)}``; the terrain lattice
    points read and filled are added to ``timings["terrain_lattice"]`` as a pair.
    """
    import rasterio

    # temporaries a killed run left beside our layers: working files, atomic-output
    # files and GDAL's overview scratch files (".nbiot_ct_rsrp.x1y2.tif.ovr.tmp")
    stems = {layout.predict_report.stem}
    for tech, prep in prepared.items():
        for op in (*prep.operators, ALL_OPERATORS):
            stems |= {layout.rsrp(tech, op).stem, layout.coverage_class(tech, op).stem}
    for stem in stems:
        for stale in layout.raster_dir.glob(f".{stem}.*"):
            stale.unlink(missing_ok=True)
    plans = {}  # tech -> (computed operators, reused operators)
    for tech, prep in prepared.items():
        kept = [op for op in prep.operators if op in reused.get(tech, {})]
        plans[tech] = ([op for op in prep.operators if op not in kept], kept)
    jobs = []  # (tech, tile index, candidate rows)
    for tech, tiles in binned.items():
        for tile_id, rows in tiles.items():
            jobs.append((tech, tile_id, rows))
    total = len(jobs)
    evaluations = {tech: dict.fromkeys(plans[tech][0], 0) for tech in prepared}
    writers: dict[str, _LayerWriters] = {}
    sources: dict[str, list] = {}  # tech -> [(operator index, rsrp dataset, class dataset)] of reused layers
    executor = None
    done = 0

    def tick():
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    def write(tech, tile_id, rows, layers):
        """Write the computed layers, and the combined one with the reused layers' tile."""
        tile = grid.tile(tile_id)
        if sources[tech]:
            present = set(prepared[tech].operator_index[rows].tolist())
            window = tile.window()
            parts = [layers[-1]] if layers[-1] is not None else []
            for k, rsrp_ds, class_ds in sources[tech]:
                if k in present:
                    parts.append((rsrp_ds.read(1, window=window), class_ds.read(1, window=window)))
            combined = combine_layers(np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts]))
            layers[-1] = _with_overviews(combined, writers[tech].factors)
        writers[tech].write(tile, layers)

    try:
        for tech, prep in prepared.items():
            computed, kept = plans[tech]
            paths = [(layout.rsrp(tech, op), layout.coverage_class(tech, op)) for op in computed]
            paths.append((layout.rsrp(tech), layout.coverage_class(tech)))
            writers[tech] = _LayerWriters(grid, paths, layout.raster_dir)
            sources[tech] = [
                (prep.operators.index(op), rasterio.open(layout.rsrp(tech, op)),
                 rasterio.open(layout.coverage_class(tech, op)))
                for op in kept
            ]
        t0 = time.perf_counter()
        executor = _executor(scheduler, n_workers)
        timings["scheduler_start"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        max_in_flight = 2 * executor.workers + 2
        pending = iter(jobs)
        in_flight = 0

        def submit_next() -> bool:
            """Submit the next tile that has a sector of a computed layer (others are combined here)."""
            while True:
                job = next(pending, None)
                if job is None:
                    return False
                tech, tile_id, rows = job
                prep = prepared[tech]
                computed = plans[tech][0]
                local = np.full(len(prep.operators), -1, dtype=np.int64)
                for j, op in enumerate(computed):
                    local[prep.operators.index(op)] = j
                op_index = local[prep.operator_index[rows]]
                mine = rows[op_index >= 0]
                if mine.size == 0:
                    # only reused operators' sectors here: the combined layer alone
                    write(tech, tile_id, rows, [None] * (len(computed) + 1))
                    tick()
                    continue
                tile = grid.tile(tile_id)
                subset = {name: values[mine] for name, values in prep.arrays.items()}
                executor.submit(
                    f"covmap-tile-{tech}-{tile_id}", _tile_task,
                    grid.col0 + tile.col_off, grid.row0 + tile.row_off, grid.tile_size_px, grid.resolution_m,
                    prep.ue_height_m, subset, op_index[op_index >= 0], len(computed), writers[tech].factors,
                    None if terrain is None else terrain[tech],
                )
                job_rows[(tech, tile_id)] = rows
                return True

        job_rows: dict[tuple[str, int], np.ndarray] = {}
        lattice_counts = [0, 0]
        timings["terrain_lattice"] = lattice_counts
        while in_flight < max_in_flight and submit_next():
            in_flight += 1
        while in_flight:
            key, (layers, n, lattice) = executor.next_done()
            lattice_counts[0] += lattice[0]
            lattice_counts[1] += lattice[1]
            in_flight -= 1
            _, _, tech, tile_id = key.split("-", 3)
            rows = job_rows.pop((tech, int(tile_id)))
            write(tech, int(tile_id), rows, layers)
            for j, op in enumerate(plans[tech][0]):
                evaluations[tech][op] += int(n[j])
            tick()
            if submit_next():
                in_flight += 1
        executor.close()
        executor = None
        timings["tiles"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for tech_sources in sources.values():
            for _, rsrp_ds, class_ds in tech_sources:
                rsrp_ds.close()
                class_ds.close()
        sources.clear()
        for writer in writers.values():
            writer.finish()
        timings["cog"] = time.perf_counter() - t0
    except BaseException:
        for tech_sources in sources.values():
            for _, rsrp_ds, class_ds in tech_sources:
                rsrp_ds.close()
                class_ds.close()
        for writer in writers.values():
            writer.discard()
        if executor is not None:
            executor.close()
        raise
    return evaluations

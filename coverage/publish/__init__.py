"""Publishing: the static, offline-ready HTML coverage site (folium + bundled Leaflet).

:func:`write_site` is the entry point (``covmap publish``); :mod:`.layers` turns
the run's tables and rasters into display data, :mod:`.site` writes the pages.
"""

from coverage.publish.site import BASEMAPS, EDITIONS, write_site

__all__ = ["BASEMAPS", "EDITIONS", "write_site"]

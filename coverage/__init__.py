"""covmap: China's national NB-IoT and 5G RedCap coverage map.

The package is a pipeline of stage modules, data flowing one way::

    ingest -> predict -> zonal / gaps -> publish

``coverage.pipeline.build`` runs them all; each stage is also a plain function.
"""

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

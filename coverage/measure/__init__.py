"""Measurements: the intake of drive tests, scanner and handset logs and MR exports.

``read_measurements`` reads and validates measurement files into a
:class:`MeasurementIntake` (``measurements`` GeoDataFrame in EPSG:4326 and
``rejects``), like ``coverage.ingest.read_submissions`` does for submissions.
"""

from coverage.measure.intake import (
    MeasurementIntake,
    read_measurement_table,
    read_measurements,
    validate_measurements_to_dir,
    write_measurements,
)
from coverage.measure.schema import MEASUREMENT_COLUMNS

__all__ = [
    "MEASUREMENT_COLUMNS",
    "MeasurementIntake",
    "read_measurement_table",
    "read_measurements",
    "validate_measurements_to_dir",
    "write_measurements",
]

"""Typed errors and warnings of the library.

Only ``cli.py`` turns these into messages and exit codes: every
:class:`CoverageError` means "could not run" (exit 2) and its message names the
input at fault.
"""


class CoverageError(Exception):
    """Base class of every error the library raises on purpose."""


class InputReadError(CoverageError):
    """A submission or boundary file cannot be read at all (format, encoding, columns)."""


class SchemaError(CoverageError, ValueError):
    """A table does not have the columns or types a stage requires."""


class RepeatedColumnError(SchemaError):
    """A submission names one column twice (two ``lon``, or ``lon`` and its alias ``经度``)."""


class CRSMismatchError(CoverageError, ValueError):
    """Inputs are in coordinate systems that cannot be combined as given."""


class GridMismatchError(CRSMismatchError):
    """Two runs' rasters are not on one pixel lattice (CRS, resolution or alignment differ)."""


class IncompleteRunError(InputReadError):
    """A run directory lacks a file a command needs (the message names the file and the run)."""


class ConfigError(CoverageError, ValueError):
    """The TOML configuration has an unknown key, a wrong type or a value out of range."""


class BoundaryError(CoverageError, ValueError):
    """Administrative boundaries are missing, invalid or lack required attributes."""


class EmptyCoverageError(CoverageError):
    """A stage was given nothing to work on (no sectors, no units, no raster cells)."""


class FileOverwriteError(CoverageError, FileExistsError):
    """An output would replace a user's existing file and overwrite was not allowed."""


class StageError(CoverageError):
    """A pipeline stage failed; names the stage, the input and the reason."""

    def __init__(self, stage: str, input_name: str, reason: str):
        self.stage = stage
        self.input_name = input_name
        self.reason = reason
        super().__init__(f"stage '{stage}' failed on {input_name}: {reason}")


class CoverageWarning(UserWarning):
    """Base class of the library's warnings."""


class ModelValidityWarning(CoverageWarning):
    """A path-loss model was used outside its published validity range."""


class SyntheticDataWarning(CoverageWarning):
    """Synthetic data (e.g. generated township polygons) is being used."""


class PublishError(CoverageError, ValueError):
    """The site cannot be published as asked (edition, operator, base map or key)."""


class ArgumentError(CoverageError, ValueError):
    """A library function was called with an argument it cannot use (the message names it)."""


class UnknownUnitError(CoverageError, LookupError):
    """An administrative unit code (e.g. a county asked for by ``covmap gaps``) is not in the run."""


class RadioModelError(CoverageError, ValueError):
    """A radio model was asked for something it does not know (model, technology, environment)."""


class TerrainError(CoverageError):
    """Terrain or land-cover data cannot be used as asked (base of the terrain errors)."""


class TerrainSourceError(TerrainError, OSError):
    """A DEM or land-cover source is missing, unreadable, lacks a CRS or a usable variable.

    The message names the file (or folder) at fault; for the embedded default data it
    says to run ``covmap data fetch``.
    """


class TerrainCoverageError(TerrainError, ValueError):
    """A DEM or land-cover source does not cover the run's extent or its sites.

    The message names the file, the extent it covers and the part that is missing
    (or how many sites lie outside, and the first few).
    """

"""Errors a user can cause. Each message says what went wrong and what to do about it."""


class FmnistError(Exception):
    """Base class: the CLI prints these without a traceback and the pages show them as messages."""

    exit_code = 1


class DataError(FmnistError):
    """Fashion-MNIST is missing, damaged or not the official content."""

    exit_code = 3


class CacheError(FmnistError):
    """A cached model is missing, damaged, or the cache folder is unusable."""

    exit_code = 4


class ConfigError(FmnistError, ValueError):
    """A setting is out of range (negative epochs, batch size 0, unknown model...)."""

    exit_code = 2


class ExplainError(FmnistError, ValueError):
    """An image, class or model that cannot be explained: wrong shape or dtype, unknown class, not one of ours."""

    exit_code = 2


class BusyError(FmnistError):
    """Another heavy job (training or a race) is already running."""

    exit_code = 5


class RecordError(CacheError, ValueError):
    """A cache entry's meta.json does not hold a valid model record; the message names the field at fault."""


class ClusterError(FmnistError):
    """The Dask engine let a training or sweep down: scheduler unreachable, workers gone, or runs that failed."""

    exit_code = 6

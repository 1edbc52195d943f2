"""ptypinn: physics-informed neural-network ptychography and the dose x overlap study."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ptypinn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

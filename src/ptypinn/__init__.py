"""ptypinn: physics-informed neural-network ptychography and the dose x overlap study.

The Python API (:mod:`ptypinn.api`) is importable from here: ``simulate``, ``load_dataset``,
``train``, ``reconstruct``, ``score``, ``run_study``, ``StudyDesign``, ``preset`` and
``load_design``. Names are imported on first use, so ``import ptypinn`` stays cheap.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ptypinn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_EXPORTS = {
    "simulate": "ptypinn.api",
    "train": "ptypinn.api",
    "reconstruct": "ptypinn.api",
    "score": "ptypinn.api",
    "run_study": "ptypinn.api",
    "load_dataset": "ptypinn.io.dataset",
    "PtychoDataset": "ptypinn.io.dataset",
    "StudyDesign": "ptypinn.study.design",
    "preset": "ptypinn.study.design",
    "load_design": "ptypinn.study.design",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ptypinn' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)

"""torchvision's ``GaussianBlur`` in torch, for importing pty-chi where torchvision cannot load.

pty-chi imports ``from torchvision.transforms import GaussianBlur`` at module level
(``ptychi/utils.py``) and uses nothing else of torchvision; it blurs a random image with it in
``generate_gaussian_random_image``. A torchvision build must match the installed torch: the
only torchvision wheel for a CPU-only torch 2.13 here is a CUDA build whose import fails
(``RuntimeError: operator torchvision::nms does not exist``), so ``import ptychi`` fails too.

:func:`import_with_torchvision` imports a module (pty-chi) after trying the real
``import torchvision.transforms``. Where that works, torchvision is used untouched. Where it
raises, stand-in ``torchvision`` and ``torchvision.transforms`` modules holding
:class:`GaussianBlur` sit in ``sys.modules`` only while the module is imported, and are removed
afterwards, so later imports of torchvision behave as if this module had never run.

:class:`GaussianBlur` follows torchvision's transform: an odd ``kernel_size`` (int or pair), a
fixed ``sigma`` or a ``(min, max)`` range it draws ``sigma`` from uniformly with torch's global
generator (as torchvision does), a normalised separable Gaussian kernel sampled at integer
offsets, reflect padding, and a per-channel convolution over the last two axes.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

TORCHVISION = "torchvision"


def _pair(value: float | Sequence[float], name: str) -> tuple[float, float]:
    pair = (value, value) if isinstance(value, (int, float)) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be a number or a pair, got {value!r}")
    return float(pair[0]), float(pair[1])


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """The normalised 1-D Gaussian of ``size`` taps centred on the middle one."""
    half = (size - 1) / 2
    offsets = torch.linspace(-half, half, steps=size)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


class GaussianBlur(torch.nn.Module):
    """Stand-in for ``torchvision.transforms.GaussianBlur`` (see the module docstring)."""

    def __init__(
        self, kernel_size: int | Sequence[int], sigma: float | Sequence[float] = (0.1, 2.0)
    ) -> None:
        super().__init__()
        sizes = _pair(kernel_size, "kernel_size")
        if any(size <= 0 or size % 2 == 0 or not size.is_integer() for size in sizes):
            raise ValueError(f"kernel_size must hold odd positive integers, got {kernel_size!r}")
        self.kernel_size = (int(sizes[0]), int(sizes[1]))
        self.sigma = _pair(sigma, "sigma")
        if not 0 < self.sigma[0] <= self.sigma[1]:
            raise ValueError(f"sigma must be positive and given as (min, max), got {sigma!r}")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Blur ``image`` (..., H, W) over its last two axes with one ``sigma`` for both."""
        sigma = float(torch.empty(1).uniform_(self.sigma[0], self.sigma[1]).item())
        across, down = self.kernel_size  # torchvision: kernel_size = (width, height)
        kernel = torch.outer(gaussian_kernel(down, sigma), gaussian_kernel(across, sigma))
        shape = image.shape
        planes = image.reshape(-1, 1, *shape[-2:])
        kernel = kernel.to(dtype=planes.dtype, device=planes.device)
        padded = F.pad(planes, (across // 2, across // 2, down // 2, down // 2), mode="reflect")
        return F.conv2d(padded, kernel[None, None]).reshape(shape)


@dataclass(frozen=True)
class TorchvisionStatus:
    """How ``GaussianBlur`` was provided: ``fallback`` is ``None`` when the real torchvision
    loaded, else why it could not be imported."""

    fallback: str | None

    @property
    def source(self) -> str:
        if self.fallback is None:
            return "torchvision"
        return f"ptypinn.engines.torchvision_shim (torchvision failed to import: {self.fallback})"


def torchvision_error() -> str | None:
    """Why ``import torchvision.transforms`` fails here (``None`` if it works)."""
    try:
        importlib.import_module(f"{TORCHVISION}.transforms")
    except (
        Exception
    ) as error:  # ImportError, or RuntimeError/OSError from a build for another torch
        _forget_torchvision()
        return f"{type(error).__name__}: {error}"
    return None


def _forget_torchvision() -> None:
    """Drop every (half-initialised) torchvision module a failed import left behind."""
    for name in [
        name for name in sys.modules if name == TORCHVISION or name.startswith(TORCHVISION + ".")
    ]:
        del sys.modules[name]


@contextlib.contextmanager
def _stand_in() -> Iterator[None]:
    package = types.ModuleType(TORCHVISION, "Stand-in from ptypinn.engines.torchvision_shim.")
    transforms = types.ModuleType(f"{TORCHVISION}.transforms", "GaussianBlur only.")
    # stand-in modules built at run time: their attributes are unknown to the type checker
    transforms.GaussianBlur = GaussianBlur  # type: ignore[attr-defined]
    package.transforms = transforms  # type: ignore[attr-defined]
    sys.modules[TORCHVISION] = package
    sys.modules[transforms.__name__] = transforms
    try:
        yield
    finally:
        _forget_torchvision()


_IMPORTED: dict[str, TorchvisionStatus] = {}


def import_with_torchvision(module: str) -> tuple[types.ModuleType, TorchvisionStatus]:
    """Import ``module``, with the stand-in torchvision in place only if the real one fails."""
    if module not in _IMPORTED:
        error = torchvision_error()
        if error is None:
            importlib.import_module(module)
        else:
            with _stand_in():
                importlib.import_module(module)
        _IMPORTED[module] = TorchvisionStatus(error)
    return sys.modules[module], _IMPORTED[module]

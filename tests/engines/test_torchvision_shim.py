"""The GaussianBlur stand-in, used only when the real torchvision fails to import."""

import sys

import numpy as np
import pytest
import torch
from scipy.ndimage import correlate

from ptypinn.engines import torchvision_shim
from ptypinn.engines.torchvision_shim import GaussianBlur, import_with_torchvision


def test_blur_is_the_normalised_sampled_gaussian_with_reflect_padding(rng):
    image = rng.random((2, 3, 20, 24)).astype(np.float32)
    blurred = GaussianBlur(kernel_size=(9, 5), sigma=(3, 3))(torch.from_numpy(image)).numpy()
    across, down = np.arange(9) - 4, np.arange(5) - 2  # torchvision: kernel_size = (width, height)
    kernel = np.outer(np.exp(-(down**2) / 18), np.exp(-(across**2) / 18))
    kernel /= kernel.sum()
    expected = correlate(
        image, kernel[None, None], mode="mirror"
    )  # numpy/torch "reflect" is scipy's "mirror"
    np.testing.assert_allclose(blurred, expected, rtol=1e-5, atol=1e-6)


def test_blur_draws_sigma_from_its_range_with_torchs_generator():
    image = torch.rand(1, 1, 16, 16)
    torch.manual_seed(1)
    drawn = GaussianBlur(9, sigma=(1.0, 2.0))(image)
    torch.manual_seed(1)
    sigma = torch.empty(1).uniform_(1.0, 2.0).item()
    np.testing.assert_allclose(
        drawn.numpy(), GaussianBlur(9, sigma=sigma)(image).numpy(), rtol=1e-6
    )
    with pytest.raises(ValueError, match="odd positive"):
        GaussianBlur(4)


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """A folder on sys.path where a test writes a torchvision package and a module using it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(torchvision_shim, "_IMPORTED", {})
    for name in [
        name for name in sys.modules if name.split(".")[0] in ("torchvision", "uses_blur")
    ]:
        monkeypatch.delitem(sys.modules, name)
    (tmp_path / "uses_blur.py").write_text("from torchvision.transforms import GaussianBlur\n")
    package = tmp_path / "torchvision"
    package.mkdir()
    yield package
    for name in [
        name for name in sys.modules if name.split(".")[0] in ("torchvision", "uses_blur")
    ]:
        del sys.modules[name]


def test_the_stand_in_is_used_when_torchvision_fails_to_import(packages):
    # As the CUDA build does with a CPU-only torch.
    (packages / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n"
    )
    module, status = import_with_torchvision("uses_blur")
    assert module.GaussianBlur is GaussianBlur
    assert status.fallback == "RuntimeError: operator torchvision::nms does not exist"
    assert "torchvision_shim" in status.source
    assert "torchvision" not in sys.modules  # the stand-in is gone once the module is imported


def test_a_torchvision_that_imports_is_used_untouched(packages):
    (packages / "__init__.py").write_text("from . import transforms\n")
    (packages / "transforms.py").write_text("class GaussianBlur:\n    pass\n")
    module, status = import_with_torchvision("uses_blur")
    assert module.GaussianBlur is sys.modules["torchvision.transforms"].GaussianBlur
    assert module.GaussianBlur is not GaussianBlur
    assert status.fallback is None and status.source == "torchvision"

import pytest
import torch
from torch import nn

from ptypinn.physics.canvas import canvas_size, extract_from_canvas, place
from ptypinn.physics.forward import extract_patches, translate


@pytest.fixture
def group():
    """Eight groups of four 16 px patches at sub-pixel offsets, with offsets on the canvas's
    reach in both directions."""
    generator = torch.Generator().manual_seed(0)
    patches = torch.randn(8, 4, 16, 16, dtype=torch.complex64, generator=generator)
    offsets = (torch.rand(8, 4, 2, generator=generator) - 0.5) * 9
    offsets[0, :2] = torch.tensor([[4.5, -4.5], [-4.5, 4.0]])
    return patches, offsets, canvas_size(16, offsets)


def test_place_is_each_patch_padded_to_the_canvas_and_translated(group):
    """The block-and-blend placement equals moving each padded patch with
    :func:`ptypinn.physics.forward.translate` (whole-image bilinear sampling) and summing."""
    patches, offsets, size = group
    pad = (size - 16) // 2
    padded = nn.functional.pad(patches.reshape(32, 16, 16), (pad, pad, pad, pad))
    expected = translate(padded, offsets.reshape(32, 2)).reshape(8, 4, size, size).sum(1)
    torch.testing.assert_close(place(patches, offsets, size), expected, atol=1e-5, rtol=0)


def test_extract_is_the_patch_sampled_about_the_canvas_centre(group):
    patches, offsets, size = group
    canvas = place(patches, offsets, size)
    expected = extract_patches(canvas, offsets + size // 2, 16)
    torch.testing.assert_close(
        extract_from_canvas(canvas, offsets, 16), expected, atol=1e-5, rtol=0
    )


def test_integer_offsets_place_and_cut_exactly(group):
    patches, _, _ = group
    offsets = torch.tensor([[[3.0, -2.0]]]).expand(8, 1, 2)
    size = canvas_size(16, offsets)
    canvas = place(patches[:, :1], offsets, size)
    top, left = size // 2 - 8 - 2, size // 2 - 8 + 3
    assert torch.equal(canvas[:, top : top + 16, left : left + 16], patches[:, 0])
    assert torch.equal(extract_from_canvas(canvas, offsets, 16)[:, 0], patches[:, 0])


def test_offsets_beyond_the_canvas_are_refused(group):
    patches, offsets, size = group
    with pytest.raises(ValueError, match="do not fit"):
        place(patches, offsets * 3, size)

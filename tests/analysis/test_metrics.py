import math

import numpy as np
import pytest
from scipy import ndimage

from ptypinn.analysis import metrics
from ptypinn.physics.samples import default_object


@pytest.fixture(scope="module")
def truth():
    return default_object(128).astype(np.complex128)


@pytest.fixture(scope="module")
def region():
    mask = np.zeros((128, 128), bool)
    mask[16:112, 16:112] = True
    return mask


def test_alignment_removes_shift_ramp_and_gain(truth, region):
    shifted = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(truth), (0.7, -1.3)))  # (dy, dx)
    yy, xx = np.indices(truth.shape)
    recon = shifted * 0.8 * np.exp(1j * (1.0 + 0.02 * xx - 0.01 * yy))
    aligned, found = metrics.align(recon, truth, region)
    assert found.shift == pytest.approx((1.3, -0.7), abs=0.05)  # (x, y) that undoes the (-1.3, 0.7) move
    assert found.ramp == pytest.approx((-0.02, 0.01), abs=1e-4)
    assert abs(found.gain) == pytest.approx(1 / 0.8, rel=1e-3)
    assert np.abs(aligned - truth)[region].max() < 5e-3


def test_identical_images_score_perfectly(truth, region):
    scores = metrics.score(truth, truth, region)
    for component in ("amplitude", "phase"):
        values = scores[component]
        assert values["ssim"] == pytest.approx(1.0, abs=1e-9)
        assert values["ms_ssim"] == pytest.approx(1.0, abs=1e-9)
        assert values["mae"] == pytest.approx(0.0, abs=1e-12)
        assert values["frc50"] == pytest.approx(values["frc_half_bit"])
        assert values["frc50"] == pytest.approx(0.5, abs=0.02)  # never drops: cut-off at Nyquist


def test_psnr_of_a_constant_offset_is_analytic(truth, region):
    ref = np.angle(truth)
    offset = 0.05
    span = ref[region].max() - ref[region].min()
    assert metrics.psnr(ref + offset, ref, region) == pytest.approx(20 * math.log10(span / offset), rel=1e-9)
    assert metrics.psnr(ref, ref, region) is None
    assert metrics.mae(ref + offset, ref, region) == pytest.approx(offset)


def test_ms_ssim_drops_with_blur_and_works_on_64px(truth):
    region = np.zeros((128, 128), bool)
    region[32:96, 32:96] = True
    ref = np.abs(truth)
    assert metrics.ms_ssim(ref, ref, region) == pytest.approx(1.0, abs=1e-9)
    mild, strong = (metrics.ms_ssim(ndimage.gaussian_filter(ref, s), ref, region) for s in (1.0, 3.0))
    assert 1.0 > mild > strong


def test_frc_of_independent_white_noise_is_near_zero():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(128, 128)), rng.normal(size=(128, 128))
    curve = metrics.frc(a, b, np.ones((128, 128), bool))
    # For independent noise each ring's FRC has standard deviation ~ 1/sqrt(n_ring).
    _, counts = np.unique(np.rint(np.hypot(*(np.indices((128, 128)) - 64))).astype(int), return_counts=True)
    sigma = 1 / np.sqrt(counts[1:64])
    assert np.mean(np.abs(curve.correlation) / sigma) < 1.5
    assert curve.cutoff_half < 0.05  # falls below 0.5 at once


def test_frc_sees_the_cut_off_of_a_low_pass_filter():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(128, 128))
    spectrum = np.fft.fftshift(np.fft.fft2(a))
    yy, xx = np.indices(a.shape) - 64
    cut = 0.25  # cycles per pixel
    spectrum[np.hypot(xx, yy) / 128 > cut] = 0
    filtered = np.fft.ifft2(np.fft.ifftshift(spectrum)).real
    noisy = filtered + 0.05 * rng.normal(size=a.shape)
    curve = metrics.frc(noisy, filtered + 0.05 * rng.normal(size=a.shape), np.ones(a.shape, bool))
    assert curve.cutoff_half == pytest.approx(cut, abs=0.02)
    assert curve.cutoff_half_bit == pytest.approx(cut, abs=0.02)


def test_empty_region_is_refused(truth):
    with pytest.raises(ValueError, match="empty"):
        metrics.score(truth, truth, np.zeros(truth.shape, bool))


def test_centre_box_spans_the_probe_centres_inside_the_image():
    positions = np.array([[10.4, 5.0], [20.0, 7.6], [-3.0, 30.2]])  # (x, y); one centre left of the image
    region = metrics.centre_box(positions, (40, 25))
    rows, cols = metrics.region_box(region)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (5, 31, 0, 21)
    assert region.sum() == 26 * 21

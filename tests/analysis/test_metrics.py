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


def band_limited_object(size: int, seed: int, cutoff: float = 0.2) -> np.ndarray:
    """A periodic complex object with no content above ``cutoff`` cycles/px: a Fourier phase
    moves it exactly, so a window onto it moved by a known sub-pixel shift is known exactly."""
    rng = np.random.default_rng(seed)
    frequency = np.fft.fftfreq(size)
    keep = np.hypot(*np.meshgrid(frequency, frequency, indexing="ij")) < cutoff
    noise = rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))
    field = np.fft.ifft2(np.where(keep, noise, 0))
    return 0.8 + 0.15 * field / field.std()  # amplitude about 0.4-1.2, phase about +-0.6 rad


WINDOW = (slice(32, 160), slice(32, 160))  # 128 px window onto a 192 px periodic object


def moved_window(big: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """The window of ``big`` after its content moved by ``shift = (dx, dy)`` px (exact, no wrap
    into the window: content enters from the object around it)."""
    return np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(big), (shift[1], shift[0])))[WINDOW]


@pytest.mark.parametrize("noise", [0.0, 0.05])
@pytest.mark.parametrize("move", [(-1.3, 0.7), (0.45, -2.2), (2.6, 1.1)])
def test_alignment_recovers_known_shift_ramp_phase_and_gain(region, move, noise):
    big = band_limited_object(192, seed=1)
    truth = big[WINDOW]
    yy, xx = np.indices(truth.shape)
    phase0, ramp, amplitude = 1.0, np.array([0.02, -0.01]), 0.8
    factor = amplitude * np.exp(1j * (phase0 + ramp[0] * xx + ramp[1] * yy))
    recon = moved_window(big, move) * factor
    rng = np.random.default_rng(3)
    recon = recon + noise * (rng.normal(size=recon.shape) + 1j * rng.normal(size=recon.shape))
    aligned, found = metrics.align(recon, truth, region, max_shift=3.0)
    exact = noise == 0
    assert found.shift == pytest.approx((-move[0], -move[1]), abs=1e-4 if exact else 0.03)
    assert found.ramp == pytest.approx(tuple(-ramp), abs=1e-6 if exact else 2e-4)
    # aligned = gain exp(i ramp'.(r - o)) recon(r - s) = truth gives this gain (r is (x, y)):
    origin, shift = np.array(found.ramp_origin), np.array(found.shift)
    expected = np.exp(-1j * (phase0 + ramp @ origin - ramp @ shift)) / amplitude
    # with noise the least-squares gain shrinks by signal / (signal + noise) power
    shrink = np.mean(np.abs(truth[region]) ** 2 * amplitude**2)
    shrink /= shrink + 2 * noise**2
    assert abs(found.gain) == pytest.approx(abs(expected) * shrink, rel=2e-3)
    assert np.angle(found.gain / expected) == pytest.approx(0.0, abs=1e-5 if exact else 3e-3)
    assert not found.bound_hit
    if exact:
        assert np.abs(aligned - truth)[region].max() < 5e-3
        assert found.residual < 1e-6
    else:  # the noise left: (1 - shrink) of the truth's power, relative to its variance
        inside = truth[region]
        expected_residual = (1 - shrink) * np.mean(np.abs(inside) ** 2) / np.var(inside)
        assert found.residual == pytest.approx(expected_residual, rel=0.05)


def test_alignment_never_wraps_content_around(region):
    """A bright bar at the right edge moved right must not reappear at the left edge."""
    image = np.ones((128, 128), complex)
    image[:, 120:] = 5.0
    moved = metrics.translate(image, (3.0, 0.0))
    assert np.allclose(moved[:, :10], 1.0, atol=1e-9)
    assert np.allclose(moved[:, 123:], 5.0, atol=1e-9)


@pytest.mark.parametrize("shift", [(3.0, 0.0), (-2.0, 5.0), (0.0, -7.0)])
def test_whole_pixel_moves_read_from_the_extension_equal_the_fourier_move(truth, shift):
    """A whole-pixel shift skips the transform; it must be the Fourier shift of the mirror
    extension (here a shift a hair off the integer, which takes the Fourier path)."""
    nudged = (shift[0] + 1e-9, shift[1] - 1e-9)
    assert np.allclose(metrics.translate(truth, shift), metrics.translate(truth, nudged), atol=1e-6)


def test_the_alignment_fit_derivative_of_a_move_is_its_central_difference():
    """The fit's Jacobian uses the moved image's x and y derivatives: for a smooth image they
    equal the central difference of two moves h px apart (error O(h²))."""
    image = band_limited_object(96, seed=4, cutoff=0.1)
    mover, shift, h = metrics._Mover(image), np.array([0.37, -1.21]), 1e-3
    moved, along_x, along_y = mover.with_gradient(shift)
    assert np.allclose(moved, mover(shift), atol=1e-12)
    for derivative, step in ((along_x, (h, 0.0)), (along_y, (0.0, h))):
        # moving the content by +h leaves at r the value it had at r - h
        central = (mover(shift - step) - mover(shift + step)) / (2 * h)
        assert np.abs(derivative - central).max() < 1e-5 * np.abs(derivative).max()


def unrelated_reconstructions() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(9)
    return {
        "flat": np.ones((128, 128), complex),
        "noise": rng.normal(size=(128, 128)) + 1j * rng.normal(size=(128, 128)),
        "other object": band_limited_object(192, seed=2)[WINDOW],
        "natural image": default_object(128).astype(complex),
    }


UNRELATED_CASES = [(name, 3.0) for name in unrelated_reconstructions()] + [("noise", 1.5)]


@pytest.mark.parametrize(("name", "bound"), UNRELATED_CASES)
def test_unrelated_or_structureless_reconstruction_stays_in_bound_and_scores_low(name, bound):
    truth = band_limited_object(192, seed=1)[WINDOW]
    region = np.zeros(truth.shape, bool)
    region[24:88, 32:96] = True
    recon = unrelated_reconstructions()[name]
    aligned, found, scores = metrics.score(recon, truth, region, max_shift=bound)
    assert max(abs(found.shift[0]), abs(found.shift[1])) <= bound + 1e-9
    assert found.residual > 0.8  # most of the truth's structure is left unexplained
    # (a matching reconstruction scores > 0.99: see the recovery test above)
    assert scores.values["phase"]["ssim"] < 0.2
    assert scores.values["amplitude"]["ssim"] < 0.3


def test_masked_ssim_equals_a_hand_computation():
    rng = np.random.default_rng(4)
    ref = rng.uniform(size=(24, 24))
    img = ref + 0.3 * rng.normal(size=ref.shape)
    region = np.zeros(ref.shape, bool)
    region[5:19, 5:10] = True  # an L: a column ...
    region[14:19, 5:19] = True  # ... and a foot; every 7x7 window around it lies in the image
    span = ref[region].max() - ref[region].min()
    c1, c2 = (0.01 * span) ** 2, (0.03 * span) ** 2
    values = []
    for r, c in zip(*np.nonzero(region), strict=True):
        a, b = img[r - 3 : r + 4, c - 3 : c + 4].ravel(), ref[r - 3 : r + 4, c - 3 : c + 4].ravel()
        mean_a, mean_b = a.mean(), b.mean()
        var_a, var_b = a.var(ddof=1), b.var(ddof=1)  # skimage's sample covariance
        cov = np.sum((a - mean_a) * (b - mean_b)) / (a.size - 1)
        numerator = (2 * mean_a * mean_b + c1) * (2 * cov + c2)
        values.append(numerator / ((mean_a**2 + mean_b**2 + c1) * (var_a + var_b + c2)))
    assert metrics.ssim(img, ref, region) == pytest.approx(np.mean(values), rel=1e-10)
    # the bounding box's mean would differ: the score really is restricted to the mask
    box = np.zeros_like(region)
    box[5:19, 5:19] = True
    assert abs(metrics.ssim(img, ref, box) - np.mean(values)) > 1e-3


def test_largest_square_inside_a_mask():
    region = np.zeros((40, 60), bool)
    region[5:15, 2:50] = True  # a 10-px strip
    region[20:38, 30:50] = True  # an 18 x 20 block
    rows, cols = metrics.largest_square(region)
    assert rows.stop - rows.start == cols.stop - cols.start == 18
    assert region[rows, cols].all() and rows.start == 20
    assert metrics.region_summary(region)["square_side_px"] == 18


def test_too_small_a_region_is_not_measurable_and_says_why(truth):
    region = np.zeros((128, 128), bool)
    region[60:70, 10:120] = True  # 10 px tall: no 14-px square for 2 MS-SSIM scales, none for FRC
    aligned, _, scores = metrics.score(truth, truth, region)
    for component in ("amplitude", "phase"):
        assert scores.values[component]["ms_ssim"] is None
        assert "too small" in scores.reasons[component]["ms_ssim"]
        assert scores.values[component]["frc50"] is None
        assert scores.values[component]["frc_half_bit"] is None
        assert "16 px" in scores.reasons[component]["frc50"]
        assert scores.curves[component] is None
        assert scores.values[component]["ssim"] == pytest.approx(1.0, abs=1e-9)


def test_identical_images_score_perfectly(truth, region):
    aligned, found, scores = metrics.score(truth, truth, region)
    assert found.shift == (0.0, 0.0) and found.gain == pytest.approx(1.0)
    assert found.residual < 1e-20
    for component in ("amplitude", "phase"):
        values, reasons = scores.values[component], scores.reasons[component]
        assert values["ssim"] == pytest.approx(1.0, abs=1e-9)
        assert values["ms_ssim"] == pytest.approx(1.0, abs=1e-9)
        assert values["mae"] == pytest.approx(0.0, abs=1e-12)
        # the FRC never drops: the resolution is beyond Nyquist, which is not a measurement
        assert values["frc50"] is None and values["frc_half_bit"] is None
        assert reasons["frc50"] == "never below the threshold up to Nyquist"
        assert reasons["frc_half_bit"] == reasons["frc50"]


def test_psnr_of_a_constant_offset_is_analytic(truth, region):
    ref = np.angle(truth)
    offset = 0.05
    span = ref[region].max() - ref[region].min()
    assert metrics.psnr(ref + offset, ref, region) == pytest.approx(
        20 * math.log10(span / offset), rel=1e-9
    )
    with pytest.raises(metrics.Unmeasurable, match="identical"):
        metrics.psnr(ref, ref, region)
    assert metrics.mae(ref + offset, ref, region) == pytest.approx(offset)


def test_ms_ssim_drops_with_blur_and_works_on_64px(truth):
    region = np.zeros((128, 128), bool)
    region[32:96, 32:96] = True
    ref = np.abs(truth)
    assert metrics.ms_ssim(ref, ref, region) == pytest.approx(1.0, abs=1e-9)
    mild, strong = (
        metrics.ms_ssim(ndimage.gaussian_filter(ref, s), ref, region) for s in (1.0, 3.0)
    )
    assert 1.0 > mild > strong


def test_ms_ssim_of_anti_correlated_images_is_not_measurable(truth):
    region = np.zeros((128, 128), bool)
    region[32:96, 32:96] = True
    ref = np.abs(truth)
    with pytest.raises(metrics.Unmeasurable, match="negative"):
        metrics.ms_ssim(-ref, ref, region)  # not 0: there is no value to report


def test_frc_of_independent_white_noise_is_near_zero():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(128, 128)), rng.normal(size=(128, 128))
    curve = metrics.frc(a, b, np.ones((128, 128), bool))
    # For independent noise each ring's FRC has standard deviation ~ 1/sqrt(n_ring).
    _, counts = np.unique(
        np.rint(np.hypot(*(np.indices((128, 128)) - 64))).astype(int), return_counts=True
    )
    sigma = 1 / np.sqrt(counts[1:64])
    assert np.mean(np.abs(curve.correlation) / sigma) < 1.5
    assert curve.cutoff_half is None  # below 0.5 at once: no resolution to report
    assert curve.reasons["frc50"] == "below the threshold within the first 3 rings"


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
    positions = np.array(
        [[10.4, 5.0], [20.0, 7.6], [-3.0, 30.2]]
    )  # (x, y); one centre left of the image
    region = metrics.centre_box(positions, (40, 25))
    rows, cols = metrics.region_box(region)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (5, 31, 0, 21)
    assert region.sum() == 26 * 21

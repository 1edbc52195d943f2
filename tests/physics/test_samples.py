import numpy as np
import pytest

from ptypinn.physics.samples import (
    AMPLITUDE_RANGE,
    CORPUS_KINDS,
    CORPUS_PICTURES,
    PHASE_RANGE,
    procedural_object,
)


@pytest.mark.parametrize("kind", CORPUS_KINDS)
def test_procedural_objects_span_the_default_objects_ranges(kind):
    obj = procedural_object(kind, 96, np.random.default_rng(3))
    assert obj.shape == (96, 96) and obj.dtype == np.complex64
    amplitude, phase = np.abs(obj), np.angle(obj)
    assert amplitude.min() == pytest.approx(AMPLITUDE_RANGE[0], abs=1e-5)
    assert amplitude.max() == pytest.approx(AMPLITUDE_RANGE[1], abs=1e-5)
    assert phase.min() == pytest.approx(PHASE_RANGE[0], abs=1e-5)
    assert phase.max() == pytest.approx(PHASE_RANGE[1], abs=1e-5)
    # amplitude and phase are independent fields, not one image twice
    assert abs(np.corrcoef(amplitude.ravel(), phase.ravel())[0, 1]) < 0.9


@pytest.mark.parametrize("kind", CORPUS_KINDS)
def test_procedural_objects_follow_their_seed(kind):
    first = procedural_object(kind, 64, np.random.default_rng(7))
    again = procedural_object(kind, 64, np.random.default_rng(7))
    other = procedural_object(kind, 64, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_gaussian_random_fields_have_a_falling_power_spectrum():
    phase = np.angle(procedural_object("grf", 128, np.random.default_rng(0)))
    power = np.abs(np.fft.fft2(phase - phase.mean())) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(128), np.fft.fftfreq(128), indexing="ij"))
    low, high = power[(k > 0.02) & (k < 0.05)].mean(), power[(k > 0.2) & (k < 0.4)].mean()
    assert low > 100 * high  # k^-2 at the least: (0.3 / 0.035)^2 ≈ 70


def test_the_corpus_never_holds_the_scored_default_objects_pictures():
    assert "camera" not in CORPUS_PICTURES and "astronaut" not in CORPUS_PICTURES


def test_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown corpus kind"):
        procedural_object("clouds", 64, np.random.default_rng(0))  # type: ignore[arg-type]

import pytest

from ptypinn.analysis.quality_time import best, first_at, matched_speed, seconds_to

CURVE = [
    {"seconds": 0.0, "phase_ssim": 0.0},
    {"seconds": 10.0, "phase_ssim": 0.5},
    {"seconds": 20.0, "phase_ssim": None},  # not measurable: skipped
    {"seconds": 30.0, "phase_ssim": 0.9},
]


@pytest.mark.parametrize(
    ("quality", "expected"),
    [(0.25, 5.0), (0.5, 10.0), (0.7, 20.0), (0.9, 30.0), (0.0, 0.0), (0.95, None)],
)
def test_the_time_to_a_quality_is_linear_between_checkpoints(quality, expected):
    assert seconds_to(CURVE, quality) == (None if expected is None else pytest.approx(expected))


def test_the_first_checkpoint_at_a_quality_and_the_best():
    assert first_at(CURVE, 0.6) == 30.0
    assert first_at(CURVE, 0.5) == 10.0
    assert first_at(CURVE, 0.95) is None
    assert best(CURVE) == 0.9
    assert best([{"seconds": 1.0, "phase_ssim": None}]) is None


def test_the_speed_ratio_is_the_engines_time_to_the_quality_over_the_methods():
    assert matched_speed(0.7, 4.0, CURVE) == {
        "reference_seconds": pytest.approx(20.0),
        "speed_ratio": pytest.approx(5.0),
        "reference_best": 0.9,
    }
    never = matched_speed(0.95, 4.0, CURVE)
    assert never["speed_ratio"] is None and never["reference_best"] == 0.9

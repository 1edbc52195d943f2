import pytest

from ptypinn.study.records import MethodKey
from ptypinn.study.time_to_quality import time_to_quality_section

GS1 = MethodKey(kind="ptychopinn", recipe="pinn", gridsize=1)
ALONE = GS1.model_copy(update={"input_alone": True})
CDTOOLS = MethodKey(kind="engine", recipe="cdtools")
WARM = MethodKey(kind="engine", recipe="cdtools", init=GS1)


def points(*pairs):
    return [{"iteration": i, "seconds": s, "phase_ssim": q} for i, (s, q) in enumerate(pairs)]


def test_each_pinn_row_gets_the_engines_time_to_its_quality_and_warm_starts_their_share(tmp_path):
    curves = [
        {
            "dose": 1e4,
            "view": "baseline",
            "method": CDTOOLS.label,
            "engine": "cdtools",
            "warm": False,
            "points": points((0.0, 0.0), (10.0, 0.4), (20.0, 0.6), (40.0, 0.8)),
        },
        {
            "dose": 1e4,
            "view": "baseline",
            "method": WARM.label,
            "engine": "cdtools",
            "warm": True,
            "points": points((2.0, 0.5), (12.0, 0.7), (22.0, 0.85)),
        },
    ]
    timings = [
        {"dose": 1e4, "view": "baseline", "method": GS1.label, "seconds": 2.0},
        {"dose": 1e4, "view": "baseline", "method": ALONE.label, "seconds": 1.0},
        {"dose": 1e4, "view": "baseline", "method": CDTOOLS.label, "seconds": 40.0},
    ]
    phase = [
        {"dose": 1e4, "view": "baseline", "method": GS1.label, "ssim": 0.5},
        {"dose": 1e4, "view": "baseline", "method": ALONE.label, "ssim": 0.2},
        {"dose": 1e4, "view": "baseline", "method": CDTOOLS.label, "ssim": 0.8},
    ]
    keys = {key.label: key for key in (GS1, ALONE, CDTOOLS, WARM)}
    text, figures, data = time_to_quality_section(
        curves, timings, phase, keys, tmp_path, "One thread each."
    )
    matched = {row["method"]: row for row in data["matched"]}
    assert set(matched) == {GS1.label, ALONE.label}  # engines are curves, not rows
    # CDTools reaches 0.5 halfway between 10 s (0.4) and 20 s (0.6): 15 s, against the 2 s of gs1
    assert matched[GS1.label]["reference_seconds"] == pytest.approx(15.0)
    assert matched[GS1.label]["speed_ratio"] == pytest.approx(7.5)
    assert matched[ALONE.label]["reference_seconds"] == pytest.approx(5.0)
    # the warm start first reaches the cold final 0.8 at 22 s: 0.55 of the cold 40 s
    (warm,) = data["warm"]
    assert warm["warm_seconds_to_cold_final"] == 22.0
    assert warm["share_of_cold_seconds"] == pytest.approx(0.55)
    assert "Best PtychoPINN row per dose and view against CDTools" in text
    assert [path.name for path in figures] == ["time_to_quality_dose_10000_baseline.png"]
    assert figures[0].stat().st_size > 0

"""Time to quality: when a method's curve of phase SSIM against wall seconds reaches a quality.

A curve is a sequence of points ``{"seconds": s, "phase_ssim": q}`` in time order (an engine's
checkpoints: :class:`ptypinn.study.records.CurvePoint`). Between two points the quality is taken
as linear in time, so the time to reach a quality between checkpoints is interpolated; before
the first point nothing is known.

The quality-matched speed ratio of a method that reached quality ``q`` in ``t`` seconds against a
reference engine is ``seconds_to(reference curve, q) / t``: how many times faster the method
reached its quality than the engine did (above 1: the method is faster). When the engine never
reaches ``q`` within its iterations there is no ratio; the engine's best is given instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Curve = Sequence[Mapping[str, float | None]]


def _scored(points: Curve) -> list[tuple[float, float]]:
    """The (seconds, quality) pairs of a curve whose quality was measured."""
    return [
        (float(p["seconds"]), float(p["phase_ssim"]))  # type: ignore[arg-type]
        for p in points
        if p.get("phase_ssim") is not None and p.get("seconds") is not None
    ]


def seconds_to(points: Curve, quality: float) -> float | None:
    """When the curve first reaches ``quality``, linear between its points; None if never."""
    scored = _scored(points)
    if scored and scored[0][1] >= quality:
        return scored[0][0]
    for (t0, q0), (t1, q1) in zip(scored, scored[1:], strict=False):
        if q1 >= quality:
            return t0 + (quality - q0) / (q1 - q0) * (t1 - t0)
    return None


def first_at(points: Curve, quality: float) -> float | None:
    """The seconds of the curve's first point at least ``quality`` good; None if none is."""
    return next((t for t, q in _scored(points) if q >= quality), None)


def best(points: Curve) -> float | None:
    """The curve's best quality; None if none was measured."""
    return max((q for _, q in _scored(points)), default=None)


def matched_speed(quality: float, seconds: float, reference: Curve) -> dict[str, float | None]:
    """A method that reached ``quality`` in ``seconds`` against a ``reference`` engine's curve:
    the engine's time to that quality, the ratio (module docstring) and the engine's best."""
    needed = seconds_to(reference, quality)
    return {
        "reference_seconds": needed,
        "speed_ratio": needed / seconds if needed is not None and seconds > 0 else None,
        "reference_best": best(reference),
    }

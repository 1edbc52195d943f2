"""The report's time-to-quality section: every method's phase SSIM against its wall seconds.

Phase G hands over, per dose and view, the engines' curves (phase F's cold runs and the inference
phase's warm starts, each point scored outside the engine's clock:
:func:`ptypinn.study.scoring.quality_curve`) and the single-pass methods' points (each
PtychoPINN row: its phase SSIM and its seconds). From them:

* a figure per dose and view (:func:`ptypinn.analysis.report.quality_vs_time`);
* for each PtychoPINN row, the time the reference engine (CDTools, cold, where the design runs it)
  needs to reach the same phase SSIM and the quality-matched speed ratio
  (:mod:`ptypinn.analysis.quality_time`), and the best row's per dose and view;
* for each warm start, the time it needs (the network's included) to reach its cold run's final
  quality, and its share of the cold run's time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ptypinn.analysis.quality_time import first_at, matched_speed
from ptypinn.analysis.report import markdown_table, quality_vs_time
from ptypinn.engines.api import ENGINE_LABELS
from ptypinn.study.layout import dose_label
from ptypinn.study.records import MethodKey
from ptypinn.study.scoring import CURVE_RULE

REFERENCE_ENGINE = "cdtools"
MATCHED_COLUMNS = (
    "dose",
    "view",
    "method",
    "phase_ssim",
    "seconds",
    "reference_seconds",
    "speed_ratio",
    "reference_best",
)
WARM_COLUMNS = (
    "dose",
    "view",
    "method",
    "cold_final",
    "cold_seconds",
    "warm_final",
    "warm_seconds_to_cold_final",
    "share_of_cold_seconds",
)


def _text(reference: str, threads: str) -> str:
    return (
        f"Phase SSIM against wall seconds for every method. {CURVE_RULE} A PtychoPINN row is one "
        "point: its inference (and refinement) seconds; a warm start's seconds include the "
        f"network's. {threads}\n\n"
        f"How to read the quality-matched speed: for each PtychoPINN row, `reference_seconds` is "
        f"the time {reference} (cold start) needed to reach the row's phase SSIM (linear between "
        "its checkpoints) and `speed_ratio` is that time over the row's own seconds: how many "
        "times faster the network reached its quality (above 1: faster). Empty: "
        f"{reference} never reached it within its iterations (its best is `reference_best`): the "
        f"row beats it. A `reference_seconds` near 0: {reference}'s flat starting object already "
        "scores as high, so the row is no better than no reconstruction."
    )


def _cell(rows: Sequence[dict], dose: float, view: str) -> list[dict]:
    return [row for row in rows if row["dose"] == dose and row["view"] == view]


def time_to_quality_section(
    curves: Sequence[dict],
    timings: Sequence[dict],
    phase: Sequence[dict],
    keys: Mapping[str, MethodKey],
    figures: Path,
    threads: str,
) -> tuple[str, list[Path], dict]:
    """The section's text and tables, its figures (written to ``figures``) and its data (the
    reference engine, the curves, the matched and warm rows). ``curves``:
    ``{dose, view, method, engine, warm, points}``; ``timings``: the report's rows
    ``{dose, view, method, seconds}``; ``phase``: the aggregate phase table (``ssim``);
    ``keys``: each method by its label; ``threads``: a sentence on the threads each job had."""
    ssim = {(r["dose"], r["view"], r["method"]): r.get("ssim") for r in phase}
    engines = [c["engine"] for c in curves if not c["warm"]]
    reference = REFERENCE_ENGINE if REFERENCE_ENGINE in engines else next(iter(engines), None)
    matched: list[dict] = []
    warm: list[dict] = []
    drawn: list[Path] = []
    for dose, view in sorted({(c["dose"], c["view"]) for c in curves}):
        here = _cell(curves, dose, view)
        cold = {c["engine"]: c for c in here if not c["warm"]}
        points = []
        for timing in _cell(timings, dose, view):
            key = keys.get(timing["method"])
            if key is None or key.kind != "ptychopinn":
                continue
            quality = ssim.get((dose, view, timing["method"]))
            points.append({**timing, "phase_ssim": quality})
            if quality is not None and reference in cold:
                speed = matched_speed(quality, timing["seconds"], cold[reference]["points"])
                matched.append(
                    {
                        "dose": dose,
                        "view": view,
                        "method": timing["method"],
                        "phase_ssim": quality,
                        "seconds": timing["seconds"],
                        "input_alone": key.input_alone,
                        **speed,
                    }
                )
        for curve in here:
            start = cold.get(curve["engine"])
            if curve["warm"] and curve["points"] and start and start["points"]:
                warm.append(_warm_row(curve, start))
        if any(curve["points"] for curve in here):
            name = f"time_to_quality_{dose_label(dose)}_{view}.png"
            title = f"dose {dose:g}, {view} view"
            drawn.append(quality_vs_time(here, points, title, figures / name))
    label = ENGINE_LABELS.get(reference or "", reference or "the engine")
    text = _text(label, threads)
    if matched:
        models = [row for row in matched if not row["input_alone"]]
        best = [
            max(cell, key=lambda row: row["phase_ssim"])
            for dose, view in dict.fromkeys((row["dose"], row["view"]) for row in models)
            if (cell := _cell(models, dose, view))
        ]
        text += (
            f"\n\nBest PtychoPINN row per dose and view against {label}:\n\n"
            + markdown_table(best, MATCHED_COLUMNS)
            + "\n\nEvery PtychoPINN row:\n\n"
            + markdown_table(matched, MATCHED_COLUMNS)
        )
    if warm:
        text += (
            "\n\nWarm starts: the seconds a warm start (network included) needs to reach its "
            "cold run's final phase SSIM (its first checkpoint at least as good), and their "
            "share of the cold run's seconds.\n\n" + markdown_table(warm, WARM_COLUMNS)
        )
    data = {"reference": reference, "curves": list(curves), "matched": matched, "warm": warm}
    return text, drawn, data


def _warm_row(curve: dict, cold: dict) -> dict:
    final = cold["points"][-1]
    reached = (
        None if final["phase_ssim"] is None else first_at(curve["points"], final["phase_ssim"])
    )
    return {
        "dose": curve["dose"],
        "view": curve["view"],
        "method": curve["method"],
        "cold_final": final["phase_ssim"],
        "cold_seconds": final["seconds"],
        "warm_final": curve["points"][-1]["phase_ssim"],
        "warm_seconds_to_cold_final": reached,
        "share_of_cold_seconds": (
            None if reached is None or final["seconds"] <= 0 else reached / final["seconds"]
        ),
    }

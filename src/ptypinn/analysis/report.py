"""Tables, figures and the one-page report of a study (phase G).

Scores travel as a *tidy* table: one row per (dose, view, method, component, metric) with its
value, ``None`` when it cannot be measured and then ``reason`` says why. Everything here only
reads that table, the reconstructions and the overlap measurements; it computes no score itself.
"""

from __future__ import annotations

import base64
import csv
import html
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import markdown
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend first)
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from ptypinn.io.artifacts import atomic_path, write_json  # noqa: E402

TIDY_FIELDS = ("dose", "view", "method", "component", "metric", "value", "reason")
HEADLINE_METRICS = ("ms_ssim", "ssim", "psnr", "frc50")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PANEL_PARTS: tuple[tuple[str, Callable[[np.ndarray], np.ndarray], str], ...] = (
    ("amplitude", np.abs, "gray"),
    ("phase (rad)", np.angle, "twilight"),
)


@dataclass(frozen=True)
class Panel:
    """One image of a reconstruction grid: an aligned reconstruction or the ground truth, cropped
    to the scored region (NaN outside it, shown blank)."""

    dose: float
    view: str
    method: str
    image: np.ndarray


def write_tidy(rows: Sequence[dict], folder: str | os.PathLike) -> tuple[Path, Path]:
    """``metrics.csv`` and ``metrics.json``: the same rows, an undefined value empty in the CSV
    and ``null`` in the JSON, with the reason it is undefined in ``reason``."""
    folder = Path(folder)
    records = [{key: row.get(key) for key in TIDY_FIELDS} for row in rows]
    with (
        atomic_path(folder / "metrics.csv") as tmp,
        open(tmp, "w", newline="", encoding="utf-8") as fh,
    ):
        writer = csv.DictWriter(fh, fieldnames=TIDY_FIELDS)
        writer.writeheader()
        writer.writerows(records)
    write_json(folder / "metrics.json", records)
    return folder / "metrics.csv", folder / "metrics.json"


def aggregate(
    rows: Iterable[dict], component: str, metrics: Sequence[str] = HEADLINE_METRICS
) -> list[dict]:
    """One row per (dose, view, method) with the chosen metrics of one component as columns;
    ``undefined`` maps each metric that has no value to the reason."""
    table: dict[tuple, dict] = {}
    for row in rows:
        if row["component"] != component or row["metric"] not in metrics:
            continue
        key = (row["dose"], row["view"], row["method"])
        record = table.setdefault(key, dict(zip(("dose", "view", "method"), key, strict=True)))
        record[row["metric"]] = row["value"]
        if row["value"] is None and row.get("reason"):
            record.setdefault("undefined", {})[row["metric"]] = row["reason"]
    return [table[key] for key in sorted(table, key=lambda k: (k[0], k[1], k[2]))]


def _cell(record: dict, column: str) -> str:
    value = record.get(column)
    if value is None:
        reason = record.get("undefined", {}).get(column)
        return f"n/a ({reason})" if reason else "n/a"
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 1e3 else f"{value:.4g}"
    return str(value)


def markdown_table(records: Sequence[dict], columns: Sequence[str]) -> str:
    """A pipe table; a missing or undefined value reads "n/a", with the reason when the record's
    ``undefined`` mapping gives one."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join(_cell(record, column) for column in columns) + " |" for record in records
    ]
    return "\n".join(lines)


def _save(figure: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def colour_limits(
    panels: Sequence[Panel], part: Callable[[np.ndarray], np.ndarray]
) -> tuple[float, float]:
    """Colour limits one row of a grid shares: the ground truth's range when it is among the
    panels (a reconstruction outside it saturates), else the 1st-99th percentile of them all."""
    truth = [part(p.image) for p in panels if p.method == "ground truth"]
    if truth:
        values = np.concatenate([image[np.isfinite(image)] for image in truth])
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    else:
        values = np.concatenate([part(p.image)[np.isfinite(part(p.image))] for p in panels])
        low, high = (0.0, 1.0)
        if values.size:
            low, high = (float(v) for v in np.percentile(values, (1, 99)))
    return (low, high) if high > low else (low - 0.5, low + 0.5)


def reconstruction_grid(
    panels: Sequence[Panel],
    dose: float,
    view: str,
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Amplitude (top) and phase (bottom) of the ground truth and every method at one dose and
    view; each row has one colour scale (:func:`colour_limits`), shown once."""
    chosen = [p for p in panels if p.dose == dose and p.view == view]
    title = title or f"dose {dose:g} photons/pattern, {view} view"
    size = (2.6 * len(chosen) + 1.0, 5.2)
    figure, axes = plt.subplots(2, len(chosen), figsize=size, squeeze=False)
    for row, (label, part, cmap) in enumerate(PANEL_PARTS):
        low, high = colour_limits(chosen, part)
        for column, panel in enumerate(chosen):
            ax = axes[row, column]
            shown = ax.imshow(part(panel.image), cmap=cmap, vmin=low, vmax=high)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(label)
        figure.colorbar(shown, ax=list(axes[row]), fraction=0.046 / len(chosen) ** 0.5, pad=0.02)
    for column, panel in enumerate(chosen):
        if panel.method != title:  # a single panel named like the figure is titled once
            axes[0, column].set_title(panel.method, fontsize=9)
    figure.suptitle(title)
    return _save(figure, Path(path))


def dose_series(
    rows: Sequence[dict], view: str, method: str, component: str, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Doses (ascending) and values of one metric of one method; NaN where it is undefined, so a
    plotted line has a gap there."""
    wanted = (view, method, component, metric)
    points = sorted(
        (r["dose"], np.nan if r["value"] is None else r["value"])
        for r in rows
        if (r["view"], r["method"], r["component"], r["metric"]) == wanted
    )
    doses, values = zip(*points, strict=True) if points else ((), ())
    return np.asarray(doses, dtype=float), np.asarray(values, dtype=float)


def metric_vs_dose(
    rows: Sequence[dict],
    view: str,
    component: str,
    path: str | os.PathLike,
    metrics: Sequence[str] = HEADLINE_METRICS,
) -> Path:
    """One panel per metric: value against dose (log axis), one line and marker per method, for
    one view. Methods sit at small dose offsets so equal values stay visible; an undefined value
    is a gap (:func:`dose_series`)."""
    figure, axes = plt.subplots(
        1, len(metrics), figsize=(3.4 * len(metrics), 3.4), squeeze=False, layout="constrained"
    )
    methods = sorted(
        {r["method"] for r in rows if r["view"] == view and r["component"] == component}
    )
    offsets = np.linspace(-0.04, 0.04, len(methods)) if len(methods) > 1 else np.zeros(1)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for index, method in enumerate(methods):
            doses, values = dose_series(rows, view, method, component, metric)
            if doses.size:
                ax.plot(
                    doses * 10 ** offsets[index],
                    values,
                    marker=MARKERS[index % len(MARKERS)],
                    markersize=5,
                    linewidth=1,
                    label=method,
                )
        ax.set_xscale("log")
        ax.set_xlabel("photons per pattern")
        ax.set_title(f"{component} {metric}", fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(
        handles, labels, fontsize=7, loc="outside lower center", ncol=min(len(labels), 4) or 1
    )
    figure.suptitle(f"{view} view (a gap: not measurable, see the tables)")
    return _save(figure, Path(path))


def frc_curves(curves: Sequence[dict], dose: float, view: str, path: str | os.PathLike) -> Path:
    """Phase FRC against spatial frequency for every method at one dose and view, with thresholds.

    ``curves`` items: ``{dose, view, method, frequency, correlation, half_bit}``.
    """
    figure, ax = plt.subplots(figsize=(5, 3.4))
    half_bit = None
    for curve in curves:
        if curve["dose"] == dose and curve["view"] == view:
            ax.plot(curve["frequency"], curve["correlation"], label=curve["method"])
            half_bit = curve
    if half_bit is not None:
        ax.plot(half_bit["frequency"], half_bit["half_bit"], "k:", label="½-bit")
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=0.8, label="0.5")
    ax.set_xlabel("spatial frequency (cycles/px)")
    ax.set_ylabel("phase FRC")
    ax.set_ylim(-0.1, 1.05)
    ax.legend(fontsize=7)
    ax.set_title(f"dose {dose:g}, {view} view", fontsize=9)
    return _save(figure, Path(path))


def quality_vs_time(
    curves: Sequence[dict], points: Sequence[dict], title: str, path: str | os.PathLike
) -> Path:
    """Phase SSIM against wall seconds (log axis): a line per engine run (``curves`` items:
    ``{method, points: [{seconds, phase_ssim}]}``; a warm start dashed) and a marker per
    single-pass method (``points`` items: ``{method, seconds, phase_ssim}``). Points at 0 s (a
    cold start's flat object) and unmeasured ones are not drawn."""
    figure, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    for index, curve in enumerate(curves):
        drawn = [
            (p["seconds"], p["phase_ssim"])
            for p in curve["points"]
            if p["seconds"] > 0 and p["phase_ssim"] is not None
        ]
        if drawn:
            seconds, quality = zip(*drawn, strict=True)
            ax.plot(
                seconds,
                quality,
                marker=".",
                linestyle="--" if curve.get("warm") else "-",
                color=f"C{index}",
                label=curve["method"],
            )
    for index, point in enumerate(points, start=len(curves)):
        if point["seconds"] > 0 and point["phase_ssim"] is not None:
            ax.plot(
                point["seconds"],
                point["phase_ssim"],
                marker=MARKERS[index % len(MARKERS)],
                linestyle="",
                color=f"C{index % 10}",
                label=point["method"],
            )
    ax.set_xscale("log")
    ax.set_xlabel("wall seconds")
    ax.set_ylabel("phase SSIM")
    figure.legend(fontsize=6, loc="outside right upper")
    ax.set_title(title, fontsize=9)
    return _save(figure, Path(path))


def _legend_mark(marker: str, colour: str, filled: bool, label: str) -> Line2D:
    face = colour if filled else "none"
    return Line2D(
        [],
        [],
        marker=marker,
        linestyle="",
        markerfacecolor=face,
        markeredgecolor=colour,
        label=label,
    )


def overlap_figure(
    measurements: Sequence[dict], path: str | os.PathLike, tolerance: float = 0.1
) -> Path:
    """:func:`overlap_plot` saved as a PNG."""
    return _save(overlap_plot(measurements, tolerance), Path(path))


def overlap_plot(measurements: Sequence[dict], tolerance: float = 0.1) -> plt.Figure:
    """Phase D overlap: target against measured (left) and every measure per view (right).

    ``measurements`` are phase D metric rows: ``{dose, view, split, target_fraction,
    nearest_overlap, knn_overlap, neighbor_count, coverage}``, ``target_fraction`` ``None`` for
    the full scan (baseline). Each dose and split gives one mark per measure in its view's
    colour: a filled circle for the nearest-neighbour overlap, an open square for the mean over
    the K nearest neighbours, a triangle for coverage (right panel only). The left panel draws
    the line measured = target and a band of ``+- tolerance`` around it.
    """
    neighbours = measurements[0].get("neighbor_count", "K") if measurements else "K"
    marks = (  # (row key, marker, filled, legend text)
        ("nearest_overlap", "o", True, "nearest-neighbour overlap"),
        ("knn_overlap", "s", False, f"mean overlap with the {neighbours} nearest neighbours"),
        ("coverage", "^", True, "coverage of the field of view (right)"),
    )
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.fill_between([0, 1], [-tolerance, 1 - tolerance], [tolerance, 1 + tolerance], color="0.85")
    left.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    views = list(dict.fromkeys(m["view"] for m in measurements))
    handles: list[Line2D | Patch] = []
    for index, view in enumerate(views):
        colour = f"C{index % 10}"
        rows = [m for m in measurements if m["view"] == view]
        target = rows[0].get("target_fraction")
        name = f"{view} (full scan, no target)" if target is None else f"{view} (target {target:g})"
        handles.append(_legend_mark("o", colour, True, name))
        offsets = np.linspace(-0.25, 0.25, len(rows)) if len(rows) > 1 else np.zeros(1)
        for key, marker, filled, _ in marks:
            face = colour if filled else "none"
            style = {"marker": marker, "edgecolors": colour, "facecolors": face}
            for offset, row in zip(offsets, rows, strict=True):
                if row.get(key) is None:
                    continue
                right.scatter(index + offset, row[key], **style)
                if target is not None and key != "coverage":
                    left.scatter(target + offset / 20, row[key], **style)
    handles += [_legend_mark(marker, "0.4", filled, text) for _, marker, filled, text in marks]
    handles += [
        Line2D([], [], color="k", linestyle="--", linewidth=0.8, label="measured = target (left)"),
        Patch(color="0.85", label=f"target ± {tolerance:g} (left)"),
    ]
    left.set_xlim(0, 1)
    left.set_xlabel("target overlap fraction")
    left.set_ylabel("measured fraction")
    left.set_title("target against measured (one mark per dose, split and measure)", fontsize=9)
    right.set_xticks(range(len(views)), views)
    right.set_title("every measure per view", fontsize=9)
    for ax in (left, right):
        ax.set_ylim(0, 1.05)
    figure.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    figure.tight_layout()
    return figure


def _embedded_image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_report(
    folder: str | os.PathLike,
    title: str,
    sections: Sequence[tuple[str, str]],
    figures: Sequence[Path],
) -> tuple[Path, Path]:
    """``report.md`` (figures linked) and a self-contained ``report.html`` (figures embedded).

    ``sections`` are (heading, markdown body) pairs; bodies may hold pipe tables.
    """
    folder = Path(folder)
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    for heading, text in sections:
        md += [f"## {heading}", "", text, ""]
        body += [f"<h2>{html.escape(heading)}</h2>", markdown.markdown(text, extensions=["tables"])]
    md += ["## Figures", ""] + [
        f"![{figure.stem}]({figure.relative_to(folder).as_posix()})" for figure in figures
    ]
    body += ["<h2>Figures</h2>"] + [
        f"<figure>{_embedded_image(figure)}<figcaption>{html.escape(figure.stem)}</figcaption></figure>"
        for figure in figures
    ]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto;}"
        "table{border-collapse:collapse;font-size:90%;}"
        "td,th{border:1px solid #ccc;padding:2px 6px;}"
        "img{max-width:100%;}"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{style}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )
    with atomic_path(folder / "report.md") as tmp:
        tmp.write_text("\n".join(md) + "\n", encoding="utf-8")
    with atomic_path(folder / "report.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    return folder / "report.md", folder / "report.html"


def probe_figure(
    probe: np.ndarray,
    far_field: np.ndarray,
    footprint: np.ndarray,
    path: str | os.PathLike,
    title: str = "probe",
) -> Path:
    """The probe: amplitude with its footprint outlined, phase (blank where the amplitude is
    below 1% of its peak, where the phase means nothing) and far-field intensity (log10, relative
    to its peak). ``far_field`` is the probe's far-field amplitude, ``footprint`` its mask."""
    amplitude = np.abs(probe)
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.7), layout="constrained")
    shown = axes[0].imshow(amplitude, cmap="gray")
    axes[0].contour(footprint.astype(float), levels=[0.5], colors="C1", linewidths=1.0)
    figure.colorbar(shown, ax=axes[0], fraction=0.046)
    axes[0].set_title("amplitude (orange: footprint)", fontsize=9)
    phase = np.where(amplitude > 0.01 * amplitude.max(), np.angle(probe), np.nan)
    shown = axes[1].imshow(phase, cmap="twilight", vmin=-np.pi, vmax=np.pi)
    figure.colorbar(shown, ax=axes[1], fraction=0.046)
    axes[1].set_title("phase (rad)", fontsize=9)
    intensity = np.asarray(far_field, dtype=np.float64) ** 2
    peak = intensity.max() if intensity.max() > 0 else 1.0
    shown = axes[2].imshow(np.log10(np.maximum(intensity / peak, 1e-6)), cmap="magma")
    figure.colorbar(shown, ax=axes[2], fraction=0.046)
    axes[2].set_title("far-field intensity (log10 of peak)", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    figure.suptitle(title)
    return _save(figure, Path(path))

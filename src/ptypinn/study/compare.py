"""Phase G: score every reconstruction against ground truth; write the tables, figures and report.

For each dose and view, every method of :func:`ptypinn.study.infer.method_keys` — the
PtychoPINN models (trained on the view, then on the full scan), their *input alone* rows and
test-time refinement, then every iterative engine of the design — has reconstructed the view's
*test* split: the inference phase (:mod:`ptypinn.study.infer`) wrote the PtychoPINN
reconstructions, phase F the engines'. This phase only reads them (each must have been made from
the current test file: its recorded dataset SHA-256), and scores, times and draws every one the
same way; a method the inference phase could not use is listed with its reason. The "Network
gain" section sets each PtychoPINN row beside its input alone, paired by their keys.

All are scored on the same region — the pixels the probe footprint illuminates at some test
position (:func:`ptypinn.study.scoring.scored_region`) — after alignment (metrics.align: a shift
bounded by the design's ``metrics.max_shift_px``, a phase ramp and a complex gain). Each method's
alignment is recorded in ``metrics.json`` / ``metrics.csv`` (component ``alignment``); a score
that cannot be measured is empty there, with the reason. Missing inputs are listed in the report,
not fatal.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ptypinn import __version__
from ptypinn.analysis.metrics import region_box, region_summary, score
from ptypinn.analysis.report import (
    Panel,
    aggregate,
    frc_curves,
    markdown_table,
    metric_vs_dose,
    overlap_figure,
    probe_figure,
    reconstruction_grid,
    write_report,
    write_tidy,
)
from ptypinn.io.artifacts import ensure_inside, read_json, sha256_file, write_json
from ptypinn.io.dataset import load_dataset
from ptypinn.io.progress import progress_bar
from ptypinn.io.reconstruction import Reconstruction, read_reconstruction
from ptypinn.io.sources import read_probe
from ptypinn.physics.forward import far_field, mean_counts
from ptypinn.physics.scan import probe_footprint
from ptypinn.pinn.config import RETRIEVAL_INPUTS, ModelSpec
from ptypinn.study.design import DEFAULT_PROBE_NOTE, ProbeConfig, StudyDesign
from ptypinn.study.infer import THREADS as INFERENCE_THREADS
from ptypinn.study.infer import method_keys
from ptypinn.study.jobs import process_pool
from ptypinn.study.layout import (
    COMPARISON_MANIFEST,
    INFERENCE_MANIFEST,
    RECONSTRUCTION_FILE,
    RECONSTRUCTION_MANIFEST,
    SIMULATION_MANIFEST,
    TRAINING_MANIFEST,
    dose_label,
    gridsize_label,
    job_folder,
)
from ptypinn.study.matrix import BASELINE, collect_datasets
from ptypinn.study.overlap import METRICS_FILE
from ptypinn.study.records import (
    ComparisonManifest,
    CurvePoint,
    InferenceManifest,
    InferenceRecord,
    MethodKey,
    ReconstructionManifest,
    SimulationManifest,
    TrainingManifest,
    read_manifest,
    write_manifest,
)
from ptypinn.study.scoring import SCORED_REGION_RULE, scored_region
from ptypinn.study.simulate import PHOTONS_NOTE
from ptypinn.study.time_to_quality import time_to_quality_section

TIME_TO_QUALITY_FILE = "time_to_quality.json"  # the curves and the quality-matched rows

TIMING_COLUMNS = (
    "dose",
    "view",
    "method",
    "patterns",
    "iterations",
    "seconds",
    "seconds_per_iteration",
    "patterns_per_s",
)


@dataclass
class Scored:
    rows: list[dict] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    curves: list[dict] = field(default_factory=list)
    timings: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    regions: list[dict] = field(default_factory=list)
    photons: list[dict] = field(default_factory=list)
    quality_curves: list[dict] = field(default_factory=list)

    def extend(self, other: Scored) -> None:
        """Append everything ``other`` holds, field by field."""
        for item in fields(self):
            getattr(self, item.name).extend(getattr(other, item.name))


def _method_source(
    key: MethodKey, dose: float, view: str, inference_root: Path, phase_f_root: Path | None
) -> Path | None:
    """Where a method's reconstruction of a view's test split is: the inference phase's folder
    for PtychoPINN, phase F's for an engine (None: no phase F)."""
    root = inference_root if key.kind == "ptychopinn" or key.init else phase_f_root
    if root is None:
        return None
    return job_folder(root, dose, view, "test", key.folder) / RECONSTRUCTION_FILE


def inference_records(inference_root: Path) -> dict[str, InferenceRecord]:
    """The inference phase's records by label (none without its manifest)."""
    path = inference_root / INFERENCE_MANIFEST
    jobs = read_manifest(InferenceManifest, path).jobs if path.is_file() else []
    return {record.label: record for record in jobs}


def engine_curves(phase_f_root: Path | None) -> dict[str, list[CurvePoint]]:
    """Phase F's time-to-quality curves by job label (none without its manifest)."""
    path = None if phase_f_root is None else phase_f_root / RECONSTRUCTION_MANIFEST
    if path is None or not path.is_file():
        return {}
    return {job.label: job.curve for job in read_manifest(ReconstructionManifest, path).jobs}


def _score_one(
    result: Scored,
    dose: float,
    view: str,
    method: str,
    recon: np.ndarray,
    truth: np.ndarray,
    region: np.ndarray,
    design: StudyDesign,
) -> None:
    metrics = design.metrics
    aligned, alignment, scores = score(
        recon, truth, region, metrics.max_shift_px, metrics.ms_ssim_sigma
    )
    key = {"dose": dose, "view": view, "method": method}
    for component, values in scores.values.items():
        reasons = scores.reasons[component]
        result.rows += [
            {
                **key,
                "component": component,
                "metric": metric,
                "value": value,
                "reason": reasons.get(metric),
            }
            for metric, value in values.items()
        ]
    result.rows += [
        {**key, "component": "alignment", "metric": name, "value": value, "reason": None}
        for name, value in alignment.to_dict().items()
    ]
    shown = np.where(region, aligned, np.nan)[region_box(region)]
    result.panels.append(Panel(dose, view, method, shown))
    curve = scores.curves["phase"]
    if curve is not None:
        result.curves.append(
            {
                **key,
                "frequency": curve.frequency,
                "correlation": curve.correlation,
                "half_bit": curve.half_bit,
            }
        )


def describe(
    key: MethodKey, record: InferenceRecord | None, view: str, rec: Reconstruction
) -> tuple[str, str]:
    """What a method was trained on, and which model it is and how much it trained (for the
    tables)."""
    if key.kind == "engine" or record is None:
        start = f", started from {key.init.label}" if key.init else ""
        return (
            "none (test data only)" if key.init is None else f"as {key.init.label}",
            f"{rec.iterations} iterations on the test split itself{start}, no training",
        )
    training = rec.metadata.get("training", {})
    data = f"{BASELINE} (full scan)" if record.trained_view == BASELINE else view
    kind = "supervised" if key.recipe == "supervised" else "physics loss"
    dataset = training.get("dataset") or {}
    seen = training.get("samples_seen")
    amount = f"{seen:,} samples seen" if seen else f"{training.get('epochs', '?')} epochs"
    trained = f"{data} train split, {gridsize_label(key.gridsize)}, {kind}"
    model = (
        f"{trained}, {generator_inputs(ModelSpec.model_validate(training['architecture']))}: "
        f"{dataset.get('count', '?')} training patterns, {amount}, "
        f"{record.training_seconds or 0:.0f} s training"
    )
    return trained, model


def generator_inputs(spec: ModelSpec) -> str:
    """Which recipe a bundle follows and what its generator does with each pattern, in words (for
    the tables): the published recipe (amplitude inputs, a gridsize ≥ 2 group's patterns as
    channels) or ours; a network that corrects a retrieval is mostly that retrieval, and the
    reader should know it."""
    grouped = spec.gridsize > 1
    if spec.inputs == "amplitude" and (not grouped or spec.group_generator == "channels"):
        return f"published recipe: {spec.generator} generator on amplitude inputs"
    if spec.inputs not in RETRIEVAL_INPUTS:
        return f"ptypinn recipe: {spec.generator} generator on {spec.inputs} inputs"
    iterations = spec.retrieval_iterations
    if spec.inputs == "group_retrieval" and grouped:
        count = spec.gridsize**2
        retrieval = f"{iterations}-iteration group retrieval ({count} patterns on one canvas)"
    else:
        retrieval = f"{iterations}-iteration single-pattern retrieval"
    verb = "correcting" if spec.correction else "on"
    steps = spec.unrolled_steps
    unrolled = f", then {steps} unrolled physics steps with learned corrections" if steps else ""
    return f"ptypinn recipe: {spec.generator} generator {verb} a {retrieval}{unrolled}"


def network_gain(phase: list[dict], keys: Mapping[str, MethodKey]) -> list[dict]:
    """Phase SSIM of each PtychoPINN row beside its input alone's (``keys``: each row's method by
    its label), and the difference."""
    ssim = {(r["dose"], r["view"], r["method"]): r.get("ssim") for r in phase}
    rows = []
    for record in phase:
        key = keys.get(record["method"])
        if key is None or key.kind != "ptychopinn" or key.input_alone:
            continue
        alone = (
            record["dose"],
            record["view"],
            key.model.model_copy(update={"input_alone": True}).label,
        )
        if alone not in ssim:
            continue
        model, guess = record.get("ssim"), ssim[alone]
        gain = model - guess if model is not None and guess is not None else None
        rows.append(
            {
                **{k: record[k] for k in ("dose", "view", "method")},
                "ssim": model,
                "input_alone_ssim": guess,
                "gain": gain,
            }
        )
    return rows


def compare_view(
    design: StudyDesign,
    dose: float,
    view: str,
    test_path: Path,
    inference_root: Path,
    phase_f_root: Path | None,
) -> Scored:
    """Score every method's reconstruction of one view's test data: the inference phase's
    (PtychoPINN) and phase F's (engines), each made from this test file."""
    result = Scored()
    test = load_dataset(test_path)
    if test.obj is None:
        result.missing.append(
            f"dose {dose:g} {view}: the test data has no ground truth (objectGuess)"
        )
        return result
    region = scored_region(test)
    result.regions.append({"dose": dose, "view": view, **region_summary(region)})
    scale = test.metadata.get("dose_scale")
    if scale and view != BASELINE:  # the baseline test file is phase C's, listed from its manifest
        measured = mean_counts(test.diffraction, scale)
        result.photons.append(
            {
                "dose": dose,
                "view": view,
                "split": "test",
                "patterns": test.count,
                "measured_photons_per_pattern": measured,
            }
        )
    truth = np.where(region, test.obj, np.nan)[region_box(region)]
    result.panels.append(Panel(dose, view, "ground truth", truth))
    records = inference_records(inference_root)
    curves = engine_curves(phase_f_root)
    test_sha256 = sha256_file(test_path)
    for key in method_keys(design, view):
        source = _method_source(key, dose, view, inference_root, phase_f_root)
        label = f"{dose_label(dose)}/{view}/test/{key.folder}"
        record = records.get(label)
        if record is not None and record.status != "ok":
            if record.status == "failed":
                result.missing.append(f"dose {dose:g} {view}: {record.error}")
            continue
        if source is None or not source.is_file():
            if not key.input_alone:
                what = "model" if key.kind == "ptychopinn" else "reconstruction of the test split"
                result.missing.append(f"dose {dose:g} {view}: no {key.label} {what} ({source})")
            continue
        rec = read_reconstruction(source)
        if rec.metadata.get("dataset_sha256") != test_sha256:
            result.missing.append(
                f"dose {dose:g} {view}: {key.label} not used: it was made from other test data "
                "(dataset SHA-256 differs)"
            )
            continue
        _score_one(result, dose, view, key.label, rec.obj, test.obj, region, design)
        if key.kind == "engine":
            curve = record.curve if record is not None else curves.get(label, [])
            result.quality_curves.append(
                {
                    "dose": dose,
                    "view": view,
                    "method": key.label,
                    "engine": key.recipe,
                    "warm": key.init is not None,
                    "points": [point.model_dump() for point in curve],
                }
            )
        trained, model = describe(key, record, view, rec)
        result.timings.append(
            {
                "dose": dose,
                "view": view,
                "method": key.label,
                "trained_on": trained,
                "model": model,
                "patterns": test.count,
                "iterations": rec.iterations,
                "seconds": rec.wall_time_s,
                "seconds_per_iteration": rec.seconds_per_iteration,
                "patterns_per_s": test.count / rec.wall_time_s if rec.wall_time_s > 0 else None,
            }
        )
    return result


def _overlap_rows(phase_d_root: Path) -> list[dict]:
    path = phase_d_root / METRICS_FILE
    return read_json(path) if path.is_file() else []


def overlap_once(rows: Sequence[dict]) -> list[dict]:
    """The overlap rows with those that differ only in their dose merged: a view's geometry does
    not depend on the dose (every dose has the same positions), so its row is shown once, its
    ``dose`` reading ``all`` (or the doses it holds for, when they differ)."""
    doses = list(dict.fromkeys(row["dose"] for row in rows))
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        key = tuple((column, row.get(column)) for column in OVERLAP_COLUMNS if column != "dose")
        groups.setdefault(key, []).append(row)
    merged = []
    for group in groups.values():
        held = [row["dose"] for row in group]
        label = "all" if held == doses else ", ".join(f"{dose:g}" for dose in held)
        merged.append({**group[0], "dose": label})
    return merged


ALIGNMENT_COLUMNS = (
    "shift_x_px",
    "shift_y_px",
    "ramp_x_rad_per_px",
    "ramp_y_rad_per_px",
    "gain_amplitude",
    "gain_phase_rad",
    "residual",
    "bound_hit",
)
METHOD_COLUMNS = ("dose", "view", "method", "model")
REGION_COLUMNS = ("dose", "view", "illuminated_px", "box_fraction", "square_side_px")
METHODS_TEXT = (
    "Every row's model: what it was trained on and how much (the time each took to reconstruct "
    "the test split is under Reconstruction time). "
    "In the dense and sparse sections, PtychoPINN gs1 is the baseline model "
    "(gridsize 1, trained on the full-scan training split) applied to that view's test data.\n\n"
)
GAIN_TEXT = (
    "Phase SSIM of each PtychoPINN model beside its input alone (the retrieval its generator is "
    "given, stitched without the network): the gain is what the network adds. A model that does "
    "not beat its input adds nothing.\n\n"
)
REGION_TEXT = (
    "Per view: illuminated test pixels, their share of the bounding box, and the side of the "
    "largest square inside them (used by MS-SSIM and FRC).\n\n"
)
ALIGNMENT_TEXT = (
    "What alignment removed from each reconstruction: shift (px), phase ramp (rad/px), gain, the "
    "residual |truth − aligned|² over the region relative to the truth's variance there (0: a "
    "perfect match, about 1: none of the truth's structure explained), and whether the shift "
    "reached its bound (a reconstruction that does not match the truth).\n\n"
)
PHOTON_COLUMNS = (
    "dose",
    "view",
    "split",
    "patterns",
    "measured_photons_per_pattern",
    "ratio_to_dose",
)


def _photon_rows(phase_c_root: Path) -> list[dict]:
    """Measured mean photons per pattern of every phase C file (from its manifest)."""
    path = phase_c_root / SIMULATION_MANIFEST
    if not path.is_file():
        return []
    return [
        {
            "dose": entry.dose,
            "view": f"{BASELINE} (phase C)",
            "split": split,
            "patterns": entry.counts.get(split),
            "measured_photons_per_pattern": value,
        }
        for entry in read_manifest(SimulationManifest, path).doses
        for split, value in entry.measured_photons_per_pattern.items()
        if split in ("train", "test")
    ]


def _photons_text(rows: list[dict]) -> str:
    for row in rows:
        row["ratio_to_dose"] = row["measured_photons_per_pattern"] / row["dose"]
    return (
        "Nominal dose against the measured mean photons per pattern of each file: "
        f"{PHOTONS_NOTE}.\n\n" + markdown_table(rows, PHOTON_COLUMNS)
    )


def _training_rows(phase_e_root: Path) -> list[dict]:
    path = phase_e_root / TRAINING_MANIFEST
    if not path.is_file():
        return []
    return [
        job.model_dump(
            include={"dose", "view", "gridsize", "status", "epochs", "final_loss", "wall_time_s"}
        )
        for job in read_manifest(TrainingManifest, path).jobs
    ]


def _views_setting(design: StudyDesign) -> str:
    """Each view's target, rule and spacing for the design's own probe (footprint D)."""
    diameter = design.probe_diameter()
    views = ", ".join(
        f"{v.name} ({v.fraction:g}, {v.rule}, {v.spacing(design.patch_size, diameter):.1f})"
        for v in design.views
    )
    return f"{views}; probe footprint D = {diameter:.1f} px"


OVERLAP_COLUMNS = (
    "dose",
    "view",
    "split",
    "count",
    "rule",
    "target_fraction",
    "probe_diameter_px",
    "spacing_px",
    "nearest_overlap",
    "knn_overlap",
    "mean_nn_spacing_px",
    "coverage",
)
OVERLAP_TEXT = (
    "Each view thins the full scan (baseline) to a minimum spacing set by its rule: "
    "`disc_overlap` solves f(d) = target for the probe footprint diameter D (|P|² above 1/e² "
    "of its peak, as a disc of equal area); `patch_linear` is the original study's "
    "S = (1 − f)·N. Measured with the same footprint: `nearest_overlap` is the disc-overlap "
    "fraction with the nearest neighbour (what the rule targets), `knn_overlap` the mean over "
    "the K nearest neighbours, both averaged over positions; coverage is the illuminated share "
    "of the full scan's field of view. Every dose has the same positions, so a row that holds "
    "at every dose is shown once (dose: all)."
)


def _design_table(design: StudyDesign) -> str:
    rows: list[dict] = [
        {"setting": "doses (photons/pattern)", "value": ", ".join(f"{d:g}" for d in design.doses)},
        {"setting": "N (patch px)", "value": design.patch_size},
        {"setting": "views (target f, spacing rule, spacing px)", "value": _views_setting(design)},
        {
            "setting": "neighbours K / gridsizes",
            "value": f"{design.neighbor_count} / {list(design.gridsizes)}",
        },
        {
            "setting": "object / scan step (px)",
            "value": f"{design.simulation.object_size} / {design.simulation.scan.step_px:g} "
            f"({design.simulation.scan.pattern})",
        },
        {"setting": "probe", "value": _parameters_text(design.simulation.probe.parameters())},
        {
            "setting": "training",
            "value": f"{design.training.model}, width {design.training.width}, "
            f"{design.training.epochs} epochs, batch {design.training.batch_size}",
        },
        {
            "setting": "seeds (simulation, grouping, subsampling)",
            "value": f"{design.seeds.simulation}, {design.seeds.grouping}, "
            f"{design.seeds.subsampling}",
        },
    ]
    return markdown_table(rows, ("setting", "value"))


def _parameters_text(parameters: dict, prefix: str = "") -> str:
    """``name value`` pairs of (nested) parameters, comma-separated."""
    return ", ".join(
        _parameters_text(value, f"{prefix}{name}.")
        if isinstance(value, dict)
        else f"{prefix}{name} {value}"
        for name, value in parameters.items()
    )


PROBE_TEXT = (
    "The illumination the data were simulated with, as phase C recorded it. Footprint: |P|² above "
    "1/e² of its peak (outlined in the figure); D is the diameter of a disc of equal area, the D "
    "of the overlap rule. The far field is |FFT(P)|² (log scale): a zone plate's is its annular "
    "pupil, a diffuser spreads it."
)


def _probe_section(phase_c_root: Path, test_file: Path, size: int, figures: Path) -> tuple:
    """The report's section on the object and probe (parameters, or file and SHA-256, and the
    footprint) and the probe figure, from phase C's record and a test file's probeGuess."""
    path = phase_c_root / SIMULATION_MANIFEST
    source = read_manifest(SimulationManifest, path).source if path.is_file() else {}
    probe = read_probe(test_file, size)
    mask, diameter = probe_footprint(probe)
    parameters = source.get("probe", {})
    rows: list[dict] = [
        {"item": "object", "value": source.get("object", "n/a")},
        {"item": "object file SHA-256", "value": source.get("object_file_sha256")},
        {
            "item": "probe",
            "value": _parameters_text(parameters) if isinstance(parameters, dict) else parameters,
        },
        {"item": "probe file SHA-256", "value": source.get("probe_file_sha256")},
        {
            "item": "probe footprint",
            "value": f"D = {diameter:.1f} px, {int(mask.sum())} px "
            f"({mask.mean():.1%} of the {size}x{size} window)",
        },
    ]
    if parameters == ProbeConfig().parameters():
        rows.append({"item": "why this probe", "value": DEFAULT_PROBE_NOTE})
    rows = [row for row in rows if row["value"] is not None]
    amplitude = far_field(torch.from_numpy(probe)).numpy()
    kind = parameters.get("kind", "probe") if isinstance(parameters, dict) else "probe"
    figure = probe_figure(
        probe,
        amplitude,
        mask,
        figures / "probe.png",
        f"probe ({kind}), footprint D = {diameter:.1f} px",
    )
    return PROBE_TEXT + "\n\n" + markdown_table(rows, ("item", "value")), figure


def run_comparison(
    design: StudyDesign,
    phase_c_root: str | Path,
    phase_d_root: str | Path,
    phase_e_root: str | Path,
    inference_root: str | Path,
    phase_f_root: str | Path | None,
    output_root: str | Path,
    notes: list[str] | None = None,
    workers: int | None = None,
) -> ComparisonManifest:
    """Score, tabulate, plot and report the whole study; returns the comparison manifest. The
    views are scored ``workers`` at once (default: one per CPU), each in its own process."""
    phase_c_root, phase_d_root, phase_e_root, inference_root = (
        Path(phase_c_root),
        Path(phase_d_root),
        Path(phase_e_root),
        Path(inference_root),
    )
    phase_f_root = None if phase_f_root is None else Path(phase_f_root)
    output_root = Path(output_root)
    ensure_inside(output_root, output_root / "figures")
    entries, skips = collect_datasets(
        phase_c_root, phase_d_root, design.view_names(), allow_missing_phase_d=True
    )
    result = Scored(missing=[f"dose {s.dose:g} {s.view}: {s.reason}" for s in skips])
    workers = min(os.cpu_count() or 1, len(entries)) if workers is None else workers
    tasks = [(design, e.dose, e.view, e.test, inference_root, phase_f_root) for e in entries]
    with contextlib.ExitStack() as stack, progress_bar("comparison", len(entries)) as advance:
        if workers > 1:
            pool = stack.enter_context(process_pool(workers))
            parts: Iterable[Scored] = pool.map(compare_view, *zip(*tasks, strict=True))
        else:
            parts = (compare_view(*task) for task in tasks)
        for part in parts:
            result.extend(part)
            advance(1)
    csv_path, json_path = write_tidy(result.rows, output_root)
    figures_dir = output_root / "figures"
    figures = []
    views = sorted({(e.dose, e.view) for e in entries})
    for dose, view in views:
        if any(
            p.dose == dose and p.view == view and p.method != "ground truth" for p in result.panels
        ):
            figures.append(
                reconstruction_grid(
                    result.panels,
                    dose,
                    view,
                    figures_dir / f"reconstructions_{dose_label(dose)}_{view}.png",
                )
            )
            figures.append(
                frc_curves(
                    result.curves, dose, view, figures_dir / f"frc_{dose_label(dose)}_{view}.png"
                )
            )
    for view in sorted({view for _, view in views}):
        for component in ("phase", "amplitude"):
            if any(r["view"] == view and r["component"] == component for r in result.rows):
                figures.append(
                    metric_vs_dose(
                        result.rows,
                        view,
                        component,
                        figures_dir / f"{component}_vs_dose_{view}.png",
                    )
                )
    overlap = _overlap_rows(phase_d_root)
    if overlap:
        figures.insert(0, overlap_figure(overlap, figures_dir / "overlap.png"))
    sections = [("Design", _design_table(design))]
    if entries:
        text, figure = _probe_section(phase_c_root, entries[0].test, design.patch_size, figures_dir)
        sections.append(("Object and probe", text))
        figures.insert(0, figure)
    tables = {component: aggregate(result.rows, component) for component in ("phase", "amplitude")}
    trained = {(t["dose"], t["view"], t["method"]): t["trained_on"] for t in result.timings}
    for table in tables.values():
        for record in table:
            record["trained_on"] = trained.get((record["dose"], record["view"], record["method"]))
    columns = ("dose", "view", "method", "trained_on", "ms_ssim", "ssim", "psnr", "frc50")
    keys = {key.label: key for entry in entries for key in method_keys(design, entry.view)}
    write_json(output_root / "aggregate.json", tables)
    engine_threads = "/".join(
        str(n)
        for n in sorted({design.iterative.options(e).threads for e in design.iterative.engines})
    )
    threads = (
        f"Torch threads per job: {engine_threads} for each engine, {INFERENCE_THREADS} for each "
        "PtychoPINN method; several jobs ran at once."
    )
    quality_text, quality_figures, quality_data = time_to_quality_section(
        result.quality_curves, result.timings, tables["phase"], keys, figures_dir, threads
    )
    figures += quality_figures
    write_json(output_root / TIME_TO_QUALITY_FILE, quality_data)
    if overlap:
        overlap_table = markdown_table(overlap_once(overlap), OVERLAP_COLUMNS)
        sections.append(("Measured overlap (phase D)", f"{OVERLAP_TEXT}\n\n{overlap_table}"))
    photons = _photon_rows(phase_c_root) + result.photons
    if photons:
        sections.append(("Photons per pattern (measured)", _photons_text(photons)))
    alignment = aggregate(result.rows, "alignment", ALIGNMENT_COLUMNS)
    sections += [
        ("Methods", METHODS_TEXT + markdown_table(result.timings, METHOD_COLUMNS)),
        (
            "Phase (emphasised)",
            SCORED_REGION_RULE.format(bound=design.metrics.max_shift_px)
            + "\n\n"
            + markdown_table(tables["phase"], columns),
        ),
        ("Amplitude", markdown_table(tables["amplitude"], columns)),
        (
            "Network gain",
            GAIN_TEXT
            + markdown_table(
                network_gain(tables["phase"], keys),
                ("dose", "view", "method", "ssim", "input_alone_ssim", "gain"),
            ),
        ),
        ("Time to quality", quality_text),
        (
            "Reconstruction time",
            "Iterations 0: one forward pass (network inference); for "
            '"PtychoPINN + refine" the iterations are the refinement steps.\n\n'
            + markdown_table(result.timings, TIMING_COLUMNS),
        ),
        ("Scored region", REGION_TEXT + markdown_table(result.regions, REGION_COLUMNS)),
        (
            "Alignment",
            ALIGNMENT_TEXT
            + markdown_table(alignment, ("dose", "view", "method", *ALIGNMENT_COLUMNS)),
        ),
    ]
    training = _training_rows(phase_e_root)
    if training:
        sections.append(
            (
                "Training (phase E)",
                "Final loss is the Poisson NLL per detector pixel "
                "without the constant log k! term.\n\n"
                + markdown_table(
                    training,
                    ("dose", "view", "gridsize", "status", "epochs", "final_loss", "wall_time_s"),
                ),
            )
        )
    remarks = [*(notes or []), *result.missing]
    if remarks:
        sections.append(("Missing or skipped", "\n".join(f"- {line}" for line in remarks)))
    report_md, report_html = write_report(
        output_root, f"ptypinn study '{design.name}': dose × overlap", sections, figures
    )
    manifest = ComparisonManifest(
        ptypinn_version=__version__,
        design=design.name,
        metrics_csv=csv_path.name,
        metrics_json=json_path.name,
        report_html=report_html.name,
        report_md=report_md.name,
        rows=len(result.rows),
        timings=result.timings,
        regions=result.regions,
        missing=remarks,
    )
    write_manifest(output_root / COMPARISON_MANIFEST, manifest)
    return manifest

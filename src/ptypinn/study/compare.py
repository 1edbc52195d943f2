"""Phase G: score every reconstruction against ground truth; write the tables, figures and report.

For each dose and view, every method reconstructs the view's *test* split:

* every model phase E trained on the view (``PtychoPINN gs2``, and ``supervised gs2`` when the
  design's methods list it), then every model trained on the full scan (the baseline,
  ``PtychoPINN gs1``), run on the same test data; with ``training.refine_steps`` the view's own
  PtychoPINN models also appear as ``… + refine``, fine-tuned on the test diffraction first (no
  ground truth); every PtychoPINN model whose generator is given a retrieval also appears as
  ``… input alone``: that retrieval stitched without the network, so the gain the network adds
  is in the tables (section "Network gain");
* every iterative engine of the design (``iterative.engines``), each its own method: its phase F
  reconstruction of the same test split.

Each method gives a :class:`~ptypinn.io.reconstruction.Reconstruction` (:func:`obtain`), and
every one is scored, timed and drawn the same way.

All are scored on the same region — the pixels the probe footprint illuminates at some test
position — after alignment (metrics.align: a shift bounded by the design's
``metrics.max_shift_px``, a phase ramp and a complex gain). Each method's alignment is recorded
in ``metrics.json`` / ``metrics.csv`` (component ``alignment``); a score that cannot be measured
is empty there, with the reason. Missing inputs are listed in the report, not fatal.

Nothing is used on trust: a PtychoPINN bundle must be the file ``training_manifest.json``
records (SHA-256) and must have been trained on the current training split of its view (the
dataset SHA-256 the bundle records); an iterative reconstruction must have been made from the
current test split. Anything else is listed as not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
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
from ptypinn.engines.api import ENGINE_LABELS
from ptypinn.io.artifacts import ensure_inside, read_json, sha256_file, write_json
from ptypinn.io.dataset import DatasetError, PtychoDataset, load_dataset
from ptypinn.io.progress import progress_bar
from ptypinn.io.reconstruction import Reconstruction, ReconstructionInput, read_reconstruction
from ptypinn.io.sources import read_probe
from ptypinn.physics.forward import far_field, mean_counts
from ptypinn.physics.scan import illuminated, probe_footprint
from ptypinn.pinn.config import RETRIEVAL_INPUTS
from ptypinn.pinn.inference import PtychoPINNOptions, PtychoPINNReconstructor
from ptypinn.pinn.model import input_alone
from ptypinn.pinn.train import BUNDLE_NAME, load_bundle
from ptypinn.study.design import DEFAULT_PROBE_NOTE, ProbeConfig, StudyDesign
from ptypinn.study.layout import (
    COMPARISON_MANIFEST,
    RECONSTRUCTION_FILE,
    SIMULATION_MANIFEST,
    TRAINING_MANIFEST,
    dose_label,
    job_folder,
    training_folder,
)
from ptypinn.study.matrix import BASELINE, collect_datasets, training_gridsizes
from ptypinn.study.outputs import save_reconstruction
from ptypinn.study.overlap import METRICS_FILE
from ptypinn.study.simulate import PHOTONS_NOTE
from ptypinn.study.training import JobRecord, cell_label

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
SCORED_REGION_RULE = (
    "Scores are taken after alignment (a sub-pixel shift bounded by {bound:g} px per axis, a "
    "linear phase ramp and a complex gain, fitted jointly by least squares; nothing wraps around) "
    "on the illuminated test region: the pixels where the probe intensity exceeds 1/e² of its "
    "peak at some position of the scored (test) scan. SSIM is the mean of the SSIM map (7-px "
    "window) over those pixels; PSNR (on the truth's data range there) and MAE use the same "
    "pixels. MS-SSIM and FRC need a full rectangle: they are computed on the largest square lying "
    "wholly inside the illuminated region. A value that cannot be measured is n/a, with the "
    "reason: a square too small for two MS-SSIM scales or for FRC (16 px), an MS-SSIM scale "
    "whose contrast-structure term is negative, an FRC below its threshold within the first 3 "
    "rings (where chance correlation passes 0.5) or never below it up to Nyquist. FRC50 is in "
    "cycles/pixel."
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


def scored_region(dataset: PtychoDataset) -> np.ndarray:
    """Pixels of the object grid illuminated (|P|² above 1/e² of its peak) at some scan position."""
    mask, _ = probe_footprint(dataset.probe)
    assert dataset.obj is not None  # callers score only data with a ground truth
    height, width = dataset.obj.shape
    return illuminated(dataset.positions, mask, (0, height, 0, width))


@dataclass(frozen=True)
class Method:
    """A method that reconstructs a view's test data: a trained bundle run here (``bundle``), or
    a phase F engine's reconstruction file. ``required``: report it when missing. A bundle's
    ``recorded_sha256`` is the one the training manifest records, ``trained_view`` the view whose
    training split it learned from, ``refine_steps`` its test-time refinement."""

    label: str
    source: Path
    bundle: bool
    required: bool = True
    recorded_sha256: str | None = None
    trained_view: str = ""
    training_seconds: float | None = None
    refine_steps: int = 0
    input_alone: bool = False

    @property
    def missing(self) -> str:
        what = "model" if self.bundle else "reconstruction of the test split"
        return f"no {self.label} {what} ({self.source})"


def model_label(method: str, gridsize: int) -> str:
    """``PtychoPINN gs2``, ``supervised gs1``."""
    return f"PtychoPINN gs{gridsize}" if method == "pinn" else f"{method} gs{gridsize}"


def trained_jobs(phase_e_root: Path) -> dict[str, JobRecord]:
    """Finished jobs of the training manifest by matrix cell."""
    path = phase_e_root / TRAINING_MANIFEST
    try:
        jobs = read_json(path)["jobs"] if path.is_file() else []
        records = [JobRecord.from_dict(job) for job in jobs]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{path} is not a readable training manifest: {error}") from None
    return {record.cell: record for record in records if record.status == "ok"}


def view_methods(
    design: StudyDesign, phase_e_root: Path, phase_f_root: Path | None, dose: float, view: str
) -> list[Method]:
    """Every method that reconstructs a view's test data, in report order: the models trained on
    the view, then those trained on the full scan (the baseline), each also with test-time
    refinement (of the view's own models) when the design asks for it, then every iterative
    engine."""
    jobs = trained_jobs(phase_e_root)
    methods = []
    sources = (view,) if view == BASELINE else (view, BASELINE)
    for method in design.methods:
        for source in sources:
            for gridsize in training_gridsizes(source, design.gridsizes):
                folder = training_folder(phase_e_root, dose, source, gridsize, method)
                record = jobs.get(cell_label(dose, source, gridsize, method))
                bundle = folder / (record.bundle if record and record.bundle else BUNDLE_NAME)
                found = Method(
                    model_label(method, gridsize),
                    bundle,
                    bundle=True,
                    recorded_sha256=record.bundle_sha256 if record else None,
                    trained_view=source,
                    training_seconds=record.wall_time_s if record else None,
                )
                methods.append(found)
                if method == "pinn":
                    methods.append(
                        replace(
                            found,
                            label=f"{found.label} {INPUT_ALONE}",
                            input_alone=True,
                            required=False,
                        )
                    )
                if method == "pinn" and design.training.refine_steps and source == view:
                    methods.append(
                        replace(
                            found,
                            label=f"{found.label} + refine",
                            refine_steps=design.training.refine_steps,
                        )
                    )
    if phase_f_root is not None:
        for engine in design.iterative.engines:
            path = job_folder(phase_f_root, dose, view, "test", engine) / RECONSTRUCTION_FILE
            methods.append(Method(ENGINE_LABELS[engine], path, bundle=False))
    return methods


def checked_bundle(bundle: Path, recorded_sha256: str | None, train_sha256: str | None) -> tuple:
    """Model and metadata of a bundle that is the recorded file (when one is recorded) and was
    trained on ``train_sha256``; :class:`DatasetError` says why not."""
    if recorded_sha256 is not None and sha256_file(bundle) != recorded_sha256:
        raise DatasetError(
            f"{bundle} is not the bundle {TRAINING_MANIFEST} records (its SHA-256 differs)"
        )
    model, meta = load_bundle(bundle)
    if meta["dataset"]["sha256"] != train_sha256:
        raise DatasetError(
            f"{bundle} was trained on other data than the current training split "
            "(its dataset SHA-256 differs)"
        )
    return model, meta


INPUT_ALONE = "input alone"


class NoObjectGuess(DatasetError):
    """A model whose generator is given no object guess has no input to score alone."""


def _method_folder(method: str) -> str:
    return method.lower().replace(" ", "_").replace("(", "").replace(")", "")


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


def describe(method: Method, view: str, rec: Reconstruction) -> tuple[str, str]:
    """What a method was trained on, and which model it is and how much it trained (for the
    tables)."""
    if not method.bundle:
        return (
            "none (test data only)",
            f"{rec.iterations} iterations on the test split itself, no training",
        )
    training = rec.metadata.get("training", {})
    data = f"{BASELINE} (full scan)" if method.trained_view == BASELINE else view
    kind = "supervised" if method.label.startswith("supervised") else "physics loss"
    dataset = training.get("dataset") or {}
    seen = training.get("samples_seen")
    amount = f"{seen:,} samples seen" if seen else f"{training.get('epochs', '?')} epochs"
    trained = f"{data} train split, gs{rec.metadata.get('gridsize', '?')}, {kind}"
    model = (
        f"{trained}, {generator_inputs(training.get('architecture') or {})}: "
        f"{dataset.get('count', '?')} training patterns, {amount}, "
        f"{method.training_seconds or 0:.0f} s training"
    )
    return trained, model


def generator_inputs(architecture: dict) -> str:
    """Which recipe a bundle follows and what its generator does with each pattern, in words (for
    the tables): the published recipe (amplitude inputs, a gridsize ≥ 2 group's patterns as
    channels) or ours; a network that corrects a retrieval is mostly that retrieval, and the
    reader should know it."""
    generator = architecture.get("generator", "?")
    inputs = architecture.get("inputs", "amplitude")
    grouped = architecture.get("gridsize", 1) > 1
    if inputs == "amplitude" and (not grouped or architecture.get("group_generator") == "channels"):
        return f"published recipe: {generator} generator on amplitude inputs"
    if inputs not in RETRIEVAL_INPUTS:
        return f"ptypinn recipe: {generator} generator on {inputs} inputs"
    iterations = architecture.get("retrieval_iterations", "?")
    if inputs == "group_retrieval" and grouped:
        count = architecture["gridsize"] ** 2
        retrieval = f"{iterations}-iteration group retrieval ({count} patterns on one canvas)"
    else:
        retrieval = f"{iterations}-iteration single-pattern retrieval"
    verb = "correcting" if architecture.get("correction") else "on"
    steps = architecture.get("unrolled_steps", 0)
    unrolled = f", then {steps} unrolled physics steps with learned corrections" if steps else ""
    return f"ptypinn recipe: {generator} generator {verb} a {retrieval}{unrolled}"


def network_gain(phase: list[dict]) -> list[dict]:
    """Phase SSIM of each PtychoPINN row beside its input alone's, and the difference."""
    alone = {
        (r["dose"], r["view"], r["method"].removesuffix(f" {INPUT_ALONE}")): r.get("ssim")
        for r in phase
        if r["method"].endswith(f" {INPUT_ALONE}")
    }
    rows = []
    for record in phase:
        key = (record["dose"], record["view"], record["method"].removesuffix(" + refine"))
        model, guess = record.get("ssim"), alone.get(key)
        if record["method"].endswith(INPUT_ALONE) or key not in alone:
            continue
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


def obtain(
    method: Method,
    test_path: Path,
    test: PtychoDataset,
    dose: float,
    view: str,
    output_root: Path,
    train_sha256: str | None,
) -> Reconstruction:
    """``method``'s reconstruction of ``test``: a bundle (checked against the training manifest
    and the ``train_sha256`` it must have learned from) reconstructs it here, and its files are
    written under ``output_root``; a phase F reconstruction (made from this test file) is read.
    :class:`DatasetError` says why a method cannot be used."""
    if not method.bundle:
        rec = read_reconstruction(method.source)
        if rec.metadata.get("dataset_sha256") != sha256_file(test_path):
            raise DatasetError("it was made from other test data (dataset SHA-256 differs)")
        return rec
    model, meta = checked_bundle(method.source, method.recorded_sha256, train_sha256)
    if method.input_alone:
        alone = input_alone(model)
        if alone is None:
            raise NoObjectGuess(f"{method.label}: the generator is given no object guess")
        model = alone
    reconstructor = PtychoPINNReconstructor(
        model,
        {**meta, "path": str(method.source)},
        PtychoPINNOptions(refine_steps=method.refine_steps),
    )
    rec = reconstructor.reconstruct(ReconstructionInput.from_dataset(test))
    rec = replace(rec, metadata={**rec.metadata, "data": str(test_path), "label": method.label})
    folder = ensure_inside(
        output_root, output_root / dose_label(dose) / view / _method_folder(method.label)
    )
    title = f"{method.label}, dose {dose:g}, {view}"
    # The figure shows the reconstruction as it is: the report's grids show it aligned, once.
    save_reconstruction(folder, rec, None, dose, view, method.label, title=title)
    return rec


def compare_view(
    design: StudyDesign,
    dose: float,
    view: str,
    test_path: Path,
    phase_e_root: Path,
    phase_f_root: Path | None,
    output_root: Path,
    result: Scored,
    train_sha256: dict[str, str] | None = None,
) -> None:
    """Score every method on one view's test data; ``train_sha256`` maps each view of this dose
    to the SHA-256 of its training split, which a bundle must have been trained on."""
    test = load_dataset(test_path)
    if test.obj is None:
        result.missing.append(
            f"dose {dose:g} {view}: the test data has no ground truth (objectGuess)"
        )
        return
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
    for method in view_methods(design, phase_e_root, phase_f_root, dose, view):
        if not method.source.is_file() or (method.bundle and method.recorded_sha256 is None):
            if method.required:
                result.missing.append(f"dose {dose:g} {view}: {method.missing}")
            continue
        try:
            rec = obtain(
                method,
                test_path,
                test,
                dose,
                view,
                output_root,
                (train_sha256 or {}).get(method.trained_view),
            )
        except NoObjectGuess:
            continue
        except DatasetError as error:
            result.missing.append(f"dose {dose:g} {view}: {method.label} not used: {error}")
            continue
        _score_one(result, dose, view, method.label, rec.obj, test.obj, region, design)
        trained, model = describe(method, view, rec)
        result.timings.append(
            {
                "dose": dose,
                "view": view,
                "method": method.label,
                "trained_on": trained,
                "model": model,
                "patterns": test.count,
                "iterations": rec.iterations,
                "seconds": rec.wall_time_s,
                "seconds_per_iteration": rec.seconds_per_iteration,
                "patterns_per_s": test.count / rec.wall_time_s if rec.wall_time_s > 0 else None,
            }
        )


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
    rows = []
    for entry in read_json(path).get("doses", []):
        measured = entry.get("measured_photons_per_pattern", {})
        rows += [
            {
                "dose": entry["dose"],
                "view": f"{BASELINE} (phase C)",
                "split": split,
                "patterns": entry["counts"].get(split),
                "measured_photons_per_pattern": value,
            }
            for split, value in measured.items()
            if split in ("train", "test")
        ]
    return rows


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
    jobs = read_json(path)["jobs"]
    return [
        {
            key: job.get(key)
            for key in ("dose", "view", "gridsize", "status", "epochs", "final_loss", "wall_time_s")
        }
        for job in jobs
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
    source = read_json(path).get("source", {}) if path.is_file() else {}
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
    phase_f_root: str | Path | None,
    output_root: str | Path,
    notes: list[str] | None = None,
) -> dict:
    """Score, tabulate, plot and report the whole study; returns the comparison manifest."""
    phase_c_root, phase_d_root, phase_e_root = (
        Path(phase_c_root),
        Path(phase_d_root),
        Path(phase_e_root),
    )
    phase_f_root = None if phase_f_root is None else Path(phase_f_root)
    output_root = Path(output_root)
    ensure_inside(output_root, output_root / "figures")
    entries, skips = collect_datasets(
        phase_c_root, phase_d_root, [v.name for v in design.views], allow_missing_phase_d=True
    )
    result = Scored(missing=[f"dose {s.dose:g} {s.view}: {s.reason}" for s in skips])
    with progress_bar("comparison", len(entries)) as advance:
        for entry in entries:
            trained_on = {e.view: e.train_sha256 for e in entries if e.dose == entry.dose}
            compare_view(
                design,
                entry.dose,
                entry.view,
                entry.test,
                phase_e_root,
                phase_f_root,
                output_root,
                result,
                trained_on,
            )
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
    write_json(output_root / "aggregate.json", tables)
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
                network_gain(tables["phase"]),
                ("dose", "view", "method", "ssim", "input_alone_ssim", "gain"),
            ),
        ),
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
    manifest = {
        "phase": "G",
        "ptypinn_version": __version__,
        "design": design.name,
        "metrics_csv": csv_path.name,
        "metrics_json": json_path.name,
        "report_html": report_html.name,
        "report_md": report_md.name,
        "rows": len(result.rows),
        "timings": result.timings,
        "regions": result.regions,
        "missing": remarks,
    }
    write_json(output_root / COMPARISON_MANIFEST, manifest)
    return manifest

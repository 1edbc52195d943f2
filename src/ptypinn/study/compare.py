"""Phase G: score every reconstruction against ground truth and write the tables, figures and report.

For each dose and view, every method reconstructs the view's *test* split:

* ``PtychoPINN gs2`` — the bundle trained on that overlap view (gridsize 2);
* ``PtychoPINN gs1`` — the baseline bundle (gridsize 1, full scan), run on the same test data;
* ``supervised`` — a supervised bundle, when one was trained for the view;
* the iterative engine's phase F reconstruction of the same test split.

All are scored on the same region — the pixels the probe footprint illuminates at some test
position — after alignment (metrics.align). Missing inputs are listed in the report, not fatal.

Nothing is used on trust: a PtychoPINN bundle must be the file ``training_manifest.json``
records (SHA-256) and must have been trained on the current training split of its view (the
dataset SHA-256 the bundle records); an iterative reconstruction must have been made from the
current test split. Anything else is listed as not used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptypinn import __version__
from ptypinn.io.artifacts import sha256_file, write_json
from ptypinn.io.dataset import DatasetError, PtychoDataset, load_dataset, read_metadata, read_npz
from ptypinn.study.design import StudyDesign
from ptypinn.pinn.inference import reconstruct, write_reconstruction
from ptypinn.study.layout import (
    COMPARISON_MANIFEST, RECONSTRUCTION_FILE, TRAINING_MANIFEST, dose_label, job_folder,
    training_folder,
)
from ptypinn.study.matrix import BASELINE, collect_datasets
from ptypinn.analysis.metrics import align, region_box, score_aligned
from ptypinn.study.overlap import METRICS_FILE, illuminated, probe_footprint
from ptypinn.io.progress import progress_bar
from ptypinn.analysis.report import Panel, aggregate, frc_curves, markdown_table, metric_vs_dose, overlap_figure, reconstruction_grid, write_report, write_tidy
from ptypinn.pinn.train import BUNDLE_NAME, load_bundle

PINN = "PtychoPINN gs2"
PINN_BASELINE = "PtychoPINN gs1"
SUPERVISED = "supervised"


@dataclass
class Scored:
    rows: list[dict] = field(default_factory=list)
    panels: list[Panel] = field(default_factory=list)
    curves: list[dict] = field(default_factory=list)
    timings: list[dict] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def scored_region(dataset: PtychoDataset) -> np.ndarray:
    """Pixels of the object grid illuminated (|P|² above 1/e² of its peak) at some scan position."""
    mask, _ = probe_footprint(dataset.probe)
    height, width = dataset.obj.shape
    return illuminated(dataset.positions, mask, (0, height, 0, width))


def trained_jobs(phase_e_root: Path) -> dict[tuple[str, str, int], dict]:
    """Finished jobs of the training manifest by (dose folder, view, gridsize)."""
    path = phase_e_root / TRAINING_MANIFEST
    try:
        jobs = json.loads(path.read_text(encoding="utf-8"))["jobs"] if path.is_file() else []
        return {
            (dose_label(job["dose"]), job["view"], job["gridsize"]): job
            for job in jobs
            if job["status"] == "ok"
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DatasetError(f"{path} is not a readable training manifest: {error}") from None


def pinn_methods(
    phase_e_root: Path, dose: float, view: str
) -> list[tuple[str, Path, str, str | None]]:
    """(method, bundle, view it trained on, SHA-256 the training manifest records) for every
    model that reconstructs a view's test data; the supervised bundle is not in the manifest."""
    jobs = trained_jobs(phase_e_root)
    candidates = []
    for method, source, gridsize in ((PINN, view, 2), (PINN_BASELINE, BASELINE, 1)):
        if method == PINN and view == BASELINE:
            continue
        job = jobs.get((dose_label(dose), source, gridsize), {})
        folder = training_folder(phase_e_root, dose, source, gridsize)
        candidates.append(
            (method, folder / job.get("bundle", BUNDLE_NAME), source, job.get("bundle_sha256"))
        )
    supervised = phase_e_root / dose_label(dose) / view / SUPERVISED / BUNDLE_NAME
    candidates.append((SUPERVISED, supervised, view, None))
    return candidates


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


def _method_folder(method: str) -> str:
    return method.lower().replace(" ", "_").replace("(", "").replace(")", "")


def _score_one(result: Scored, dose: float, view: str, method: str, recon: np.ndarray, truth: np.ndarray, region: np.ndarray, sigma: float) -> None:
    aligned, _ = align(recon, truth, region)
    scores, curves = score_aligned(aligned, truth, region, sigma)
    for component, values in scores.items():
        result.rows += [{"dose": dose, "view": view, "method": method, "component": component, "metric": metric, "value": value}
                        for metric, value in values.items()]
    result.panels.append(Panel(dose, view, method, np.where(region, aligned, 0)[region_box(region)]))
    curve = curves["phase"]
    result.curves.append({"dose": dose, "view": view, "method": method, "frequency": curve.frequency,
                          "correlation": curve.correlation, "half_bit": curve.half_bit})


def iterative_reconstruction(phase_f_root: Path, dose: float, view: str) -> tuple[str, np.ndarray, dict] | None:
    path = job_folder(phase_f_root, dose, view, "test") / RECONSTRUCTION_FILE
    if not path.is_file():
        return None
    arrays = read_npz(path)
    meta = read_metadata(arrays)
    return f"iterative ({meta.get('engine', 'engine')})", arrays["objectGuess"], meta


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
        result.missing.append(f"dose {dose:g} {view}: the test data has no ground truth (objectGuess)")
        return
    region = scored_region(test)
    sigma = design.metrics.ms_ssim_sigma
    result.panels.append(Panel(dose, view, "ground truth", np.where(region, test.obj, 0)[region_box(region)]))
    for method, bundle, source, recorded in pinn_methods(phase_e_root, dose, view):
        if not bundle.is_file() or (recorded is None and method != SUPERVISED):
            if method != SUPERVISED:
                manifest = phase_e_root / TRAINING_MANIFEST
                result.missing.append(f"dose {dose:g} {view}: no {method} model in {manifest}")
            continue
        try:
            model, meta = checked_bundle(bundle, recorded, (train_sha256 or {}).get(source))
        except DatasetError as error:
            result.missing.append(f"dose {dose:g} {view}: {method} not used: {error}")
            continue
        rec = reconstruct(model, test, meta["neighbor_count"], meta["grouping_seed"])
        write_reconstruction(output_root / dose_label(dose) / view / _method_folder(method), rec, test,
                             {"bundle": str(bundle), "data": str(test_path), "method": method}, title=f"{method}, dose {dose:g}, {view}")
        _score_one(result, dose, view, method, rec.obj, test.obj, region, sigma)
        result.timings.append({"dose": dose, "view": view, "method": method, "patterns": test.count,
                               "seconds": rec.wall_time_s, "patterns_per_s": rec.patterns_per_second})
    if phase_f_root is None:
        return
    found = iterative_reconstruction(phase_f_root, dose, view)
    if found is None:
        result.missing.append(f"dose {dose:g} {view}: no iterative reconstruction of the test split")
        return
    method, obj, meta = found
    if meta.get("dataset_sha256") != sha256_file(test_path):
        result.missing.append(
            f"dose {dose:g} {view}: {method} not used: it was made from other test data "
            "(dataset SHA-256 differs)"
        )
        return
    _score_one(result, dose, view, method, obj, test.obj, region, sigma)
    seconds = meta.get("wall_time_s")
    if seconds:
        result.timings.append({"dose": dose, "view": view, "method": method, "patterns": test.count,
                               "seconds": seconds, "patterns_per_s": test.count / seconds})


def _overlap_rows(phase_d_root: Path) -> list[dict]:
    path = phase_d_root / METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else []


def _training_rows(phase_e_root: Path) -> list[dict]:
    path = phase_e_root / TRAINING_MANIFEST
    if not path.is_file():
        return []
    jobs = json.loads(path.read_text())["jobs"]
    return [{key: job.get(key) for key in ("dose", "view", "gridsize", "status", "epochs", "final_loss", "wall_time_s")} for job in jobs]


def _design_table(design: StudyDesign) -> str:
    rows = [
        {"setting": "doses (photons/pattern)", "value": ", ".join(f"{d:g}" for d in design.doses)},
        {"setting": "N (patch px)", "value": design.patch_size},
        {"setting": "views (target f, spacing S px)", "value": ", ".join(f"{v.name} ({v.fraction}, {design.spacing(v.name):.1f})" for v in design.views)},
        {"setting": "neighbours K / gridsizes", "value": f"{design.neighbor_count} / {list(design.gridsizes)}"},
        {"setting": "object / scan step (px)", "value": f"{design.simulation.object_size} / {design.simulation.scan.step_px:g} ({design.simulation.scan.pattern})"},
        {"setting": "probe", "value": f"{design.simulation.probe.kind}, diameter {design.simulation.probe.diameter_fraction}·N"},
        {"setting": "training", "value": f"{design.training.model}, width {design.training.width}, {design.training.epochs} epochs, batch {design.training.batch_size}"},
        {"setting": "seeds (simulation, grouping, subsampling)", "value": f"{design.seeds.simulation}, {design.seeds.grouping}, {design.seeds.subsampling}"},
    ]
    return markdown_table(rows, ("setting", "value"))


def run_comparison(design: StudyDesign, phase_c_root: str | Path, phase_d_root: str | Path, phase_e_root: str | Path,
                   phase_f_root: str | Path | None, output_root: str | Path, notes: list[str] | None = None) -> dict:
    """Score, tabulate, plot and report the whole study; returns the comparison manifest."""
    phase_c_root, phase_d_root, phase_e_root = Path(phase_c_root), Path(phase_d_root), Path(phase_e_root)
    phase_f_root = None if phase_f_root is None else Path(phase_f_root)
    output_root = Path(output_root)
    entries, skips = collect_datasets(phase_c_root, phase_d_root, [v.name for v in design.views], allow_missing_phase_d=True)
    result = Scored(missing=[f"dose {s.dose:g} {s.view}: {s.reason}" for s in skips])
    with progress_bar("comparison", len(entries)) as advance:
        for entry in entries:
            trained_on = {e.view: e.train_sha256 for e in entries if e.dose == entry.dose}
            compare_view(design, entry.dose, entry.view, entry.test, phase_e_root, phase_f_root,
                         output_root, result, trained_on)
            advance(1)
    csv_path, json_path = write_tidy(result.rows, output_root)
    figures_dir = output_root / "figures"
    figures = []
    views = sorted({(e.dose, e.view) for e in entries})
    for dose, view in views:
        if any(p.dose == dose and p.view == view and p.method != "ground truth" for p in result.panels):
            figures.append(reconstruction_grid(result.panels, dose, view, figures_dir / f"reconstructions_{dose_label(dose)}_{view}.png"))
            figures.append(frc_curves(result.curves, dose, view, figures_dir / f"frc_{dose_label(dose)}_{view}.png"))
    for view in sorted({view for _, view in views}):
        for component in ("phase", "amplitude"):
            if any(r["view"] == view and r["component"] == component for r in result.rows):
                figures.append(metric_vs_dose(result.rows, view, component, figures_dir / f"{component}_vs_dose_{view}.png"))
    overlap = _overlap_rows(phase_d_root)
    if overlap:
        figures.insert(0, overlap_figure(overlap, figures_dir / "overlap.png"))
    tables = {component: aggregate(result.rows, component) for component in ("phase", "amplitude")}
    columns = ("dose", "view", "method", "ms_ssim", "ssim", "psnr", "frc50")
    write_json(output_root / "aggregate.json", tables)
    sections = [("Design", _design_table(design))]
    if overlap:
        sections.append(("Measured overlap (phase D)", "Target overlap f against the disc-overlap fraction measured with the probe's real "
                         "footprint, averaged over each position's K nearest neighbours.\n\n" + markdown_table(
                             overlap, ("dose", "view", "split", "count", "target_fraction", "measured_fraction", "mean_nn_spacing_px", "coverage"))))
    sections += [
        ("Phase (emphasised)", "Scores after alignment (sub-pixel shift, global phase, phase ramp, amplitude scale) inside the "
         "illuminated test region. PSNR is on the truth's data range in that region; FRC50 in cycles/pixel.\n\n" + markdown_table(tables["phase"], columns)),
        ("Amplitude", markdown_table(tables["amplitude"], columns)),
        ("Reconstruction time", markdown_table(result.timings, ("dose", "view", "method", "patterns", "seconds", "patterns_per_s"))),
    ]
    training = _training_rows(phase_e_root)
    if training:
        sections.append(("Training (phase E)", "Final loss is the Poisson NLL per detector pixel without the constant log k! term.\n\n"
                         + markdown_table(training, ("dose", "view", "gridsize", "status", "epochs", "final_loss", "wall_time_s"))))
    remarks = [*(notes or []), *result.missing]
    if remarks:
        sections.append(("Missing or skipped", "\n".join(f"- {line}" for line in remarks)))
    report_md, report_html = write_report(output_root, f"ptypinn study '{design.name}': dose × overlap", sections, figures)
    manifest = {
        "phase": "G", "ptypinn_version": __version__, "design": design.name,
        "metrics_csv": csv_path.name, "metrics_json": json_path.name, "report_html": report_html.name, "report_md": report_md.name,
        "rows": len(result.rows), "timings": result.timings, "missing": remarks,
    }
    write_json(output_root / COMPARISON_MANIFEST, manifest)
    return manifest

"""Phase G: score every reconstruction against ground truth and write the tables, figures and report.

For each dose and view, every method reconstructs the view's *test* split:

* ``PtychoPINN gs2`` — the bundle trained on that overlap view (gridsize 2);
* ``PtychoPINN gs1`` — the baseline bundle (gridsize 1, full scan), run on the same test data;
* ``supervised`` — a supervised bundle, when one was trained for the view;
* the iterative engine's phase F reconstruction of the same test split.

All are scored on the same region — the pixels the probe footprint illuminates at some test
position — after alignment (metrics.align: a shift bounded by the design's
``metrics.max_shift_px``, a phase ramp and a complex gain). Each method's alignment is recorded
in ``metrics.json`` / ``metrics.csv`` (component ``alignment``); a score that cannot be measured
is empty there, with the reason. Missing inputs are listed in the report, not fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptypinn import __version__
from ptypinn.io.artifacts import write_json
from ptypinn.io.dataset import PtychoDataset, load_dataset, read_metadata, read_npz
from ptypinn.study.design import StudyDesign
from ptypinn.pinn.inference import reconstruct, write_reconstruction
from ptypinn.study.layout import (
    COMPARISON_MANIFEST, RECONSTRUCTION_FILE, SIMULATION_MANIFEST, TRAINING_MANIFEST, dose_label,
    job_folder,
)
from ptypinn.study.simulate import PHOTONS_NOTE
from ptypinn.study.matrix import BASELINE, collect_datasets
from ptypinn.analysis.metrics import region_box, region_summary, score
from ptypinn.physics.forward import mean_counts
from ptypinn.study.overlap import METRICS_FILE, illuminated, probe_footprint
from ptypinn.io.progress import progress_bar
from ptypinn.analysis.report import Panel, aggregate, frc_curves, markdown_table, metric_vs_dose, overlap_figure, reconstruction_grid, write_report, write_tidy
from ptypinn.pinn.train import BUNDLE_NAME, load_bundle

PINN = "PtychoPINN gs2"
PINN_BASELINE = "PtychoPINN gs1"
SUPERVISED = "supervised"
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
    height, width = dataset.obj.shape
    return illuminated(dataset.positions, mask, (0, height, 0, width))


def pinn_methods(phase_e_root: Path, dose: float, view: str) -> list[tuple[str, Path]]:
    """(method, bundle) pairs that reconstruct a view's test data."""
    folder = phase_e_root / dose_label(dose)
    candidates = [(PINN_BASELINE, folder / BASELINE / "gs1" / BUNDLE_NAME)]
    if view != BASELINE:
        candidates.insert(0, (PINN, folder / view / "gs2" / BUNDLE_NAME))
    candidates.append((SUPERVISED, folder / view / SUPERVISED / BUNDLE_NAME))
    return candidates


def _method_folder(method: str) -> str:
    return method.lower().replace(" ", "_").replace("(", "").replace(")", "")


def _score_one(result: Scored, dose: float, view: str, method: str, recon: np.ndarray,
               truth: np.ndarray, region: np.ndarray, design: StudyDesign) -> None:
    metrics = design.metrics
    aligned, alignment, scores = score(recon, truth, region, metrics.max_shift_px,
                                       metrics.ms_ssim_sigma)
    key = {"dose": dose, "view": view, "method": method}
    for component, values in scores.values.items():
        reasons = scores.reasons[component]
        result.rows += [{**key, "component": component, "metric": metric, "value": value,
                         "reason": reasons.get(metric)} for metric, value in values.items()]
    result.rows += [{**key, "component": "alignment", "metric": name, "value": value,
                     "reason": None} for name, value in alignment.to_dict().items()]
    shown = np.where(region, aligned, np.nan)[region_box(region)]
    result.panels.append(Panel(dose, view, method, shown))
    curve = scores.curves["phase"]
    if curve is not None:
        result.curves.append({**key, "frequency": curve.frequency,
                              "correlation": curve.correlation, "half_bit": curve.half_bit})


def trained_on(method: str, view: str, meta: dict) -> str:
    """What a PtychoPINN bundle was trained on, in a few words (for the tables)."""
    data = BASELINE + " (full scan)" if method == PINN_BASELINE else view
    return f"{data} train split, gs{meta['architecture']['gridsize']}, {meta['training']['model']}"


def model_description(method: str, view: str, meta: dict) -> str:
    """Which model a PtychoPINN row is and how much it trained."""
    dataset = meta.get("dataset", {})
    epochs = len(meta.get("history", []))
    return (f"{trained_on(method, view, meta)}: {dataset.get('count', '?')} training patterns, "
            f"{epochs} epochs, {meta.get('wall_time_s', 0):.0f} s")


def iterative_reconstruction(phase_f_root: Path, dose: float, view: str) -> tuple[str, np.ndarray, dict] | None:
    path = job_folder(phase_f_root, dose, view, "test") / RECONSTRUCTION_FILE
    if not path.is_file():
        return None
    arrays = read_npz(path)
    meta = read_metadata(arrays)
    return f"iterative ({meta.get('engine', 'engine')})", arrays["objectGuess"], meta


def compare_view(design: StudyDesign, dose: float, view: str, test_path: Path, phase_e_root: Path, phase_f_root: Path | None,
                 output_root: Path, result: Scored) -> None:
    test = load_dataset(test_path)
    if test.obj is None:
        result.missing.append(f"dose {dose:g} {view}: the test data has no ground truth (objectGuess)")
        return
    region = scored_region(test)
    result.regions.append({"dose": dose, "view": view, **region_summary(region)})
    scale = test.metadata.get("dose_scale")
    if scale and view != BASELINE:  # the baseline test file is phase C's, listed from its manifest
        measured = mean_counts(test.diffraction, scale)
        result.photons.append({"dose": dose, "view": view, "split": "test", "patterns": test.count,
                               "measured_photons_per_pattern": measured})
    truth = np.where(region, test.obj, np.nan)[region_box(region)]
    result.panels.append(Panel(dose, view, "ground truth", truth))
    for method, bundle in pinn_methods(phase_e_root, dose, view):
        if not bundle.is_file():
            if method != SUPERVISED:
                result.missing.append(f"dose {dose:g} {view}: no {method} model ({bundle})")
            continue
        model, meta = load_bundle(bundle)
        rec = reconstruct(model, test, meta["neighbor_count"], meta["grouping_seed"])
        write_reconstruction(output_root / dose_label(dose) / view / _method_folder(method), rec, test,
                             {"bundle": str(bundle), "data": str(test_path), "method": method}, title=f"{method}, dose {dose:g}, {view}")
        _score_one(result, dose, view, method, rec.obj, test.obj, region, design)
        result.timings.append({
            "dose": dose, "view": view, "method": method,
            "trained_on": trained_on(method, view, meta),
            "model": model_description(method, view, meta), "patterns": test.count,
            "seconds": rec.wall_time_s, "patterns_per_s": rec.patterns_per_second,
        })
    if phase_f_root is None:
        return
    found = iterative_reconstruction(phase_f_root, dose, view)
    if found is None:
        result.missing.append(f"dose {dose:g} {view}: no iterative reconstruction of the test split")
        return
    method, obj, meta = found
    _score_one(result, dose, view, method, obj, test.obj, region, design)
    seconds = meta.get("wall_time_s")
    result.timings.append({
        "dose": dose, "view": view, "method": method, "trained_on": "none (test data only)",
        "model": f"{meta.get('iterations', '?')} iterations on the test split itself, no training",
        "patterns": test.count, "seconds": seconds,
        "patterns_per_s": test.count / seconds if seconds else None,
    })


def _overlap_rows(phase_d_root: Path) -> list[dict]:
    path = phase_d_root / METRICS_FILE
    return json.loads(path.read_text()) if path.is_file() else []


ALIGNMENT_COLUMNS = ("shift_x_px", "shift_y_px", "ramp_x_rad_per_px", "ramp_y_rad_per_px",
                     "gain_amplitude", "gain_phase_rad", "residual", "bound_hit")
METHOD_COLUMNS = ("dose", "view", "method", "model", "patterns", "seconds", "patterns_per_s")
REGION_COLUMNS = ("dose", "view", "illuminated_px", "box_fraction", "square_side_px")
METHODS_TEXT = (
    "Every row's model: what it was trained on and how much, and how long it took to reconstruct "
    "the test split. In the dense and sparse sections, PtychoPINN gs1 is the baseline model "
    "(gridsize 1, trained on the full-scan training split) applied to that view's test data.\n\n"
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
PHOTON_COLUMNS = ("dose", "view", "split", "patterns", "measured_photons_per_pattern",
                  "ratio_to_dose")


def _photon_rows(phase_c_root: Path) -> list[dict]:
    """Measured mean photons per pattern of every phase C file (from its manifest)."""
    path = phase_c_root / SIMULATION_MANIFEST
    if not path.is_file():
        return []
    rows = []
    for entry in json.loads(path.read_text()).get("doses", []):
        measured = entry.get("measured_photons_per_pattern", {})
        rows += [{"dose": entry["dose"], "view": f"{BASELINE} (phase C)", "split": split,
                  "patterns": entry["counts"].get(split), "measured_photons_per_pattern": value}
                 for split, value in measured.items() if split in ("train", "test")]
    return rows


def _photons_text(rows: list[dict]) -> str:
    for row in rows:
        row["ratio_to_dose"] = row["measured_photons_per_pattern"] / row["dose"]
    return ("Nominal dose against the measured mean photons per pattern of each file: "
            f"{PHOTONS_NOTE}.\n\n" + markdown_table(rows, PHOTON_COLUMNS))


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
            compare_view(design, entry.dose, entry.view, entry.test, phase_e_root, phase_f_root, output_root, result)
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
    trained = {(t["dose"], t["view"], t["method"]): t["trained_on"] for t in result.timings}
    for table in tables.values():
        for record in table:
            record["trained_on"] = trained.get((record["dose"], record["view"], record["method"]))
    columns = ("dose", "view", "method", "trained_on", "ms_ssim", "ssim", "psnr", "frc50")
    write_json(output_root / "aggregate.json", tables)
    sections = [("Design", _design_table(design))]
    if overlap:
        sections.append(("Measured overlap (phase D)", "Target overlap f against the disc-overlap fraction measured with the probe's real "
                         "footprint, averaged over each position's K nearest neighbours.\n\n" + markdown_table(
                             overlap, ("dose", "view", "split", "count", "target_fraction", "measured_fraction", "mean_nn_spacing_px", "coverage"))))
    photons = _photon_rows(phase_c_root) + result.photons
    if photons:
        sections.append(("Photons per pattern (measured)", _photons_text(photons)))
    alignment = aggregate(result.rows, "alignment", ALIGNMENT_COLUMNS)
    sections += [
        ("Methods", METHODS_TEXT + markdown_table(result.timings, METHOD_COLUMNS)),
        ("Phase (emphasised)", SCORED_REGION_RULE.format(bound=design.metrics.max_shift_px)
         + "\n\n" + markdown_table(tables["phase"], columns)),
        ("Amplitude", markdown_table(tables["amplitude"], columns)),
        ("Scored region", REGION_TEXT + markdown_table(result.regions, REGION_COLUMNS)),
        ("Alignment", ALIGNMENT_TEXT
         + markdown_table(alignment, ("dose", "view", "method", *ALIGNMENT_COLUMNS))),
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
        "rows": len(result.rows), "timings": result.timings, "regions": result.regions,
        "missing": remarks,
    }
    write_json(output_root / COMPARISON_MANIFEST, manifest)
    return manifest

"""Overlap views (phase D): thin each phase C scan to a view's minimum spacing and measure it.

A view keeps a subset of the scan whose positions are all at least its spacing apart
(:func:`~ptypinn.physics.scan.select_min_spacing`: greedy, in a seeded random visiting order).
The spacing comes from the view's rule (:meth:`~ptypinn.study.design.OverlapView.spacing`):

* ``disc_overlap``: the distance ``d`` at which two probe footprints of diameter ``D`` overlap
  by the target fraction, ``f(d) = target``, with ``D`` measured on the data's probe;
* ``patch_linear``: the original study's ``S = (1 - f) N``.

What each subset achieves is then measured (:func:`~ptypinn.physics.scan.measure_overlap`):
the nearest-neighbour disc overlap (what the rule targets), the mean over each position's K
nearest neighbours, the mean nearest-neighbour spacing and the coverage of the field of view.

Output layout of :func:`run_overlap`::

    <root>/dose_<int>/<view>/train.npz
    <root>/dose_<int>/<view>/test.npz
    <root>/overlap_manifest.json
    <root>/metrics.json

A view is only written when both of its splits keep at least :func:`min_view_positions`
positions; otherwise neither split is written and the manifest lists it under ``not_formed``.
A view whose spacing lies below the base scan step is refused (:class:`DesignError`).
The folder always matches the manifest: files an earlier run listed that this run does not
write (other doses, other views) are removed.
"""

from __future__ import annotations

import os
from pathlib import Path

from ptypinn import __version__
from ptypinn.io.artifacts import (
    ensure_inside,
    file_record,
    remove_files,
    sha256_file,
    write_json,
)
from ptypinn.io.dataset import DatasetError, PtychoDataset, load_dataset, save_dataset
from ptypinn.physics.scan import measure_overlap, probe_footprint, scan_window, select_min_spacing
from ptypinn.study.design import DesignError, StudyDesign
from ptypinn.study.layout import (
    OVERLAP_MANIFEST,
    SIMULATION_MANIFEST,
    SPLITS,
    dose_label,
    split_path,
)
from ptypinn.study.matrix import BASELINE, listed_files, phase_c_entries
from ptypinn.study.records import FileRecord, OverlapManifest, SimulationEntry, write_manifest

METRICS_FILE = "metrics.json"
COVERAGE_REGION = (
    "bounding box of the probe footprint placed at every position of the split's full phase C "
    "scan (positions rounded to pixels), clipped to the object"
)
SELECTION = (
    "greedy minimum spacing per split, positions visited in "
    "default_rng(seeds.subsampling).permutation order; spacing by the view's rule"
)
SPACING_RULES = {
    "disc_overlap": "d solves f(d) = target, f the disc-overlap fraction of two probe footprints "
    "of diameter D (|P|^2 above 1/e^2 of its peak, as a disc of equal area)",
    "patch_linear": "S = (1 - f) N, N the patch size (the original study's rule)",
}
OVERLAP_MEASURES = {
    "nearest_overlap": "disc-overlap fraction with the nearest other position, mean over positions",
    "knn_overlap": "disc-overlap fraction averaged over the K nearest other positions, "
    "mean over positions",
}


def min_view_positions(design: StudyDesign) -> int:
    """Fewest positions a view split must keep: ``C`` of the design's largest gridsize."""
    return max(design.gridsizes) ** 2


def _object_shape(dataset: PtychoDataset) -> tuple[int, int] | None:
    return None if dataset.obj is None else dataset.obj.shape


def _load_source(phase_c_root: Path, record: FileRecord, design: StudyDesign) -> PtychoDataset:
    """A phase C split, checked against its manifest hash and the design's N."""
    path = phase_c_root / record.path
    dataset = load_dataset(path)
    if sha256_file(path) != record.sha256:
        raise DatasetError(
            f"{path} changed since phase C wrote it (SHA-256 differs from {SIMULATION_MANIFEST})"
        )
    if dataset.patch_size != design.patch_size:
        raise DesignError(
            f"design {design.name!r} has N={design.patch_size} but {path} holds "
            f"{dataset.patch_size}x{dataset.patch_size} patterns; "
            "use the design phase C was run with"
        )
    return dataset


def _remove_view(folder: Path) -> None:
    """Delete a view's split files left by an earlier run, so the folder matches the manifest."""
    for split in SPLITS:
        (folder / f"{split}.npz").unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _form_view(
    design: StudyDesign,
    name: str,
    diameter: float,
    dose_entry: SimulationEntry,
    sources: dict,
    windows: dict,
    root: Path,
) -> tuple[dict, list[dict], list[dict]]:
    """Select, write and measure one view of one dose for a probe footprint of ``diameter``:
    (manifest entry, not-formed items, metric rows)."""
    dose, seed = dose_entry.dose, design.seeds.subsampling
    minimum = min_view_positions(design)
    view = design.view(name)
    spacing = view.spacing(design.patch_size, diameter)
    kept = {split: select_min_spacing(sources[split].positions, spacing, seed) for split in SPLITS}
    counts = {}
    for split in SPLITS:
        rejected = sources[split].count - kept[split].size
        counts[split] = {"kept": int(kept[split].size), "rejected": int(rejected)}
    rule = {"rule": view.rule, "target_fraction": view.fraction, "spacing_px": spacing}
    entry = {"view": name, **rule, "probe_diameter_px": diameter, "counts": counts}
    short = [split for split in SPLITS if kept[split].size < minimum]
    if short:
        _remove_view(root / dose_label(dose) / name)
        not_formed = [
            {
                "dose": dose,
                "view": name,
                "split": split,
                "count": int(kept[split].size),
                "reason": (
                    f"kept {kept[split].size} of {sources[split].count} positions at spacing "
                    f"{spacing:g} px, fewer than the minimum {minimum}"
                    if split in short
                    else f"not written: the {', '.join(short)} split of this view has too few "
                    "positions"
                ),
            }
            for split in SPLITS
        ]
        return {**entry, "formed": False}, not_formed, []
    files, metrics = {}, []
    measures: dict[str, dict] = {"nearest_overlap": {}, "knn_overlap": {}}
    for split in SPLITS:
        source, record = sources[split], dose_entry.files[split]
        subset = source.subset(
            kept[split],
            producer="ptypinn overlap",
            phase="D",
            ptypinn_version=__version__,
            view=name,
            spacing_rule=view.rule,
            target_fraction=view.fraction,
            probe_diameter_px=diameter,
            spacing_px=spacing,
            selection_seed=seed,
            positions_kept=counts[split]["kept"],
            positions_rejected=counts[split]["rejected"],
            overlap_source={"path": record.path, "sha256": record.sha256},
        )
        target = ensure_inside(root, split_path(root, dose, split, name))
        files[split] = file_record(save_dataset(target, subset), root)
        shape = _object_shape(source)
        measured = measure_overlap(
            subset.positions, subset.probe, shape, design.neighbor_count, windows[split]
        )
        metrics.append({"dose": dose, "view": name, "split": split, **rule, **measured})
        for key, values in measures.items():
            values[split] = measured[key]
    return {**entry, "formed": True, **measures, "files": files}, [], metrics


def run_overlap(
    design: StudyDesign,
    phase_c_root: str | os.PathLike,
    output_root: str | os.PathLike,
    doses: list[float] | None = None,
    views: list[str] | None = None,
) -> OverlapManifest:
    """Phase D: every view of every phase C dose, written per split, with manifest and metrics.

    Spacings use the footprint diameter of each dose's probe (that of its train split);
    a view whose spacing lies below the design's base scan step is refused with a
    :class:`DesignError` naming it. Selection uses ``design.seeds.subsampling`` on each split
    separately. The full phase C scan of each split is measured too, as view ``baseline`` (no
    target, no files written); its footprint bounding box is the coverage region of every view
    of that split.
    """
    source_root, root = Path(phase_c_root), Path(output_root)
    names = [view.name for view in design.views] if views is None else list(views)
    unknown = [name for name in names if name not in {view.name for view in design.views}]
    if unknown:
        raise DesignError(
            f"unknown view(s) {unknown}; the design has {[view.name for view in design.views]}"
        )
    entries, not_formed, metrics = [], [], []
    no_rule = {"rule": None, "target_fraction": None, "spacing_px": None}
    earlier = listed_files(root / OVERLAP_MANIFEST, OverlapManifest)
    for dose_entry in phase_c_entries(source_root, doses):
        dose = dose_entry.dose
        sources = {
            split: _load_source(source_root, dose_entry.files[split], design) for split in SPLITS
        }
        diameter = probe_footprint(sources["train"].probe)[1]
        problems = design.unreachable_views(diameter)
        if problems:
            raise DesignError(f"dose {dose:g}: " + "; ".join(problems))
        windows = {}
        for split, dataset in sources.items():
            shape = _object_shape(dataset)
            mask = probe_footprint(dataset.probe)[0]
            windows[split] = scan_window(dataset.positions, mask, shape)
            baseline = measure_overlap(
                dataset.positions, dataset.probe, shape, design.neighbor_count, windows[split]
            )
            metrics.append({"dose": dose, "view": BASELINE, "split": split, **no_rule, **baseline})
        view_entries = []
        for name in names:
            entry, missing, rows = _form_view(
                design, name, diameter, dose_entry, sources, windows, root
            )
            view_entries.append(entry)
            not_formed += missing
            metrics += rows
        folder = dose_label(dose)
        entries.append(
            {"dose": dose, "folder": folder, "probe_diameter_px": diameter, "views": view_entries}
        )
    manifest = OverlapManifest.model_validate(
        {
            "phase": "D",
            "ptypinn_version": __version__,
            "design": design.name,
            "seeds": design.seeds.model_dump(mode="json"),
            "patch_size": design.patch_size,
            "neighbor_count": design.neighbor_count,
            "min_view_positions": min_view_positions(design),
            "base_step_px": design.simulation.scan.step_px,
            "selection": SELECTION,
            "spacing_rules": SPACING_RULES,
            "overlap_measures": OVERLAP_MEASURES,
            "probe_footprint": "|P|^2 above 1/e^2 of its peak; "
            "D: diameter of the disc of equal area",
            "coverage_region": COVERAGE_REGION,
            "source_manifest": file_record(source_root / SIMULATION_MANIFEST, source_root),
            "doses": entries,
            "not_formed": not_formed,
        }
    )
    write_json(root / METRICS_FILE, metrics)
    write_manifest(root / OVERLAP_MANIFEST, manifest)
    remove_files(root, earlier - listed_files(root / OVERLAP_MANIFEST, OverlapManifest))
    return manifest

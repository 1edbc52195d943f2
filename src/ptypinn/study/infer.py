"""The inference phase: every PtychoPINN method reconstructs each view's test split.

For each dose and view (the baseline and the design's views), the methods are, in report order
(:func:`method_keys`): every model phase E trained on the view (gridsize above 1), then every
model trained on the full scan (the baseline, gridsize 1), each followed by its *input alone* (the
retrieval its generator is given, stitched without the network; ``pinn`` models) and, with
``training.refine_steps``, the view's own PtychoPINN models fine-tuned on the test diffraction
first (no ground truth) — then the design's iterative engines, whose reconstructions phase F
makes, and the engines of ``iterative.warm_start``, which this phase runs from the view's own
PtychoPINN reconstruction (:func:`warm_started`: never from the ground truth; their time includes
the network's). Each method is a :class:`~ptypinn.study.records.MethodKey`; its files go to::

    <root>/dose_<int>/<view>/test/<method folder>/reconstruction.{npz,png}
    <root>/inference_manifest.json

Nothing is used on trust: a bundle must be the file the training manifest records (SHA-256) and
must have been trained on the current training split of its view; otherwise the job fails with
the reason (the comparison lists it). An input alone of a model never trained, or of a generator
given no object guess, is ``skipped``. Jobs run through :func:`ptypinn.study.jobs.run_matrix`,
each on :data:`THREADS` torch threads and several at once (as phase F runs the engines), so a job
whose record still matches is kept. A warm start records its time-to-quality curve (``curve``,
:func:`ptypinn.study.scoring.quality_curve`), its seconds counted from the network's start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ptypinn import __version__
from ptypinn.engines.api import EngineOptions
from ptypinn.engines.registry import iterative_reconstructor
from ptypinn.io.artifacts import ensure_inside, sha256_file
from ptypinn.io.dataset import DatasetError, PtychoDataset, load_dataset
from ptypinn.io.reconstruction import Reconstruction, ReconstructionInput, starting_object
from ptypinn.pinn.inference import PtychoPINNOptions, PtychoPINNReconstructor
from ptypinn.pinn.model import input_alone
from ptypinn.pinn.train import BUNDLE_NAME, load_bundle
from ptypinn.study.design import MetricsConfig, StudyDesign
from ptypinn.study.jobs import content_key, run_matrix
from ptypinn.study.layout import (
    INFERENCE_MANIFEST,
    TRAINING_MANIFEST,
    dose_label,
    job_folder,
    training_folder,
)
from ptypinn.study.matrix import BASELINE, collect_datasets, trained_view, training_gridsizes
from ptypinn.study.outputs import save_reconstruction
from ptypinn.study.records import (
    CurvePoint,
    FileRecord,
    InferenceManifest,
    InferenceRecord,
    MethodKey,
    Status,
    TrainingManifest,
    TrainingRecord,
    cell_label,
    earlier_jobs,
    read_manifest,
    write_manifest,
)
from ptypinn.study.scoring import quality_curve

# Torch threads per job. As for the engines (phase F), each job runs on one thread and the CPU
# count of jobs run at once, so the seconds of every method in the report are one core's.
THREADS = 1


def method_keys(design: StudyDesign, view: str) -> list[MethodKey]:
    """Every method that reconstructs a view's test data, in report order (module docstring)."""
    keys = []
    sources = (view,) if view == BASELINE else (view, BASELINE)
    for recipe in design.methods:
        for source in sources:
            for gridsize in training_gridsizes(source, design.gridsizes):
                key = MethodKey(kind="ptychopinn", recipe=recipe, gridsize=gridsize)
                keys.append(key)
                if recipe == "pinn":
                    keys.append(key.model_copy(update={"input_alone": True}))
                if recipe == "pinn" and design.training.refine_steps and source == view:
                    keys.append(key.model_copy(update={"refine": True}))
    engines = [MethodKey(kind="engine", recipe=name) for name in design.iterative.engines]
    warm = [
        MethodKey(kind="engine", recipe=name, init=keys[0])
        for name in design.iterative.warm_start
        if keys
    ]
    return keys + engines + warm


@dataclass(frozen=True)
class InferenceJob:
    """One PtychoPINN method on one view's test split. ``record`` is the training record of its
    bundle (None: never trained), ``train_sha256`` the training split it must have learned."""

    dose: float
    view: str
    method: MethodKey
    test: Path
    test_sha256: str
    train_sha256: str | None
    record: TrainingRecord | None
    phase_e_root: Path
    refine_steps: int
    root: Path
    metrics: MetricsConfig
    engine: EngineOptions | None = None
    threads: int = 1

    @property
    def model(self) -> MethodKey:
        """The PtychoPINN model the job runs: the method's, or the one that starts its engine."""
        return self.method.init or self.method

    @property
    def trained_view(self) -> str:
        return trained_view(self.view, self.model.gridsize)

    @property
    def bundle(self) -> Path:
        folder = training_folder(
            self.phase_e_root,
            self.dose,
            self.trained_view,
            self.model.gridsize,
            self.model.recipe,
        )
        recorded = self.record.bundle if self.record else None
        return folder / (recorded.path if recorded else BUNDLE_NAME)

    @property
    def label(self) -> str:
        return f"{dose_label(self.dose)}/{self.view}/test/{self.method.folder}"

    @property
    def folder(self) -> Path:
        return job_folder(self.root, self.dose, self.view, "test", self.method.folder)

    @property
    def files_root(self) -> Path:
        return self.root

    @property
    def key(self) -> str:
        """SHA-256 of the job's science: method, test data, bundle and refinement."""
        recorded = self.record.bundle if self.record else None
        science = {
            "dose": self.dose,
            "view": self.view,
            "method": self.method.model_dump(mode="json"),
            "test_sha256": self.test_sha256,
            "train_sha256": self.train_sha256,
            "bundle_sha256": recorded.sha256 if recorded else None,
            "refine_steps": self.refine_steps,
            "engine": None if self.engine is None else self.engine.model_dump(mode="json"),
            "metrics": None if self.engine is None else self.metrics.model_dump(mode="json"),
        }
        return content_key(science)

    def result(self, status: Status, error: str | None = None) -> InferenceRecord:
        return InferenceRecord(
            key=self.key,
            status=status,
            error=error,
            dose=self.dose,
            view=self.view,
            method=self.method,
            trained_view=self.trained_view,
            dataset=str(self.test),
            dataset_sha256=self.test_sha256,
            bundle=str(self.bundle),
            training_seconds=self.record.wall_time_s if self.record else None,
        )


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


def run_inference_job(job: InferenceJob) -> InferenceRecord:
    """Reconstruct one job's test data with its bundle and write its files; a method that cannot
    be used is recorded (failed, or skipped for an input alone), never raised."""
    label = job.method.label
    recorded = job.record.bundle if job.record else None
    if recorded is None or not job.bundle.is_file():
        status: Status = "skipped" if job.method.input_alone else "failed"
        return job.result(status, f"no {label} model ({job.bundle})")
    try:
        model, meta = checked_bundle(job.bundle, recorded.sha256, job.train_sha256)
    except DatasetError as error:
        return job.result("failed", f"{label} not used: {error}")
    if job.method.input_alone:
        alone = input_alone(model)
        if alone is None:
            return job.result("skipped", f"{label}: the generator is given no object guess")
        model = alone
    steps = job.refine_steps if job.method.refine else 0
    test = load_dataset(job.test)
    options = PtychoPINNOptions(refine_steps=steps, threads=job.threads)
    reconstructor = PtychoPINNReconstructor(model, {**meta, "path": str(job.bundle)}, options)
    rec = reconstructor.reconstruct(ReconstructionInput.from_dataset(test))
    curve: list[CurvePoint] = []
    if job.engine is not None:
        network_seconds = rec.wall_time_s
        rec = warm_started(job.method.recipe, job.engine, rec, test, job.model.label)
        curve = quality_curve(rec.snapshots, test, job.metrics, offset=network_seconds)
    rec = replace(
        rec,
        metadata={
            **rec.metadata,
            "data": str(job.test),
            "dataset_sha256": job.test_sha256,
            "label": label,
        },
    )
    title = f"{label}, dose {job.dose:g}, {job.view}"
    # The figure shows the reconstruction as it is: the report's grids show it aligned, once.
    npz, figure = save_reconstruction(job.folder, rec, None, job.dose, job.view, label, title=title)
    return job.result("ok").model_copy(
        update={
            "iterations": rec.iterations,
            "wall_time_s": rec.wall_time_s,
            "curve": curve,
            "files": {
                "reconstruction": FileRecord.of(npz, job.root),
                "figure": FileRecord.of(figure, job.root),
            },
        }
    )


def warm_started(
    engine: str, options: EngineOptions, start: Reconstruction, test: PtychoDataset, source: str
) -> Reconstruction:
    """``engine`` started from the reconstruction ``start`` of the same ``test`` data by the
    method ``source`` (never from the ground truth); its time includes the start's."""
    inp = ReconstructionInput.from_dataset(test, initial_object=starting_object(start))
    rec = iterative_reconstructor(engine, options).reconstruct(inp)
    return replace(
        rec,
        wall_time_s=start.wall_time_s + rec.wall_time_s,
        metadata={
            **rec.metadata,
            "initial_object": f"{source} reconstruction ({start.wall_time_s:.1f} s, included)",
        },
    )


def plan_inference(
    design: StudyDesign,
    phase_c_root: str | os.PathLike,
    phase_d_root: str | os.PathLike,
    phase_e_root: str | os.PathLike,
    root: str | os.PathLike,
) -> list[InferenceJob]:
    """Every PtychoPINN job of the design, in dose, view and report order. Creates nothing."""
    phase_e_root, root = Path(phase_e_root), Path(root)
    path = phase_e_root / TRAINING_MANIFEST
    trained = read_manifest(TrainingManifest, path).jobs if path.is_file() else []
    finished = {record.label: record for record in trained if record.status == "ok"}
    entries, _ = collect_datasets(
        phase_c_root, phase_d_root, design.view_names(), allow_missing_phase_d=True
    )
    jobs = []
    for entry in entries:
        learned = {e.view: e.train_sha256 for e in entries if e.dose == entry.dose}
        for method in method_keys(design, entry.view):
            if method.kind != "ptychopinn" and method.init is None:
                continue  # a cold engine: phase F's
            model = method.init or method
            source = trained_view(entry.view, model.gridsize)
            cell = cell_label(entry.dose, source, model.gridsize, model.recipe)
            jobs.append(
                InferenceJob(
                    dose=entry.dose,
                    view=entry.view,
                    method=method,
                    test=entry.test,
                    test_sha256=entry.test_sha256,
                    train_sha256=learned.get(source),
                    record=finished.get(cell),
                    phase_e_root=phase_e_root,
                    refine_steps=design.training.refine_steps,
                    root=root,
                    metrics=design.metrics,
                    engine=design.iterative.options(method.recipe) if method.init else None,
                    threads=THREADS,
                )
            )
    return jobs


def run_inference(
    design: StudyDesign,
    phase_c_root: str | os.PathLike,
    phase_d_root: str | os.PathLike,
    phase_e_root: str | os.PathLike,
    root: str | os.PathLike,
    resume: bool = False,
    workers: int | None = None,
) -> InferenceManifest:
    """Reconstruct every view's test split with every PtychoPINN method; returns the manifest
    (written after every job). ``workers``: jobs at once (default: the CPU count over
    :data:`THREADS`)."""
    root = Path(root)
    plan = plan_inference(design, phase_c_root, phase_d_root, phase_e_root, root)
    for job in plan:
        ensure_inside(root, job.folder)
    manifest = InferenceManifest(ptypinn_version=__version__)

    def save(records: list[InferenceRecord]) -> None:
        manifest.jobs = records
        manifest.failed_count = sum(record.status == "failed" for record in records)
        write_manifest(root / INFERENCE_MANIFEST, manifest)

    run_matrix(
        plan,
        run_inference_job,
        earlier_jobs(InferenceManifest, root / INFERENCE_MANIFEST),
        resume,
        save=save,
        workers=(os.cpu_count() or 1) // THREADS if workers is None else workers,
        description="inference",
    )
    return manifest

"""The one-command study: phases C → G on the embedded default or the user's object and probe,
resumable.

Each step writes its outputs under ``<output>/<phase folder>`` and ends with a manifest. Its *key*
is a hash of the step name, the package version, the design fields it uses and the bytes of the
manifests it reads, so a changed training setting re-runs training and the comparison but not the
simulation. ``study_state.json`` records every step's key, whether it finished, and the SHA-256
of every file it wrote.

* With ``resume``, a finished step is skipped when its key is unchanged and every file it wrote
  still has its recorded bytes. A file that changed or is gone makes the step run again, and
  the message names it; a step that was interrupted runs again too. Either way the training and
  iterative steps keep every job whose record, inputs and files still match (resume per job).
* A step that runs for a new key (a changed design or new inputs), and every step without
  ``resume``, *starts clean*: the files it wrote before are removed first, so nothing from an
  earlier design mixes into the new study. Files put into the phase folders by hand are left
  alone, and never read: every phase finds its inputs through manifests, not folder names.

Where the work runs is not part of the design (so in no step's key): the training jobs train with
the given trainer options (``trainer``: accelerator, devices, precision ...) and can be sent to a
Dask cluster (``executor``); see docs/scaling.md. The engines and the inference phase run on the
CPU.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from ptypinn import __version__
from ptypinn.io.artifacts import (
    ensure_inside,
    read_json,
    remove_files,
    sha256_file,
    tree_digest,
    write_json,
)
from ptypinn.io.lock import folder_lock
from ptypinn.pinn.runtime import TrainerOptions, check_available
from ptypinn.study.design import StudyDesign
from ptypinn.study.jobs import content_key
from ptypinn.study.layout import (
    COMPARISON_MANIFEST,
    INFERENCE_MANIFEST,
    OVERLAP_MANIFEST,
    RECONSTRUCTION_MANIFEST,
    SIMULATION_MANIFEST,
    TRAINING_MANIFEST,
)

STATE_FILE = "study_state.json"
DESIGN_FILE = "design.yaml"


class StudyStateError(ValueError):
    """A ``study_state.json`` that cannot be read, so the study cannot be resumed from it."""


def study_trainer(options: TrainerOptions | None = None) -> TrainerOptions:
    """How the study's training jobs run: ``options``' hardware, precision and logging (default:
    the CPU, CSV logs), without checkpoints or a progress bar per job (the study prints its own
    progress)."""
    return replace(options or TrainerOptions(), checkpoints=False, progress=False)


@dataclass(frozen=True)
class Runtime:
    """Where the steps' work runs: the training jobs' trainer options and the executor they are
    sent to (``None``: this process)."""

    trainer: TrainerOptions = field(default_factory=study_trainer)
    executor: Executor | None = None


@dataclass(frozen=True)
class Step:
    name: str
    folder: str
    manifest: str
    reads: tuple[str, ...]
    uses: tuple[str, ...]
    run: Callable[[StudyDesign, Path, Runtime, bool], list[str]]


def _simulate(design: StudyDesign, root: Path, runtime: Runtime, resume: bool) -> list[str]:
    from ptypinn.study.simulate import run_simulation

    run_simulation(design, root / "phase_c")
    return []


def _overlap(design: StudyDesign, root: Path, runtime: Runtime, resume: bool) -> list[str]:
    from ptypinn.study.overlap import run_overlap

    manifest = run_overlap(design, root / "phase_c", root / "phase_d")
    return [
        f"view {item.view} at dose {item.dose:g} ({item.split}) not formed: {item.reason}"
        for item in manifest.not_formed
    ]


def _train(design: StudyDesign, root: Path, runtime: Runtime, resume: bool) -> list[str]:
    from ptypinn.study.training import run_training_matrix

    manifest = run_training_matrix(
        design,
        root / "phase_c",
        root / "phase_d",
        root / "phase_e",
        allow_missing_phase_d=True,
        resume=resume,
        options=runtime.trainer,
        executor=runtime.executor,
        design_args=["--config", str(root / DESIGN_FILE)],
    )
    return [
        f"training {job.view} at dose {job.dose:g} failed: {job.error}"
        for job in manifest.jobs
        if job.status == "failed"
    ]


def _iterative(design: StudyDesign, root: Path, runtime: Runtime, resume: bool) -> list[str]:
    from ptypinn.study.iterative import run_iterative_matrix

    manifest = run_iterative_matrix(
        design,
        root / "phase_c",
        root / "phase_d",
        root / "phase_f",
        splits=list(design.iterative.splits),
        allow_missing_phase_d=True,
        resume=resume,
    )
    return [
        f"iterative {job.engine} {job.view} at dose {job.dose:g} failed: {job.error}"
        for job in manifest.jobs
        if job.status == "failed"
    ]


def _infer(design: StudyDesign, root: Path, runtime: Runtime, resume: bool) -> list[str]:
    from ptypinn.study.infer import run_inference

    # a method that could not be used is listed by the comparison, which reads the records
    run_inference(
        design, root / "phase_c", root / "phase_d", root / "phase_e", root / "inference", resume
    )
    return []


def _compare(design: StudyDesign, root: Path, runtime: Runtime, resume: bool) -> list[str]:
    from ptypinn.study.compare import run_comparison

    state = _read_state(root, strict=False)
    notes = [note for step in state.get("steps", {}).values() for note in step.get("notes", [])]
    run_comparison(
        design,
        root / "phase_c",
        root / "phase_d",
        root / "phase_e",
        root / "inference",
        root / "phase_f",
        root / "phase_g",
        notes,
    )
    return []


PHASE_C = "phase_c/" + SIMULATION_MANIFEST
PHASE_D = "phase_d/" + OVERLAP_MANIFEST
STEPS = (
    Step(
        "simulate",
        "phase_c",
        SIMULATION_MANIFEST,
        (),
        ("doses", "patch_size", "seeds", "simulation"),
        _simulate,
    ),
    Step(
        "overlap",
        "phase_d",
        OVERLAP_MANIFEST,
        (PHASE_C,),
        ("views", "gridsizes", "neighbor_count", "seeds"),
        _overlap,
    ),
    Step(
        "train",
        "phase_e",
        TRAINING_MANIFEST,
        (PHASE_C, PHASE_D),
        ("views", "gridsizes", "methods", "neighbor_count", "seeds", "training"),
        _train,
    ),
    Step(
        "iterative",
        "phase_f",
        RECONSTRUCTION_MANIFEST,
        (PHASE_C, PHASE_D),
        ("views", "iterative"),
        _iterative,
    ),
    Step(
        "infer",
        "inference",
        INFERENCE_MANIFEST,
        (PHASE_C, PHASE_D, "phase_e/" + TRAINING_MANIFEST),
        ("views", "gridsizes", "methods", "training"),
        _infer,
    ),
    Step(
        "compare",
        "phase_g",
        COMPARISON_MANIFEST,
        (
            PHASE_D,
            "phase_e/" + TRAINING_MANIFEST,
            "inference/" + INFERENCE_MANIFEST,
            "phase_f/" + RECONSTRUCTION_MANIFEST,
        ),
        ("name", "views", "metrics", "gridsizes", "methods", "training", "iterative"),
        _compare,
    ),
)


def step_key(step: Step, design: StudyDesign, root: Path) -> str:
    """Hash of what a step depends on: its name, the package version, the design fields it uses,
    the bytes of the user's object and probe files those fields name, and the bytes of the
    manifests it reads (which carry every upstream change)."""
    inputs = {
        name: sha256_file(root / name) if (root / name).is_file() else None for name in step.reads
    }
    settings = {field: design.to_dict()[field] for field in step.uses}
    content: dict[str, object] = {
        "step": step.name,
        "version": __version__,
        "design": settings,
        "inputs": inputs,
    }
    if "simulation" in step.uses and design.simulation.input_files():
        # the user's object and probe files: a changed file re-runs the study from phase C
        content["files"] = {
            role: sha256_file(path) for role, path in design.simulation.input_files().items()
        }
    return content_key(content)


def _read_state(root: Path, strict: bool) -> dict:
    """The study state (empty if there is none); an unreadable file is an error when ``strict``."""
    path = root / STATE_FILE
    if not path.is_file():
        return {"steps": {}}
    try:
        state = read_json(path)
        if not isinstance(state, dict) or not isinstance(state.get("steps"), dict):
            raise ValueError("it holds no table of steps")
    except (OSError, ValueError) as error:
        if strict:
            raise StudyStateError(
                f"{path} cannot be read ({error}); delete it to run the whole study again"
            ) from None
        return {"steps": {}}
    return state


def report_path(root: Path) -> Path:
    return Path(root) / "phase_g" / "report.html"


def _first_changed(folder: Path, outputs: dict[str, str] | None) -> str | None:
    """The first file a step wrote that no longer has its recorded bytes (``None`` if all do)."""
    if not outputs:
        return f"{folder.name}/ (no record of its files)"
    for relative, digest in outputs.items():
        path = folder / relative
        if not path.is_file() or path.is_symlink() or sha256_file(path) != digest:
            return f"{folder.name}/{relative}"
    return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _ours(folder: Path, outputs: dict[str, str], previous: dict) -> dict[str, str]:
    """Of the files in ``folder`` after a step (``outputs``), those the step wrote: files that
    were there before it started and that it did not change (put there by hand) are not."""
    foreign = previous.get("foreign", {})
    return {path: digest for path, digest in outputs.items() if foreign.get(path) != digest}


def run_study(
    design: StudyDesign,
    output: str | Path,
    resume: bool = False,
    executor: Executor | None = None,
    console: Console | None = None,
    trainer: TrainerOptions | None = None,
) -> dict:
    """Run (or resume) every step; returns the study state written to ``study_state.json``.
    ``trainer``: the training jobs' hardware and logging (:func:`study_trainer`; default: CPU);
    an accelerator this machine lacks is refused (:class:`~ptypinn.pinn.runtime.TrainerError`)
    before any work.

    One run at a time: the study folder is locked (:func:`ptypinn.io.lock.folder_lock`) and a
    second run on it is refused, naming the process that holds it.
    """
    root = Path(output)
    console = console or Console()
    runtime = Runtime(study_trainer(trainer), executor)
    check_available(runtime.trainer)

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    with folder_lock(root, "ptypinn study run") as note:
        if note:
            say(f"note: {note}")
        return _run_steps(design, root, resume, runtime, say)


def _run_steps(
    design: StudyDesign,
    root: Path,
    resume: bool,
    runtime: Runtime,
    say: Callable[[str], None],
) -> dict:
    state = _read_state(root, strict=resume)
    root.mkdir(parents=True, exist_ok=True)
    for step in STEPS:
        ensure_inside(root, root / step.folder)
    design.save(root / DESIGN_FILE)
    state.update({"design": design.name, "ptypinn_version": __version__})
    for number, step in enumerate(STEPS, start=1):
        tag = f"[{number}/{len(STEPS)}] {step.name}"
        key = step_key(step, design, root)
        previous = state["steps"].get(step.name, {})
        folder = root / step.folder
        again = resume and previous.get("key") == key
        if again and previous.get("finished"):
            changed = _first_changed(folder, previous.get("outputs"))
            if changed is None:
                say(f"{tag}: unchanged, skipped")
                continue
            say(
                f"{tag}: {changed} differs from its record (changed or missing); "
                "running the step again"
            )
        elif again:
            say(f"{tag}: interrupted last time; continuing, finished jobs are kept")
        elif previous.get("outputs"):
            remove_files(folder, previous["outputs"])
            removed = len(previous["outputs"])
            say(f"{tag}: starting clean (removed {removed} files of an earlier run)")
        # Files already in the folder that are not the step's own were put there by hand: they
        # are never recorded as its outputs (so never removed). An interrupted step keeps the
        # list it started with.
        if again and not previous.get("finished") and "foreign" in previous:
            foreign = previous["foreign"]
        else:
            ours = previous.get("outputs") or {}
            foreign = {p: d for p, d in tree_digest(folder).items() if p not in ours}
        state["steps"][step.name] = {"key": key, "started": _now(), "foreign": foreign}
        write_json(root / STATE_FILE, state)
        say(f"{tag} ...")
        start = time.perf_counter()
        notes = step.run(design, root, runtime, again)
        seconds = time.perf_counter() - start
        state["steps"][step.name] = {
            "key": key,
            "manifest_sha256": sha256_file(folder / step.manifest),
            "seconds": round(seconds, 2),
            "notes": notes,
            "finished": _now(),
            "outputs": _ours(folder, tree_digest(folder), state["steps"][step.name]),
            "foreign": foreign,
        }
        write_json(root / STATE_FILE, state)
        say(f"{tag}: done in {seconds:.1f} s" + "".join(f"\n    note: {n}" for n in notes))
    write_json(root / STATE_FILE, state)
    return state

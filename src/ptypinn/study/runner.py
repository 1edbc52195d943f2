"""The one-command study: phases C → G on the embedded default, resumable.

Each step writes its outputs under ``<output>/<phase folder>`` and ends with a manifest. Its *key*
is a hash of the step name, the package version, the design fields it uses and the bytes of the
manifests it reads, so a changed training setting re-runs training and the comparison but not the
simulation. ``study_state.json`` records every finished step's key and the hash of the manifest it
wrote; with ``resume`` a step is skipped when both still match, and any change upstream (a new
design, a phase re-run by hand) re-runs everything downstream of it.

Independent training jobs can be sent to a Dask cluster (``executor``); see docs/scaling.md.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from ptypinn import __version__
from ptypinn.io.artifacts import sha256_file, write_json
from ptypinn.study.design import StudyDesign
from ptypinn.study.layout import COMPARISON_MANIFEST, RECONSTRUCTION_MANIFEST, SIMULATION_MANIFEST, TRAINING_MANIFEST
from ptypinn.study.overlap import OVERLAP_MANIFEST
from ptypinn.pinn.runtime import TrainerOptions

STATE_FILE = "study_state.json"
DESIGN_FILE = "design.yaml"


@dataclass(frozen=True)
class Step:
    name: str
    folder: str
    manifest: str
    reads: tuple[str, ...]
    uses: tuple[str, ...]
    run: Callable[[StudyDesign, Path, Executor | None], list[str]]


def _simulate(design: StudyDesign, root: Path, executor: Executor | None) -> list[str]:
    from ptypinn.study.simulate import run_simulation

    run_simulation(design, root / "phase_c")
    return []


def _overlap(design: StudyDesign, root: Path, executor: Executor | None) -> list[str]:
    from ptypinn.study.overlap import run_overlap

    manifest = run_overlap(design, root / "phase_c", root / "phase_d")
    return [f"view {item['view']} at dose {item['dose']:g} ({item['split']}) not formed: {item['reason']}" for item in manifest.get("not_formed", [])]


def _train(design: StudyDesign, root: Path, executor: Executor | None) -> list[str]:
    from ptypinn.study.training import run_training_matrix

    options = TrainerOptions(logger="csv", checkpoints=False, progress=False)
    manifest = run_training_matrix(design, root / "phase_c", root / "phase_d", root / "phase_e", allow_missing_phase_d=True,
                                   options=options, executor=executor, design_args=["--config", str(root / DESIGN_FILE)])
    return [f"training {job['view']} at dose {job['dose']:g} failed: {job['error']}" for job in manifest["jobs"] if job["status"] == "failed"]


def _iterative(design: StudyDesign, root: Path, executor: Executor | None) -> list[str]:
    from ptypinn.study.iterative import run_iterative_matrix

    manifest = run_iterative_matrix(
        root / "phase_c", root / "phase_d", root / "phase_f", design.iterative,
        splits=list(design.iterative.splits), allow_missing_phase_d=True,
    )
    failed = [job for job in manifest["jobs"] if job["status"] == "failed"]
    return [f"iterative {job['engine']} {job['view']} at dose {job['dose']:g} failed: "
            f"{job.get('error')}" for job in failed]


def _compare(design: StudyDesign, root: Path, executor: Executor | None) -> list[str]:
    from ptypinn.study.compare import run_comparison

    state = _read_state(root)
    notes = [note for step in state.get("steps", {}).values() for note in step.get("notes", [])]
    run_comparison(design, root / "phase_c", root / "phase_d", root / "phase_e", root / "phase_f", root / "phase_g", notes)
    return []


PHASE_C = "phase_c/" + SIMULATION_MANIFEST
PHASE_D = "phase_d/" + OVERLAP_MANIFEST
STEPS = (
    Step("simulate", "phase_c", SIMULATION_MANIFEST, (), ("doses", "patch_size", "seeds", "simulation"), _simulate),
    Step("overlap", "phase_d", OVERLAP_MANIFEST, (PHASE_C,), ("views", "gridsizes", "neighbor_count", "seeds"), _overlap),
    Step("train", "phase_e", TRAINING_MANIFEST, (PHASE_C, PHASE_D), ("views", "neighbor_count", "seeds", "training"), _train),
    Step("iterative", "phase_f", RECONSTRUCTION_MANIFEST, (PHASE_C, PHASE_D), ("views", "iterative"), _iterative),
    Step("compare", "phase_g", COMPARISON_MANIFEST,
         (PHASE_D, "phase_e/" + TRAINING_MANIFEST, "phase_f/" + RECONSTRUCTION_MANIFEST), ("name", "views", "metrics"), _compare),
)


def step_key(step: Step, design: StudyDesign, root: Path) -> str:
    """Hash of what a step depends on: its name, the package version, the design fields it uses
    and the bytes of the manifests it reads (which carry every upstream change)."""
    inputs = {name: sha256_file(root / name) if (root / name).is_file() else None for name in step.reads}
    settings = {field: design.to_dict()[field] for field in step.uses}
    payload = json.dumps({"step": step.name, "version": __version__, "design": settings, "inputs": inputs}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _read_state(root: Path) -> dict:
    path = root / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else {"steps": {}}


def report_path(root: Path) -> Path:
    return Path(root) / "phase_g" / "report.html"


def run_study(design: StudyDesign, output: str | Path, resume: bool = False, executor: Executor | None = None,
              console: Console | None = None) -> dict:
    """Run (or resume) every step; returns the study state written to ``study_state.json``."""
    root = Path(output)
    console = console or Console()
    root.mkdir(parents=True, exist_ok=True)
    design.save(root / DESIGN_FILE)
    state = _read_state(root) if resume else {"steps": {}}
    state.update({"design": design.name, "ptypinn_version": __version__})
    for number, step in enumerate(STEPS, start=1):
        key = step_key(step, design, root)
        previous = state["steps"].get(step.name, {})
        manifest = root / step.folder / step.manifest
        if resume and previous.get("key") == key and manifest.is_file() and sha256_file(manifest) == previous.get("manifest_sha256"):
            console.print(f"[{number}/{len(STEPS)}] {step.name}: unchanged, skipped")
            continue
        console.print(f"[{number}/{len(STEPS)}] {step.name} ...")
        start = time.perf_counter()
        notes = step.run(design, root, executor)
        seconds = time.perf_counter() - start
        state["steps"][step.name] = {
            "key": key, "manifest_sha256": sha256_file(manifest), "seconds": round(seconds, 2), "notes": notes,
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_json(root / STATE_FILE, state)
        console.print(f"[{number}/{len(STEPS)}] {step.name}: done in {seconds:.1f} s" + "".join(f"\n    note: {n}" for n in notes))
    write_json(root / STATE_FILE, state)
    return state

"""Typed phase records: JSON round trips, the previous release's manifests, one clear refusal."""

import json
from pathlib import Path

import pytest

from ptypinn.io.artifacts import write_json
from ptypinn.study.layout import (
    COMPARISON_MANIFEST,
    OVERLAP_MANIFEST,
    RECONSTRUCTION_MANIFEST,
    SIMULATION_MANIFEST,
    TRAINING_MANIFEST,
)
from ptypinn.study.records import (
    ComparisonManifest,
    ManifestError,
    OverlapManifest,
    ReconstructionManifest,
    SimulationManifest,
    TrainingManifest,
    read_manifest,
    write_manifest,
)

PREVIOUS = Path(__file__).parent / "data" / "release_0_1_0"  # written by ptypinn 0.1.0
KINDS = {
    SIMULATION_MANIFEST: SimulationManifest,
    OVERLAP_MANIFEST: OverlapManifest,
    TRAINING_MANIFEST: TrainingManifest,
    RECONSTRUCTION_MANIFEST: ReconstructionManifest,
    COMPARISON_MANIFEST: ComparisonManifest,
}


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_manifest_of_the_previous_release_loads_and_round_trips(name, tmp_path):
    record = read_manifest(KINDS[name], PREVIOUS / name)
    write_manifest(tmp_path / name, record)
    assert read_manifest(KINDS[name], tmp_path / name) == record
    again = json.loads((tmp_path / name).read_text())
    assert KINDS[name].model_validate(again).model_dump(mode="json") == again


def test_the_previous_releases_records_keep_their_content():
    old = json.loads((PREVIOUS / TRAINING_MANIFEST).read_text())["jobs"][0]
    job = read_manifest(TrainingManifest, PREVIOUS / TRAINING_MANIFEST).jobs[0]
    assert job.bundle is not None
    assert (job.bundle.path, job.bundle.sha256, job.bundle.bytes) == (
        old["bundle"],
        old["bundle_sha256"],
        old["bundle_bytes"],
    )
    assert job.label == "dose_1000/baseline/gs1" and job.key == old["key"]
    assert job.summary().startswith("dose 1000 baseline gs1: ok, final loss")
    iterative = read_manifest(ReconstructionManifest, PREVIOUS / RECONSTRUCTION_MANIFEST)
    first = json.loads((PREVIOUS / RECONSTRUCTION_MANIFEST).read_text())["jobs"][0]
    assert (
        iterative.jobs[0].files["reconstruction"].sha256
        == (first["files"]["reconstruction"]["sha256"])
    )
    assert iterative.jobs[0].label == "dose_1000/baseline/test/cdtools"
    simulation = read_manifest(SimulationManifest, PREVIOUS / SIMULATION_MANIFEST)
    assert simulation.doses[0].files["train"].path == "dose_1000/train.npz"
    overlap = read_manifest(OverlapManifest, PREVIOUS / OVERLAP_MANIFEST)
    assert [view.view for view in overlap.doses[0].views] == ["dense", "sparse"]


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda m: m["jobs"][0].update(status="queued"), "jobs.0.status"),
        (lambda m: m["jobs"][0].pop("view"), "jobs.0.view"),
        (lambda m: m.update(format=2), "format"),
    ],
)
def test_a_manifest_that_does_not_fit_is_refused_with_one_message(change, where, tmp_path):
    manifest = json.loads((PREVIOUS / TRAINING_MANIFEST).read_text())
    change(manifest)
    write_json(tmp_path / TRAINING_MANIFEST, manifest)
    with pytest.raises(ManifestError) as caught:
        read_manifest(TrainingManifest, tmp_path / TRAINING_MANIFEST)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / TRAINING_MANIFEST} is not a readable training manifest")
    assert f": {where}: " in message and "run that phase again" in message
    assert "\n" not in message


def test_a_file_that_is_not_json_is_refused_and_a_missing_one_is_not_found(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ManifestError, match="is not a readable phase C manifest"):
        read_manifest(SimulationManifest, tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        read_manifest(SimulationManifest, tmp_path / "none.json")

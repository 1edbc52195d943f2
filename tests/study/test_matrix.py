import json
import shutil

import pytest

from ptypinn.io.artifacts import write_json
from ptypinn.io.dataset import DatasetError
from ptypinn.study.layout import OVERLAP_MANIFEST, SIMULATION_MANIFEST
from ptypinn.study.matrix import MissingDatasetError, collect_datasets, select, training_gridsizes

VIEWS = ("dense", "sparse")


def test_full_matrix_has_baseline_dense_sparse_per_dose(fake_phases):
    phase_c, phase_d = fake_phases()
    entries, skips = collect_datasets(phase_c, phase_d, VIEWS)
    assert skips == []
    assert [(e.dose, e.view) for e in entries] == [
        (dose, view) for dose in (1e3, 1e4, 1e5) for view in ("baseline", "dense", "sparse")
    ]
    dense = entries[1]
    assert dense.train == phase_d / "dose_1000" / "dense" / "train.npz"
    assert entries[0].test == phase_c / "dose_1000" / "test.npz"
    assert len(dense.train_sha256) == 64 and dense.train_sha256 != entries[0].train_sha256


def test_doses_come_from_the_manifest_not_from_folders(fake_phases):
    """Folders an earlier design left behind are not part of the study."""
    phase_c, phase_d = fake_phases(doses=(1000,))
    for root in (phase_c, phase_d):
        shutil.copytree(root / "dose_1000", root / "dose_10000")
    entries, _ = collect_datasets(phase_c, phase_d, VIEWS)
    assert {e.dose for e in entries} == {1e3}


def test_a_file_changed_since_its_phase_wrote_it_is_an_error(fake_phases):
    phase_c, phase_d = fake_phases(doses=(1000,))
    (phase_c / "dose_1000" / "train.npz").write_bytes(b"flipped")
    with pytest.raises(
        DatasetError,
        match=r"view 'baseline' at dose 1000: .*train\.npz changed since simulation_manifest.json",
    ):
        collect_datasets(phase_c, phase_d, VIEWS)
    phase_c, phase_d = fake_phases(doses=(1000,))
    (phase_d / "dose_1000" / "dense" / "test.npz").write_bytes(b"flipped")
    with pytest.raises(DatasetError, match=r"dense/test\.npz changed since overlap_manifest.json"):
        collect_datasets(phase_c, phase_d, VIEWS, allow_missing_phase_d=True)


def test_phase_d_made_from_another_phase_c_is_stale(fake_phases):
    phase_c, phase_d = fake_phases(doses=(1000,))
    manifest = json.loads((phase_c / SIMULATION_MANIFEST).read_text())
    write_json(phase_c / SIMULATION_MANIFEST, {**manifest, "split_rule": "simulated again"})
    entries, skips = collect_datasets(phase_c, phase_d, VIEWS, allow_missing_phase_d=True)
    assert [e.view for e in entries] == ["baseline"]
    assert all("phase D data is stale" in s.reason for s in skips) and len(skips) == 2


def test_missing_view_is_an_error_naming_view_and_file(fake_phases):
    phase_c, phase_d = fake_phases()
    (phase_d / "dose_1000" / "sparse" / "train.npz").unlink()
    with pytest.raises(
        MissingDatasetError,
        match=r"view 'sparse' at dose 1000: missing phase D data: .*sparse/train\.npz",
    ):
        collect_datasets(phase_c, phase_d, VIEWS)
    phase_c, phase_d = fake_phases(views=("dense",))
    unlisted = r"view 'sparse' at dose 1000: .*overlap_manifest.json has no view 'sparse'"
    with pytest.raises(MissingDatasetError, match=unlisted):
        collect_datasets(phase_c, phase_d, VIEWS)


def test_allowing_missing_views_skips_and_records_them(fake_phases):
    phase_c, phase_d = fake_phases(views=("dense",))
    entries, skips = collect_datasets(phase_c, phase_d, VIEWS, allow_missing_phase_d=True)
    assert len(entries) == 6 and {e.view for e in entries} == {"baseline", "dense"}
    assert [(s.dose, s.view) for s in skips] == [(1e3, "sparse"), (1e4, "sparse"), (1e5, "sparse")]
    assert "missing phase D data" in skips[0].reason


def test_a_view_phase_d_could_not_form_is_skipped_with_its_reason(fake_phases):
    phase_c, phase_d = fake_phases(doses=(1000,))
    manifest = json.loads((phase_d / OVERLAP_MANIFEST).read_text())
    manifest["doses"][0]["views"][1] = {"view": "sparse", "formed": False}
    manifest["not_formed"] = [
        {"dose": 1000.0, "view": "sparse", "split": "train", "reason": "kept 3 of 40 positions"}
    ]
    write_json(phase_d / OVERLAP_MANIFEST, manifest)
    _, skips = collect_datasets(phase_c, phase_d, VIEWS, allow_missing_phase_d=True)
    assert [s.reason for s in skips] == ["view not formed in phase D: kept 3 of 40 positions"]


def test_missing_baseline_is_always_an_error(fake_phases):
    phase_c, phase_d = fake_phases()
    (phase_c / "dose_10000" / "test.npz").unlink()
    with pytest.raises(MissingDatasetError, match="view 'baseline' at dose 10000"):
        collect_datasets(phase_c, phase_d, VIEWS, allow_missing_phase_d=True)


def test_missing_phase_c_manifest_is_reported(tmp_path):
    with pytest.raises(MissingDatasetError, match="run `ptypinn simulate` first"):
        collect_datasets(tmp_path / "nowhere", tmp_path, VIEWS)


def test_a_dose_the_manifest_lacks_is_named(fake_phases):
    phase_c, phase_d = fake_phases()
    with pytest.raises(
        DatasetError, match=r"dose\(s\) \[5.0\] not in .*it holds \[1000.0, 10000.0, 100000.0\]"
    ):
        collect_datasets(phase_c, phase_d, VIEWS, doses=[5])


def test_filters_combine(fake_phases):
    entries, _ = collect_datasets(*fake_phases(), VIEWS)
    assert len(select(entries, doses=[1e4])) == 3
    assert len(select(entries, views=["dense", "sparse"])) == 6
    assert [(e.dose, e.view) for e in select(entries, doses=[1e3, 1e5], views=["dense"])] == [
        (1e3, "dense"),
        (1e5, "dense"),
    ]
    assert select(entries, views=["missing"]) == []


@pytest.mark.parametrize(
    "gridsizes, baseline, view",
    [
        ((1, 2), (1,), (2,)),
        ((1, 3), (1,), (3,)),
        ((3, 2, 1), (1,), (2, 3)),
        ((1,), (1,), ()),
        ((2,), (), (2,)),
    ],
)
def test_the_design_gridsizes_decide_what_trains_on_each_view(gridsizes, baseline, view):
    assert training_gridsizes("baseline", gridsizes) == baseline
    assert training_gridsizes("dense", gridsizes) == view

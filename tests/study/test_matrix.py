from pathlib import Path

import pytest

from ptypinn.study.matrix import MissingDatasetError, collect_datasets, discover_doses, select, training_gridsizes


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def _study(tmp_path: Path, doses=(1000, 10000, 100000), views=("dense", "sparse")) -> tuple[Path, Path]:
    phase_c, phase_d = tmp_path / "c", tmp_path / "d"
    for dose in doses:
        for split in ("train", "test"):
            _touch(phase_c / f"dose_{dose}" / f"{split}.npz")
            for view in views:
                _touch(phase_d / f"dose_{dose}" / view / f"{split}.npz")
    return phase_c, phase_d


def test_full_matrix_has_baseline_dense_sparse_per_dose(tmp_path):
    phase_c, phase_d = _study(tmp_path)
    entries, skips = collect_datasets(phase_c, phase_d)
    assert skips == []
    assert [(e.dose, e.view) for e in entries] == [
        (dose, view) for dose in (1e3, 1e4, 1e5) for view in ("baseline", "dense", "sparse")
    ]
    dense = entries[1]
    assert dense.train == phase_d / "dose_1000" / "dense" / "train.npz"
    assert entries[0].test == phase_c / "dose_1000" / "test.npz"


def test_doses_are_discovered_in_numeric_order(tmp_path):
    phase_c, _ = _study(tmp_path, doses=(100000, 1000, 10000))
    (phase_c / "dose_notes").mkdir()
    assert discover_doses(phase_c) == [1e3, 1e4, 1e5]


def test_missing_view_is_an_error_naming_view_and_file(tmp_path):
    phase_c, phase_d = _study(tmp_path, views=("dense",))
    with pytest.raises(MissingDatasetError, match=r"view 'sparse' at dose 1000 is missing .*sparse/train\.npz"):
        collect_datasets(phase_c, phase_d)


def test_allowing_missing_views_skips_and_records_them(tmp_path):
    phase_c, phase_d = _study(tmp_path, views=("dense",))
    entries, skips = collect_datasets(phase_c, phase_d, allow_missing_phase_d=True)
    assert len(entries) == 6 and {e.view for e in entries} == {"baseline", "dense"}
    assert [(s.dose, s.view) for s in skips] == [(1e3, "sparse"), (1e4, "sparse"), (1e5, "sparse")]
    assert "missing phase D data" in skips[0].to_dict()["reason"]


def test_missing_baseline_is_always_an_error(tmp_path):
    phase_c, phase_d = _study(tmp_path)
    (phase_c / "dose_10000" / "test.npz").unlink()
    with pytest.raises(MissingDatasetError, match="view 'baseline' at dose 10000"):
        collect_datasets(phase_c, phase_d, allow_missing_phase_d=True)


def test_missing_phase_c_root_is_reported(tmp_path):
    with pytest.raises(MissingDatasetError, match="run `ptypinn simulate` first"):
        collect_datasets(tmp_path / "nowhere", tmp_path)


def test_filters_combine(tmp_path):
    entries, _ = collect_datasets(*_study(tmp_path))
    assert len(select(entries, doses=[1e4])) == 3
    assert len(select(entries, views=["dense", "sparse"])) == 6
    assert [(e.dose, e.view) for e in select(entries, doses=[1e3, 1e5], views=["dense"])] == [(1e3, "dense"), (1e5, "dense")]
    assert select(entries, views=["missing"]) == []


@pytest.mark.parametrize(
    "gridsizes, baseline, view",
    [((1, 2), (1,), (2,)), ((1, 3), (1,), (3,)), ((3, 2, 1), (1,), (2, 3)), ((1,), (1,), ()), ((2,), (), (2,))],
)
def test_the_design_gridsizes_decide_what_trains_on_each_view(gridsizes, baseline, view):
    assert training_gridsizes("baseline", gridsizes) == baseline
    assert training_gridsizes("dense", gridsizes) == view

import errno

import pytest

from ptypinn.io.artifacts import (
    OutputError,
    atomic_path,
    clear_outputs,
    ensure_inside,
    file_record,
    record_matches,
    remove_files,
    sha256_file,
    tree_digest,
)


def test_a_write_the_system_refuses_names_the_target_and_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "result.npz"
    target.parent.mkdir()
    target.write_text("old")
    with pytest.raises(OutputError, match=f"cannot write {target}: No space left on device"):
        with atomic_path(target):
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old" and sorted(p.name for p in target.parent.iterdir()) == [
        "result.npz"
    ]
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=f"cannot write {tmp_path / 'file' / 'x.json'}"):
        with atomic_path(tmp_path / "file" / "x.json") as tmp:
            tmp.write_text("{}")


def test_links_out_of_the_output_folder_are_refused_and_never_followed(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "jobs").mkdir(parents=True)
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    (root / "jobs" / "away").symlink_to(outside)
    (root / "jobs" / "log").symlink_to(outside / "keep.txt")
    assert (
        ensure_inside(root, root / "jobs" / "new" / "model.pt")
        == root / "jobs" / "new" / "model.pt"
    )
    with pytest.raises(OutputError, match="leads it out of the output folder"):
        ensure_inside(root, root / "jobs" / "away" / "model.pt")
    clear_outputs(root / "jobs", ["log", "away", "absent"])
    assert (outside / "keep.txt").read_text() == "precious" and list(
        (root / "jobs").iterdir()
    ) == []


def test_remove_files_prunes_emptied_folders_and_stops_at_links(tmp_path):
    for name in ("a/b/one.npz", "a/b/two.npz", "a/c/three.npz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "x.npz").write_text("keep")
    (tmp_path / "linked").symlink_to(outside)
    remove_files(tmp_path, ["a/b/one.npz", "a/c/three.npz", "linked/x.npz", "never/was.npz"])
    assert (tmp_path / "a" / "b" / "two.npz").is_file() and not (tmp_path / "a" / "c").exists()
    assert (outside / "x.npz").read_text() == "keep"


def test_tree_digest_and_record_matches_see_every_changed_byte(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.bin").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "d" / "f.bin")
    assert tree_digest(tmp_path) == {"d/f.bin": sha256_file(tmp_path / "d" / "f.bin")}
    record = file_record(tmp_path / "d" / "f.bin", tmp_path)
    assert record_matches(record, tmp_path)
    (tmp_path / "d" / "f.bin").write_bytes(b"abd")
    assert not record_matches(record, tmp_path)
    (tmp_path / "d" / "f.bin").unlink()
    assert not record_matches(record, tmp_path) and tree_digest(tmp_path / "nowhere") == {}

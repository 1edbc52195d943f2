"""One run per output folder (issue 27, item 3): the PID lock file."""

import os
import subprocess
import sys

import pytest

from ptypinn.io.lock import LOCK_FILE, FolderBusyError, folder_lock


@pytest.fixture
def other_process():
    """A live process that is not this one."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process.pid
    process.kill()
    process.wait()


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_lock_names_this_process_and_goes_when_the_run_ends(tmp_path):
    with folder_lock(tmp_path / "out", "test") as note:
        text = (tmp_path / "out" / LOCK_FILE).read_text()
        assert note is None and text.split() == [str(os.getpid()), "test"]
        with pytest.raises(FolderBusyError, match="already in use by this process"):
            with folder_lock(tmp_path / "out", "again"):
                pass
    assert not (tmp_path / "out" / LOCK_FILE).exists()
    with pytest.raises(RuntimeError), folder_lock(tmp_path / "out", "test"):
        raise RuntimeError("a failing run")
    assert not (tmp_path / "out" / LOCK_FILE).exists()


def test_a_folder_in_use_is_refused_naming_the_other_process(tmp_path, other_process):
    (tmp_path / LOCK_FILE).write_text(f"{other_process} ptypinn study run\n")
    with pytest.raises(FolderBusyError, match=f"in use by process {other_process}"):
        with folder_lock(tmp_path, "test"):
            pass
    assert (tmp_path / LOCK_FILE).read_text().startswith(str(other_process))


def test_a_stale_lock_is_taken_over_with_a_note(tmp_path):
    pid = dead_pid()
    (tmp_path / LOCK_FILE).write_text(f"{pid} ptypinn study run\n")
    with folder_lock(tmp_path, "test") as note:
        assert f"took over the stale lock of process {pid}" in note
        assert (tmp_path / LOCK_FILE).read_text().startswith(str(os.getpid()))
    (tmp_path / LOCK_FILE).write_text("garbage")
    with folder_lock(tmp_path, "test") as note:
        assert "stale lock of an unknown process" in note


def test_a_folder_the_lock_created_goes_if_the_run_wrote_nothing(tmp_path):
    with pytest.raises(ValueError), folder_lock(tmp_path / "new" / "out", "test"):
        raise ValueError("refused before writing")
    assert not (tmp_path / "new" / "out").exists()
    with folder_lock(tmp_path / "kept", "test"):
        (tmp_path / "kept" / "result.txt").write_text("x")
    assert sorted(p.name for p in (tmp_path / "kept").iterdir()) == ["result.txt"]

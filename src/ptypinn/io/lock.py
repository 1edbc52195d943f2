"""One run per output folder: a lock file holding the PID of the process that writes there.

:func:`folder_lock` creates ``<folder>/.ptypinn.lock`` with ``O_EXCL`` (so of two processes only
one can create it) and removes it when the run ends, however it ends. A second run on the folder
is refused at once, naming the process that holds it. A lock whose process no longer runs (killed
with ``kill -9``, a crashed machine) is stale: it is taken over, and the run says so.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from ptypinn.io.artifacts import OutputError

LOCK_FILE = ".ptypinn.lock"


class FolderBusyError(OutputError):
    """The folder is in use by another running process."""


def _holder(path: Path) -> int | None:
    """The PID a lock file names (``None`` if it names none)."""
    try:
        return int(path.read_text(encoding="utf-8").split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, command: str) -> Iterator[str | None]:
    """Hold ``folder``'s lock while the block runs; ``command`` names the run in the lock file.

    Yields ``None``, or a note when a stale lock was taken over. A folder it created is removed
    again if the run left it empty. Raises :class:`FolderBusyError`
    when another running process holds the lock.
    """
    folder = Path(folder)
    path = folder / LOCK_FILE
    note = None
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                pid = _holder(path)
                if pid is not None and pid != os.getpid() and _running(pid):
                    raise FolderBusyError(
                        f"{folder} is in use by process {pid} ({path}); wait for it to finish "
                        "or stop it; one run at a time may write to a folder"
                    ) from None
                if pid == os.getpid():
                    raise FolderBusyError(
                        f"{folder} is already in use by this process ({path})"
                    ) from None
                path.unlink(missing_ok=True)
                who = f"process {pid}" if pid is not None else "an unknown process"
                note = f"took over the stale lock of {who}, which no longer runs ({path})"
        else:
            raise FolderBusyError(f"cannot take the lock {path}: other runs keep taking it")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} {command}\n")
    except FolderBusyError:
        raise
    except OSError as error:
        raise OutputError(f"cannot lock {folder}: {error.strerror or error}") from None
    try:
        yield note
    finally:
        if _holder(path) == os.getpid():
            path.unlink(missing_ok=True)
        if created:  # a run that wrote nothing (refused, dry) leaves no folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()

"""Files the pipeline writes: atomic replacement, reproducible NPZ archives, JSON, hashes.

Every output goes through :func:`atomic_path`: content is written to a temporary file in the
destination folder and renamed over the target only once complete, so an interrupted run never
leaves a half-written file behind. A write that the system refuses (permission, disk full, a file
where a folder should be) is an :class:`OutputError` naming the path.

Output folders are ours: :func:`ensure_inside` refuses a path that a symbolic link leads out of
its output folder, and :func:`clear_outputs` / :func:`remove_files` delete links, never what
they point to.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

# A fixed timestamp for archive members keeps NPZ files byte-identical across runs
# (numpy.savez stamps each member with the current time).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class OutputError(Exception):
    """An output that cannot be written where it was asked for; the message names the path."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left untouched; an
    ``OSError`` becomes an :class:`OutputError` naming ``target``.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as error:
        raise OutputError(f"cannot write {target}: {error.strerror or error}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(
            tmp_path, 0o666 & ~_current_umask()
        )  # mkstemp creates 0600; publish like open() would
        os.replace(tmp_path, target)
    except OSError as error:
        tmp_path.unlink(missing_ok=True)
        raise OutputError(f"cannot write {target}: {error.strerror or error}") from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an uncompressed NPZ, atomically and byte-reproducibly.

    The result is readable by ``numpy.load(path, allow_pickle=False)`` as long as no array has
    object dtype (which is refused here).
    """
    path = Path(path)
    with (
        atomic_path(path) as tmp,
        zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_STORED) as zf,
    ):
        for key, value in arrays.items():
            array = np.asanyarray(value)
            if array.dtype.hasobject:
                raise TypeError(f"array {key!r} has object dtype; NPZ files here are pickle-free")
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)
    return path


def write_json(path: str | os.PathLike, payload: object) -> Path:
    """Write ``payload`` as indented JSON atomically; refuses anything that is not plain JSON."""
    path = Path(path)
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def _not_json(constant: str) -> float:
    raise ValueError(f"{constant} is not a JSON number")


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``; ``NaN``/``Infinity`` (which :func:`write_json` never writes) raise
    ``ValueError`` like any other malformed content."""
    return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=_not_json)


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: str | os.PathLike, root: str | os.PathLike) -> dict[str, object]:
    """Manifest entry for a file: its path relative to ``root``, size and SHA-256."""
    path = Path(path)
    return {
        "path": path.relative_to(root).as_posix(),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }


def record_matches(record: Mapping[str, object], root: str | os.PathLike) -> bool:
    """Whether the file a :func:`file_record` names (under ``root``) has its recorded bytes."""
    path = Path(root) / str(record["path"])
    return path.is_file() and not path.is_symlink() and sha256_file(path) == record["sha256"]


def ensure_inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``path``, after checking that it stays inside ``root`` once symbolic links are resolved."""
    root, path = Path(root), Path(path)
    if not path.resolve().is_relative_to(root.resolve()):
        raise OutputError(
            f"refusing to write {path}: a symbolic link leads it out of the output folder {root}"
        )
    return path


def _remove(path: Path) -> None:
    """Delete a file, a link (not its target) or a folder tree (links inside are not followed)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def clear_outputs(folder: str | os.PathLike, names: Iterable[str]) -> None:
    """Remove the entries ``names`` an earlier run left in ``folder``: a new run starts clean."""
    for name in names:
        _remove(Path(folder) / name)


def remove_files(root: str | os.PathLike, paths: Iterable[str]) -> None:
    """Delete files (paths relative to ``root``), then the folders under ``root`` left empty."""
    root = Path(root)
    for relative in paths:
        path = root / relative
        if not path.parent.resolve().is_relative_to(root.resolve()):
            continue  # a link higher up leads outside: never delete there
        _remove(path)
        for parent in path.parents:
            if (
                parent == root
                or not parent.is_relative_to(root)
                or not parent.is_dir()
                or any(parent.iterdir())
            ):
                break
            parent.rmdir()


def tree_digest(folder: str | os.PathLike) -> dict[str, str]:
    """SHA-256 of every regular file under ``folder`` (links not followed), by relative path."""
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }

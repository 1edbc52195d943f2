"""Files the pipeline writes: atomic replacement, reproducible NPZ archives, JSON, hashes.

Every output goes through :func:`atomic_path`: content is written to a temporary file in the
destination folder and renamed over the target only once complete, so an interrupted run never
leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

# A fixed timestamp for archive members keeps NPZ files byte-identical across runs
# (numpy.savez stamps each member with the current time).
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_current_umask())  # mkstemp creates 0600; publish like open() would
        os.replace(tmp_path, target)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an uncompressed NPZ, atomically and byte-reproducibly.

    The result is readable by ``numpy.load(path, allow_pickle=False)`` as long as no array has
    object dtype (which is refused here).
    """
    path = Path(path)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, mode="w", compression=zipfile.ZIP_STORED) as zf:
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

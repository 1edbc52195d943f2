"""What every benchmark reports beside its numbers, and how it hands its JSON over."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The repository's short commit, ``+dirty`` when tracked files differ from it; ``unknown``
    outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPOSITORY), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def cpu() -> str:
    """The CPU's model name and whether it computes bf16 natively (``/proc/cpuinfo``)."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return platform.processor() or "unknown"
    fields: dict[str, str] = {}
    for line in info.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields.setdefault(key.strip(), value.strip())  # the first processor's entries
    name = fields.get("model name", "unknown")
    flags = fields.get("flags", "").split()
    native = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in flags]
    return f"{name}; bf16: {', '.join(native) or 'not native'}"


def environment() -> dict:
    """The machine a result was measured on (threads, cores, CPU, torch version) and how: the
    command line and the commit it ran at."""
    import torch  # here, so that reports without torch numbers do not load it

    return {
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpu": cpu(),
        "torch": torch.__version__,
        "command": shlex.join(["python", *sys.argv]),
        "commit": commit(),
    }


def emit(result: dict, path: Path | None) -> None:
    """Print ``result`` as JSON, and write it to ``path`` too when one is given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")

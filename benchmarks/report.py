"""What every benchmark reports beside its numbers, and how it hands its JSON over."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def environment() -> dict:
    """The machine a result was measured on: threads, cores, architecture, torch version."""
    import torch  # here, so that reports without torch numbers do not load it

    return {
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
    }


def emit(result: dict, path: Path | None) -> None:
    """Print ``result`` as JSON, and write it to ``path`` too when one is given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")

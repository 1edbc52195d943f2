"""Per-pattern phase retrieval as a yardstick for PtychoPINN at gridsize 1.

A gridsize-1 PtychoPINN predicts each patch from its own diffraction pattern; the overlap between
patterns only enters at stitching. This benchmark does the same with no network: each pattern of
the smoke test split is phase-retrieved alone by error reduction (known probe, support the
probe's footprint, |O| <= 1), from a flat start, and the patches are stitched exactly as
PtychoPINN's are (|P|² weights, phase synchronisation) and scored by the same scorer. The retrieval
is ``ptypinn.physics.retrieval.retrieve_patches`` (what ``training.inputs: retrieval`` feeds the
generator): ``--beta 0`` is error reduction, 0.8 the relaxed reflections (RAAR) default.

Usage:
  python benchmarks/single_pattern_retrieval.py --iterations 1,5,20,100 --beta 0.8 \
      --json benchmarks/results/single_pattern_retrieval.json
Prints (and writes) one JSON object: phase and amplitude SSIM after each iteration count (each
count is a fresh run), with its seconds, the machine and the threads.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from report import emit, environment

from ptypinn.io.dataset import PtychoDataset, load_dataset
from ptypinn.physics.retrieval import retrieval_support, retrieve_patches
from ptypinn.physics.stitch import stitch
from ptypinn.study.design import preset

from view_data import test_scores, view_splits


def per_pattern_point(test: PtychoDataset, iterations: int, beta: float = 0.8) -> dict:
    """The per-pattern yardstick on ``test``: each pattern retrieved alone (``iterations`` from a
    flat start), stitched as PtychoPINN's patches are and scored; with its seconds."""
    probe = torch.from_numpy(test.probe)
    support = retrieval_support(probe)
    weight = (probe.abs().square() * support).numpy()
    started = time.perf_counter()
    obj = retrieve_patches(torch.from_numpy(test.diffraction), probe, support, iterations, beta)
    seconds = time.perf_counter() - started
    image, _ = stitch(obj.numpy(), test.positions, test.object_shape, weight, synchronise=True)
    return {
        "iterations": iterations,
        "retrieval_seconds": round(seconds, 1),
        **test_scores(image, test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--dose", type=float, default=1e4)
    parser.add_argument("--iterations", default="1,5,20,100")
    parser.add_argument("--beta", type=float, default=0.8, help="0: error reduction")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    checkpoints = sorted(int(i) for i in args.iterations.split(","))
    design = preset("smoke").model_copy(update={"doses": (args.dose,)})
    work = Path(tempfile.mkdtemp(prefix="ptypinn-retrieval-"))
    _, test_path = view_splits(design, "baseline", args.dose, work)
    test = load_dataset(test_path)
    points = []
    for iterations in checkpoints:
        point = per_pattern_point(test, iterations, args.beta)
        points.append(point)
        print(json.dumps(point), flush=True)
    result = {
        "benchmark": "single_pattern_retrieval",
        "dose": args.dose,
        "beta": args.beta,
        "N": design.patch_size,
        "test_patterns": test.count,
        "points": points,
        **environment(),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()

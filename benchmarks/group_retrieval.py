"""Group retrieval as the yardstick of PtychoPINN at every gridsize: what the physics alone
reaches on the groups a gridsize-g model sees.

A gridsize-g PtychoPINN reconstructs a scan from groups of C = g² neighbouring patterns: one group
seeded at each test position with members drawn from its K nearest neighbours, thinned to the
groups that cover a new position (``ptypinn.pinn.inference.inference_groups``). This benchmark
does the same with no network: each group is phase-retrieved jointly on its own canvas by
``ptypinn.physics.retrieval.retrieve_groups`` (relaxed averaged alternating reflections, beta 0.8,
the single-pattern retrieval's iteration with the canvas as the object constraint; known probe;
support the probe's footprint; flat start; the members' true sub-pixel offsets moved with the
model's own ``translate``), and every member's patch is stitched exactly as PtychoPINN's are
(|P|² on the support, phase synchronisation) and scored by the same scorer. C = 1 is the
per-pattern retrieval (``benchmarks/single_pattern_retrieval.py``). K is the design's (7), or C
where C is larger.

Usage:
  python benchmarks/group_retrieval.py --view baseline --sizes 1,4,9,16 --iterations 20,50 \
      --json benchmarks/results/group_retrieval_baseline.json
Prints (and writes) one JSON object: phase and amplitude SSIM for each group size and iteration
count (each a fresh run from the flat start), its seconds and groups, the machine and the threads.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from report import emit, environment

from ptypinn.io.dataset import PtychoDataset, load_dataset
from ptypinn.physics.retrieval import retrieval_support, retrieve_groups
from ptypinn.physics.stitch import stitch
from ptypinn.pinn.inference import inference_groups
from ptypinn.study.design import StudyDesign, preset

from view_data import test_scores, view_splits

CHUNK_PATTERNS = 1024  # patterns retrieved at once (groups × C)


def group_point(
    test: PtychoDataset, size: int, design: StudyDesign, iterations: int, beta: float = 0.8
) -> dict:
    """The group yardstick on ``test``: groups of C = ``size`` as a gridsize-sqrt(C) model sees
    them (``design``'s neighbour count, or C where C is larger, and grouping seed), each retrieved
    jointly (``iterations`` from a flat start), every member stitched and scored; with its
    seconds."""
    probe = torch.from_numpy(test.probe)
    support = retrieval_support(probe)
    weight = (probe.abs().square() * support).numpy()
    gridsize = math.isqrt(size)
    neighbors = max(design.neighbor_count, size)
    groups, offsets = inference_groups(test.positions, gridsize, neighbors, design.seeds.grouping)
    chunk = max(1, CHUNK_PATTERNS // size)
    started = time.perf_counter()
    patches = np.concatenate(
        [
            retrieve_groups(
                torch.from_numpy(test.diffraction[groups[start : start + chunk]]),
                torch.from_numpy(offsets[start : start + chunk]).float(),
                probe,
                support,
                iterations,
                beta,
            ).numpy()
            for start in range(0, len(groups), chunk)
        ]
    )
    seconds = time.perf_counter() - started
    image, _ = stitch(
        patches.reshape(-1, *patches.shape[-2:]),
        test.positions[groups.reshape(-1)],
        test.object_shape,
        weight,
        synchronise=True,
    )
    return {
        "C": size,
        "gridsize": gridsize,
        "K": neighbors,
        "iterations": iterations,
        "groups": len(groups),
        "retrieval_seconds": round(seconds, 1),
        **test_scores(image, test),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--view", default="baseline")
    parser.add_argument("--dose", type=float, default=1e4)
    parser.add_argument("--sizes", default="1,4,9,16", help="group sizes C (squares)")
    parser.add_argument("--iterations", default="20,50")
    parser.add_argument("--beta", type=float, default=0.8, help="0: error reduction")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sizes = [int(c) for c in args.sizes.split(",")]
    if any(math.isqrt(c) ** 2 != c for c in sizes):
        parser.error(f"group sizes must be squares (C = gridsize²), got {sizes}")
    design = preset("smoke").model_copy(update={"doses": (args.dose,)})
    work = Path(tempfile.mkdtemp(prefix="ptypinn-group-retrieval-"))
    _, test_path = view_splits(design, args.view, args.dose, work)
    test = load_dataset(test_path)
    points = []
    for size in sizes:
        for iterations in sorted(int(i) for i in args.iterations.split(",")):
            point = group_point(test, size, design, iterations, args.beta)
            points.append(point)
            print(json.dumps(point), flush=True)
    result = {
        "benchmark": "group_retrieval",
        "view": args.view,
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

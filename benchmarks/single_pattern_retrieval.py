"""Per-pattern phase retrieval as a yardstick for PtychoPINN at gridsize 1.

A gridsize-1 PtychoPINN predicts each patch from its own diffraction pattern; the overlap between
patterns only enters at stitching. This benchmark does the same with no network: each pattern of
the smoke test split is phase-retrieved alone by error reduction (known probe, support the
generator's central window, |O| <= 1), from a flat start, and the patches are stitched exactly as
PtychoPINN's are (|P|² weights, phase synchronisation) and scored by the same scorer.

Usage:
  python benchmarks/single_pattern_retrieval.py --iterations 1,5,20,100 \
      --json benchmarks/results/single_pattern_retrieval.json
Prints (and writes) one JSON object: phase and amplitude SSIM after each iteration count, with
the seconds spent, the machine and the threads.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from report import emit, environment

from ptypinn.analysis.metrics import score
from ptypinn.io.dataset import load_dataset
from ptypinn.physics.stitch import stitch
from ptypinn.pinn.model import centre_mask
from ptypinn.study.compare import scored_region
from ptypinn.study.design import preset

from view_data import view_splits

EPSILON = 1e-2  # regularises conj(P) / (|P|² + ε) where the probe is weak (peak |P| = 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--dose", type=float, default=1e4)
    parser.add_argument("--iterations", default="1,5,20,100")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    checkpoints = sorted(int(i) for i in args.iterations.split(","))
    design = preset("smoke").model_copy(update={"doses": (args.dose,)})
    work = Path(tempfile.mkdtemp(prefix="ptypinn-retrieval-"))
    _, test_path = view_splits(design, "baseline", args.dose, work)
    test = load_dataset(test_path)
    probe = torch.from_numpy(test.probe)
    window = centre_mask(test.patch_size)
    weight = (probe.abs().square() * window).numpy()
    inverse = probe.conj() / (probe.abs().square() + EPSILON)
    measured = torch.fft.ifftshift(torch.from_numpy(test.diffraction), dim=(-2, -1))
    obj = torch.ones(measured.shape, dtype=torch.complex64) * window
    points, seconds = [], 0.0
    for iteration in range(1, checkpoints[-1] + 1):
        started = time.perf_counter()
        spectrum = torch.fft.fft2(probe * obj, norm="ortho")
        spectrum = torch.polar(measured, spectrum.angle())  # keep the phase, impose the data
        obj = torch.fft.ifft2(spectrum, norm="ortho") * inverse * window
        obj = obj / obj.abs().clamp_min(1.0)  # a passive object: |O| <= 1
        seconds += time.perf_counter() - started
        if iteration in checkpoints:
            image, _ = stitch(
                obj.numpy(), test.positions, test.object_shape, weight, synchronise=True
            )
            values = score(image, test.obj, scored_region(test))[2].values
            point = {
                "iterations": iteration,
                "retrieval_seconds": round(seconds, 1),
                "phase_ssim": values["phase"]["ssim"],
                "amplitude_ssim": values["amplitude"]["ssim"],
                "phase_frc50": values["phase"]["frc50"],
            }
            points.append(point)
            print(json.dumps(point), flush=True)
    result = {
        "benchmark": "single_pattern_retrieval",
        "dose": args.dose,
        "N": design.patch_size,
        "test_patterns": test.count,
        "points": points,
        **environment(),
    }
    emit(result, args.json)


if __name__ == "__main__":
    main()

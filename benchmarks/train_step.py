"""Where a PtychoPINN training step spends its time, and how fast each variant trains (samples/s).

For N = 64 and 128 (gridsize 1 and 2) it times, on random data of the right shapes and scale:
* the parts of one fp32 step (forward + backward each): generator, overlap constraint, far field
  and Poisson loss, Adam update, and the DataLoader (grouped patterns, augmentation, collation);
* whole optimiser steps for each variant: the reference (cnn, fp32, batch 16), bf16 autocast,
  larger batches, torch.compile, the other generators, resnet with bf16 autocast on amplitude or
  back-propagation inputs, and the default (the same correcting a 20-iteration single-pattern
  retrieval), so old and new are timed in one run.
Variants are timed round-robin (``--rounds`` rounds, median kept), so a busy machine slows them
all alike and the ratios stay comparable.

Usage: python benchmarks/train_step.py [--sizes 64,128] [--rounds 5] [--steps 4] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch
from report import emit, environment

from ptypinn.io.dataset import PtychoDataset
from ptypinn.physics.forward import far_field
from ptypinn.physics.probes import disk_probe
from ptypinn.pinn.config import TrainingConfig
from ptypinn.pinn.model import PtychoPINN, overlap_constraint, poisson_nll
from ptypinn.pinn.train import GroupedPatterns, PtychoModule, build_groups

INTENSITY = 30.0


def synthetic(n: int, count: int = 256) -> PtychoDataset:
    rng = np.random.default_rng(0)
    side = int(np.sqrt(count))
    grid = np.stack(np.meshgrid(np.arange(side), np.arange(side)), -1).reshape(-1, 2) * 6.0 + n
    diffraction = rng.random((len(grid), n, n), dtype=np.float32) * 0.1
    return PtychoDataset(
        diffraction=diffraction,
        xcoords=grid[:, 0],
        ycoords=grid[:, 1],
        probe=disk_probe(n, n / 2).astype(np.complex64),
        obj=None,
        metadata={"dose_scale": INTENSITY},
    )


def timed(step: Callable[[], None], steps: int) -> float:
    step()  # warm-up (and compilation)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def step_function(
    model: PtychoPINN, batch: tuple[torch.Tensor, ...], precision: str
) -> Callable[[], None]:
    module = PtychoModule(model, INTENSITY, TrainingConfig())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = module.loss(batch)
        loss.backward()
        optimizer.step()

    return step


def parts(n: int, gridsize: int, batch_size: int, steps: int) -> dict[str, float]:
    """Seconds per step of each part (forward + backward), fp32, batch ``batch_size``."""
    channels = gridsize**2
    model = PtychoPINN(
        n,
        gridsize,
        torch.from_numpy(disk_probe(n, n / 2).astype(np.complex64)),
        INTENSITY,
        1.0,
        width=1,
        generator="cnn",
        group_generator="channels",
    )
    x = torch.rand(batch_size, channels, n, n) * 0.1
    offsets = (
        torch.randn(batch_size, channels, 2) * 4 if gridsize > 1 else torch.zeros(batch_size, 1, 2)
    )
    patches = model.predict_patches(x, offsets).detach().requires_grad_(True)
    constrained = overlap_constraint(patches, offsets, model.output_support)
    constrained = constrained.detach().requires_grad_(True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.generator(x).abs().sum().backward()

    def generator() -> None:
        model.generator(x).abs().sum().backward()

    def constraint() -> None:
        overlap_constraint(patches, offsets, model.output_support).abs().sum().backward()

    def physics() -> None:
        amplitude = far_field(model.probe * constrained) * INTENSITY
        poisson_nll(amplitude, (x * INTENSITY).square()).backward()

    dataset = synthetic(n)
    groups = build_groups(dataset, gridsize, 7, 0, 1.0)
    loader = torch.utils.data.DataLoader(
        GroupedPatterns(dataset, groups, augment=True), batch_size=batch_size, shuffle=True
    )

    def loading() -> None:
        next(iter(loader))

    return {
        name: timed(fn, steps)
        for name, fn in (
            ("generator", generator),
            ("overlap_constraint", constraint),
            ("far_field_and_loss", physics),
            ("adam_update", optimizer.step),
            ("data_loading", loading),
        )
    }


def variants(n: int, gridsize: int) -> dict[str, dict]:
    base = {
        "generator": "cnn",
        "inputs": "amplitude",
        "group_generator": "channels",
        "batch": 16,
        "precision": "fp32",
        "compile": False,
    }
    return {
        "reference (cnn, fp32, batch 16)": base,
        "bf16 autocast": {**base, "precision": "bf16"},
        "batch 64": {**base, "batch": 64},
        "bf16, batch 64": {**base, "precision": "bf16", "batch": 64},
        "torch.compile": {**base, "compile": True},
        "unet": {**base, "generator": "unet"},
        "resnet": {**base, "generator": "resnet"},
        "resnet, bf16, shared": {
            **base,
            "generator": "resnet",
            "precision": "bf16",
            "group_generator": "shared",
        },
        "resnet, bf16, shared, backprop inputs": {
            **base,
            "generator": "resnet",
            "precision": "bf16",
            "group_generator": "shared",
            "inputs": "backprop",
        },
        "resnet, bf16, shared, corrected 20-iteration retrieval (the default on bf16 hardware)": {
            **base,
            "generator": "resnet",
            "precision": "bf16",
            "group_generator": "shared",
            "inputs": "retrieval",
            "correction": True,
        },
    }


def build(n: int, gridsize: int, setting: dict) -> Callable[[], None]:
    channels = gridsize**2
    probe = torch.from_numpy(disk_probe(n, n / 2).astype(np.complex64))
    torch.manual_seed(0)
    model = PtychoPINN(
        n,
        gridsize,
        probe,
        INTENSITY,
        1.0,
        width=1,
        generator=setting["generator"],
        inputs=setting["inputs"],
        group_generator=setting["group_generator"],
        correction=setting.get("correction", False),
    )
    if setting["compile"]:
        model.generator = torch.compile(model.generator)
    batch = (
        torch.rand(setting["batch"], channels, n, n) * 0.1,
        torch.randn(setting["batch"], channels, 2) * 4
        if gridsize > 1
        else torch.zeros(setting["batch"], 1, 2),
    )
    return step_function(model, batch, setting["precision"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--gridsizes", default="1,2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--skip", default="", help="comma-separated variant names to leave out")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    skip = {name.strip() for name in args.skip.split(",") if name.strip()}
    started = time.perf_counter()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        for gridsize in (int(g) for g in args.gridsizes.split(",")):
            settings = {name: s for name, s in variants(n, gridsize).items() if name not in skip}
            steps = {name: build(n, gridsize, s) for name, s in settings.items()}
            seconds: dict[str, list[float]] = {name: [] for name in steps}
            for _ in range(args.rounds):
                for name, step in steps.items():
                    seconds[name].append(timed(step, args.steps))
            rows = {
                name: {
                    "seconds_per_step": statistics.median(values),
                    "samples_per_s": settings[name]["batch"] / statistics.median(values),
                }
                for name, values in seconds.items()
            }
            reference = rows["reference (cnn, fp32, batch 16)"]["samples_per_s"]
            for row in rows.values():
                row["speed_vs_reference"] = round(row["samples_per_s"] / reference, 2)
                row["samples_per_s"] = round(row["samples_per_s"], 1)
                row["seconds_per_step"] = round(row["seconds_per_step"], 4)
            entry = {
                "N": n,
                "gridsize": gridsize,
                "parts_fp32_batch16_s": {
                    k: round(v, 4) for k, v in parts(n, gridsize, 16, args.steps).items()
                },
                "variants": rows,
            }
            print(json.dumps(entry), flush=True)
            results.append(entry)
    report = {
        "benchmark": "train_step",
        "results": results,
        "rounds": args.rounds,
        "steps_per_timing": args.steps,
        "wall_seconds": round(time.perf_counter() - started, 1),
        **environment(),
        "load_average_at_end": os.getloadavg(),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    emit(report, args.json)


if __name__ == "__main__":
    main()

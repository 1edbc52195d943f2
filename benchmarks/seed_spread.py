"""Seed spread of PtychoPINN learning curves: several ``pinn_learning_curve.py`` results that
differ only in ``--seed``, summarised per setting and milestone.

Usage:
  python benchmarks/seed_spread.py benchmarks/results/seeds/*.json \
      --json benchmarks/results/pinn_seed_spread.json
Prints (and writes) one JSON object: for each setting (view, gridsize, generator, inputs,
precision, corpus) and each milestone (samples seen), the test and training phase SSIM of every
seed with their mean, minimum and maximum.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from report import emit


def setting(result: dict, run: dict) -> str:
    training = result["training"]
    corpus = training.get("corpus")
    inputs = training.get("inputs", "amplitude")
    if inputs in ("retrieval", "group_retrieval"):
        corrected = training.get("correction", False)  # absent: before corrections existed
        inputs = f"{inputs}{training['retrieval_iterations']}" + (
            " corrected" if corrected or corrected is None else ""
        )
    unrolled = training.get("unrolled_steps")
    parts = [
        result["view"],
        f"gs{run['gridsize']}",
        training["generator"],
        inputs,
        *([f"{unrolled} unrolled steps"] if unrolled else []),
        *([training.get("group_generator") or "channels"] if run["gridsize"] > 1 else []),
        result["precision"],
        f"corpus{corpus['objects']}" if corpus else "no corpus",
    ]
    return ", ".join(parts)


def spread(values: list[float]) -> dict:
    return {
        "seeds": values,
        "mean": round(statistics.fmean(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    table: dict[str, dict[int, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    seeds: dict[str, list[int]] = defaultdict(list)
    for path in sorted(args.results):
        result = json.loads(path.read_text(encoding="utf-8"))
        for run in result["runs"]:
            key = setting(result, run)
            seeds[key].append(result["training"]["seed"])
            for point in run["points"]:
                milestone = table[key][point["samples_seen"]]
                for split in ("test", "train"):
                    milestone[split].append(round(point[split]["phase_ssim"], 4))
    summary = {
        "benchmark": "pinn_seed_spread",
        "metric": "phase SSIM (illuminated region)",
        "files": [str(path) for path in sorted(args.results)],
        "settings": {
            key: {
                "seeds": seeds[key],
                "milestones": {
                    str(samples): {split: spread(v) for split, v in splits.items()}
                    for samples, splits in sorted(milestones.items())
                },
            }
            for key, milestones in table.items()
        },
    }
    emit(summary, args.json)


if __name__ == "__main__":
    main()

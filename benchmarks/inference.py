"""PtychoPINN inference speed: patterns reconstructed per second at gridsize 1 and 2, this tree
against an earlier commit, in one run.

Inference only, with the data already loaded: the model's retrieval, its generator, its unrolled
steps, the overlap constraint and stitching (``PtychoPINNReconstructor.reconstruct``, no
refinement), on the smoke design's baseline test split at dose 1e4 (1,805 patterns, N = 64). The
models are the design's default recipe, built and left untrained (their speed does not depend on
their weights), in bf16 where a bundle trained with bf16 autocast would run in it. Each measurement
is the best of ``--repeats`` full reconstructions after one warm-up, in its own process with
``--threads`` torch threads; the earlier commit runs from a temporary git worktree.

Usage:
  python benchmarks/inference.py --against 72aee44 --json benchmarks/results/inference.json
Prints (and writes) one JSON object: for this tree (and the earlier commit) ``gs1`` and ``gs2``
with ``patterns_per_s`` and ``seconds``, the groups each gridsize reconstructs, the machine, the
threads and the load average while it ran.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import REPOSITORY, emit, environment

DOSE = 1e4


def measure(work: Path, repeats: int) -> dict:
    """Patterns per second of each gridsize with the ``ptypinn`` this process imports."""
    import torch

    from ptypinn.io.dataset import load_dataset
    from ptypinn.io.reconstruction import ReconstructionInput
    from ptypinn.pinn.inference import PtychoPINNReconstructor, inference_groups
    from ptypinn.pinn.train import JobSpec, build_model
    from ptypinn.study.design import preset

    sys.path.insert(0, str(Path(__file__).parent))
    from view_data import view_splits

    design = preset("smoke").model_copy(update={"doses": (DOSE,)})
    train_path, test_path = view_splits(design, "baseline", DOSE, work)
    train, test = load_dataset(train_path), load_dataset(test_path)
    inp = ReconstructionInput.from_dataset(test)
    grouping = {"neighbor_count": design.neighbor_count, "grouping_seed": design.seeds.grouping}
    out = {}
    for gridsize in (1, 2):
        torch.manual_seed(0)
        spec = JobSpec(train_path, gridsize, *grouping.values(), design.training)
        model, _ = build_model(spec, train)
        reconstructor = PtychoPINNReconstructor(model, {**grouping, "precision": "bf16-mixed"})
        reconstructor.reconstruct(inp)  # warm-up
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            reconstructor.reconstruct(inp)
            seconds.append(time.perf_counter() - started)
        groups, _ = inference_groups(test.positions, gridsize, *grouping.values())
        out[f"gs{gridsize}"] = {
            "patterns": test.count,
            "groups": len(groups),
            "seconds": round(min(seconds), 2),
            "patterns_per_s": round(test.count / min(seconds), 1),
        }
    return out


def run(source: Path, args: argparse.Namespace, work: Path) -> dict:
    """:func:`measure` in a fresh process importing ``ptypinn`` from ``source``."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{source}{os.pathsep}{Path(__file__).parent}",
        "OMP_NUM_THREADS": str(args.threads),
    }
    command = [sys.executable, __file__, "--measure", str(work), "--repeats", str(args.repeats)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"measuring {source} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--against", default=None, help="an earlier commit to measure too")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--measure", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        print(json.dumps(measure(args.measure, args.repeats)))
        return

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ptypinn-inference-") as temporary:
        work = Path(temporary)
        result: dict = {"benchmark": "inference", "view": "baseline", "dose": DOSE}
        result["this tree"] = run(REPOSITORY / "src", args, work / "data")
        if args.against:
            tree = work / "against"
            subprocess.run(
                ["git", "-C", str(REPOSITORY), "worktree", "add", "--detach", str(tree)]
                + [args.against],
                check=True,
                capture_output=True,
            )
            try:
                result[args.against] = run(tree / "src", args, work / "data")
            finally:
                subprocess.run(
                    ["git", "-C", str(REPOSITORY), "worktree", "remove", "--force", str(tree)],
                    check=True,
                    capture_output=True,
                )
    result["gs1"] = result["this tree"]["gs1"]
    result["gs2"] = result["this tree"]["gs2"]
    result["load_average"] = [round(value, 2) for value in os.getloadavg()]
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    emit({**result, **environment(), "torch_threads": args.threads}, args.json)


if __name__ == "__main__":
    main()

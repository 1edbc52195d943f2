"""PtychoPINN through the reconstruction interface: inference, and test-time refinement."""

import copy

import numpy as np
import pytest
import torch

from ptypinn.io.dataset import load_dataset
from ptypinn.io.reconstruction import ReconstructionInput
from ptypinn.physics.grouping import group_coordinates, make_groups
from ptypinn.pinn.inference import (
    PtychoPINNOptions,
    PtychoPINNReconstructor,
    RetrievalCache,
    refine,
)
from ptypinn.pinn.model import physics_loss
from ptypinn.pinn.runtime import TrainerOptions
from ptypinn.pinn.train import JobSpec, train_model
from ptypinn.study.design import make_design
from ptypinn.study.layout import split_path
from ptypinn.study.simulate import run_simulation


@pytest.fixture(scope="module")
def trained(tmp_path_factory, patch_linear_views):
    """A gridsize-1 bundle trained for one epoch, and the test split it reconstructs."""
    design = make_design(
        {
            "name": "tiny",
            "patch_size": 64,
            "doses": [1e4],
            "simulation": {"object_size": 128, "scan": {"step_px": 8.0, "jitter_px": 1.0}},
            "training": {"width": 1, "epochs": 1, "batch_size": 8},
            "views": patch_linear_views,
        }
    )
    root = tmp_path_factory.mktemp("pinn")
    run_simulation(design, root / "c")
    train = split_path(root / "c", 1e4, "train")
    spec = JobSpec(train, 1, design.neighbor_count, design.seeds.grouping, design.training)
    quiet = TrainerOptions(logger="none", checkpoints=False, progress=False)
    bundle = train_model(spec, load_dataset(train), root / "e", quiet).bundle
    return bundle, load_dataset(split_path(root / "c", 1e4, "test"))


def physics_loss_on(model, bundle, inp):
    """The physics loss of ``model`` on every group of ``inp`` at once."""
    groups = make_groups(
        inp.positions_px,
        model.gridsize,
        bundle["neighbor_count"],
        inp.count,
        seed=bundle["grouping_seed"],
    )
    _, offsets = group_coordinates(inp.positions_px, groups)
    diffraction = torch.from_numpy(inp.diffraction[groups].astype(np.float32))
    with torch.no_grad():
        loss = physics_loss(
            model,
            diffraction,
            torch.from_numpy(offsets.astype(np.float32)),
            bundle["initial_intensity_scale"],
        )
    return float(loss)


def test_refinement_lowers_the_physics_loss_on_the_test_data_and_keeps_the_bundle(trained):
    bundle, test = trained
    inp = ReconstructionInput.from_dataset(test)
    plain = PtychoPINNReconstructor.from_bundle(bundle)
    before = copy.deepcopy(plain.model.state_dict())
    inference = plain.reconstruct(inp)
    assert inference.iterations == 0 and inference.losses.shape == (0,)
    groups = make_groups(
        inp.positions_px,
        1,
        plain.bundle["neighbor_count"],
        inp.count,
        seed=plain.bundle["grouping_seed"],
    )
    per_pass = -(-len(groups) // 16)  # steps in one pass over the groups at batch 16
    options = PtychoPINNOptions(refine_steps=per_pass + 1, refine_learning_rate=1e-3)
    steps = []
    refined = PtychoPINNReconstructor(plain.model, plain.bundle, options).reconstruct(
        inp, steps.append
    )
    assert refined.iterations == per_pass + 1 and steps == [1] * (per_pass + 1)
    assert refined.losses.shape == (2,)  # one full pass, then 1 step of the next
    assert refined.obj.shape == test.obj.shape and not np.array_equal(refined.obj, inference.obj)
    for key, value in plain.model.state_dict().items():  # the bundle's network is untouched
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    tuned = copy.deepcopy(plain.model)
    np.testing.assert_array_equal(
        refine(tuned, plain.bundle, inp, options), refined.losses
    )  # repeats
    # The fine-tuned network explains the test diffraction better than the trained one.
    assert physics_loss_on(tuned, plain.bundle, inp) < physics_loss_on(
        plain.model, plain.bundle, inp
    )


def test_a_supervised_bundle_cannot_be_refined(trained):
    bundle, test = trained
    plain = PtychoPINNReconstructor.from_bundle(bundle)
    supervised = {**plain.bundle, "training": {**plain.bundle["training"], "model": "supervised"}}
    refiner = PtychoPINNReconstructor(plain.model, supervised, PtychoPINNOptions(refine_steps=1))
    with pytest.raises(ValueError, match="needs a PINN bundle"):
        refiner.reconstruct(ReconstructionInput.from_dataset(test))


def test_the_retrieval_cache_gives_each_group_its_own_retrieval_once(trained):
    bundle, test = trained
    model = PtychoPINNReconstructor.from_bundle(bundle).model
    groups = np.arange(6)[:, None]  # gridsize 1: one pattern per group
    diffraction = torch.from_numpy(test.diffraction[groups].astype(np.float32))
    offsets = torch.zeros(6, 1, 2)
    expected = model.retrieved(diffraction, offsets)
    cache = RetrievalCache(model)
    calls = []
    retrieved = model.retrieved
    model.retrieved = lambda d, o: calls.append(len(d)) or retrieved(d, o)
    first = cache(torch.tensor([4, 1, 2]), diffraction[[4, 1, 2]], offsets[:3])
    again = cache(torch.tensor([2, 0, 4]), diffraction[[2, 0, 4]], offsets[:3])
    assert calls == [3, 1]  # group 0 is the only new one the second time
    torch.testing.assert_close(first, expected[[4, 1, 2]], rtol=0, atol=1e-6)
    torch.testing.assert_close(again, expected[[2, 0, 4]], rtol=0, atol=1e-6)

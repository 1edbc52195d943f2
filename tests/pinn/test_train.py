import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from ptypinn.io.dataset import DatasetError, load_dataset
from ptypinn.io.reconstruction import (
    ReconstructionInput,
    read_reconstruction,
    write_reconstruction,
)
from ptypinn.physics.finite import NonFiniteError
from ptypinn.physics.forward import extract_patches
from ptypinn.physics.grouping import group_coordinates, make_groups
from ptypinn.physics.probes import disk_probe
from ptypinn.physics.retrieval import retrieval_support
from ptypinn.physics.stitch import stitch, synchronise_phases
from ptypinn.pinn.config import CorpusConfig, TrainingConfig
from ptypinn.pinn.generators import central_region, region_mask
from ptypinn.pinn.inference import (
    PtychoPINNReconstructor,
    covering_groups,
    predict_patches,
    stitch_weight,
)
from ptypinn.pinn.model import generator_region, overlap_constraint
from ptypinn.pinn.runtime import TrainerOptions, resolved_precision
from ptypinn.pinn.train import (
    JobSpec,
    intensity_scale,
    learning_rate_factor,
    load_bundle,
    train_model,
    training_patterns,
)
from ptypinn.study.design import make_design
from ptypinn.study.layout import SIMULATION_MANIFEST, split_path
from ptypinn.study.simulate import run_simulation

QUIET = TrainerOptions(logger="none", checkpoints=False, progress=False)


def centre_window(n):
    """The central N/2 x N/2 window: where a generator predicts by default."""
    return region_mask(n, central_region(n))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, patch_linear_views):
    from ptypinn.study.design import make_design

    design = make_design(
        {
            "name": "tiny",
            "patch_size": 64,
            "doses": [1e4],
            "views": patch_linear_views,
            # the disk N/2 across, whose behaviour these tests state
            "simulation": {
                "object_size": 128,
                "scan": {"step_px": 8.0, "jitter_px": 1.0},
                "probe": {"kind": "disk"},
            },
            "training": {"width": 1, "epochs": 3, "batch_size": 8},
        }
    )
    root = tmp_path_factory.mktemp("phase_c")
    run_simulation(design, root)
    return design, split_path(root, 1e4, "train"), split_path(root, 1e4, "test")


def spec_for(design, path, gridsize, **training):
    return JobSpec(
        path,
        gridsize,
        design.neighbor_count,
        design.seeds.grouping,
        design.training.model_copy(update=training),
    )


def test_intensity_scale_turns_amplitudes_into_counts(tiny_data):
    _, train, _ = tiny_data
    dataset = load_dataset(train)
    counts = (intensity_scale(dataset) * dataset.diffraction.astype(np.float64)) ** 2
    np.testing.assert_allclose(
        counts, np.round(counts), atol=1e-2
    )  # photon counts are whole numbers
    per_pattern = counts.sum(axis=(1, 2))
    # The dose holds over the whole scan (a fixed beam); a split has the mean phase C measured.
    manifest = json.loads((train.parent.parent / SIMULATION_MANIFEST).read_text())["doses"][0]
    measured = manifest["measured_photons_per_pattern"]
    assert per_pattern.mean() == pytest.approx(measured["train"], rel=1e-6)
    assert abs(measured["total"] - 1e4) < 5 * np.sqrt(1e4 / manifest["counts"]["total"])
    # Stating the recorded dose keeps the exact recorded scale (the study's train-matrix path).
    assert intensity_scale(dataset, nphotons=1e4) == dataset.metadata["dose_scale"]
    # Without the recorded scale, the dose and the measured energy give the scale.
    unscaled = dataclasses.replace(dataset, metadata={"nphotons": 1e4})
    stated = intensity_scale(unscaled)
    assert stated == pytest.approx(
        np.sqrt(1e4 / (dataset.diffraction.astype(np.float64) ** 2).sum(axis=(1, 2)).mean())
    )


def test_a_stated_dose_that_contradicts_the_data_is_refused(tiny_data):
    _, train, _ = tiny_data
    with pytest.raises(DatasetError, match="records 10000 photons per pattern, not 1000"):
        intensity_scale(load_dataset(train), nphotons=1e3)


def test_dose_is_required_when_the_data_does_not_record_it(tiny_data):
    _, train, _ = tiny_data
    dataset = load_dataset(train)
    bare = dataclasses.replace(dataset, metadata={})
    with pytest.raises(DatasetError, match="nphotons"):
        intensity_scale(bare)


def test_stitching_true_patches_reproduces_the_object():
    rng = np.random.default_rng(1)
    smooth = [gaussian_filter(rng.random((96, 112)), 3) for _ in range(2)]
    obj = torch.from_numpy(
        (smooth[0] / smooth[0].max() * np.exp(1j * 4 * smooth[1])).astype(np.complex64)
    )
    positions = np.stack(np.meshgrid(np.arange(36, 80, 6.0), np.arange(36, 64, 6.0)), -1).reshape(
        -1, 2
    )
    positions = positions + rng.uniform(-0.5, 0.5, positions.shape)
    patches = extract_patches(obj, torch.from_numpy(positions), 64).numpy()
    weight = (np.abs(disk_probe(64, 30)) ** 2) * centre_window(64).numpy()
    image, total = stitch(patches, positions, obj.shape, weight)
    core = total > 0.5 * total.max()
    assert core.sum() > 800
    # Every core pixel averages bilinear re-samplings of the same smooth object neighbourhood.
    error = np.abs(image - obj.numpy())[core]
    assert np.median(error) < 0.01 and error.max() < 0.05
    assert np.all(image[total == 0] == 0)


def test_integer_positions_stitch_exactly():
    rng = np.random.default_rng(2)
    obj = torch.from_numpy((rng.random((80, 80)) + 1j * rng.random((80, 80))).astype(np.complex64))
    positions = np.array([[32.0, 32.0], [40.0, 36.0], [44.0, 45.0]])
    patches = extract_patches(obj, torch.from_numpy(positions), 64).numpy()
    weight = centre_window(64).numpy()
    image, total = stitch(patches, positions, (80, 80), weight)
    covered = total > 0.99
    np.testing.assert_allclose(image[covered], obj.numpy()[covered], atol=1e-5)


def test_training_lowers_the_loss_and_the_bundle_round_trips(tiny_data, tmp_path):
    design, train, test = tiny_data
    result = train_model(spec_for(design, train, 2, epochs=4), load_dataset(train), tmp_path, QUIET)
    assert result.epochs == 4 and result.history[-1] < result.history[0]
    assert result.bundle.is_file() and len(result.sha256) == 64
    model, meta = load_bundle(result.bundle)
    assert meta["architecture"] == {
        "patch_size": 64,
        "gridsize": 2,
        "width": 1,
        "generator": "resnet",
        "inputs": "group_retrieval",
        "group_generator": "channels",
        "retrieval_iterations": 50,
        "correction": True,
        "unrolled_steps": 2,
    }
    assert meta["intensity_scale"] == pytest.approx(result.intensity_scale)
    test_data = load_dataset(test)
    grouping = (meta["neighbor_count"], meta["grouping_seed"])
    first, owners = predict_patches(model, test_data.diffraction, test_data.positions, *grouping)
    assert set(owners) == set(range(test_data.count))  # every test position gets at least one patch
    again, _ = load_bundle(result.bundle)
    second, _ = predict_patches(again, test_data.diffraction, test_data.positions, *grouping)
    np.testing.assert_array_equal(first, second)
    inp = ReconstructionInput.from_dataset(test_data)
    rec = PtychoPINNReconstructor.from_bundle(result.bundle).reconstruct(inp)
    assert rec.obj.shape == test_data.obj.shape and np.isfinite(rec.obj).all()
    assert rec.method == "ptychopinn" and rec.iterations == 0 and rec.metadata["gridsize"] == 2
    np.testing.assert_array_equal(rec.positions_px, test_data.positions)
    back = read_reconstruction(write_reconstruction(tmp_path / "rec.npz", rec))
    np.testing.assert_array_equal(back.obj, rec.obj)
    assert back.metadata["bundle"] == str(result.bundle)


@pytest.mark.parametrize(
    "inputs, group_generator, features",
    [
        ("backprop", "channels", 3 * 4),
        ("backprop", "shared", 3),
        ("retrieval", "shared", 3),
        ("group_retrieval", "channels", 3 * 4),
    ],
)
def test_guess_inputs_and_group_generators_come_back_from_the_bundle(
    tiny_data, tmp_path, inputs, group_generator, features
):
    design, train, test = tiny_data
    unrolled = 0 if inputs == "backprop" else 2  # 2 is the default; couples shared members too
    spec = spec_for(
        design,
        train,
        2,
        inputs=inputs,
        retrieval_iterations=3,
        generator="resnet",
        group_generator=group_generator,
        unrolled_steps=unrolled,
        samples=16,
    )
    result = train_model(spec, load_dataset(train), tmp_path, QUIET)
    model, meta = load_bundle(result.bundle)
    assert len(model.refiners) == meta["architecture"]["unrolled_steps"] == unrolled
    assert meta["architecture"]["inputs"] == inputs
    assert meta["architecture"]["group_generator"] == group_generator
    assert model.retrieval_iterations == meta["architecture"]["retrieval_iterations"] == 3
    # three feature maps per pattern (amplitude, real and imaginary first guess), for the
    # group's 4 patterns at once or for one pattern at a time
    assert model.generator.stem[0].in_channels == features
    test_data = load_dataset(test)
    grouping = (meta["neighbor_count"], meta["grouping_seed"])
    first, owners = predict_patches(model, test_data.diffraction, test_data.positions, *grouping)
    again, _ = load_bundle(result.bundle)
    second, _ = predict_patches(again, test_data.diffraction, test_data.positions, *grouping)
    np.testing.assert_array_equal(first, second)
    # whichever way inference batches the generator, the patches are those of each group
    groups = make_groups(
        test_data.positions,
        2,
        meta["neighbor_count"],
        n_groups=test_data.count,
        seed=meta["grouping_seed"],
    )
    groups = covering_groups(groups, test_data.count)
    _, offsets = group_coordinates(test_data.positions, groups)
    d = torch.from_numpy(offsets.astype(np.float32))
    with torch.no_grad():
        direct = overlap_constraint(
            model.predict_patches(torch.from_numpy(test_data.diffraction[groups]), d),
            d,
            model.output_support,
        )
    np.testing.assert_allclose(first, direct.reshape(-1, 64, 64).numpy(), atol=1e-5)
    np.testing.assert_array_equal(owners, groups.reshape(-1))


@pytest.mark.parametrize(
    ("gridsize", "training"),
    [(1, {"epochs": 2}), (2, {"samples": 24, "retrieval_iterations": 4, "unrolled_steps": 1})],
)
def test_same_seed_gives_the_same_losses_and_the_same_bundle_bytes(
    tiny_data, tmp_path, gridsize, training
):
    """Deterministic on the CPU, the default recipe (group retrieval inputs) included."""
    design, train, _ = tiny_data
    dataset = load_dataset(train)
    spec = spec_for(design, train, gridsize, **training)
    runs = [train_model(spec, dataset, tmp_path / str(i), QUIET) for i in range(2)]
    assert runs[0].history == runs[1].history
    assert runs[0].sha256 == runs[1].sha256 and runs[0].wall_time_s != runs[1].wall_time_s


def test_a_diverging_loss_fails_the_job_and_writes_no_bundle(tiny_data, tmp_path):
    design, train, _ = tiny_data
    dataset = load_dataset(train)
    # The recorded dose scale stays, so the amplitudes reach 1e30 photons: the loss overflows.
    huge = dataclasses.replace(dataset, diffraction=dataset.diffraction * np.float32(1e30))
    with pytest.raises(NonFiniteError, match="training diverged: the loss is (nan|inf)"):
        train_model(spec_for(design, train, 1, epochs=1), huge, tmp_path, QUIET)
    assert not (tmp_path / "model.pt").exists()


def test_a_new_run_clears_the_old_bundle_logs_and_checkpoints(tiny_data, tmp_path):
    design, train, _ = tiny_data
    stale = [
        tmp_path / "checkpoints" / "epoch=9-step=90.ckpt",
        tmp_path / "logs" / "metrics.csv",
        tmp_path / "model.pt",
    ]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("from an earlier run")
    (tmp_path / "notes.txt").write_text("mine")
    train_model(spec_for(design, train, 1, epochs=1), load_dataset(train), tmp_path, QUIET)
    assert (
        not stale[0].exists()
        and not stale[1].exists()
        and stale[2].read_bytes() != b"from an earlier run"
    )
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_only_supported_patch_sizes_train(small_dataset, tmp_path):
    design = make_design({})
    with pytest.raises(
        DatasetError, match=r"\[64, 128, 256\] px patterns; this dataset holds 32x32"
    ):
        train_model(
            JobSpec(tmp_path / "x.npz", 1, 7, 1, design.training), small_dataset, tmp_path, QUIET
        )
    assert not (tmp_path / "model.pt").exists()


@pytest.fixture(scope="module")
def bundle(tiny_data, tmp_path_factory):
    design, train, _ = tiny_data
    return train_model(
        spec_for(design, train, 1, epochs=1),
        load_dataset(train),
        tmp_path_factory.mktemp("bundle"),
        QUIET,
    ).bundle


def rewrite(bundle, path, edit, rehash=True):
    """Save an edited copy of a bundle, with its checksum recomputed (a consistent file) or not
    (an altered one)."""
    from ptypinn.pinn.train import content_sha256

    payload = torch.load(bundle, weights_only=True)
    edit(payload)
    if rehash:
        payload["content_sha256"] = content_sha256(payload)
    torch.save(payload, path)
    return path


def test_an_altered_bundle_is_refused(bundle, tmp_path):
    def nudge(payload):
        weight = next(key for key, value in payload["state_dict"].items() if value.ndim == 4)
        payload["state_dict"][weight][0, 0, 0, 0] += 0.5

    with pytest.raises(DatasetError, match="damaged or was altered"):
        load_bundle(rewrite(bundle, tmp_path / "nudged.pt", nudge, rehash=False))
    with pytest.raises(DatasetError, match="damaged or was altered"):
        load_bundle(
            rewrite(
                bundle,
                tmp_path / "relabelled.pt",
                lambda p: p["dataset"].update(sha256="0" * 64),
                rehash=False,
            )
        )


@pytest.mark.parametrize(
    ("edit", "phrase"),
    [
        (lambda p: p.pop("architecture"), "missing entry 'architecture'"),
        (lambda p: p["architecture"].update(width=2), "size mismatch"),
        (  # a bundle from before every architecture field was recorded
            lambda p: p["architecture"].pop("unrolled_steps"),
            r"records no usable architecture \(unrolled_steps: Field required\); it was "
            "written by an older ptypinn",
        ),
        (lambda p: p["state_dict"].pop("log_scale"), "Missing key"),
        (lambda p: p["state_dict"]["log_scale"].fill_(float("nan")), "NaN or infinite weights"),
        (
            lambda p: p.update(format="ptypinn.bundle/1"),
            "not a ptypinn model bundle of format ptypinn.bundle/2",
        ),
    ],
)
def test_inconsistent_bundles_are_refused_with_one_message(bundle, tmp_path, edit, phrase):
    with pytest.raises(DatasetError, match=phrase):
        load_bundle(rewrite(bundle, tmp_path / "odd.pt", edit))


def test_a_samples_budget_sets_the_number_of_optimiser_steps(tiny_data, tmp_path):
    design, train, _ = tiny_data
    dataset = load_dataset(train)
    spec = spec_for(
        design, train, 1, samples=44, batch_size=8, epochs=1000, validation_fraction=0.0
    )
    result = train_model(spec, dataset, tmp_path, QUIET)
    assert result.steps == 6  # ceil(44 / 8), whatever the epochs say
    assert result.samples_seen == 48  # whole batches: steps x batch
    _, meta = load_bundle(result.bundle)
    assert meta["samples_seen"] == result.samples_seen


def test_a_corpus_joins_the_training_groups_and_is_recorded(tiny_data, tmp_path):
    design, train, _ = tiny_data
    dataset = load_dataset(train)
    corpus = CorpusConfig(kinds=("dead_leaves",), objects=2, object_size=96, step_px=8.0)
    spec = spec_for(design, train, 2, corpus=corpus, samples=16, batch_size=8)
    patterns = training_patterns(spec, dataset)
    per_object = len(np.arange(32, 96 - 32, 8.0)) ** 2  # raster positions on a 96 px object
    assert len(patterns) == dataset.count + 2 * per_object  # one group per position at gs2
    # corpus groups are formed inside their own scan: offsets stay within a few steps
    corpus_offsets = torch.cat([patterns.datasets[i].offsets for i in (1, 2)])
    assert corpus_offsets.abs().max() < 3 * 8.0
    result = train_model(spec, dataset, tmp_path, QUIET)
    _, meta = load_bundle(result.bundle)
    assert meta["training"]["corpus"]["kinds"] == ["dead_leaves"]
    assert result.samples_seen == 16


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_learning_rate_warms_up_then_follows_the_schedule(schedule):
    config = TrainingConfig(schedule=schedule, warmup_fraction=0.1)
    factor = learning_rate_factor(config, 100)
    assert [factor(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    if schedule == "constant":
        assert factor(50) == factor(99) == 1.0
    else:
        assert factor(10) == pytest.approx(1.0)
        assert factor(55) == pytest.approx(0.5)  # half-way through the decay
        assert factor(100) == pytest.approx(0.0)


def test_plateau_schedule_refuses_a_warm_up():
    with pytest.raises(ValueError, match="warmup_fraction"):
        TrainingConfig(schedule="plateau", warmup_fraction=0.1)


def test_a_correction_needs_a_retrieval_to_correct():
    with pytest.raises(ValueError, match="correction needs inputs: retrieval"):
        TrainingConfig(inputs="backprop", correction=True)
    assert TrainingConfig(inputs="retrieval").corrects()  # on by default with a retrieval
    assert not TrainingConfig(inputs="retrieval", correction=False).corrects()
    assert not TrainingConfig(inputs="amplitude").corrects()


def test_bf16_training_is_deterministic_too(tiny_data, tmp_path):
    design, train, _ = tiny_data
    dataset = load_dataset(train)
    options = dataclasses.replace(QUIET, precision="bf16-mixed")
    runs = [
        train_model(
            spec_for(design, train, 1, epochs=2), dataset, tmp_path / str(i), options
        ).history
        for i in range(2)
    ]
    assert runs[0] == runs[1] and runs[0][-1] < runs[0][0]


def test_automatic_precision_is_bf16_only_on_native_bf16_hardware(tiny_data, tmp_path):
    for explicit in ("32-true", "bf16-mixed"):
        assert resolved_precision(dataclasses.replace(QUIET, precision=explicit)) == explicit
    assert resolved_precision(TrainerOptions(accelerator="mps")) == "32-true"
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        assert resolved_precision(QUIET) == "bf16-mixed"
    design, train, _ = tiny_data
    result = train_model(
        spec_for(design, train, 1, samples=8), load_dataset(train), tmp_path, QUIET
    )
    assert load_bundle(result.bundle)[1]["precision"] == resolved_precision(QUIET)


def test_supervised_baseline_trains_against_true_patches(tiny_data, tmp_path):
    design, train, _ = tiny_data
    result = train_model(
        spec_for(design, train, 1, model="supervised", epochs=3),
        load_dataset(train),
        tmp_path,
        QUIET,
    )
    assert result.history[-1] < result.history[0]
    _, meta = load_bundle(result.bundle)
    assert meta["training"]["model"] == "supervised"


@pytest.mark.parametrize("inputs", ["amplitude", "retrieval"])
def test_stitch_weight_is_probe_intensity_where_the_patches_live(tiny_data, tmp_path, inputs):
    """The generator's region (grown to hold the probe's footprint) for a model whose patches
    are the generator's; the probe's footprint for a model that corrects a retrieval or ends in
    unrolled physics steps."""
    design, train, _ = tiny_data
    dataset = load_dataset(train)
    published = inputs == "amplitude"  # the generator's patches alone: no unrolled steps
    spec = spec_for(design, train, 1, epochs=1, inputs=inputs, unrolled_steps=0 if published else 2)
    result = train_model(spec, dataset, tmp_path, QUIET)
    model, _ = load_bundle(result.bundle)
    footprint = retrieval_support(dataset.probe)
    probe = torch.from_numpy(dataset.probe)
    where = region_mask(64, generator_region(probe, True)) if published else footprint
    assert torch.all(where[footprint > 0] == 1)  # none of the light is cut
    np.testing.assert_allclose(
        stitch_weight(model), np.abs(dataset.probe) ** 2 * where.numpy(), rtol=1e-6
    )


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a bundle")
    with pytest.raises(DatasetError, match="not a ptypinn model bundle"):
        load_bundle(bad)


def test_phase_synchronisation_undoes_random_patch_offsets():
    rng = np.random.default_rng(3)
    smooth = [gaussian_filter(rng.random((96, 112)), 3) for _ in range(2)]
    obj = torch.from_numpy((0.5 + smooth[0] * np.exp(1j * 4 * smooth[1])).astype(np.complex64))
    positions = np.stack(np.meshgrid(np.arange(36, 80, 8.0), np.arange(36, 64, 8.0)), -1).reshape(
        -1, 2
    )
    patches = extract_patches(obj, torch.from_numpy(positions), 64).numpy()
    offsets = np.exp(1j * rng.uniform(-np.pi, np.pi, len(patches))).astype(np.complex64)
    weight = centre_window(64).numpy()
    fixed = synchronise_phases(patches * offsets[:, None, None], positions, obj.shape, weight)
    # Up to one global phase, every patch is back to the truth.
    ratio = (fixed / patches)[:, 20:44, 20:44]
    common = ratio[0, 0, 0]
    np.testing.assert_allclose(ratio, common, atol=1e-3)
    scrambled, _ = stitch(patches * offsets[:, None, None], positions, obj.shape, weight)
    repaired, total = stitch(fixed, positions, obj.shape, weight)
    core = total > 0.5 * total.max()
    assert (
        np.abs(repaired * np.conj(common) - obj.numpy())[core].max()
        < 0.05
        < np.abs(scrambled - obj.numpy())[core].mean()
    )


def test_augmentation_with_an_asymmetric_probe_leaves_the_data_as_it_is(tiny_data):
    from ptypinn.pinn.train import GroupedPatterns

    _, train, _ = tiny_data
    dataset = load_dataset(train)
    lopsided = dataclasses.replace(dataset, probe=np.roll(dataset.probe, (3, 5), axis=(0, 1)))
    groups = np.arange(dataset.count)[:, None]
    augmented = GroupedPatterns(lopsided, groups, augment=True)
    plain = GroupedPatterns(lopsided, groups)
    assert augmented.symmetries == (0,)
    for index in range(5):
        for a, b in zip(augmented[index], plain[index], strict=True):
            assert torch.equal(a, b)
    assert GroupedPatterns(dataset, groups, augment=True).symmetries == tuple(range(8))


def test_inference_refuses_data_of_another_size_or_far_away_positions(
    bundle, small_dataset, tiny_data
):
    reconstructor = PtychoPINNReconstructor.from_bundle(bundle)
    with pytest.raises(DatasetError, match="trained on 64x64 patterns; the data has 32x32"):
        reconstructor.reconstruct(ReconstructionInput.from_dataset(small_dataset))
    test = load_dataset(tiny_data[2])
    far = dataclasses.replace(test, obj=None, xcoords=test.xcoords + 1e6)
    with pytest.raises(DatasetError, match="positions must be object pixels"):
        reconstructor.reconstruct(ReconstructionInput.from_dataset(far))


def test_a_reconstruction_with_nan_is_refused(bundle, tiny_data):
    test = load_dataset(tiny_data[2])
    overflowing = dataclasses.replace(test, diffraction=test.diffraction * np.float32(1e38))
    with pytest.raises(NonFiniteError, match="the reconstructed object contains"):
        PtychoPINNReconstructor.from_bundle(bundle).reconstruct(
            ReconstructionInput.from_dataset(overflowing)
        )

"""How a PtychoPINN job trains: the science of training (loss, optimiser, budget), one validated
options object used by the design, the command line and the trainer alike."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ptypinn.physics.samples import CORPUS_KINDS, CorpusKind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Method = Literal["pinn", "supervised"]
METHODS: tuple[Method, ...] = ("pinn", "supervised")
GeneratorName = Literal["cnn", "unet", "resnet"]
InputFeatures = Literal["amplitude", "backprop", "retrieval", "group_retrieval"]
RETRIEVAL_INPUTS: tuple[InputFeatures, ...] = ("retrieval", "group_retrieval")
INPUT_FEATURES: tuple[InputFeatures, ...] = get_args(InputFeatures)
GroupGenerator = Literal["channels", "shared"]
GROUP_GENERATORS: tuple[GroupGenerator, ...] = get_args(GroupGenerator)
Schedule = Literal["constant", "cosine", "plateau"]


class CorpusConfig(_Strict):
    """Procedurally generated objects whose simulated diffraction joins the training data
    (:mod:`ptypinn.pinn.corpus`): the probe and dose scale are the training data's, so the extra
    patterns are measured as the real ones would be. The scored object is never among them."""

    kinds: tuple[CorpusKind, ...] = Field(
        CORPUS_KINDS,
        min_length=1,
        description="object kinds, used in turn: pictures (scikit-image pictures other than the "
        "default object's), grf (Gaussian random fields), dead_leaves, lines",
    )
    objects: int = Field(4, ge=1, description="how many corpus objects")
    object_size: int = Field(256, ge=8, description="side of each corpus object, px")
    step_px: float = Field(5.0, gt=0, description="raster step of the corpus scans, px")
    jitter_px: float = Field(1.0, ge=0, description="uniform jitter of the corpus scans, px")
    seed: int = Field(0, ge=0, description="objects, scans and photon noise of the corpus")


class TrainingConfig(_Strict):
    """How each PtychoPINN job trains (phase E)."""

    model: Method = Field(
        "pinn",
        description="'pinn': physics decoder + Poisson NLL; "
        "'supervised': same generator, MAE against true patches",
    )
    generator: GeneratorName = Field(
        "resnet",
        description="generator architecture (see ptypinn.pinn.generators); resnet learns fastest "
        "in benchmarks/results/pinn_learning_curve_*.json; cnn is the method's reference",
    )
    inputs: InputFeatures = Field(
        "group_retrieval",
        description="what the generator sees per pattern: 'amplitude' (the method's reference); "
        "'backprop' (the amplitude and its probe back-propagation, a real-space first guess); "
        "'retrieval' (the amplitude and the object that retrieval_iterations of single-pattern "
        "phase retrieval with the known probe give, a better guess that costs that many FFT "
        "pairs per pattern); or 'group_retrieval' (the same iteration run on each group's shared "
        "canvas, ptypinn.physics.retrieval.retrieve_groups, so a group's C first guesses share one "
        "phase reference and one twin state; the generator sees them jointly as channels; at "
        "gridsize 1 it is 'retrieval'; the default: it scores best, see "
        "benchmarks/results/group_retrieval_*.json and pinn_learning_curve_*group_retrieval*.json)",
    )
    retrieval_iterations: int = Field(
        50,
        ge=1,
        le=10_000,
        description="inputs 'retrieval' and 'group_retrieval': iterations of the retrieval per "
        "pattern or group, in training and at inference; 50 lifts the default gridsize-2 model "
        "under the zone plate from 0.52-0.62 (20) to 0.715-0.736 phase SSIM at 1.3x the training "
        "time (benchmarks/results/pinn_seed_spread_zone_plate_retrieval50.json)",
    )
    correction: bool | None = Field(
        None,
        description="inputs 'retrieval' or 'group_retrieval': the generator predicts a "
        "correction that multiplies the retrieved object (amplitude factor 2·sigmoid, phase "
        "offset π·tanh) and starts as the identity, so an untrained network returns the "
        "retrieval itself; None (the default): on with those inputs, off otherwise",
    )
    group_generator: GroupGenerator | None = Field(
        None,
        description="gridsize >= 2: 'shared' (one single-pattern generator runs on every member; "
        "the overlap constraint alone couples them) or 'channels' (one generator sees the "
        "group's C patterns as channels, the method's reference); None (the default): "
        "'channels' with inputs 'group_retrieval' (whose guesses belong together), 'shared' "
        "otherwise",
    )
    unrolled_steps: int | None = Field(
        None,
        ge=0,
        le=16,
        description="after the generator, this many differentiable physics updates (the measured "
        "amplitudes, then the group's object constraint: one retrieval iteration) each followed "
        "by a small learned correction that starts as the identity (an unrolled model, trained "
        "with the physics loss alone); 0: none. None (the default): 2 for the PINN, 0 for the "
        "supervised baseline (its generator alone). Two steps add +0.07 test phase SSIM over the "
        "input at gridsize 2, +0.04 of it learned "
        "(benchmarks/results/pinn_learning_curve_baseline_gs2_group_retrieval_unrolled2.json)",
    )
    width: int = Field(2, ge=1, description="filter multiplier of the generator ladders")
    epochs: int = Field(
        50, ge=1, description="passes over the training groups (when samples is not set)"
    )
    samples: int | None = Field(
        None,
        ge=1,
        description="training budget in samples seen (groups); "
        "overrides epochs: steps = ceil(samples / batch)",
    )
    batch_size: int = Field(16, ge=1, description="groups per optimisation step")
    learning_rate: float = Field(1e-3, gt=0, le=10.0, allow_inf_nan=False)
    schedule: Schedule = Field(
        "constant",
        description="learning rate after warm-up: constant, cosine decay to 0, "
        "or halved on a loss plateau",
    )
    warmup_fraction: float = Field(
        0.0, ge=0, lt=1, description="share of the steps with a linear learning-rate ramp"
    )
    groups_per_position: float = Field(
        1.0,
        gt=0,
        description="training groups per scan position; above 1, gridsize >= 2 groups are "
        "oversampled from K-choose-C combinations (gridsize 1 stays at 1)",
    )
    augment: bool = Field(
        False,
        description="random flips and transposes of each training group, among those that "
        "leave the probe unchanged (none for an asymmetric probe)",
    )
    nll_weight: float = Field(
        1.0, ge=0, description="weight of the Poisson negative log-likelihood"
    )
    mae_weight: float = Field(0.0, ge=0, description="weight of the diffraction-amplitude MAE")
    trainable_scale: bool = Field(
        True, description="learn the log intensity scale (initialised from the dose)"
    )
    validation_fraction: float = Field(
        0.05, ge=0, lt=0.5, description="share of groups held out for validation loss"
    )
    early_stopping_patience: int = Field(
        0, ge=0, description="epochs without validation improvement before stopping; 0 = never"
    )
    corpus: CorpusConfig | None = Field(
        None, description="a procedurally generated training corpus added to the data (None: none)"
    )
    seed: int = Field(42, ge=0, le=2**32 - 1)
    refine_steps: int = Field(
        0,
        ge=0,
        description="test-time refinement steps of the comparison's "
        "'PtychoPINN + refine' rows (0: none)",
    )

    @model_validator(mode="after")
    def _some_loss(self) -> TrainingConfig:
        if self.model == "pinn" and self.nll_weight == 0 and self.mae_weight == 0:
            raise ValueError("nll_weight and mae_weight are both 0: the PINN would have no loss")
        if self.correction and self.inputs not in RETRIEVAL_INPUTS:
            raise ValueError(
                "correction needs inputs: retrieval or group_retrieval (it corrects the retrieval)"
            )
        if self.inputs == "group_retrieval" and self.group_generator == "shared":
            raise ValueError(
                "inputs: group_retrieval gives each group's members jointly: use group_generator "
                "'channels' (or leave it unset)"
            )
        if self.schedule == "plateau" and self.warmup_fraction:
            raise ValueError(
                "warmup_fraction works with the constant and cosine schedules, not plateau"
            )
        return self

    def corrects(self) -> bool:
        """Whether the generator corrects the retrieval (``correction``, resolved)."""
        return self.inputs in RETRIEVAL_INPUTS if self.correction is None else self.correction

    def unrolled(self) -> int:
        """``unrolled_steps``, resolved."""
        if self.unrolled_steps is not None:
            return self.unrolled_steps
        return 2 if self.model == "pinn" else 0

    def generator_grouping(self) -> GroupGenerator:
        """``group_generator``, resolved."""
        if self.group_generator is not None:
            return self.group_generator
        return "channels" if self.inputs == "group_retrieval" else "shared"

    def max_steps(self) -> int | None:
        """Optimiser steps of a samples budget, ``ceil(samples / batch_size)``; None for an epochs
        budget."""
        return None if self.samples is None else -(-self.samples // self.batch_size)


class ModelSpec(_Strict):
    """A trained model's architecture and inputs: everything that rebuilds its network, written
    into its bundle. Every field is required: its values come from a :class:`TrainingConfig`
    (:meth:`of`, the one set of defaults), so a bundle that lacks one is refused, not guessed."""

    patch_size: int = Field(ge=1)
    gridsize: int = Field(ge=1)
    width: int = Field(ge=1)
    generator: GeneratorName
    inputs: InputFeatures
    group_generator: GroupGenerator
    retrieval_iterations: int = Field(ge=1)
    correction: bool
    unrolled_steps: int = Field(ge=0)

    @classmethod
    def of(cls, training: TrainingConfig, patch_size: int, gridsize: int) -> ModelSpec:
        """The model ``training`` builds for patches of ``patch_size`` at ``gridsize``."""
        return cls(
            patch_size=patch_size,
            gridsize=gridsize,
            width=training.width,
            generator=training.generator,
            inputs=training.inputs,
            group_generator=training.generator_grouping(),
            retrieval_iterations=training.retrieval_iterations,
            correction=training.corrects(),
            unrolled_steps=training.unrolled(),
        )

"""Training with Lightning: grouped data, the training module, and the self-describing model bundle.

Scales (see physics.py for the data convention):

* intensity scale ``s = sqrt(nphotons / mean_patterns Σ X²)``: ``s·X`` are photon-count
  amplitudes, so the Poisson likelihood compares ``(e^w·Â)²`` with the counts ``(s·X)²``; ``w``
  starts at ``log s``;
* input scale ``(N/2) / sqrt(mean Σ X²)``: fixed, so the network always sees inputs of the same
  size.

Multi-GPU and multi-node runs use Lightning's own strategies (``--strategy ddp --devices 4
--num-nodes 2``); nothing here is specific to them.

A loss that turns NaN or infinite stops training with :class:`NonFiniteError` and no bundle is
written. A bundle records a SHA-256 of its own contents (weights and metadata) and is refused
when they no longer match, so a damaged or swapped file is never used silently.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from pydantic import ValidationError
from rich.console import Console
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from ptypinn import __version__
from ptypinn.io.artifacts import atomic_path, clear_outputs, sha256_file
from ptypinn.io.dataset import DatasetError, PtychoDataset
from ptypinn.io.progress import Ticker
from ptypinn.physics.finite import NonFiniteError
from ptypinn.physics.forward import dose_scale, extract_patches, pattern_energies
from ptypinn.physics.grouping import group_coordinates, make_groups
from ptypinn.physics.symmetry import probe_symmetries, symmetry
from ptypinn.pinn.config import ModelSpec, TrainingConfig
from ptypinn.pinn.corpus import corpus_datasets
from ptypinn.pinn.generators import ENCODER_LADDERS
from ptypinn.pinn.model import PtychoPINN, physics_loss
from ptypinn.pinn.runtime import TrainerError, TrainerOptions, resolved_precision

BUNDLE_FORMAT = "ptypinn.bundle/2"
BUNDLE_NAME = "model.pt"
JOB_OUTPUTS = (BUNDLE_NAME, "logs", "checkpoints")  # what a training run writes in its folder


@dataclass(frozen=True)
class JobSpec:
    """Everything one training job needs besides the trainer options."""

    train_path: Path
    gridsize: int
    neighbor_count: int
    grouping_seed: int
    training: TrainingConfig
    nphotons: float | None = None


def intensity_scale(dataset: PtychoDataset, nphotons: float | None = None) -> float:
    """``s`` with ``s·X`` in photon-count amplitudes.

    Simulated data record the exact scale they were made with (metadata ``dose_scale``), which
    turns ``s·X`` back into whole photon counts: that scale is used whenever it is recorded.
    Otherwise ``s`` follows from the dose (``nphotons``, given or from the metadata) and the mean
    pattern energy. A given ``nphotons`` that contradicts the recorded dose is refused.
    """
    recorded = dataset.metadata.get("nphotons")
    if (
        nphotons is not None
        and recorded is not None
        and not math.isclose(float(nphotons), float(recorded))
    ):
        raise DatasetError(
            f"the dataset records {float(recorded):g} photons per pattern, not {float(nphotons):g}"
        )
    if "dose_scale" in dataset.metadata:
        return float(dataset.metadata["dose_scale"])
    nphotons = recorded if nphotons is None else nphotons
    if nphotons is None:
        raise DatasetError(
            "the dataset does not record its dose (metadata 'nphotons'); "
            "pass the photons per pattern explicitly"
        )
    if not float(nphotons) > 0:
        raise DatasetError(f"photons per pattern must be positive, got {nphotons}")
    return dose_scale(pattern_energies(dataset.diffraction), float(nphotons))


def input_scale(dataset: PtychoDataset) -> float:
    return (dataset.patch_size / 2) / math.sqrt(float(pattern_energies(dataset.diffraction).mean()))


def truth_patches(dataset: PtychoDataset) -> np.ndarray:
    """Ground-truth object patches centred on every position (for the supervised baseline)."""
    if dataset.obj is None:
        raise DatasetError(
            "the supervised baseline needs objectGuess (ground truth) in the training data"
        )
    obj = torch.from_numpy(np.asarray(dataset.obj, dtype=np.complex64))
    return extract_patches(obj, torch.from_numpy(dataset.positions), dataset.patch_size).numpy()


class GroupedPatterns(Dataset):
    """Groups of C patterns: diffraction (G, C, N, N), offsets from the centroid (G, C, 2), and
    optionally the true object patches (G, C, N, N) for supervised training.

    With ``augment`` each item comes back under a random symmetry of the square that leaves the
    probe unchanged (:func:`~ptypinn.physics.symmetry.probe_symmetries`; torch's seeded global
    generator picks it), which multiplies the variety of the training data by up to 8; the others
    would teach the network a different probe. An asymmetric probe leaves only the identity, and
    the data as it is.
    """

    def __init__(
        self,
        dataset: PtychoDataset,
        groups: np.ndarray,
        with_truth: bool = False,
        augment: bool = False,
    ) -> None:
        _, offsets = group_coordinates(dataset.positions, groups)
        self.groups = groups
        self.symmetries = probe_symmetries(dataset.probe) if augment else (0,)
        self.diffraction = torch.from_numpy(
            np.ascontiguousarray(dataset.diffraction[groups], dtype=np.float32)
        )
        self.offsets = torch.from_numpy(offsets.astype(np.float32))
        self.truth = torch.from_numpy(truth_patches(dataset)[groups]) if with_truth else None

    def __len__(self) -> int:
        return int(self.groups.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        diffraction, offsets = self.diffraction[index], self.offsets[index]
        truth = None if self.truth is None else self.truth[index]
        if len(self.symmetries) > 1:
            code = self.symmetries[int(torch.randint(len(self.symmetries), ()))]
            diffraction, moved = symmetry(diffraction, offsets, code)
            truth = None if truth is None else symmetry(truth, offsets, code)[0]
            offsets = moved
        return (diffraction, offsets) if truth is None else (diffraction, offsets, truth)


def build_groups(
    dataset: PtychoDataset,
    gridsize: int,
    neighbor_count: int,
    seed: int,
    groups_per_position: float = 1.0,
) -> np.ndarray:
    """Training groups; single patterns (gridsize 1) cannot be oversampled, so there it is capped
    at 1."""
    if gridsize == 1:
        groups_per_position = min(groups_per_position, 1.0)
    n_groups = max(1, int(round(groups_per_position * dataset.count)))
    return make_groups(dataset.positions, gridsize, neighbor_count, n_groups=n_groups, seed=seed)


TrainingPatterns = GroupedPatterns | ConcatDataset


def training_patterns(spec: JobSpec, dataset: PtychoDataset) -> TrainingPatterns:
    """The grouped training data: ``dataset``'s groups, then (with ``training.corpus``) each
    corpus object's, grouped within its own scan."""
    config = spec.training
    sources = [dataset]
    if config.corpus is not None:
        scale = intensity_scale(dataset, spec.nphotons)
        sources += corpus_datasets(config.corpus, np.asarray(dataset.probe), scale)
    parts = [
        GroupedPatterns(
            source,
            build_groups(
                source,
                spec.gridsize,
                spec.neighbor_count,
                spec.grouping_seed,
                config.groups_per_position,
            ),
            with_truth=config.model == "supervised",
            augment=config.augment,
        )
        for source in sources
    ]
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


class PtychoDataModule(L.LightningDataModule):
    """Seeded train/validation split of the grouped training data."""

    def __init__(
        self,
        patterns: TrainingPatterns,
        batch_size: int,
        validation_fraction: float,
        seed: int,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        order = np.random.default_rng(seed).permutation(len(patterns))
        held_out = int(round(validation_fraction * len(patterns))) if len(patterns) > 1 else 0
        self.validation = Subset(patterns, order[:held_out].tolist()) if held_out else None
        self.training = Subset(patterns, order[held_out:].tolist())
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        # Whole batches only (when there is more than one): every step then sees batch_size
        # samples, so a samples budget is exactly steps x batch_size.
        drop_last = len(self.training) > self.batch_size
        return DataLoader(
            self.training,
            batch_size=self.batch_size,
            shuffle=True,
            generator=generator,
            drop_last=drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader | list:
        if self.validation is None:
            return []
        return DataLoader(
            self.validation,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )


def learning_rate_factor(config: TrainingConfig, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the learning rate at each optimiser step: a linear warm-up over
    ``warmup_fraction`` of the steps, then constant or a cosine decay to zero at the last step."""
    warmup = int(config.warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


class PtychoModule(L.LightningModule):
    """PtychoPINN (Poisson NLL through the physics decoder) or the supervised baseline (MAE on
    patches)."""

    mask: torch.Tensor  # buffer (registered in __init__)

    def __init__(self, model: PtychoPINN, intensity: float, config: TrainingConfig) -> None:
        super().__init__()
        self.model = model
        self.intensity = intensity
        self.config = config
        self.history: list[float] = []
        self.samples_seen = 0
        self.register_buffer("mask", model.output_support.bool())

    def loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        diffraction, offsets = batch[0], batch[1]
        if self.config.model == "supervised":
            predicted = self.model.predict_patches(diffraction, offsets)[..., self.mask]
            truth = batch[2][..., self.mask]
            return (predicted.abs() - truth.abs()).abs().mean() + (
                predicted.angle() - truth.angle()
            ).abs().mean()
        weights = (self.config.nll_weight, self.config.mae_weight)
        return physics_loss(self.model, diffraction, offsets, self.intensity, *weights)

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        if not torch.isfinite(loss):
            raise NonFiniteError(
                f"training diverged: the loss is {float(loss.detach())} at epoch "
                f"{self.current_epoch + 1}, batch {batch_idx + 1}; no model bundle was written"
            )
        self.samples_seen += batch[0].shape[0]
        self.log(
            "train_loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch[0].shape[0],
        )
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self.log(
            "val_loss",
            self.loss(batch),
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=batch[0].shape[0],
        )

    def on_train_epoch_end(self) -> None:
        self.history.append(float(self.trainer.callback_metrics["train_loss"]))

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.learning_rate)
        if self.config.schedule == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=2)
            monitor = "val_loss" if self.trainer.val_dataloaders else "train_loss"
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": plateau, "monitor": monitor, "interval": "epoch"},
            }
        factor = learning_rate_factor(self.config, int(self.trainer.estimated_stepping_batches))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


@dataclass
class TrainingResult:
    bundle: Path
    sha256: str
    bytes: int
    final_loss: float
    epochs: int
    history: list[float]
    samples_seen: int
    steps: int
    wall_time_s: float
    intensity_scale: float


def _logger(options: TrainerOptions, output_dir: Path) -> CSVLogger | TensorBoardLogger | bool:
    if options.logger == "csv":
        return CSVLogger(output_dir, name="logs", version="")
    if options.logger == "tensorboard":
        return TensorBoardLogger(output_dir, name="logs", version="")
    return False


class PlainProgress(L.Callback):
    """Plain epoch lines (:class:`ptypinn.io.progress.Ticker`) for output redirected to a log."""

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epochs = math.ceil(
            trainer.estimated_stepping_batches / max(1, trainer.num_training_batches)
        )
        self.ticker = Ticker("training epochs", epochs)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loss = trainer.callback_metrics.get("train_loss")
        self.ticker.update(
            trainer.current_epoch + 1, "" if loss is None else f"train_loss {float(loss):.6g}"
        )


@contextlib.contextmanager
def _keyboard_interrupt(trainer: L.Trainer) -> Iterator[None]:
    """Let Ctrl-C stop training as a KeyboardInterrupt: Lightning answers it by ignoring SIGINT
    from then on and calling ``sys.exit(1)``, which would read as a silent failure."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        if handler is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)


@contextlib.contextmanager
def _quiet_lightning(quiet: bool) -> Iterator[None]:
    """Hold back Lightning's informational chatter (hardware summary, tips) for unattended runs."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def build_model(spec: JobSpec, dataset: PtychoDataset) -> tuple[PtychoPINN, float]:
    scale = intensity_scale(dataset, spec.nphotons) if spec.training.model == "pinn" else 1.0
    model = model_of(
        ModelSpec.of(spec.training, dataset.patch_size, spec.gridsize),
        torch.from_numpy(np.asarray(dataset.probe)),
        scale,
        input_scale(dataset),
        trainable_scale=spec.training.trainable_scale and spec.training.model == "pinn",
    )
    return model, scale


def model_of(
    spec: ModelSpec,
    probe: torch.Tensor,
    scale: float = 1.0,
    inputs_scale: float = 1.0,
    trainable_scale: bool = True,
) -> PtychoPINN:
    """The network ``spec`` describes, for ``probe``."""
    return PtychoPINN(
        spec.patch_size,
        spec.gridsize,
        probe,
        scale,
        inputs_scale,
        width=spec.width,
        trainable_scale=trainable_scale,
        generator=spec.generator,
        inputs=spec.inputs,
        group_generator=spec.group_generator,
        retrieval_iterations=spec.retrieval_iterations,
        correction=spec.correction,
        unrolled_steps=spec.unrolled_steps,
    )


def _trainer(
    config: TrainingConfig,
    options: TrainerOptions,
    logger: CSVLogger | TensorBoardLogger | bool,
    callbacks: list[L.Callback],
    root: Path | None,
    validate: bool,
    progress_bar: bool,
) -> L.Trainer:
    """A Lightning trainer for the budget (epochs, or steps from a samples budget) and the
    hardware options; options Lightning refuses are a :class:`TrainerError`."""
    try:
        return L.Trainer(
            accelerator=options.accelerator,
            devices=options.devices,
            strategy=options.strategy,
            num_nodes=options.num_nodes,
            deterministic=options.deterministic,
            precision=resolved_precision(options),
            max_epochs=-1 if config.samples else config.epochs,
            max_steps=config.max_steps() or -1,
            logger=logger,
            callbacks=callbacks,
            enable_checkpointing=options.checkpoints,
            enable_progress_bar=progress_bar,
            enable_model_summary=False,
            default_root_dir=root,
            log_every_n_steps=1,
            limit_val_batches=1.0 if validate else 0,
        )
    except (MisconfigurationException, ValueError) as error:
        raise TrainerError(f"Lightning cannot run with these options: {error}") from None


def check_patch_size(dataset: PtychoDataset) -> None:
    if dataset.patch_size not in ENCODER_LADDERS:
        raise DatasetError(
            f"PtychoPINN works on {sorted(ENCODER_LADDERS)} px patterns; "
            f"this dataset holds {dataset.patch_size}x{dataset.patch_size}"
        )


def train_model(
    spec: JobSpec,
    dataset: PtychoDataset,
    output_dir: str | Path,
    options: TrainerOptions | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> TrainingResult:
    """Train one job and write ``<output_dir>/model.pt``; Lightning logs and checkpoints go
    beside it.

    The bundle, logs and checkpoints of an earlier run in ``output_dir`` are removed first, so
    an interrupted run never mixes with an old one. ``callbacks`` are extra Lightning callbacks
    (a benchmark's milestone evaluations, for example).
    """
    options = options or TrainerOptions()
    output_dir = Path(output_dir)
    config = spec.training
    check_patch_size(dataset)
    output_dir.mkdir(parents=True, exist_ok=True)
    clear_outputs(output_dir, JOB_OUTPUTS)
    L.seed_everything(config.seed, workers=True, verbose=False)
    patterns = training_patterns(spec, dataset)
    data = PtychoDataModule(
        patterns, config.batch_size, config.validation_fraction, config.seed, options.num_workers
    )
    model, scale = build_model(spec, dataset)
    module = PtychoModule(model, scale, config)
    monitor = "val_loss" if data.validation is not None else "train_loss"
    callbacks = list(callbacks)
    if config.early_stopping_patience:
        callbacks.append(EarlyStopping(monitor=monitor, patience=config.early_stopping_patience))
    if options.checkpoints:
        callbacks.append(
            ModelCheckpoint(dirpath=output_dir / "checkpoints", monitor=monitor, save_last=True)
        )
    terminal = Console().is_terminal
    if not terminal:
        callbacks.append(PlainProgress())
    with _quiet_lightning(not options.progress):
        trainer = _trainer(
            config,
            options,
            _logger(options, output_dir),
            callbacks,
            output_dir,
            data.validation is not None,
            options.progress and terminal,
        )
        start = time.perf_counter()
        with _keyboard_interrupt(trainer):
            trainer.fit(module, datamodule=data)
    wall = time.perf_counter() - start
    bundle_path = output_dir / BUNDLE_NAME
    if trainer.is_global_zero:
        save_bundle(bundle_path, model, spec, dataset, module, scale, resolved_precision(options))
    return TrainingResult(
        bundle=bundle_path,
        sha256=sha256_file(bundle_path),
        bytes=bundle_path.stat().st_size,
        final_loss=module.history[-1],
        epochs=len(module.history),
        history=module.history,
        samples_seen=module.samples_seen,
        steps=trainer.global_step,
        wall_time_s=wall,
        intensity_scale=float(model.log_scale.detach().exp()),
    )


def content_sha256(payload: dict) -> str:
    """SHA-256 of a bundle's contents: its metadata (as sorted JSON) and every weight's name,
    type, shape and bytes."""
    digest = hashlib.sha256(
        json.dumps(
            {k: v for k, v in payload.items() if k not in ("state_dict", "content_sha256")},
            sort_keys=True,
        ).encode()
    )
    for key in sorted(payload["state_dict"]):
        array = payload["state_dict"][key].detach().cpu().contiguous().numpy()
        digest.update(f"{key}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_bundle(
    path: Path,
    model: PtychoPINN,
    spec: JobSpec,
    dataset: PtychoDataset,
    module: PtychoModule,
    initial_scale: float,
    precision: str,
) -> Path:
    """One file with everything needed to run the model again: weights, configuration, scales,
    provenance and a checksum of all of it. Nothing in it depends on the clock, so the same
    training gives the same bytes."""
    payload = {
        "format": BUNDLE_FORMAT,
        "ptypinn_version": __version__,
        "architecture": ModelSpec.of(spec.training, dataset.patch_size, spec.gridsize).model_dump(
            mode="json"
        ),
        "training": spec.training.model_dump(mode="json"),
        "precision": precision,
        "neighbor_count": spec.neighbor_count,
        "grouping_seed": spec.grouping_seed,
        "initial_intensity_scale": initial_scale,
        "intensity_scale": float(model.log_scale.detach().exp()),
        "dataset": {
            "path": str(spec.train_path),
            "sha256": sha256_file(spec.train_path),
            "count": dataset.count,
            "nphotons": spec.nphotons
            if spec.nphotons is not None
            else dataset.metadata.get("nphotons"),
        },
        "history": [float(v) for v in module.history],
        "samples_seen": module.samples_seen,
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
    }
    payload["content_sha256"] = content_sha256(payload)
    # torch names the archive inside after the file: save to memory to keep that name fixed
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return path


def model_spec(architecture: object, path: str | Path) -> ModelSpec:
    """A bundle's recorded architecture as a :class:`ModelSpec`; a bundle written before every
    field was recorded (or altered) is refused with the first field that does not fit."""
    try:
        return ModelSpec.model_validate(architecture)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise DatasetError(
            f"{path} records no usable architecture ({where}: {first['msg']}); it was written by "
            "an older ptypinn or altered: train it again with this version"
        ) from None


def load_bundle(path: str | Path) -> tuple[PtychoPINN, dict]:
    """Rebuild the model from a bundle; returns the model (eval mode, CPU) and the bundle's
    metadata."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise DatasetError(f"no such model bundle: {path}") from None
    except (
        Exception
    ) as error:  # torch raises several unrelated types for a file that is not a bundle
        raise DatasetError(f"{path} is not a ptypinn model bundle: {error}") from None
    if not isinstance(payload, dict) or payload.get("format") != BUNDLE_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else None
        raise DatasetError(
            f"{path} is not a ptypinn model bundle of format {BUNDLE_FORMAT} (found {found!r}); "
            "train it again with this version"
        )
    try:
        intact = payload["content_sha256"] == content_sha256(payload)
        architecture, state = payload["architecture"], payload["state_dict"]
        model = model_of(model_spec(architecture, path), state["probe"])
        if intact:
            model.load_state_dict(state)
    except DatasetError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:
        problem = (
            f"missing entry {error}"
            if isinstance(error, KeyError)
            else " ".join(str(error).split())[:300]
        )
        raise DatasetError(f"{path} is not a valid ptypinn model bundle: {problem}") from None
    if not intact:
        raise DatasetError(
            f"{path} is damaged or was altered: its contents no longer match the SHA-256 "
            "recorded when it was written"
        )
    if not all(
        bool(torch.isfinite(value).all())
        for value in state.values()
        if value.is_floating_point() or value.is_complex()
    ):
        raise DatasetError(f"{path} holds NaN or infinite weights")
    model.eval()
    return model, {key: value for key, value in payload.items() if key != "state_dict"}

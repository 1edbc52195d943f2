"""Study design (phase A): one typed, validated object holding every constant of the study.

Defaults are the design stated in DESIGN.md. ``preset("smoke")`` shrinks it so the whole study
runs on two CPU cores in minutes; ``preset("full")`` is the design as stated. A design round-trips
through YAML (:meth:`StudyDesign.save`, :func:`load_design`); a design file lists only what it
changes, and its fields (nested ones too) are laid over a base preset.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ptypinn.io.artifacts import atomic_path

PATCH_SIZES = (64, 128, 256)


class DesignError(ValueError):
    """An invalid study design; the message names the offending field(s)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OverlapView(_Strict):
    """A scan-overlap view: positions are thinned until neighbours are at least (1 - f) N apart."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    fraction: float = Field(description="target overlap fraction f, in [0, 1)")

    @field_validator("fraction")
    @classmethod
    def _fraction_range(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"overlap fraction must be in [0, 1), got {value}")
        return value


class Seeds(_Strict):
    simulation: int = Field(42, ge=0)
    grouping: int = Field(123, ge=0)
    subsampling: int = Field(456, ge=0)


class MetricsConfig(_Strict):
    ms_ssim_sigma: float = Field(1.0, gt=0, description="Gaussian pre-smoothing before MS-SSIM, px")
    emphasis: Literal["phase", "amplitude"] = "phase"
    report_amplitude: bool = True


class ProbeConfig(_Strict):
    kind: Literal["disk", "gaussian", "airy"] = "disk"
    diameter_fraction: float = Field(
        0.5, gt=0, le=1, description="disk diameter, Gaussian FWHM or Airy first-zero diameter, as a fraction of N"
    )
    curvature: float = Field(3.0, description="defocus phase at the rim, radians")


class ScanConfig(_Strict):
    pattern: Literal["raster", "fermat"] = "raster"
    step_px: float = Field(gt=0, description="scan step of the full (baseline) scan, object pixels")
    jitter_px: float = Field(1.0, ge=0, description="uniform raster jitter, +- px")


class SimulationConfig(_Strict):
    object_size: int = Field(gt=0, description="side of the square default object, px")
    scan: ScanConfig
    probe: ProbeConfig = ProbeConfig()


class TrainingConfig(_Strict):
    """How each PtychoPINN job trains (phase E)."""

    model: Literal["pinn", "supervised"] = Field(
        "pinn", description="'pinn': physics decoder + Poisson NLL; 'supervised': same generator, MAE against true patches"
    )
    width: int = Field(2, ge=1, description="filter multiplier of the generator ladders")
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(16, ge=1, description="groups per optimisation step")
    learning_rate: float = Field(1e-3, gt=0)
    groups_per_position: float = Field(
        1.0, gt=0, description="training groups per scan position; above 1, gridsize >= 2 groups are oversampled from K-choose-C combinations (gridsize 1 stays at 1)"
    )
    augment: bool = Field(
        False, description="random flips and transposes of each training group (needs a probe with those symmetries)"
    )
    nll_weight: float = Field(1.0, ge=0, description="weight of the Poisson negative log-likelihood")
    mae_weight: float = Field(0.0, ge=0, description="weight of the diffraction-amplitude MAE")
    trainable_scale: bool = Field(True, description="learn the log intensity scale (initialised from the dose)")
    validation_fraction: float = Field(0.05, ge=0, lt=0.5, description="share of groups held out for validation loss")
    early_stopping_patience: int = Field(0, ge=0, description="epochs without validation improvement before stopping; 0 = never")
    seed: int = Field(42, ge=0)

    @model_validator(mode="after")
    def _some_loss(self) -> TrainingConfig:
        if self.model == "pinn" and self.nll_weight == 0 and self.mae_weight == 0:
            raise ValueError("nll_weight and mae_weight are both 0: the PINN would have no loss")
        return self


class IterativeConfig(_Strict):
    """The classical engine that reconstructs the same test data (phase F)."""

    engine: Literal["cdtools", "ptychi"] = "cdtools"
    iterations: int = Field(100, ge=1)
    splits: tuple[Literal["train", "test"], ...] = Field(("test",), description="splits the study reconstructs (the comparison scores test)")


class StudyDesign(_Strict):
    """All constants of the dose x overlap study."""

    name: str = "full"
    doses: tuple[float, ...] = (1e3, 1e4, 1e5)
    gridsizes: tuple[int, ...] = (1, 2)
    neighbor_count: int = Field(7, description="K nearest neighbours a group is drawn from")
    patch_size: int = Field(128, description="N: patch and diffraction size, px")
    views: tuple[OverlapView, ...] = (OverlapView(name="dense", fraction=0.7), OverlapView(name="sparse", fraction=0.2))
    split_axis: Literal["y"] = "y"
    seeds: Seeds = Seeds()
    metrics: MetricsConfig = MetricsConfig()
    simulation: SimulationConfig = SimulationConfig(object_size=640, scan=ScanConfig(step_px=20.0))
    training: TrainingConfig = TrainingConfig()
    iterative: IterativeConfig = IterativeConfig()

    @field_validator("doses")
    @classmethod
    def _doses_positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("at least one dose is required")
        bad = [d for d in value if not d > 0]
        if bad:
            raise ValueError(f"doses must be positive photon counts per pattern, got {bad}")
        infinite = [d for d in value if not math.isfinite(d)]
        if infinite:
            raise ValueError(f"doses must be finite photon counts per pattern, got {infinite}")
        if len({round(d) for d in value}) != len(value):
            raise ValueError(f"doses must be distinct whole photon counts, got {list(value)}")
        return value

    @field_validator("gridsizes")
    @classmethod
    def _gridsizes_valid(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(g < 1 for g in value):
            raise ValueError(f"gridsizes must be a non-empty list of integers >= 1, got {list(value)}")
        return value

    @field_validator("patch_size")
    @classmethod
    def _patch_size_supported(cls, value: int) -> int:
        if value not in PATCH_SIZES:
            raise ValueError(f"N must be one of {PATCH_SIZES}, got {value}")
        return value

    @field_validator("views")
    @classmethod
    def _views_unique(cls, value: tuple[OverlapView, ...]) -> tuple[OverlapView, ...]:
        names = [v.name for v in value]
        if len(set(names)) != len(names):
            raise ValueError(f"view names must be unique, got {names}")
        if "baseline" in names:
            raise ValueError("'baseline' is reserved for the full scan and cannot name a view")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> StudyDesign:
        largest_group = max(self.gridsizes) ** 2
        if self.neighbor_count < largest_group:
            raise ValueError(
                f"neighbor_count: K={self.neighbor_count} is smaller than C=gridsize^2={largest_group}; groups need K >= C"
            )
        if self.simulation.object_size < 2 * self.patch_size:
            raise ValueError(
                f"simulation.object_size: {self.simulation.object_size} px is too small for N={self.patch_size}; "
                f"it must be at least 2N={2 * self.patch_size} so both halves of the y split hold positions"
            )
        return self

    def spacing(self, view: str) -> float:
        """Minimum scan spacing S = (1 - f) N of a view, in pixels."""
        return (1.0 - self.view(view).fraction) * self.patch_size

    def view(self, name: str) -> OverlapView:
        for candidate in self.views:
            if candidate.name == name:
                return candidate
        raise KeyError(f"no view named {name!r}; the design has {[v.name for v in self.views]}")

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the design as YAML (atomically)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        return path


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "design"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{field}: {message}")
    return "invalid study design:\n  " + "\n  ".join(lines)


def make_design(values: dict) -> StudyDesign:
    """Build a design from plain values, turning validation failures into :class:`DesignError`."""
    try:
        return StudyDesign.model_validate(values)
    except ValidationError as error:
        raise DesignError(_format_errors(error)) from None


PRESETS = {
    "full": {},
    "smoke": {
        "name": "smoke",
        "patch_size": 64,
        "simulation": {"object_size": 256, "scan": {"step_px": 10.0, "jitter_px": 1.0}},
        "training": {"width": 1, "epochs": 30, "groups_per_position": 4.0, "augment": True},
        "iterative": {"iterations": 50},
    },
}


def preset(name: str) -> StudyDesign:
    """A named design: ``full`` (the study as stated) or ``smoke`` (N=64, small object, minutes on CPU)."""
    if name not in PRESETS:
        raise DesignError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return make_design(PRESETS[name])


def merged(base: dict, changes: dict) -> dict:
    """``base`` with ``changes`` laid over it: mappings merge key by key, the rest is replaced."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = (
            merged(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def load_design(path: str | os.PathLike, base: str = "full") -> StudyDesign:
    """Read a design from YAML; each field it leaves out (nested too) keeps preset ``base``'s."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DesignError(f"cannot read design file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise DesignError(f"design file {path} is not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise DesignError(f"design file {path} is not valid YAML: {error}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise DesignError(f"design file {path} must hold a mapping of fields, got {type(values).__name__}")
    return make_design(merged(preset(base).to_dict(), values))

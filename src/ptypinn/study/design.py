"""Study design (phase A): one typed, validated object holding every constant of the study.

Defaults are the design stated in DESIGN.md. ``preset("smoke")`` shrinks it so the whole study
runs on two CPU cores in minutes; ``preset("full")`` is the design as stated. A design round-trips
through YAML (:meth:`StudyDesign.save`, :func:`load_design`); a design file lists only what it
changes, and its fields (nested ones too) are laid over a base preset.

Each overlap view thins the base scan to a minimum spacing chosen by its rule
(:meth:`OverlapView.spacing`): ``disc_overlap`` (default) solves ``f(d) = target`` for the probe
footprint's diameter ``D`` (:mod:`ptypinn.physics.scan`), so the view has the overlap it is named
for; ``patch_linear`` is the original study's ``S = (1 - f) N``. A view whose spacing is below the
base scan's step cannot reach its target and the design is refused.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ptypinn.engines.api import (
    ENGINE_OPTIONS,
    CDToolsOptions,
    EngineName,
    EngineOptions,
    PtychiOptions,
)
from ptypinn.io.artifacts import atomic_path
from ptypinn.io.dataset import DatasetError
from ptypinn.io.sources import read_object, read_probe
from ptypinn.physics.grouping import neighbours_problem
from ptypinn.physics.probes import (
    airy_probe,
    diffuser_probe,
    disk_probe,
    gaussian_probe,
    zone_plate_probe,
)
from ptypinn.physics.scan import disc_overlap_distance, probe_footprint
from ptypinn.pinn.config import Method, TrainingConfig
from ptypinn.study.layout import dose_key

PATCH_SIZES = (64, 128, 256)
# Bounds of what can run (each field's description states its own).
MAX_DOSE = 1e12  # photons per pattern; numpy's Poisson sampler fails far above
MAX_SEED = 2**32 - 1  # numpy and torch seeds
MAX_OBJECT_SIZE = 8192  # px: a 512 MiB complex64 object
MIN_STEP_PX = 0.25
MAX_POSITIONS = 1_000_000  # patterns of the full scan (about 16 GiB of amplitudes at N = 64)
MAX_NESTING = 64  # levels of a design file: the design itself has fewer than 6


class DesignError(ValueError):
    """An invalid study design; the message names the offending field(s)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SpacingRule = Literal["disc_overlap", "patch_linear"]


class OverlapView(_Strict):
    """A scan-overlap view: positions are thinned until neighbours are at least a spacing apart."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    fraction: float = Field(description="target overlap fraction f, in [0, 1)")
    rule: SpacingRule = Field(
        "disc_overlap",
        description="spacing rule: 'disc_overlap' solves f(d) = fraction for the probe footprint "
        "diameter D; 'patch_linear' is the original study's S = (1 - f) N",
    )

    def spacing(self, patch_size: int, probe_diameter: float) -> float:
        """Minimum scan spacing of the view in pixels, by its rule."""
        if self.rule == "patch_linear":
            return (1.0 - self.fraction) * patch_size
        return disc_overlap_distance(self.fraction, probe_diameter)

    @field_validator("fraction")
    @classmethod
    def _fraction_range(cls, value: float) -> float:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"overlap fraction must be in [0, 1), got {value}")
        return value


class Seeds(_Strict):
    simulation: int = Field(42, ge=0, le=MAX_SEED, description="at most 2**32 - 1")
    grouping: int = Field(123, ge=0, le=MAX_SEED, description="at most 2**32 - 1")
    subsampling: int = Field(456, ge=0, le=MAX_SEED, description="at most 2**32 - 1")


class MetricsConfig(_Strict):
    ms_ssim_sigma: float = Field(1.0, gt=0, description="Gaussian pre-smoothing before MS-SSIM, px")
    max_shift_px: float = Field(
        3.0,
        ge=0,
        le=16,
        description="bound of the shift alignment may apply (px, each axis); positions are known, "
        "so a correct reconstruction is off by a pixel or two",
    )
    emphasis: Literal["phase", "amplitude"] = "phase"
    report_amplitude: bool = True


ProbeKind = Literal["disk", "gaussian", "airy", "zone_plate", "diffuser", "file"]


class DiffuserConfig(_Strict):
    """The ``diffuser`` probe: the ``base`` probe (built from the other probe fields) times a
    smooth random phase screen (:func:`ptypinn.physics.probes.phase_screen`)."""

    base: Literal["disk", "gaussian", "airy", "zone_plate", "file"] = "disk"
    correlation_px: float = Field(
        4.0, gt=0, description="correlation length of the phase screen, px (1/e distance)"
    )
    rms_phase: float = Field(1.0, ge=0, description="rms phase of the screen, rad")
    seed: int = Field(0, ge=0, description="seed of the screen's white noise")


# The fields each kind is built from (the rest of ProbeConfig does not apply to it).
PROBE_FIELDS: dict[str, tuple[str, ...]] = {
    "disk": ("diameter_fraction", "curvature"),
    "gaussian": ("diameter_fraction", "curvature"),
    "airy": ("diameter_fraction", "curvature"),
    "zone_plate": ("diameter_fraction", "pupil_fraction", "central_stop"),
    "file": ("file",),
}


DEFAULT_PROBE_NOTE = (
    "the default: the study reproduced simulates its data with an experimental, structured probe, "
    "and a zone plate's focus seen out of focus is one (rings, central-stop shadow and a weak halo "
    "from Fresnel propagation, not drawn). Measured on the smoke study at dose 1e4 "
    "(benchmarks/results/probe_conditioning.json), CDTools reaches phase SSIM 0.879 under it "
    "(0.872 under the former default, a disk N/2 across with 3 rad of defocus): the problem stays "
    "well posed. The per-pattern and group retrievals, and so PtychoPINN's input, fall (group "
    "retrieval 0.568 against 0.760), most likely because the halo widens their support: what a "
    "real probe does to them, and what the study should show"
)
"""Why the default probe is the default (the report's probe section states it)."""


class ProbeConfig(_Strict):
    """The illumination (physics in :mod:`ptypinn.physics.probes`; fields per kind in
    ``PROBE_FIELDS``)."""

    kind: ProbeKind = "zone_plate"
    diameter_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="disk diameter, Gaussian FWHM, Airy first-zero diameter or the zone plate's "
        "geometric beam diameter at the sample, as a fraction of N",
    )
    curvature: float = Field(3.0, description="disk/gaussian/airy: defocus phase at the rim, rad")
    pupil_fraction: float = Field(
        0.5,
        gt=0,
        le=1,
        description="zone_plate: pupil radius as a fraction of the grid's Nyquist frequency, i.e. "
        "pixel size / outermost zone width (NA = wavelength / (2 outermost zone width))",
    )
    central_stop: float = Field(
        0.3, ge=0, lt=1, description="zone_plate: central-stop diameter / zone-plate diameter"
    )
    diffuser: DiffuserConfig = DiffuserConfig()
    file: Path | None = Field(
        None, description="file (or a diffuser on base file): NPZ whose probeGuess is the probe"
    )

    @model_validator(mode="after")
    def _file_given(self) -> ProbeConfig:
        if self.file is None and "file" in (self.kind, self.diffuser_base):
            raise ValueError("a probe of kind 'file' needs simulation.probe.file (an NPZ path)")
        return self

    @property
    def diffuser_base(self) -> str | None:
        return self.diffuser.base if self.kind == "diffuser" else None

    def parameters(self) -> dict:
        """The fields this probe is built from: its kind and the physical parameters it uses
        (for the provenance and the report)."""
        values = self.model_dump(mode="json")
        base = self.diffuser_base or self.kind
        out = {"kind": self.kind} | {name: values[name] for name in PROBE_FIELDS[base]}
        if self.kind == "diffuser":
            out["diffuser"] = values["diffuser"]
        return out

    def input_file(self) -> Path | None:
        """The probe file this probe reads (``None`` for a model probe)."""
        return self.file if "file" in (self.kind, self.diffuser_base) else None

    def build(self, size: int) -> np.ndarray:
        """The probe on a ``size x size`` grid (complex64, peak amplitude 1 for the models; a
        file's probe as it is)."""
        if self.kind == "diffuser":
            base = self.model_copy(update={"kind": self.diffuser.base}).build(size)
            return diffuser_probe(
                base, self.diffuser.correlation_px, self.diffuser.rms_phase, self.diffuser.seed
            )
        if self.kind == "file":
            assert self.file is not None  # checked by the validator
            return read_probe(self.file, size)
        extent = self.diameter_fraction * size
        if self.kind == "disk":
            return disk_probe(size, extent, edge=max(size / 32, 1.0), curvature=self.curvature)
        if self.kind == "gaussian":
            return gaussian_probe(size, extent, curvature=self.curvature)
        if self.kind == "zone_plate":
            return zone_plate_probe(size, extent, self.pupil_fraction, self.central_stop)
        return airy_probe(size, extent / 2, curvature=self.curvature)


class ScanConfig(_Strict):
    pattern: Literal["raster", "fermat"] = "raster"
    step_px: float = Field(
        ge=MIN_STEP_PX,
        description="scan step of the full (baseline) scan, object pixels "
        f"(at least {MIN_STEP_PX})",
    )
    jitter_px: float = Field(
        1.0, ge=0, description="uniform raster jitter, +- px (at most the step)"
    )

    @model_validator(mode="after")
    def _jitter_within_step(self) -> ScanConfig:
        if self.jitter_px > self.step_px:
            raise ValueError(
                f"jitter_px: {self.jitter_px:g} px is more than the step ({self.step_px:g} px): "
                "positions would leave their raster cell and pile up on the edges of the scan"
            )
        return self

    def position_count(self, object_shape: tuple[int, int], patch_size: int) -> int:
        """About how many positions the scan places on an object of ``object_shape`` (a
        raster's count; a Fermat spiral's hexagonal density holds 15% more)."""
        rows, cols = (max(side - patch_size, 0) / self.step_px + 1 for side in object_shape)
        factor = 2 / math.sqrt(3) if self.pattern == "fermat" else 1.0
        return math.ceil(rows * cols * factor)


class SimulationConfig(_Strict):
    object_size: int = Field(
        gt=0,
        le=MAX_OBJECT_SIZE,
        description=f"side of the square default object, px (at most {MAX_OBJECT_SIZE}; unused "
        "with object_file)",
    )
    object_file: Path | None = Field(
        None,
        description="NPZ whose objectGuess is the object, instead of the embedded default "
        "(each side at least 2N)",
    )
    scan: ScanConfig
    probe: ProbeConfig = ProbeConfig()
    guard_band: bool = Field(
        True,
        description="drop the positions whose probe footprint crosses the train/test split line, "
        "so no training position illuminates a scored test pixel",
    )

    def input_files(self) -> dict[str, Path]:
        """The user's files the simulation reads, by role (``object``, ``probe``)."""
        files = {"object": self.object_file, "probe": self.probe.input_file()}
        return {role: path for role, path in files.items() if path is not None}


class IterativeConfig(_Strict):
    """The classical engines that reconstruct the same data (phase F), each with its options
    (declared once, in :mod:`ptypinn.engines.api`)."""

    engines: tuple[EngineName, ...] = Field(
        ("cdtools", "ptychi"), description="engines to run; each is its own method in the report"
    )
    warm_start: tuple[EngineName, ...] = Field(
        (),
        description="engines also started from the PtychoPINN reconstruction of the same test "
        "data (the view's own model), each its own method; its time includes the network's",
    )
    splits: tuple[Literal["train", "test"], ...] = Field(
        ("test",), description="splits the study reconstructs (the comparison scores test)"
    )
    checkpoints: tuple[int, ...] = Field(
        (0, 1, 2, 5, 10, 20),
        description="iterations after which every engine run (cold and warm) keeps its object, "
        "scored for the time-to-quality curves (0: its start; the last iteration is always kept)",
    )
    cdtools: CDToolsOptions = CDToolsOptions()
    ptychi: PtychiOptions = PtychiOptions()

    @field_validator("checkpoints")
    @classmethod
    def _checkpoints_not_negative(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(iteration < 0 for iteration in value):
            raise ValueError(f"checkpoints are iterations (0 or more), got {list(value)}")
        return value

    @field_validator("engines")
    @classmethod
    def _engines_listed_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"list each engine once, at least one, got {list(value)}")
        return value

    def options(self, engine: str) -> EngineOptions:
        """The options of ``engine``, keeping its object at the design's checkpoints (those
        within its iterations, and its last) besides its own."""
        options: EngineOptions = getattr(self, engine)
        kept = {c for c in (*self.checkpoints, *options.checkpoints) if c <= options.iterations}
        return options.model_copy(
            update={"checkpoints": tuple(sorted(kept | {options.iterations}))}
        )


class StudyDesign(_Strict):
    """All constants of the dose x overlap study."""

    name: str = "full"
    doses: tuple[float, ...] = Field(
        (1e3, 1e4, 1e5),
        description=f"expected photons per pattern, each positive and at most {MAX_DOSE:g}",
    )
    gridsizes: tuple[int, ...] = Field(
        (1, 2),
        description="1 trains on the full scan (baseline); "
        "each gridsize above 1 trains on every overlap view",
    )
    methods: tuple[Method, ...] = Field(
        ("pinn",),
        description="models the study trains: 'pinn' (physics loss) "
        "and/or 'supervised' (MAE on true patches)",
    )
    neighbor_count: int = Field(7, description="K nearest neighbours a group is drawn from")
    patch_size: int = Field(128, description="N: patch and diffraction size, px")
    views: tuple[OverlapView, ...] = (
        OverlapView(name="dense", fraction=0.7),
        OverlapView(name="sparse", fraction=0.2),
    )
    split_axis: Literal["y"] = "y"
    seeds: Seeds = Seeds()
    metrics: MetricsConfig = MetricsConfig()
    simulation: SimulationConfig = SimulationConfig(object_size=1408, scan=ScanConfig(step_px=12.0))
    training: TrainingConfig = TrainingConfig()
    iterative: IterativeConfig = IterativeConfig()

    @field_validator("doses")
    @classmethod
    def _doses_positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("at least one dose is required")
        check_doses(value)
        if len({dose_key(d) for d in value}) != len(value):
            raise ValueError(f"doses must be distinct whole photon counts, got {list(value)}")
        return value

    @field_validator("gridsizes")
    @classmethod
    def _gridsizes_valid(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(g < 1 for g in value):
            raise ValueError(
                f"gridsizes must be a non-empty list of integers >= 1, got {list(value)}"
            )
        return value

    @field_validator("methods")
    @classmethod
    def _methods_valid(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError(f"methods must be a non-empty list without repeats, got {list(value)}")
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
        problem = neighbours_problem(max(self.gridsizes), self.neighbor_count)
        if problem:
            raise ValueError(f"neighbor_count: {problem}")
        if self.simulation.object_size < 2 * self.patch_size:
            raise ValueError(
                f"simulation.object_size: {self.simulation.object_size} px "
                f"is too small for N={self.patch_size}; "
                f"it must be at least 2N={2 * self.patch_size} "
                "so both halves of the y split hold positions"
            )
        side = self.simulation.object_size
        positions = self.simulation.scan.position_count((side, side), self.patch_size)
        if positions > MAX_POSITIONS:
            raise ValueError(
                f"simulation.scan.step_px: a {self.simulation.scan.step_px:g} px step over a "
                f"{self.simulation.object_size} px object places about {positions:.3g} positions, "
                f"more than the {MAX_POSITIONS:,} a study can run; use a coarser step or a "
                "smaller object"
            )
        problems = self.unreachable_views(self.probe_diameter())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def view_names(self) -> tuple[str, ...]:
        """The names of the design's overlap views, in order."""
        return tuple(view.name for view in self.views)

    def probe_diameter(self) -> float:
        """Footprint diameter D of the design's probe, px (:func:`probe_footprint`)."""
        return probe_footprint(self.simulation.probe.build(self.patch_size))[1]

    def spacing(self, view: str, probe_diameter: float | None = None) -> float:
        """Minimum scan spacing of a view, px, for a probe footprint of ``probe_diameter``
        (default: the design's own probe)."""
        diameter = self.probe_diameter() if probe_diameter is None else probe_diameter
        return self.view(view).spacing(self.patch_size, diameter)

    def unreachable_views(self, probe_diameter: float) -> list[str]:
        """One message per view whose spacing lies below the base scan step: thinning that scan
        cannot bring neighbours closer, so the view's target overlap cannot be reached."""
        step = self.simulation.scan.step_px
        problems = []
        for view in self.views:
            spacing = view.spacing(self.patch_size, probe_diameter)
            if spacing < step:
                problems.append(
                    f"view {view.name!r} ({view.rule} rule, target overlap {view.fraction:g}, "
                    f"probe footprint D = {probe_diameter:.1f} px) needs a spacing of "
                    f"{spacing:.2f} px, below the base scan step {step:g} px, so its target "
                    "cannot be reached; use a finer simulation.scan.step_px (at most the "
                    "spacing) or a lower target"
                )
        return problems

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


def check_doses(doses: Sequence[float], name: str = "doses") -> None:
    """Refuse doses that are not positive, finite photon counts of at most ``MAX_DOSE``
    (``ValueError`` naming ``name``)."""
    bad = [d for d in doses if not d > 0]
    if bad:
        raise ValueError(f"{name} must be positive photon counts per pattern, got {bad}")
    infinite = [d for d in doses if not math.isfinite(d)]
    if infinite:
        raise ValueError(f"{name} must be finite photon counts per pattern, got {infinite}")
    huge = [d for d in doses if d > MAX_DOSE]
    if huge:
        raise ValueError(f"{name} must be at most {MAX_DOSE:g} photons per pattern, got {huge}")


def _non_finite(values: object, where: str = "") -> list[str]:
    """Paths of the non-finite numbers in nested plain values."""
    if isinstance(values, dict):
        return [p for k, v in values.items() for p in _non_finite(v, f"{where}.{k}".lstrip("."))]
    if isinstance(values, list | tuple):
        return [p for i, v in enumerate(values) for p in _non_finite(v, f"{where}[{i}]")]
    if isinstance(values, float) and not math.isfinite(values):
        return [f"{where}: must be a finite number, got {values}"]
    return []


def _format_errors(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "design"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{field}: {message}")
    return "invalid study design:\n  " + "\n  ".join(lines)


def make_design(values: dict) -> StudyDesign:
    """Build a design from plain values, turning validation failures into :class:`DesignError`."""
    if not isinstance(values, dict):
        raise DesignError(
            f"a design is a mapping of fields (or a StudyDesign), got {type(values).__name__}"
        )
    try:
        design = StudyDesign.model_validate(values)
    except ValidationError as error:
        raise DesignError(_format_errors(error)) from None
    # Every field ends up in a JSON manifest, which holds finite numbers only.
    problems = _non_finite(design.model_dump())
    if problems:
        raise DesignError("invalid study design:\n  " + "\n  ".join(problems))
    return design


def with_metrics(design: StudyDesign, **changes: object) -> StudyDesign:
    """``design`` with its ``metrics`` fields changed, validated like any design (e.g. the
    alignment bound ``max_shift_px`` stays within its cap)."""
    return make_design(merged(design.to_dict(), {"metrics": changes}))


def with_epochs(design: StudyDesign, epochs: int | None) -> StudyDesign:
    """``design`` with ``epochs`` of training (``None``: as designed)."""
    if epochs is None:
        return design
    return design.model_copy(
        update={"training": design.training.model_copy(update={"epochs": epochs})}
    )


def check_views(design: StudyDesign, views: list[str] | None) -> None:
    """Refuse a view filter naming a view the design does not have (``baseline`` is one)."""
    known = ["baseline", *(v.name for v in design.views)]
    unknown = [v for v in views or [] if v not in known]
    if unknown:
        raise DesignError(
            f"--view {unknown[0]!r} is not a view of design {design.name!r}; choose from {known}"
        )


def with_iterative(
    design: StudyDesign, engines: Sequence[str] | None = None, iterations: int | None = None
) -> StudyDesign:
    """``design`` with only ``engines`` and every engine at ``iterations`` (``None``: as designed),
    validated like any design (:class:`DesignError` names the field)."""
    values = design.to_dict()
    if engines:
        values["iterative"]["engines"] = list(engines)
    if iterations is not None:
        for engine in ENGINE_OPTIONS:
            values["iterative"][engine]["iterations"] = iterations
    return make_design(values)


def user_object(path: str | os.PathLike, patch_size: int) -> np.ndarray:
    """``objectGuess`` of ``path`` (:func:`ptypinn.io.sources.read_object`), checked against the
    scan: each side at least ``2N``, the size the embedded object needs, so both halves of the y
    split hold positions."""
    obj = read_object(path)
    if min(obj.shape) < 2 * patch_size:
        raise DatasetError(
            f"{path}: objectGuess is {obj.shape[0]}x{obj.shape[1]} px, smaller than the scan "
            f"needs at N={patch_size}: each side at least 2N = {2 * patch_size} px"
        )
    return obj


def with_inputs(
    design: StudyDesign,
    object_file: str | os.PathLike | None = None,
    probe_file: str | os.PathLike | None = None,
) -> StudyDesign:
    """``design`` on the user's object (``objectGuess`` of ``object_file``) and/or probe
    (``probeGuess`` of ``probe_file``, probe kind ``file``). Each file is checked first, so a
    broken one is one :class:`DatasetError` naming it; paths are stored absolute."""
    if object_file is None and probe_file is None:
        return design
    values = design.to_dict()
    if object_file is not None:
        user_object(object_file, design.patch_size)
        values["simulation"]["object_file"] = str(Path(object_file).resolve())
    if probe_file is not None:
        read_probe(probe_file, design.patch_size)
        probe = {"kind": "file", "file": str(Path(probe_file).resolve())}
        values["simulation"]["probe"] = {**values["simulation"]["probe"], **probe}
    return make_design(values)


# Sizing. The dense view's spacing (0.24 D) must not fall below the base step, and the sparse
# view (0.69 D) must keep enough positions per split (smoke >= 50, full >= 200): with D ~ N/2 that
# takes a 5 px step over 384 px at N = 64 (about 2,000 patterns per split) and a 12 px step over
# 1408 px at N = 128 (about 5,700). The smoke preset trains 3 epochs, so each job sees about as
# many samples as 30 epochs did on its former 200-pattern scan, and runs 30 iterative iterations
# over about 2,500 test patterns per dose. Its gridsize-2 jobs draw one group per position: with
# group retrieval inputs a group costs about ten single patterns, and the learning curves show no
# gain from more samples at this budget (benchmarks/results/pinn_learning_curve_*group*.json).
PRESETS = {
    "full": {},
    "smoke": {
        "name": "smoke",
        "patch_size": 64,
        "simulation": {"object_size": 384, "scan": {"step_px": 5.0, "jitter_px": 1.0}},
        "training": {
            "width": 1,
            "epochs": 3,
            "groups_per_position": 1.0,
            "augment": True,
            "refine_steps": 50,
        },
        "iterative": {"cdtools": {"iterations": 30}, "ptychi": {"iterations": 30}},
    },
}


def preset(name: str) -> StudyDesign:
    """A named design: ``full`` (the study as stated) or ``smoke`` (N=64, small object, minutes
    on CPU)."""
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


class DesignLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML would silently keep
    the last) and nesting deeper than ``MAX_NESTING`` levels."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_NESTING} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: the base constructor names it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key {key!r} is given twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_design(path: str | os.PathLike, base: str = "full") -> StudyDesign:
    """Read a design from YAML; each field it leaves out (nested too) keeps preset ``base``'s."""
    path = Path(path)
    try:
        values = yaml.load(path.read_text(encoding="utf-8"), Loader=DesignLoader)  # noqa: S506
    except RecursionError:
        raise DesignError(f"design file {path} is nested too deeply") from None
    except OSError as error:
        raise DesignError(f"cannot read design file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise DesignError(f"design file {path} is not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise DesignError(f"design file {path} is not valid YAML: {error}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise DesignError(
            f"design file {path} must hold a mapping of fields, got {type(values).__name__}"
        )
    _files_beside(values, path.parent)
    return make_design(merged(preset(base).to_dict(), values))


def _files_beside(values: dict, folder: Path) -> None:
    """Make the relative input-file paths of design ``values`` relative to ``folder`` (the design
    file's), in place."""
    simulation = values.get("simulation")
    if not isinstance(simulation, dict):
        return
    probe = simulation.get("probe")
    for owner, key in ((simulation, "object_file"), (probe, "file")):
        if isinstance(owner, dict) and isinstance(owner.get(key), str):
            owner[key] = str(folder / owner[key])  # an absolute path stays as it is

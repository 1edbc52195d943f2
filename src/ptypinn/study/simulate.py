"""Dose simulation (phase C): simulate, validate, split along y, write one folder per dose.

Output layout::

    <root>/dose_<int>/train.npz
    <root>/dose_<int>/test.npz
    <root>/simulation_manifest.json

Positions are the same at every dose; only the photon noise differs. With the same design and
seed every file is byte-identical from one run to the next. By default a guard band drops the
positions whose probe footprint crosses the split line (:func:`split_by_y`), so no training
position illuminates a pixel the comparison scores. The manifest records the measured mean
photons per pattern of every file next to the nominal dose.
The folder always matches the manifest: split files an earlier run listed that this run does
not write are removed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ptypinn import __version__
from ptypinn.io.artifacts import (
    ensure_inside,
    file_record,
    remove_files,
    sha256_file,
)
from ptypinn.io.dataset import PtychoDataset, save_dataset
from ptypinn.io.limits import TooLargeError, check_allocation, claimed_bytes
from ptypinn.io.progress import progress_bar
from ptypinn.io.sources import has_probe
from ptypinn.physics.forward import (
    dose_scale,
    exit_waves,
    far_field,
    fermat_scan,
    mean_counts,
    pattern_energies,
    poisson_observe,
    raster_scan,
)
from ptypinn.physics.samples import default_object
from ptypinn.physics.scan import probe_footprint
from ptypinn.study.design import DesignError, StudyDesign, check_doses, user_object, with_inputs
from ptypinn.study.layout import SIMULATION_MANIFEST, SPLITS, dose_key, dose_label, split_path
from ptypinn.study.matrix import listed_files
from ptypinn.study.records import SimulationManifest, write_manifest


@dataclass(frozen=True)
class SimulationSource:
    """The object and probe a simulation illuminates, with where they came from."""

    obj: np.ndarray
    probe: np.ndarray
    provenance: dict = field(default_factory=dict)


def default_source(design: StudyDesign) -> SimulationSource:
    """The object and probe the design names: ``simulation.object_file``'s objectGuess, else the
    embedded default object; ``simulation.probe``. The provenance holds the probe's parameters
    and every input file's path and SHA-256."""
    simulation = design.simulation
    size = simulation.object_size
    files = simulation.input_files()
    if "object" in files:
        obj = user_object(files["object"], design.patch_size)
        provenance: dict[str, object] = {"object": str(files["object"])}
    else:
        obj = default_object(size)
        provenance = {
            "object": f"embedded default ({size}x{size}: camera amplitude, astronaut phase)"
        }
    provenance["probe"] = simulation.probe.parameters()
    provenance.update({f"{role}_file_sha256": sha256_file(path) for role, path in files.items()})
    return SimulationSource(
        obj=obj, probe=simulation.probe.build(design.patch_size), provenance=provenance
    )


def source_from_npz(path: str | os.PathLike, design: StudyDesign) -> SimulationSource:
    """Object (``objectGuess``) and, if present, probe (``probeGuess``) from one NPZ file; without
    a probeGuess, the design's probe."""
    probe = path if has_probe(path) else None
    return default_source(with_inputs(design, object_file=path, probe_file=probe))


# Arrays of one scan's size that phase C holds at once: the clean amplitudes, one dose's noisy
# ones and its two splits.
SIMULATION_COPIES = 3


def checked_doses(doses: object) -> list[float]:
    """``doses`` as a list of photon counts, refused (:class:`DesignError`) unless it is a list
    of positive, finite numbers within the design's bound."""
    if isinstance(doses, str | bytes) or not isinstance(doses, Sequence):
        raise DesignError(f"doses must be a list of numbers, got {doses!r}")
    if not all(isinstance(d, int | float) and not isinstance(d, bool) for d in doses):
        raise DesignError(f"doses must be a list of numbers, got {list(doses)!r}")
    try:
        check_doses(doses)
    except ValueError as error:
        raise DesignError(str(error)) from None
    return [float(d) for d in doses]


def check_scan_size(design: StudyDesign, object_shape: tuple[int, ...]) -> None:
    """Estimate the scan's size before simulating it and refuse (:class:`DesignError`) one whose
    patterns would not fit in memory."""
    shape = (int(object_shape[0]), int(object_shape[1]))
    count = design.simulation.scan.position_count(shape, design.patch_size)
    nbytes = claimed_bytes((SIMULATION_COPIES, count, design.patch_size, design.patch_size), 4)
    try:
        check_allocation(
            nbytes,
            f"the scan (about {count:,} patterns of {design.patch_size}x{design.patch_size} px "
            f"over a {shape[0]}x{shape[1]} px object, {SIMULATION_COPIES} copies)",
        )
    except TooLargeError as error:
        raise DesignError(f"{error}; use a coarser scan step or a smaller object") from None


def scan_positions(design: StudyDesign, object_shape: tuple[int, int]) -> np.ndarray:
    """The full (baseline) scan of a design over an object of ``object_shape``."""
    scan = design.simulation.scan
    if scan.pattern == "fermat":
        return fermat_scan(object_shape, design.patch_size, scan.step_px)
    rng = np.random.default_rng(design.seeds.simulation)
    return raster_scan(object_shape, design.patch_size, scan.step_px, scan.jitter_px, rng)


def clean_amplitudes(
    source: SimulationSource, positions: np.ndarray, batch_size: int = 256
) -> np.ndarray:
    """Noise-free far-field amplitudes (n, N, N) float32 for every position."""
    obj = torch.from_numpy(source.obj)
    probe = torch.from_numpy(source.probe)
    out = np.empty((positions.shape[0], *source.probe.shape), dtype=np.float32)
    with torch.no_grad(), progress_bar("far field", positions.shape[0]) as advance:
        for start in range(0, positions.shape[0], batch_size):
            chunk = torch.from_numpy(positions[start : start + batch_size])
            out[start : start + batch_size] = far_field(exit_waves(obj, probe, chunk)).numpy()
            advance(chunk.shape[0])
    return out


def observe(
    amplitudes: np.ndarray, nphotons: float, seed: int
) -> tuple[np.ndarray, float, list[int]]:
    """Photon-noisy normalised amplitudes at a dose, the dose scale and the noise seed used."""
    scale = dose_scale(pattern_energies(amplitudes), nphotons)
    noise_seed = [seed, dose_key(nphotons)]
    return poisson_observe(amplitudes, scale, np.random.default_rng(noise_seed)), scale, noise_seed


PHOTONS_NOTE = (
    "the dose scale is set once for the whole scan (a fixed beam), so the measured mean photons "
    "per pattern of a split differs from the nominal dose by how much its part of the object "
    "scatters"
)


def split_rule(boundary: float, guard_band: bool) -> str:
    """The split of :func:`split_by_y` in words."""
    if not guard_band:
        return f"train: y < {boundary:g}; test: y >= {boundary:g}"
    return (
        f"train: probe footprint entirely in rows < {boundary:g}; test: entirely in rows >= "
        f"{boundary:g}; positions whose footprint crosses row {boundary:g} are dropped "
        "(guard band)"
    )


def split_by_y(
    dataset: PtychoDataset, boundary: float, guard_band: bool = False
) -> tuple[PtychoDataset, PtychoDataset]:
    """Train = positions with ``y < boundary``, test = the rest: no position is in both.

    With ``guard_band``, a position is kept only when its whole probe footprint
    (:func:`ptypinn.physics.scan.probe_footprint`, placed on the object as
    :func:`ptypinn.study.overlap.illuminated` places it) lies on its own side: every pixel a
    training footprint covers has ``row < boundary``, every pixel a test footprint covers has
    ``row >= boundary``. The positions in between belong to neither split.
    """
    if guard_band:
        mask, _ = probe_footprint(dataset.probe)
        rows = np.flatnonzero(mask.any(axis=1)) - mask.shape[0] // 2
        centre = np.rint(dataset.ycoords)
        train, test = centre + rows[-1] < boundary, centre + rows[0] >= boundary
        rule = f"probe footprint within rows < {boundary:g}"
        other = f"probe footprint within rows >= {boundary:g}"
    else:
        train = dataset.ycoords < boundary
        test = ~train
        rule, other = f"y < {boundary:g}", f"not y < {boundary:g}"
    dropped = int(dataset.count - train.sum() - test.sum())
    return (
        dataset.subset(
            np.flatnonzero(train), split="train", split_rule=rule, guard_band_dropped=dropped
        ),
        dataset.subset(
            np.flatnonzero(test), split="test", split_rule=other, guard_band_dropped=dropped
        ),
    )


def run_simulation(
    design: StudyDesign,
    output_root: str | os.PathLike,
    source: SimulationSource | None = None,
    doses: list[float] | None = None,
) -> SimulationManifest:
    """Phase C: simulate every dose, split along y, write the files and the manifest."""
    root = Path(output_root)
    doses = checked_doses(design.doses if doses is None else doses)
    earlier = listed_files(root / SIMULATION_MANIFEST, SimulationManifest)
    source = source if source is not None else default_source(design)
    check_scan_size(design, source.obj.shape)
    for dose in doses:  # no symbolic link may lead a write out of the output folder
        for split in SPLITS:
            ensure_inside(root, split_path(root, dose, split))
    ensure_inside(root, root / SIMULATION_MANIFEST)
    try:  # what the manifest will hold, checked before any data is written
        json.dumps({"design": design.to_dict(), "source": source.provenance}, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise DesignError(f"the design or source cannot be recorded as JSON: {error}") from None
    positions = scan_positions(design, source.obj.shape)
    amplitudes = clean_amplitudes(source, positions)
    boundary = source.obj.shape[0] / 2
    seed = design.seeds.simulation
    entries = []
    for dose in doses:
        diffraction, scale, noise_seed = observe(amplitudes, dose, seed)
        full = PtychoDataset(
            diffraction=diffraction,
            xcoords=positions[:, 0].copy(),
            ycoords=positions[:, 1].copy(),
            probe=source.probe,
            obj=source.obj,
            scan_index=np.zeros(positions.shape[0], dtype=np.int64),
            metadata={
                "ptypinn_version": __version__,
                "producer": "ptypinn simulate",
                "design": design.name,
                "nphotons": float(dose),
                "dose_scale": scale,
                "simulation_seed": seed,
                "noise_seed": noise_seed,
                "patch_size": design.patch_size,
                "scan": design.simulation.scan.model_dump(mode="json"),
                "source": source.provenance,
                "positions_in_full_scan": int(positions.shape[0]),
            },
        )
        files, counts = {}, {"total": full.count}
        photons = {"total": mean_counts(diffraction, scale)}
        parts = split_by_y(full, boundary, design.simulation.guard_band)
        for part in parts:
            split = part.metadata["split"]
            if part.count == 0:
                raise DesignError(
                    f"the {split} split holds no positions once the guard band drops those whose "
                    "probe footprint crosses the split line; use a larger object or a smaller "
                    "probe, or set simulation.guard_band: false"
                )
            path = save_dataset(split_path(root, dose, split), part)
            files[split] = file_record(path, root)
            counts[split] = part.count
            photons[split] = mean_counts(part.diffraction, scale)
        counts["dropped_by_guard_band"] = parts[0].metadata["guard_band_dropped"]
        entries.append(
            {
                "dose": float(dose),
                "folder": dose_label(dose),
                "dose_scale": scale,
                "noise_seed": noise_seed,
                "counts": counts,
                "measured_photons_per_pattern": photons,
                "files": files,
            }
        )
    manifest = SimulationManifest.model_validate(
        {
            "phase": "C",
            "ptypinn_version": __version__,
            "design": design.to_dict(),
            "simulation_seed": seed,
            "split_rule": split_rule(boundary, design.simulation.guard_band),
            "photons_note": PHOTONS_NOTE,
            "source": source.provenance,
            "doses": entries,
        }
    )
    write_manifest(root / SIMULATION_MANIFEST, manifest)
    remove_files(root, earlier - listed_files(root / SIMULATION_MANIFEST, SimulationManifest))
    return manifest

"""A training corpus of procedurally generated objects (``training.corpus``).

Each corpus object (:func:`ptypinn.physics.samples.procedural_object`) is raster-scanned and
measured with the training data's own probe and dose scale, so its patterns have the photon
counts the real ones would have under the same beam. The corpus only ever joins training: the
scored data and the iterative engines never see it.
"""

from __future__ import annotations

import numpy as np
import torch

from ptypinn.io.dataset import PtychoDataset
from ptypinn.physics.forward import exit_waves, far_field, poisson_observe, raster_scan
from ptypinn.physics.samples import procedural_object
from ptypinn.pinn.config import CorpusConfig

CHUNK = 512  # positions per far-field batch


def corpus_datasets(
    config: CorpusConfig, probe: np.ndarray, dose_scale: float
) -> list[PtychoDataset]:
    """One dataset per corpus object, measured with ``probe`` at ``dose_scale`` (``s`` with
    ``s·X`` in photon-count amplitudes)."""
    rng = np.random.default_rng(config.seed)
    size = probe.shape[-1]
    probe_t = torch.from_numpy(np.asarray(probe, dtype=np.complex64))
    datasets = []
    for index in range(config.objects):
        kind = config.kinds[index % len(config.kinds)]
        obj = procedural_object(kind, config.object_size, rng)
        positions = raster_scan(obj.shape, size, config.step_px, config.jitter_px, rng)
        amplitudes = np.empty((len(positions), size, size), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, len(positions), CHUNK):
                chunk = torch.from_numpy(positions[start : start + CHUNK])
                waves = exit_waves(torch.from_numpy(obj), probe_t, chunk)
                amplitudes[start : start + CHUNK] = far_field(waves).numpy()
        datasets.append(
            PtychoDataset(
                diffraction=poisson_observe(amplitudes, dose_scale, rng),
                xcoords=positions[:, 0].copy(),
                ycoords=positions[:, 1].copy(),
                probe=np.asarray(probe, dtype=np.complex64),
                obj=obj,
                metadata={"corpus_object": index, "corpus_kind": kind, "dose_scale": dose_scale},
            )
        )
    return datasets

"""PtychoPINN: the network, its training and inference. Imports ``physics`` and ``io``.

* ``config`` — ``TrainingConfig``, the one options object for training (budget, schedule, loss)
* ``runtime`` — ``TrainerOptions``: hardware, precision, determinism, logging
* ``generators`` — the generator registry (``cnn``, ``unet``, ``resnet``)
* ``model`` — generator + physics decoder, overlap constraint, Poisson loss
* ``train`` — Lightning training, the self-describing model bundle
* ``inference`` — a bundle as a ``Reconstructor``, with optional test-time refinement
"""

__all__ = ["config", "generators", "inference", "model", "runtime", "train"]

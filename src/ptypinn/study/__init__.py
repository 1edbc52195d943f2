"""The dose x overlap study, phases A to G, on top of every other wing.

* ``design`` — the study design (phase A) and its presets; ``layout`` — where each phase's files go
* ``simulate`` (C), ``overlap`` (D), ``training`` (E), ``iterative`` (F), ``compare`` (G)
* ``matrix`` — which datasets exist, read from the phase manifests
* ``outputs`` — the files and figure of one reconstruction
* ``scoring`` — scoring any reconstruction file (``ptypinn score``)
* ``runner`` — the resumable end-to-end run
"""

__all__ = [
    "compare",
    "design",
    "iterative",
    "layout",
    "matrix",
    "outputs",
    "overlap",
    "runner",
    "scoring",
    "simulate",
    "training",
]

"""Build an iterative engine by name; an engine that cannot run here says why.

Each engine's module (and its library) is imported only when that engine is asked for, so a
missing or broken library stops that engine alone.
"""

from __future__ import annotations

from ptypinn.engines.api import (
    ENGINE_OPTIONS,
    CDToolsOptions,
    EngineOptions,
    EngineUnavailable,
    PtychiOptions,
    Reconstructor,
)


def iterative_reconstructor(engine: str, options: EngineOptions | None = None) -> Reconstructor:
    """The ``engine`` reconstructor with ``options`` (its defaults where ``None``); raises
    :class:`EngineUnavailable` when the engine is unknown or its library cannot be imported."""
    if engine not in ENGINE_OPTIONS:
        raise EngineUnavailable(f"unknown engine {engine!r}; choose one of {list(ENGINE_OPTIONS)}")
    options = options or ENGINE_OPTIONS[engine]()
    if not isinstance(options, ENGINE_OPTIONS[engine]):
        raise TypeError(
            f"engine {engine!r} takes {ENGINE_OPTIONS[engine].__name__}, got {options!r}"
        )
    if engine == "ptychi":
        from ptypinn.engines.ptychi import PtychiReconstructor

        assert isinstance(options, PtychiOptions)  # checked above
        return PtychiReconstructor(options)
    try:
        from ptypinn.engines.cdtools import CDToolsReconstructor
    except ImportError as error:
        raise EngineUnavailable(
            f"engine 'cdtools' needs CDTools (PyPI package 'cdtools-py'), which cannot be "
            f"imported: {error}"
        ) from None
    assert isinstance(options, CDToolsOptions)  # checked above
    return CDToolsReconstructor(options)

"""Build an iterative engine by name; an engine that cannot run here says why.

Each engine's adapter module (and its library) is imported only when that engine is asked for,
so a missing or broken library stops that engine alone. The engines are those registered in
:data:`ptypinn.engines.api.ENGINE_OPTIONS`.
"""

from __future__ import annotations

import importlib

from ptypinn.engines.api import ENGINE_OPTIONS, EngineOptions, EngineUnavailable, Reconstructor


def iterative_reconstructor(engine: str, options: EngineOptions | None = None) -> Reconstructor:
    """The ``engine`` reconstructor with ``options`` (its defaults where ``None``); raises
    :class:`EngineUnavailable` when the engine is unknown or its library cannot be imported."""
    if engine not in ENGINE_OPTIONS:
        raise EngineUnavailable(f"unknown engine {engine!r}; choose one of {list(ENGINE_OPTIONS)}")
    kind = ENGINE_OPTIONS[engine]
    options = options or kind()
    if not isinstance(options, kind):
        raise TypeError(f"engine {engine!r} takes {kind.__name__}, got {options!r}")
    module, name = kind.adapter.split(":")
    try:
        adapter = getattr(importlib.import_module(module), name)
    except ImportError as error:
        raise EngineUnavailable(
            f"engine {engine!r} needs {kind.library}, which cannot be imported: {error}"
        ) from None
    return adapter(options)

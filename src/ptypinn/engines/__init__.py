"""Classical iterative engines behind the one ``Reconstructor`` interface. Imports ``physics``
and ``io``; each engine's library is imported only when that engine runs.

* ``api`` — the ``Reconstructor`` protocol and one options class per engine
* ``registry`` — ``iterative_reconstructor(name, options)``
* ``cdtools``, ``ptychi`` — the adapters, every convention conversion in one place
* ``frame`` — the padded object frame both engines share
* ``torchvision_shim`` — the one torchvision symbol pty-chi needs, where torchvision cannot load
"""

__all__ = ["api", "cdtools", "frame", "ptychi", "registry", "torchvision_shim"]

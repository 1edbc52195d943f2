"""Files and contracts: what the other wings read and write. Imports only ``physics``.

* ``dataset`` — the canonical NPZ dataset (``PtychoDataset``) and its validator
* ``sources`` — the user's object and probe files (``objectGuess``, ``probeGuess``), checked
* ``reconstruction`` — the one reconstruction contract (input without the truth, result) and its NPZ
* ``cxi``, ``product``, ``hdf5``, ``formats`` — CXI 1.6 and ptychodus product files, conversion
* ``artifacts`` — atomic writes, SHA-256 records, outputs that stay inside their folder
* ``progress`` — progress bars, plain lines when output is not a terminal
"""

__all__ = [
    "artifacts",
    "cxi",
    "dataset",
    "formats",
    "hdf5",
    "product",
    "progress",
    "reconstruction",
    "sources",
]

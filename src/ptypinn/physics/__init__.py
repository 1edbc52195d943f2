"""Physics, in small pure functions (numpy/torch, no files, no study): the lowest wing.

* ``forward`` — sub-pixel patches, exit waves, far field, dose and Poisson counts, scans
* ``probes`` — probe models: disk, Gaussian, Airy, defocused zone plate, diffuser phase screen
* ``scan`` — probe footprint, disc overlap f(d) and its inverse, illuminated region, spacings
* ``grouping`` — K-nearest-neighbour groups of C = gridsize² positions
* ``canvas`` — a group's shared canvas: place patches at their offsets, merge, cut again
* ``stitch`` — weighted stitching of patches, phase synchronisation
* ``geometry`` — far-field geometry in SI units, the one object-grid rule
* ``samples`` — the embedded default object
* ``finite`` — the NaN/infinity check every wing uses
"""

__all__ = [
    "canvas",
    "finite",
    "forward",
    "geometry",
    "grouping",
    "probes",
    "samples",
    "scan",
    "stitch",
]

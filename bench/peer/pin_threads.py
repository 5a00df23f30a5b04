"""Thread pinning for the peer scripts; import and call it before torch is imported.

torch.set_num_threads() sizes PyTorch's own (OpenMP) pool only. Debian's PyTorch does its BLAS calls (the
linear layers, the convolutions' matrix products) in OpenBLAS, whose pthread pool is sized once, when the
library loads, from OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, and defaults to one thread per core: a
"1-thread" peer would then use both cores.
"""
import os


def pin_threads(threads):
    """Sizes every pool torch will start to `threads`, unless the caller's environment already set them."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))

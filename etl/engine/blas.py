"""One BLAS thread wherever items are processed, so that a result does not depend on thread counts.

OpenBLAS splits a matrix product among its threads, and for some of its kernels the split changes
the order in which float32 products are summed: measured with numpy's OpenBLAS 0.3.31, the Haswell
kernels (what AVX2 machines get) give the beat network's input projection ((frames, 314) @
(314, 1600)) up to 6e-5 apart at 1 and 2 threads, and even the SkylakeX kernels give a large
matrix-vector product different roundings. Without a pin the thread count a process happened to
have decided the last digits of the beats stage's pulse strength and of the chords stage's key
scores: the core count, a stage that limited the threads earlier in the same process (features'
worker setup, under the inline executor), Ray's OMP_NUM_THREADS of an actor's CPUs. Their output
fingerprints then changed with it, and the lineage re-queued their dependants for nothing
(test_blas_threads, test_change).

So every executor computes items with one BLAS thread: the process pool's and Ray's workers for
their lifetime, the inline executor while it runs (the coordinator gets its threads back after).
It costs no speed where the design puts its parallelism, one worker per core. Alignment was
measured not to matter (OpenBLAS packs its operands), nor was the fingerprint's float format (repr
is exact). What remains is the machine's kernels: another CPU (or numpy's SIMD paths for it) rounds
differently, which no pin removes; see docs/architecture.md, "Reproducible results".

Only BLAS is limited: torch's threads are a stage setting (`[stems] threads`, `[aesthetics] threads`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

# Read by a BLAS library when it loads: covers those a stage imports after the pin.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def one_blas_thread() -> Callable[[], None]:
    """Limit every BLAS library of this process to one thread, loaded or still to load; returns the
    function that undoes it (thread counts and environment as they were)."""
    from threadpoolctl import threadpool_limits

    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    limits = threadpool_limits(1, user_api="blas")

    def restore() -> None:
        limits.restore_original_limits()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return restore

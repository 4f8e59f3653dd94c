"""The engine's first run: numba compiles its kernels once (kept on disk); say so while it does."""

from __future__ import annotations

import sys
from typing import Any

from audiosym.dsp.resample import _polyphase_kernel
from audiosym.engine.level import envelope_kernel
from audiosym.engine.vocoder.harmonic import _reader_kernel, _synth_kernel
from audiosym.timbre.match import _apply_kernel

#: What a first run spends compiling (numba: the engine's kernels and librosa's), measured on 2
#: cores (AMD EPYC): `audiosym demo` took 33 s with an empty numba cache, 19 s with only
#: audiosym's kernels to compile, 5-6 s with both cached.
FIRST_RUN_SECONDS = 30


def engine_kernels_cached() -> bool:
    """Whether numba's on-disk cache holds, for this source, this numba and this CPU, the kernels a
    transfer-mode engine compiles on its first use (the harmonic vocoder's frame reader and
    synthesis loop, the input level, the resampler, the match correction; each compiled with
    the kernels it calls). False on a first run, after an upgrade or with a fresh
    ``NUMBA_CACHE_DIR``: building the first engine then takes ~:data:`FIRST_RUN_SECONDS` s.
    Importing these kernels compiles nothing (numba compiles on the first call)."""
    kernels: tuple[Any, ...] = (_reader_kernel(), _synth_kernel(), envelope_kernel, _polyphase_kernel, _apply_kernel())
    for kernel in kernels:  # numba dispatchers; their cache is numba's private API
        try:  # numba's cache index: {(signature, target CPU, code hash): file}, {} when absent or stale
            index = kernel._cache._cache_file._load_index()
            target = kernel.targetctx.codegen().magic_tuple()
        except Exception:  # noqa: BLE001 - numba's internals moved: claim nothing rather than something false
            return True
        if not any(key[1] == target for key in index):
            return False
    return True


def announce_first_run(log=sys.stderr) -> None:
    """Say so on ``log`` when the engine's kernels are not compiled yet (a first run is otherwise
    silent for ~:data:`FIRST_RUN_SECONDS` s); nothing when they are cached."""
    if not engine_kernels_cached():
        print(f"preparing the engine (first run only, up to ~{FIRST_RUN_SECONDS} s): compiling its kernels, "
              "which are kept on disk for later runs ...", file=log, flush=True)

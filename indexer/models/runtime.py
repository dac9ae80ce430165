"""Which engine runs a model, and what the CPU offers. Imports neither TensorFlow nor LiteRT."""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

from indexer.settings import RUNTIMES, parse_runtime

__all__ = [
    "AUTO_ORDER",
    "RUNTIMES",
    "cpu_flags",
    "cpu_has_bf16",
    "cpu_threads",
    "litert_available",
    "parse_runtime",
    "resolve_runtime",
]

#: What ``auto`` tries, fastest first on the benchmark; each must keep cosine >= 0.999
#: to the fp32 Keras output (tests/models/test_runtimes.py checks it on real photos).
AUTO_ORDER = ("litert", "function")

# Flags meaning the CPU computes bf16 natively; without them TensorFlow emulates bf16
# through fp32 and it is slower, not faster.
_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def litert_available() -> bool:
    """True when the LiteRT interpreter (PyPI ``ai-edge-litert``) can be imported."""
    try:
        return importlib.util.find_spec("ai_edge_litert") is not None
    except (ImportError, ValueError):
        return False


def resolve_runtime(runtime: str, litert: bool | None = None, *, bulk: bool = False,
                    native_bf16: bool | None = None) -> str:
    """The concrete runtime for ``runtime``: ``auto`` becomes ``bf16`` for ``bulk`` work on a
    CPU that computes bf16 natively, else the first of AUTO_ORDER here.

    ``litert`` says whether LiteRT is installed, ``native_bf16`` whether the CPU has
    AVX512_BF16 or AMX (None: look). ``bulk`` is for jobs that embed batches (ingest, add,
    re-embedding, evaluation); one-off queries (``similar``, ``serve``, the Python API)
    embed one image at a time, where LiteRT is faster and loads from its cached file in
    a fraction of a second instead of the seconds TensorFlow takes to start.

    Runtimes, all fed the same Keras model:

        keras     ``model.predict`` (the reference, slowest on small batches)
        function  one traced ``tf.function`` (no XLA)
        xla       the same with ``jit_compile=True`` (measured much slower on these CPUs)
        litert    the model converted to ``.tflite`` and run by the LiteRT interpreter with
                  XNNPACK, one thread per core
        bf16      the ``tf.function`` of the model rebuilt in bfloat16 (Keras
                  ``mixed_bfloat16``, same weights): native, and the fastest at batch 8
                  and more, on CPUs with AVX512_BF16 or AMX; emulated and slower elsewhere
        auto      bf16 for bulk work where the CPU has native bf16; otherwise litert when
                  ``ai-edge-litert`` is installed, else function (the order
                  ``python -m bench.models`` measured, fastest first, each keeping retrieval)
    """
    name = parse_runtime(runtime)
    if name != "auto":
        return name
    if bulk and (cpu_has_bf16() if native_bf16 is None else native_bf16):
        return "bf16"
    installed = litert_available() if litert is None else litert
    return next(r for r in AUTO_ORDER if r != "litert" or installed)


@functools.cache
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The first CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """True when the CPU has native bf16 arithmetic (AVX512_BF16 or AMX-BF16)."""
    return bool(_BF16_FLAGS & (cpu_flags() if flags is None else flags))


def cpu_threads() -> int:
    """Cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)

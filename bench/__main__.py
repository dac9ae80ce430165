"""``make bench``: every benchmark in one run, printed as one JSON object with its targets.

Parts, each a module of bench/ with ``measure()``: ``models`` (SGEMM rate, the default
model on each runtime, VGG16 in fp32 and bf16), ``ingest`` (end-to-end ingest against
loopback fakes versus the model alone), ``notebook`` (the original notebook's way versus
ours), ``index`` (lookups, recall, adding and memory at 10k, 100k and 1M vectors),
``serve`` (``thumbsearch serve`` under wrk at 1M vectors beside the library's own lookup
rate) and ``ray_backfill`` (``add-ids`` in one process versus on a local Ray). The object ends with
a ``targets`` block: each entry ``{"value", "target", "met"}``, computed from the raw
figures beside it. Ratios are measured within one run: absolute times on shared
machines are noisy, ratios much less so.

Run: ``make bench`` or ``.venv/bin/python -m bench [--quick] [--only PART ...]``. With both
``index`` and ``serve``, ``serve`` is measured on the index part's largest corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PARTS = ("models", "ingest", "notebook", "index", "serve", "ray_backfill")


def _target(value: float | None, target: str, met: Callable[[float], bool],
            why: str = "") -> dict[str, Any]:
    entry: dict[str, Any] = {"value": None if value is None else round(float(value), 4),
                             "target": target,
                             "met": bool(value is not None and met(float(value)))}
    if why:
        entry["note"] = why
    return entry


def targets(figures: dict[str, Any]) -> dict[str, Any]:
    """The targets block, from the raw figures of the parts."""
    models, ingest, notebook = (figures.get(p, {}) for p in ("models", "ingest", "notebook"))
    index, serve = figures.get("index", {}), figures.get("serve", {})
    sizes = index.get("sizes", {})
    largest = max(sizes, key=int) if sizes else None
    smallest = min(sizes, key=int) if sizes else None
    add_ratio = None
    if largest and smallest and largest != smallest:
        add_ratio = sizes[largest]["add_1000_s"] / sizes[smallest]["add_1000_s"]
    big = sizes.get(largest, {}) if largest else {}
    bf16 = models.get("vgg16_bf16_speedup")
    return {
        "ingest_vs_model": _target(ingest.get("ingest_vs_model"), ">= 0.9",
                                   lambda v: v >= 0.9),
        "nonmodel_cpu_vs_model": _target(ingest.get("nonmodel_cpu_vs_model"), "<= 0.15",
                                         lambda v: v <= 0.15),
        "default_vs_keras_predict": _target(models.get("chosen_vs_keras_predict"), ">= 2.0",
                                            lambda v: v >= 2.0),
        "vgg16_sgemm_fraction": _target(models.get("vgg16_fastest_sgemm_fraction"), ">= 0.85",
                                        lambda v: v >= 0.85),
        "vgg16_bf16_speedup": _target(
            bf16, ">= 1.5 where the CPU has AVX512_BF16 or AMX, recall@1 and mAP dropping "
            "at most 0.01", lambda v: v >= 1.5 and bool(models.get("cpu_bf16"))
            and max(float(models.get("vgg16_bf16_recall1_drop", 1.0)),
                    float(models.get("vgg16_bf16_map_drop", 1.0))) <= 0.01,
            "" if models.get("cpu_bf16") else "this CPU has no AVX512_BF16 or AMX: bf16 is "
            "emulated, so production stays in fp32"),
        "vs_notebook_default": _target(notebook.get("vs_notebook_default"), ">= 25",
                                       lambda v: v >= 25),
        "vs_notebook_vgg16": _target(notebook.get("vs_notebook_vgg16"), ">= 1.5",
                                     lambda v: v >= 1.5),
        "add_1000_at_1m_vs_10k": _target(add_ratio, "<= 1.3", lambda v: v <= 1.3),
        "lookup_p50_ms_1m": _target(big.get("lookup_p50_ms"), "<= 5", lambda v: v <= 5),
        "lookup_p99_ms_1m": _target(big.get("lookup_p99_ms"), "<= 20", lambda v: v <= 20),
        "lookup_p99_cold_ms_1m": _target(
            big.get("lookup_cold_p99_ms"), "<= 20, the database's pages dropped first",
            lambda v: v <= 20),
        "recall_at_10_1m": _target(big.get("recall_at_10"), ">= 0.95", lambda v: v >= 0.95),
        "bytes_per_vector_1m": _target(big.get("bytes_per_vector"), "<= 1024",
                                       lambda v: v <= 1024),
        "int8_speedup": _target(models.get("int8_speedup"), ">= 1.7 against fp32 LiteRT",
                                lambda v: v >= 1.7),
        "int8_recall1_drop": _target(
            None if "int8_recall1_drop" not in models
            else max(models["int8_recall1_drop"], models.get("int8_map_drop", 1.0)),
            "<= 0.005 on every set (recall@1 and mAP)", lambda v: v <= 0.005),
        "serve_vs_library_16": _target(serve.get("serve_vs_library_16"), ">= 0.5",
                                       lambda v: v >= 0.5),
        "serve_p99_ms_16": _target(serve.get("serve_p99_ms_16"), "<= 50", lambda v: v <= 50),
    }


def main() -> None:
    """Run the parts and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS),
                        help="run only these parts")
    parser.add_argument("--merge", type=Path, metavar="FILE",
                        help="start from the figures of an earlier run (its JSON) and replace "
                             "the parts run now; the targets are computed again")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    figures: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()}}
    if args.merge is not None:
        figures = json.loads(args.merge.read_text(encoding="utf-8"))
        figures.pop("targets", None)
    def done(part: str, seconds: float) -> None:
        figures[part]["bench_seconds"] = round(seconds, 1)
        print(f"bench: {part} done in {figures[part]['bench_seconds']} s", file=sys.stderr,
              flush=True)

    for part in args.only:
        if part == "serve" and "index" in args.only:
            continue  # measured on the index part's largest corpus
        started = time.perf_counter()
        module = __import__(f"bench.{part}", fromlist=["measure"])
        if part == "index" and "serve" in args.only:
            # One corpus for both: serve is loaded on the index part's largest one before it
            # is deleted, instead of building a second million vectors (about 20 minutes).
            from bench import serve

            serve_s = 0.0

            def then(home: Path, videos: list[str]) -> None:
                nonlocal serve_s
                began = time.perf_counter()
                figures["serve"] = serve.measure(quick=args.quick, home=home, videos=videos)
                serve_s = time.perf_counter() - began
                done("serve", serve_s)

            figures[part] = module.measure(quick=args.quick, then=then)
            done(part, time.perf_counter() - started - serve_s)
            continue
        figures[part] = module.measure(quick=args.quick)
        done(part, time.perf_counter() - started)
    figures["targets"] = targets(figures)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()

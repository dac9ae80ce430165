"""The targets block of `make bench` and the README tables made from it."""

from __future__ import annotations

from typing import Any

from bench.__main__ import targets
from bench.table import figures_table, targets_table

NAMES = ["ingest_vs_model", "nonmodel_cpu_vs_model", "default_vs_keras_predict",
         "vgg16_sgemm_fraction",
         "vgg16_bf16_speedup", "vs_notebook_default", "vs_notebook_vgg16",
         "add_1000_at_1m_vs_10k", "lookup_p50_ms_1m", "lookup_p99_ms_1m",
         "lookup_p99_cold_ms_1m", "recall_at_10_1m",
         "bytes_per_vector_1m", "int8_speedup", "int8_recall1_drop",
         "serve_vs_library_16", "serve_p99_ms_16"]


def _figures(cpu_bf16: bool) -> dict[str, Any]:
    """Figures shaped as the bench parts return them (values made up for the test)."""
    return {
        "models": {"sgemm_gflops": 100.0, "default_model": "m",
                   "default_model_img_s": {"keras_predict": 50.0, "litert": 150.0},
                   "default_model_best_batch": {"keras_predict": 32, "litert": 8},
                   "chosen_runtime": "litert", "chosen_vs_keras_predict": 3.0,
                   "vgg16_fastest_sgemm_fraction": 0.8, "vgg16_bf16_speedup": 1.6,
                   "vgg16_bf16_recall1_drop": 0.005, "vgg16_bf16_map_drop": 0.0,
                   "cpu_bf16": cpu_bf16,
                   "int8_speedup": 1.8, "int8_recall1_drop": 0.0, "int8_map_drop": 0.012},
        "ingest": {"ingest_vs_model": 0.95, "ingest_img_s": 95.0, "model_img_s": 100.0,
                   "nonmodel_cpu_vs_model": 0.2, "nonmodel_cpu_us": 1000.0,
                   "model_cpu_us": 5000.0},
        "notebook": {"vs_notebook_default": 30.0, "vs_notebook_vgg16": 1.2},
        "index": {"sizes": {
            "10000": {"type": "flat", "add_1000_s": 0.5, "lookup_p50_ms": 1.0,
                      "recall_at_10": 1.0, "bytes_per_vector": 5128},
            "1000000": {"type": "ivf", "params": {"nprobe": 16}, "add_1000_s": 0.6,
                        "lookup_p50_ms": 6.0, "lookup_p99_ms": 15.0,
                        "lookup_cold_p50_ms": 9.0, "lookup_cold_p99_ms": 25.0,
                        "recall_at_10": 0.96,
                        "bytes_per_vector": 1000}}},
        "serve": {"vectors": 1_000_000, "serve_vs_library_16": 0.6, "serve_p99_ms_16": 60.0,
                  "library_1_thread_s": 400.0, "library_2_threads_s": 500.0,
                  "library_upload_1_thread_s": 40.0, "model_batch_1_img_s": 50.0,
                  "model_batch_32_img_s": 120.0,
                  "ids": {"16": {"requests_s": 300.0, "p50_ms": 40.0, "p99_ms": 60.0}},
                  "upload": {"4": {"requests_s": 45.0, "p50_ms": 80.0, "p99_ms": 150.0}}},
    }


def test_every_target_is_computed_from_the_raw_figures() -> None:
    block = targets(_figures(cpu_bf16=True))
    assert list(block) == NAMES
    assert {name: entry["value"] for name, entry in block.items()} == {
        "ingest_vs_model": 0.95, "nonmodel_cpu_vs_model": 0.2, "default_vs_keras_predict": 3.0,
        "vgg16_sgemm_fraction": 0.8, "vgg16_bf16_speedup": 1.6, "vs_notebook_default": 30.0,
        "vs_notebook_vgg16": 1.2, "add_1000_at_1m_vs_10k": 1.2, "lookup_p50_ms_1m": 6.0,
        "lookup_p99_ms_1m": 15.0, "lookup_p99_cold_ms_1m": 25.0,
        "recall_at_10_1m": 0.96, "bytes_per_vector_1m": 1000.0,
        "int8_speedup": 1.8, "int8_recall1_drop": 0.012, "serve_vs_library_16": 0.6,
        "serve_p99_ms_16": 60.0}
    missed = {name for name, entry in block.items() if not entry["met"]}
    # int8's mAP drop (0.012) counts against it though its recall@1 did not move.
    assert missed == {"nonmodel_cpu_vs_model", "vgg16_sgemm_fraction", "vs_notebook_vgg16",
                      "lookup_p50_ms_1m", "lookup_p99_cold_ms_1m", "int8_recall1_drop",
                      "serve_p99_ms_16"}


def test_bf16_counts_only_on_a_cpu_that_has_it() -> None:
    block = targets(_figures(cpu_bf16=False))
    assert not block["vgg16_bf16_speedup"]["met"]
    assert "AVX512_BF16" in block["vgg16_bf16_speedup"]["note"]


def test_bf16_fails_only_on_a_drop_in_retrieval() -> None:
    figures = _figures(cpu_bf16=True)
    assert targets(figures)["vgg16_bf16_speedup"]["met"]
    figures["models"]["vgg16_bf16_map_drop"] = 0.02
    assert not targets(figures)["vgg16_bf16_speedup"]["met"]


def test_a_part_not_run_leaves_its_targets_unmet() -> None:
    block = targets({"serve": {"serve_vs_library_16": 0.5, "serve_p99_ms_16": 50.0}})
    assert block["serve_vs_library_16"]["met"] and block["serve_p99_ms_16"]["met"]
    assert block["lookup_p50_ms_1m"] == {"value": None, "target": "<= 5", "met": False}


def test_tables_name_every_target_and_size() -> None:
    figures = _figures(cpu_bf16=True)
    figures["targets"] = targets(figures)
    rows = targets_table(figures).splitlines()
    assert len(rows) == 2 + len(NAMES)
    assert "| `lookup_p50_ms_1m` | 6 | <= 5 | no |" in rows
    raw = figures_table(figures)
    assert "1,000,000 vectors (ivf, nprobe 16): lookup p50 / p99 (ms)" in raw
    assert "| 1,000,000 vectors: lookup p50 / p99, database not cached (ms) | 9 / 25 |" in raw
    assert "| m on litert (img/s, batch 8) | 150 |" in raw
    assert "| ingest CPU a thumbnail besides the model / the model's (µs) | 1,000 / 5,000 |" in raw
    assert ("| `thumbsearch serve` at 1,000,000 vectors, stored-id lookups, 16 connections "
            "(req/s; p50 / p99 ms) | 300; 40 / 60 |") in raw
    assert "the model alone at batch 1 / 32 (img/s) | 40; 50 / 120 |" in raw

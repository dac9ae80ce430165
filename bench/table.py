"""Print the README's "Performance" tables from the JSON object `make bench` wrote.

Two tables: the targets block (value, target, met) and the raw figures they come from
(the SGEMM rate, model throughput per runtime, ingest and notebook rates, the index at
each size and per type, the server under load).

Run: ``make bench`` (which writes build/bench.json), then
``.venv/bin/python -m bench.table build/bench.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["figures_table", "main", "targets_table"]


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def targets_table(figures: dict[str, Any]) -> str:
    """One row a target: name, measured value, target, met (and why, where noted)."""
    lines = ["| target | measured | wanted | met |", "| --- | --- | --- | --- |"]
    for name, entry in figures.get("targets", {}).items():
        met = "yes" if entry["met"] else "no"
        if entry.get("note"):
            met += f" ({entry['note']})"
        lines.append(f"| `{name}` | {_fmt(entry['value'])} | {entry['target']} | {met} |")
    return "\n".join(lines)


def _rows(figures: dict[str, Any]) -> list[tuple[str, Any]]:
    models, ingest = figures.get("models", {}), figures.get("ingest", {})
    notebook, serve = figures.get("notebook", {}), figures.get("serve", {})
    index = figures.get("index", {})
    rows: list[tuple[str, Any]] = []
    if models:
        rows.append(("SGEMM, numpy float32 (GFLOP/s)", models.get("sgemm_gflops")))
        for runtime, rate in models.get("default_model_img_s", {}).items():
            batch = models.get("default_model_best_batch", {}).get(runtime)
            rows.append((f"{models.get('default_model')} on {runtime} (img/s, batch {batch})",
                         rate))
        rows.append(("runtime `auto` picks for bulk embedding / one-off queries",
                     f"{_fmt(models.get('chosen_runtime'))} / "
                     f"{_fmt(models.get('query_runtime'))}"))
        if "bf16_img_s" in models:
            rows.append((f"{models.get('default_model')} in bf16 (img/s, batch "
                         f"{models.get('bf16_best_batch')}; vs fp32 LiteRT)",
                         f"{_fmt(models.get('bf16_img_s'))} "
                         f"({_fmt(models.get('bf16_speedup_vs_litert'))}x)"))
            rows.append(("bf16: worst cosine to fp32; largest recall@1 / mAP drop",
                         f"{_fmt(models.get('bf16_cosine_min'))}; "
                         f"{_fmt(models.get('bf16_recall1_drop'))} / "
                         f"{_fmt(models.get('bf16_map_drop'))}"))
        for runtime, cosine in models.get("default_model_cosine_min", {}).items():
            rows.append((f"worst cosine to Keras fp32, {runtime}", cosine))
        for runtime, rate in models.get("vgg16_img_s", {}).items():
            rows.append((f"vgg16 fp32 on {runtime} (img/s)", rate))
        rows.append(("vgg16 GFLOP an image", models.get("vgg16_gflop_per_image")))
        rows.append(("vgg16 bf16 (img/s; CPU has native bf16: "
                     f"{_fmt(models.get('cpu_bf16'))})", models.get("vgg16_bf16_img_s")))
    if ingest:
        rows.append(("ingest end to end, loopback fakes (img/s)", ingest.get("ingest_img_s")))
        rows.append(("the model alone, same run (img/s)", ingest.get("model_img_s")))
        rows.append(("ingest CPU a thumbnail besides the model / the model's (µs)",
                     f"{_fmt(ingest.get('nonmodel_cpu_us'))} / "
                     f"{_fmt(ingest.get('model_cpu_us'))}"))
    if notebook:
        rows.append(("notebook-style pipeline, VGG16 (videos/s)",
                     notebook.get("notebook_vgg16_img_s")))
        rows.append(("ours, VGG16 (videos/s)", notebook.get("ours_vgg16_img_s")))
        rows.append(("ours, default model (videos/s)", notebook.get("ours_default_img_s")))
    for size, at in sorted(index.get("sizes", {}).items(), key=lambda kv: int(kv[0])):
        label = f"{int(size):,} vectors ({at.get('type')}"
        params = at.get("params") or {}
        if params:
            label += ", " + ", ".join(f"{k} {v}" for k, v in params.items())
        label += ")"
        rows.append((f"{label}: lookup p50 / p99 (ms)",
                     f"{_fmt(at.get('lookup_p50_ms'))} / {_fmt(at.get('lookup_p99_ms'))}"))
        if "lookup_cold_p99_ms" in at:
            rows.append((f"{int(size):,} vectors: lookup p50 / p99, database not cached (ms)",
                         f"{_fmt(at.get('lookup_cold_p50_ms'))} / "
                         f"{_fmt(at.get('lookup_cold_p99_ms'))}"))
        rows.append((f"{int(size):,} vectors: recall@10 vs exact", at.get("recall_at_10")))
        rows.append((f"{int(size):,} vectors: adding 1,000 (s)", at.get("add_1000_s")))
        if "cli_similar_s" in at:
            rows.append((f"{int(size):,} vectors: `thumbsearch similar ID` / `--help` (s)",
                         f"{_fmt(at.get('cli_similar_s'))} / {_fmt(at.get('cli_help_s'))}"))
        rows.append((f"{int(size):,} vectors: bytes a vector, peak RSS (MiB)",
                     f"{_fmt(at.get('bytes_per_vector'))}, {_fmt(at.get('peak_rss_mib'))}"))
    per_type = index.get("per_type", {})
    for kind in ("flat", "ivf", "hnsw"):
        if kind in per_type:
            at = per_type[kind]
            rows.append((f"{kind} at {per_type.get('at_vectors', 0):,} vectors: bytes a "
                         "vector, peak RSS (MiB)",
                         f"{_fmt(at.get('bytes_per_vector'))}, {_fmt(at.get('peak_rss_mib'))}"))
    if serve:
        rows += _serve_rows(serve)
    return rows


def _serve_rows(serve: dict[str, Any]) -> list[tuple[str, Any]]:
    at = f"at {serve.get('vectors', 0):,} vectors"
    rows: list[tuple[str, Any]] = []
    for kind, label in (("ids", "stored-id lookups"), ("upload", "image uploads")):
        for connections, run in serve.get(kind, {}).items():
            rows.append((f"`thumbsearch serve` {at}, {label}, {connections} connections "
                         "(req/s; p50 / p99 ms)",
                         f"{_fmt(run.get('requests_s'))}; {_fmt(run.get('p50_ms'))} / "
                         f"{_fmt(run.get('p99_ms'))}"))
    rows.append((f"the library's lookups {at}, 1 / 2 threads (lookups/s)",
                 f"{_fmt(serve.get('library_1_thread_s'))} / "
                 f"{_fmt(serve.get('library_2_threads_s'))}"))
    batched = next((k for k in serve
                    if k.startswith("model_batch_") and k != "model_batch_1_img_s"), None)
    rows.append(("the library's uploads, 1 thread; the model alone at batch 1"
                 + (f" / {batched.split('_')[2]}" if batched else "") + " (img/s)",
                 f"{_fmt(serve.get('library_upload_1_thread_s'))}; "
                 f"{_fmt(serve.get('model_batch_1_img_s'))}"
                 + (f" / {_fmt(serve.get(batched))}" if batched else "")))
    return rows


def figures_table(figures: dict[str, Any]) -> str:
    """The raw figures the targets are computed from, one a row."""
    lines = ["| figure | value |", "| --- | --- |"]
    lines += [f"| {name} | {_fmt(value)} |" for name, value in _rows(figures)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print both tables for the JSON file given (default build/bench.json)."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "build/bench.json")
    figures = json.loads(path.read_text(encoding="utf-8"))
    print(targets_table(figures))
    print()
    print(figures_table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

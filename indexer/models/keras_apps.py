"""``keras.applications`` backbones as alternative embedders (VGG16 as in the notebook,
ResNet50, EfficientNetB0)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from indexer.bounds import quote
from indexer.errors import ModelError, one_line
from indexer.models.base import FloatArray, GraphEmbedder
from indexer.models.preprocess import Preprocessing

if TYPE_CHECKING:
    import keras

__all__ = [
    "KERAS_APPS",
    "KerasApp",
    "build_keras_app",
    "load_keras_embedder",
    "scale_caffe",
    "scale_identity",
]

INPUT_SIZE = (224, 224)

# ImageNet channel means in BGR order, as keras.applications' "caffe" preprocessing uses.
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def scale_caffe(rgb: FloatArray) -> FloatArray:
    """0..255 RGB -> BGR minus the ImageNet means (vgg16/resnet50 ``preprocess_input``)."""
    return (rgb[..., ::-1] - _CAFFE_MEAN_BGR).astype(np.float32)


def scale_identity(rgb: FloatArray) -> FloatArray:
    """0..255 RGB unchanged (the model rescales inside, as Keras' EfficientNets do)."""
    return np.ascontiguousarray(rgb, dtype=np.float32)


@dataclass(frozen=True)
class KerasApp:
    """One ``keras.applications`` backbone, headless, with its pooling and scaling."""

    constructor: str
    pooling: str
    dim: int
    scale: Callable[[FloatArray], FloatArray]


KERAS_APPS: dict[str, KerasApp] = {
    "vgg16": KerasApp("VGG16", "max", 512, scale_caffe),
    "resnet50": KerasApp("ResNet50", "avg", 2048, scale_caffe),
    "efficientnetb0": KerasApp("EfficientNetB0", "avg", 1280, scale_identity),
}


def _app(model_id: str) -> KerasApp:
    try:
        return KERAS_APPS[model_id]
    except KeyError:
        raise ModelError(
            f"unknown keras.applications model {quote(model_id)}; known: {', '.join(KERAS_APPS)}"
        ) from None


def build_keras_app(model_id: str, weights: str | Path | None = "imagenet",
                    pooled: bool = True) -> keras.Model:
    """The headless backbone on 224x224 input; weights: "imagenet", a file, or None.

    ``pooled`` False leaves the last feature map (n, 7, 7, c) unpooled.
    """
    app = _app(model_id)
    if weights is not None and weights != "imagenet":
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"weights file for {model_id} not found: {path}")
        weights = str(path)
    import keras

    constructor = getattr(keras.applications, app.constructor)
    try:
        # Keras prints its download progress on stdout, which belongs to the CLI's output.
        with contextlib.redirect_stdout(sys.stderr):
            model: keras.Model = constructor(
                include_top=False,
                weights=weights,
                input_shape=(*INPUT_SIZE, 3),
                pooling=app.pooling if pooled else None,
            )
    except Exception as exc:  # Keras raises bare Exception for download failures
        message = one_line(exc)
        if weights == "imagenet" and ("URL fetch failure" in message or "hash" in message):
            raise ModelError(
                f"the ImageNet weights for {model_id} are not in Keras' cache and could not "
                f"be downloaded ({message}): run once where there is internet, pass "
                f"--weights FILE or put {model_id}.weights.h5 in THUMBSEARCH_WEIGHTS_DIR, "
                "or use the offline default efficientnet-lite0"
            ) from exc
        raise ModelError(f"cannot build {model_id} with weights {weights}: {message}") from exc
    return model


def load_keras_embedder(
    model_id: str, weights: str | Path | None = None, *, embedder_id: str | None = None,
    pooling: str | None = None, preprocessing: Preprocessing | None = None,
    runtime: str = "function", regions: bool = False, flip: bool = False,
) -> GraphEmbedder:
    """Embedder for a ``keras.applications`` backbone; ``weights`` None means ImageNet.

    ``pooling`` other than the backbone's own (avg, max or gem), or any with ``regions``
    (R-MAC), pools its feature map here; ``flip`` embeds each image with its mirror.

    Their ImageNet weights are downloaded by Keras into its cache on first use; machines
    without internet pass a local weights file instead (one written by ``save_weights`` of
    the same architecture, or a Keras ``.h5`` weights file). Keras' own EfficientNetB0
    ImageNet file needs an input rescaling that Keras adds only for ``weights="imagenet"``:
    copy that file into the Keras cache (``~/.keras/models/``) rather than passing it.
    """
    app = _app(model_id)
    own = (pooling is None or pooling == app.pooling) and not regions
    model = build_keras_app(model_id, "imagenet" if weights is None else weights, pooled=own)
    embedder = GraphEmbedder(embedder_id or model_id, model, app.scale,
                             preprocessing=preprocessing,
                             pooling=None if own else (pooling or app.pooling),
                             runtime=runtime, regions=regions, flip=flip)
    if embedder.dim != app.dim:
        raise ModelError(f"{model_id} gives {embedder.dim}-d features, expected {app.dim}")
    return embedder


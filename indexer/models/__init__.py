"""Embedding models: ids and specs, the Embedder protocol, and ``load_embedder``. Cheap to
import: TensorFlow and Keras are imported only when a model is built."""

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

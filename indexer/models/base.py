"""The Embedder protocol and the TensorFlow-backed implementation shared by every model."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from indexer.bounds import quote
from indexer.errors import ImageDecodeError, ModelError, one_line
from indexer.models.preprocess import Preprocessing, prepare_rgb

if TYPE_CHECKING:
    import keras
    from PIL import Image

__all__ = [
    "GEM_P",
    "GRAPH_RUNTIMES",
    "RMAC_SCALES",
    "Embedder",
    "GraphEmbedder",
    "bf16_copy",
    "l2_rows",
    "pool_feature_map",
    "pool_regions",
    "rmac_regions",
    "squash_rgb",
]

FloatArray = np.ndarray[Any, np.dtype[np.float32]]

#: Exponent of generalised-mean (GeM) pooling; 3 is the usual choice for CNN retrieval.
GEM_P = 3.0

#: Scales of R-MAC's regions: 1 (the whole map), then 2x2 and 3x3 overlapping squares.
RMAC_SCALES = 3

# R-MAC's overlap between neighbouring regions along the longer side (Tolias et al. 2016).
_RMAC_OVERLAP = 0.4


@runtime_checkable
class Embedder(Protocol):
    """Turns images into fixed-length float32 vectors."""

    model_id: str
    dim: int
    input_size: tuple[int, int]  # (height, width) in pixels

    def preprocess(self, image: Image.Image) -> FloatArray:
        """One image of any mode -> (h, w, 3) float32 with the model's scaling (thread-safe)."""
        ...

    def embed(self, batch: FloatArray) -> FloatArray:
        """(n, h, w, 3) float32 preprocessed images -> (n, dim) raw (unnormalised) features."""
        ...


def squash_rgb(image: Image.Image, size: tuple[int, int]) -> FloatArray:
    """Convert to RGB and resize to (height, width) ignoring aspect, bilinear; float32 0..255."""
    from PIL import Image

    height, width = size
    try:
        if image.mode == "P" and "transparency" in image.info:
            image = image.convert("RGBA")  # PIL warns when a transparent palette goes to RGB
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.float32)
    except (OSError, ValueError) as exc:  # PIL decodes lazily, so a truncated file fails here
        raise ImageDecodeError(f"cannot decode image: {exc}") from exc


def _region_starts(size: int, side: int, count: int) -> list[int]:
    """Where ``count`` squares of ``side`` start along ``size``, spread evenly (cirtorch's
    rounding: floor of the centre less half a side)."""
    half = int(np.floor(side / 2 - 1))
    gap = 0.0 if count == 1 else (size - side) / (count - 1)
    return [int(np.floor(half + i * gap)) - half for i in range(count)]


def rmac_regions(height: int, width: int, scales: int = RMAC_SCALES
                 ) -> list[tuple[int, int, int]]:
    """R-MAC's regions of a (height, width) feature map as (top, left, side) squares.

    At scale l the side is 2 min(h, w) / (l + 1) and the squares are spread evenly with
    about 40% overlap, l of them across the shorter side and a few more along the longer
    (Tolias, Sicre and Jegou 2016; the layout of Radenovic's cirtorch ``rmac``).
    """
    short, long = min(height, width), max(height, width)
    extra = 0
    if long > short:  # how many more regions the longer side takes: overlap nearest 40%
        step = (long - short) / (np.arange(2, 8) - 1)
        extra = int(np.argmin(np.abs((short * short - short * step) / (short * short)
                                     - _RMAC_OVERLAP))) + 1
    extra_h, extra_w = (extra, 0) if height > width else (0, extra)
    regions: list[tuple[int, int, int]] = []
    for level in range(1, scales + 1):
        side = 2 * short // (level + 1)
        if side == 0:
            continue
        regions.extend((top, left, side)
                       for top in _region_starts(height, side, level + extra_h)
                       for left in _region_starts(width, side, level + extra_w))
    return regions


def l2_rows(tensor: Any) -> Any:
    """(n, c) tensor with each row scaled to unit length (zero rows stay zero)."""
    import tensorflow as tf

    squares = tf.reduce_sum(tensor * tensor, axis=1, keepdims=True)
    return tensor * tf.math.rsqrt(tf.maximum(squares, 1e-12))


def pool_regions(feature_map: Any, pooling: str) -> Any:
    """(n, h, w, c) tensor -> (n, c): R-MAC, each region of ``rmac_regions`` pooled by
    ``pooling`` (max or gem) and L2-normalised, summed (the caller normalises the sum)."""
    _, height, width, _ = feature_map.shape
    pooled = [l2_rows(pool_feature_map(feature_map[:, top:top + side, left:left + side, :],
                                       pooling))
              for top, left, side in rmac_regions(int(height), int(width))]
    total = pooled[0]
    for part in pooled[1:]:
        total = total + part
    return total


def pool_feature_map(feature_map: Any, pooling: str, *, regions: bool = False) -> Any:
    """(n, h, w, c) tensor -> (n, c) by "avg", "max" or "gem" (GeM, p = GEM_P) pooling,
    over the whole map or, with ``regions``, over R-MAC's regions (``pool_regions``)."""
    import tensorflow as tf

    if regions:
        return pool_regions(feature_map, pooling)

    if pooling == "avg":
        return tf.reduce_mean(feature_map, axis=[1, 2])
    if pooling == "max":
        return tf.reduce_max(feature_map, axis=[1, 2])
    if pooling == "gem":
        # Clamped at a small positive value, as GeM is defined on non-negative activations.
        clamped = tf.maximum(feature_map, 1e-6)
        return tf.pow(tf.reduce_mean(tf.pow(clamped, GEM_P), axis=[1, 2]), 1.0 / GEM_P)
    raise ModelError(f"unknown pooling {quote(pooling)}; known: avg, max, gem")


#: The TensorFlow runtimes GraphEmbedder offers (indexer.models.runtime describes them).
GRAPH_RUNTIMES = ("keras", "function", "xla", "bf16")


def bf16_copy(model: keras.Model) -> keras.Model:
    """``model`` rebuilt to compute in bfloat16 (Keras ``mixed_bfloat16``: weights kept in
    float32, each layer casts them and its input to bf16), with the same weights.

    Native on CPUs with AVX512_BF16 or AMX (``runtime.cpu_has_bf16``), where TensorFlow's
    oneDNN kernels run it several times faster than float32; emulated, and slower, elsewhere.
    """
    import keras

    def layer_in_bf16(layer: Any) -> Any:
        config = layer.get_config()
        if not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=layer_in_bf16)
        copy.set_weights(model.get_weights())
    except Exception as exc:  # Keras raises many types for models it cannot clone
        raise ModelError(f"cannot run {model.name} in bf16: {one_line(exc)}") from exc
    return copy


class GraphEmbedder:
    """An Embedder running a Keras model through TensorFlow: a traced ``tf.function`` by
    default, or ``model.predict`` (runtime "keras"), or XLA (runtime "xla").

    Nothing here imports TensorFlow at module level: it is imported when a model is built.
    """

    def __init__(
        self, model_id: str, model: keras.Model, scale: Callable[[FloatArray], FloatArray],
        *, preprocessing: Preprocessing | None = None, pooling: str | None = None,
        runtime: str = "function", regions: bool = False, flip: bool = False,
    ) -> None:
        """Wrap ``model`` ((n, h, w, 3) -> (n, dim)); ``scale`` maps 0..255 RGB to its input.

        With ``pooling``, ``model`` gives a (n, h', w', c) feature map that is pooled here
        (over R-MAC's regions with ``regions``). With ``flip`` each image is run beside its
        mirror image in the same call and the two unit vectors are summed.
        """
        if runtime not in GRAPH_RUNTIMES:
            raise ModelError(f"unknown TensorFlow runtime {quote(runtime)}; known: "
                             f"{', '.join(GRAPH_RUNTIMES)}")
        self.model_id = model_id
        if runtime == "bf16":
            model = bf16_copy(model)
        self.model = model
        self.scale = scale
        self.preprocessing = preprocessing or Preprocessing()
        self.pooling = pooling
        self.regions = regions
        self.flip = flip
        self.runtime = runtime
        _, height, width, _ = model.input_shape
        self.input_size = (int(height), int(width))
        self.dim = int(model.output_shape[-1])
        self._features: Any = self._predict
        # One call at a time: Keras' predict is not thread-safe, and calls overlapping from
        # a server's threads would only compete for the same cores.
        self._lock = threading.Lock()
        if runtime != "keras":
            traced = self.trace(model, pooling, jit_compile=runtime == "xla")
            # Trace now, so the first batch's timing is the model's, not the tracing's.
            traced.get_concrete_function()
            self._features = traced

    def trace(self, model: keras.Model, pooling: str | None = None, *,
              jit_compile: bool = False) -> Any:
        """A ``tf.function`` calling ``model`` in inference mode on this input size, pooled
        by ``pooling`` (with this embedder's regions and flip)."""
        import tensorflow as tf

        height, width = self.input_size
        spec = tf.TensorSpec([None, height, width, 3], tf.float32)

        def call(x: Any) -> Any:
            if self.flip:
                x = tf.concat([x, tf.reverse(x, axis=[2])], axis=0)
            return self._head(tf.cast(model(x, training=False), tf.float32), pooling)

        # A fixed signature traces once. XLA is measured by bench.models: on these CPUs it
        # is several times slower than the plain graph, so only runtime "xla" asks for it.
        return tf.function(call, input_signature=[spec], jit_compile=jit_compile)

    def _head(self, out: Any, pooling: str | None) -> Any:
        """The model's output (of 2n images with flip) -> (n, dim) features."""
        import tensorflow as tf

        if pooling is not None:
            out = pool_feature_map(out, pooling, regions=self.regions)
        if not self.flip:
            return out
        # The first half are the images, the second their mirrors: the mean of unit vectors.
        images, mirrors = tf.split(out, 2, axis=0)
        return l2_rows(images) + l2_rows(mirrors)

    def concrete_function(self) -> Any:
        """The embedding graph (no XLA) as a concrete function, for conversion to LiteRT."""
        return self.trace(self.model, self.pooling).get_concrete_function()

    def _predict(self, array: FloatArray) -> Any:
        if self.flip:
            array = np.concatenate([array, array[:, :, ::-1]])
        out = self.model.predict(array, batch_size=max(1, len(array)), verbose=0)
        return self._head(out, self.pooling) if self.flip or self.pooling else out

    def preprocess(self, image: Image.Image) -> FloatArray:
        """One image of any mode -> (h, w, 3) float32 with the model's scaling (thread-safe)."""
        return self.scale(prepare_rgb(image, self.input_size, self.preprocessing))

    def _check(self, batch: FloatArray) -> FloatArray:
        array = np.asarray(batch, dtype=np.float32)
        height, width = self.input_size
        if array.ndim != 4 or array.shape[1:] != (height, width, 3):
            raise ModelError(
                f"{self.model_id} expects a batch of shape (n, {height}, {width}, 3), "
                f"got {array.shape}"
            )
        return array

    def run(self, fn: Any, batch: FloatArray, width: int) -> FloatArray:
        """Check ``batch``, call the traced ``fn`` on it and return (n, width) float32."""
        array = self._check(batch)
        if array.shape[0] == 0:
            return np.zeros((0, width), dtype=np.float32)
        try:
            result = fn(array)
            return np.asarray(getattr(result, "numpy", lambda: result)(), dtype=np.float32)
        except Exception as exc:  # TensorFlow raises many types; translate them all here
            raise ModelError(f"{self.model_id} failed to run: {one_line(exc)}") from exc

    def embed(self, batch: FloatArray) -> FloatArray:
        """(n, h, w, 3) float32 preprocessed images -> (n, dim) raw (unnormalised) features."""
        with self._lock:
            return self.run(self._features, batch, self.dim)

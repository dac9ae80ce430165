"""The LiteRT runtime: a model converted once to ``.tflite`` (float32, or int8-quantised),
cached on disk, and run by the LiteRT interpreter (PyPI ``ai-edge-litert``) with XNNPACK."""

from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from indexer.atomic import atomic_write
from indexer.errors import ModelConversionError, ModelError, disk_full, one_line
from indexer.models.base import FloatArray
from indexer.models.preprocess import Preprocessing, prepare_rgb
from indexer.models.runtime import cpu_threads
from indexer.writable import path_problem

if TYPE_CHECKING:
    from indexer.models.base import GraphEmbedder

__all__ = [
    "LITERT_BATCH",
    "TFLITE_FORMAT",
    "LiteRtEmbedder",
    "cached_tflite",
    "convert_to_tflite",
    "file_digest",
    "load_litert_embedder",
]

log = logging.getLogger(__name__)

#: Images per interpreter call: XNNPACK's throughput on these CPUs peaks at small batches
#: (bench.models measures 1..32), so larger batches are run in chunks of this size.
LITERT_BATCH = 8

#: Bumped when the conversion changes, so older cached files are not reused.
TFLITE_FORMAT = 1

_DIGEST_CHARS = 16


def file_digest(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, shortened to 16 characters."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ModelError(f"cannot read weights file {path}: {exc}") from exc
    return digest.hexdigest()[:_DIGEST_CHARS]


def _bytes_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:_DIGEST_CHARS]


def _mute_stderr() -> Any:
    """A context manager pointing file descriptor 2 at /dev/null (the converter's C++ logs)."""
    from indexer.quiet import muted_stderr

    return muted_stderr()


def convert_to_tflite(embedder: GraphEmbedder, calibration: FloatArray | None = None) -> bytes:
    """The embedder's graph (scaled images -> features) as a ``.tflite`` flatbuffer: float32,
    or with ``calibration`` ((n, h, w, 3) images preprocessed as the embedder preprocesses)
    post-training int8 quantised: int8 weights and activations, whose ranges are measured on
    the calibration images, with float32 input and output."""
    try:
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )

        # Frozen first: converting the live function keeps the weights as resource
        # variables, which the interpreter runs uninitialised (NaN features).
        frozen = convert_variables_to_constants_v2(embedder.concrete_function())
        with _mute_stderr(), warnings.catch_warnings():  # absl and C++ logs on stderr
            # With float input and output there are no quantised inputs to have statistics
            # for; the converter warns about it all the same.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
            if calibration is not None:
                images = np.asarray(calibration, dtype=np.float32)
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.representative_dataset = lambda: ([images[i:i + 1]]
                                                             for i in range(len(images)))
                # Every op in int8 (XNNPACK's integer kernels); conversion fails otherwise.
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            data = converter.convert()
    except Exception as exc:  # the converter raises ConverterError, ValueError, ...
        raise ModelConversionError(
            f"cannot convert {embedder.model_id} to LiteRT: {one_line(exc)}; "
            "set THUMBSEARCH_RUNTIME=function to run it on TensorFlow") from exc
    return bytes(data)


class LiteRtEmbedder:
    """An Embedder running a ``.tflite`` model in the LiteRT interpreter (XNNPACK)."""

    runtime = "litert"

    def __init__(
        self, model_id: str, model_content: bytes, scale: Callable[[FloatArray], FloatArray],
        *, input_size: tuple[int, int], preprocessing: Preprocessing | None = None,
        threads: int | None = None, chunk: int = LITERT_BATCH,
    ) -> None:
        """Load ``model_content`` (scaled (n, h, w, 3) -> (n, dim)); ModelError if unusable."""
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            raise ModelError(
                "the LiteRT runtime needs ai-edge-litert: pip install ai-edge-litert, "
                "or set THUMBSEARCH_RUNTIME=function") from exc
        self.model_id = model_id
        self.input_size = input_size
        self.scale = scale
        self.preprocessing = preprocessing or Preprocessing()
        self.threads = threads or cpu_threads()
        self.chunk = max(1, chunk)
        self._lock = threading.Lock()  # one interpreter: calls must not overlap
        try:
            with _mute_stderr():  # "Created TensorFlow Lite XNNPACK delegate" on stderr
                self._interpreter = Interpreter(model_content=model_content,
                                                num_threads=self.threads)
                self._interpreter.allocate_tensors()  # the delegate is applied here
            inputs = self._interpreter.get_input_details()
            outputs = self._interpreter.get_output_details()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{model_id}: not a usable LiteRT model: {one_line(exc)}") from exc
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{model_id}: LiteRT model has {len(inputs)} inputs and "
                             f"{len(outputs)} outputs, expected 1 and 1")
        height, width = input_size
        if tuple(int(d) for d in inputs[0]["shape"][1:]) != (height, width, 3):
            raise ModelError(f"{model_id}: LiteRT model takes {inputs[0]['shape'].tolist()}, "
                             f"expected (n, {height}, {width}, 3)")
        self._input = int(inputs[0]["index"])
        self._output = int(outputs[0]["index"])
        self.dim = int(outputs[0]["shape"][-1])
        self._batch = int(inputs[0]["shape"][0])

    def preprocess(self, image: Image.Image) -> FloatArray:
        """One image of any mode -> (h, w, 3) float32 with the model's scaling (thread-safe)."""
        return self.scale(prepare_rgb(image, self.input_size, self.preprocessing))

    def _invoke(self, chunk: FloatArray) -> FloatArray:
        if chunk.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input, list(chunk.shape))
            self._interpreter.allocate_tensors()
            self._batch = chunk.shape[0]
        self._interpreter.set_tensor(self._input, chunk)
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output), dtype=np.float32)

    def embed(self, batch: FloatArray) -> FloatArray:
        """(n, h, w, 3) float32 preprocessed images -> (n, dim) raw (unnormalised) features."""
        array = np.ascontiguousarray(batch, dtype=np.float32)
        height, width = self.input_size
        if array.ndim != 4 or array.shape[1:] != (height, width, 3):
            raise ModelError(f"{self.model_id} expects a batch of shape (n, {height}, {width}, "
                             f"3), got {array.shape}")
        if array.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        try:
            with self._lock:
                parts = [self._invoke(array[i:i + self.chunk])
                         for i in range(0, array.shape[0], self.chunk)]
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.model_id} failed to run on LiteRT: {one_line(exc)}"
                             ) from exc
        return np.concatenate(parts)


def _cache_stem(model_id: str, weights_digest: str) -> str:
    key = _bytes_digest(f"{TFLITE_FORMAT}:{model_id}:{weights_digest}".encode())
    return f"{model_id}-{key}"


def _read_valid(path: Path) -> bytes | None:
    """The file's bytes when its name's content digest matches them, else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data if path.stem.rsplit("-", 1)[-1] == _bytes_digest(data) else None


# Converted models by (model id, weights digest): a process that wires several homes
# (tests, benchmarks) converts each model once. Guarded by _converting.
_converted: dict[tuple[str, str], bytes] = {}
_converting = threading.Lock()


def cached_tflite(cache_dir: Path, model_id: str, weights_digest: str,
                  convert: Callable[[], bytes]) -> tuple[bytes, Path | None]:
    """The ``.tflite`` bytes for (model, weights): from the cache, else ``convert()``d and
    written there. A damaged cached file is removed and rebuilt. Returns (bytes, its path;
    None when the cache could not be written)."""
    stem = _cache_stem(model_id, weights_digest)
    with _converting:
        for path in sorted(cache_dir.glob(f"{stem}-*.tflite")):
            data = _read_valid(path)
            if data is not None:
                return data, path
            log.warning("rebuilding damaged LiteRT model %s", path)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:  # a read-only cache: convert again, leave the file be
                log.warning("cannot remove the damaged LiteRT model %s: %s", path,
                            path_problem(exc))
        key = (model_id, weights_digest)
        if key not in _converted:
            _converted[key] = convert()
        data = _converted[key]
    path = cache_dir / f"{stem}-{_bytes_digest(data)}.tflite"
    try:
        # Readable by all (mkstemp makes it private): the cache is like any data file.
        atomic_write(path, data, mode=0o644)
    except OSError as exc:
        full = disk_full(exc, "caching the LiteRT model", path)
        if full is not None:
            raise full from exc
        # A read-only home still embeds: the model is converted again in the next process.
        log.warning("cannot cache the LiteRT model at %s: %s", path, exc)
        return data, None
    return data, path


def _forget(model_id: str, weights_digest: str) -> None:
    with _converting:
        _converted.pop((model_id, weights_digest), None)


def load_litert_embedder(
    model_id: str, *, input_size: tuple[int, int], scale: Callable[[FloatArray], FloatArray],
    preprocessing: Preprocessing, build_graph: Callable[[], GraphEmbedder],
    weights_file: Callable[[], Path | None], cache_dir: Path | None,
    threads: int | None = None, calibration: Callable[[GraphEmbedder], FloatArray] | None = None,
    calibration_key: str = "",
) -> LiteRtEmbedder:
    """The LiteRT embedder of ``model_id``, from the cache when it holds it.

    ``build_graph`` builds the TensorFlow embedder to convert (called only on a cache
    miss); ``weights_file`` gives the file whose digest keys the cache (None: not cached).

    Conversion needs TensorFlow (``tf.lite.TFLiteConverter`` from the embedding graph's
    concrete function, variables frozen to constants). With ``calibration`` (the graph ->
    its calibration batch) the model is int8-quantised; ``calibration_key`` (the version of
    the calibration images) is part of the cache key. Once the file is cached, loading and
    embedding need only the interpreter and numpy, so a process that finds the file never
    imports TensorFlow.

    Cache file: ``<cache_dir>/<model id>-<weights digest>-<content digest>.tflite``. The
    weights digest (SHA-256 of the weights file, and the converter format) keys it; the
    content digest lets a damaged file be recognised and rebuilt. Files are written to a
    temporary name and renamed, so a reader never sees half of one.
    """
    def converted(graph: GraphEmbedder) -> bytes:
        return convert_to_tflite(graph, None if calibration is None else calibration(graph))

    def convert() -> bytes:
        return converted(build_graph())

    def embedder(data: bytes) -> LiteRtEmbedder:
        return LiteRtEmbedder(model_id, data, scale, input_size=input_size,
                              preprocessing=preprocessing, threads=threads)

    path_before = weights_file()
    if cache_dir is None:
        return embedder(convert())
    graph: GraphEmbedder | None = None
    if path_before is None:
        # The weights arrive with the model (a Keras download): build it, then look again.
        graph = build_graph()
        path_before = weights_file()
        if path_before is None:
            return embedder(converted(graph))
    digest = file_digest(path_before) + (f":{calibration_key}" if calibration_key else "")
    built = graph

    def convert_once() -> bytes:
        return converted(built if built is not None else build_graph())

    data, path = cached_tflite(cache_dir, model_id, digest, convert_once)
    try:
        return embedder(data)
    except ModelError:
        if path is None:
            raise
        # Valid digest but the interpreter refuses it (another LiteRT version): rebuild.
        log.warning("rebuilding LiteRT model %s the interpreter refused", path)
        path.unlink(missing_ok=True)
        _forget(model_id, digest)
        data, _ = cached_tflite(cache_dir, model_id, digest, convert_once)
        return embedder(data)

"""The int8-quantised model (``+int8``): its id, the runtimes that run it, its embeddings
against fp32 LiteRT on real photos, and its on-disk cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import ModelError, UnknownModelError
from indexer.models import load_embedder
from indexer.models.config import parse_model_id
from indexer.models.registry import model_spec
from indexer.models.runtime import litert_available
from tests.models.test_runtimes import _cosines, _real_images

INT8 = "efficientnet-lite0+unbar+int8"
FP32 = "efficientnet-lite0+unbar"
needs_litert = pytest.mark.skipif(not litert_available(), reason="ai-edge-litert missing")

# Measured on the 70 photos of _real_images (thumbnail sizes and edited re-uploads, none of
# them calibration images): worst 0.969, mean 0.991 against fp32 LiteRT.
WORST_COSINE = 0.95
MEAN_COSINE = 0.985


def test_int8_is_part_of_the_model_id() -> None:
    assert parse_model_id("efficientnet-lite0+int8+unbar").model_id == INT8
    assert parse_model_id(INT8).fp32.model_id == FP32
    assert not parse_model_id(FP32).int8
    spec = model_spec(INT8)
    assert spec.dim == 1280 and "int8" in spec.description
    with pytest.raises(UnknownModelError, match="'int8' is unknown or repeated"):
        parse_model_id("efficientnet-lite0+int8+int8")


@pytest.mark.parametrize("runtime", ["keras", "function", "xla"])
def test_int8_on_a_tensorflow_runtime_is_one_line(runtime: str) -> None:
    with pytest.raises(ModelError, match="runs only on LiteRT") as caught:
        load_embedder(INT8, runtime=runtime)
    assert "\n" not in str(caught.value)


@pytest.fixture(scope="module")
def real_batch() -> np.ndarray:
    from indexer.models.efficientnet_lite import scale_lite
    from indexer.models.preprocess import Preprocessing, prepare_rgb

    return np.stack([scale_lite(prepare_rgb(image, (224, 224), Preprocessing(unbar=True)))
                     for _, image in _real_images()])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def _cached(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob(f"{INT8}-*.tflite"))


@pytest.mark.slow
@needs_litert
def test_int8_converts_loads_and_stays_close_to_fp32(real_batch: np.ndarray,
                                                     cache_dir: Path) -> None:
    int8 = load_embedder(INT8, runtime="auto", cache_dir=cache_dir)
    fp32 = load_embedder(FP32, runtime="litert", cache_dir=cache_dir)
    assert type(int8).__name__ == "LiteRtEmbedder" and int8.model_id == INT8
    [path] = _cached(cache_dir)
    # Int8 weights: about a quarter of the float32 file.
    [fp32_path] = sorted(cache_dir.glob(f"{FP32}-*.tflite"))
    assert path.stat().st_size < 0.4 * fp32_path.stat().st_size
    cosines = _cosines(fp32.embed(real_batch), int8.embed(real_batch))
    assert cosines.min() >= WORST_COSINE and cosines.mean() >= MEAN_COSINE, (
        cosines.min(), cosines.mean())
    # Not the same vectors: a model of its own, not a runtime sharing fp32's index.
    assert cosines.min() < 0.999


@pytest.mark.slow
@needs_litert
def test_cached_int8_file_is_reused_without_tensorflow(cache_dir: Path, real_batch: np.ndarray,
                                                       tmp_path: Path) -> None:
    load_embedder(INT8, runtime="litert", cache_dir=cache_dir)
    [path] = _cached(cache_dir)
    before = path.stat().st_mtime_ns
    np.save(tmp_path / "batch.npy", real_batch[:4])
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from indexer.models import load_embedder\n"
        f"e = load_embedder({INT8!r}, runtime='auto', cache_dir=Path({str(cache_dir)!r}))\n"
        f"v = e.embed(np.load({str(tmp_path / 'batch.npy')!r}))\n"
        "print(e.model_id, v.shape, 'tensorflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=300)
    assert done.stdout.split() == [INT8, "(4,", "1280)", "False"]
    assert _cached(cache_dir) == [path] and path.stat().st_mtime_ns == before


@pytest.mark.slow
@needs_litert
def test_damaged_int8_file_is_rebuilt(cache_dir: Path, real_batch: np.ndarray) -> None:
    expected = load_embedder(INT8, runtime="litert", cache_dir=cache_dir).embed(real_batch[:3])
    [path] = _cached(cache_dir)
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    again = load_embedder(INT8, runtime="litert", cache_dir=cache_dir)
    [rebuilt] = _cached(cache_dir)
    assert rebuilt.read_bytes() == good
    np.testing.assert_allclose(again.embed(real_batch[:3]), expected, rtol=1e-5, atol=1e-5)

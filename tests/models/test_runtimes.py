"""Runtimes of the embedding model: the setting, LiteRT against Keras fp32 on real photos,
the on-disk .tflite cache, and retrieval through the runtime production picks."""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from indexer.errors import ConfigError
from indexer.models import load_embedder
from indexer.models.runtime import (
    cpu_flags,
    cpu_has_bf16,
    litert_available,
    resolve_runtime,
)
from indexer.settings import RUNTIMES, Settings
from search.cli import app
from search.eval import samples

DEFAULT = "efficientnet-lite0+unbar"
needs_litert = pytest.mark.skipif(not litert_available(), reason="ai-edge-litert missing")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    result: np.ndarray = (a * b).sum(axis=1) / (
        np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return result


def _reencoded(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _real_images() -> list[tuple[str, Image.Image]]:
    """Every sample photo as each YouTube thumbnail size, plus edited re-uploads."""
    out = []
    for name, photo in samples.sample_photos().items():
        for size in samples.THUMBNAIL_SIZES:
            out.append((f"{name}/{size}", _reencoded(samples.youtube_thumbnail(photo, size),
                                                     quality=60)))
        out.extend((f"{name}/{label}", image)
                   for label, image in samples.make_variants(photo, 2, seed=3))
    return out


def test_runtime_setting_is_parsed_and_defaults_to_auto() -> None:
    assert Settings.from_env({}).runtime == "auto"
    assert Settings.from_env({"THUMBSEARCH_RUNTIME": " LiteRT "}).runtime == "litert"
    for name in RUNTIMES:
        assert Settings.from_env({"THUMBSEARCH_RUNTIME": name}).runtime == name


def test_unknown_runtime_is_rejected_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="THUMBSEARCH_RUNTIME must be one of auto, keras"):
        Settings.from_env({"THUMBSEARCH_RUNTIME": "tpu"})
    monkeypatch.setenv("THUMBSEARCH_RUNTIME", "tpu")
    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "THUMBSEARCH_RUNTIME" in lines[0] and "'tpu'" in lines[0]


def test_auto_resolves_to_litert_when_installed_else_function() -> None:
    assert resolve_runtime("auto") == ("litert" if litert_available() else "function")
    assert resolve_runtime("auto", litert=False) == "function"
    assert resolve_runtime("auto", litert=True) == "litert"
    assert resolve_runtime("litert", litert=False) == "litert"  # asked for: load says why not
    assert resolve_runtime("xla") == "xla"
    with pytest.raises(ConfigError):
        resolve_runtime("fast")


def test_bf16_is_detected_from_cpu_flags(tmp_path: Path) -> None:
    assert cpu_has_bf16(frozenset({"avx2", "avx512_bf16"}))
    assert cpu_has_bf16(frozenset({"amx_bf16"}))
    assert not cpu_has_bf16(frozenset({"avx2", "fma", "avx512f"}))
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n\nflags\t: other\n")
    assert cpu_flags(cpuinfo) == frozenset({"fpu", "sse", "avx2", "fma"})
    assert cpu_flags(tmp_path / "absent") == frozenset()


@pytest.fixture(scope="module")
def real_batch() -> tuple[list[str], np.ndarray]:
    """Names and (n, 224, 224, 3) float32 batch of real photos, preprocessed for lite0."""
    from indexer.models.efficientnet_lite import scale_lite
    from indexer.models.preprocess import Preprocessing, prepare_rgb

    images = _real_images()
    batch = np.stack([scale_lite(prepare_rgb(image, (224, 224), Preprocessing(unbar=True)))
                      for _, image in images])
    return [name for name, _ in images], batch


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.mark.slow
@needs_litert
def test_litert_and_function_match_keras_fp32_on_real_photos(
        real_batch: tuple[list[str], np.ndarray], cache_dir: Path) -> None:
    names, batch = real_batch
    reference = load_embedder(DEFAULT, runtime="keras").embed(batch)
    litert = load_embedder(DEFAULT, runtime="litert", cache_dir=cache_dir)
    assert type(litert).__name__ == "LiteRtEmbedder" and litert.dim == 1280
    for runtime, vectors in (("litert", litert.embed(batch)),
                             ("function", load_embedder(DEFAULT).embed(batch))):
        cosines = _cosines(reference, vectors)
        worst = int(np.argmin(cosines))
        assert cosines.min() >= 0.999, f"{runtime}: {names[worst]} at cosine {cosines[worst]}"
    # Odd batch sizes go through the interpreter's resize and chunking the same way.
    one_by_one = np.concatenate([litert.embed(batch[i:i + 1]) for i in range(5)])
    assert _cosines(one_by_one, reference[:5]).min() >= 0.999
    assert litert.embed(batch[:0]).shape == (0, 1280)


def _cached(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("efficientnet-lite0+unbar-*.tflite"))


@pytest.mark.slow
@needs_litert
def test_cache_hit_loads_and_embeds_without_tensorflow(
        cache_dir: Path, real_batch: tuple[list[str], np.ndarray], tmp_path: Path) -> None:
    load_embedder(DEFAULT, runtime="litert", cache_dir=cache_dir)
    assert len(_cached(cache_dir)) == 1
    np.save(tmp_path / "batch.npy", real_batch[1][:4])
    code = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from indexer.models import load_embedder\n"
        f"e = load_embedder({DEFAULT!r}, runtime='auto', cache_dir=Path({str(cache_dir)!r}))\n"
        f"v = e.embed(np.load({str(tmp_path / 'batch.npy')!r}))\n"
        "print(type(e).__name__, v.shape, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=300)
    assert done.stdout.split() == ["LiteRtEmbedder", "(4,", "1280)", "False", "False"]
    assert done.stderr == ""


@pytest.mark.slow
@needs_litert
@pytest.mark.parametrize("damage", ["truncated", "flipped", "refused"])
def test_damaged_cached_tflite_is_rebuilt(
        tmp_path: Path, real_batch: tuple[list[str], np.ndarray], damage: str) -> None:
    batch = real_batch[1][:3]
    first = load_embedder(DEFAULT, runtime="litert", cache_dir=tmp_path)
    expected = first.embed(batch)
    [path] = _cached(tmp_path)
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "flipped":  # a weight byte in the middle: still a valid flatbuffer
        data = bytearray(good)
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    else:  # its name's digest matches, but it is no model the interpreter accepts
        junk = b"not a flatbuffer" * 64
        path.unlink()
        stem = path.stem.rsplit("-", 1)[0]
        path = tmp_path / f"{stem}-{hashlib.sha256(junk).hexdigest()[:16]}.tflite"
        path.write_bytes(junk)
    again = load_embedder(DEFAULT, runtime="litert", cache_dir=tmp_path)
    [rebuilt] = _cached(tmp_path)
    assert rebuilt.read_bytes() == good
    np.testing.assert_allclose(again.embed(batch), expected, rtol=1e-5, atol=1e-5)


def _save(image: Image.Image, path: Path) -> Path:
    image.save(path, "JPEG", quality=90)
    return path


@pytest.mark.slow
def test_near_duplicates_find_their_original_with_the_production_runtime(
        settings: Settings, tmp_path: Path) -> None:
    from indexer.ingest.local import add_paths
    from indexer.service import build_service
    from search.neighbours import similar_to_image

    assert settings.runtime == "auto"
    service = build_service(settings)
    folder = tmp_path / "originals"
    folder.mkdir()
    ids = {}
    for name, photo in samples.sample_photos().items():
        video_id = samples.video_id_for(f"runtime:{name}")
        _save(samples.youtube_thumbnail(photo, "mqdefault"), folder / f"{name} [{video_id}].jpg")
        ids[name] = video_id
    summary = add_paths(service, [folder])
    assert summary.new == len(ids) and not summary.failed
    assert getattr(service.embedder, "runtime", None) == resolve_runtime("auto")
    hits, misses, total = 0, [], 0
    for name, photo in samples.sample_photos().items():
        variants = [(size, _reencoded(samples.youtube_thumbnail(photo, size), 40))
                    for size in ("default", "hqdefault", "sddefault", "maxresdefault")]
        variants += samples.make_variants(photo, 3, seed=7)
        for label, variant in variants:
            path = _save(variant, tmp_path / f"{name}-{label}.jpg")
            top = similar_to_image(service, str(path), k=1).results[0]
            total += 1
            if top.video_id == ids[name]:
                hits += 1
            else:
                misses.append(f"{name}/{label}")
    # The same bar as tests/eval/test_retrieval.py: letterboxed sizes all hit, edits at >= 90%.
    assert hits / total >= 0.9, f"{hits}/{total}; missed {misses}"
    assert not [m for m in misses if m.split("/")[1] in samples.THUMBNAIL_SIZES], misses

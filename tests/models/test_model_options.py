"""Model options: letterbox-bar removal on real thumbnails, resize modes, configured model
ids, where weights come from, PCA-whitening, and re-embedding the corpus from the cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from indexer.errors import EmptyCorpusError, ModelError, UnknownModelError
from indexer.ingest.local import add_paths
from indexer.ingest.reembed import reembed
from indexer.models import load_embedder, model_spec, parse_model_id, weights_status
from indexer.models.preprocess import (
    Preprocessing,
    find_content_box,
    prepare_rgb,
    remove_letterbox,
    resize_image,
)
from indexer.models.weights import KERAS_WEIGHT_FILES, resolve_weights
from indexer.service import build_service
from indexer.settings import Settings
from search.cli.app import app
from search.eval import samples
from search.eval.whitening import PcaWhitening
from tests.fakes.embedder import TinyEmbedder

runner = CliRunner()

# --- letterbox bars on real thumbnails ---


@pytest.mark.parametrize("name", ["default", "hqdefault", "sddefault"])
@pytest.mark.parametrize("quality", [30, 90])
def test_bars_of_real_4_3_thumbnails_are_cut_to_the_frame(name: str, quality: int) -> None:
    for photo_name, photo in samples.sample_photos().items():
        thumb = samples.jpeg_reencode(samples.youtube_thumbnail(photo, name), quality)
        width, height = thumb.size
        bar = (height - round(width * 9 / 16)) // 2
        left, top, right, bottom = find_content_box(thumb)
        assert (left, right) == (0, width), photo_name
        # JPEG ringing may leave a row or two of the bar; never cut into the frame.
        assert bar - 3 <= top <= bar and height - bar <= bottom <= height - bar + 3, (
            photo_name, top, bar)
        assert remove_letterbox(thumb).size == (width, bottom - top)


def test_thumbnails_without_bars_are_left_alone() -> None:
    for photo in samples.sample_photos().values():  # hubble_deep_field is mostly black
        for name in ("mqdefault", "maxresdefault"):
            thumb = samples.youtube_thumbnail(photo, name)
            assert find_content_box(thumb) == (0, 0, *thumb.size)


def test_a_dark_band_on_one_side_only_is_content() -> None:
    photo = np.asarray(samples.youtube_thumbnail(samples.sample_photos()["coffee"]))
    dark_top = photo.copy()
    dark_top[:40] = 0
    assert find_content_box(Image.fromarray(dark_top)) == (0, 0, 320, 180)
    assert find_content_box(Image.new("RGB", (320, 180))) == (0, 0, 320, 180)


def test_pillarbox_bars_left_and_right_are_cut() -> None:
    square = samples.sample_photos()["chelsea"].resize((135, 180))
    canvas = Image.new("RGB", (320, 180))
    canvas.paste(square, (92, 0))
    left, top, right, bottom = find_content_box(samples.jpeg_reencode(canvas, 60))
    assert (top, bottom) == (0, 180)
    assert 89 <= left <= 92 and 227 <= right <= 230


def test_resize_modes() -> None:
    wide = Image.new("RGB", (320, 180), (200, 10, 10))
    assert resize_image(wide, (224, 224), "squash").size == (224, 224)
    padded = np.asarray(resize_image(wide, (224, 224), "pad"))
    assert padded[0, 112].tolist() == [0, 0, 0] and padded[112, 112, 0] > 150
    cropped = np.asarray(resize_image(wide, (100, 100), "crop"))
    assert cropped.shape == (100, 100, 3) and (cropped[..., 0] > 150).all()
    with pytest.raises(ValueError):
        Preprocessing(resize="stretch")
    hq = samples.youtube_thumbnail(samples.sample_photos()["rocket"], "hqdefault")
    plain = prepare_rgb(hq, (224, 224))
    unbarred = prepare_rgb(hq, (224, 224), Preprocessing(unbar=True))
    assert plain[0].max() < 10 < unbarred[0].max()  # the top row was a bar, now picture


# --- configured model ids ---


def test_model_ids_are_canonical() -> None:
    assert parse_model_id("efficientnet-lite0").is_base
    assert parse_model_id("efficientnet-lite0+squash+avg").model_id == "efficientnet-lite0"
    assert parse_model_id("efficientnet-lite0+gem+crop+unbar").model_id == (
        "efficientnet-lite0+unbar+crop+gem")
    assert parse_model_id("vgg16+max").model_id == "vgg16"
    assert parse_model_id("vgg16+avg").model_id == "vgg16+avg"
    spec = model_spec("efficientnet-lite0+pad+max")
    assert (spec.model_id, spec.dim, spec.input_size) == ("efficientnet-lite0+pad+max", 1280,
                                                          (224, 224))
    for bad in ("efficientnet-lite0+blur", "efficientnet-lite0+crop+pad", "lite0+crop",
                "efficientnet-lite0+flip+flip", "efficientnet-lite0+rmac+avg"):
        with pytest.raises(UnknownModelError):
            model_spec(bad)


def test_rmac_and_flip_ids_are_canonical() -> None:
    rmac = parse_model_id("efficientnet-lite0+flip+rmac+max+unbar")
    assert (rmac.rmac, rmac.flip, rmac.pooling_used) == (True, True, "max")
    assert rmac.model_id == "efficientnet-lite0+unbar+rmac+flip"
    gem = parse_model_id("efficientnet-lite0+gem+rmac")
    assert (gem.model_id, gem.pooling_used) == ("efficientnet-lite0+rmac+gem", "gem")
    assert parse_model_id("vgg16+rmac").model_id == "vgg16+rmac"
    int8 = parse_model_id("efficientnet-lite0+int8+flip+rmac")
    assert int8.model_id == "efficientnet-lite0+rmac+flip+int8"
    assert int8.fp32.model_id == "efficientnet-lite0+rmac+flip"
    assert not parse_model_id("efficientnet-lite0+flip").is_base
    described = model_spec("efficientnet-lite2+rmac+gem+flip")
    assert described.input_size == (260, 260) and described.dim == 1280
    assert "R-MAC regions gem-pooled" in described.description
    assert "mirror" in described.description
    with pytest.raises(UnknownModelError, match="max or gem, not avg"):
        parse_model_id("efficientnet-lite0+avg+rmac")


def test_rmac_regions_cover_the_map_at_three_scales() -> None:
    from indexer.models.base import rmac_regions

    # 224 / 32: one whole-map region, 2x2 of side 4, 3x3 of side 3 (Tolias et al.'s layout).
    regions = rmac_regions(7, 7)
    assert regions[0] == (0, 0, 7)
    assert sorted(regions[1:5]) == [(0, 0, 4), (0, 3, 4), (3, 0, 4), (3, 3, 4)]
    assert sorted({top for top, _, side in regions[5:]}) == [0, 2, 4] and len(regions) == 14
    for height, width in ((7, 7), (8, 8), (9, 9), (7, 12), (12, 7), (2, 2)):
        found = rmac_regions(height, width)
        covered = np.zeros((height, width), bool)
        for top, left, side in found:
            assert side > 0 and top >= 0 and left >= 0
            assert top + side <= height and left + side <= width
            covered[top:top + side, left:left + side] = True
        assert covered.all(), (height, width)
    # A wide map takes more regions along its width, as in the paper.
    assert len(rmac_regions(7, 12)) > len(rmac_regions(7, 7))


# --- weights: where they come from, without downloading ---


def test_weights_status_and_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert weights_status("efficientnet-lite0").available
    assert not weights_status("vgg16").available
    assert "--weights" in weights_status("vgg16").reason
    with pytest.raises(ModelError, match="not found"):
        resolve_weights("vgg16", tmp_path / "absent.h5")
    assert resolve_weights("efficientnet-lite0") is None  # the package's file
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "resnet50.weights.h5").write_bytes(b"x")
    (folder / KERAS_WEIGHT_FILES["efficientnetb0"]).write_bytes(b"x")
    assert weights_status("resnet50", folder).available
    assert resolve_weights("resnet50", None, folder) == folder / "resnet50.weights.h5"
    b0 = weights_status("efficientnetb0", folder)
    assert not b0.available and "copy it into" in b0.reason
    with pytest.raises(ModelError, match="copy it into"):
        resolve_weights("efficientnetb0", None, folder)
    cache = tmp_path / "keras" / "models"
    cache.mkdir(parents=True)
    (cache / KERAS_WEIGHT_FILES["vgg16"]).write_bytes(b"x")
    assert weights_status("vgg16").available
    assert resolve_weights("vgg16") is None  # Keras loads its own cache


def test_weights_dir_setting_and_models_command(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("THUMBSEARCH_WEIGHTS_DIR", str(tmp_path))
    assert Settings.from_env().weights_dir == tmp_path
    (tmp_path / "vgg16.weights.h5").write_bytes(b"x")
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.output)}
    assert set(rows) >= {"efficientnet-lite0", "vgg16", "resnet50", "efficientnetb0"}
    assert rows["vgg16"]["available"] and rows["vgg16"]["dim"] == 512
    assert not rows["resnet50"]["available"] and rows["resnet50"]["input_size"] == [224, 224]
    assert rows["efficientnet-lite0"]["default"] and rows["efficientnet-lite0"]["available"]
    table = runner.invoke(app, ["models"])
    assert table.exit_code == 0 and "vgg16" in table.output and "no (" in table.output


# --- PCA-whitening ---


def test_pca_whitening_fits_applies_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 16)) * np.linspace(10, 0.1, 16)
    whitening = PcaWhitening.fit(vectors, dims=8, floor=0.0)
    out = whitening.apply(vectors)
    assert out.shape == (50, 8) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    raw = (vectors - whitening.mean) @ whitening.projection
    np.testing.assert_allclose(np.cov(raw.T), np.eye(8), atol=1e-4)  # unit variance axes
    whitening.save(tmp_path / "w.npz")
    again = PcaWhitening.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(again.apply(vectors), out)


# --- re-embedding the corpus from the thumbnail cache ---


class _OtherTiny(TinyEmbedder):
    model_id = "tiny-other"


def _corpus(tmp_path: Path, settings: Settings) -> list[str]:
    folder = tmp_path / "thumbs"
    written = samples.write_ytdlp_folder(folder, variants_per_photo=0)
    summary = add_paths(build_service(settings, embedder=TinyEmbedder()), [folder])
    assert summary.new == len(written)
    return sorted(v.video_id for v in written)


def test_reembed_from_the_cache_is_resumable_and_lists_uncached(
        tmp_path: Path, settings: Settings) -> None:
    ids = _corpus(tmp_path, settings)
    service = build_service(settings, embedder=_OtherTiny())
    with pytest.raises(EmptyCorpusError, match="reembed --model tiny-other"):
        service.require_corpus()
    before = service.store.get_video(ids[0])
    lost = service.store.get_video(ids[1])
    assert lost is not None and lost.thumbnail_sha256
    service.cache.path(lost.thumbnail_sha256).unlink()
    summary = reembed(service)
    assert summary.embedded == len(ids) - 1 and summary.already == 0
    assert [f.video_id for f in summary.failed] == [ids[1]]
    assert "missing from the cache" in summary.failed[0].reason
    assert service.store.get_video(ids[0]) == before  # metadata and fetched_at untouched
    counts = service.store.vector_counts()
    assert counts == {"tiny-test": len(ids), "tiny-other": len(ids) - 1}
    again = reembed(build_service(settings, embedder=_OtherTiny()))
    assert (again.embedded, again.already) == (0, len(ids) - 1)
    assert [f.video_id for f in again.failed] == [ids[1]]
    index = build_service(settings, embedder=_OtherTiny()).require_corpus().index
    assert index.size == len(ids) - 1 and index.meta_path.name == "tiny-other.json"


def test_reembed_of_an_empty_corpus_is_an_error(settings: Settings) -> None:
    with pytest.raises(EmptyCorpusError):
        reembed(build_service(settings, embedder=_OtherTiny()))


# --- the real model under options ---


@pytest.mark.slow
def test_lite0_pooling_options_share_the_network_and_differ() -> None:
    photos = [samples.youtube_thumbnail(p, "hqdefault")
              for p in list(samples.sample_photos().values())[:3]]
    plain = load_embedder("efficientnet-lite0")
    avg_unbar = load_embedder("efficientnet-lite0+unbar")
    gem = load_embedder("efficientnet-lite0+gem")
    assert gem.model_id == "efficientnet-lite0+gem" and gem.dim == 1280
    batch = np.stack([plain.preprocess(p) for p in photos])
    features = {name: e.embed(batch) for name, e in
                (("avg", plain), ("gem", gem), ("max", load_embedder("efficientnet-lite0+max")))}
    # Averages <= GeM (p=3) <= max, element-wise, over the same ReLU6 feature map.
    assert (features["avg"] <= features["gem"] + 1e-4).all()
    assert (features["gem"] <= features["max"] + 1e-4).all()
    assert not np.allclose(features["avg"], features["gem"], atol=1e-3)
    unbarred = np.stack([avg_unbar.preprocess(p) for p in photos])
    assert not np.allclose(unbarred, batch)


@pytest.mark.slow
def test_reembed_and_similar_by_model_on_the_command_line(
        tmp_path: Path, settings: Settings) -> None:
    ids = _corpus(tmp_path, settings)
    result = runner.invoke(app, ["reembed", "--model", "efficientnet-lite0+gem+unbar",
                                 "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data == {"model": "efficientnet-lite0+unbar+gem", "embedded": len(ids),
                    "already": 0, "failed": []}
    missing = runner.invoke(app, ["similar", "--model", "efficientnet-lite0+pad", "--", ids[0]])
    assert missing.exit_code == 1
    assert "reembed --model efficientnet-lite0+pad" in missing.output
    # A lookup by id under --model reads that model's vectors and never imports TensorFlow.
    argv = ["thumbsearch", "similar", "--json", "-k", "2", "--model",
            "efficientnet-lite0+unbar+gem", "--", ids[0]]
    code = (f"import sys\nfrom search.cli.app import app\nsys.argv = {argv!r}\n"
            "try:\n    app()\nexcept SystemExit:\n"
            "    assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n    raise\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["model"] == "efficientnet-lite0+unbar+gem" and len(answer["results"]) == 2


@pytest.mark.slow  # imports TensorFlow
def test_rmac_pooling_matches_numpy_on_a_feature_map() -> None:
    import tensorflow as tf

    from indexer.models.base import GEM_P, pool_feature_map, rmac_regions

    fmap = np.random.default_rng(1).uniform(0, 6, (2, 7, 7, 16)).astype(np.float32)
    for pooling in ("max", "gem"):
        expected = np.zeros((2, 16), np.float32)
        for top, left, side in rmac_regions(7, 7):
            region = fmap[:, top:top + side, left:left + side, :]
            pooled = (region.max(axis=(1, 2)) if pooling == "max"
                      else np.mean(region ** GEM_P, axis=(1, 2)) ** (1 / GEM_P))
            expected += pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        got = pool_feature_map(tf.constant(fmap), pooling, regions=True).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4)
        assert not np.allclose(got, pool_feature_map(tf.constant(fmap), pooling).numpy())


def _unit(vectors: np.ndarray) -> np.ndarray:
    result: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return result


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["function", "keras", "litert"])
def test_flip_embeds_an_image_and_its_mirror_alike(runtime: str, tmp_path: Path) -> None:
    from PIL import ImageOps

    photos = [samples.youtube_thumbnail(p, "hqdefault")
              for p in list(samples.sample_photos().values())[:3]]
    flip = load_embedder("efficientnet-lite0+unbar+flip", runtime=runtime, cache_dir=tmp_path)
    plain = load_embedder("efficientnet-lite0+unbar", runtime="function")
    assert (flip.model_id, flip.dim) == ("efficientnet-lite0+unbar+flip", 1280)
    batch = np.stack([flip.preprocess(p) for p in photos])
    mirrored = np.stack([flip.preprocess(ImageOps.mirror(p)) for p in photos])
    a, b = _unit(flip.embed(batch)), _unit(flip.embed(mirrored))
    assert a.shape == (3, 1280)
    assert ((a * b).sum(axis=1) > 0.9999).all()  # the mirror image is the same vector
    one, two = _unit(plain.embed(batch)), _unit(plain.embed(mirrored))
    assert ((one * two).sum(axis=1) < 0.99).all()  # which it is not without +flip
    # The mean of the image's and the mirror's unit vectors, in one call.
    np.testing.assert_allclose(a, _unit(one + two), atol=1e-4)
    np.testing.assert_allclose(_unit(flip.embed(batch[1:2])), a[1:2], atol=1e-4)


@pytest.mark.slow
def test_rmac_runs_on_litert_like_on_tensorflow(tmp_path: Path) -> None:
    photos = [samples.youtube_thumbnail(p, "mqdefault")
              for p in list(samples.sample_photos().values())[:4]]
    model_id = "efficientnet-lite0+unbar+rmac+gem+flip"
    graph = load_embedder(model_id, runtime="function")
    litert = load_embedder(model_id, runtime="litert", cache_dir=tmp_path)
    assert litert.model_id == model_id and list(tmp_path.glob(f"{model_id}-*.tflite"))
    batch = np.stack([graph.preprocess(p) for p in photos])
    a, b = _unit(graph.embed(batch)), _unit(litert.embed(batch))
    assert ((a * b).sum(axis=1) > 0.9999).all()
    plain = _unit(load_embedder("efficientnet-lite0+unbar+gem+flip").embed(batch))
    assert ((a * plain).sum(axis=1) < 0.995).all()  # regions are not the global pooling

"""The re-upload threshold: pair sorting, the rule, the measure over folders and its command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.service import build_service
from indexer.settings import Settings
from search.eval.threshold import (
    CANDIDATES,
    choose_threshold,
    format_study,
    main,
    measure_thresholds,
    set_pairs,
    study,
)
from tests.fakes.embedder import TinyEmbedder

DIM = 16


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _near(base: np.ndarray, cosine: float, direction: np.ndarray) -> np.ndarray:
    """A unit vector at exactly ``cosine`` from ``base`` (``direction`` orthogonal to it)."""
    return _unit(cosine * base + np.sqrt(1 - cosine**2) * direction)


def _axis(i: int) -> np.ndarray:
    return np.eye(DIM, dtype=np.float32)[i]


def test_pairs_are_sorted_and_distractor_pairs_left_out() -> None:
    # Two photos with re-uploads (0.97, 0.90, 0.86 from their originals), three distractors
    # that are one same image (pairs of 1.0 between them), orthogonal to everything else.
    a, b, d = _axis(0), _axis(1), _axis(2)
    vectors = np.stack([a, _near(a, 0.97, _axis(3)), _near(a, 0.90, _axis(4)),
                        b, _near(b, 0.86, _axis(5)), d, d, d])
    labels = ["a", "a", "a", "b", "b", "x1", "x2", "x3"]
    originals = [True, False, False, True, False, False, False, False]
    kinds = ["original", "mirror", "crop", "original", "mirror", None, None, None]
    pairs = set_pairs("hard", vectors, labels, originals, kinds)
    assert pairs.left_out == 3
    assert sorted(np.round(pairs.from_original, 4)) == [0.86, 0.9, 0.97]
    assert len(pairs.reuploads) == 4  # the two re-uploads of a against each other too
    assert sorted(pairs.by_kind) == ["crop", "mirror"] and len(pairs.by_kind["mirror"]) == 2
    assert len(pairs.unrelated) == 28 - 4 - 3 and pairs.unrelated.max() < 0.5
    assert not len(pairs.looks_alike)

    # A class-level set: same label, no original: a look-alike pair, not a re-upload.
    c = _axis(6)
    classes = set_pairs("classes", np.stack([c, _near(c, 0.8, _axis(7)), _axis(8)]),
                        ["cats", "cats", "cars"], [False] * 3)
    assert not len(classes.reuploads) and np.round(classes.looks_alike, 4).tolist() == [0.8]

    result = study([pairs, classes], "synthetic", rate=0.0)
    # The one look-alike pair at 0.8 is a non-match: the chosen threshold must clear it,
    # and it keeps every re-upload (the lowest is 0.86); the distractors' 1.0 pairs count not.
    assert result.chosen is not None and 0.8 < result.chosen <= 0.86
    chosen = next(c for c in result.candidates if c.threshold == result.chosen)
    assert chosen.recall == 1.0 and chosen.false_matches == 0
    assert len(result.total.non_matching) == 21 + 2 + 1
    text = format_study(result)
    assert "looks alike, not a re-upload" in text and "3 pairs of two distractors" in text
    assert f"re-upload threshold: {result.chosen:.2f}" in text


def test_rule_honours_the_rate() -> None:
    scores = np.arange(100) / 100 + 0.001  # 0.001 .. 0.991
    assert choose_threshold(scores, 0.01) == 0.99  # 0.98 would let 2 in 100 through
    assert choose_threshold(scores, 0.05) == 0.95  # 5 in 100 at or above; 0.94: 6
    assert choose_threshold(np.array([0.999]), 0.0) is None
    low = choose_threshold(np.array([0.1, 0.2]), 0.0)
    assert low == min(CANDIDATES)


def _photo_set(root: Path, with_original: bool) -> Path:
    rng = np.random.default_rng(0)
    for label in ("one", "two"):
        folder = root / label
        folder.mkdir(parents=True)
        base = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        for number in range(3):
            name = "original" if with_original and number == 0 else f"copy{number}"
            noisy = np.clip(base + rng.integers(-6, 6, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).resize((64, 48), Image.Resampling.NEAREST).save(
                folder / f"{name}.png")
    return root


def test_measure_reads_originals_from_folders(settings: Settings, tmp_path: Path) -> None:
    reuploads = _photo_set(tmp_path / "copies", with_original=True)
    classes = _photo_set(tmp_path / "classes", with_original=False)
    with build_service(settings, embedder=TinyEmbedder()) as service:
        result = measure_thresholds(service, [reuploads, classes])
    copies, alike = result.sets
    assert (len(copies.reuploads), len(copies.from_original), len(copies.looks_alike)) == (6, 4, 0)
    assert (len(alike.reuploads), len(alike.looks_alike), len(alike.unrelated)) == (0, 6, 9)
    assert result.model == "tiny-test" and result.to_json()["all"]["reuploads"]["count"] == 6


def test_command_errors_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no such dataset" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_json_has_the_rule(settings: Settings, tmp_path: Path) -> None:
    with build_service(settings, embedder=TinyEmbedder()) as service:
        result = measure_thresholds(service, [_photo_set(tmp_path / "s", with_original=True)])
    data = json.loads(json.dumps(result.to_json()))
    assert data["rule"]["false_match_rate"] == 1e-5
    assert {"threshold", "recall", "false_match_rate"} <= set(data["candidates"][0])

"""Retrieval metrics against rankings computed by hand, ties and single-image labels included."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.errors import InputError
from search.eval.metrics import approximate_recall, average_precisions, score_vectors


def _unit(rows: list[list[float]]) -> np.ndarray:
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# Five points on the plane. Cosines from 0=[1,0]: 1 .994, 4 .707, 3 .110, 2 0.
# Labels a b a b c: the c image is a distractor (alone in its label), the others are queries.
POINTS = _unit([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]])
LABELS = ["a", "b", "a", "b", "c"]


def test_hand_computed_ranking() -> None:
    # Rankings (relevant marked *):
    #   q0 (a): 1 4 3 2*   -> first hit at rank 4, AP 1/4
    #   q1 (b): 0 4 3* 2   -> rank 3, AP 1/3
    #   q2 (a): 3 4 1 0*   -> rank 4, AP 1/4
    #   q3 (b): 2 4 1* 0   -> rank 3, AP 1/3
    scores = score_vectors(POINTS, LABELS, ks=(1, 3, 4, 10))
    assert (scores.queries, scores.labels, scores.distractors) == (4, 2, 1)
    assert scores.recall == {1: 0.0, 3: 0.5, 4: 1.0, 10: 1.0}
    assert scores.precision == pytest.approx({1: 0.0, 3: (0 + 1 + 0 + 1) / 3 / 4,
                                              4: 0.25, 10: 0.1})
    assert scores.mAP == pytest.approx((1 / 4 + 1 / 3 + 1 / 4 + 1 / 3) / 4)
    assert average_precisions(POINTS, LABELS) == pytest.approx(
        {0: 0.25, 1: 1 / 3, 2: 0.25, 3: 1 / 3})


def test_good_ranking_scores_one() -> None:
    scores = score_vectors(POINTS, ["a", "a", "b", "b", "c"], ks=(1, 2))
    assert scores.recall == {1: 1.0, 2: 1.0}
    assert scores.precision == {1: 1.0, 2: 0.5}
    assert scores.mAP == 1.0


def test_several_relevant_images_average_precision() -> None:
    # Query 0 ranks 1* 2 3* (cosines .99, .9, .8 by construction): AP = (1/1 + 2/3) / 2.
    v = _unit([[1, 0, 0], [0.99, 0.141, 0], [0.9, 0, 0.436], [0.8, -0.6, 0]])
    ap = average_precisions(v, ["x", "x", "y", "x"])
    assert ap[0] == pytest.approx((1 + 2 / 3) / 2)


def test_ties_rank_irrelevant_images_first() -> None:
    # All scores equal (orthogonal vectors): the pessimistic rule puts the relevant image last.
    scores = score_vectors(np.eye(4, dtype=np.float32), ["a", "a", "b", "b"], ks=(1, 2, 3))
    assert scores.recall == {1: 0.0, 2: 0.0, 3: 1.0}
    assert scores.mAP == pytest.approx(1 / 3)
    # Identical vectors tie at the top: a relevant and an irrelevant copy of the query.
    same = _unit([[1, 0], [1, 0], [1, 0], [0, 1]])
    tied = score_vectors(same, ["a", "a", "b", "b"], ks=(1, 2))
    assert tied.recall[1] < 1.0  # q0 ranks image 2 (b) ahead of image 1 (a) at equal score


def test_scores_do_not_depend_on_input_order() -> None:
    rng = np.random.default_rng(3)
    v = _unit(rng.normal(size=(40, 8)).tolist())
    labels = [str(i % 7) for i in range(40)]
    v[5] = v[6]  # a tie
    perm = rng.permutation(40)
    a = score_vectors(v, labels)
    b = score_vectors(v[perm], [labels[i] for i in perm])
    assert a.recall == pytest.approx(b.recall)
    assert a.mAP == pytest.approx(b.mAP)


def test_single_image_labels_are_distractors_and_k_beyond_n() -> None:
    scores = score_vectors(POINTS[:3], ["a", "z", "a"], ks=(5,))
    assert (scores.queries, scores.distractors) == (2, 1)
    assert scores.recall == {5: 1.0}
    assert scores.precision == {5: pytest.approx(1 / 5)}
    with pytest.raises(InputError, match="nothing to query"):
        score_vectors(POINTS[:2], ["a", "b"])
    with pytest.raises(InputError, match="labels"):
        score_vectors(POINTS, ["a"])
    with pytest.raises(InputError, match="positive"):
        score_vectors(POINTS, LABELS, ks=(0,))


def test_approximate_recall_against_exact() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, 32))
    v = _unit((np.repeat(centres, 30, axis=0) + 0.05 * rng.normal(size=(600, 32))).tolist())
    assert approximate_recall(v, 10, "exact") == 1.0
    assert approximate_recall(v, 10, "hnsw") > 0.9
    ivf = approximate_recall(v, 10, "ivf")
    assert 0.0 <= ivf <= 1.0
    with pytest.raises(InputError, match="unknown index type"):
        approximate_recall(v, 10, "annoy")

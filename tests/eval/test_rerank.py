"""Search options after the search: alpha query expansion and k-reciprocal re-ranking, in the
lookup (real SQLite and FAISS, flat and IVF) and in evaluation, and PCA-whitening in eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from indexer.errors import UsageError
from indexer.records import VideoMeta
from indexer.service import Corpus, build_service
from indexer.settings import Settings
from indexer.store.db import make_engine
from indexer.store.metadata import Store
from indexer.vectors.index import VectorIndex, l2_normalise
from search.cli import app
from search.eval import samples
from search.eval.evaluate import evaluate_sets
from search.eval.metrics import score_vectors
from search.eval.neardup import make_neardup
from search.rerank import NO_RERANK, Rerank, parse_rerank
from search.reranking import expand_queries, reciprocal_order, reranked_pairs
from tests.fakes.embedder import TinyEmbedder

runner = CliRunner()
DIM = 48
MODEL = "m"


# --- options ---


def test_parse_rerank_defaults_and_round_trip() -> None:
    assert parse_rerank("none") == NO_RERANK and not NO_RERANK.active
    qe = parse_rerank("aqe")
    assert (qe.n, qe.k) == (2, 0) and qe.active
    both = parse_rerank("AQE:n=4,alpha=1.5+kr:k=20,k1=6,k2=2,lambda=0.5")
    assert (both.n, both.alpha, both.k, both.k1, both.k2, both.lam) == (4, 1.5, 20, 6, 2, 0.5)
    assert parse_rerank(both.name) == both
    assert both.shortlist(10) == 20 and both.shortlist(50) == 50
    assert both.to_json()["kr"] == {"k": 20, "k1": 6, "k2": 2, "lambda": 0.5}


@pytest.mark.parametrize("text", ["qe", "aqe+aqe", "aqe:m=2", "aqe:n=0", "aqe:n=x",
                                  "kr:k=500", "kr:k=5,k1=6", "kr:lambda=2", "x" * 101])
def test_parse_rerank_refuses(text: str) -> None:
    with pytest.raises(UsageError, match="rerank"):
        parse_rerank(text)


# --- the algorithms ---


def test_expand_queries_weights_neighbours_by_similarity_to_alpha() -> None:
    query = np.array([[1.0, 0.0, 0.0]], np.float32)
    near = np.array([[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], np.float32)
    scores = np.array([[0.5, -0.2]], np.float32)  # a negative similarity weighs nothing
    out = expand_queries(query, near, scores, alpha=2.0)
    expected = np.array([1.0, 0.25, 0.0]) / np.linalg.norm([1.0, 0.25, 0.0])
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)


def _unit(*rows: list[float]) -> np.ndarray:
    return l2_normalise(np.array(rows, np.float32))


def test_reciprocal_order_demotes_a_neighbour_whose_own_neighbours_are_elsewhere() -> None:
    # The query q; three copies of it (a) a little off; a look-alike (d) closer to q by
    # cosine than two of the copies, but sitting in a tight group of others (e).
    query = _unit([1, 0, 0, 0])[0]
    shortlist = _unit([1, 0.30, 0, 0], [1, 0.5, 0.1, 0], [1, 0.55, 0, 0.1],  # a0 a1 a2
                      [1, 0, 0.45, 0],  # d
                      [0.9, 0, 0.6, 0.05], [0.9, 0, 0.6, -0.05], [0.88, 0, 0.62, 0])  # e
    cosine = shortlist @ query
    assert np.argsort(-cosine)[1] == 3  # plain search ranks d second
    order, distances = reciprocal_order(query, shortlist, Rerank(k=7, k1=3, k2=1, lam=0.1))
    assert set(order[:3].tolist()) == {0, 1, 2}
    assert (np.diff(distances) >= 0).all()
    # lambda 1 is the cosine distance alone: the plain order comes back
    plain, _ = reciprocal_order(query, shortlist, Rerank(k=7, k1=3, k2=1, lam=1.0))
    assert plain.tolist() == np.argsort(-cosine, kind="stable").tolist()


def _clustered(labels: int, per: int, distractors: int, noise: float,
               seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(labels, DIM))
    rows = [centres[c] + noise * rng.normal(size=DIM) for c in range(labels) for _ in range(per)]
    rows += [1.3 * noise * rng.normal(size=DIM) for _ in range(distractors)]
    names = [str(c) for c in range(labels) for _ in range(per)]
    names += [f"d{i}" for i in range(distractors)]
    return l2_normalise(np.array(rows, np.float32)), names


def test_eval_scores_the_reranked_ranking() -> None:
    vectors, labels = _clustered(30, 6, 500, noise=1.1)
    plain = score_vectors(vectors, labels, (1, 10))
    # k-reciprocal with lambda 1 keeps the cosine order: the same figures
    same = score_vectors(vectors, labels, (1, 10), Rerank(k=30, k1=10, k2=1, lam=1.0))
    assert same == plain
    # query expansion pulls the other members of a group up: mAP rises on groups of six
    expanded = score_vectors(vectors, labels, (1, 10), parse_rerank("aqe:n=3,alpha=1"))
    assert expanded.mAP > plain.mAP + 0.02
    assert expanded.queries == plain.queries


# --- the lookup over a real corpus ---


class CountingReads:
    """The store's reads, counting the rows whose vectors were read by id."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rows_read = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def vectors_for_rows(self, row_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        self.rows_read += len(row_ids)
        return self.store.vectors_for_rows(row_ids)


@pytest.fixture(scope="module", params=["flat", "ivf"])
def corpus(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[Corpus, CountingReads,
                                                              np.ndarray, np.ndarray]:
    folder = tmp_path_factory.mktemp("rerank")
    store = Store(make_engine(f"sqlite:///{folder / 'db.sqlite3'}"))
    store.upgrade()
    vectors, _ = _clustered(120, 8, 2000, noise=1.0, seed=3)
    metas = [VideoMeta(video_id=f"v{i:010d}", source="test", title=str(i))
             for i in range(len(vectors))]
    rows = store.add_embedded(metas, vectors, MODEL)
    index = VectorIndex(folder / "index", MODEL, DIM, store)
    index.rebuild(store, request.param)
    reads = CountingReads(store)
    opened = VectorIndex.open(folder / "index", MODEL, DIM, store)  # its own reads uncounted
    return Corpus(opened, reads), reads, np.asarray(rows), vectors  # type: ignore[arg-type]


def test_lookup_query_expansion_searches_the_expanded_query(
        corpus: tuple[Corpus, CountingReads, np.ndarray, np.ndarray]) -> None:
    found, reads, rows, vectors = corpus
    by_row = dict(zip(rows.tolist(), vectors, strict=True))
    query_rows = [int(rows[8 * 5]), int(rows[8 * 40 + 3])]
    queries = np.stack([by_row[r] for r in query_rows])
    plain = reranked_pairs(found, queries, 10, query_rows, NO_RERANK)
    _, ids = found.index.search(queries, 11)
    assert [r for r, _ in plain[0]] == [int(i) for i in ids[0] if i != query_rows[0]][:10]

    before = reads.rows_read
    options = parse_rerank("aqe:n=3,alpha=2")
    answers = reranked_pairs(found, queries, 10, query_rows, options)
    read = reads.rows_read - before
    # an exact index gives vectors from memory; else the top 3 of each query and the
    # results whose cosine the first search did not give are read by id
    assert read == 0 if found.index.exact else 6 <= read <= 2 * 3 + 2 * 10
    for i, answer in enumerate(answers):
        top = [(r, s) for r, s in plain[i][:3]]
        expanded = queries[i] + sum(max(s, 0) ** 2 * by_row[r] for r, s in top)
        expanded /= np.linalg.norm(expanded)
        exact = sorted((r for r in by_row if r != query_rows[i]),
                       key=lambda r: -float(by_row[r] @ expanded))[:10]
        got = [r for r, _ in answer]
        assert query_rows[i] not in got
        assert len(set(got) & set(exact)) >= 9  # IVF may miss one
        for r, s in answer:  # scores stay cosines with the original query
            assert s == pytest.approx(float(by_row[r] @ queries[i]), abs=1e-5)


def test_lookup_k_reciprocal_reorders_the_shortlist_only(
        corpus: tuple[Corpus, CountingReads, np.ndarray, np.ndarray]) -> None:
    found, _, rows, vectors = corpus
    by_row = dict(zip(rows.tolist(), vectors, strict=True))
    query = vectors[8 * 7][None, :]
    options = parse_rerank("kr:k=20,k1=5,k2=2")
    plain = reranked_pairs(found, query, 30, [None], NO_RERANK)[0]
    answer = reranked_pairs(found, query, 30, [None], options)[0]
    head = [r for r, _ in plain[:20]]
    assert sorted(r for r, _ in answer[:20]) == sorted(head)
    assert answer[20:] == plain[20:]
    order, _ = reciprocal_order(query[0], np.stack([by_row[r] for r in head]), options)
    assert [r for r, _ in answer[:20]] == [head[p] for p in order]


# --- the commands ---


@pytest.fixture(scope="module")
def neardup_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    photos = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "rocket", "astronaut"):
        photo = samples.sample_photos()[name]
        photo.thumbnail((320, 320))
        photo.save(photos / f"{name}.png")
    out = tmp_path_factory.mktemp("neardup")
    make_neardup(photos, out, variants=4, seed=2)
    return out


def test_evaluate_sets_records_rerank_and_whitening(neardup_set: Path,
                                                    settings: Settings) -> None:
    with build_service(settings, embedder=TinyEmbedder()) as service:
        plain = evaluate_sets(service, [neardup_set], [1, 5])
        run = evaluate_sets(service, [neardup_set], [1, 5], rerank=parse_rerank("aqe"),
                            whiten_on=neardup_set)
    data = run.to_json()
    name = neardup_set.name
    assert data["rerank"]["name"] == "aqe:n=2,alpha=3" and data["whitening"] == name
    assert run.options == f"pcaw({name})+aqe:n=2,alpha=3"
    assert plain.to_json()["rerank"] == {"name": "none"} and plain.to_json()["whitening"] is None
    # whitening learned on the set itself changes the vectors (fewer dimensions than 192)
    assert run.sets[0].vectors.shape[1] < plain.sets[0].vectors.shape[1]


@pytest.mark.parametrize("args", [["similar", "abcdefghijk", "--rerank", "bogus"],
                                  ["eval", "x", "--rerank", "kr:k=1000"],
                                  ["eval", "--corpus", "--label-by", "channel",
                                   "--whiten-on", "x"]])
def test_bad_search_options_are_usage_errors(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_eval_json_names_the_search_options(neardup_set: Path) -> None:
    result = runner.invoke(app, ["eval", str(neardup_set), "--json", "--rerank", "kr:k=10,k1=4"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["rerank"]["kr"]["k"] == 10
    assert data["datasets"][0]["recall"]["1"] >= 0.9


def test_eval_table_names_a_column_by_its_options() -> None:
    from bench.eval_table import column

    assert column({"model": "m"}) == "m"
    assert column({"model": "m", "rerank": {"name": "none"}, "whitening": None}) == "m"
    assert column({"model": "m", "rerank": {"name": "aqe:n=2,alpha=3"},
                   "whitening": "tiles"}) == "m pcaw(tiles)+aqe:n=2,alpha=3"

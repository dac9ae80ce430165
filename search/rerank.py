"""Search options after the first search: alpha query expansion and k-reciprocal re-ranking
(parsed here, cheap to import; the work is in ``search.reranking``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from indexer.bounds import quote
from indexer.errors import UsageError

__all__ = ["MAX_TEXT", "NO_RERANK", "RERANK_HELP", "Rerank", "parse_rerank"]

# Defaults chosen by measurement (docs/evaluation.md, "Search options").
QE_NEIGHBOURS = 2
QE_ALPHA = 3.0
KR_SHORTLIST = 30
KR_K1 = 10
KR_K2 = 1
KR_LAMBDA = 0.7
MAX_SHORTLIST = 200  # bounds the k x k similarities of k-reciprocal re-ranking
MAX_EXPAND = 50
MAX_TEXT = 100

RERANK_HELP = ("none, aqe (alpha query expansion), kr (k-reciprocal re-ranking) or aqe+kr; "
               "parameters as aqe:n=2,alpha=3 or kr:k=30,k1=10,k2=3,lambda=0.3")


@dataclass(frozen=True)
class Rerank:
    """What to do after the first search; ``n == 0`` and ``k == 0`` switch a step off.

    alpha-QE (Radenović et al.): the query plus its top ``n`` neighbours' vectors, each
    weighted by its similarity to the power ``alpha``, normalised and searched again.
    k-reciprocal (Zhong et al. 2017), bounded to the top ``k``: each of them is described by
    its reciprocal ``k1``-neighbours among the shortlist and the query (averaged over its
    ``k2`` nearest), and the shortlist is re-ordered by ``lam`` x the cosine distance plus
    ``1 - lam`` x the Jaccard distance of those descriptions.
    """

    n: int = 0
    alpha: float = QE_ALPHA
    k: int = 0
    k1: int = KR_K1
    k2: int = KR_K2
    lam: float = KR_LAMBDA

    @property
    def active(self) -> bool:
        """True when re-ranking changes anything."""
        return self.n > 0 or self.k > 0

    @property
    def name(self) -> str:
        """The canonical spelling, which ``parse_rerank`` reads back."""
        steps = []
        if self.n:
            steps.append(f"aqe:n={self.n},alpha={self.alpha:g}")
        if self.k:
            steps.append(f"kr:k={self.k},k1={self.k1},k2={self.k2},lambda={self.lam:g}")
        return "+".join(steps) or "none"

    def shortlist(self, k: int) -> int:
        """How many neighbours the first search must return to answer ``k``."""
        return max(k, self.n, self.k)

    def to_json(self) -> dict[str, Any]:
        """The options as recorded in ``eval --json``."""
        out: dict[str, Any] = {"name": self.name}
        if self.n:
            out["aqe"] = {"n": self.n, "alpha": self.alpha}
        if self.k:
            out["kr"] = {"k": self.k, "k1": self.k1, "k2": self.k2, "lambda": self.lam}
        return out


NO_RERANK = Rerank()


def _number(step: str, key: str, text: str, low: float, high: float,
            whole: bool) -> float:
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise UsageError(f"rerank {step}: {key} must be {kind} within {low:g}..{high:g}, "
                         f"got {quote(text)}")
    return value


def parse_rerank(text: str) -> Rerank:
    """``"aqe"``, ``"kr:k=30"``, ``"aqe:n=2,alpha=3+kr"`` or ``"none"`` -> Rerank;
    UsageError (exit 2) otherwise."""
    text = text.strip().lower()
    if len(text) > MAX_TEXT:
        raise UsageError(f"rerank is at most {MAX_TEXT} characters")
    if text in ("", "none"):
        return NO_RERANK
    fields: dict[str, float] = {}
    seen: set[str] = set()
    keys = {"aqe": {"n": (1, MAX_EXPAND, True), "alpha": (0, 20, False)},
            "kr": {"k": (2, MAX_SHORTLIST, True), "k1": (1, MAX_SHORTLIST, True),
                   "k2": (1, MAX_SHORTLIST, True), "lambda": (0, 1, False)}}
    for step in text.split("+"):
        name, _, params = step.partition(":")
        name = name.strip()
        if name not in keys or name in seen:
            raise UsageError(f"rerank must be {RERANK_HELP}; got {quote(text)}")
        seen.add(name)
        fields["n" if name == "aqe" else "k"] = QE_NEIGHBOURS if name == "aqe" else KR_SHORTLIST
        for pair in filter(None, (p.strip() for p in params.split(","))):
            key, _, value = pair.partition("=")
            key = key.strip()
            if key not in keys[name]:
                raise UsageError(f"rerank {name} takes {', '.join(keys[name])}; "
                                 f"got {quote(pair)}")
            low, high, whole = keys[name][key]
            fields[key] = _number(name, key, value.strip(), low, high, whole)
    out = Rerank(n=int(fields.get("n", 0)), alpha=float(fields.get("alpha", QE_ALPHA)),
                 k=int(fields.get("k", 0)), k1=int(fields.get("k1", KR_K1)),
                 k2=int(fields.get("k2", KR_K2)), lam=float(fields.get("lambda", KR_LAMBDA)))
    if out.k and (out.k1 > out.k or out.k2 > out.k):
        raise UsageError(f"rerank kr: k1 and k2 must not exceed k, got {quote(text)}")
    return out

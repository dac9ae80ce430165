"""The re-upload threshold, chosen from the pair scores of labelled sets.
``python -m search.eval.threshold SET_DIR... [--model M] [--json]`` measures and prints it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import ThumbsearchError
from indexer.service import Service
from search.eval.evaluate import embed_sets
from search.eval.pairs import pair_scores, upper_pairs

__all__ = [
    "CANDIDATES",
    "FALSE_MATCH_RATE",
    "LOOKS_ALIKE_RATE",
    "ORIGINAL",
    "Candidate",
    "SetPairs",
    "ThresholdStudy",
    "choose_threshold",
    "format_study",
    "main",
    "measure_thresholds",
    "set_pairs",
    "study",
]

#: The rule: the lowest candidate at which at most this share of the non-matching pairs score
#: at or above it (one false alert per 100,000 pairs: 100 watched items, 1,000 new videos).
FALSE_MATCH_RATE = 1e-5
#: "Looks alike" starts where at most this share of unrelated pairs score at or above it.
LOOKS_ALIKE_RATE = 0.01
CANDIDATES = tuple(round(0.50 + 0.01 * step, 2) for step in range(50))  # 0.50 .. 0.99
#: The stem of the image a label's re-uploads were made from (hardset, make-neardup); a label
#: without one is a class of different images that only look alike (the Tux Paint set).
ORIGINAL = "original"
REUPLOAD_QUANTILES = (("min", 0.0), ("1%", 0.01), ("5%", 0.05), ("10%", 0.10),
                      ("median", 0.5))
NON_MATCH_QUANTILES = (("99%", 0.99), ("99.9%", 0.999), ("99.99%", 0.9999), ("max", 1.0))
TABLE_FROM = 0.70  # the printed table's candidates: TABLE_FROM .. TABLE_TO
TABLE_TO = 0.95


@dataclass(frozen=True)
class SetPairs:
    """The scores of one set's pairs (or of several sets'), by what the pair is."""

    name: str
    reuploads: np.ndarray  # same label, in a label made from an original
    from_original: np.ndarray  # of those, the original against each of its re-uploads
    by_kind: dict[str, np.ndarray]  # the original against the re-uploads of one kind
    looks_alike: np.ndarray  # same label, in a class of different images: not re-uploads
    unrelated: np.ndarray  # different labels, except two distractors
    left_out: int  # pairs of two distractors (labels of one image): not known to differ

    @property
    def non_matching(self) -> np.ndarray:
        """Every pair that is not a re-upload: the unrelated and the look-alike ones."""
        return np.concatenate([self.unrelated, self.looks_alike])


@dataclass(frozen=True)
class Candidate:
    """What one threshold keeps: shares of each kind of pair scoring at or above it."""

    threshold: float
    recall: float  # of the re-upload pairs
    recall_from_original: float  # of the original-vs-re-upload pairs
    false_match_rate: float  # of the non-matching pairs
    false_matches: int
    looks_alike: float  # of the look-alike pairs


@dataclass(frozen=True)
class ThresholdStudy:
    """The measured distributions, the candidates and the chosen thresholds."""

    model: str
    sets: list[SetPairs]
    total: SetPairs
    candidates: list[Candidate]
    chosen: float | None  # the re-upload threshold (None: no candidate meets the rate)
    looks_alike_from: float | None  # where "looks alike" starts
    rate: float = FALSE_MATCH_RATE
    failed: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Everything printed, as one JSON object."""
        return {
            "model": self.model,
            "rule": {"false_match_rate": self.rate, "looks_alike_rate": LOOKS_ALIKE_RATE},
            "chosen": self.chosen, "looks_alike_from": self.looks_alike_from,
            "all": _pairs_json(self.total), "sets": [_pairs_json(s) for s in self.sets],
            "candidates": [{"threshold": c.threshold, "recall": round(c.recall, 6),
                            "recall_from_original": round(c.recall_from_original, 6),
                            "false_match_rate": c.false_match_rate,
                            "false_matches": c.false_matches,
                            "looks_alike": round(c.looks_alike, 6)} for c in self.candidates],
            "failed": [{"item": item, "reason": reason} for item, reason in self.failed],
        }


def _quantiles(scores: np.ndarray, which: Sequence[tuple[str, float]]) -> dict[str, float]:
    if not len(scores):
        return {}
    values = np.quantile(scores, [q for _, q in which])
    return {name: round(float(v), 4) for (name, _), v in zip(which, values, strict=True)}


def _pairs_json(pairs: SetPairs) -> dict[str, Any]:
    def part(scores: np.ndarray, which: Sequence[tuple[str, float]]) -> dict[str, Any]:
        return {"count": len(scores), **_quantiles(scores, which)}

    return {"name": pairs.name,
            "reuploads": part(pairs.reuploads, REUPLOAD_QUANTILES),
            "from_original": part(pairs.from_original, REUPLOAD_QUANTILES),
            "kinds": {k: part(v, REUPLOAD_QUANTILES) for k, v in pairs.by_kind.items()},
            "non_matching": part(pairs.non_matching, NON_MATCH_QUANTILES),
            "unrelated": part(pairs.unrelated, NON_MATCH_QUANTILES),
            "looks_alike": part(pairs.looks_alike, NON_MATCH_QUANTILES),
            "distractor_pairs_left_out": pairs.left_out}


def set_pairs(name: str, vectors: np.ndarray, labels: Sequence[str],
              originals: Sequence[bool], kinds: Sequence[str | None] = ()) -> SetPairs:
    """Score every pair of a set's L2-normalised ``vectors`` and sort the pairs: re-uploads
    (same label, in a label holding an image marked in ``originals``), look-alikes (same label,
    no original), unrelated (different labels) and left out (two distractors: labels of one
    image, which in the hard set repeat the same stamps and photo regions). ``kinds`` names
    each image's variant kind, to split the original-vs-re-upload pairs by kind."""
    codes = np.unique(np.asarray(labels, dtype=object), return_inverse=True)[1].reshape(-1)
    is_original = np.asarray(originals, dtype=bool).reshape(-1)
    if len(codes) != len(vectors) or len(is_original) != len(vectors):
        raise ValueError("one label and one original flag per vector")
    counts = np.bincount(codes)
    made_from_original = np.bincount(codes, weights=is_original) > 0
    distractor = counts[codes] < 2
    upper_i, upper_j = upper_pairs(len(codes))
    scores = pair_scores(vectors, upper_i, upper_j)
    same = codes[upper_i] == codes[upper_j]
    reupload = same & made_from_original[codes[upper_i]]
    from_original = reupload & (is_original[upper_i] != is_original[upper_j])
    by_kind: dict[str, np.ndarray] = {}
    if any(kind is not None for kind in kinds):
        copy = np.where(is_original[upper_i], upper_j, upper_i)[from_original]
        copy_kinds = np.asarray([str(k) for k in kinds], dtype=object)[copy]
        for kind in sorted(set(copy_kinds.tolist())):
            by_kind[kind] = scores[from_original][copy_kinds == kind]
    both_distractors = distractor[upper_i] & distractor[upper_j]
    return SetPairs(name=name, reuploads=scores[reupload], from_original=scores[from_original],
                    by_kind=by_kind, looks_alike=scores[same & ~reupload],
                    unrelated=scores[~same & ~both_distractors],
                    left_out=int(both_distractors.sum()))


def _together(sets: Sequence[SetPairs]) -> SetPairs:
    kinds = sorted({kind for s in sets for kind in s.by_kind})

    def joined(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays) if arrays else np.zeros(0)

    return SetPairs(name="all sets",
                    reuploads=joined([s.reuploads for s in sets]),
                    from_original=joined([s.from_original for s in sets]),
                    by_kind={k: joined([s.by_kind[k] for s in sets if k in s.by_kind])
                             for k in kinds},
                    looks_alike=joined([s.looks_alike for s in sets]),
                    unrelated=joined([s.unrelated for s in sets]),
                    left_out=sum(s.left_out for s in sets))


def _share_at_or_above(scores: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    ordered = np.sort(scores)
    above = len(ordered) - np.searchsorted(ordered, np.asarray(thresholds), side="left")
    return above / max(1, len(ordered))


def choose_threshold(scores: np.ndarray, rate: float,
                     candidates: Sequence[float] = CANDIDATES) -> float | None:
    """The lowest candidate at which at most ``rate`` of ``scores`` are at or above it
    (None when none is)."""
    if not len(scores):
        return None
    shares = _share_at_or_above(scores, candidates)
    ok = [t for t, share in zip(candidates, shares, strict=True) if share <= rate]
    return min(ok) if ok else None


def study(sets: Sequence[SetPairs], model: str, rate: float = FALSE_MATCH_RATE,
          candidates: Sequence[float] = CANDIDATES) -> ThresholdStudy:
    """The candidates' rates over all the sets' pairs together, and the chosen thresholds:
    re-upload at ``rate`` false matches, looks-alike at LOOKS_ALIKE_RATE of unrelated pairs."""
    total = _together(sets)
    non_matching = total.non_matching
    rates = _share_at_or_above(non_matching, candidates)
    rows = [Candidate(threshold=t, recall=float(r), recall_from_original=float(o),
                      false_match_rate=float(f), false_matches=round(f * len(non_matching)),
                      looks_alike=float(a))
            for t, r, o, f, a in zip(candidates,
                                     _share_at_or_above(total.reuploads, candidates),
                                     _share_at_or_above(total.from_original, candidates),
                                     rates, _share_at_or_above(total.looks_alike, candidates),
                                     strict=True)]
    return ThresholdStudy(model=model, sets=list(sets), total=total, candidates=rows,
                          chosen=choose_threshold(non_matching, rate, candidates),
                          looks_alike_from=choose_threshold(total.unrelated, LOOKS_ALIKE_RATE,
                                                            candidates),
                          rate=rate)


def measure_thresholds(service: Service, paths: Sequence[Path],
                       rate: float = FALSE_MATCH_RATE) -> ThresholdStudy:
    """Embed the labelled sets with the service's model (through the evaluation's cache) and
    study their pairs; pairs are only formed within a set."""
    sets, failed = [], []
    for embedded in embed_sets(service, paths):
        items = embedded.items
        sets.append(set_pairs(embedded.name, embedded.vectors, [i.label for i in items],
                              [i.path is not None and i.path.stem == ORIGINAL for i in items],
                              [i.kind for i in items]))
        failed.extend(embedded.failed)
    return replace(study(sets, service.spec.model_id, rate), failed=failed)


def _row(title: str, scores: np.ndarray, which: Sequence[tuple[str, float]],
         chosen: float | None, rate: bool) -> str:
    """Count, quantiles and the share at or above the chosen threshold (kept re-uploads, or a
    false-match ``rate``)."""
    values = _quantiles(scores, which)
    cells = "".join(f"{values[name]:>8.4f}" if values else f"{'-':>8}" for name, _ in which)
    share = ""
    if chosen is not None and len(scores):
        kept = float(np.mean(scores >= chosen))
        share = f"{kept:>10.2e}" if rate else f"{kept:>10.4f}"
    return f"  {title:<44}{len(scores):>10,}{cells}{share}"


def format_study(result: ThresholdStudy) -> str:
    """The printed report: distributions, the candidates' table and the chosen values."""
    chosen = result.chosen
    at = f"{'>= ' + format(chosen, '.2f'):>10}" if chosen is not None else ""
    lines = [f"model {result.model}; pairs are formed within each set, never across sets", "",
             f"re-upload pairs (same source photo){'count':>21}"
             + "".join(f"{name:>8}" for name, _ in REUPLOAD_QUANTILES) + at]
    for pairs in [result.total, *result.sets]:
        lines.append(_row(f"{pairs.name}", pairs.reuploads, REUPLOAD_QUANTILES, chosen, False))
        if len(pairs.from_original):
            lines.append(_row(f"{pairs.name}: original vs re-upload", pairs.from_original,
                              REUPLOAD_QUANTILES, chosen, False))
        if pairs is not result.total:
            lines.extend(_row(f"{pairs.name}: original vs {kind}", scores, REUPLOAD_QUANTILES,
                              chosen, False)
                         for kind, scores in pairs.by_kind.items())
    lines += ["", f"non-matching pairs{'count':>38}"
              + "".join(f"{name:>8}" for name, _ in NON_MATCH_QUANTILES) + at]
    for pairs in [result.total, *result.sets]:
        lines.append(_row(pairs.name, pairs.non_matching, NON_MATCH_QUANTILES, chosen, True))
        if len(pairs.looks_alike):
            lines.append(_row(f"{pairs.name}: other label", pairs.unrelated,
                              NON_MATCH_QUANTILES, chosen, True))
            lines.append(_row(f"{pairs.name}: looks alike, not a re-upload",
                              pairs.looks_alike, NON_MATCH_QUANTILES, chosen, True))
        if pairs.left_out and pairs is not result.total:
            lines.append(f"  ({pairs.name}: {pairs.left_out:,} pairs of two distractors "
                         "left out: distractors repeat stamps and photo regions)")
    lines += ["", "threshold  re-uploads kept  original vs re-upload kept  false-match rate"
                  "  false matches  looks alike kept"]
    for c in result.candidates:
        if TABLE_FROM - 1e-9 <= c.threshold <= TABLE_TO + 1e-9 or c.threshold == result.chosen:
            mark = "  <- chosen" if c.threshold == result.chosen else ""
            lines.append(f"{c.threshold:>9.2f}  {c.recall:>15.4f}  {c.recall_from_original:>26.4f}"
                         f"  {c.false_match_rate:>16.2e}  {c.false_matches:>13,}"
                         f"  {c.looks_alike:>16.4f}{mark}")
    non_matching = len(result.total.non_matching)
    lines.append("")
    if result.chosen is None:
        lines.append(f"no candidate keeps the false-match rate at or below {result.rate:g} "
                     f"over {non_matching:,} non-matching pairs")
    else:
        lines.append(f"re-upload threshold: {result.chosen:.2f}, the lowest candidate at which "
                     f"at most {result.rate:g} of the {non_matching:,} non-matching pairs "
                     "score at or above it")
    if result.looks_alike_from is not None:
        alike = result.total.looks_alike
        kept = (f"; it keeps {float(np.mean(alike >= result.looks_alike_from)):.4f} of the "
                f"{len(alike):,} look-alike pairs" if len(alike) else "")
        lines.append(f"looks alike from: {result.looks_alike_from:.2f}, the lowest candidate at "
                     f"which at most {LOOKS_ALIKE_RATE:g} of the "
                     f"{len(result.total.unrelated):,} unrelated pairs score at or above it"
                     + kept)
    lines.extend(f"failed: {item}: {reason}" for item, reason in result.failed)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the thresholds on the labelled sets given on the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m search.eval.threshold",
        description="Choose the re-upload threshold from the pair scores of labelled sets: "
                    "the lowest score at which at most 1 in 100,000 non-matching pairs "
                    "scores as high.")
    parser.add_argument("sets", nargs="+", type=Path, metavar="SET_DIR",
                        help="labelled set (a folder of label folders, or a CSV)")
    parser.add_argument("--model", help="model to embed with (default THUMBSEARCH_MODEL)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    from indexer.service import build_service
    from indexer.settings import Settings

    try:
        settings = Settings.from_env()
        if args.model is not None:
            settings = settings.with_model(args.model)
        with build_service(settings) as service:
            result = measure_thresholds(service, args.sets)
    except ThumbsearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(result.to_json(), indent=1) if args.json else format_study(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

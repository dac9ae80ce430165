"""The HTML evaluation report: tables, a recall@k plot, score histograms and query galleries,
in a folder that works offline (jinja2 page, matplotlib PNGs, small JPEG thumbnails)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from indexer.errors import ImageDecodeError, StoreError
from indexer.images.decode import decode_image
from search.eval.evaluate import EvalRun, SetEvaluation
from search.eval.metrics import average_precisions
from search.eval.pairs import label_pair_scores
from search.html import render

__all__ = ["GALLERY_NEIGHBOURS", "GALLERY_PER_KIND", "GALLERY_QUERIES", "gallery_entries",
           "write_report"]

GALLERY_QUERIES = 6
GALLERY_PER_KIND = 3  # worst queries shown for each variant kind
GALLERY_NEIGHBOURS = 5
THUMB_SIZE = (240, 180)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _recall_plot(run: EvalRun, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for s in run.sets:
        ax.plot(run.ks, [s.scores.recall[k] for k in run.ks], marker="o", label=s.name)
    ax.set_xscale("log")
    ax.set_xticks(run.ks, [str(k) for k in run.ks])
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(run.model)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _histogram(result: SetEvaluation, path: Path) -> None:
    relevant, irrelevant = label_pair_scores(result.vectors, result.labels)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    low = min([-0.2, *(float(a.min()) for a in (relevant, irrelevant) if len(a))])
    bins = np.linspace(low, 1.0, 61)
    for scores, what in ((irrelevant, "other label"), (relevant, "same label")):
        if len(scores):  # a set with a single label has no irrelevant pairs
            ax.hist(scores, bins=bins, density=True, alpha=0.6, label=f"{what} ({len(scores)})")
    ax.set_xlabel("cosine similarity of a pair")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    ax.set_title(result.name)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class _Thumbs:
    """Writes each shown image once as a small JPEG under the report folder."""

    def __init__(self, folder: Path, prefix: str, result: SetEvaluation) -> None:
        self.folder, self.prefix, self.result = folder, prefix, result
        self.done: dict[int, str | None] = {}

    def __call__(self, i: int) -> str | None:
        if i not in self.done:
            data = self.result.read_image(i)
            name: str | None = None
            if data is not None:
                try:
                    image = decode_image(data, self.result.names[i])
                except ImageDecodeError:
                    image = None
                if image is not None:
                    image.thumbnail(THUMB_SIZE, Image.Resampling.LANCZOS)
                    buffer = io.BytesIO()
                    image.save(buffer, "JPEG", quality=85)
                    target = self.folder / f"{self.prefix}-{i}.jpg"
                    target.write_bytes(buffer.getvalue())
                    name = f"{self.folder.name}/{target.name}"
            self.done[i] = name
        return self.done[i]


def gallery_entries(result: SetEvaluation, rows: list[int], image_url: Any,
                    ap: dict[int, float] | None = None,
                    neighbours: int = GALLERY_NEIGHBOURS) -> list[dict[str, Any]]:
    """Data for the gallery macro: each query row with its top neighbours (exact cosine)."""
    vectors = result.vectors.astype(np.float64)
    entries = []
    for row in rows:
        scores = vectors @ vectors[row]
        scores[row] = -np.inf
        order = np.lexsort((np.arange(len(scores)), -scores))[:neighbours]
        entries.append({
            "name": result.names[row], "label": result.labels[row], "image": image_url(row),
            "ap": None if ap is None else ap.get(row),
            "neighbours": [{"rank": r, "name": result.names[j], "label": result.labels[j],
                            "image": image_url(int(j)), "score": float(scores[j]),
                            "relevant": result.labels[j] == result.labels[row]}
                           for r, j in enumerate(order.tolist(), start=1)],
        })
    return entries


def write_report(run: EvalRun, folder: Path) -> Path:
    """Write the report into ``folder`` and return the path of its index.html."""
    thumbs = folder / "thumbs"
    try:
        thumbs.mkdir(parents=True, exist_ok=True)
        _recall_plot(run, folder / "recall.png")
        sets = []
        for number, result in enumerate(run.sets, start=1):
            histogram = f"scores-{number}.png"
            _histogram(result, folder / histogram)
            ap = average_precisions(result.vectors, result.labels)
            queries = sorted(ap)
            step = max(1, len(queries) // GALLERY_QUERIES)
            sample = queries[::step][:GALLERY_QUERIES]
            worst = sorted(queries, key=lambda q: (ap[q], q))[:GALLERY_QUERIES]
            image_url = _Thumbs(thumbs, str(number), result)
            by_kind = []
            for kind, kind_scores in result.by_kind.items():
                rows = sorted((q for q in queries if result.kinds[q] == kind),
                              key=lambda q: (ap[q], q))[:GALLERY_PER_KIND]
                by_kind.append({"kind": kind, "scores": kind_scores,
                                "worst": gallery_entries(result, rows, image_url, ap)})
            sets.append({
                "name": result.name, "scores": result.scores, "images": len(result.labels),
                "approximate": result.approximate, "failed": result.failed,
                "histogram": histogram,
                "sample": gallery_entries(result, sample, image_url, ap),
                "worst": gallery_entries(result, worst, image_url, ap),
                "by_kind": by_kind,
            })
        page = folder / "index.html"
        page.write_text(render("report.html.j2", run=run, sets=sets, recall_plot="recall.png"),
                        "utf-8")
    except OSError as exc:
        raise StoreError(f"cannot write the report in {folder}: {exc.strerror or exc}") from exc
    return page

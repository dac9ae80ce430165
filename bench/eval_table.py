"""Print the README's "How well does it work?" table from `thumbsearch eval --json` files.

Each file is one model's evaluation of the same datasets; models become columns,
datasets rows (a set with variant kinds adds a row per kind under it), and each cell is
recall@1 / recall@10 / mAP.

Run: ``make eval`` (which writes the files), or
``.venv/bin/python -m bench.eval_table build/eval/eval-*.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(files: list[Path]) -> str:
    """The markdown table of the given evaluation files, in the order given."""
    runs = [json.loads(path.read_text()) for path in files]
    models = [run["model"] for run in runs]
    names = [d["name"] for d in runs[0]["datasets"]]
    lines = ["| dataset | images, labels | " + " | ".join(models) + " |",
             "| --- | --- | " + " | ".join("---" for _ in models) + " |"]
    for name in names:
        cells = []
        first = next(d for d in runs[0]["datasets"] if d["name"] == name)
        for run in runs:
            d = next(x for x in run["datasets"] if x["name"] == name)
            cells.append(f"{d['recall']['1']:.3f} / {d['recall']['10']:.3f} / {d['mAP']:.3f}")
        size = f"{first.get('images', first['queries'] + first['distractors'])}, {first['labels']}"
        lines.append(f"| {name} | {size} | " + " | ".join(cells) + " |")
        for kind, scores in first.get("kinds", {}).items():
            cells = []
            for run in runs:
                d = next(x for x in run["datasets"] if x["name"] == name)
                k = d.get("kinds", {}).get(kind)
                cells.append("-" if k is None else
                             f"{k['recall']['1']:.3f} / {k['recall']['10']:.3f} / {k['mAP']:.3f}")
            lines.append(f"| {name}: {kind} | {scores['queries']} queries | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    """Print the table of the files named on the command line."""
    files = [Path(p) for p in sys.argv[1:]]
    if not files:
        raise SystemExit("usage: python -m bench.eval_table EVAL.json [EVAL.json ...]")
    print(table(files))


if __name__ == "__main__":
    main()

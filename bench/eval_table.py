"""Print the README's "How well does it work?" table from `thumbsearch eval --json` files.

Each file is one evaluation of the same datasets (a model, with its search options when
it has any: ``--rerank``, ``--whiten-on``); they become columns, datasets rows (a set with
variant kinds adds a row per kind under it), and each cell is recall@1 / recall@10 / mAP.

Run: ``make eval`` (which writes the files), or
``.venv/bin/python -m bench.eval_table build/eval/eval-*.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def column(run: dict[str, Any]) -> str:
    """A column's title: the model, then its search options when it has any."""
    options = [] if run.get("whitening") is None else [f"pcaw({run['whitening']})"]
    rerank = run.get("rerank", {}).get("name", "none")
    if rerank != "none":
        options.append(rerank)
    return " ".join([run["model"], "+".join(options)]) if options else str(run["model"])


def table(files: list[Path]) -> str:
    """The markdown table of the given evaluation files, in the order given."""
    runs = [json.loads(path.read_text()) for path in files]
    models = [column(run) for run in runs]
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

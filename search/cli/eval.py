"""``thumbsearch eval``: retrieval quality on labelled sets or on the corpus."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from indexer.bounds import quote
from indexer.errors import UsageError
from search.cli.formats import wrote
from search.cli.helptext import examples
from search.cli.output import echo_json
from search.cli.progress import progress_reporter
from search.cli.tables import Column, echo_table
from search.rerank import RERANK_HELP, parse_rerank

if TYPE_CHECKING:
    from search.eval.evaluate import EvalRun

__all__ = ["evaluate", "register"]


def _print_table(run: EvalRun) -> None:
    ks = run.ks
    typer.echo(f"model {run.model}, search {run.options}")
    columns = (Column("dataset", "title"), Column("queries", "number"),
               Column("labels", "number"), Column("distr.", "number"),
               *(Column(f"R@{k}", "number") for k in ks),
               *(Column(f"P@{k}", "number") for k in ks), Column("mAP", "number"))
    echo_table(columns, [(s.name, s.scores.queries, s.scores.labels, s.scores.distractors,
                          *(f"{s.scores.recall[k]:.3f}" for k in ks),
                          *(f"{s.scores.precision[k]:.3f}" for k in ks), f"{s.scores.mAP:.3f}")
                         for s in run.sets])
    for s in run.sets:
        if s.by_kind:
            typer.echo(f"{s.name}, by variant kind:")
            echo_table((Column("kind", "title"), Column("queries", "number"),
                        *(Column(f"R@{k}", "number") for k in ks), Column("mAP", "number")),
                       [(kind, b.queries, *(f"{b.recall[k]:.3f}" for k in ks), f"{b.mAP:.3f}")
                        for kind, b in s.by_kind.items()])
        if s.approximate is not None:
            typer.echo(f"{s.name}: {run.index_type} recall vs exact "
                       + ", ".join(f"@{k} {v:.3f}" for k, v in s.approximate.items()))
        for item, reason in s.failed:
            typer.echo(f"  skipped {item}: {reason}")


def evaluate(
    ctx: typer.Context,
    datasets: Annotated[list[Path] | None, typer.Argument(
        metavar="DATASET...",
        help="A folder with one subfolder per label, or a CSV of path_or_video_id,label.",
        show_default=False)] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Model to evaluate (default: THUMBSEARCH_MODEL).")] = None,
    k: Annotated[str, typer.Option("-k", "--top-k", metavar="K,K,...",
                                   help="Comma-separated cut-offs for recall@k and "
                                        "precision@k.")] = "1,5,10",
    old_k: Annotated[str | None, typer.Option("--k", hidden=True)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    report: Annotated[Path | None, typer.Option(
        "--report", metavar="DIR", help="Write an HTML report (tables, plots, galleries) "
                                        "into DIR.")] = None,
    corpus: Annotated[bool, typer.Option(
        "--corpus", help="Evaluate the ingested corpus with its stored vectors.")] = False,
    labels: Annotated[Path | None, typer.Option(
        "--labels", metavar="FILE", help="With --corpus: a CSV of video_id,label.")] = None,
    label_by: Annotated[str | None, typer.Option(
        "--label-by", metavar="query|channel",
        help="With --corpus: label each video by the first query that found it or its "
             "channel.")] = None,
    index: Annotated[str, typer.Option(
        "--index", metavar="exact|hnsw|ivf",
        help="Also score an in-memory approximate FAISS index against exact search.")] = "exact",
    rerank: Annotated[str, typer.Option(
        "--rerank", metavar="SPEC", help=f"Re-rank every answer: {RERANK_HELP}.")] = "none",
    whiten_on: Annotated[Path | None, typer.Option(
        "--whiten-on", metavar="DIR",
        help="Learn a PCA-whitening on the images under DIR (e.g. distractors like the "
             "corpus) and apply it to every set before scoring.")] = None,
) -> None:
    """Measure retrieval quality: recall@k, precision@k and mAP per labelled set.

    Every image whose label has another image is a query; the others are ranked by
    cosine similarity. Embeddings are cached by file hash and model under
    THUMBSEARCH_HOME/cache/eval, so a second run does not embed again.
    """
    from indexer.service import build_service
    from search.eval.evaluate import LABEL_BY, evaluate_corpus, evaluate_sets, parse_ks
    from search.eval.metrics import INDEX_TYPES

    ks = parse_ks(old_k if old_k is not None else k)
    options = parse_rerank(rerank)
    if whiten_on is not None and corpus:
        raise UsageError("--whiten-on goes with DATASET paths, not --corpus")
    if index not in INDEX_TYPES:
        raise UsageError(f"--index must be one of {', '.join(INDEX_TYPES)}, got {quote(index)}")
    if corpus == bool(datasets):
        raise UsageError("give DATASET paths or --corpus (with --labels FILE or --label-by), "
                         "not both")
    if not corpus and (labels is not None or label_by is not None):
        raise UsageError("--labels and --label-by go with --corpus")
    if corpus and (labels is None) == (label_by is None):
        raise UsageError("--corpus takes either --labels FILE or --label-by query|channel")
    if label_by is not None and label_by not in LABEL_BY:
        raise UsageError(f"--label-by must be one of {', '.join(LABEL_BY)}, "
                         f"got {quote(label_by)}")
    settings = ctx.obj if model is None else ctx.obj.with_model(model)
    with progress_reporter(as_json) as progress, \
            build_service(settings, progress=progress) as service:
        if corpus:
            run = evaluate_corpus(service, labels_file=labels, label_by=label_by, ks=ks,
                                  index_type=index, progress=progress, rerank=options)
        else:
            run = evaluate_sets(service, datasets or [], ks, index, progress, rerank=options,
                                whiten_on=whiten_on)
        if report is not None:
            from search.eval.report import write_report

            page = write_report(run, report)
    if as_json:
        echo_json(run.to_json())
    else:
        _print_table(run)
    if report is not None:
        wrote(page)


def register(app: typer.Typer) -> None:
    """Add the command to the root app."""
    app.command("eval", epilog=examples(
        "thumbsearch make-neardup --sample-photos build/neardup",
        "thumbsearch eval build/neardup -k 1,5,10 --report build/eval",
        "thumbsearch eval --corpus --label-by channel --index hnsw",
        "thumbsearch eval build/neardup --rerank aqe:n=2,alpha=3",
    ))(evaluate)

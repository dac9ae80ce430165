"""The typer root: settings read once, one place where errors become exit codes."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from indexer.errors import ThumbsearchError
from indexer.redact import scrub, url_secrets
from indexer.settings import ENV_HELP, Settings

__all__ = ["app", "main"]


class _Root(TyperGroup):
    """Turns every ThumbsearchError into one line on stderr and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ThumbsearchError as exc:
            typer.echo(f"error: {scrub(str(exc), _secrets(ctx.obj))}", err=True)
            raise typer.Exit(exc.exit_code) from None


def _secrets(settings: object) -> set[str]:
    """The secrets the settings hold, so that no error line can repeat one."""
    if not isinstance(settings, Settings):
        return set()
    values = url_secrets(settings.youtube_endpoint) | url_secrets(settings.thumbnail_base)
    if settings.youtube_api_key:
        values.add(settings.youtube_api_key)
    if not settings.database_url.startswith("sqlite"):
        from indexer.db import url_secret_values

        values |= url_secret_values(settings.database_url)
    return values


app = typer.Typer(
    cls=_Root,
    name="thumbsearch",
    help="Find YouTube videos whose thumbnails look alike.\n\n" + ENV_HELP.replace(
        "\n", "\n\n\b\n", 1),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    ctx.obj = Settings.from_env()


def _register() -> None:
    from search.cli import add, add_ids, ingest, similar, stats

    for module in (ingest, add, add_ids, similar, stats):
        module.register(app)
    # evaluation commands
    from search.cli import eval as eval_command
    from search.cli import neardup

    eval_command.register(app)
    neardup.register(app)
    # model commands
    from search.cli import models, reembed

    models.register(app)
    reembed.register(app)
    # scheduling and quota commands
    from search.cli import refresh, runs, schedule

    for module in (schedule, refresh, runs):
        module.register(app)
    # reliability commands
    from search.cli import doctor, index

    doctor.register(app)
    index.register(app)
    # gallery and web commands
    from search.cli import duplicates, serve

    duplicates.register(app)
    serve.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()

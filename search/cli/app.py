"""The typer root: settings read once, one place where errors become exit codes."""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer

from indexer.bounds import QUOTE_LIMIT
from indexer.errors import ThumbsearchError
from indexer.redact import scrub, url_secrets
from indexer.settings import ENV_HELP, Settings
from search.cli.helptext import SummaryGroup

__all__ = ["app", "main"]


def _click_error() -> type[Exception]:
    """click's ClickException, of the click typer runs on (click itself or typer's copy)."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == "ClickException":
            return cls
    raise TypeError("typer.BadParameter is not a ClickException")  # pragma: no cover


_CLICK_ERROR = _click_error()
_LONG_WORD = re.compile(rf"\S{{{QUOTE_LIMIT + 1},}}")


def _click_line(exc: Exception) -> str:
    """A click error as one line: long words (user input) cut, the help to read named."""
    message = " ".join(str(getattr(exc, "format_message", exc.__str__)()).split())
    message = _LONG_WORD.sub(
        lambda m: f"{m[0][:QUOTE_LIMIT]}... ({len(m[0])} characters)", message)
    ctx = getattr(exc, "ctx", None)
    message = message.rstrip(".")
    return message + (f" (see '{ctx.command_path} -h')" if ctx is not None else "")


class _Root(SummaryGroup):
    """Turns every error into one line on stderr and its exit code (the rule above).

    The rule, for every command: 0 done; 1 an error stopped it (ThumbsearchError);
    2 a usage or range error (click's own usage errors, an option or argument out of
    its range or malformed, a numeric setting out of range: UsageError); 3 stopped at
    the day's API quota (QuotaExceededError). Each is one line on stderr.
    """

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None,
                     **extra: Any) -> Any:
        """Parse the root's own options; a click usage error is one line, exit 2."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _CLICK_ERROR as exc:
            raise self._one_line(exc) from None

    def invoke(self, ctx: Any) -> Any:
        """Run the command; ThumbsearchError and click errors end as one line each."""
        try:
            return super().invoke(ctx)
        except ThumbsearchError as exc:
            typer.echo(f"error: {scrub(str(exc), _secrets(ctx.obj))}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except _CLICK_ERROR as exc:
            raise self._one_line(exc) from None

    @staticmethod
    def _one_line(exc: Exception) -> Exception:
        # `thumbsearch` or a group without arguments shows its help, as click does.
        if type(exc).__name__ == "NoArgsIsHelpError":
            return exc
        typer.echo(f"error: {_click_line(exc)}", err=True)
        return typer.Exit(int(getattr(exc, "exit_code", 2)))


def _secrets(settings: object) -> set[str]:
    """The secrets the settings hold, so that no error line can repeat one."""
    if not isinstance(settings, Settings):
        return set()
    values = url_secrets(settings.youtube_endpoint) | url_secrets(settings.thumbnail_base)
    if settings.youtube_api_key:
        values.add(settings.youtube_api_key)
    if not settings.database_url.startswith("sqlite"):
        from indexer.store.dberrors import url_secret_values

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


def _version(value: bool) -> None:
    """Print ``thumbsearch <version>`` (the installed distribution's) and exit 0."""
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("thumbsearch")
    except PackageNotFoundError:  # run from a source tree that was never installed
        number = "unknown"
    typer.echo(f"thumbsearch {number}")
    raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    _show_version: Annotated[bool, typer.Option(
        "--version", "-V", is_eager=True, callback=_version,
        help="Print the version and exit.")] = False,
) -> None:
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
    # watchlist commands
    from search.cli import watch

    watch.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()

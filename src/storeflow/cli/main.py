"""The ``storeflow`` command: global options, the sub-commands and the single place where errors
become one red line on stderr (exit 1; usage errors exit 2).

Set ``STOREFLOW_DEBUG=1`` to get the traceback of an unexpected error instead of the one-liner.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from storeflow.cli import (
    campaigns_cmd,
    demo_cmd,
    events_cmd,
    flows_cmd,
    init_cmd,
    keys_cmd,
    runs_cmd,
    segment_stats_cmd,
    segment_templates_cmd,
    segments_cmd,
    serve_cmd,
)
from storeflow.cli.context import CliState
from storeflow.cli.output import error_line
from storeflow.errors import StoreflowError


def _debug() -> bool:
    return os.environ.get("STOREFLOW_DEBUG", "").lower() in ("1", "true", "yes")


def fail(exc: BaseException) -> NoReturn:
    """Report an error as one line and exit 1."""
    if isinstance(exc, OSError) and exc.filename is not None:
        message = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, StoreflowError | OSError):
        message = str(exc)
    else:
        message = f"internal error: {type(exc).__name__}: {exc} (set STOREFLOW_DEBUG=1 for the traceback)"
    error_line(message)
    raise typer.Exit(1)


def _is_cli_signal(exc: BaseException) -> bool:
    """Exit, Abort and usage errors, which the command framework reports itself (usage errors with
    exit code 2). Typer ships its own copy of click since 0.2x; older ones use click: accept both."""
    if isinstance(exc, typer.Exit | typer.Abort):
        return True
    return type(exc).__module__.split(".")[0] in ("click", "typer")


class StoreflowGroup(TyperGroup):
    """The root command group; every command runs inside its error handling."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (StoreflowError, OSError) as exc:
            fail(exc)
        except Exception as exc:
            if _is_cli_signal(exc) or _debug():
                raise
            fail(exc)


app = typer.Typer(
    name="storeflow",
    cls=StoreflowGroup,
    help="Self-hosted automation engine for online stores: store data in, durable flows out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="PATH", help="Config file (default ./storeflow.toml; sets STOREFLOW_CONFIG)."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", metavar="URL", help="Database URL, overriding the config and environment."),
    ] = None,
) -> None:
    if config is not None:
        os.environ["STOREFLOW_CONFIG"] = str(config)
    ctx.obj = CliState(config=config, database_url=database_url)


init_cmd.register(app)
serve_cmd.register(app)
app.command("demo")(demo_cmd.demo)
app.add_typer(flows_cmd.app, name="flows")
app.add_typer(segments_cmd.app, name="segments")
segments_cmd.app.add_typer(segment_templates_cmd.app, name="templates")
segments_cmd.app.command("stats")(segment_stats_cmd.stats)
app.add_typer(campaigns_cmd.app, name="campaigns")
app.add_typer(events_cmd.app, name="events")
app.add_typer(runs_cmd.app, name="runs")
app.add_typer(keys_cmd.app, name="keys")


def main() -> None:
    """Console script entry point."""
    app(prog_name="storeflow")

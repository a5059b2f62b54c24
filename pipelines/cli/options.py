"""Command-line options several `recap` commands share, declared once so their names, defaults' meaning
and help text cannot drift apart between commands."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

USER_ERROR_EXIT = 2
"""Input a command refuses (a name, an option, a setting, a file, data that fails a check, a stage to run
first): the exit code of click's own usage errors, so every refusal exits alike."""
FAILURE_EXIT = 1
"""Something failed that the input does not explain."""


def command_group(**options: Any) -> typer.Typer:
    """A Typer app as every `recap` command group makes it: rich help in a terminal; plain help, wrapped
    at up to 120 columns and never truncated, when the output is piped or captured (rich boxes it at 80
    columns and cuts long option names)."""
    plain = not sys.stdout.isatty()
    return typer.Typer(
        no_args_is_help=True,
        rich_markup_mode=None if plain else "rich",
        context_settings={"max_content_width": 120},
        **options,
    )


StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Store root URI (default: $RECAP_STORE_URI or $RECAP_HOME/lance)."),
]
StudyOption = Annotated[
    str,
    typer.Option("--study", help="Read this study's store under the store root (default: the default one)."),
]
TaskOption = Annotated[str, typer.Option("--task", help="Task name, e.g. push-v3 (see `recap tasks`).")]
MaxStepsOption = Annotated[
    int | None, typer.Option("--max-steps", help="Episode limit (default: the task's registered one).")
]
PolicyOption = Annotated[
    str, typer.Option("--policy", help="Policy checkpoint directory, or ws://host:port of a served policy.")
]
NumEnvsOption = Annotated[int, typer.Option(help="Environments stepped together.")]
ExecuteStepsOption = Annotated[int | None, typer.Option(help="Actions executed per chunk (default: all).")]
WorkersOption = Annotated[int, typer.Option(help="Environment worker processes (0 = in-process).")]
BetaOption = Annotated[float, typer.Option(help="Classifier-free guidance weight (1 = no CFG).")]
PresetOption = Annotated[
    str,
    typer.Option(
        help="tiny | fast | full | study-fast | study-full | pixels, or the path of a preset YAML file"
    ),
]

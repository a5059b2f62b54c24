"""Command-line options several `recap` commands share, declared once so their names, defaults' meaning
and help text cannot drift apart between commands."""

from __future__ import annotations

from typing import Annotated

import typer

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Store root URI (default: $RECAP_STORE_URI or $RECAP_HOME/lance)."),
]
StudyOption = Annotated[
    str,
    typer.Option("--study", help="Read this study's store under the store root (default: the default one)."),
]
TaskOption = Annotated[str, typer.Option("--task", help="Task name, e.g. push-v3 (see `recap tasks`).")]
KindOption = Annotated[str, typer.Option(help="demo | autonomous | intervention")]
MaxStepsOption = Annotated[
    int | None, typer.Option("--max-steps", help="Episode limit (default: the task's registered one).")
]
PolicyOption = Annotated[str, typer.Option("--policy", help="Policy checkpoint directory.")]
NumEnvsOption = Annotated[int, typer.Option(help="Environments stepped together.")]
ExecuteStepsOption = Annotated[int | None, typer.Option(help="Actions executed per chunk (default: all).")]
WorkersOption = Annotated[int, typer.Option(help="Environment worker processes (0 = in-process).")]
BetaOption = Annotated[float, typer.Option(help="Classifier-free guidance weight (1 = no CFG).")]

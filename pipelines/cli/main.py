"""The ``recap`` command: the store, checkpoints, the simulated robot, benchmarks and the pipeline.

Each area's commands are module-level Typer apps and functions in pipelines/cli/<area>.py; this module
only puts them together under one name and reports failures on one line.
"""

from __future__ import annotations

import os
import sys

import typer

from pipelines.cli import pipeline, serve, sim, store
from pipelines.cli.bench import bench_app
from pipelines.cli.checkpoints import checkpoints_app
from pipelines.cli.options import FAILURE_EXIT, USER_ERROR_EXIT, command_group

# Typer's pretty traceback renderer loops forever on the cyclic exception chains Dagster produces
# (user error <-> DagsterExecutionStepExecutionError); ``main`` reports failures itself instead.
app = command_group(
    add_completion=False,
    pretty_exceptions_enable=False,
    help="RECAP: learn robot policies from experience.",
)
# the pipeline
app.command("run")(pipeline.run)
app.command("experiment")(pipeline.experiment)
app.command("iterate")(pipeline.iterate)
app.add_typer(pipeline.partitions_app, name="partitions")
app.command("ui")(pipeline.ui)
# the episode store
app.add_typer(store.ingest_app, name="ingest")
app.add_typer(store.export_app, name="export")
app.command("episodes")(store.episodes_summary)
app.command("query")(store.query)
# the simulated robot
app.command("tasks")(sim.tasks)
app.add_typer(sim.collect_app, name="collect")
app.command("evaluate")(sim.evaluate_command)
# robots: serving pi^k and the pointer it follows
app.command("serve")(serve.serve)
app.add_typer(serve.deploy_app, name="deploy")
# checkpoints and benchmarks
app.add_typer(checkpoints_app, name="checkpoints")
app.add_typer(bench_app, name="bench")


def exception_chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes/contexts, outermost first, each once (Dagster's chains can be cyclic)."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        else:  # `raise ... from None` hides the context on purpose
            current = None if current.__suppress_context__ else current.__context__
    return chain


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception raised by our code or a library we call, not Dagster's wrappers."""
    chain = exception_chain(error)
    own = [e for e in chain if not type(e).__module__.startswith("dagster")]
    return own[-1] if own else chain[-1]


USER_ERRORS = (ValueError, LookupError, FileNotFoundError, NotADirectoryError)


def exit_code(cause: BaseException) -> int:
    return USER_ERROR_EXIT if isinstance(cause, USER_ERRORS) else FAILURE_EXIT


def main() -> None:
    """Run the CLI; an error ends it with its root cause on one line (``--debug`` anywhere on the command
    line, or RECAP_DEBUG=1: the full chain too), exit 2 for input it refuses, 1 for any other failure."""
    debug = os.environ.get("RECAP_DEBUG", "") not in ("", "0") or "--debug" in sys.argv[1:]
    sys.argv[1:] = [argument for argument in sys.argv[1:] if argument != "--debug"]
    if debug:
        os.environ["RECAP_DEBUG"] = "1"  # runs started by this command log their steps to the console
    try:
        app()  # usage errors, --help and Ctrl-C are handled (and exit) inside
    except Exception as error:
        if debug:
            import traceback

            traceback.print_exception(error)  # bounded: the stdlib tracks exceptions already printed
        cause = root_cause(error)
        message = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        typer.echo(f"error: {type(cause).__name__}: {message}", err=True)
        if not debug:
            typer.echo("(add --debug for the full traceback)", err=True)
        raise SystemExit(exit_code(cause)) from None


if __name__ == "__main__":
    main()

"""The ``recap`` command: store, method, robot and pipeline commands in one place."""

from __future__ import annotations

import typer

from recap_core.commands import core, robot, store

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="RECAP: learn robot policies from experience."
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print JSON.")
app.add_typer(bench_app, name="bench")

for area in (store, core, robot):
    area.register(app, bench_app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

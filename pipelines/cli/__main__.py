"""``python -m pipelines.cli``: the ``recap`` command."""

from pipelines.cli.main import main

main()

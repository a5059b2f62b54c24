"""The ``recap`` command line: one module per area (pipeline, store, sim, checkpoints, bench) and
``main``, which puts them together (entry point ``pipelines.cli.main:main``)."""

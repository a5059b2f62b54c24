"""One RECAP iteration as plain functions (Algorithm 1): the stages the Dagster assets wrap.

Each stage reads the episode store at pinned table versions, writes its products (checkpoints, derived
tables, ledger rows) atomically, and returns a result with the lineage facts the pipeline records.
Usable from a notebook or a script without Dagster.
"""

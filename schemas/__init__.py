"""Table schemas: Arrow (what Lance and Delta store) and pandera/polars (what a batch must satisfy before a
write), one module per table family: episodes, steps, derived, metrics; and the names' rule (names.py).
Import from the modules: this package imports nothing, so reading the names' rule costs no pandera."""

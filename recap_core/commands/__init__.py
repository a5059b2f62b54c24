"""Shell commands, one module per area; each exposes ``register(app, bench)`` for the ``recap`` CLI."""

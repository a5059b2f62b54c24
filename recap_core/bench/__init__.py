"""Benchmarks that print JSON (`recap bench ...`): one module per area, none inside a product package."""

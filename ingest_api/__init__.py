"""Eval360 dashboard: ingest API, shared query/statistics core and CLI."""

__version__ = "0.1.0"

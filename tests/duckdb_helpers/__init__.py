"""Subprocess helpers for the DuckDB sink's multi-process tests."""

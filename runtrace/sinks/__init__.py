"""Sinks: where finished and live runs go beyond the in-memory store."""

from .base import RunSink

__all__ = ["RunSink"]

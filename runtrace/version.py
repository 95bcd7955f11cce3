"""runtrace's version, in a module of its own so every part can read it without a cycle."""

__version__ = "0.1.0"

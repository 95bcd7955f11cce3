"""runtrace's benchmarks, each against a baseline in the same run: ``python -m benchmarks``."""

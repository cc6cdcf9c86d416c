"""Benchmarks: each ``bench_*.py`` is a script that writes ``bench/results/<name>.json``."""

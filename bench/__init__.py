"""rrdev's benchmarks: `python -m bench` runs them all (see bench/README.md).

The package also holds the older single-purpose scripts (bench_engine.py,
bench_cold_start.py, ...), which stay runnable on their own and are reused here.
"""

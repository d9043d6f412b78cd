"""The benchmark: `python -m tradeoff.bench` (command and modes in __main__.py).

steps.py times the real pmapped training step, the layers and the matmul peak;
profile.py adds up each XLA op's time per step from a profiler trace.
bench_xla.py (outside this package) is the same step in plain JAX, to run
under older JAX releases.
"""

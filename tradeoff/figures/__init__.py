"""Experiments and figures: `python -m tradeoff.figures <name>`.

Each figure is drawn only from result files under figures/results/; the
commands that run experiments write those files first (see __main__.py).
"""

"""Sweep launcher: python -m launch.sweep --sweep=configs/sweeps/<name>.py."""

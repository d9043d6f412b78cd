"""tradeoff: adversarial robustness and the robustness-accuracy trade-off in JAX."""
__version__ = '0.1.0'

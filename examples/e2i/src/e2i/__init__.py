"""E2I Causal Analytics."""

__version__ = "0.7.0"

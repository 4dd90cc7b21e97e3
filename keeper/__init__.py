"""Basis vault tooling: models of the on-chain parts, deploy helpers and (later) the keeper bot."""

__version__ = "0.1.0"

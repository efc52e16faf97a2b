"""Fatigue-index validation harness (issue 6): HMP pseudo-sessions, raw-signal injection, metrics.

Reads `../shared/data/hmp-adl/` and `../shared/data/fatigue/` relative to the repository (their
licences forbid redistribution); nothing from them is copied into the repository.
"""

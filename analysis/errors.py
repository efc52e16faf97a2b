"""Exceptions raised by the analysis layer.

Tree::

    AnalysisError            domain failures (e.g. a file that cannot be analysed)
    └── ReaderError          a recording file is malformed (also a ValueError)

Bad *arguments* to analysis functions raise plain `ValueError`/`TypeError` whose
message names the parameter and the value received (style.md §4.5).
"""

from __future__ import annotations


class AnalysisError(Exception):
    """Root of the analysis layer's domain errors."""


class ReaderError(AnalysisError, ValueError):
    """A recording file could not be read; the message names the file and the line."""

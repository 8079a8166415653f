"""The one exception the data package raises for bad or missing input."""

from __future__ import annotations


class DataError(ValueError):
    """Input data is missing or malformed; the message names the file (or directory) at fault."""

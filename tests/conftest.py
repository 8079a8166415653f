"""Shared fixtures.

``float64``: JAX's x64 mode for one test module.  A module opts in with
``pytestmark = pytest.mark.usefixtures("float64")``; every other module keeps JAX's float32
default.
"""

from __future__ import annotations

import jax
import pytest


@pytest.fixture(scope="module")
def float64():
    """float64 for the requesting module only (entered once, left after its last test)."""
    with jax.enable_x64(True):
        yield

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


@pytest.fixture(scope="session", autouse=True)
def _shared_compilation_cache(tmp_path_factory):
    """Share compiled XLA programs between the many short runs of the suite (the driver builds a
    new jitted step per run; identical programs then load from this cache instead of compiling)."""
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield

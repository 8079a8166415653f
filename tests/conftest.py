"""Shared fixtures.

``float64``: JAX's x64 mode for one test module.  A module opts in with
``pytestmark = pytest.mark.usefixtures("float64")``; every other module keeps JAX's float32
default.
"""

from __future__ import annotations

import pathlib

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


@pytest.fixture(scope="session")
def tiny_faces(tmp_path_factory):
    """A tiny WIDER-layout dense-face set (4 train, 2 val images of 160×120) and a tfds dir to
    prepare it in: ``(root, data_dir)``."""
    from jaxnets.data.dense_faces.writer import write_set

    d = tmp_path_factory.mktemp("faces")
    write_set(d / "set", {"train": 4, "val": 2}, seed=0, size=(160, 120), workers=1)
    return d / "set", d / "tfds"


#: The detector config the shared smoke run trains (its smoke form).
FACE_SMOKE_CONFIG = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "faces" / "cpu" / "v2_3.py"


@pytest.fixture(scope="session")
def face_smoke_run(tiny_faces, tmp_path_factory):
    """FaceNet v2.3's CPU config in its smoke form, trained once for the session (3 steps) on
    :func:`tiny_faces`: a dict with ``workdir`` (a finished run: config.json, checkpoints/,
    summary.json, metrics.jsonl), ``config``, ``task``, ``summary``, ``root``, ``data_dir``.
    Tests that need a trained detector (the task, ``jaxnets detect``, the notebook) share it."""
    from jaxnets.config import apply_overrides, load_config
    from jaxnets.registry import build_task
    from jaxnets.train import train_and_evaluate
    from jaxnets.train.sharding import make_mesh

    root, data_dir = tiny_faces
    config = apply_overrides(load_config(FACE_SMOKE_CONFIG, smoke=True),
                             [f"data.root={root}", f"data.data_dir={data_dir}"])
    task = build_task(config, make_mesh())
    workdir = tmp_path_factory.mktemp("face_run") / "run"
    summary = train_and_evaluate(config, workdir, task=task, progress=False)
    return {"workdir": workdir, "config": config, "task": task, "summary": summary, "root": root,
            "data_dir": data_dir}


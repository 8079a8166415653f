"""The benchmark scripts stay runnable: each imports against the current API, and the train-step
benchmark runs one tiny step (numbers are not checked: benchmarks measure, tests do not time)."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

BENCH = pathlib.Path(__file__).parents[1] / "bench"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("torch_")))
def test_bench_script_imports(name):
    assert callable(_module(name).main)


def test_train_step_benchmark_runs_a_step():
    seconds = _module("mnist_step_custom_vs_autodiff_vs_torch").time_jax_train_step("mnist_ffn", "custom", 8, 1, warmup=1)
    assert seconds > 0

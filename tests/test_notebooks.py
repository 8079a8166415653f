"""The notebooks in colab/ run top to bottom and say what they claim, and match their generator.

Each notebook's code cells run as one script in a fresh interpreter (they switch on float64
globally)."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLAB = ROOT / "colab"


def _generator():
    spec = importlib.util.spec_from_file_location("make_notebooks", COLAB / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code(path):
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_notebooks_match_their_generator():
    gen = _generator()
    assert sorted(p.name for p in COLAB.glob("*.ipynb")) == sorted(gen.NOTEBOOKS)
    for name, cells in gen.NOTEBOOKS.items():
        assert json.loads((COLAB / name).read_text()) == gen.notebook(cells), (
            f"colab/{name} is stale: run python colab/make_notebooks.py"
        )


EXPECT = {
    "backprop_order4.ipynb": [
        "output (2, 4, 3, 3) predicted (2, 4, 3, 3)",
        "conv2d",
        "PASS",
        "(4 x delta",
        "custom == jax.grad of the reference: True",
    ],
    "tcn_causal_streaming.ipynb": [
        "printed  : y[8] reads x at [5, 7, 9]",  # x_9: the future
        "corrected: y[8] reads x at [4, 6, 8]",
        "receptive field (eqs 65-66): 19",
        "measured: y_t reads x_t' for t' in [t - R + 1, t]: True",
        "single    blocks 12  k 6  receptive field  2101",
        "radical   blocks  6  k 6  receptive field  1921",
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_notebook_runs(name, tmp_path):
    script = tmp_path / "notebook.py"
    script.write_text(_code(COLAB / name))
    env = dict(os.environ, MPLBACKEND="Agg", JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FAIL" not in proc.stdout
    for line in EXPECT[name]:
        assert line in proc.stdout, f"{name}: missing {line!r} in\n{proc.stdout}"

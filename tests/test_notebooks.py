"""The notebooks in colab/ match their generator, store the outputs of a run, and execute.

* the committed ``colab/*.ipynb`` hold exactly the cells ``colab/make_notebooks.py`` builds
  (outputs ignored) -- rerun the script after editing a cell;
* their stored outputs are there: every cell that prints or plots has outputs, none is an error,
  and they say what the notebooks claim;
* every notebook executes top to bottom in a fresh Jupyter kernel (nbclient), with no error in
  any cell, and prints what it claims; its install cell does nothing where jaxnets imports.

The notebooks execute concurrently (one kernel each), once per module.  face_detection.ipynb
executes at smoke size (it trains the smoke form of faces/cpu/v2_3 for 3 steps); its kernel shares
the session's XLA compilation cache, where the ``face_smoke_run`` fixture has compiled the same
programs.  Needs nbclient, nbformat and ipykernel (the ``test`` extra).
"""

import importlib.util
import json
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLAB = ROOT / "colab"

EXPECT = {
    "backprop_order4.ipynb": [
        "output (2, 4, 3, 3) predicted (2, 4, 3, 3)",
        "conv2d",
        "PASS",
        "(4 x delta",
        "custom == jax.grad of the reference: True",
        "worst relative gradient difference",
    ],
    "tcn_causal_streaming.ipynb": [
        "printed  : y[8] reads x at [5, 7, 9]",  # x_9: the future
        "corrected: y[8] reads x at [4, 6, 8]",
        "receptive field (eqs 65-66): 19",
        "measured: y_t reads x_t' for t' in [t - R + 1, t]: True",
        "single    blocks 12  k 6  receptive field  2101",
        "radical   blocks  6  k 6  receptive field  1921",
        "radical  max |stream - full|",
    ],
    # true at both sizes (the committed notebook is the full one, the tests execute the smoke one)
    "face_detection.ipynb": [
        "anchors v1.3: levels conv2,conv3,conv4,conv5,conv6, sizes 16.0..406.4 px",
        "anchors v2.4: levels conv2,conv3,conv4,conv5,conv6,conv7, sizes 8.0..406.4 px",
        "face height px  faces  no anchor v1.3  no anchor v2.4",
        "train records: loss",
        "checkpoint of step",
        "val images,",
        "astronaut    face x y w h [182, 78, 90, 99]",
        "grace_hopper face x y w h [179, 134, 167, 197]",
        "dense-face val  AP easy",
        "real photos     AP easy",
        "run summary     AP easy",
    ],
}
#: Notebooks whose outputs include a figure.
FIGURES = {"tcn_causal_streaming.ipynb", "face_detection.ipynb"}


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("make_notebooks", COLAB / "make_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def executed(gen, tmp_path_factory, face_smoke_run):
    """{name: notebook JSON after a fresh execution, or the exception it raised}. face_detection
    runs at smoke size; ``face_smoke_run`` (the same training) has filled the compilation cache."""
    import jax

    env = {"JAXNETS_NOTEBOOK_SIZE": "smoke"}
    cache = jax.config.jax_compilation_cache_dir
    if cache:
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return gen.execute(sorted(gen.NOTEBOOKS), cwd=tmp_path_factory.mktemp("notebooks"), env=env)


def _committed(name):
    return json.loads((COLAB / name).read_text())


def _code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _text(cell):
    """A code cell's printed text (stdout, stderr and text/plain results)."""
    parts = []
    for o in cell["outputs"]:
        if o["output_type"] == "stream":
            parts.append("".join(o["text"]))
        elif o["output_type"] in ("execute_result", "display_data"):
            parts.append("".join(o["data"].get("text/plain", "")))
    return "".join(parts)


def _check_outputs(name, nb):
    """The outputs of notebook ``nb`` are complete and say what it claims."""
    cells = _code_cells(nb)
    install, rest = cells[0], cells[1:]
    assert "import importlib.util" in "".join(install["source"]), f"{name}: no install cell first"
    assert install["outputs"] == [], f"{name}: the install cell acted where jaxnets imports:\n{_text(install)}"
    for c in cells:
        source = "".join(c["source"])
        errors = [o for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors, f"{name}: a cell raised {errors[0]['ename']}: {errors[0]['evalue']}\n{source}"
        if c is not install and re.search(r"\bprint\(|plt\.show\(", source):
            assert c["outputs"], f"{name}: no stored output for a cell that prints:\n{source}"
    assert all(c["execution_count"] is not None for c in rest), f"{name}: a cell was not executed"
    text = "\n".join(_text(c) for c in cells)
    assert "FAIL" not in text
    for line in EXPECT[name]:
        assert line in text, f"{name}: missing {line!r} in\n{text}"
    figures = [o for c in cells for o in c["outputs"] if "image/png" in o.get("data", {})]
    assert bool(figures) == (name in FIGURES), f"{name}: {len(figures)} stored figure(s)"


def test_every_notebook_is_generated(gen):
    assert sorted(p.name for p in COLAB.glob("*.ipynb")) == sorted(gen.NOTEBOOKS) == sorted(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_committed_notebook_matches_generator(gen, name):
    assert gen.strip_outputs(_committed(name)) == gen.notebook(name), (
        f"colab/{name} is stale: run python colab/make_notebooks.py"
    )


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_committed_notebook_stores_outputs(name):
    _check_outputs(name, _committed(name))


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_notebook_executes(executed, name):
    nb = executed[name]
    if isinstance(nb, BaseException):
        raise nb  # nbclient.exceptions.CellExecutionError names the cell and the error
    _check_outputs(name, nb)


def test_install_cell_uses_repo_url_once(gen):
    """The repository address is written once, in make_notebooks.REPO_URL, and reaches the cell."""
    source = (COLAB / "make_notebooks.py").read_text()
    assert source.count(gen.REPO_URL) == 1
    assert f'REPO_URL = "{gen.REPO_URL}"' in gen.INSTALL

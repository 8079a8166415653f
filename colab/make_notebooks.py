"""Writes the notebooks in this folder, executed, from the cell lists below.

    python colab/make_notebooks.py            # build, execute (nbclient, CPU), write *.ipynb
    python colab/make_notebooks.py NAME.ipynb # just that one

The cells live here as plain Python so that they are reviewed as code; the written notebooks also
hold the outputs of an actual run on CPU (text and figures), so they read on GitHub.
tests/test_notebooks.py checks that the committed notebooks' cells equal these, that their stored
outputs are there, and executes every notebook in a fresh kernel.

Executing needs ``nbclient``, ``nbformat`` and ``ipykernel`` (the ``test`` extra); building the
cells (``notebook()``) needs nothing beyond the standard library.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent

#: Where Colab installs jaxnets from (``pip install git+REPO_URL``) when no checkout is uploaded.
#: The only place the repository's address is written; change it here and rerun this script.
REPO_URL = "https://github.com/jaxnets/jaxnets"
#: The branch the "Open in Colab" badges point at.
REPO_BRANCH = "main"


def colab_badge(name: str) -> str:
    """Markdown for an "Open in Colab" badge of ``colab/<name>`` on REPO_URL's REPO_BRANCH."""
    repo = REPO_URL.removeprefix("https://github.com/").removesuffix(".git").strip("/")
    url = f"https://colab.research.google.com/github/{repo}/blob/{REPO_BRANCH}/colab/{name}"
    return f"[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


SETUP_MD = f"""\
**Setup.** The next cell installs `jaxnets` when this runtime does not have it (Colab, a fresh
machine) and does nothing where it imports already. It installs, with pip and without a runtime
restart, the first of: a checkout uploaded to `/content/jaxnets` (or `./jaxnets`, a folder holding
`pyproject.toml`); an archive `jaxnets*.zip` of one (GitHub's "Download ZIP" works) uploaded to
`/content` or the working directory; the repository at `REPO_URL` = {REPO_URL}.
To install from another repository or fork, change `REPO_URL` in the cell (for good: in
`colab/make_notebooks.py`, which writes these notebooks, then rerun it)."""

INSTALL = f'''\
# Install jaxnets if this runtime lacks it (Colab, a fresh machine); where it imports, do nothing.
import importlib.metadata
import importlib.util
import pathlib
import site
import subprocess
import sys

REPO_URL = "{REPO_URL}"


def _have_jaxnets():
    spec = importlib.util.find_spec("jaxnets")
    return spec is not None and spec.origin is not None  # a bare folder named jaxnets/ is not the package


if not _have_jaxnets():
    places = [pathlib.Path.cwd(), pathlib.Path("/content")]
    uploaded = [p / "jaxnets" for p in places if (p / "jaxnets" / "pyproject.toml").is_file()]
    uploaded += [z for p in places if p.is_dir() for z in sorted(p.glob("jaxnets*.zip"))]
    source = str(uploaded[0]) if uploaded else f"git+{{REPO_URL}}"
    print("pip install", source)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", source],
                         capture_output=True, text=True)
    if pip.returncode != 0:
        raise RuntimeError(f"pip install {{source}} failed (set REPO_URL or upload a checkout):\\n"
                           + pip.stderr[-3000:])
    # No restart: pip wrote into this interpreter's site-packages. Add a directory pip may have
    # created just now (the user site) to sys.path, reading its .pth files, and drop the import
    # system's cached directory listings so that the new package is found.
    for d in [*site.getsitepackages(), site.getusersitepackages()]:
        if d not in sys.path and pathlib.Path(d).is_dir():
            site.addsitedir(d)
    importlib.invalidate_caches()
    assert _have_jaxnets(), "pip installed jaxnets but this kernel cannot import it: restart the runtime"
    print("installed jaxnets", importlib.metadata.version("jaxnets"))'''

SETUP = [("md", SETUP_MD), ("code", INSTALL)]


BACKPROP = [
    ("md", """\
# Backpropagation on order-4 tensors, checked three ways

Section 3 of Zozoulenko (2018) derives forward and backward propagation for every layer of a CNN
on order-4 tensors `X` of shape `(R, C, H, W)` (batch, channels, height, width). `jaxnets.layers`
implements each derivation as the backward rule of a `jax.custom_vjp`; `jaxnets.layers.reference`
holds plain `jnp` versions that `jax.grad` differentiates. This notebook checks one against the
other and against central finite differences, shows one of the paper's printed formulas failing
(the errata are in `docs/derivations.md`), and compares whole-model gradients.

Everything runs in float64 on CPU in well under a minute."""),
    *SETUP,
    ("code", """\
import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)  # gradient checks in float64

from jaxnets import gradcheck, layers
from jaxnets.layers import reference"""),
    ("md", """\
## A strided, asymmetrically padded convolution (eqs 20-25)

`conv2d(x, w, b, stride, padding)` is eq 22, `X^(l+1) = X^(l) * W^(l) + b` (a cross-correlation).
Output sizes follow eqs 20-21 with a floor: `H' = floor((H + p_top + p_bottom - kh) / sh) + 1`."""),
    ("code", """\
rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(2, 3, 7, 6)))   # (R, C, H, W)
w = jnp.asarray(rng.normal(size=(4, 3, 3, 2)))   # (C', C, kh, kw)
b = jnp.asarray(rng.normal(size=(4,)))           # (C',)
stride, padding = (2, 3), ((1, 0), (2, 1))       # stride 3 > kernel width 2: some columns never read

y = layers.conv2d(x, w, b, stride, padding)
print("output", y.shape, "predicted", layers.conv_output_shape(x.shape, w.shape, stride, padding))"""),
    ("md", """\
## The backward pass: eqs 24-25 against `jax.grad` and finite differences

For a scalar loss `L = sum(delta * y)`, the custom VJP gives `dL/dX` (eq 24, a full correlation
of `delta` with the flipped kernel), `dL/dW` (eq 25) and `dL/db`. The reference's gradient comes
from `jax.grad`; finite differences probe `L` along a random direction."""),
    ("code", """\
delta = jnp.asarray(rng.normal(size=y.shape))


def loss(fn):
    return lambda x, w, b: jnp.sum(delta * fn(x, w, b, stride, padding))


custom = jax.grad(loss(layers.conv2d), argnums=(0, 1, 2))(x, w, b)      # eqs 24-25
autodiff = jax.grad(loss(reference.conv2d), argnums=(0, 1, 2))(x, w, b)
for name, c, a in zip(("dL/dX", "dL/dW", "dL/db"), custom, autodiff):
    print(f"{name}: max |custom - autodiff| = {float(jnp.max(jnp.abs(c - a))):.2e}")

# central differences along a random direction v: (L(p + h v) - L(p - h v)) / 2h = <grad, v>
h = 1e-5
v = [jnp.asarray(rng.normal(size=a.shape)) for a in (x, w, b)]
f = loss(reference.conv2d)
fd = (f(*(a + h * d for a, d in zip((x, w, b), v))) - f(*(a - h * d for a, d in zip((x, w, b), v)))) / (2 * h)
directional = sum(jnp.vdot(g, d) for g, d in zip(custom, v))
print(f"finite differences {float(fd):.10f} vs custom VJP {float(directional):.10f}")
assert abs(fd - directional) <= 1e-6 * max(1.0, abs(directional))"""),
    ("md", """\
## The verification table

`jaxnets gradcheck` runs this comparison for every layer over a grid of awkward cases (batch 1
and > 1, odd sizes, kernels 1-5, strides 1-3 including stride > kernel, asymmetric padding) and
exits non-zero on any failure. Here, two of its rows:"""),
    ("code", """\
rows = gradcheck.run_gradcheck(["conv2d", "max_pool2d"])
print(gradcheck.format_table(rows))
assert all(r.passed for r in rows)"""),
    ("md", """\
## A printed formula that fails: max-pooling ties (eqs 32-33)

Read literally, eq 33 sends a window's `delta` to *every* element equal to the window's maximum.
When a window holds ties, the printed rule counts `delta` several times. `jaxnets` sends it to one
element (the first maximum in row-major order, the rule `jax.grad` of the reference follows), and
the total gradient then equals the total `delta`, as it must for a function that copies one value."""),
    ("code", """\
x_tied = jnp.ones((1, 1, 4, 4))                    # every window is all ties
d_pool = jnp.asarray(rng.normal(size=(1, 1, 2, 2)))
_, pullback = jax.vjp(lambda x: layers.max_pool2d(x, 2, 2), x_tied)
ours = pullback(d_pool)[0]
printed = gradcheck.printed_max_pool2d_bwd(x_tied, d_pool, 2, 2)
print("sum of delta      ", float(d_pool.sum()))
print("sum, custom VJP   ", float(ours.sum()))
print("sum, printed eq 33", float(printed.sum()),
      f"({float(printed.sum() / d_pool.sum()):.0f} x delta: each window's delta counted once per tie)")
_, ref_pullback = jax.vjp(lambda x: reference.max_pool2d(x, (2, 2), (2, 2)), x_tied)
print("custom == jax.grad of the reference:", bool(jnp.allclose(ours, ref_pullback(d_pool)[0])))"""),
    ("md", """\
## Whole-model gradients: `grad="custom"` against `grad="autodiff"`

Every Flax module takes `grad="custom" | "autodiff"`, which swaps every custom rule for its
reference. A small Table-1 CNN (4 channels instead of 32) on a batch of five images: the two
modes give the same loss and the same gradient for every parameter, to float64 rounding."""),
    ("code", """\
from jaxnets.models import MnistCNN


def grads(grad, variables, x, y):
    model = MnistCNN(grad=grad, channels=4)
    ops = layers.get_ops(grad)

    def loss(params):
        logits, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                                train=True, mutable=["batch_stats"])
        return ops.softmax_cross_entropy(logits, y)

    return jax.jit(jax.value_and_grad(loss))(variables["params"])


variables = MnistCNN(channels=4).init(jax.random.PRNGKey(1), jnp.zeros((2, 1, 28, 28)), train=False)
variables = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), variables)
images = jax.random.uniform(jax.random.PRNGKey(2), (5, 1, 28, 28), jnp.float64)
labels = jax.nn.one_hot(jnp.array([0, 3, 7, 7, 9]), 10, dtype=jnp.float64)
(lc, gc), (la, ga) = grads("custom", variables, images, labels), grads("autodiff", variables, images, labels)
worst = max(float(jnp.max(jnp.abs(c - a)) / (jnp.max(jnp.abs(a)) + 1e-300))
            for c, a in zip(jax.tree_util.tree_leaves(gc), jax.tree_util.tree_leaves(ga)))
print(f"loss {float(lc):.12f} vs {float(la):.12f}; worst relative gradient difference {worst:.1e}")
assert worst < 1e-9"""),
    ("md", """\
## Next

* `jaxnets gradcheck` -- the whole table (every layer of sections 3 and 6);
* `docs/derivations.md` -- every rule in the paper's notation, the errata and the tests that show them;
* `jaxnets train mnist/cnn_sample_cpu --workdir runs/cnn` -- the paper's CNN on the bundled MNIST sample."""),
]

TCN = [
    ("md", """\
# Temporal convolutional networks: causality, receptive field, streaming

Section 6 of Zozoulenko (2018) pads causal convolutions only on the left (`p_left = d(k-1)`,
`p_right = 0`) instead of padding both sides and chopping the right end as the original TCN
does, and grows dilations linearly. This notebook shows that the two padding schemes compute the
same thing, that the printed index of eq 63 would read the future, that a whole TCN is causal with
the receptive field eqs 65-66 predict, and that streaming inference (one timestep at a time, ring
buffers) reproduces the full-sequence outputs. Design notes: `docs/tcn.md`."""),
    *SETUP,
    ("code", """\
import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)

from jaxnets import gradcheck, layers
from jaxnets.layers import reference
from jaxnets.models import tcn_model_config
from jaxnets.models.streaming import init_stream, stream_params, stream_sequence, stream_step
from jaxnets.models.tcn import TCN, model_receptive_field"""),
    ("md", """\
## Left-only padding = pad both sides and chop (eqs 63-64)

`causal_conv1d(x, w, b, dilation, stride)` takes `x` of shape `(R, C, T)` and `w` of shape
`(C', C, k)`. The original TCN's scheme pads `d(k-1)` zeros on both sides and drops the last
`d(k-1)` outputs (`reference.causal_conv1d_chop`). Outputs and gradients agree."""),
    ("code", """\
rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(2, 3, 17)))    # (R, C, T)
w = jnp.asarray(rng.normal(size=(4, 3, 3)))     # (C', C, k)
b = jnp.asarray(rng.normal(size=(4,)))
d = 2
delta = jnp.asarray(rng.normal(size=(2, 4, 17)))

left, left_vjp = jax.vjp(lambda *a: layers.causal_conv1d(*a, d, 1), x, w, b)
chop, chop_vjp = jax.vjp(lambda *a: reference.causal_conv1d_chop(*a, d, 1), x, w, b)
print("outputs:  max diff", float(jnp.max(jnp.abs(left - chop))))
for name, g1, g2 in zip(("dL/dX", "dL/dW", "dL/db"), left_vjp(delta), chop_vjp(delta)):
    print(f"{name}: max diff {float(jnp.max(jnp.abs(g1 - g2))):.1e}")"""),
    ("md", """\
## Eq 63 as printed reads the future

With 1-based `t'` and `i` over the left-padded input, the printed index `s t' - s + d i` reaches
`d - 1` steps past `t'` when `d > 1`; the corrected index is `s t' - s + d(i - 1) + 1`. The
Jacobian of the output at one time `t` with respect to the input shows it:"""),
    ("code", """\
t = 8
for corrected in (False, True):
    jac = jax.jacobian(lambda x: gradcheck.printed_causal_conv1d(x, w, b, d, 1, corrected)[0, 0, t])(x)
    reads = np.nonzero(np.asarray(jnp.any(jac[0] != 0, axis=0)))[0]
    print(f"{'corrected' if corrected else 'printed  '}: y[{t}] reads x at {reads.tolist()}")"""),
    ("md", """\
## A whole TCN is causal, with the receptive field of eqs 65-66

`R = 1 + sum_l d_l (k_l - 1)` over the convolutions on the longest path. A small Single-block TCN
(2 blocks, k = 4, dilations 1 and 2: `R = 1 + 2*3*1 + 2*3*2 = 19`): the Jacobian of each output
with respect to each input is non-zero on exactly the last `R` inputs and zero on every later
one. (Positive weights and inputs keep every ReLU open, so no entry is zero by accident.)"""),
    ("code", """\
T = 40
model = TCN(block="single", num_blocks=2, channels=5, kernel_size=4, dilations=(1, 2), dropout=0.0,
            num_classes=3)
variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1, 8)))
variables = jax.tree_util.tree_map(lambda a: 0.1 + 10 * jnp.abs(a.astype(jnp.float64)), variables)
seq = 0.5 + jax.random.uniform(jax.random.PRNGKey(1), (1, 1, T), jnp.float64)
jac = jax.jacrev(lambda s: model.apply(variables, s)[0])(seq)     # (K, T_out, R, C_in, T_in)
reads = np.asarray(jnp.any(jac[:, :, 0, 0] != 0, axis=0))          # (T_out, T_in)
rf = model_receptive_field(model)
print("receptive field (eqs 65-66):", rf)
print("measured: y_t reads x_t' for t' in [t - R + 1, t]:",
      all(reads[t, max(0, t - rf + 1):t + 1].all() and not reads[t, :max(0, t - rf + 1)].any()
          and not reads[t, t + 1:].any() for t in range(T)))"""),
    ("code", """\
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(reads, cmap="Greys", interpolation="nearest")
ax.set_xlabel("input time t'")
ax.set_ylabel("output time t")
ax.set_title(f"d y_t / d x_t' != 0 (R = {rf})")
plt.show()"""),
    ("md", """\
## The paper's configurations

Section 6.3.3 describes 24 convolutions with k = 6 and linear dilations `d_b = 3b - 2` (Single,
Double: 12 blocks) and `d_b = 6b - 5` (Radical: 6 blocks), and states receptive fields of 1001
and 1021 timesteps. The architectures as described give more (`docs/tcn.md` works through why):"""),
    ("code", """\
for preset, stated in (("single", 1001), ("double", 1001), ("radical", 1021), ("original", None)):
    mc = tcn_model_config(preset)
    print(f"{preset:9s} blocks {mc.num_blocks:2d}  k {mc.kernel_size}  receptive field "
          f"{model_receptive_field(mc):5d}" + (f"  (paper states {stated})" if stated else "  (Bai et al. 2018)"))"""),
    ("md", """\
## Streaming inference

`stream_step` keeps, per convolution, a ring buffer of its last `d(k-1)` inputs (zeros at first,
exactly the left padding) and produces one output per new input with a fixed amount of work.
Streamed outputs equal the full-sequence outputs at every timestep, for every block type."""),
    ("code", """\
for block in ("single", "double", "radical"):
    m = TCN(block=block, num_blocks=2, channels=5, kernel_size=4, dilations=(1, 2), dropout=0.0, num_classes=3)
    v = jax.tree_util.tree_map(lambda a: 20 * a.astype(jnp.float64), m.init(jax.random.PRNGKey(0), jnp.zeros((1, 1, 8))))
    xs = jax.random.normal(jax.random.PRNGKey(2), (2, 1, T), jnp.float64)
    full = m.apply(v, xs)                                    # (R, K, T), one pass
    params = stream_params(m, v)
    state, step = init_stream(params, batch=2), jax.jit(stream_step)
    streamed = []
    for t in range(T):                                       # one timestep at a time
        y_t, state = step(params, state, xs[:, :, t])
        streamed.append(y_t)
    streamed = jnp.stack(streamed, axis=-1)
    scanned, _ = stream_sequence(params, xs)                 # the same, as one lax.scan
    print(f"{block:8s} max |stream - full| = {float(jnp.max(jnp.abs(streamed - full))):.1e}, "
          f"scan {float(jnp.max(jnp.abs(scanned - full))):.1e}")
    assert jnp.allclose(streamed, full, rtol=1e-10, atol=1e-12)"""),
    ("md", """\
## Next

* `jaxnets train tcn/seqmnist_single_cpu --workdir runs/seqmnist` -- Sequential MNIST on the
  bundled sample in minutes; `experiments/tcn/` has one config per row of Tables 5-6;
* `python bench/tcn_streaming_vs_recompute.py` -- streaming against recomputing the prefix, 784 steps;
* `docs/tcn_results.md` -- measured results and benchmarks."""),
]


NOTEBOOKS = {"backprop_order4.ipynb": BACKPROP, "tcn_causal_streaming.ipynb": TCN}

#: The notebook-level metadata of every notebook (executing does not change it).
METADATA = {
    "colab": {"provenance": []},
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def notebook(name: str) -> dict:
    """Notebook ``name`` (a key of NOTEBOOKS) as nbformat-4 JSON, without outputs."""

    def cell(kind, text):
        lines = text.splitlines(keepends=True)
        if kind == "md":
            return {"cell_type": "markdown", "metadata": {}, "source": lines}
        return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": lines}

    cells = [cell(k, t) for k, t in NOTEBOOKS[name]]
    cells[0]["source"] = [colab_badge(name) + "\n", "\n", *cells[0]["source"]]
    return {"cells": cells, "metadata": json.loads(json.dumps(METADATA)), "nbformat": 4, "nbformat_minor": 4}


def strip_outputs(nb: dict) -> dict:
    """A copy of ``nb`` without outputs or execution counts (what :func:`notebook` returns)."""
    nb = json.loads(json.dumps(nb))
    for c in nb["cells"]:
        if c["cell_type"] == "code":
            c["outputs"], c["execution_count"] = [], None
    return nb


def kernel_env() -> dict:
    """The environment notebooks execute in: JAX on CPU, matplotlib's inline backend (ipykernel's
    default, so that figures are stored), no XLA flags inherited from the caller."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    for key in ("MPLBACKEND", "XLA_FLAGS"):
        env.pop(key, None)
    return env


def _coalesce_streams(outputs: list) -> list:
    """Merge consecutive writes to one stream (how a print splits into outputs depends on timing)."""
    merged = []
    for o in outputs:
        if o["output_type"] == "stream" and merged and merged[-1]["output_type"] == "stream" \
                and merged[-1]["name"] == o["name"]:
            text = "".join(merged[-1]["text"]) + "".join(o["text"])
            merged[-1]["text"] = text.splitlines(keepends=True)
        else:
            merged.append(o)
    return merged


async def _execute(nb: dict, cwd: pathlib.Path, timeout: int) -> dict:
    import nbformat
    from nbclient import NotebookClient

    node = nbformat.reads(json.dumps(nb), as_version=4)
    client = NotebookClient(node, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(cwd)}})
    await client.async_execute(env=kernel_env())
    out = json.loads(nbformat.writes(node))  # sources and texts as lists of lines again
    for c in out["cells"]:
        if c["cell_type"] == "code":
            c["outputs"] = _coalesce_streams(c["outputs"])
    out["metadata"] = nb["metadata"]  # nbclient adds the kernel's language_info; keep the file stable
    return out


def execute(names, cwd=HERE, timeout: int = 600) -> dict:
    """Execute notebooks ``names`` concurrently, each in a fresh kernel with working directory
    ``cwd``. Returns ``{name: executed notebook JSON, or the exception its execution raised}``
    (``nbclient.exceptions.CellExecutionError`` for an error in a cell)."""

    async def run():
        jobs = [_execute(notebook(n), pathlib.Path(cwd), timeout) for n in names]
        return await asyncio.gather(*jobs, return_exceptions=True)

    return dict(zip(names, asyncio.run(run())))


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    names = argv or list(NOTEBOOKS)
    unknown = sorted(set(names) - set(NOTEBOOKS))
    if unknown:
        print(f"unknown notebook(s) {unknown}; choose from {sorted(NOTEBOOKS)}", file=sys.stderr)
        return 2
    failed = 0
    for name, nb in execute(names).items():
        if isinstance(nb, BaseException):
            print(f"{name}: execution failed, not written\n{nb}", file=sys.stderr)
            failed += 1
            continue
        (HERE / name).write_text(dumps(nb))
        print("wrote", HERE / name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Writes the notebooks in this folder, executed, from the cell lists below.

    python colab/make_notebooks.py            # build, execute (nbclient, CPU), write *.ipynb
    python colab/make_notebooks.py NAME.ipynb # just that one

face_detection.ipynb has two sizes (``JAXNETS_NOTEBOOK_SIZE``): ``full`` reads the trained run
``runs/faces_cpu256_v1_1`` and its data ``data/faces`` of this checkout (other folders:
``JAXNETS_FACE_RUN``, ``JAXNETS_FACE_DATA``) and is the size to commit; ``smoke`` trains a tiny
model for 3 steps (what the tests execute). Unset, it is ``full`` where that run has finished::

    JAXNETS_NOTEBOOK_SIZE=full python colab/make_notebooks.py face_detection.ipynb

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

FACES = [
    ("md", """\
# FaceNet (section 5): anchor coverage, training, detections, WIDER PR curves

Section 5 of Zozoulenko (2018) builds a dense face detector: a ResNet with a feature pyramid,
shared heads over conv2-conv7 and anchors from 16 px (v1.x) or, on a grid made twice as fine by
the heads' x2 upsampling, from 8 px (v2.4) up to 406 px, trained with the losses of eqs 56-62
(Table 4 lists the versions). This notebook shows, for a trained run (by default
`experiments/faces/cpu256/v1_1.py`, the best CPU row in the README):

1. which faces of the dense-face set no anchor of v1.3 or v2.4 can learn (`jaxnets anchors-report`);
2. the run's training curve (its `metrics.jsonl`);
3. its detections on dense-face val images and on three real photographs with hand-drawn boxes
   (`jaxnets real-photos`);
4. precision-recall curves under the official WIDER FACE protocol (`jaxnets wider-eval`).

**Size.** With `JAXNETS_NOTEBOOK_SIZE=full` (the default where the run exists) it reads a finished
run `runs/faces_cpu256_v1_1` and its data `data/faces` in the jaxnets checkout (or the folders named by
`JAXNETS_FACE_RUN` and `JAXNETS_FACE_DATA`), made by

    jaxnets make-faces data/faces --train 2000 --val 500 --seed 0
    jaxnets train faces/cpu256/v1_1 --workdir runs/faces_cpu256_v1_1

With `JAXNETS_NOTEBOOK_SIZE=smoke` (what the tests run, and the fallback where there is no such
run) it writes a tiny dense-face set (4 train, 2 val images of 160x120) and trains the smoke form
of `faces/cpu/v2_3` for 3 steps, in well under a minute on a CPU: its detections are then those of an
untrained net, and only show that every step runs. The config files live in the checkout's
`experiments/` folder, which a plain `pip install` does not include."""),
    *SETUP,
    ("code", """\
import io
import json
import logging
import os
import pathlib
import tempfile
import warnings

import numpy as np
from IPython.display import Image, display
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from jaxnets.config import CHECKOUT

RUN = pathlib.Path(os.environ.get("JAXNETS_FACE_RUN") or CHECKOUT / "runs" / "faces_cpu256_v1_1")
DATA = pathlib.Path(os.environ.get("JAXNETS_FACE_DATA") or CHECKOUT / "data" / "faces")
SIZE = os.environ.get("JAXNETS_NOTEBOOK_SIZE") or ("full" if (RUN / "summary.json").is_file() else "smoke")
if SIZE not in ("full", "smoke"):
    raise ValueError(f"JAXNETS_NOTEBOOK_SIZE={SIZE!r}: expected full or smoke")
if SIZE == "full" and not (RUN / "summary.json").is_file():
    raise FileNotFoundError(f"{RUN / 'summary.json'}: no finished run (set JAXNETS_FACE_RUN, or use "
                            "JAXNETS_NOTEBOOK_SIZE=smoke)")
WORK = pathlib.Path(tempfile.mkdtemp(prefix="face_detection_"))  # figures; the smoke set and run
logging.getLogger("absl").setLevel(logging.ERROR)  # tfds' and orbax's notes, kept quiet as the jaxnets commands do
warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm: no Jupyter widgets here


def show(fig, fmt="png"):
    \"\"\"Display a matplotlib Figure as an image (jaxnets' plotting code selects the Agg backend,
    so pyplot's inline display is not used); photos as JPEG to keep the notebook small.\"\"\"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=80)
    display(Image(data=buf.getvalue(), format=fmt))


print(f"size: {SIZE}")"""),
    ("md", """\
## The run

At full size, the finished run. At smoke size: a tiny dense-face set
(`jaxnets.data.dense_faces.writer.write_set`, what `jaxnets make-faces` writes) and the smoke form
of the same config (`load_config(..., smoke=True)`: width 1/16, 64² crops, 96² evaluation),
trained for 3 steps by the same driver as `jaxnets train` (`train_and_evaluate`)."""),
    ("code", """\
if SIZE == "smoke":
    import tensorflow_datasets as tfds

    from jaxnets.cli import resolve_config_path
    from jaxnets.config import apply_overrides, load_config
    from jaxnets.data.dense_faces.writer import write_set
    from jaxnets.train import train_and_evaluate

    tfds.disable_progress_bar()  # the tiny set is prepared for tfds in a blink
    DATA, RUN = WORK / "faces", WORK / "run"
    write_set(DATA, {"train": 4, "val": 2}, seed=0, size=(160, 120), workers=1)
    smoke = apply_overrides(load_config(resolve_config_path("faces/cpu/v2_3"), smoke=True),
                            [f"data.root={DATA}", f"data.data_dir={WORK / 'tfds'}"])
    train_and_evaluate(smoke, RUN, progress=False)

summary = json.loads((RUN / "summary.json").read_text())
val_ap = summary["evaluations"]["validation"]
print(summary["paper"])
print(f"data {DATA.name}: {json.loads((DATA / 'dense_faces.json').read_text())['images']}")
print(f"trained {summary['num_steps']} steps in {summary['walltime_s']:.0f} s, {summary['params']:,} parameters; "
      f"selected step {summary['best_step']}: validation AP easy {val_ap['ap_easy']:.3f}, "
      f"medium {val_ap['ap_medium']:.3f}, hard {val_ap['ap_hard']:.3f}")"""),
    ("md", """\
## 1. Anchor coverage: v1.3 against v2.4

A face gets a positive anchor only where some anchor overlaps it with IoU at or above the
threshold (0.55 for v1.x, 0.65 for v2.x; eq 55); a face no anchor reaches is never learned
(§5.3.5: the reason for v2.4's 8, 10 and 13 px anchors). `best_anchor_iou` computes, exactly,
the best IoU any anchor of a configuration reaches for each face; `anchors-report` bins the faces
by height. Here the train split at the images' own scale (the CPU form's crops, 0.2-0.45 of
the short side resized to 128 px, keep faces within x0.6-1.3 of it) - the same as
`jaxnets anchors-report DATA --config v2.4 --input-size 480` on the 640x480 set."""),
    ("code", """\
from jaxnets.commands.anchors_report import bin_table, measure, plot_bins
from jaxnets.data.wider_txt import image_size, read_gt, split_paths
from jaxnets.detection import preset

txt, images_dir = split_paths(DATA, "train")
train_images = read_gt(txt)
sizes = [image_size(txt, images_dir / im.name, im.line) for im in train_images]  # (H, W) each
short = min(min(s) for s in sizes)  # input size = the short side, crop 1: scale 1 (the set's images share a size)
tables = {}
for version in ("v1.3", "v2.4"):
    anchors = preset(version)
    heights, ious, skipped = measure(train_images, sizes, anchors, short, 1.0)
    tables[version] = bin_table(heights, ious, anchors.iou_threshold)
    print(f"anchors {version}: levels {','.join(anchors.levels)}, sizes {anchors.all_sizes().min():.1f}.."
          f"{anchors.all_sizes().max():.1f} px, grid strides {','.join(f'{s:g}' for s in anchors.strides)} px, "
          f"IoU >= {anchors.iou_threshold:g}")
print(f"{len(train_images)} train images, {len(heights)} valid faces ({skipped} invalid or empty left out)\\n")
print(f"{'face height px':>14s} {'faces':>6s} {'no anchor v1.3':>15s} {'no anchor v2.4':>15s}")
for a, b in zip(tables["v1.3"], tables["v2.4"]):
    bin_name = f"{a['lo']:g}-{a['hi']:g}" if np.isfinite(a["hi"]) else f">={a['lo']:g}"
    print(f"{bin_name:>14s} {a['faces']:6d} {a['uncovered']:9d} ({100 * a['uncovered'] / a['faces']:3.0f}%) "
          f"{b['uncovered']:7d} ({100 * b['uncovered'] / b['faces']:3.0f}%)")
total = {v: sum(r["uncovered"] for r in t) for v, t in tables.items()}
print(f"{'all':>14s} {len(heights):6d} {total['v1.3']:9d} ({100 * total['v1.3'] / len(heights):3.0f}%) "
      f"{total['v2.4']:7d} ({100 * total['v2.4'] / len(heights):3.0f}%)")
for version, rows in tables.items():
    display(Image(filename=str(plot_bins(rows, WORK / f"anchors_{version}.png",
                                         f"{DATA.name} train: anchors {version}, faces at their own scale"))))"""),
    ("md", """\
## 2. The training curve

The run's `metrics.jsonl` (`jaxnets.train.metrics.read_metrics`): the train loss and its two
parts (classification, eq 59, and box regression, eq 56, each normalised by the positives, eq
60) averaged over every `log_every` steps, and the validation AP at each evaluation. (The run's
own `curves.png` draws every logged metric.)"""),
    ("code", """\
from jaxnets.train.metrics import read_metrics

records = read_metrics(RUN / "metrics.jsonl")
train_rows = [r for r in records if r["split"] == "train" and "loss" in r]
evals = [r for r in records if r["split"] == "validation"]
print(f"{len(train_rows)} train records: loss {train_rows[0]['loss']:.3f} at step {train_rows[0]['step']} -> "
      f"{train_rows[-1]['loss']:.3f} at step {train_rows[-1]['step']}; {len(evals)} evaluation(s)")
fig = Figure(figsize=(11, 3.6))
ax = fig.add_subplot(1, 2, 1)
for key in ("loss", "cls_loss", "reg_loss"):
    ax.plot([r["step"] for r in train_rows], [r[key] for r in train_rows], label=key)
ax.set(yscale="log", xlabel="iterations", title="(a) train loss (eq 60)")
ax.legend(fontsize=8)
ax = fig.add_subplot(1, 2, 2)
for subset in ("easy", "medium", "hard"):
    ax.plot([r["step"] for r in evals], [r[f"ap_{subset}"] for r in evals], "o-", label=f"AP {subset}")
ax.set(ylim=(0, 1), xlabel="iterations", title="(b) validation AP (WIDER protocol)")
ax.legend(fontsize=8)
fig.tight_layout()
show(fig)"""),
    ("md", """\
## 3. Detections

`FaceDetectorRunner.from_workdir` restores the run's selected checkpoint; `detect` letterboxes an
image to the evaluation side (`eval.image_size`), runs the net, decodes the boxes on the anchors,
applies the score threshold and NMS, and maps the boxes back to the image's pixels: the run's own
evaluation path. Every val image is detected with the run's evaluation settings (score >= 0.05,
NMS IoU 0.3, up to 750 boxes at full size); the pictures show ground truth in green and the
detections scoring at least `SHOW_SCORE` in red."""),
    ("code", """\
from jaxnets.data.wider_source import decode_jpeg
from jaxnets.detection.inference import FaceDetectorRunner

runner = FaceDetectorRunner.from_workdir(RUN)
E = runner.config.eval
SETTINGS = dict(score_threshold=float(E.score_threshold), nms_iou=float(E.nms_iou),
                max_detections=int(E.max_detections))
SHOW_SCORE = 0.5 if SIZE == "full" else 0.0  # a 3-step net scores every box near the prior: draw what it keeps
print(f"checkpoint of step {runner.step}; letterbox {runner.size}x{runner.size}; {SETTINGS}")


def read_image(path):
    return decode_jpeg(pathlib.Path(path).read_bytes(), str(path))  # the WIDER loader's decoder


def draw(ax, image, faces, rows, title):
    \"\"\"image (H, W, 3); faces (K, 4) x, y, w, h ground truth; rows (D, 5) x, y, w, h, score.\"\"\"
    ax.imshow(image)
    ax.set_axis_off()
    for x, y, w, h in faces:
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="lime", linewidth=0.8))
    for x, y, w, h, s in rows[rows[:, 4] >= SHOW_SCORE]:
        ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="red", linewidth=0.8))
    ax.set_title(title, fontsize=8)


val_txt, val_dir = split_paths(DATA, "val")
val_images = read_gt(val_txt)
val_rows = {}  # "event/stem" -> (D, 5) x, y, w, h, score
for im in val_images:
    val_rows[f"{im.event}/{im.stem}"] = runner.detect(read_image(val_dir / im.name), **SETTINGS).wider_rows()

first_of_kind = {}
for im in val_images:
    first_of_kind.setdefault(im.event, im)  # event = kind of scene: portraits, groups, crowd, ...
shown = list(first_of_kind.values())[:4]
fig = Figure(figsize=(10, 3.9 * ((len(shown) + 1) // 2)))
for k, im in enumerate(shown):
    rows = val_rows[f"{im.event}/{im.stem}"]
    valid = im.faces[im.faces[:, 7] == 0, :4]
    draw(fig.add_subplot((len(shown) + 1) // 2, 2, k + 1), read_image(val_dir / im.name), valid, rows,
         f"{im.stem}: {len(valid)} faces, {int((rows[:, 4] >= SHOW_SCORE).sum())} detections >= {SHOW_SCORE:g}")
fig.tight_layout()
show(fig, "jpeg")
print(f"{len(val_images)} val images, {sum(len(r) for r in val_rows.values())} detections in all")"""),
    ("md", """\
### Three real photographs

`jaxnets real-photos OUT` writes three photographs that ship with scikit-image and matplotlib
(the astronaut Eileen Collins, the cameraman in profile, Grace Hopper) with hand-drawn face boxes,
as a WIDER val split (`jaxnets.data.real_photos`): a check that a net trained on rendered faces
finds real ones. Their faces (68-197 px) are larger than most dense-set faces, so the photos also
run at half the letterbox side (`scales=(1.0, 0.5)`: two scales, merged by NMS)."""),
    ("code", """\
from jaxnets.data.real_photos import write_real_photos

PHOTOS = WORK / "real_photos"
photos = write_real_photos(PHOTOS)  # what `jaxnets real-photos OUT` writes
photo_rows = {}
fig = Figure(figsize=(12, 4.4))
for k, im in enumerate(photos):
    image = read_image(PHOTOS / "WIDER_val" / "images" / im.name)
    rows = runner.detect(image, scales=(1.0, 0.5), **SETTINGS).wider_rows()
    photo_rows[f"{im.event}/{im.stem}"] = rows
    draw(fig.add_subplot(1, 3, k + 1), image, im.boxes, rows,
         f"{im.stem}: " + (f"best score {rows[0, 4]:.2f}" if len(rows) else "no detection"))
    best = f", best {rows[0, :4].round(0).tolist()} score {rows[0, 4]:.3f}" if len(rows) else ""
    print(f"{im.stem:12s} face x y w h {im.boxes[0].tolist()}; "
          f"{int((rows[:, 4] >= SHOW_SCORE).sum())} detections >= {SHOW_SCORE:g}{best}")
fig.tight_layout()
show(fig, "jpeg")"""),
    ("md", """\
## 4. Precision-recall under the WIDER FACE protocol

`jaxnets.eval.wider_protocol.evaluate` transcribes the official MATLAB `eval_tools` (one global
min-max of the scores, 1000 thresholds, IoU >= 0.5 with the +1-pixel convention, faces marked
invalid ignored, VOC AP). The dense-face set ships its own easy / medium / hard subset files
(`eval_tools/ground_truth`); the real photos put every face in all three. The val numbers come
close to the run's own final evaluation (`summary.json`), not exactly: the runner drops boxes
that clipping leaves with no area (wholly in the letterbox padding), which the training-time
evaluator keeps as false positives."""),
    ("code", """\
from jaxnets.eval.pr_curves import plot_pr_curves
from jaxnets.eval.wider_predictions import load_ground_truth
from jaxnets.eval.wider_protocol import evaluate

results = {"dense-face val": evaluate(load_ground_truth(DATA), val_rows),
           "real photos": evaluate(load_ground_truth(PHOTOS), photo_rows)}
for name, result in results.items():
    print(f"{name:15s} AP " + ", ".join(f"{s} {result.ap[s]:.3f}" for s in result.subsets)
          + f"  ({result.num_images} images, {result.num_predictions} detections)")
print(f"{'run summary':15s} AP " + ", ".join(f"{s} {val_ap['ap_' + s]:.3f}" for s in ("easy", "medium", "hard")))
for name, result in results.items():
    display(Image(filename=str(plot_pr_curves(result, WORK / f"pr_{name.replace(' ', '_')}.png",
                                              title=f"{name}: {RUN.name} ({SIZE})"))))"""),
    ("md", """\
## Next

* `jaxnets detect IMAGE|FOLDER|VIDEO --workdir RUN --out DIR` -- the same runner on your own images
  (`--wider PRED_DIR` writes WIDER prediction files);
* `jaxnets wider-eval PRED_DIR --gt DATA --plot pr.png` -- the protocol on a folder of prediction files;
* `jaxnets baselines mtcnn DATA PRED_DIR` -- a classical detector on the same yardstick;
* `experiments/faces/` -- one config per Table 4 row, `paper/` for WIDER FACE on an accelerator,
  `cpu/` for the dense-face set (128² crops), `cpu256/` for three rows on 256² crops."""),
]


NOTEBOOKS = {"backprop_order4.ipynb": BACKPROP, "tcn_causal_streaming.ipynb": TCN,
             "face_detection.ipynb": FACES}

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


def kernel_env(extra: dict | None = None) -> dict:
    """The environment notebooks execute in: JAX on CPU, matplotlib's inline backend (ipykernel's
    default, so that figures are stored), no XLA flags inherited from the caller; then ``extra``
    (e.g. ``{"JAXNETS_NOTEBOOK_SIZE": "smoke"}``, the size switch of face_detection.ipynb)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu", **(extra or {}))
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


async def _execute(nb: dict, cwd: pathlib.Path, timeout: int, env: dict | None) -> dict:
    import nbformat
    from nbclient import NotebookClient

    node = nbformat.reads(json.dumps(nb), as_version=4)
    client = NotebookClient(node, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(cwd)}})
    await client.async_execute(env=kernel_env(env))
    out = json.loads(nbformat.writes(node))  # sources and texts as lists of lines again
    for c in out["cells"]:
        if c["cell_type"] == "code":
            c["outputs"] = _coalesce_streams(c["outputs"])
    out["metadata"] = nb["metadata"]  # nbclient adds the kernel's language_info; keep the file stable
    return out


def execute(names, cwd=HERE, timeout: int = 600, env: dict | None = None) -> dict:
    """Execute notebooks ``names`` concurrently, each in a fresh kernel with working directory
    ``cwd`` and the variables ``env`` added to its environment (:func:`kernel_env`). Returns
    ``{name: executed notebook JSON, or the exception its execution raised}``
    (``nbclient.exceptions.CellExecutionError`` for an error in a cell)."""

    async def run():
        jobs = [_execute(notebook(n), pathlib.Path(cwd), timeout, env) for n in names]
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
    for name, nb in execute(names, timeout=1800).items():  # per cell: the full face notebook detects 500 images
        if isinstance(nb, BaseException):
            print(f"{name}: execution failed, not written\n{nb}", file=sys.stderr)
            failed += 1
            continue
        (HERE / name).write_text(dumps(nb))
        print("wrote", HERE / name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Temporal convolutional networks of section 6: the Single, Double and Radical residual blocks
(§6.3.3, Figures 18-19), the network, the sequence classifier of (P)SeqMNIST, dilation schedules
and the receptive field (eqs 65-66).

Layout: activations (R, C, T) (batch, channels, time).  Every convolution is causal with the
paper's left-only zero-padding ``d(k-1)`` (§6.2.1), so every layer keeps length T.  Every
convolution is "convolution, weight normalisation of the kernel, ReLU, dropout" (§6.3.3,
Fig. 19 caption); we write ``f_i(h) = dropout(relu(conv_i(h)))`` for the i-th convolution of a
block, ``a_i`` for the activations it produces (after the residual sum that lands on it, if any)
and ``P(h)`` for "h itself, or its 1×1 convolution when the channel counts differ" (the original
TCN's ``downsample``).  All convolutions of a block share the block's dilation ``d_b`` (the paper
gives one dilation per block, "d_b = 3b - 2 at block b", and Fig. 18 labels a whole block
"k = 2, d = 2"; Bai et al. do the same).

Choices where the paper is silent (each documented where it is made):

* A ReLU follows the block's output sum, as in Bai et al. (``relu(out + res)``).  The sums that
  land on inner activations (Double's ``a1``, Radical's ``a2``, ``a3``) get no extra ReLU.
* The output layer.  The paper: "channel size 32, except for the output layer which has 10
  channels", 24 convolutions in total, softmax on the final tensor.  So the *last convolution of
  the last block* outputs ``num_classes`` channels (its residual gets a 1×1 projection).  By
  default (``output_relu=False``) that convolution and the block's output sum are left without
  ReLU and dropout: they are the logits fed to the softmax, as the last layer of the section-4
  models is.  ``output_relu=True`` keeps "every convolution is proceeded by ReLU and dropout"
  literally (non-negative logits).
* Double's cross-block residual carries the *summed* first-convolution activations
  (``a1^(b) = f1(x^(b)) + a1^(b-1)``), so the first convolutions of all blocks form one residual
  chain, the way block outputs do (see :class:`DoubleBlock`).

The receptive field: eqs 65-66 give ``R = 1 + sum (d_l (k_l - 1))`` over the convolutions on the
longest input→output path (1×1 skips add 0).  Along that path Single/Double have 2 convolutions
per block and Radical 4, so for the paper's configurations::

    Single/Double  12 blocks × 2 convs, k = 6, d_b = 3b - 2:  R = 1 + 2·5·210 = 2101   (paper: 1001)
    Radical         6 blocks × 4 convs, k = 6, d_b = 6b - 5:  R = 1 + 4·5·96  = 1921   (paper: 1021)

Counting one convolution per block gives 1051 and 481, no match either.  The paper's 1021 is
exactly the Radical count with the Single's schedule d_b = 3b - 2 (1 + 4·5·51); its 1001 cannot
come from 12 blocks with any integer linear schedule and a fixed number of k-convolutions per
block (R - 1 would be (k-1)·n·6(13a - 2c), a multiple of 6).  All variants exceed the 784
timesteps of SeqMNIST, which is the property the paper chose them for.  docs/tcn.md has the
details; :func:`model_receptive_field` computes it and tests/test_tcn.py measures it from the
Jacobian.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jaxnets import layers
from jaxnets.registry import MODELS
from jaxnets.nn import Conv1x1, Dense, Dropout, WeightNormConv1d
from jaxnets.nn.temporal import INITS, TorchLinear

__all__ = [
    "BLOCKS",
    "HEADS",
    "CONVS_PER_BLOCK",
    "PAPER_RECEPTIVE_FIELD",
    "SingleBlock",
    "DoubleBlock",
    "RadicalBlock",
    "TCN",
    "SequenceClassifier",
    "exponential",
    "linear",
    "constant",
    "dilation_schedule",
    "receptive_field",
    "conv_path",
    "model_receptive_field",
    "tcn_model_config",
    "tcn_from_config",
    "build_tcn",
    "TCN_PRESETS",
]

BLOCKS = ("single", "double", "radical")
HEADS = ("conv", "linear")
#: Weight-normalised k-convolutions per block; all of them lie on the block's longest path.
CONVS_PER_BLOCK = {"single": 2, "double": 2, "radical": 4}
#: Receptive fields stated in §6.3.3 (see the module docstring for what the architectures give).
PAPER_RECEPTIVE_FIELD = {"single": 1001, "double": 1001, "radical": 1021}


# ----------------------------------------------------------------------------- dilation schedules
def exponential(n: int, base: int = 2) -> tuple[int, ...]:
    """The original TCN's schedule: ``d_b = base^(b-1)`` for blocks b = 1..n (1, 2, 4, ...)."""
    return tuple(base**i for i in range(n))


def linear(n: int, a: int = 3, b: int = 2) -> tuple[int, ...]:
    """The paper's linear schedule (§6.2.2): ``d_j = a·j - b`` for blocks j = 1..n.

    ``linear(12, 3, 2)`` is d_b = 3b - 2 (Single/Double: 1, 4, ..., 34); ``linear(6, 6, 5)`` is
    d_b = 6b - 5 (Radical: 1, 7, ..., 31).
    """
    d = tuple(a * j - b for j in range(1, n + 1))
    if any(x < 1 for x in d):
        raise ValueError(f"linear({n}, a={a}, b={b}) gives dilations {d}; every dilation must be >= 1")
    return d


def constant(n: int, d: int = 1) -> tuple[int, ...]:
    """The same dilation in every block (the captioning TCN of §7.2.3 uses d = 1)."""
    if d < 1:
        raise ValueError(f"constant dilation must be >= 1, got {d}")
    return (d,) * n


def dilation_schedule(name: str, n: int, a: int = 3, b: int = 2) -> tuple[int, ...]:
    """By name: ``"linear"`` -> :func:`linear` (n, a, b); ``"exponential"`` -> :func:`exponential`
    (n) (a, b unused); ``"constant"`` -> :func:`constant` (n, a)."""
    if name == "linear":
        return linear(n, a, b)
    if name == "exponential":
        return exponential(n)
    if name == "constant":
        return constant(n, a)
    raise ValueError(f"dilation_schedule={name!r}: choose 'linear', 'exponential' or 'constant'")


# ------------------------------------------------------------------------------- block dataflow
# A block's dataflow is written once, over three callables, and shared by the Flax blocks below
# and the streaming step (jaxnets.models.streaming):
#   f(h, i, features, act) -> activations of convolution i: dropout(relu(conv_i(h))) if act,
#                             conv_i(h) alone if not (the output layer's logits);
#   p(h, name, features)   -> h, or the 1×1 convolution ``name`` of h when its width != features;
#   relu(h).
# c: the block's channel count, c_out: the width of its output (c, or num_classes for the last
# block of a conv-head network), logits: the block ends in logits (no ReLU/dropout at the end).

Conv = Callable[[Any, int, int, bool], Any]
Project = Callable[[Any, str, int], Any]


def single_dataflow(x, carry, f: Conv, p: Project, relu, c: int, c_out: int, logits: bool):
    """Single block (the original TCN block)::

        x ──f1──> a1 ──f2──> h ──(+)──relu──> y
        │                          ^
        └──────────P ("skip")──────┘
    """
    a1 = f(x, 1, c, True)
    h = f(a1, 2, c_out, not logits)
    s = h + p(x, "skip", c_out)
    return (s if logits else relu(s)), None


def double_dataflow(x, carry, f: Conv, p: Project, relu, c: int, c_out: int, logits: bool):
    """Double block: Single plus a residual from the first convolution's activations of block
    b - 1 to those of block b (``carry``; None for the first block)::

        carry_in = a1^(b-1) ─────────┐
                                     v
        x ──f1──> f1(x) ──────────> (+) = a1^(b) ──f2──> h ──(+)──relu──> y
        │                             │                     ^
        │                             └──> carry_out        │
        └───────────────P ("skip")──────────────────────────┘

    ``a1^(b) = f1(x^(b)) + a1^(b-1)`` feeds conv 2 and is passed on, so the first convolutions
    form one residual chain across blocks.  Every a1 has ``c`` channels (the first convolution
    never is the output layer), so the chain needs no projection.
    """
    a1 = f(x, 1, c, True)
    if carry is not None:
        a1 = a1 + carry
    h = f(a1, 2, c_out, not logits)
    s = h + p(x, "skip", c_out)
    return (s if logits else relu(s)), a1


def radical_dataflow(x, carry, f: Conv, p: Project, relu, c: int, c_out: int, logits: bool):
    """Radical block: 4 convolutions; residuals input→output, input→second convolution, second
    convolution→output, first convolution→third convolution (§6.3.3)::

        x ──f1──> a1 ──f2──> (+) = a2 ──f3──> (+) = a3 ──f4──> h ──(+)──relu──> y
        │          │          ^     │          ^                   ^ ^
        │          └──────────┼─────┼──────────┘                   │ │
        ├──P ("skip_in2")─────┘     └──────P ("skip_a2")───────────┘ │
        └──P ("skip_out")────────────────────────────────────────────┘

        a1 = f1(x);  a2 = f2(a1) + P(x);  a3 = f3(a2) + a1;  y = relu(f4(a3) + P(a2) + P(x))

    A residual "to a convolution" adds to that convolution's activations, and the node passed on
    is the sum (as for the block output).  So x reaches the output twice, directly and through
    a2.  Each 1×1 projection has its own weights; they exist only where widths differ (first
    block: ``skip_in2``, ``skip_out``; last block of a conv-head network: ``skip_a2``,
    ``skip_out``).  Longest path: f1 f2 f3 f4, four convolutions.
    """
    a1 = f(x, 1, c, True)
    a2 = f(a1, 2, c, True) + p(x, "skip_in2", c)
    a3 = f(a2, 3, c, True) + a1
    h = f(a3, 4, c_out, not logits)
    s = h + p(a2, "skip_a2", c_out) + p(x, "skip_out", c_out)
    return (s if logits else relu(s)), None


DATAFLOW = {"single": single_dataflow, "double": double_dataflow, "radical": radical_dataflow}


# ----------------------------------------------------------------------------------- Flax blocks
class _Block(nn.Module):
    """A residual block: x (R, C_in, T), carry (R, C, T) or None -> (y (R, C_out, T), carry).

    Parameters (names used by :mod:`jaxnets.models.streaming`): ``conv{i}`` a
    :class:`~jaxnets.nn.WeightNormConv1d` ({v (C_i', C_i, k), g (C_i',), b (C_i',)}) per
    convolution; 1×1 projections ``skip*`` ({w (C', C, 1), b (C',)}) where widths differ.
    ``init_scheme``: the initialisation of both (:data:`jaxnets.nn.temporal.INITS`).
    """

    features: int  # C
    out_features: int  # C_out
    kernel_size: int
    dilation: int
    dropout: float = 0.0
    grad: str = "custom"
    logits: bool = False
    init_scheme: str = "normal"
    kind = "single"

    @nn.compact
    def __call__(self, x: jax.Array, carry: jax.Array | None = None, train: bool = False):
        ops = layers.get_ops(self.grad)

        def f(h, i, features, act):
            h = WeightNormConv1d(features, self.kernel_size, self.dilation, self.grad, self.init_scheme, name=f"conv{i}")(h)
            if not act:
                return h
            return Dropout(self.dropout, self.grad, name=f"drop{i}")(ops.relu(h), train)

        def p(h, name, features):
            return h if h.shape[1] == features else Conv1x1(features, self.grad, self.init_scheme, name=name)(h)

        return DATAFLOW[self.kind](x, carry, f, p, ops.relu, self.features, self.out_features, self.logits)


class SingleBlock(_Block):
    __doc__ = single_dataflow.__doc__
    kind = "single"


class DoubleBlock(_Block):
    __doc__ = double_dataflow.__doc__
    kind = "double"


class RadicalBlock(_Block):
    __doc__ = radical_dataflow.__doc__
    kind = "radical"


BLOCK_MODULES = {"single": SingleBlock, "double": DoubleBlock, "radical": RadicalBlock}


# --------------------------------------------------------------------------------------- network
class TCN(nn.Module):
    """A stack of residual blocks: x (R, C_in, T) -> (R, num_classes, T).

    ``head="conv"`` (the paper, §6.3.3): every convolution has ``channels`` channels except the
    last convolution of the last block, which has ``num_classes`` (the output layer).
    ``head="linear"`` (Bai et al.'s layout): every block outputs ``channels`` and a dense layer
    ``head`` ({w (channels, num_classes), b}) maps each timestep's features to ``num_classes``.
    ``dilations[b-1]`` is block b's dilation.  ``return_features=True`` also returns
    ``{"block1": (R, C, T), ...}``, each block's output.

    ``init_scheme="normal"`` (default, the paper's presets): kernels N(0, 0.01²), biases zero, a
    He-normal linear head.  ``init_scheme="pytorch_default"`` (the "original" preset): Bai et al.'s
    *effective* initialisation -- PyTorch's default ``Conv1d`` init for the weight-normalised
    convolutions (their ``normal_(0, 0.01)`` is undone by the weight-norm hook), N(0, 0.01²) for
    the 1×1 projections with PyTorch's default bias, PyTorch's default ``nn.Linear`` head
    (:class:`~jaxnets.nn.temporal.TorchLinear`).  See :mod:`jaxnets.nn.temporal`, docs/tcn.md.
    """

    block: str = "single"
    num_blocks: int = 12
    channels: int = 32
    kernel_size: int = 6
    dilations: tuple[int, ...] = linear(12, 3, 2)
    dropout: float = 0.05
    num_classes: int = 10
    head: str = "conv"
    output_relu: bool = False
    grad: str = "custom"
    init_scheme: str = "normal"

    def check(self) -> None:
        """Raise ``ValueError`` naming the bad field."""
        if self.block not in BLOCKS:
            raise ValueError(f"block={self.block!r}: choose one of {BLOCKS}")
        if self.head not in HEADS:
            raise ValueError(f"head={self.head!r}: choose one of {HEADS}")
        if len(self.dilations) != self.num_blocks:
            raise ValueError(f"dilations={self.dilations} has {len(self.dilations)} entries, num_blocks={self.num_blocks}")
        if any(int(d) < 1 for d in self.dilations):
            raise ValueError(f"dilations={self.dilations}: every dilation must be >= 1")
        if self.kernel_size < 1 or self.num_blocks < 1 or self.channels < 1:
            raise ValueError("kernel_size, num_blocks and channels must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout}: must be in [0, 1)")
        if self.init_scheme not in INITS:
            raise ValueError(f"init_scheme={self.init_scheme!r} (config field model.init): choose one of {INITS}")

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
        self.check()
        block = BLOCK_MODULES[self.block]
        h, carry, features = x, None, {}
        for i, d in enumerate(self.dilations):
            conv_out = self.head == "conv" and i == self.num_blocks - 1
            h, carry = block(
                features=self.channels,
                out_features=self.num_classes if conv_out else self.channels,
                kernel_size=self.kernel_size,
                dilation=int(d),
                dropout=self.dropout,
                grad=self.grad,
                logits=conv_out and not self.output_relu,
                init_scheme=self.init_scheme,
                name=f"block{i + 1}",
            )(h, carry, train)  # (R, C, T); the last conv-head block: (R, num_classes, T)
            features[f"block{i + 1}"] = h
        if self.head == "linear":
            r, c, t = h.shape
            dense = Dense if self.init_scheme == "normal" else TorchLinear
            z = dense(self.num_classes, self.grad, name="head")(h.transpose(0, 2, 1).reshape(r * t, c))  # (R·T, K)
            h = z.reshape(r, t, self.num_classes).transpose(0, 2, 1)  # (R, K, T)
        return (h, features) if return_features else h


class SequenceClassifier(nn.Module):
    """(Permuted) SequenceMNIST classifier (§6.3.1-6.3.3): the pixels as a sequence, a TCN, and
    the prediction of the last timestep only ("the model is only evaluated and trained on the
    prediction of the last timestep").

    x: (R, C, H, W) images, flattened row by row to (R, C, H·W) (MNIST: (R, 1, 784)), or an
    (R, C, T) sequence.  Returns logits (R, num_classes) (the softmax is in the loss /
    :func:`jaxnets.models.predict`); with ``return_features=True`` also the TCN's ``{"block1": ...}``.
    The permutation of Permuted MNIST is applied by the data pipeline, not here.
    Parameters live under ``"tcn"``.
    """

    tcn: TCN

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
        if x.ndim == 4:
            x = x.reshape(x.shape[0], x.shape[1], -1)  # (R, C, H·W)
        y, features = self.tcn(x, train, return_features=True)  # (R, K, T)
        logits = y[:, :, -1]  # (R, K)
        return (logits, features) if return_features else logits



# ------------------------------------------------------------------------------ receptive field
def receptive_field(kernel_sizes: Sequence[int], dilations: Sequence[int]) -> int:
    """Eqs 65-66: ``r(d, k) = d(k - 1) + 1`` per convolution, ``R = 1 + sum (r - 1)`` over the
    convolutions of a path (one (k, d) pair each, input to output)."""
    if len(kernel_sizes) != len(dilations):
        raise ValueError("one kernel size per dilation")
    return 1 + sum(int(d) * (int(k) - 1) for k, d in zip(kernel_sizes, dilations))


def _as_tcn(model_or_config) -> TCN:
    if isinstance(model_or_config, SequenceClassifier):
        return model_or_config.tcn
    if isinstance(model_or_config, TCN):
        return model_or_config
    return tcn_from_config(model_or_config)


def conv_path(model_or_config) -> tuple[tuple[int, int], ...]:
    """The (k, d) of every convolution on the longest input→output path of a TCN (a
    :class:`TCN`, :class:`SequenceClassifier` or model config), in order.  Every k-convolution of
    every block lies on it (Single/Double: 2 per block, Radical: 4); the 1×1 skips (k = 1) and
    the linear head would add nothing and are left out."""
    tcn = _as_tcn(model_or_config)
    tcn.check()
    n = CONVS_PER_BLOCK[tcn.block]
    return tuple((tcn.kernel_size, int(d)) for d in tcn.dilations for _ in range(n))


def model_receptive_field(model_or_config) -> int:
    """Receptive field (eqs 65-66) of the last output timestep on the input, along
    :func:`conv_path`."""
    path = conv_path(model_or_config)
    return receptive_field([k for k, _ in path], [d for _, d in path])


# ------------------------------------------------------------------------------------ configs
#: Model presets: the paper's three networks (§6.3.3) and the original TCN of Bai et al. on
#: (P)SeqMNIST (8 levels × 25 channels, k = 7, d = 2^i, dropout 0.05, linear head, and their
#: effective initialisation, PyTorch's defaults: ``init="pytorch_default"``).
TCN_PRESETS: dict[str, dict[str, Any]] = {
    "single": dict(block="single", num_blocks=12, channels=32, kernel_size=6, dilation_schedule="linear",
                   dilation_a=3, dilation_b=2, head="conv"),
    "double": dict(block="double", num_blocks=12, channels=32, kernel_size=6, dilation_schedule="linear",
                   dilation_a=3, dilation_b=2, head="conv"),
    "radical": dict(block="radical", num_blocks=6, channels=32, kernel_size=6, dilation_schedule="linear",
                    dilation_a=6, dilation_b=5, head="conv"),
    "original": dict(block="single", num_blocks=8, channels=25, kernel_size=7, dilation_schedule="exponential",
                     dilation_a=2, dilation_b=0, head="linear", init="pytorch_default"),
}


def tcn_model_config(preset: str = "single", **overrides) -> ml_collections.ConfigDict:
    """``config.model`` for ``build_model``: a preset of :data:`TCN_PRESETS` plus overrides.

    Fields: name ("tcn"), grad, block, num_blocks, channels, kernel_size, dilation_schedule
    ("linear" | "exponential" | "constant"), dilation_a, dilation_b (linear: d_b = a·b - b0 with
    b0 = dilation_b; constant: d = dilation_a), dropout, head ("conv" | "linear"), output_relu,
    num_classes, init ("normal": N(0, 0.01²) kernels, zero biases -- the paper's presets;
    "pytorch_default": Bai et al.'s effective init -- the "original" preset; the
    :class:`TCN`'s ``init_scheme``).
    dropout = 0.05: the paper uses dropout after every convolution but gives no
    rate, and chose its hyper-parameters "as close as possible to the original TCN", whose
    (P)SeqMNIST rate is 0.05.
    """
    if preset not in TCN_PRESETS:
        raise ValueError(f"preset={preset!r}: choose one of {sorted(TCN_PRESETS)}")
    fields = dict(name="tcn", grad="custom", dropout=0.05, output_relu=False, num_classes=10, init="normal")
    fields.update(TCN_PRESETS[preset])
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(f"unknown TCN config fields {unknown}; known: {sorted(fields)}")
    fields.update(overrides)
    return ml_collections.ConfigDict(fields)


def tcn_from_config(mc) -> TCN:
    """The :class:`TCN` a model config describes (see :func:`tcn_model_config`)."""
    if mc.get("grad", "custom") not in layers.GRAD_MODES:
        raise ValueError(f"model.grad={mc.grad!r}: must be 'custom' or 'autodiff'")
    n = int(mc.num_blocks)
    dilations = dilation_schedule(mc.dilation_schedule, n, int(mc.get("dilation_a", 3)), int(mc.get("dilation_b", 2)))
    tcn = TCN(
        block=mc.block,
        num_blocks=n,
        channels=int(mc.channels),
        kernel_size=int(mc.kernel_size),
        dilations=dilations,
        dropout=float(mc.dropout),
        num_classes=int(mc.get("num_classes", 10)),
        head=mc.get("head", "conv"),
        output_relu=bool(mc.get("output_relu", False)),
        grad=mc.get("grad", "custom"),
        init_scheme=mc.get("init", "normal"),
    )
    tcn.check()
    return tcn


@MODELS.register("tcn")
def build_tcn(mc) -> SequenceClassifier:
    """``build_model`` entry for ``model.name == "tcn"``."""
    return SequenceClassifier(tcn=tcn_from_config(mc))

"""Streaming inference for the TCNs of :mod:`jaxnets.models.tcn`: one new timestep in, that
timestep's output out, with a fixed amount of work and memory per step.

A causal convolution with kernel k and dilation d reads, for output t, the inputs
``t - d(k-1), ..., t - d, t`` (eq 63 with the left-only padding of §6.2.1).  So each
k-convolution keeps a ring buffer of its last ``P = d(k-1)`` inputs, (R, C, P), initialised to
zeros -- exactly the zero padding the full-sequence pass puts in front of that layer's input.
Step t (0-based) reads the k - 1 past taps from slots ``(t - d j) mod P`` (j = k-1, ..., 1), takes
the new input as the last tap, then writes the new input into slot ``t mod P`` (the slot of
``t - P``, the oldest, no longer needed).  All buffers advance together, so one step counter
``t`` serves them all.  1×1 skips, ReLU and the linear head are pointwise in time and need no
state; Double's cross-block residual is the current step's ``a1`` of the previous block, passed
along within the step.  Dropout is off (inference).  The block dataflow is the one the Flax
blocks run (:data:`jaxnets.models.tcn.DATAFLOW`), so the two cannot drift apart.

Mapping from the Flax parameters (``variables["params"]`` of a :class:`~jaxnets.models.tcn.TCN`,
or its ``["tcn"]`` for a :class:`~jaxnets.models.tcn.SequenceClassifier`) to
:class:`StreamParams` ``.layers``::

    block{b}/conv{i}/{v (C',C,k), g (C',), b}  ->  block{b}/conv{i}/{w = g v/||v|| (C',C,k), b}
    block{b}/skip*/{w (C',C,1), b}             ->  unchanged
    head/{w (C,K), b (K,)}                     ->  unchanged (head="linear": per timestep)

The weight norm is computed once, in :func:`stream_params`.

    params = stream_params(model, variables)          # model: TCN or SequenceClassifier
    state = init_stream(params, batch=R)
    y_t, state = jax.jit(stream_step)(params, state, x_t)   # x_t (R, C_in) -> y_t (R, K)
    ys, state = stream_sequence(params, xs)            # xs (R, C_in, T) -> ys (R, K, T)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax import lax

from jaxnets.layers import reference
from jaxnets.models.tcn import DATAFLOW, TCN, SequenceClassifier

__all__ = ["StreamSpec", "StreamParams", "StreamState", "stream_params", "init_stream", "stream_step", "stream_sequence"]


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """The static structure of a TCN (what is not in the arrays)."""

    block: str
    dilations: tuple[int, ...]
    head: str
    logits: bool  # the last block ends in logits (conv head without output_relu)


@struct.dataclass
class StreamParams:
    """Inference weights (weight norm applied) and the static structure (``spec``, not a leaf)."""

    layers: dict[str, Any]
    spec: StreamSpec = struct.field(pytree_node=False)


@struct.dataclass
class StreamState:
    """``buffers[block][conv]``: (R, C, d(k-1)) ring buffer of that convolution's last inputs
    (k-convolutions only); ``t``: int32 scalar, the number of steps taken."""

    buffers: dict[str, dict[str, jax.Array]]
    t: jax.Array


def stream_params(model: TCN | SequenceClassifier, variables) -> StreamParams:
    """Convert a TCN's Flax variables to :class:`StreamParams`, computing ``w = g v / ||v||``."""
    tcn = model.tcn if isinstance(model, SequenceClassifier) else model
    tcn.check()
    tree = variables["params"] if "params" in variables else variables
    if isinstance(model, SequenceClassifier):
        tree = tree["tcn"]

    def convert(node):
        if "v" in node:
            return {"w": reference.weight_norm(node["v"], node["g"]), "b": node["b"]}
        if "w" in node:
            return dict(node)
        return {name: convert(child) for name, child in node.items()}

    spec = StreamSpec(tcn.block, tuple(int(d) for d in tcn.dilations), tcn.head,
                      tcn.head == "conv" and not tcn.output_relu)
    return StreamParams(convert(dict(tree)), spec)


def init_stream(params: StreamParams, batch: int, dtype=None) -> StreamState:
    """Zero ring buffers (the causal zero padding) for a batch of ``batch`` sequences, t = 0."""
    buffers = {}
    for bname, d in zip(_block_names(params), params.spec.dilations):
        bufs = {}
        for name, p in params.layers[bname].items():
            c_in, k = p["w"].shape[1], p["w"].shape[2]
            if name.startswith("conv") and k > 1:
                bufs[name] = jnp.zeros((batch, c_in, d * (k - 1)), dtype or p["w"].dtype)
        buffers[bname] = bufs
    return StreamState(buffers, jnp.zeros((), jnp.int32))


def _block_names(params: StreamParams) -> list[str]:
    return [f"block{i + 1}" for i in range(len(params.spec.dilations))]


def _conv_step(p, buf, x_t, t, d):
    """One output timestep of a causal conv: x_t (R, C) -> y_t (R, C'), and the updated buffer."""
    w, b = p["w"], p["b"]  # (C', C, k), (C',)
    k = w.shape[2]
    if k == 1:
        return x_t @ w[:, :, 0].T + b, buf
    size = buf.shape[2]  # d(k-1)
    lags = d * jnp.arange(k - 1, 0, -1)  # taps i = 0..k-2 read x_{t - d(k-1-i)}
    past = jnp.take(buf, (t - lags) % size, axis=2)  # (R, C, k-1); unwritten slots are the zero padding
    window = jnp.concatenate([past, x_t[:, :, None]], axis=2)  # (R, C, k)
    y = jnp.einsum("rci,oci->ro", window, w, precision=lax.Precision.HIGHEST) + b
    buf = lax.dynamic_update_slice_in_dim(buf, x_t[:, :, None], t % size, axis=2)
    return y, buf


def stream_step(params: StreamParams, state: StreamState, x_t: jax.Array):
    """Advance every layer by one timestep: x_t (R, C_in) -> (y_t (R, K), new state).

    ``y_t`` equals the full-sequence output at this timestep (``TCN(...)[:, :, t]``;
    the logits of a SequenceClassifier are the last one).  Work per step does not depend on t.
    """
    spec, t = params.spec, state.t
    h, carry, buffers = x_t, None, {}
    names = _block_names(params)
    for bi, (bname, d) in enumerate(zip(names, spec.dilations)):
        p, new = params.layers[bname], {}

        def f(h, i, features, act, p=p, new=new, bname=bname, d=d):
            name = f"conv{i}"
            y, buf = _conv_step(p[name], state.buffers[bname].get(name), h, t, d)
            if name in state.buffers[bname]:
                new[name] = buf
            return jnp.maximum(y, 0) if act else y

        def proj(h, name, features, p=p):
            return h if name not in p else _conv_step(p[name], None, h, t, 1)[0]

        logits = spec.logits and bi == len(names) - 1
        c = p["conv1"]["w"].shape[0]
        h, carry = DATAFLOW[spec.block](h, carry, f, proj, lambda z: jnp.maximum(z, 0), c, None, logits)
        buffers[bname] = new
    if spec.head == "linear":
        h = h @ params.layers["head"]["w"] + params.layers["head"]["b"]  # (R, K)
    return h, StreamState(buffers, t + 1)


def stream_sequence(params: StreamParams, xs: jax.Array, state: StreamState | None = None):
    """Stream a whole sequence with ``lax.scan``: xs (R, C_in, T) -> (ys (R, K, T), final state)."""
    if state is None:
        state = init_stream(params, xs.shape[0], xs.dtype)

    def step(s, x_t):
        y, s = stream_step(params, s, x_t)
        return s, y

    state, ys = lax.scan(step, state, jnp.moveaxis(xs, 2, 0))  # ys (T, R, K)
    return jnp.moveaxis(ys, 0, 2), state

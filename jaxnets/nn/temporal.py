"""Flax modules of the temporal convolutional networks (paper §6): they hold parameters and call
:func:`jaxnets.layers.get_ops` (``causal_conv1d``, ``weight_norm``, ``dropout``).

Layout is the paper's NCT: activations ``X^(l)`` are (R, C, T) (batch, channels, time), temporal
kernels (C', C, k).

Initialisation, the modules' ``init_scheme`` (the paper gives none; docs/tcn.md, "Initialisation"):

* ``"normal"`` (default; the paper's Single/Double/Radical presets): kernel directions and 1×1
  kernels ``~ N(0, 0.01²)``, ``g = ||v||``, biases zero (zeros as everywhere else in
  :mod:`jaxnets.nn`).  This is what Bai et al.'s ``init_weights`` *writes*, but not what their
  weight-normalised convolutions start from.
* ``"pytorch_default"`` (the ``"original"`` preset): what Bai et al.'s TCN (locuslab/TCN,
  ``TCN/tcn.py``) effectively starts from.  Their ``conv.weight.data.normal_(0, 0.01)`` runs
  after ``torch.nn.utils.weight_norm`` has replaced ``weight`` by the parameters
  ``weight_g``, ``weight_v``; ``weight`` is then a plain tensor that the weight-norm
  pre-forward hook recomputes as ``g v / ||v||`` before every forward, so the assignment is
  lost.  What remains is PyTorch's default ``Conv1d`` init, read off into ``v`` and ``g``:
  ``v ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (``kaiming_uniform_(a=sqrt(5))``), fan_in = C·k;
  ``g = ||v||`` per output channel; ``b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.  The 1×1
  ``downsample`` is not weight-normalised, so its ``N(0, 0.01²)`` kernel is real; its bias keeps
  PyTorch's default ``U(-1/sqrt(C), 1/sqrt(C))``.  :class:`TorchLinear` is their ``nn.Linear``
  head with PyTorch's default init (``TCN/mnist_pixel/model.py`` does not re-initialise it).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnets import layers

__all__ = ["WeightNormConv1d", "Conv1x1", "TorchLinear", "Dropout", "TCN_KERNEL_STDDEV", "INITS", "torch_uniform"]

#: Standard deviation of the ``"normal"`` kernel initialisation, the value of the original TCN's
#: ``weight.data.normal_(0, 0.01)`` (effective only for its 1×1 ``downsample``; see above).
TCN_KERNEL_STDDEV = 0.01
#: Initialisation schemes of the temporal modules (see the module docstring).
INITS = ("normal", "pytorch_default")


def check_init(init_scheme: str) -> None:
    if init_scheme not in INITS:
        raise ValueError(f"init_scheme={init_scheme!r}: choose one of {INITS}")


def torch_uniform(fan_in: int):
    """PyTorch's default init of conv / linear weights and biases: ``U(-1/sqrt(fan_in),
    1/sqrt(fan_in))`` (``kaiming_uniform_(a=sqrt(5))`` has gain sqrt(2/(1+5)) and bound
    gain·sqrt(3/fan_in) = 1/sqrt(fan_in); the bias uses the same bound)."""
    bound = 1.0 / float(fan_in) ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class WeightNormConv1d(nn.Module):
    """Causal dilated convolution (eq 63, left-only padding ``d(k-1)``, §6.2.1) of a
    weight-normalised kernel ``w = g v / ||v||`` (norm per output channel, Salimans & Kingma 2016).

    x: (R, C, T) -> (R, C', T) with C' = ``features``.
    Parameters: ``v`` (C', C, k); ``g`` (C',) initialised to ``||v_c'||``, so that ``w = v`` at
    initialisation; ``b`` (C',).  ``init_scheme="normal"``: ``v ~ N(0, 0.01²)``, ``b`` zeros;
    ``init_scheme="pytorch_default"`` (PyTorch's ``Conv1d`` default, Bai et al.'s effective init):
    ``v, b ~ U(-1/sqrt(C·k), 1/sqrt(C·k))``.
    """

    features: int
    kernel_size: int
    dilation: int = 1
    grad: str = "custom"
    init_scheme: str = "normal"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_init(self.init_scheme)
        ops = layers.get_ops(self.grad)
        c = x.shape[1]
        if self.init_scheme == "normal":
            v_init, b_init = nn.initializers.normal(TCN_KERNEL_STDDEV), nn.initializers.zeros
        else:
            v_init = b_init = torch_uniform(c * self.kernel_size)
        v = self.param("v", v_init, (self.features, c, self.kernel_size), jnp.float32)
        # g's initialiser runs only in ``init``, where ``v`` is the freshly drawn direction.
        g = self.param("g", lambda _key: jnp.sqrt(jnp.sum(v * v, axis=(1, 2))))
        b = self.param("b", b_init, (self.features,), jnp.float32)
        w = ops.weight_norm(v.astype(x.dtype), g.astype(x.dtype))  # (C', C, k)
        return ops.causal_conv1d(x, w, b.astype(x.dtype), dilation=self.dilation)


class Conv1x1(nn.Module):
    """1×1 convolution (k = 1, no weight norm): the original TCN's ``downsample`` projection of a
    residual connection whose two ends have different channel counts.

    x: (R, C, T) -> (R, C', T).  Parameters: ``w`` (C', C, 1) ~ N(0, 0.01²) (both inits: Bai et
    al.'s ``downsample.weight.data.normal_(0, 0.01)`` is effective, there is no weight norm);
    ``b`` (C',): zeros (``init_scheme="normal"``) or PyTorch's default ``U(-1/sqrt(C), 1/sqrt(C))``
    (``init_scheme="pytorch_default"``).
    """

    features: int
    grad: str = "custom"
    init_scheme: str = "normal"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_init(self.init_scheme)
        ops = layers.get_ops(self.grad)
        b_init = nn.initializers.zeros if self.init_scheme == "normal" else torch_uniform(x.shape[1])
        w = self.param("w", nn.initializers.normal(TCN_KERNEL_STDDEV), (self.features, x.shape[1], 1), jnp.float32)
        b = self.param("b", b_init, (self.features,), jnp.float32)
        return ops.causal_conv1d(x, w.astype(x.dtype), b.astype(x.dtype))


class TorchLinear(nn.Module):
    """Fully connected layer ``Z = X W + b`` (eq 3) with PyTorch's default ``nn.Linear`` init:
    ``w``, ``b ~ U(-1/sqrt(N), 1/sqrt(N))``.  The head of Bai et al.'s (P)SeqMNIST TCN
    (``TCN/mnist_pixel/model.py``: ``nn.Linear(num_channels[-1], output_size)``, never
    re-initialised).  x: (R, N) -> (R, N').  Parameters: ``w`` (N, N'), ``b`` (N',), the layout
    of :class:`~jaxnets.nn.Dense`.
    """

    features: int
    grad: str = "custom"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ops = layers.get_ops(self.grad)
        n = x.shape[-1]
        w = self.param("w", torch_uniform(n), (n, self.features), jnp.float32)
        b = self.param("b", torch_uniform(n), (self.features,), jnp.float32)
        return ops.dense(x, w.astype(x.dtype), b.astype(x.dtype))


class Dropout(nn.Module):
    """Inverted dropout (§6.3.3): while training, zero each entry with probability ``rate`` and
    scale the rest by ``1 / (1 - rate)``; the identity at inference (``train=False``) or for
    ``rate == 0``.  The mask's key comes from the ``"dropout"`` RNG stream
    (``model.apply(..., rngs={"dropout": key})``).  x: any shape -> same shape.
    """

    rate: float
    grad: str = "custom"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        if not train or self.rate == 0.0:
            return x
        return layers.get_ops(self.grad).dropout(x, self.rate, self.make_rng("dropout"), False)

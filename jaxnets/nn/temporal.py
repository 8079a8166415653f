"""Flax modules of the temporal convolutional networks (paper §6): they hold parameters and call
:func:`jaxnets.layers.get_ops` (``causal_conv1d``, ``weight_norm``, ``dropout``).

Layout is the paper's NCT: activations ``X^(l)`` are (R, C, T) (batch, channels, time), temporal
kernels (C', C, k).  Initialisation follows the original TCN (Bai, Kolter & Koltun 2018): kernel
directions ``v ~ N(0, 0.01²)``, biases zero (PyTorch's default bias init is a small uniform; we
use zeros as everywhere else in :mod:`jaxnets.nn`).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnets import layers

__all__ = ["WeightNormConv1d", "Conv1x1", "Dropout", "TCN_KERNEL_STDDEV"]

#: Standard deviation of the original TCN's kernel initialisation (``weight.data.normal_(0, 0.01)``).
TCN_KERNEL_STDDEV = 0.01


class WeightNormConv1d(nn.Module):
    """Causal dilated convolution (eq 63, left-only padding ``d(k-1)``, §6.2.1) of a
    weight-normalised kernel ``w = g v / ||v||`` (norm per output channel, Salimans & Kingma 2016).

    x: (R, C, T) -> (R, C', T) with C' = ``features``.
    Parameters: ``v`` (C', C, k) ~ N(0, 0.01²); ``g`` (C',) initialised to ``||v_c'||``, so that
    ``w = v`` at initialisation; ``b`` (C',) zeros.
    """

    features: int
    kernel_size: int
    dilation: int = 1
    grad: str = "custom"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ops = layers.get_ops(self.grad)
        c = x.shape[1]
        v = self.param(
            "v", nn.initializers.normal(TCN_KERNEL_STDDEV), (self.features, c, self.kernel_size), jnp.float32
        )
        # g's initialiser runs only in ``init``, where ``v`` is the freshly drawn direction.
        g = self.param("g", lambda _key: jnp.sqrt(jnp.sum(v * v, axis=(1, 2))))
        b = self.param("b", nn.initializers.zeros, (self.features,), jnp.float32)
        w = ops.weight_norm(v.astype(x.dtype), g.astype(x.dtype))  # (C', C, k)
        return ops.causal_conv1d(x, w, b.astype(x.dtype), dilation=self.dilation)


class Conv1x1(nn.Module):
    """1×1 convolution (k = 1, no weight norm): the original TCN's ``downsample`` projection of a
    residual connection whose two ends have different channel counts.

    x: (R, C, T) -> (R, C', T).  Parameters: ``w`` (C', C, 1) ~ N(0, 0.01²), ``b`` (C',) zeros.
    """

    features: int
    grad: str = "custom"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ops = layers.get_ops(self.grad)
        w = self.param("w", nn.initializers.normal(TCN_KERNEL_STDDEV), (self.features, x.shape[1], 1), jnp.float32)
        b = self.param("b", nn.initializers.zeros, (self.features,), jnp.float32)
        return ops.causal_conv1d(x, w.astype(x.dtype), b.astype(x.dtype))


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

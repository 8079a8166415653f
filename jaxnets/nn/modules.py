"""Flax modules that hold the parameters and call the paper's layers.

Each module takes ``grad="custom" | "autodiff"``: ``custom`` calls the hand-derived custom-VJP
layers of :mod:`jaxnets.layers`, ``autodiff`` calls their plain ``jnp`` references
(:mod:`jaxnets.layers.reference`) and lets ``jax.grad`` derive the backward pass. Both compute
the same forward pass, so for the same parameters and batch the two modes give the same
gradients (``tests/test_models.py`` checks this in float64 on whole models).

Layout is the paper's: activations NCHW (R×C×H×W), dense inputs (R×N), conv kernels C'×C×k×k.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnets import layers

Padding = int | tuple[tuple[int, int], tuple[int, int]]


def he_normal(in_axis, out_axis):
    """He (Kaiming) initialisation for ReLU networks: Var[w] = 2 / fan_in."""
    return nn.initializers.variance_scaling(2.0, "fan_in", "truncated_normal", in_axis=in_axis, out_axis=out_axis)


class Dense(nn.Module):
    """Fully connected layer, eq (3): ``Z = X W + b``.

    x: (R, N) -> (R, N'). Parameters: ``w`` (N, N'), ``b`` (N',).
    """

    features: int
    grad: str = "custom"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ops = layers.get_ops(self.grad)
        w = self.param("w", he_normal(0, 1), (x.shape[-1], self.features), jnp.float32)
        b = self.param("b", nn.initializers.zeros, (self.features,), jnp.float32)
        return ops.dense(x, w.astype(x.dtype), b.astype(x.dtype))


class Conv2d(nn.Module):
    """2-D convolution, eq (22), with stride s and (possibly asymmetric) zero-padding p.

    x: (R, C, H, W) -> (R, C', H', W'), H' = floor((H + p_top + p_bottom - k) / s) + 1 (eq 21).
    Parameters: ``w`` (C', C, k, k), ``b`` (C',) unless ``use_bias=False`` (no ``b``: for a
    convolution followed by batch norm, whose β makes a bias redundant).
    """

    features: int
    kernel_size: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: Padding = 0
    grad: str = "custom"
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        ops = layers.get_ops(self.grad)
        kh, kw = (self.kernel_size, self.kernel_size) if isinstance(self.kernel_size, int) else self.kernel_size
        w = self.param("w", he_normal((1, 2, 3), 0), (self.features, x.shape[1], kh, kw), jnp.float32)
        b = None
        if self.use_bias:
            b = self.param("b", nn.initializers.zeros, (self.features,), jnp.float32).astype(x.dtype)
        return ops.conv2d(x, w.astype(x.dtype), b, stride=self.stride, padding=self.padding)


class BatchNorm(nn.Module):
    """Batch normalization, eqs (34)-(39): statistics over (R, H, W) for NCHW, over R for (R, N).

    Training: normalises with the batch statistics and updates the running statistics
    (collection ``batch_stats``) by the exponentially weighted average of eqs (38)-(39) with
    λ = ``momentum``. Inference (``train=False``): uses the running statistics.
    Parameters: ``gamma``, ``beta`` (C,). State: ``mean``, ``var`` (C,).
    """

    momentum: float = 0.1
    eps: float = 1e-5
    grad: str = "custom"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        ops = layers.get_ops(self.grad)
        c = x.shape[1]
        gamma = self.param("gamma", nn.initializers.ones, (c,), jnp.float32).astype(x.dtype)
        beta = self.param("beta", nn.initializers.zeros, (c,), jnp.float32).astype(x.dtype)
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        if not train:
            return ops.batch_norm_inference(
                x, gamma, beta, ra_mean.value.astype(x.dtype), ra_var.value.astype(x.dtype), self.eps
            )
        y, mean, var = ops.batch_norm(x, gamma, beta, self.eps)
        if not self.is_initializing():
            new_mean, new_var = ops.update_running_stats(
                ra_mean.value,
                ra_var.value,
                jax.lax.stop_gradient(mean).astype(jnp.float32),
                jax.lax.stop_gradient(var).astype(jnp.float32),
                self.momentum,
            )
            ra_mean.value, ra_var.value = new_mean, new_var
        return y


def max_pool2d(x: jax.Array, kernel: int, stride: int, grad: str = "custom") -> jax.Array:
    """Max-pooling, eqs (28)-(33): (R, C, H, W) -> (R, C, H', W'), H' = floor((H - k) / s) + 1."""
    return layers.get_ops(grad).max_pool2d(x, kernel, stride)


def relu(x: jax.Array, grad: str = "custom") -> jax.Array:
    """ReLU, eq (5), element-wise."""
    return layers.get_ops(grad).relu(x)


def count_params(tree) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))


__all__: Sequence[str] = ["Dense", "Conv2d", "BatchNorm", "max_pool2d", "relu", "count_params", "he_normal"]

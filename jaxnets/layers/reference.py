"""Plain-``jnp`` reference versions of every layer; ``jax.grad`` differentiates these.

Same names, signatures, shapes and argument checks as the custom-VJP layers in this package,
so ``get_ops("autodiff")`` and ``get_ops("custom")`` are interchangeable.  Layout is NCHW
(R batch, C channels, H, W); conv kernels are OIHW ``(C', C, kh, kw)``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from jaxnets.layers.shapes import (
    check_batch_norm_args,
    check_conv_args,
    check_dense_args,
    check_pool_args,
    check_same_shape,
)

__all__ = [
    "dense",
    "conv2d",
    "relu",
    "sigmoid",
    "tanh",
    "max_pool2d",
    "batch_norm",
    "batch_norm_inference",
    "update_running_stats",
    "softmax",
    "cross_entropy",
    "softmax_cross_entropy",
    "mse",
]

CONV_DIMS = ("NCHW", "OIHW", "NCHW")


def dense(x, w, b):
    """Eq 3: ``Z = X W + b``.  x: (R, N), w: (N, N'), b: (N',) -> (R, N')."""
    check_dense_args(x.shape, w.shape, b.shape)
    return x @ w + b


def conv2d(x, w, b=None, stride=1, padding=0):
    """Eq 22 with zero-padding.  x: (R, C, H, W), w: (C', C, kh, kw), b: (C',) or None
    -> (R, C', H', W')."""
    s, p = check_conv_args(x.shape, w.shape, None if b is None else b.shape, stride, padding)
    y = lax.conv_general_dilated(x, w, s, p, dimension_numbers=CONV_DIMS)
    return y if b is None else y + b[None, :, None, None]


def relu(x):
    """Eq 5, with ReLU'(0) = 1 because ``x >= 0`` takes the identity branch."""
    return jnp.where(x >= 0, x, jnp.zeros_like(x))


def sigmoid(x):
    """Eq 6 (``lax.logistic`` is ``1 / (1 + e^{-x})`` without overflow)."""
    return lax.logistic(x)


def tanh(x):
    """Eq 7."""
    return jnp.tanh(x)


def max_pool2d(x, kernel, stride=None):
    """Eq 31.  x: (R, C, H, W) -> (R, C, H', W'); no padding; stride defaults to kernel."""
    k, s = check_pool_args(x.shape, kernel, stride)
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 1) + k, (1, 1) + s, "VALID")


def batch_norm(x, gamma, beta, eps=1e-5):
    """Eqs 34-37 (epsilon inside the square root).  x: (R, C, H, W) or (R, N);
    gamma, beta: (C,) -> (y like x, mean (C,), biased var (C,))."""
    axes, bshape = check_batch_norm_args(x.shape, {"gamma": gamma.shape, "beta": beta.shape})
    mean = jnp.mean(x, axis=axes)
    xc = x - mean.reshape(bshape)
    var = jnp.mean(xc * xc, axis=axes)
    xhat = xc * lax.rsqrt(var + eps).reshape(bshape)
    return gamma.reshape(bshape) * xhat + beta.reshape(bshape), mean, var


def batch_norm_inference(x, gamma, beta, mean, var, eps=1e-5):
    """Eqs 36-37 with fixed (running) statistics.  x: (R, C, H, W) or (R, N); rest (C,)."""
    vectors = {"gamma": gamma.shape, "beta": beta.shape, "mean": mean.shape, "var": var.shape}
    _, bshape = check_batch_norm_args(x.shape, vectors, "batch_norm_inference")
    scale = gamma * lax.rsqrt(var + eps)
    return x * scale.reshape(bshape) + (beta - mean * scale).reshape(bshape)


def update_running_stats(running_mean, running_var, mean, var, momentum):
    """Eqs 38-39 with ``lambda = momentum`` (the weight of the *new* batch statistic):
    ``mu_EWMA <- lambda mu + (1 - lambda) mu_EWMA``.  Returns (running_mean, running_var)."""
    return (
        momentum * mean + (1.0 - momentum) * running_mean,
        momentum * var + (1.0 - momentum) * running_var,
    )


def softmax(x):
    """Eq 51 over the last axis.  x: (R, C) -> (R, C)."""
    e = jnp.exp(x - lax.stop_gradient(jnp.max(x, axis=-1, keepdims=True)))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _batch_size(x):
    """R for (R, C); for (R, ..., C) every leading position counts as an example."""
    n = 1
    for d in x.shape[:-1]:
        n *= d
    return n


def cross_entropy(p, y):
    """Eq 53 divided by R: ``-(1/R) sum_{r,c} y_rc log p_rc``.  p, y: (R, C) -> ()."""
    check_same_shape("cross_entropy", ("p", "y"), p.shape, y.shape)
    return -jnp.sum(y * jnp.log(p)) / _batch_size(p)


def softmax_cross_entropy(logits, y):
    """``cross_entropy(softmax(logits), y)`` via log-sum-exp.  logits, y: (R, C) -> ()."""
    check_same_shape("softmax_cross_entropy", ("logits", "y"), logits.shape, y.shape)
    m = lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    lse = m + jnp.log(jnp.sum(jnp.exp(logits - m), axis=-1, keepdims=True))
    return -jnp.sum(y * (logits - lse)) / _batch_size(logits)


def mse(yhat, y):
    """Eq 8: ``(1/(R N)) sum (yhat - y)^2``.  yhat, y: (R, N) -> ()."""
    check_same_shape("mse", ("yhat", "y"), yhat.shape, y.shape)
    d = yhat - y
    return jnp.sum(d * d) / d.size


"""Plain-``jnp`` reference versions of every layer; ``jax.grad`` differentiates these.

Same names, signatures, shapes and argument checks as the custom-VJP layers in this package,
so ``get_ops("autodiff")`` and ``get_ops("custom")`` are interchangeable.  Layout is NCHW
(R batch, C channels, H, W); conv kernels are OIHW ``(C', C, kh, kw)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxnets.layers.shapes import (
    check_batch_norm_args,
    check_causal_conv1d_args,
    check_conv_args,
    check_dense_args,
    check_pool_args,
    check_dropout_args,
    check_same_shape,
    check_weight_norm_args,
)
from jaxnets.layers.registry import OP_NAMES
from jaxnets.layers.detection_losses import _check_gamma, _check_two_class_args
from jaxnets.layers.resample import _check_upsample_args

# Every op of registry.OP_NAMES, plus the original TCN's pad-and-chop causal conv (for tests
# and bench/; it is the same map as ``causal_conv1d``, so no custom VJP of its own).
__all__ = [*OP_NAMES, "causal_conv1d_chop"]

CONV_DIMS = ("NCHW", "OIHW", "NCHW")
CONV1D_DIMS = ("NCH", "OIH", "NCH")


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



def causal_conv1d(x, w, b=None, dilation=1, stride=1):
    """Eq 63 with the paper's smart zero-padding (§6.2.1): pad ``d(k - 1)`` zeros on the
    left only, then a VALID dilated correlation.  x: (R, C, T), w: (C', C, k), b: (C',) or
    None -> (R, C', T') with ``T' = floor((T - 1) / s) + 1`` (eq 64; ``T' = T`` for s = 1)."""
    d, s = check_causal_conv1d_args(x.shape, w.shape, None if b is None else b.shape,
                                    dilation, stride)
    xp = jnp.pad(x, ((0, 0), (0, 0), (d * (w.shape[2] - 1), 0)))  # (R, C, T + d(k-1))
    y = lax.conv_general_dilated(xp, w, (s,), "VALID", rhs_dilation=(d,),
                                 dimension_numbers=CONV1D_DIMS)
    return y if b is None else y + b[None, :, None]


def causal_conv1d_chop(x, w, b=None, dilation=1, stride=1):
    """The original TCN scheme (Bai, Kolter & Koltun 2018, ``Chomp1d``): pad ``d(k - 1)``
    zeros on *both* sides, correlate, then chop the outputs that read right padding.

    For s = 1 that is the last ``d(k - 1)`` of the ``T + d(k - 1)`` outputs.  For s > 1 (not
    used by the TCN paper) we keep, consistently, the first ``floor((T - 1) / s) + 1`` outputs:
    exactly those whose window ends at or before the last real input.  Same shapes and result
    as ``causal_conv1d``; it only computes (and throws away) the extra outputs.
    """
    d, s = check_causal_conv1d_args(x.shape, w.shape, None if b is None else b.shape,
                                    dilation, stride, "causal_conv1d_chop")
    p = d * (w.shape[2] - 1)
    xp = jnp.pad(x, ((0, 0), (0, 0), (p, p)))  # (R, C, T + 2 d(k-1))
    y = lax.conv_general_dilated(xp, w, (s,), "VALID", rhs_dilation=(d,),
                                 dimension_numbers=CONV1D_DIMS)
    y = y[:, :, : (x.shape[2] - 1) // s + 1]  # chomp: for s = 1, y[..., :-d(k-1)]
    return y if b is None else y + b[None, :, None]


def weight_norm(v, g):
    """Weight normalisation (Salimans & Kingma 2016; paper §6.3.3): ``w = g v / ||v||``, the
    norm over every axis but the first.  v: (C', ...), g: (C',) -> w like v."""
    check_weight_norm_args(v.shape, g.shape)
    axes = tuple(range(1, v.ndim))
    norm = jnp.sqrt(jnp.sum(v * v, axis=axes, keepdims=True))  # (C', 1, ...)
    return g.reshape((-1,) + (1,) * (v.ndim - 1)) * (v / norm)


def dropout(x, rate, key, deterministic=False):
    """Inverted dropout (§6.3.3): keep each entry with probability ``1 - rate`` and scale the
    kept ones by ``1 / (1 - rate)``; the identity when ``deterministic`` or ``rate == 0``.
    The mask is ``jax.random.bernoulli(key, 1 - rate, x.shape)``.  x: any shape."""
    rate = check_dropout_args(rate, deterministic, key)
    if deterministic or rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x * (1.0 / (1.0 - rate)), jnp.zeros_like(x))


# ------------------------------------------------------- the detector (section 5)
def _interp_matrix(n, f, dtype):
    """(f n, n): row o holds PyTorch's ``align_corners=False`` weights for output o,
    ``s = max((o + 1/2)/f - 1/2, 0)``, rows ``floor(s)`` and ``min(floor(s) + 1, n - 1)``."""
    m = np.zeros((f * n, n))
    for o in range(f * n):
        s = max((o + 0.5) / f - 0.5, 0.0)
        i0 = int(np.floor(s))
        lam = s - i0
        m[o, i0] += 1.0 - lam
        m[o, min(i0 + 1, n - 1)] += lam
    return jnp.asarray(m, dtype=dtype)


def upsample_bilinear(x, factor=2):
    """Bilinear ×f, half-pixel centres (PyTorch ``align_corners=False``), as two dense
    interpolation matrices: ``Y = U_H X U_Wᵀ`` per (r, c).
    x: (R, C, H, W) -> (R, C, f_h H, f_w W)."""
    fh, fw = _check_upsample_args(x.shape, factor)
    uh = _interp_matrix(x.shape[2], fh, x.dtype)
    uw = _interp_matrix(x.shape[3], fw, x.dtype)
    return jnp.einsum("oh,rchw,pw->rcop", uh, x, uw, precision=lax.Precision.HIGHEST)


def smooth_l1(x):
    """Eq 56: ``0.5 x^2`` if ``|x| < 1`` else ``|x| - 0.5``, elementwise."""
    return jnp.where(jnp.abs(x) < 1, 0.5 * x * x, jnp.abs(x) - 0.5)


def two_class_softmax_cross_entropy(logits, p):
    """Eq 57 over C = 2 classes with ``y = (1 - p, p)``, via ``log_softmax``.
    logits: (..., 2), p: (...) -> (...)."""
    _check_two_class_args(logits.shape, p.shape)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -(1 - p) * logp[..., 0] - p * logp[..., 1]


def sigmoid_binary_cross_entropy(logits, p):
    """Eq 59 with ``p̂ = σ(z)``: ``-p log p̂ - (1 - p) log(1 - p̂)`` (``log σ`` via
    ``jax.nn.log_sigmoid``).  logits, p: same shape -> that shape."""
    check_same_shape("sigmoid_binary_cross_entropy", ("logits", "p"), logits.shape, p.shape)
    return -p * jax.nn.log_sigmoid(logits) - (1 - p) * jax.nn.log_sigmoid(-logits)


def sigmoid_focal_loss(logits, p, gamma=3.0):
    """Eq 61 with the modulating factor on the prediction ``p̂ = σ(z)``:
    ``-p (1 - p̂)^γ log p̂ - (1 - p) p̂^γ log(1 - p̂)``.  logits, p: same shape -> that shape."""
    check_same_shape("sigmoid_focal_loss", ("logits", "p"), logits.shape, p.shape)
    gamma = _check_gamma(gamma)
    p_hat = lax.logistic(logits)
    return (-p * (1 - p_hat) ** gamma * jnp.log(p_hat)
            - (1 - p) * p_hat ** gamma * jnp.log1p(-p_hat))

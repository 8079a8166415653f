"""Batch normalisation (paper §3.7, eqs 34-50) as a custom VJP, plus inference and eqs 38-39.

Shapes: x ``X^(l)`` is (R, C, H, W) -- statistics per channel c over (r, h, w), ``M = RHW`` --
or (R, N) -- statistics per feature over r, ``M = R``.  gamma, beta, mean, var are (C,).

Differences from the printed text (docs/derivations.md, Errata): ``eps`` sits inside the
square root of eq 36, ``Xhat = (X - mu)(sigma^2 + eps)^{-1/2}`` (Ioffe & Szegedy; the paper
drops it), and the backward pass uses ``(sigma^2 + eps)^{-1}`` where the printed eq 48 has
``(sigma^2)^{-3/2}`` inside a bracket already multiplied by ``(sigma^2)^{-1/2}``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.layers.shapes import check_batch_norm_args

__all__ = ["batch_norm", "batch_norm_inference", "update_running_stats"]


def _layout(x, fn="batch_norm"):
    """Reduction axes and the broadcast shape of a per-channel (C,) vector."""
    return check_batch_norm_args(x.shape, {}, fn)


def _stats(x, eps):
    axes, bshape = _layout(x, "batch_norm")
    mean = jnp.mean(x, axis=axes)  # eq 34
    xc = x - mean.reshape(bshape)
    var = jnp.mean(xc * xc, axis=axes)  # eq 35 (biased)
    inv_std = lax.rsqrt(var + eps)  # (sigma^2 + eps)^{-1/2}
    xhat = xc * inv_std.reshape(bshape)  # eq 36
    return mean, var, inv_std, xhat


@partial(jax.custom_vjp, nondiff_argnums=(3,))
def _batch_norm(x, gamma, beta, eps):
    _, bshape = _layout(x, "batch_norm")
    mean, var, _, xhat = _stats(x, eps)
    return gamma.reshape(bshape) * xhat + beta.reshape(bshape), mean, var  # eq 37


def _batch_norm_fwd(x, gamma, beta, eps):
    _, bshape = _layout(x, "batch_norm")
    mean, var, inv_std, xhat = _stats(x, eps)
    y = gamma.reshape(bshape) * xhat + beta.reshape(bshape)
    # residuals: normalised activations Xhat (eq 36), (sigma^2 + eps)^{-1/2}, and gamma
    return (y, mean, var), (xhat, inv_std, gamma)


def _batch_norm_bwd(eps, res, cts):
    """Backward pass of eqs 34-37; cotangents ``(delta, g_mu, g_var)`` for ``(y, mean, var)``.

    Write ``M = RHW``, ``s = (sigma_c^2 + eps)^{-1/2}``, ``Xhat = (X - mu_c) s``,
    ``delta = delta^(l+1)``.  Eqs 43-47 (``dXhat/dX`` via the Kronecker delta, eq 46 for the
    mean, eq 47 ``d sigma_c^2 / dX_{r,c,h,w} = (2/M)(X_{r,c,h,w} - mu_c)``) substituted into
    eq 43 give, corrected (eq 48 as printed has ``(sigma^2)^{-3/2}`` inside the bracket; the
    factor ``s`` is already outside, so only ``s^2 = (sigma^2 + eps)^{-1}`` belongs there)::

        delta^(l)_{r,c,h,w} = (gamma_c s / M) ( M delta_{r,c,h,w} - sum_{r',h',w'} delta_{r',c,h',w'}
                               - (X_{r,c,h,w} - mu_c) s^2 sum_{r',h',w'} delta_{r',c,h',w'} (X_{r',c,h',w'} - mu_c) )
                            = (gamma_c s / M) ( M delta - sum delta - Xhat sum(delta Xhat) )

    The layer also returns ``mu`` and ``sigma^2`` (for eqs 38-39); so that the rule is exact
    for any use of them, their cotangents are added with eq 34's ``d mu_c / dX = 1/M`` and
    eq 47's ``d sigma_c^2 / dX = (2/M)(X - mu_c)``::

        delta^(l) += g_mu_c / M + g_var_c (2/M)(X - mu_c),    X - mu_c = Xhat / s

    Parameters, eqs 49-50: ``dL/dgamma_c = sum_{r,h,w} delta Xhat``,
    ``dL/dbeta_c = sum_{r,h,w} delta``.
    """
    xhat, inv_std, gamma = res
    delta, g_mean, g_var = cts
    axes, bshape = _layout(xhat, "batch_norm")
    m = xhat.size // xhat.shape[1]
    s = inv_std.reshape(bshape)

    dbeta = jnp.sum(delta, axis=axes)  # eq 50
    dgamma = jnp.sum(delta * xhat, axis=axes)  # eq 49
    # eq 48 (corrected), with sum delta = dbeta and sum delta Xhat = dgamma
    dx = (gamma * inv_std / m).reshape(bshape) * (
        m * delta - dbeta.reshape(bshape) - xhat * dgamma.reshape(bshape)
    )
    # cotangents of the returned statistics (eqs 34, 47)
    dx = dx + (g_mean / m).reshape(bshape) + (2.0 / m) * g_var.reshape(bshape) * (xhat / s)
    return dx.astype(xhat.dtype), dgamma.astype(gamma.dtype), dbeta.astype(gamma.dtype)


_batch_norm.defvjp(_batch_norm_fwd, _batch_norm_bwd)


def batch_norm(x, gamma, beta, eps=1e-5):
    """Training-mode batch norm, eqs 34-37 (with eps); backward eqs 48-50 corrected.

    x: (R, C, H, W) (stats over r, h, w) or (R, N) (stats over r); gamma, beta: (C,).
    Returns ``(y, mean, var)``: y like x, the batch mean mu (C,) (eq 34) and the biased batch
    variance sigma^2 (C,) (eq 35), for ``update_running_stats``.  ``eps`` is static.
    """
    check_batch_norm_args(x.shape, {"gamma": gamma.shape, "beta": beta.shape})
    return _batch_norm(x, gamma, beta, float(eps))


def batch_norm_inference(x, gamma, beta, mean, var, eps=1e-5):
    """Eqs 36-37 with fixed statistics (the running averages of eqs 38-39): an affine map,
    so plain ``jnp`` (autodiff) is exact.  x: (R, C, H, W) or (R, N); others (C,) -> like x."""
    vectors = {"gamma": gamma.shape, "beta": beta.shape, "mean": mean.shape, "var": var.shape}
    _, bshape = check_batch_norm_args(x.shape, vectors, "batch_norm_inference")
    scale = gamma * lax.rsqrt(var + eps)
    return x * scale.reshape(bshape) + (beta - mean * scale).reshape(bshape)


def update_running_stats(running_mean, running_var, mean, var, momentum):
    """Eqs 38-39 with ``lambda = momentum``, the weight of the *new* batch statistic:
    ``mu_EWMA <- lambda mu + (1 - lambda) mu_EWMA`` (and the same for sigma^2).

    Note: Flax's ``BatchNorm(momentum=m)`` means the opposite (``m`` weights the old value),
    so Flax's 0.9 is ``momentum=0.1`` here.  All arguments (C,); returns
    ``(running_mean, running_var)``.
    """
    return (
        momentum * mean + (1.0 - momentum) * running_mean,
        momentum * var + (1.0 - momentum) * running_var,
    )

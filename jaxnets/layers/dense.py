"""Fully connected layer (paper §1.3.3 and §1.3.6, eqs 1-4 and 15, 17, 18) as a custom VJP.

Weight layout is ``w in R^{N x N'}`` (N = N^(l) inputs, N' = N^(l+1) outputs), the shape that
eqs 1 and 3 actually use (``sum_i X_ri W_ij`` and ``X W``); the text's ``W in
R^{N^(l+1) x N^(l)}`` is the transpose (see docs/derivations.md, Errata).

The activation function is a separate layer (``activation.py``), so this op is ``Z = XW + b``
and its backward pass is eqs 15, 17, 18 with ``f'`` taken out: the incoming cotangent is
``dL/dZ^(l+1) = delta^(l+1) f'(Z^(l+1))``, which the activation layer's eq 27 already produced.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxnets.layers.shapes import check_dense_args

__all__ = ["dense"]


@jax.custom_vjp
def _dense(x, w, b):
    return x @ w + b


def _dense_fwd(x, w, b):
    # residuals: the layer input X^(l) (for dL/dW) and the weights W^(l) (for delta^(l))
    return x @ w + b, (x, w)


def _dense_bwd(res, g):
    """Backward pass of ``Z_rj = b_j + sum_i X_ri W_ij`` (eqs 1, 3).

    With ``g_rj = dL/dZ_rj^(l+1) = delta_rj^(l+1) f'(Z_rj^(l+1))`` (the activation layer's
    eq 27) and ``dZ_rj / dX_ri = W_ij``, ``dZ_rj / dW_ij = X_ri``, ``dZ_rj / db_j = 1``:

    * eq 15 (corrected index: ``f'(Z_{r,j})``, not ``f'(Z_{r,i})``)::

          delta_ri^(l) = sum_j g_rj W_ij            ->  delta^(l) = g W^T        (R, N)

    * eq 17 (corrected: the weight ``W_ij`` joins input i to output j, so the sum pairs the
      output's ``delta_rj`` with the input's ``X_ri``)::

          dL/dW_ij = sum_r X_ri g_rj                ->  dL/dW = X^T g            (N, N')

    * eq 18::

          dL/db_j = sum_r g_rj                                                   (N',)

    Leading axes of ``x`` beyond one batch axis are all summed over like r.
    """
    x, w = res
    dx = g @ w.T
    lead = tuple(range(x.ndim - 1))
    dw = jnp.tensordot(x, g, axes=(lead, lead))
    db = jnp.sum(g, axis=lead)
    return dx.astype(x.dtype), dw.astype(w.dtype), db.astype(g.dtype)


_dense.defvjp(_dense_fwd, _dense_bwd)


def dense(x, w, b):
    """Eq 3: ``Z^(l+1) = X^(l) W^(l) + b^(l)``.

    x: (R, N) (or (R, ..., N): every leading position is an example), w: (N, N'), b: (N',)
    -> (R, N').  Backward pass: eqs 15, 17, 18 (see ``_dense_bwd``).
    """
    check_dense_args(x.shape, w.shape, b.shape)
    return _dense(x, w, b)

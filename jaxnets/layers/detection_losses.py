"""The detector's per-anchor losses (paper §5.3, eqs 56, 57, 59, 61) as custom VJPs.

Every function here is **elementwise**: it returns one loss per anchor (per coordinate for
smooth L1), unreduced, so that the sums and normalisations of eqs 58, 60 and 62 and online
hard example mining (§5.3.4) -- plain ``jnp`` over these per-anchor losses, in
:mod:`jaxnets.layers.detection_totals` -- can choose which anchors count.  Shapes use A for
anchors: per-anchor arrays are (R, A) (any shape works; it is kept).

The classifiers take **logits** (pre-activation scores) and fuse the softmax / sigmoid into the
loss: ``log σ(z) = −softplus(−z)`` is computed without ever forming ``σ(z)`` = 0 or 1, so the
losses and their gradients stay finite for logits of ±100 and beyond (float32 included).

* ``smooth_l1(x)`` -- eq 56, ``x = r_a − r̂_a``;
* ``two_class_softmax_cross_entropy(logits, p)`` -- eq 57 over C = 2 classes (v1.0);
* ``sigmoid_binary_cross_entropy(logits, p)`` -- eq 59 (v1.1+);
* ``sigmoid_focal_loss(logits, p, gamma)`` -- eq 61 with the modulating factor on the
  *prediction* (RetinaNet's focal loss; the printed eq 61 puts it on the target and vanishes
  for 0/1 labels, see docs/derivations.md, Errata).

Targets ``p`` are the paper's ``p_a`` (1 face, 0 background); any real ``p`` is allowed (soft
labels) and every rule returns the target's cotangent too, exact for any ``p``.
"""

from __future__ import annotations

import numbers
from functools import partial

import jax
import jax.numpy as jnp
from jax import lax

from jaxnets.layers.shapes import check_same_shape

__all__ = [
    "smooth_l1",
    "two_class_softmax_cross_entropy",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
]


def _softplus(z):
    """``log(1 + e^z)`` without overflow: ``max(z, 0) + log1p(e^{−|z|})``."""
    return jnp.maximum(z, 0) + jnp.log1p(jnp.exp(-jnp.abs(z)))


def _check_two_class_args(logits_shape, p_shape, fn="two_class_softmax_cross_entropy"):
    if len(logits_shape) < 1 or logits_shape[-1] != 2:
        raise ValueError(f"{fn}: logits must have shape (..., 2) (background, face), "
                         f"got {tuple(logits_shape)}")
    if tuple(logits_shape[:-1]) != tuple(p_shape):
        raise ValueError(f"{fn}: p must have shape logits.shape[:-1]={tuple(logits_shape[:-1])}, "
                         f"got {tuple(p_shape)}")


def _check_gamma(gamma, fn="sigmoid_focal_loss") -> float:
    if not isinstance(gamma, numbers.Real) or isinstance(gamma, bool) or not gamma >= 0:
        raise ValueError(f"{fn}: gamma must be a real number >= 0, got {gamma!r}")
    return float(gamma)


# ------------------------------------------------------------------------- smooth L1
@jax.custom_vjp
def _smooth_l1(x):
    a = jnp.abs(x)
    return jnp.where(a < 1, 0.5 * x * x, a - 0.5)


def _smooth_l1_fwd(x):
    return _smooth_l1(x), x  # residual: the residual x = r - r_hat itself


def _smooth_l1_bwd(x, delta):
    """Eq 56: ``L_r'(x) = x`` for ``|x| < 1`` and ``sign(x)`` otherwise, i.e.
    ``clip(x, −1, 1)`` (continuous at ``|x| = 1``, where both branches give ±1), so
    ``∂L/∂x = δ clip(x, −1, 1)``."""
    return (delta * jnp.clip(x, -1, 1),)


_smooth_l1.defvjp(_smooth_l1_fwd, _smooth_l1_bwd)


def smooth_l1(x):
    """Eq 56, elementwise: ``0.5 x²`` if ``|x| < 1`` else ``|x| − 0.5``.  x: any shape, e.g.
    (R, A, 4) offsets ``r_a − r̂_a`` -> same shape.  Backward: ``clip(x, −1, 1)``."""
    return _smooth_l1(x)


# ---------------------------------------------------------- 2-class softmax cross-entropy
@jax.custom_vjp
def _two_class_softmax_ce(logits, p):
    d = logits[..., 1] - logits[..., 0]
    return _softplus(d) - p * d


def _two_class_softmax_ce_fwd(logits, p):
    d = logits[..., 1] - logits[..., 0]  # residuals: the logit difference and the target
    return _softplus(d) - p * d, (d, p)


def _two_class_softmax_ce_bwd(res, delta):
    """Eq 57 summed over the two classes, ``y = (1 − p, p)``, ``p̂ = softmax(z)`` (eq 51):
    ``L_c = −(1 − p) log p̂_0 − p log p̂_1``.  With two classes ``p̂_1 = σ(z_1 − z_0) = σ(d)``,
    so ``L_c = softplus(d) − p d`` and

        ∂L_c/∂z_1 = σ(d) − p = p̂_1 − p,   ∂L_c/∂z_0 = p − p̂_1 = p̂_0 − (1 − p),
        ∂L_c/∂p  = −d = log p̂_0 − log p̂_1,

    the familiar ``ŷ − y`` of the softmax cross-entropy (section "Losses" of the derivations),
    here per anchor and without the batch mean.  Each is multiplied by the anchor's incoming
    ``δ``."""
    d, p = res
    g = delta * (lax.logistic(d) - p)
    return jnp.stack([-g, g], axis=-1), -delta * d


_two_class_softmax_ce.defvjp(_two_class_softmax_ce_fwd, _two_class_softmax_ce_bwd)


def two_class_softmax_cross_entropy(logits, p):
    """Eq 57 with C = 2 (FaceNet v1.0): ``−(1 − p) log p̂_0 − p log p̂_1``, ``p̂ = softmax``.

    logits: (..., 2), class 0 = background, class 1 = face, e.g. (R, A, 2); p: (...), e.g.
    (R, A), the target face probability -> (...) per-anchor losses.  Equals
    ``sigmoid_binary_cross_entropy(logits[..., 1] − logits[..., 0], p)``.
    """
    _check_two_class_args(logits.shape, p.shape)
    return _two_class_softmax_ce(logits, p)


# ------------------------------------------------------------- binary cross-entropy
@jax.custom_vjp
def _sigmoid_bce(logits, p):
    return _softplus(logits) - p * logits


def _sigmoid_bce_fwd(logits, p):
    return _sigmoid_bce(logits, p), (logits, p)


def _sigmoid_bce_bwd(res, delta):
    """Eq 59 with ``p̂ = σ(z)`` (eq 6): ``−log σ(z) = softplus(−z)``, ``−log(1 − σ(z)) =
    softplus(z)``, so ``L_c = p softplus(−z) + (1 − p) softplus(z) = softplus(z) − p z`` and

        ∂L_c/∂z = σ(z) − p = p̂ − p,   ∂L_c/∂p = −z.

    (Eq 59's ``∂L_c/∂p̂ = (p̂ − p)/(p̂(1 − p̂))`` times eq 6's ``σ' = p̂(1 − p̂)``: the division
    cancels, which is why the fused rule is finite where ``p̂`` rounds to 0 or 1.)"""
    z, p = res
    return delta * (lax.logistic(z) - p), -delta * z


_sigmoid_bce.defvjp(_sigmoid_bce_fwd, _sigmoid_bce_bwd)


def sigmoid_binary_cross_entropy(logits, p):
    """Eq 59 on logits (FaceNet v1.1+): ``−p log σ(z) − (1 − p) log(1 − σ(z))``, computed as
    ``softplus(z) − p z``.  logits, p: same shape, e.g. (R, A) -> that shape.
    Backward: ``σ(z) − p``."""
    check_same_shape("sigmoid_binary_cross_entropy", ("logits", "p"), logits.shape, p.shape)
    return _sigmoid_bce(logits, p)


# ---------------------------------------------------------------------- focal loss
def _focal_parts(z, gamma):
    """``softplus(±z)`` and the modulating factors ``(1 − p̂)^γ = e^{−γ softplus(z)}``,
    ``p̂^γ = e^{−γ softplus(−z)}`` (finite for any z; ``x^0 = 1`` even where ``p̂`` rounds to 0)."""
    sp_pos, sp_neg = _softplus(z), _softplus(-z)  # −log(1 − p̂), −log p̂
    return sp_pos, sp_neg, jnp.exp(-gamma * sp_pos), jnp.exp(-gamma * sp_neg)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _sigmoid_focal(logits, p, gamma):
    sp_pos, sp_neg, q_g, ph_g = _focal_parts(logits, gamma)
    return p * q_g * sp_neg + (1 - p) * ph_g * sp_pos


def _sigmoid_focal_fwd(logits, p, gamma):
    return _sigmoid_focal(logits, p, gamma), (logits, p)


def _sigmoid_focal_bwd(gamma, res, delta):
    """Eq 61 (modulating factor on the prediction) with ``p̂ = σ(z)``, ``q = 1 − p̂``:
    ``L_f = p q^γ s_− + (1 − p) p̂^γ s_+`` where ``s_− = softplus(−z) = −log p̂`` and
    ``s_+ = softplus(z) = −log q``.  With ``∂p̂/∂z = p̂ q``, ``∂q/∂z = −p̂ q``,
    ``∂s_−/∂z = −q`` and ``∂s_+/∂z = p̂``:

        ∂(q^γ s_−)/∂z  = −γ q^{γ−1} p̂ q s_− − q^γ q = −q^γ (γ p̂ s_− + q),
        ∂(p̂^γ s_+)/∂z = γ p̂^{γ−1} p̂ q s_+ + p̂^γ p̂ =  p̂^γ (γ q s_+ + p̂),

    so ``∂L_f/∂z = −p q^γ (γ p̂ s_− + q) + (1 − p) p̂^γ (γ q s_+ + p̂)`` and
    ``∂L_f/∂p = q^γ s_− − p̂^γ s_+``.  No ``γ − 1`` power survives, so γ = 0 is fine, and
    there it reduces to BCE's ``p̂ − p`` (``−p q + (1 − p) p̂``)."""
    z, p = res
    sp_pos, sp_neg, q_g, ph_g = _focal_parts(z, gamma)
    ph, q = lax.logistic(z), lax.logistic(-z)
    dz = -p * q_g * (gamma * ph * sp_neg + q) + (1 - p) * ph_g * (gamma * q * sp_pos + ph)
    return delta * dz, delta * (q_g * sp_neg - ph_g * sp_pos)


_sigmoid_focal.defvjp(_sigmoid_focal_fwd, _sigmoid_focal_bwd)


def sigmoid_focal_loss(logits, p, gamma=3.0):
    """Eq 61 on logits (FaceNet v1.2, v1.4, v1.6; γ = 3 in the paper, 2 in RetinaNet):
    ``−p (1 − p̂)^γ log p̂ − (1 − p) p̂^γ log(1 − p̂)``, ``p̂ = σ(z)``.

    logits, p: same shape, e.g. (R, A) -> that shape; gamma: float >= 0 (static).  γ = 0 is
    ``sigmoid_binary_cross_entropy``.  No α-balancing (the paper uses none).
    """
    check_same_shape("sigmoid_focal_loss", ("logits", "p"), logits.shape, p.shape)
    return _sigmoid_focal(logits, p, _check_gamma(gamma))

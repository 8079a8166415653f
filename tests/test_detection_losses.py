"""The detector's losses (§5.3, eqs 56-62) and OHEM (§5.3.4): hand-worked values, stability for
saturated logits, custom VJP vs autodiff vs finite differences, the normalisations on a tiny
hand-made anchor set, OHEM masks with ties and k > available, the printed eq 61 erratum.
Float64 (module fixture) except where float32 is named."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import layers as L
from jaxnets.layers import detection_totals

# jitted once per static configuration: far fewer compilations than op-by-op dispatch
detection_loss = jax.jit(detection_totals.detection_loss, static_argnames=("normalize",
                                                                          "num_levels"))
ohem_mask = jax.jit(detection_totals.ohem_mask, static_argnames=("k", "per"))

C = L.get_ops("custom")
LOSSES = ("smooth_l1", "two_class_softmax_cross_entropy", "sigmoid_binary_cross_entropy",
          "sigmoid_focal_loss")

pytestmark = pytest.mark.usefixtures("float64")


@functools.lru_cache(maxsize=None)
def _value_and_grads(grad: str, name: str, **static):
    """Jitted ``args -> (per-anchor losses, gradients of their sum w.r.t. every arg)``."""
    f = functools.partial(getattr(L.get_ops(grad), name), **static)

    def run(*args):
        return f(*args), jax.grad(lambda *a: jnp.sum(f(*a)), argnums=tuple(range(len(args))))(*args)

    return jax.jit(run)


def _vg(grad, name, *args, **static):
    return _value_and_grads(grad, name, **static)(*args)


# ------------------------------------------------------------------ hand-worked values
def test_smooth_l1_by_hand():
    """Eq 56 at |x| = 0, 0.5, 1, 2: quadratic inside, linear outside, C1 at |x| = 1."""
    x = jnp.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0])
    for grad in ("custom", "autodiff"):
        y, (g,) = _vg(grad, "smooth_l1", x)
        np.testing.assert_allclose(y, [0, 0.125, 0.125, 0.5, 0.5, 1.5, 1.5], rtol=0, atol=1e-15)
        np.testing.assert_allclose(g, [0, 0.5, -0.5, 1, -1, 1, -1], rtol=0, atol=1e-15)


def test_bce_and_two_class_softmax_by_hand():
    """p̂ = σ(log 3) = 3/4: L = −log 3/4 for p = 1, −log 1/4 for p = 0; ∂L/∂z = p̂ − p.
    Two-class softmax with logits (0, log 3) is the same p̂ = 3/4."""
    z, p = jnp.array([np.log(3.0)] * 2), jnp.array([1.0, 0.0])
    y, (gz, gp) = _vg("custom", "sigmoid_binary_cross_entropy", z, p)
    np.testing.assert_allclose(y, [-np.log(0.75), -np.log(0.25)], rtol=1e-14)
    np.testing.assert_allclose(gz, [-0.25, 0.75], rtol=1e-14)
    np.testing.assert_allclose(gp, -z, rtol=1e-14)
    logits = jnp.stack([jnp.zeros(2), z], axis=-1)  # (2, 2): background 0, face log 3
    y2, (g2, gp2) = _vg("custom", "two_class_softmax_cross_entropy", logits, p)
    np.testing.assert_allclose(y2, y, rtol=1e-14)
    np.testing.assert_allclose(g2, np.stack([-gz, gz], axis=-1), rtol=1e-14)
    np.testing.assert_allclose(gp2, gp, rtol=1e-14)


def test_focal_by_hand_at_zero_logit():
    """z = 0: p̂ = q = 1/2.  p = 1, γ = 2: L = (1/2)² log 2; ∂L/∂z = −q^γ (γ p̂ log 2 + q)."""
    z, p = jnp.array([0.0]), jnp.array([1.0])
    for grad in ("custom", "autodiff"):
        y, (gz, gp) = _vg(grad, "sigmoid_focal_loss", z, p, gamma=2.0)
        np.testing.assert_allclose(y, [0.25 * np.log(2)], rtol=1e-14)
        np.testing.assert_allclose(gz, [-0.25 * (np.log(2) + 0.5)], rtol=1e-14)
        np.testing.assert_allclose(gp, [0.25 * np.log(2) - 0.25 * np.log(2)], atol=1e-15)


def test_focal_with_gamma0_is_bce_and_softmax_ce_is_bce_on_the_difference():
    rng = np.random.default_rng(0)
    z, p = jnp.asarray(3 * rng.normal(size=(3, 7))), jnp.asarray(rng.uniform(size=(3, 7)))
    bce, gb = _vg("custom", "sigmoid_binary_cross_entropy", z, p)
    foc, gf = _vg("custom", "sigmoid_focal_loss", z, p, gamma=0.0)
    np.testing.assert_allclose(foc, bce, rtol=1e-13)
    for a, b in zip(gf, gb):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    logits = jnp.asarray(rng.normal(size=(3, 7, 2)))
    sm, (gl, _) = _vg("custom", "two_class_softmax_cross_entropy", logits, p)
    d = logits[..., 1] - logits[..., 0]
    bd, (gd, _) = _vg("custom", "sigmoid_binary_cross_entropy", d, p)
    np.testing.assert_allclose(sm, bd, rtol=1e-13)
    np.testing.assert_allclose(gl, np.stack([-gd, gd], axis=-1), rtol=1e-13)
    # focal down-weights easy examples: for γ > 0 it is below BCE wherever 0 < p̂ < 1
    foc3, _ = _vg("custom", "sigmoid_focal_loss", z, jnp.round(p), gamma=3.0)
    bce_hard, _ = _vg("custom", "sigmoid_binary_cross_entropy", z, jnp.round(p))
    assert np.all(np.asarray(foc3) < np.asarray(bce_hard))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_saturated_logits_stay_finite(dtype):
    """Logits ±100: σ rounds to 0 or 1, yet losses and gradients are exact and finite."""
    z = jnp.array([100.0, 100.0, -100.0, -100.0], dtype)
    p = jnp.array([1.0, 0.0, 1.0, 0.0], dtype)
    y, (gz, gp) = _vg("custom", "sigmoid_binary_cross_entropy", z, p)
    np.testing.assert_allclose(y, [0.0, 100.0, 100.0, 0.0], atol=1e-30)
    np.testing.assert_allclose(gz, [0.0, 1.0, -1.0, 0.0], atol=1e-30)
    assert y.dtype == gz.dtype == gp.dtype == dtype
    f, (fz, fp) = _vg("custom", "sigmoid_focal_loss", z, p, gamma=3.0)
    assert np.isfinite(f).all() and np.isfinite(fz).all() and np.isfinite(fp).all()
    np.testing.assert_allclose(f, [0.0, 100.0, 100.0, 0.0], atol=1e-30)  # p̂^3 = 1 when wrong
    logits = jnp.stack([jnp.zeros_like(z), z], axis=-1)
    s = C.two_class_softmax_cross_entropy(logits, p)
    np.testing.assert_allclose(s, y, atol=1e-30)


# -------------------------------------------- custom vs autodiff vs finite differences
@pytest.mark.parametrize("name,static", [("smooth_l1", {}),
                                         ("two_class_softmax_cross_entropy", {}),
                                         ("sigmoid_binary_cross_entropy", {}),
                                         ("sigmoid_focal_loss", {"gamma": 3.0})])
def test_custom_vs_autodiff_vs_finite_differences(name, static):
    """Logits up to |z| ~ 12 (well into saturation) and soft targets; FD of the summed loss
    along a random direction (central, step 1e-6)."""
    rng = np.random.default_rng(1)
    shape = (2, 6, 2) if name == "two_class_softmax_cross_entropy" else (2, 6)
    args = [jnp.asarray(4 * rng.normal(size=shape))]
    if name != "smooth_l1":
        args.append(jnp.asarray(rng.uniform(size=(2, 6))))
    yc, gc = _vg("custom", name, *args, **static)
    ya, ga = _vg("autodiff", name, *args, **static)
    np.testing.assert_allclose(yc, ya, rtol=1e-12, atol=1e-14)
    for a, b in zip(gc, ga):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)
    v = [jnp.asarray(rng.normal(size=a.shape)) for a in args]
    h = 1e-6

    def f(*a):  # the summed custom loss, through the function compiled above
        return jnp.sum(_vg("custom", name, *a, **static)[0])

    fd = (f(*[a + h * d for a, d in zip(args, v)])
          - f(*[a - h * d for a, d in zip(args, v)])) / (2 * h)
    an = sum(jnp.vdot(g, d) for g, d in zip(gc, v))
    np.testing.assert_allclose(fd, an, rtol=1e-7)


def test_printed_eq61_vanishes_for_hard_labels():
    """Eq 61 as printed, ``−p(1 − p)^γ log p̂ − (1 − p) p^γ log(1 − p̂)``, modulates by the
    *target*: for p ∈ {0, 1} and γ > 0 both terms are 0 whatever the prediction, so a detector
    would learn nothing.  RetinaNet's ``(1 − p̂)^γ``, ``p̂^γ`` (ours) is positive."""
    p_hat = jnp.array([0.01, 0.5, 0.99, 0.01, 0.5, 0.99])
    p = jnp.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    gamma = 3.0
    printed = -p * (1 - p) ** gamma * jnp.log(p_hat) - (1 - p) * p ** gamma * jnp.log1p(-p_hat)
    np.testing.assert_array_equal(printed, 0.0)
    ours = C.sigmoid_focal_loss(jnp.log(p_hat) - jnp.log1p(-p_hat), p, gamma)
    assert np.all(np.asarray(ours) > 0)


# ------------------------------------------------------------- totals (eqs 58, 60, 62)
# Two images, three anchors each; anchors 0, 1 on level 0 and anchor 2 on level 1.
# NumPy (float64) at import time: the float64 fixture is not active yet.
CLS = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
REG = np.array([[[0.5, 0.5, 0, 0], [1, 1, 1, 1], [3, 0, 0, 0]],
                [[7, 0, 0, 0], [0, 0, 0, 0], [2, 2, 2, 2]]])  # per anchor: 1, 4, 3 / 7, 0, 8
POS = np.array([[True, False, True], [False, False, True]])
VALID = np.array([[True, True, True], [True, False, True]])  # anchor (1, 1) ignored
LEVEL = np.array([0, 0, 1])


def test_totals_by_hand():
    cls_valid = 1 + 2 + 4 + 8 + 32  # 47 over the 5 anchors of N
    reg_pos = 1 + 3 + 8  # 12 over the 3 positives
    t = detection_loss(CLS, REG, POS, VALID, normalize="all")  # eq 58
    np.testing.assert_allclose([t.classification, t.regression, t.total],
                               [47 / 5, 12 / 3, 47 / 5 + 4])
    t = detection_loss(CLS, REG, POS, VALID, normalize="pos")  # eq 60
    np.testing.assert_allclose([t.classification, t.regression], [47 / 3, 4.0])
    # eq 62: level 0 has anchors 0, 1 (N^0: cls 1 + 2 + 8 = 11; N_pos^0: one positive, reg 1);
    # level 1 has anchor 2 (cls 4 + 32 = 36; two positives, reg 3 + 8 = 11)
    t = detection_loss(CLS, REG, POS, VALID, normalize="level", level=LEVEL, num_levels=2)
    np.testing.assert_allclose([t.classification, t.regression], [11 / 1 + 36 / 2, 1 + 11 / 2])
    # a third, empty level changes nothing; reg_loss per anchor (R, A) equals the (R, A, 4) sum
    t3 = detection_loss(CLS, REG.sum(-1), POS, VALID, normalize="level", level=LEVEL,
                        num_levels=3)
    np.testing.assert_allclose(t3.total, t.total)
    # valid=None: every anchor counts
    t = detection_loss(CLS, REG, POS, normalize="all")
    np.testing.assert_allclose(t.classification, 63 / 6)


def test_totals_without_positives_are_guarded():
    """|N_pos| = 0 (an image of background): max(1, ·) keeps the loss finite, regression 0."""
    none = np.zeros_like(POS)
    for norm, want in [("all", 47 / 5), ("pos", 47.0)]:
        t = detection_loss(CLS, REG, none, VALID, normalize=norm)
        np.testing.assert_allclose([t.classification, t.regression], [want, 0.0])
    t = detection_loss(CLS, REG, none, VALID, normalize="level", level=LEVEL, num_levels=2)
    np.testing.assert_allclose([t.classification, t.regression], [47.0, 0.0])
    g = jax.grad(lambda c: detection_loss(c, REG, none, VALID, "pos").total)(CLS)
    assert np.isfinite(g).all()


def test_totals_gradient_is_the_mask_over_the_count():
    """∂L/∂l_a = [a ∈ N]/|N_pos| (eq 60): the weights, exactly; ignored anchors with an inf
    loss stay out of both the value and the gradient."""
    cls = jnp.asarray(CLS).at[1, 1].set(jnp.inf)
    gc, gr = jax.grad(lambda c, r: detection_loss(c, r, POS, VALID, "pos").total,
                      argnums=(0, 1))(cls, REG)
    np.testing.assert_array_equal(gc, VALID / 3.0)
    np.testing.assert_array_equal(gr, jnp.broadcast_to(POS[..., None] / 3.0, REG.shape))
    assert np.isfinite(detection_loss(cls, REG, POS, VALID, "pos").total)


# ----------------------------------------------------------------------------- OHEM
def test_ohem_per_image_and_per_batch_by_hand():
    loss = jnp.array([[0.5, 3.0, 3.0, 1.0, 9.0],
                      [2.0, 2.0, 2.0, 0.1, 0.2]])
    keep = jnp.array([[True, True, True, True, False],  # the 9.0 was suppressed by NMS
                      [True, False, True, True, False]])
    m = ohem_mask(loss, keep, k=2, per="image")
    # image 0: 3.0, 3.0 (the suppressed 9.0 never counts); image 1: a tie of the two kept 2.0s
    np.testing.assert_array_equal(m, [[0, 1, 1, 0, 0], [1, 0, 1, 0, 0]])
    m = ohem_mask(loss, keep, k=1, per="image")  # ties go to the lower index
    np.testing.assert_array_equal(m, [[0, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    m = ohem_mask(loss, keep, k=3, per="batch")  # over both images: 3.0, 3.0, then the first 2.0
    np.testing.assert_array_equal(m, [[0, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    # k > available: every kept anchor, nothing else (image 1 has 3 kept)
    m = ohem_mask(loss, keep, k=128, per="image")
    np.testing.assert_array_equal(m, keep)
    assert int(ohem_mask(loss, keep, k=128, per="batch").sum()) == int(keep.sum())
    assert int(ohem_mask(loss, jnp.zeros_like(keep), k=4).sum()) == 0
    # jittable, and no gradient flows through the selection
    mj = ohem_mask(loss, keep, k=2, per="batch")
    np.testing.assert_array_equal(mj, [[0, 1, 1, 0, 0], [0] * 5])
    g = jax.jit(jax.grad(lambda c: detection_totals.detection_loss(
        c, jnp.zeros((2, 5)), jnp.zeros((2, 5), bool), detection_totals.ohem_mask(c, keep, k=2),
        "all").total))(loss)
    np.testing.assert_allclose(g, ohem_mask(loss, keep, k=2) / 4.0)


# ---------------------------------------------------------------------- argument errors
@pytest.mark.parametrize("call,message", [
    (lambda ops: ops.two_class_softmax_cross_entropy(jnp.ones((2, 3)), jnp.ones(2)),
     "two_class_softmax_cross_entropy: logits must have shape"),
    (lambda ops: ops.two_class_softmax_cross_entropy(jnp.ones((2, 2)), jnp.ones(3)),
     "two_class_softmax_cross_entropy: p must have shape"),
    (lambda ops: ops.sigmoid_binary_cross_entropy(jnp.ones(2), jnp.ones(3)), "logits and p"),
    (lambda ops: ops.sigmoid_focal_loss(jnp.ones(2), jnp.ones(2), -1.0), "gamma must be"),
    (lambda ops: ops.sigmoid_focal_loss(jnp.ones(2), jnp.ones(3)), "logits and p"),
])
@pytest.mark.parametrize("grad", ["custom", "autodiff"])
def test_bad_loss_arguments(grad, call, message):
    with pytest.raises(ValueError, match=message):
        call(L.get_ops(grad))


@pytest.mark.parametrize("kwargs,message", [
    (dict(normalize="mean"), "normalize must be one of"),
    (dict(normalize="level", num_levels=2), "level must have shape"),
    (dict(normalize="level", level=LEVEL, num_levels=0), "num_levels must be an int"),
    (dict(pos=POS[:, :2]), "pos must have shape"),
    (dict(reg_loss=REG[:, :2]), "reg_loss must have shape"),
])
def test_bad_total_arguments(kwargs, message):
    args = dict(cls_loss=CLS, reg_loss=REG, pos=POS) | kwargs
    with pytest.raises(ValueError, match=f"detection_loss: {message}"):
        detection_loss(**args)


def test_bad_ohem_arguments():
    keep = jnp.ones((2, 3), bool)
    for kw, msg in [(dict(k=0), "k must be an int"), (dict(per="all"), "per must be one of")]:
        with pytest.raises(ValueError, match=f"ohem_mask: {msg}"):
            ohem_mask(CLS, keep, **kw)
    with pytest.raises(ValueError, match="ohem_mask: keep must have shape"):
        ohem_mask(CLS, keep[:, :2])

"""Section 6 layers: causal_conv1d (eqs 63-64) against its reference and the original TCN's
pad-both-and-chop scheme, causality, shapes, a hand-worked case; weight_norm and dropout
custom VJPs against their references; argument errors.  Float64 throughout (module fixture).

The finite-difference checks of these layers are rows of ``jaxnets gradcheck`` (and so of
tests/test_layers.py); here the sweep is the three-way identity the paper claims in §6.2.1.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import gradcheck
from jaxnets import layers as L
from jaxnets.layers import reference as R

C = L.get_ops("custom")
A = L.get_ops("autodiff")


pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py: x64 for this module only


# ------------------------------------------------- custom == reference == pad-and-chop
# (R, C, T, C', k, d, s); "reach" = d(k - 1), the causal left padding
SWEEP = [
    (1, 1, 7, 1, 1, 1, 1),  # k = 1: no padding at all
    (1, 5, 7, 2, 2, 8, 2),  # reach 8 > T = 7
    (1, 2, 9, 3, 3, 5, 2),  # reach 10 > T = 9, (T - 1) % s == 0
    (2, 4, 13, 2, 4, 3, 1),
    (1, 1, 8, 2, 4, 1, 2),  # even T, s = 2: no window ends on the last input
    (2, 3, 7, 3, 5, 4, 1),  # reach 16 > T
    (1, 2, 15, 1, 6, 2, 2),
    (2, 6, 5, 5, 6, 6, 1),  # reach 30 >> T: only the last tap ever sees data
    (1, 3, 3, 2, 2, 7, 2),  # T = 3
    (4, 2, 31, 3, 3, 8, 1),  # T > reach: the whole kernel in use at late times
]


@functools.lru_cache(maxsize=None)
def _three_way(dilation, stride):
    """Jitted (outputs, VJPs) of the custom op, the reference and the chop version; one
    compilation per (d, s, shapes), shared by the tests below."""

    def run(x, w, b, cot):
        res = []
        for fn in (C.causal_conv1d, A.causal_conv1d, R.causal_conv1d_chop):
            y, pullback = jax.vjp(lambda x, w, b: fn(x, w, b, dilation, stride), x, w, b)
            res.append((y, pullback(cot)))
        return res

    return jax.jit(run)


def test_sweep_covers_the_awkward_cases():
    assert {k for *_, k, _, _ in SWEEP} == {1, 2, 3, 4, 5, 6}
    assert {d for *_, d, _ in SWEEP} == set(range(1, 9))
    assert {s for *_, s in SWEEP} == {1, 2}
    assert {r for r, *_ in SWEEP} >= {1, 2} and {c > 1 for _, c, *_ in SWEEP} == {True, False}
    assert any(t % 2 for _, _, t, *_ in SWEEP)
    assert any(t < d * (k - 1) for _, _, t, _, k, d, _ in SWEEP)


def test_gradcheck_rows_sweep_the_awkward_cases():
    """The `jaxnets gradcheck` rows for section 6 (finite differences live there)."""
    conv = [(c.args[0][0], c.args[1][0], dict(c.static)) for c in gradcheck.CASES
            if c.layer == "causal_conv1d"]
    assert {w[2] for _, w, _ in conv} == {1, 2, 3, 4, 5, 6}
    assert {st["dilation"] for *_, st in conv} == set(range(1, 9))
    assert {st["stride"] for *_, st in conv} == {1, 2}
    assert {x[0] == 1 for x, _, _ in conv} == {True, False}
    assert {x[1] == 1 for x, _, _ in conv} == {True, False}
    assert any(x[2] % 2 for x, _, _ in conv)
    assert any(st["dilation"] * (w[2] - 1) >= x[2] for x, w, st in conv)
    assert sum(c.layer == "weight_norm" for c in gradcheck.CASES) >= 3
    drop = [dict(c.static) for c in gradcheck.CASES if c.layer == "dropout"]
    assert any(d["deterministic"] for d in drop) and any(d["rate"] == 0.0 for d in drop)
    assert any(d["rate"] > 0.0 and not d["deterministic"] for d in drop)


@pytest.mark.parametrize("case", SWEEP, ids=[f"R{c[0]}C{c[1]}T{c[2]}C'{c[3]}k{c[4]}d{c[5]}s{c[6]}"
                                             for c in SWEEP])
def test_causal_conv1d_custom_reference_and_chop_agree(case):
    r, c, t, co, k, d, s = case
    rng = np.random.default_rng(list(case))
    x, w, b = rng.normal(size=(r, c, t)), rng.normal(size=(co, c, k)), rng.normal(size=co)
    shape = L.causal_conv1d_output_shape(x.shape, w.shape, d, s)
    assert shape == (r, co, (t - 1) // s + 1)  # eq 64 with p_left = d(k-1), p_right = 0
    if s == 1:
        assert shape[2] == t
    cot = rng.normal(size=shape)
    (yc, gc), (yr, gr), (yh, gh) = _three_way(d, s)(x, w, b, cot)
    assert yc.shape == yr.shape == yh.shape == shape
    # identical up to float64 summation order (XLA may pick a different loop order for a
    # differently padded input, and the backward passes are different, equivalent convs)
    for name, a, b_, h in zip(("y", "dL/dx", "dL/dw", "dL/db"), (yc,) + gc, (yr,) + gr,
                              (yh,) + gh):
        np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12, err_msg=f"{name} vs reference")
        np.testing.assert_allclose(a, h, rtol=1e-12, atol=1e-12, err_msg=f"{name} vs chop")


def test_causal_conv1d_by_hand():
    """x = [1, 2, 3, 4, 5], w = [1, 10, 100], d = 2: ``y_t = 100 x_t + 10 x_{t-2} + x_{t-4}``
    (zeros before t = 0); L = sum(y) so dL/dx_t = sum of the taps that reach an output."""
    x = jnp.arange(1.0, 6.0).reshape(1, 1, 5)
    w = jnp.array([1.0, 10.0, 100.0]).reshape(1, 1, 3)
    b = jnp.array([0.5])
    y, pullback = jax.vjp(lambda x, w, b: C.causal_conv1d(x, w, b, 2, 1), x, w, b)
    np.testing.assert_array_equal(y[0, 0], [100.5, 200.5, 310.5, 420.5, 531.5])
    dx, dw, db = pullback(jnp.ones_like(y))
    # x_t feeds y_t (100), y_{t+2} (10), y_{t+4} (1) where those exist (t + 2j <= 4)
    np.testing.assert_array_equal(dx[0, 0], [111.0, 110.0, 110.0, 100.0, 100.0])
    # dW_i = sum_t' Xp_{t' + 2i}: tap 0 sees x_{t-4} (x_0 only), tap 1 x_{t-2}, tap 2 x_t
    np.testing.assert_array_equal(dw[0, 0], [1.0, 1.0 + 2 + 3, 15.0])
    np.testing.assert_array_equal(db, [5.0])
    # stride 2: outputs at t = 0, 2, 4 only (eq 64: T' = floor(4 / 2) + 1 = 3)
    np.testing.assert_array_equal(C.causal_conv1d(x, w, b, 2, 2)[0, 0], [100.5, 310.5, 531.5])


# ------------------------------------------------------------------------ causality
@pytest.mark.parametrize("k,d,s", [(3, 2, 1), (2, 3, 2)])
def test_causal_conv1d_output_never_sees_the_future(k, d, s):
    """d y_{t'} / d x_t is exactly 0 for every t > s t' (no leak from the future), and nonzero
    exactly at the taps ``t = s t' - d j``, j = 0..k-1, t >= 0 (eq 63, corrected index)."""
    r, c, t, co = 2, 2, 11, 3
    rng = np.random.default_rng(k * 100 + d * 10 + s)
    x, w, b = rng.normal(size=(r, c, t)), rng.normal(size=(co, c, k)), rng.normal(size=co)
    jac = jax.jit(jax.jacrev(lambda x: C.causal_conv1d(x, w, b, d, s)))(x)
    jac = np.asarray(jac)  # (R, C', T', R, C, T)
    t_out = jac.shape[2]
    for tp in range(t_out):
        block = jac[:, :, tp]  # (R, C', R, C, T)
        assert np.all(block[..., s * tp + 1:] == 0.0), f"output {tp} sees inputs after {s * tp}"
        taps = {s * tp - d * j for j in range(k)} - {v for v in range(-d * k, 0)}
        for u in range(s * tp + 1):
            seen = np.any(block[..., u] != 0.0)
            assert seen == (u in taps), (tp, u, sorted(taps))
    # batches never mix
    for r1 in range(r):
        for r2 in range(r):
            if r1 != r2:
                assert np.all(jac[r1, :, :, r2] == 0.0)


def test_custom_bwd_costs_what_autodiff_costs():
    """The hand-written backward pass is two convolutions, like autodiff's transpose; no
    extra pad, flip-through-gather or slicing of the padded input."""

    def count(fn):
        loss = lambda x, w, b: jnp.sum(fn(x, w, b, 3, 2) ** 2)
        text = str(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1, 2)))(
            jnp.ones((2, 3, 9)), jnp.ones((4, 3, 3)), jnp.ones(4)))
        return text.count("conv_general_dilated"), text.count(" pad[")

    (n_custom, pads_custom), (n_auto, _) = count(C.causal_conv1d), count(A.causal_conv1d)
    assert n_custom == n_auto == 3  # forward + delta-error + kernel gradient
    assert pads_custom == 0


# ------------------------------------------------------------- the paper's eqs 63-64
def test_printed_eq63_index_reads_the_future_when_d_gt_1():
    """Eq 63's index ``s t' - s + d i`` (1-based t', i) over the left-padded input: fine for
    d = 1, but for d > 1 every tap sits ``d - 1`` steps late, so output t' reads input
    ``s t' + d - 1`` (0-based) -- the future.  ``s t' - s + d (i - 1) + 1`` is causal_conv1d.
    Cited by docs/derivations.md, Errata."""
    rng = np.random.default_rng(63)
    x, w, b = rng.normal(size=(2, 2, 9)), rng.normal(size=(3, 2, 3)), rng.normal(size=3)

    @functools.partial(jax.jit, static_argnums=(1, 2))
    def run(x, d, s):
        p = functools.partial(gradcheck.printed_causal_conv1d, w=w, b=b, dilation=d, stride=s)
        jac = jax.jacrev(p)(x)  # (R, C', T', R, C, T)
        return p(x), p(x, corrected=True), C.causal_conv1d(x, w, b, d, s), jac

    for d, s in [(1, 1), (1, 2), (2, 1), (3, 2)]:
        printed, corrected, ref, jac = map(np.asarray, run(x, d, s))
        np.testing.assert_allclose(corrected, ref, rtol=1e-12)
        if d == 1:
            np.testing.assert_allclose(printed, ref, rtol=1e-12)
            continue
        assert not np.allclose(printed, ref)
        for tp in range(jac.shape[2]):
            future = s * tp + d - 1  # the last tap, i = k, in 0-based input time
            if future < x.shape[2]:
                assert np.any(jac[:, :, tp, :, :, future] != 0.0), (d, s, tp)


def test_printed_eq64_output_length():
    """Eq 64 with ``p_left = d(k-1)``, ``p_right = 0``: ``T' = (T - 1)/s + 1`` -- T for s = 1,
    not an integer when s does not divide T - 1 (the floor is needed, as for eqs 20-21);
    with the TCN's ``p_left = p_right = d(k-1)`` it is ``T + d(k-1)`` for s = 1."""

    def eq64(t, k, d, s, p_left, p_right):
        return (t - d * (k - 1) + p_left + p_right - 1) / s + 1

    for t, k, d in [(9, 3, 2), (5, 6, 7), (784, 6, 34)]:
        p = d * (k - 1)
        assert eq64(t, k, d, 1, p, 0) == t
        assert eq64(t, k, d, 1, p, p) == t + p  # pad both sides, then chop p
        assert L.causal_conv1d_output_shape((1, 1, t), (1, 1, k), d, 1)[2] == t
    assert eq64(8, 3, 2, 2, 4, 0) == 4.5  # printed: not an integer
    assert L.causal_conv1d_output_shape((1, 1, 8), (1, 1, 3), 2, 2)[2] == 4  # ceil(T / s)


# --------------------------------------------------------------------------- errors
def test_causal_conv1d_argument_errors():
    x, w = jnp.ones((2, 3, 9)), jnp.ones((4, 3, 2))
    with pytest.raises(ValueError, match="dilation"):
        C.causal_conv1d(x, w, None, 0)
    with pytest.raises(ValueError, match="stride"):
        A.causal_conv1d(x, w, None, 1, 1.5)
    with pytest.raises(ValueError, match="x must have shape"):
        C.causal_conv1d(jnp.ones((3, 9)), w)
    with pytest.raises(ValueError, match="w must have shape"):
        C.causal_conv1d(x, jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="channels"):
        C.causal_conv1d(x, jnp.ones((4, 2, 2)))
    with pytest.raises(ValueError, match="b must have shape"):
        R.causal_conv1d_chop(x, w, jnp.ones(3))
    with pytest.raises(ValueError, match="dilation"):
        L.causal_conv1d_output_shape(x.shape, w.shape, dilation=-1)


# ----------------------------------------------------------------------- weight_norm
@functools.lru_cache(maxsize=None)
def _two_way(name, **static):
    def run(args, cot):
        res = []
        for ops in (C, A):
            fn = functools.partial(getattr(ops, name), **static)
            y, pullback = jax.vjp(fn, *args)
            res.append((y, pullback(cot)))
        return res

    return jax.jit(run)


@pytest.mark.parametrize("v_shape", [(4, 3, 5), (3, 2, 3, 3), (1, 1, 1)])
def test_weight_norm_matches_reference(v_shape):
    rng = np.random.default_rng(len(v_shape))
    v, g = rng.normal(size=v_shape), rng.normal(size=v_shape[0])
    cot = rng.normal(size=v_shape)
    (wc, (dvc, dgc)), (wr, (dvr, dgr)) = _two_way("weight_norm")((v, g), cot)
    np.testing.assert_array_equal(wc, wr)
    np.testing.assert_allclose(dvc, dvr, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dgc, dgr, rtol=1e-12, atol=1e-14)
    axes = tuple(range(1, len(v_shape)))
    # ||W_c'|| = |g_c'|, W parallel to V; dL/dV orthogonal to V (the direction-only rule)
    np.testing.assert_allclose(np.sqrt(np.sum(wc**2, axis=axes)), np.abs(g), rtol=1e-13)
    np.testing.assert_allclose(np.sum(dvc * v, axis=axes), 0.0, atol=1e-12)
    # scaling V leaves W unchanged
    np.testing.assert_allclose(C.weight_norm(3.7 * v, g), wc, rtol=1e-13)


def test_weight_norm_argument_errors():
    with pytest.raises(ValueError, match="g must have shape"):
        C.weight_norm(jnp.ones((4, 3, 2)), jnp.ones(3))
    with pytest.raises(ValueError, match="v must have shape"):
        A.weight_norm(jnp.ones(4), jnp.ones(4))


# --------------------------------------------------------------------------- dropout
def test_dropout_matches_reference_with_the_same_key():
    rng = np.random.default_rng(0)
    x, cot = rng.normal(size=(3, 4, 50)), rng.normal(size=(3, 4, 50))
    key = jax.random.key(42)

    @jax.jit
    def run(x, cot, key):
        res = []
        for ops in (C, A):
            y, pullback = jax.vjp(lambda x: ops.dropout(x, 0.25, key, False), x)
            res.append((y, pullback(cot)[0]))
        return res

    (yc, dc), (yr, dr) = run(x, cot, key)
    np.testing.assert_array_equal(yc, yr)
    np.testing.assert_array_equal(dc, dr)
    kept = yc != 0.0
    np.testing.assert_allclose(yc[kept], x[kept] / 0.75, rtol=1e-15)  # inverted scaling
    np.testing.assert_allclose(dc[kept], cot[kept] / 0.75, rtol=1e-15)
    assert np.all(dc[~kept] == 0.0)  # delta flows back only through kept entries
    assert abs(kept.mean() - 0.75) < 4 * np.sqrt(0.75 * 0.25 / kept.size)
    y_other, _ = run(x, cot, jax.random.key(43))[0]
    assert np.any((y_other != 0.0) != kept)  # another key, another mask


@pytest.mark.parametrize("ops", [C, A], ids=["custom", "autodiff"])
def test_dropout_identity_when_deterministic_or_rate_zero(ops):
    x = jnp.arange(6.0).reshape(1, 2, 3)
    assert ops.dropout(x, 0.5, None, True) is x
    assert ops.dropout(x, 0.0, None, False) is x
    np.testing.assert_array_equal(jax.grad(lambda x: ops.dropout(x, 0.5, None, True).sum())(x),
                                  np.ones((1, 2, 3)))


def test_dropout_argument_errors():
    x, key = jnp.ones((2, 3)), jax.random.key(0)
    for rate in (1.0, -0.1, "0.5", True):
        with pytest.raises(ValueError, match="rate"):
            C.dropout(x, rate, key, False)
    with pytest.raises(ValueError, match="key"):
        A.dropout(x, 0.5, None, False)
    with pytest.raises(ValueError, match="deterministic"):
        C.dropout(x, 0.5, key, "yes")

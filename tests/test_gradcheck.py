"""The gradcheck CLI library, and the paper's printed formulas failing where the Errata say.

Each ``test_printed_*`` test is cited by docs/derivations.md, Errata.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import gradcheck
from jaxnets import layers as L

C = L.get_ops("custom")
A = L.get_ops("autodiff")


pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py: x64 for this module only


def _rng(seed=0):
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------- the table
def test_main_full_grid_passes(capsys):
    assert gradcheck.main([]) == 0
    out = capsys.readouterr().out
    for name in L.OP_NAMES:
        assert name in out
    assert "FAIL" not in out


def test_rows_cover_every_layer():
    rows = gradcheck.run_gradcheck(["softmax", "mse"])
    assert [r.layer for r in rows] == ["softmax", "mse"]
    assert all(r.passed and r.n_cases >= 2 for r in rows)
    with pytest.raises(ValueError, match="layers"):
        gradcheck.run_gradcheck(["no_such_layer"])


def test_grid_covers_the_awkward_cases():
    conv = [dict(c.static) | {"x": c.args[0][0], "w": c.args[1][0]}
            for c in gradcheck.CASES if c.layer == "conv2d"]
    assert any(c["x"][0] == 1 for c in conv) and any(c["x"][0] > 1 for c in conv)  # batch
    assert any(c["x"][1] == 1 for c in conv) and any(c["x"][1] >= 3 for c in conv)  # channels
    assert any(c["x"][2] % 2 == 1 for c in conv)  # odd sizes
    assert {c["w"][2] for c in conv} >= {1, 2, 3, 4, 5}  # kernels 1-5
    strides = [np.broadcast_to(c["stride"], 2) for c in conv]
    assert {int(s.max()) for s in strides} >= {1, 2, 3}
    assert any(int(np.max(np.broadcast_to(c["stride"], 2))) > c["w"][2] for c in conv)
    assert any(isinstance(c["padding"], tuple) and isinstance(c["padding"][0], tuple)
               and c["padding"][0][0] != c["padding"][0][1] for c in conv)  # asymmetric
    pool = [c for c in gradcheck.CASES if c.layer == "max_pool2d"]
    assert any(not c.fd for c in pool)  # ties


def test_failures_are_reported_and_exit_1(monkeypatch, capsys):
    bad = gradcheck.Row("conv2d", 3, 1.0, 1.0, 1.0, 0.0, True, False, ("x(1, 1, 5, 5) ...",))
    monkeypatch.setattr(gradcheck, "run_gradcheck", lambda layers, seed: [bad])
    assert gradcheck.main(["--layers", "conv2d"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "x(1, 1, 5, 5)" in out


def test_a_wrong_rule_is_caught():
    """The checker is not vacuous: swap in the printed eq 52 as softmax's VJP and it fails."""
    case = gradcheck.Case("softmax", (((3, 4), "normal"),), (), True, "x(3, 4)")
    assert gradcheck.check_case(case).passed

    @jax.custom_vjp
    def broken_softmax(x):
        return A.softmax(x)

    broken_softmax.defvjp(
        lambda x: (A.softmax(x), x),
        lambda x, delta: (gradcheck.printed_softmax_bwd(x, delta),),
    )
    bad = gradcheck.check_case(case, custom_fn=broken_softmax)
    assert not bad.passed
    assert bad.rel_err > 0.1 and bad.fd_rel_err > 0.1
    assert bad.fwd_err == 0.0


# ------------------------------------------------------------- printed formulas fail
def test_printed_eq15_eq17_dense_disagree_with_autodiff():
    """Eq 15 evaluates f' at the input index i, eq 17 loses the output index j; eq 18 is
    right.  N = N' so that the printed indices can be evaluated at all."""
    rng = _rng(1)
    n = 4
    x, w, b = (jnp.asarray(rng.normal(size=s)) for s in [(3, n), (n, n), (n,)])
    delta = jnp.asarray(rng.normal(size=(3, n)))
    _, pullback = jax.vjp(lambda *a: A.sigmoid(A.dense(*a)), x, w, b)
    dx, dw, db = pullback(delta)
    pdx, pdw, pdb = gradcheck.printed_dense_bwd(x, w, b, delta, "sigmoid")
    assert np.abs(pdx - dx).max() > 1e-2  # eq 15 as printed
    assert np.abs(pdw - dw).max() > 1e-2  # eq 17 as printed
    np.testing.assert_allclose(pdb, db, rtol=1e-12)  # eq 18 is correct
    # corrected: f'(Z_rj) inside the sum, i.e. our dense bwd fed delta f'(Z)
    _, pullback_c = jax.vjp(lambda *a: C.sigmoid(C.dense(*a)), x, w, b)
    for got, want in zip(pullback_c(delta), (dx, dw, db)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_printed_eq1_weight_shape_is_rejected():
    """Eq 1's text declares W in R^{N(l+1) x N(l)}, but eqs 1 and 3 compute X W, which needs
    (N(l), N(l+1)).  Passing the declared shape with N != N' is a clear error."""
    x = jnp.ones((2, 3))
    w_declared = jnp.ones((5, 3))  # N(l+1) x N(l)
    for ops in (C, A):
        with pytest.raises(ValueError, match="w expects N=5"):
            ops.dense(x, w_declared, jnp.ones(3))
        assert ops.dense(x, w_declared.T, jnp.ones(5)).shape == (2, 5)


def test_printed_eq20_21_output_size_needs_a_floor():
    """(H - k + 2p)/s + 1 is fractional when s does not divide H - k + 2p; the real size is
    its floor (the last rows are never read)."""
    assert gradcheck.printed_conv_output_size(8, 3, 1, 2) == 4.5
    x, w = jnp.ones((1, 1, 8, 8)), jnp.ones((1, 1, 3, 3))
    assert C.conv2d(x, w, jnp.zeros(1), 2, 1).shape == (1, 1, 4, 4)
    assert L.conv_output_shape(x.shape, w.shape, 2, 1) == (1, 1, 4, 4)
    assert (7 - 2) / 2 + 1 == 3.5 and L.pool_output_shape((1, 1, 7, 7), 2, 2)[2] == 3  # eq 28


def test_printed_eq33_ties_disagree_with_autodiff():
    """Eq 33 read literally gives delta to every tied maximum; autodiff (and ours) gives it to
    the first one.  Without ties the two coincide."""
    x_tied = jnp.full((1, 2, 4, 4), 1.0)
    delta = jnp.asarray(_rng(2).normal(size=(1, 2, 2, 2)))
    _, pullback = jax.vjp(lambda a: A.max_pool2d(a, 2, 2), x_tied)
    (ad,) = pullback(delta)
    printed = gradcheck.printed_max_pool2d_bwd(x_tied, delta, 2, 2)
    assert np.abs(printed - ad).max() > 1e-3
    np.testing.assert_allclose(printed.sum(), 4 * delta.sum())  # each delta counted k*k times
    x_distinct = jnp.asarray(_rng(3).normal(size=(1, 2, 4, 4)))
    _, pullback = jax.vjp(lambda a: A.max_pool2d(a, 2, 2), x_distinct)
    np.testing.assert_allclose(
        gradcheck.printed_max_pool2d_bwd(x_distinct, delta, 2, 2), pullback(delta)[0]
    )


def test_printed_eq48_batch_norm_disagrees_with_autodiff():
    """Eq 48 as printed: (sigma^2)^{-3/2} inside a bracket already scaled by (sigma^2)^{-1/2}
    (total -2 instead of -1).  Even with eps = 0 (the paper has none) it is wrong unless
    sigma^2 = 1; with the exponent corrected it matches."""
    rng = _rng(4)
    x = jnp.asarray(rng.normal(size=(3, 2, 4, 5)) * 2.5 + 1.0)  # sigma^2 ~ 6
    gamma, beta = jnp.array([1.3, -0.7]), jnp.array([0.2, 0.1])
    delta = jnp.asarray(rng.normal(size=x.shape))
    _, pullback = jax.vjp(lambda a: A.batch_norm(a, gamma, beta, 0.0)[0], x)
    (ad,) = pullback(delta)
    printed = gradcheck.printed_batch_norm_bwd(x, gamma, delta)
    assert np.abs(printed - ad).max() / np.abs(ad).max() > 1e-2

    # the same expression with (sigma^2)^{-1} in the bracket is right (eps = 0)
    m = x.size // x.shape[1]
    mu = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    g = gamma.reshape(1, -1, 1, 1)
    corrected = g * var ** -0.5 / m * (
        m * delta - delta.sum(axis=(0, 2, 3), keepdims=True)
        - (x - mu) / var * (delta * (x - mu)).sum(axis=(0, 2, 3), keepdims=True)
    )
    np.testing.assert_allclose(corrected, ad, rtol=1e-10, atol=1e-12)
    # and ours, with eps, equals autodiff with eps
    _, pb_c = jax.vjp(lambda a: C.batch_norm(a, gamma, beta, 1e-5)[0], x)
    _, pb_a = jax.vjp(lambda a: A.batch_norm(a, gamma, beta, 1e-5)[0], x)
    np.testing.assert_allclose(pb_c(delta)[0], pb_a(delta)[0], rtol=1e-10, atol=1e-12)


def test_printed_eq52_softmax_is_identically_zero():
    """Eq 52's last line, delta_c X_c (1 - sum_c' X_c'), vanishes because softmax rows sum to
    1; the true gradient X_c (delta_c - sum_c' delta_c' X_c') does not."""
    rng = _rng(5)
    x, delta = jnp.asarray(rng.normal(size=(4, 6))), jnp.asarray(rng.normal(size=(4, 6)))
    printed = gradcheck.printed_softmax_bwd(x, delta)
    assert np.abs(printed).max() < 1e-15
    _, pullback = jax.vjp(A.softmax, x)
    (ad,) = pullback(delta)
    assert np.abs(ad).max() > 1e-2
    y = A.softmax(x)
    np.testing.assert_allclose(ad, y * (delta - (delta * y).sum(-1, keepdims=True)), rtol=1e-12)

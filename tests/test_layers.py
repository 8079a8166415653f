"""Custom VJPs of jaxnets.layers vs autodiff of the references, finite differences, hand-worked
cases, max-pool ties, output shapes and argument errors.  Float64 throughout (module fixture).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxnets import gradcheck
from jaxnets import layers as L
from jaxnets.layers import reference as R

C = L.get_ops("custom")
A = L.get_ops("autodiff")


pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py: x64 for this module only


def _vjp(f, args, cot):
    out, pullback = jax.vjp(f, *args)
    return out, pullback(cot)


# ------------------------------------------------------------------ the awkward sweep
@pytest.mark.parametrize(
    "case", gradcheck.CASES, ids=[f"{c.layer}-{c.label}" for c in gradcheck.CASES]
)
def test_custom_vjp_matches_autodiff_and_finite_differences(case):
    # Same checker (and compiled functions) as `jaxnets gradcheck`.
    res = gradcheck.check_case(case)
    assert res.shape_ok, "predicted output shape differs from the actual one"
    assert res.fwd_err <= gradcheck.TOL_FWD
    assert res.rel_err <= gradcheck.TOL_AUTODIFF, (res.abs_err, res.rel_err)
    assert res.fd_rel_err <= gradcheck.TOL_FD


# --------------------------------------------------------------- hand-worked examples
X33 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # [[1,2,3],[4,5,6],[7,8,9]]
K22 = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 1, 2, 2)  # [[1,2],[3,4]]


def test_conv_by_hand_stride1():
    """1x1x3x3 input, 2x2 kernel, L = sum(output): eq 22 forward, eq 24 delta, eq 25 dW."""
    x, w, b = jnp.asarray(X33), jnp.asarray(K22), jnp.array([0.5])
    y, (dx, dw, db) = _vjp(C.conv2d, (x, w, b), jnp.ones((1, 1, 2, 2)))
    # out[h', w'] = 1 x[h',w'] + 2 x[h',w'+1] + 3 x[h'+1,w'] + 4 x[h'+1,w'+1] + 0.5
    np.testing.assert_array_equal(y[0, 0], [[37.5, 47.5], [67.5, 77.5]])
    # dW[j, i] = sum of the 2x2 input block starting at (j, i)
    np.testing.assert_array_equal(dw[0, 0], [[12, 16], [24, 28]])
    # delta[h, w] = sum of the kernel entries that touch (h, w)
    np.testing.assert_array_equal(dx[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    np.testing.assert_array_equal(db, [4.0])


def test_conv_by_hand_stride2_padding1():
    """Same input and kernel, s = 2, p = 1: padded 5x5, H' = floor((3 + 2 - 2)/2) + 1 = 2."""
    x, w, b = jnp.asarray(X33), jnp.asarray(K22), jnp.zeros(1)
    y, (dx, dw, _) = _vjp(lambda *a: C.conv2d(*a, stride=2, padding=1), (x, w, b),
                          jnp.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(y[0, 0], [[4, 18], [36, 77]])
    # every input is read once; by kernel entry (padded row/col of x) - (window origin)
    np.testing.assert_array_equal(dx[0, 0], [[4, 3, 4], [2, 1, 2], [4, 3, 4]])
    # dW[j, i] = sum over windows of padded x at offset (j, i)
    np.testing.assert_array_equal(dw[0, 0], [[5, 10], [10, 20]])


def test_conv_by_hand_unread_rows_get_zero_delta():
    """4x4 input, 2x2 kernel, stride 3: one window; rows/cols 2-3 are never read (eqs 20-21
    would give H' = 5/3), so their delta-error is 0."""
    x = jnp.arange(16.0).reshape(1, 1, 4, 4)
    w = jnp.asarray(K22)
    y, (dx, _, _) = _vjp(lambda *a: C.conv2d(*a, stride=3), (x, w, jnp.zeros(1)),
                         jnp.ones((1, 1, 1, 1)))
    assert y.shape == (1, 1, 1, 1)
    expected = np.zeros((4, 4))
    expected[:2, :2] = K22[0, 0]
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_max_pool_by_hand_and_ties():
    """Overlapping 2x2 windows with stride 1 on a constant 3x3 input: each window's delta goes
    to its first (top-left) element, so every neuron gets at most one window's delta."""
    x = jnp.full((1, 1, 3, 3), 2.0)
    for ops in (C, A):  # the custom rule and jax.grad of lax.reduce_window agree
        y, (dx,) = _vjp(lambda a: ops.max_pool2d(a, 2, 1), (x,), jnp.ones((1, 1, 2, 2)))
        np.testing.assert_array_equal(y[0, 0], 2 * np.ones((2, 2)))
        np.testing.assert_array_equal(dx[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    # a distinct maximum, claimed by two overlapping windows: deltas are summed (eq 33)
    x = jnp.array([[0.0, 1.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 0.0]])[None, None]
    _, (dx,) = _vjp(lambda a: C.max_pool2d(a, 2, 1), (x,), jnp.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[0, 0, 0], [0, 10, 0], [0, 0, 0]])


@pytest.mark.parametrize("kernel,stride", [(2, 2), (3, 1), ((2, 3), (1, 2)), (2, 3)])
def test_max_pool_ties_match_autodiff(kernel, stride):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, size=(2, 3, 7, 8)).astype(np.float64)
    cot = rng.normal(size=L.pool_output_shape(x.shape, kernel, stride))
    vjps, _ = gradcheck.checker("max_pool2d", (("kernel", kernel), ("stride", stride)))
    _, _, (gc,), (ga,) = vjps([x], cot)
    np.testing.assert_allclose(gc, ga, rtol=1e-13, atol=1e-14)  # same receivers; sums may reorder
    # total mass is conserved: one receiver per window
    np.testing.assert_allclose(gc.sum(), cot.sum())


def test_relu_derivative_at_zero_follows_eq5():
    """Eq 5 puts x = 0 in the identity branch: ReLU'(0) = 1 (custom and reference agree)."""
    x = jnp.array([-1.0, 0.0, 2.0])
    for ops in (C, A):
        np.testing.assert_array_equal(jax.grad(lambda a: ops.relu(a).sum())(x), [0, 1, 1])


def test_dense_by_hand():
    x = jnp.array([[1.0, 2.0]])
    w = jnp.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    b = jnp.array([0.0, 1.0, 2.0])
    y, (dx, dw, db) = _vjp(C.dense, (x, w, b), jnp.array([[1.0, 1.0, 1.0]]))
    np.testing.assert_array_equal(y, [[5.0, 3.0, 1.0]])
    np.testing.assert_array_equal(dx, [[0.0, 3.0]])  # row sums of W
    np.testing.assert_array_equal(dw, [[1, 1, 1], [2, 2, 2]])  # X^T delta
    np.testing.assert_array_equal(db, [1, 1, 1])


def test_softmax_cross_entropy_gradient_is_softmax_minus_y_over_r():
    rng = np.random.default_rng(2)
    z = jnp.asarray(rng.normal(size=(4, 5)))
    y = jax.nn.one_hot(jnp.array([0, 3, 1, 4]), 5, dtype=z.dtype)
    g = jax.grad(C.softmax_cross_entropy)(z, y)
    np.testing.assert_allclose(g, (C.softmax(z) - y) / 4, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(C.softmax_cross_entropy(z, y), C.cross_entropy(C.softmax(z), y))


# --------------------------------------------------------------- numerics and stats
def test_extreme_inputs_stay_finite():
    z = jnp.array([[1000.0, 0.0, -1000.0]])
    y = jnp.array([[0.0, 0.0, 1.0]])
    assert np.isfinite(C.softmax(z)).all()
    assert np.isfinite(C.softmax_cross_entropy(z, y))
    assert np.isfinite(jax.grad(C.softmax_cross_entropy)(z, y)).all()
    assert np.isfinite(jax.grad(lambda a: C.sigmoid(a).sum())(z)).all()


def test_batch_norm_statistics_and_running_averages():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 2, 4, 5)) * 3 + 1
    g, b = jnp.array([1.5, 0.5]), jnp.array([0.1, -0.2])
    y, mean, var = C.batch_norm(jnp.asarray(x), g, b, eps=1e-5)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-13)  # eq 34
    np.testing.assert_allclose(var, x.var(axis=(0, 2, 3)), rtol=1e-13)  # eq 35, biased
    y_inf = C.batch_norm_inference(jnp.asarray(x), g, b, mean, var, eps=1e-5)
    np.testing.assert_allclose(y_inf, y, rtol=1e-12, atol=1e-12)
    rm, rv = C.update_running_stats(jnp.zeros(2), jnp.ones(2), mean, var, 0.1)  # eqs 38-39
    np.testing.assert_allclose(rm, 0.1 * mean)
    np.testing.assert_allclose(rv, 0.1 * var + 0.9)


def test_cross_entropy_is_a_batch_mean():
    p = jnp.array([[0.2, 0.8]])
    y = jnp.array([[0.0, 1.0]])
    one = C.cross_entropy(p, y)
    np.testing.assert_allclose(C.cross_entropy(jnp.tile(p, (5, 1)), jnp.tile(y, (5, 1))), one)
    np.testing.assert_allclose(one, -np.log(0.8))
    np.testing.assert_allclose(C.mse(jnp.ones((2, 3)), jnp.zeros((2, 3))), 1.0)  # eq 8


def test_float32_in_float32_out():
    rng = np.random.default_rng(4)
    x = jnp.asarray(rng.normal(size=(2, 3, 6, 6)), dtype=jnp.float32)
    w = jnp.asarray(rng.normal(size=(4, 3, 3, 3)), dtype=jnp.float32)
    b = jnp.zeros(4, jnp.float32)

    def loss(x, w, b):
        h = C.max_pool2d(C.relu(C.conv2d(x, w, b, 1, 1)), 2, 2)
        h, _, _ = C.batch_norm(h, jnp.ones(4, jnp.float32), jnp.zeros(4, jnp.float32))
        return C.mse(h, jnp.zeros_like(h))

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(x, w, b)
    assert all(g.dtype == jnp.float32 for g in grads)


def test_conv_without_bias():
    rng = np.random.default_rng(5)
    x, w = jnp.asarray(rng.normal(size=(1, 2, 5, 5))), jnp.asarray(rng.normal(size=(3, 2, 3, 3)))
    cot = jnp.asarray(rng.normal(size=(1, 3, 3, 3)))
    (yc, gc), (ya, ga) = _vjp(C.conv2d, (x, w), cot), _vjp(A.conv2d, (x, w), cot)
    np.testing.assert_allclose(yc, ya, rtol=1e-13)
    for a, b in zip(gc, ga):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------ random shapes
@st.composite
def conv_configs(draw):
    r, c, co = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    pads = ((draw(st.integers(0, 2)), draw(st.integers(0, 2))),
            (draw(st.integers(0, 2)), draw(st.integers(0, 2))))
    kh = draw(st.integers(1, min(5, h + sum(pads[0]))))
    kw = draw(st.integers(1, min(5, w + sum(pads[1]))))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return (r, c, h, w), (co, c, kh, kw), stride, pads


@settings(max_examples=8, deadline=None, derandomize=True)
@given(conv_configs())
def test_conv_random_shapes(cfg):
    x_shape, w_shape, stride, pads = cfg
    rng = np.random.default_rng(0)
    args = [rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=w_shape[:1])]
    predicted = L.conv_output_shape(x_shape, w_shape, stride, pads)
    vjps, _ = gradcheck.checker("conv2d", (("stride", stride), ("padding", pads)))
    yc, ya, gc, ga = vjps(args, rng.normal(size=predicted))
    assert yc.shape == ya.shape == predicted
    np.testing.assert_allclose(yc, ya, rtol=1e-12, atol=1e-12)
    for a, b in zip(gc, ga):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


@st.composite
def pool_configs(draw):
    r, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    k = (draw(st.integers(1, min(4, h))), draw(st.integers(1, min(4, w))))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ties = draw(st.booleans())
    return (r, c, h, w), k, s, ties


@settings(max_examples=8, deadline=None, derandomize=True)
@given(pool_configs())
def test_max_pool_random_shapes(cfg):
    x_shape, k, s, ties = cfg
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=x_shape).astype(np.float64) if ties else rng.normal(size=x_shape)
    predicted = L.pool_output_shape(x_shape, k, s)
    vjps, _ = gradcheck.checker("max_pool2d", (("kernel", k), ("stride", s)))
    yc, ya, (gc,), (ga,) = vjps([x], rng.normal(size=predicted))
    assert yc.shape == ya.shape == predicted
    np.testing.assert_array_equal(yc, ya)
    np.testing.assert_allclose(gc, ga, rtol=1e-13, atol=1e-13)


# --------------------------------------------------------------------- argument errors
_x = jnp.ones((2, 3, 5, 5))
_w = jnp.ones((2, 3, 3, 3))
BAD_CALLS = [
    (lambda ops: ops.conv2d(_x, jnp.ones((2, 4, 3, 3)), jnp.ones(2)),
     "conv2d: x has C=3 channels but w expects C=4"),
    (lambda ops: ops.conv2d(_x, _w, jnp.ones(2), padding=-1), "padding must be non-negative"),
    (lambda ops: ops.conv2d(_x, _w, jnp.ones(2), padding=((0, -1), (0, 0))),
     "padding must be non-negative"),
    (lambda ops: ops.conv2d(_x, _w, jnp.ones(2), padding=(1, 2, 3)), "padding must be"),
    (lambda ops: ops.conv2d(_x, jnp.ones((2, 3, 6, 6)), jnp.ones(2)), "bigger than the padded"),
    (lambda ops: ops.conv2d(_x, _w, jnp.ones(2), stride=0), "stride must be >= 1"),
    (lambda ops: ops.conv2d(_x, _w, jnp.ones(3)), "b must have shape"),
    (lambda ops: ops.conv2d(jnp.ones((3, 5, 5)), _w, jnp.ones(2)), "x must have shape"),
    (lambda ops: ops.max_pool2d(_x, 6), "kernel 6x6 is bigger than the input 5x5"),
    (lambda ops: ops.max_pool2d(_x, 2, (1, 0)), "stride must be >= 1"),
    (lambda ops: ops.max_pool2d(_x, 2.5), "kernel must be an int"),
    (lambda ops: ops.dense(jnp.ones((2, 3)), jnp.ones((4, 5)), jnp.ones(5)),
     "dense: x has N=3 features but w expects N=4"),
    (lambda ops: ops.batch_norm(_x, jnp.ones(4), jnp.ones(3)), "gamma must have shape"),
    (lambda ops: ops.batch_norm(jnp.ones((2, 3, 4)), jnp.ones(3), jnp.ones(3)),
     "x must have shape"),
    (lambda ops: ops.softmax_cross_entropy(jnp.ones((2, 3)), jnp.ones((2, 4))),
     "logits and y must have the same shape"),
    (lambda ops: ops.mse(jnp.ones((2, 3)), jnp.ones((3, 2))), "yhat and y"),
]


@pytest.mark.parametrize("grad", ["custom", "autodiff"])
@pytest.mark.parametrize("call,message", BAD_CALLS)
def test_bad_arguments_raise_clear_errors(grad, call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(L.get_ops(grad))


def test_errors_are_raised_while_tracing():
    with pytest.raises(ValueError, match="w expects C=4"):
        jax.jit(lambda a: C.conv2d(a, jnp.ones((2, 4, 3, 3)), jnp.ones(2))).lower(_x)


def test_shape_helpers():
    assert L.conv_output_shape((1, 1, 8, 8), (4, 1, 3, 3), 2, 1) == (1, 4, 4, 4)  # floor(7/2)+1
    assert L.conv_output_shape((2, 3, 7, 9), (1, 3, 2, 4), (1, 3), ((0, 1), (2, 0))) == (2, 1, 7, 3)
    assert L.pool_output_shape((1, 2, 7, 7), 2) == (1, 2, 3, 3)
    assert L.pool_output_shape((1, 2, 9, 8), (3, 2), (2, 3)) == (1, 2, 4, 3)


# ----------------------------------------------------------------------------- get_ops
def test_get_ops_namespaces_have_the_same_api():
    custom, autodiff = L.get_ops("custom"), L.get_ops("autodiff")
    for name in L.OP_NAMES:
        fc, fa = getattr(custom, name), getattr(autodiff, name)
        assert fc is not fa, name
        assert inspect.signature(fc) == inspect.signature(fa), name
        assert getattr(R, name) is fa
        assert getattr(L, name) is fc


def test_one_list_of_ops_custom_equals_reference_and_all_are_gradchecked():
    """OP_NAMES is the layer modules' ``__all__`` (jaxnets.layers.registry): the custom and
    autodiff namespaces hold exactly those names, every public function of ``reference`` is
    one of them (bar the pad-and-chop conv), and ``jaxnets gradcheck`` has cases for each."""
    import importlib

    from jaxnets.layers import registry

    names = set(L.OP_NAMES)
    assert len(names) == len(L.OP_NAMES)
    assert set(vars(L.get_ops("custom"))) == names
    assert set(vars(L.get_ops("autodiff"))) == names
    ref_public = {n for n, f in vars(R).items() if inspect.isfunction(f) and not n.startswith("_")
                  and f.__module__ == R.__name__}
    assert ref_public - names == {"causal_conv1d_chop"}
    assert set(R.__all__) == ref_public
    assert {c.layer for c in gradcheck.CASES} == names
    custom_public = set()
    for m in registry.OP_MODULES:
        mod = importlib.import_module(f"jaxnets.layers.{m}")
        custom_public |= {n for n, f in vars(mod).items() if callable(f) and not n.startswith("_")
                          and getattr(f, "__module__", None) == mod.__name__}
    assert custom_public == names  # no public op left out of a module's __all__


def test_get_ops_rejects_unknown_mode():
    with pytest.raises(ValueError, match="grad"):
        L.get_ops("fast")


def test_layers_do_not_import_flax():
    import pathlib

    for path in pathlib.Path(L.__file__).parent.glob("*.py"):
        assert "flax" not in path.read_text(), path.name

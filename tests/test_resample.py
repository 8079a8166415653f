"""Bilinear upsampling (jaxnets.layers.resample, §5.3.5 v2.1+): hand values, PyTorch's
``align_corners=False`` values and gradients, the VJP is the adjoint, argument errors.
Float64 (module fixture)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import layers as L

C = L.get_ops("custom")

pytestmark = pytest.mark.usefixtures("float64")


@functools.lru_cache(maxsize=None)
def _up_vjp(grad: str, factor):
    """Jitted ``(x, cot) -> (upsample_bilinear(x, factor), its VJP at cot)``, one per op set."""
    f = functools.partial(L.get_ops(grad).upsample_bilinear, factor=factor)

    def run(x, cot):
        y, pullback = jax.vjp(f, x)
        return y, pullback(cot)[0]

    return jax.jit(run)


def test_by_hand_x2_one_row():
    """Half-pixel centres: outputs sample at -1/4, 1/4, 3/4, 5/4; the ends clamp to the border."""
    x = jnp.array([[[[1.0, 5.0]]]])  # (1, 1, 1, 2)
    for grad in ("custom", "autodiff"):
        y, _ = _up_vjp(grad, 2)(x, jnp.zeros((1, 1, 2, 4)))
        assert y.shape == (1, 1, 2, 4)
        np.testing.assert_allclose(y[0, 0], [[1.0, 2.0, 4.0, 5.0]] * 2, rtol=0, atol=1e-15)
    # delta-error: interior taps 3/4 (own) and 1/4 (neighbour); the border keeps the clamped share
    _, dx = _up_vjp("custom", 2)(x, jnp.array([[[[1.0, 0, 0, 0]] * 2]]))
    np.testing.assert_allclose(dx[0, 0], [[2.0, 0.0]])  # output 0 is x[0] alone, twice (2 rows)
    _, dx = _up_vjp("custom", 2)(x, jnp.array([[[[0, 1.0, 0, 0]] * 2]]))
    np.testing.assert_allclose(dx[0, 0], [[1.5, 0.5]])


@pytest.mark.parametrize("shape,factor", [((2, 3, 5, 4), 2), ((1, 2, 3, 7), 3),
                                          ((1, 1, 1, 3), (2, 3))])
def test_matches_torch_forward_and_backward(shape, factor):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    f2 = (factor, factor) if isinstance(factor, int) else factor
    cot = rng.normal(size=shape[:2] + (shape[2] * f2[0], shape[3] * f2[1]))
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = torch.nn.functional.interpolate(xt, scale_factor=f2, mode="bilinear",
                                         align_corners=False)
    yt.backward(torch.tensor(cot))
    y, dx = _up_vjp("custom", factor)(x, cot)  # (the reference = custom: jaxnets gradcheck)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-13, atol=1e-13)


def test_vjp_is_the_adjoint():
    """<U x, y> = <x, Uᵀ y> for random x, y, and the rows of U sum to 1 (constants stay)."""
    rng = np.random.default_rng(1)
    x, y = jnp.asarray(rng.normal(size=(2, 3, 5, 6))), jnp.asarray(rng.normal(size=(2, 3, 10, 12)))
    ux, uty = _up_vjp("custom", 2)(x, y)
    np.testing.assert_allclose(jnp.vdot(ux, y), jnp.vdot(x, uty), rtol=1e-13)
    const, ut1 = _up_vjp("custom", 2)(jnp.full(x.shape, 7.0), jnp.ones(y.shape))
    np.testing.assert_allclose(const, 7.0, rtol=1e-15)
    # Uᵀ 1 = f_h f_w everywhere: the columns of each axis' U sum to f
    np.testing.assert_allclose(ut1, 4.0, rtol=1e-15)
    _, ut1 = _up_vjp("custom", (2, 3))(jnp.ones((1, 1, 1, 3)), jnp.ones((1, 1, 2, 9)))
    np.testing.assert_allclose(ut1, 6.0, rtol=1e-15)


def test_float32_jit_and_factor_one():
    x = jnp.asarray(np.random.default_rng(2).normal(size=(1, 2, 4, 4)), dtype=jnp.float32)
    g = jax.jit(jax.grad(lambda a: jnp.sum(C.upsample_bilinear(a, 2) ** 2)))(x)
    assert g.dtype == jnp.float32 and g.shape == x.shape
    np.testing.assert_array_equal(C.upsample_bilinear(x, 1), x)


@pytest.mark.parametrize("grad", ["custom", "autodiff"])
@pytest.mark.parametrize("args,message", [
    ((jnp.ones((2, 3, 4)), 2), "x must have shape"),
    ((jnp.ones((1, 1, 2, 2)), 0), "factor must be an int >= 1"),
    ((jnp.ones((1, 1, 2, 2)), 1.5), "factor must be an int >= 1"),
    ((jnp.ones((1, 1, 2, 2)), (2, 2, 2)), "factor must be an int >= 1"),
])
def test_bad_arguments(grad, args, message):
    with pytest.raises(ValueError, match=f"upsample_bilinear: {message}"):
        L.get_ops(grad).upsample_bilinear(*args)

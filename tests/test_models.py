"""Models of Tables 1-2: shapes, parameter counts, and custom-vs-autodiff whole-model gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest


from jaxnets import layers
from experiments.mnist.common import mnist_base
from jaxnets.models import MnistCNN, MnistFFN, build_model, param_report, predict, variable_shapes


def init_variables(model, seed: int = 0, batch: int = 2):
    x = jax.numpy.zeros((batch, 1, 28, 28), jax.numpy.float32)
    return jax.jit(model.init, static_argnames="train")(jax.random.PRNGKey(seed), x, train=False)


def _model_config(name, grad="custom"):
    mc = mnist_base().model
    mc.name, mc.grad = name, grad
    return mc


@pytest.mark.parametrize("name,paper", [("mnist_cnn", 153_792), ("mnist_ffn", 167_168)])
def test_weight_count_matches_paper_and_extras_are_biases_and_bn(name, paper):
    variables = variable_shapes(build_model(_model_config(name)))
    rep = param_report(name, variables["params"])
    assert rep.weights == paper  # the paper's Table 3 figure counts weights only
    if name == "mnist_cnn":
        assert rep.biases == 5 * 64 + 10 and rep.batch_norm == 2 * (1 + 5 * 64)
    else:
        assert rep.biases == 5 * 128 + 10 and rep.batch_norm == 2 * (784 + 5 * 128)
    assert rep.total == sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(variables["params"]))
    assert f"{paper:,}" in rep.describe()


def test_cnn_stage_shapes_follow_table_1():
    model = MnistCNN()
    variables = init_variables(model)
    x = jnp.zeros((3, 1, 28, 28))
    logits, feats = jax.jit(lambda v, x: model.apply(v, x, train=False, return_features=True))(variables, x)
    assert logits.shape == (3, 10)
    assert feats["stage1"].shape == (3, 64, 12, 12)
    assert feats["stage2"].shape == (3, 64, 3, 3)
    probs = jax.jit(lambda v, x: predict(model, v, x))(variables, x)
    np.testing.assert_allclose(np.asarray(probs.sum(axis=1)), 1.0, rtol=1e-6)


def test_ffn_shapes_follow_table_2():
    model = MnistFFN()
    variables = init_variables(model)
    logits, feats = model.apply(variables, jnp.zeros((2, 1, 28, 28)), train=False, return_features=True)
    assert logits.shape == (2, 10)
    assert [f.shape for f in feats.values()] == [(2, 128)] * 5


def test_build_model_rejects_unknown_names():
    with pytest.raises(ValueError, match="model.name='no_such_model'"):
        build_model(_model_config("no_such_model"))
    with pytest.raises(ValueError, match="model.grad='numeric'"):
        build_model(_model_config("mnist_cnn", grad="numeric"))


def _grads(model_cls, grad, variables, x, y):
    model = model_cls(grad=grad, **({"channels": 4} if model_cls is MnistCNN else {"hidden": 12}))
    ops = layers.get_ops(grad)

    def loss(params):
        logits, updates = model.apply(
            {"params": params, "batch_stats": variables["batch_stats"]}, x, train=True, mutable=["batch_stats"]
        )
        return ops.softmax_cross_entropy(logits, y), updates["batch_stats"]

    (value, stats), g = jax.jit(jax.value_and_grad(loss, has_aux=True))(variables["params"])
    return value, stats, g


@pytest.mark.parametrize("model_cls", [MnistCNN, MnistFFN])
def test_whole_model_gradients_custom_equal_autodiff_float64(model_cls):
    """Same parameters and batch: every parameter's gradient agrees in both grad modes."""
    with jax.enable_x64(True):
        small = model_cls(**({"channels": 4} if model_cls is MnistCNN else {"hidden": 12}))
        variables = small.init(jax.random.PRNGKey(1), jnp.zeros((2, 1, 28, 28)), train=False)
        variables = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), variables)
        x = jax.random.uniform(jax.random.PRNGKey(2), (5, 1, 28, 28), jnp.float64)
        y = jax.nn.one_hot(jnp.array([0, 3, 7, 7, 9]), 10, dtype=jnp.float64)
        lc, sc, gc = _grads(model_cls, "custom", variables, x, y)
        la, sa, ga = _grads(model_cls, "autodiff", variables, x, y)
        assert lc.dtype == jnp.float64
        np.testing.assert_allclose(lc, la, rtol=1e-12)
        flat_c = jax.tree_util.tree_leaves_with_path(gc)
        flat_a = dict(jax.tree_util.tree_leaves_with_path(ga))
        assert len(flat_c) == len(flat_a)
        for path, leaf in flat_c:
            assert float(jnp.max(jnp.abs(leaf))) > 0.0, f"zero gradient at {jax.tree_util.keystr(path)}"
            np.testing.assert_allclose(leaf, flat_a[path], rtol=1e-9, atol=1e-12, err_msg=jax.tree_util.keystr(path))
        for a, b in zip(jax.tree_util.tree_leaves(sc), jax.tree_util.tree_leaves(sa)):
            np.testing.assert_allclose(a, b, rtol=1e-6)  # running statistics are float32 state


def test_inference_uses_running_statistics():
    model = MnistFFN(hidden=8)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 1, 28, 28)), train=False)
    x = jax.random.uniform(jax.random.PRNGKey(3), (16, 1, 28, 28))
    _, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
    before = variables["batch_stats"]
    after = updates["batch_stats"]
    # eq 38 with lambda = 0.1: new mean = 0.1 * batch mean + 0.9 * 0
    first = sorted(after)[0]
    batch_mean = x.reshape(16, -1).mean(axis=0)
    np.testing.assert_allclose(after[first]["mean"], 0.1 * batch_mean, rtol=1e-5, atol=1e-7)
    out_before = model.apply(variables, x[:1], train=False)
    out_after = model.apply({"params": variables["params"], "batch_stats": after}, x[:1], train=False)
    assert not np.allclose(out_before, out_after)
    del before

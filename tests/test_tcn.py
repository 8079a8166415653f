"""TCNs of section 6: paper configurations, causality, receptive field (eqs 65-66) measured from
the Jacobian, streaming inference, custom-vs-autodiff gradients, dropout, build_model."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import layers
from jaxnets.models import build_model, predict, tcn_model_config, variable_shapes
from jaxnets.models.streaming import init_stream, stream_params, stream_sequence, stream_step
from jaxnets.models.tcn import (
    TCN,
    SequenceClassifier,
    conv_path,
    constant,
    exponential,
    linear,
    model_receptive_field,
    receptive_field,
)

BLOCKS = ("single", "double", "radical")
DILATIONS = (1, 2)
T = 40  # every small test uses x (2, 1, T) in float64: the eager ops compile once per shape
SMALL_RF = {"single": 19, "double": 19, "radical": 37}


def _small(block, head="conv", **kw):
    """2 blocks, k = 4, d = 1, 2: receptive field 1 + 2·3·3 = 19 (Single/Double), 1 + 4·3·3 = 37
    (Radical).  Tests run it eagerly: compiling each variant costs more than running it."""
    fields = dict(block=block, num_blocks=2, channels=5, kernel_size=4, dilations=DILATIONS, dropout=0.0,
                  num_classes=3, head=head)
    fields.update(kw)
    return TCN(**fields)


def _f64(tree):
    return jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), tree)


@functools.cache
def _small_variables(block, head):
    model = _small(block, head)
    return model, model.init(jax.random.PRNGKey(0), jnp.zeros((1, 1, 8)))


def test_dilation_schedules():
    assert exponential(4) == (1, 2, 4, 8)
    assert linear(12, 3, 2) == (1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34)  # d_b = 3b - 2
    assert linear(6, 6, 5) == (1, 7, 13, 19, 25, 31)  # d_b = 6b - 5
    assert constant(3, 2) == (2, 2, 2)
    with pytest.raises(ValueError, match="dilations"):
        linear(3, 1, 2)
    assert receptive_field([6, 6], [1, 4]) == 1 + 5 + 20  # eq 66


@pytest.mark.parametrize(
    "preset,convs,rf",
    [("single", 24, 2101), ("double", 24, 2101), ("radical", 24, 1921), ("original", 16, 3061)],
)
def test_paper_configurations(preset, convs, rf):
    """§6.3.3: 24 weight-normalised convolutions, 32 channels, the output layer 10 channels."""
    mc = tcn_model_config(preset)
    params = variable_shapes(build_model(mc))["params"]["tcn"]  # eval_shape: nothing computed
    kernels = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params) if path[-1].key == "v"]
    assert len(kernels) == convs == len(conv_path(mc))
    assert model_receptive_field(mc) == rf
    widths = sorted({k.shape[0] for k in kernels})
    if preset == "original":
        assert widths == [25] and params["head"]["w"].shape == (25, 10)
    else:
        assert widths == [10, 32]
        last = params[f"block{mc.num_blocks}"]  # its last convolution is the 10-channel output layer
        out, skips = ("conv4", ["skip_a2", "skip_out"]) if preset == "radical" else ("conv2", ["skip"])
        assert last[out]["v"].shape == (10, 32, 6)
        assert sorted(k for k in last if k.startswith("skip")) == skips  # 1×1 projections 32 -> 10


@pytest.mark.parametrize("block", BLOCKS)
def test_causal_and_receptive_field_matches_jacobian(block):
    """dy_t/dx_t' is exactly 0 for t' > t; for t' <= t it is nonzero exactly on the last
    R = model_receptive_field inputs (positive weights and inputs: no cancellation, no dead ReLU)."""
    model, variables = _small_variables(block, "conv")
    with jax.enable_x64(True):
        pos = _f64(jax.tree_util.tree_map(lambda a: 0.1 + jnp.abs(a) * 10, variables))
        x = 0.5 + jax.random.uniform(jax.random.PRNGKey(1), (2, 1, T), jnp.float64)
        jac = jax.jacrev(lambda x: model.apply(pos, x)[0])(x)  # (K, T, R, C_in, T)
        hit = np.asarray(jnp.any(jac[:, :, 0] != 0, axis=(0, 2)))  # (T_out, T_in)
    rf = model_receptive_field(model)
    assert rf == SMALL_RF[block] and rf < T
    expected = np.array([[max(0, t - rf + 1) <= u <= t for u in range(T)] for t in range(T)])
    np.testing.assert_array_equal(hit, expected)


@pytest.mark.parametrize("head", ["conv", "linear"])
@pytest.mark.parametrize("block", BLOCKS)
def test_streaming_equals_full_sequence(block, head):
    """Every timestep t < T = 40, float64; for t < receptive field - 1 the full pass reads its
    left zero padding, which the streams' zero-initialised ring buffers must reproduce."""
    model, variables = _small_variables(block, head)
    with jax.enable_x64(True):
        v = _f64(jax.tree_util.tree_map(lambda a: a * 20, variables))  # O(1) activations
        x = jax.random.normal(jax.random.PRNGKey(2), (2, 1, T), jnp.float64)
        full = model.apply(v, x)  # (R, K, T)
        params = stream_params(model, v)
        with jax.disable_jit():  # lax.scan runs its body step by step: no compilation per config
            ys, state = stream_sequence(params, x)
        assert ys.dtype == jnp.float64 and int(state.t) == T
        np.testing.assert_allclose(ys, full, rtol=1e-10, atol=1e-12)
        assert all(b.shape[2] == d * 3 for blk, d in zip(state.buffers.values(), DILATIONS) for b in blk.values())


def test_streaming_a_sequence_classifier_compiled():
    """jit(stream_step) and the compiled lax.scan; the classifier's logits are the last step's."""
    clf = SequenceClassifier(tcn=_small("double", dropout=0.3))  # dropout is off when streaming
    with jax.enable_x64(True):
        v = _f64(clf.init(jax.random.PRNGKey(3), jnp.zeros((1, 1, 5, 8))))
        imgs = jax.random.uniform(jax.random.PRNGKey(4), (2, 1, 5, 8), jnp.float64)
        seq = imgs.reshape(2, 1, T)  # (R, C, T): pixels row by row
        params = stream_params(clf, v)
        ys, _ = jax.jit(stream_sequence)(params, seq)
        np.testing.assert_allclose(ys, clf.tcn.apply({"params": v["params"]["tcn"]}, seq), rtol=1e-10, atol=1e-12)
        step, state = jax.jit(stream_step), init_stream(params, batch=2)
        for t in range(T):
            y, state = step(params, state, seq[:, :, t])
            np.testing.assert_allclose(y, ys[:, :, t], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(y, clf.apply(v, imgs), rtol=1e-10, atol=1e-12)


def _loss(model, grad, params, x, y, key):
    logits = model.apply({"params": params}, x, train=True, rngs={"dropout": key})
    return layers.get_ops(grad).softmax_cross_entropy(logits, y)


@pytest.mark.parametrize("block", BLOCKS)
def test_custom_and_autodiff_gradients_agree_float64(block):
    """Same parameters, batch and dropout masks: every gradient agrees in both grad modes."""
    with jax.enable_x64(True):
        make = lambda grad: SequenceClassifier(tcn=_small(block, "conv", dropout=0.2, grad=grad))
        v = _f64(make("custom").init(jax.random.PRNGKey(5), jnp.zeros((1, 1, 5, 8))))
        v = jax.tree_util.tree_map(lambda a: a * 20, v)
        x = jax.random.uniform(jax.random.PRNGKey(6), (2, 1, 5, 8), jnp.float64)  # (R, 1, T)
        y = jax.nn.one_hot(jnp.array([0, 2]), 3, dtype=jnp.float64)
        key = jax.random.PRNGKey(7)
        out = {}
        for grad in ("custom", "autodiff"):
            fn = jax.value_and_grad(functools.partial(_loss, make(grad), grad))  # eager: cheaper than compiling
            out[grad] = fn(v["params"], x, y, key)
        (lc, gc), (la, ga) = out["custom"], out["autodiff"]
        np.testing.assert_allclose(lc, la, rtol=1e-12)
        flat_a = dict(jax.tree_util.tree_leaves_with_path(ga))
        for path, leaf in jax.tree_util.tree_leaves_with_path(gc):
            name = jax.tree_util.keystr(path)
            assert float(jnp.max(jnp.abs(leaf))) > 0.0, f"zero gradient at {name}"
            np.testing.assert_allclose(leaf, flat_a[path], rtol=1e-9, atol=1e-13, err_msg=name)


def test_classifier_shapes_and_features():
    """The trainer's input, (R, 1, 28, 28) in [0, 1]: a 784-step sequence, logits of the last step."""
    clf = build_model(tcn_model_config("radical", num_blocks=2, channels=5, kernel_size=3))
    x = jax.ShapeDtypeStruct((3, 1, 28, 28), jnp.float32)
    v = jax.eval_shape(lambda k, x: clf.init(k, x), jax.random.PRNGKey(0), x)
    logits, feats = jax.eval_shape(lambda v, x: clf.apply(v, x, return_features=True), v, x)
    assert logits.shape == (3, 10)
    assert {k: f.shape for k, f in feats.items()} == {"block1": (3, 5, 784), "block2": (3, 10, 784)}


def test_dropout_only_in_training_and_reproducible():
    clf = SequenceClassifier(tcn=_small("radical", dropout=0.5))
    with jax.enable_x64(True):
        v = _f64(clf.init(jax.random.PRNGKey(8), jnp.zeros((1, 1, 5, 8))))
        x = jax.random.uniform(jax.random.PRNGKey(9), (2, 1, 5, 8), jnp.float64)
        logits, feats = clf.apply(v, x, return_features=True)
        np.testing.assert_array_equal(logits, feats["block2"][:, :, -1])  # the last timestep's prediction
        np.testing.assert_allclose(predict(clf, v, x).sum(axis=1), 1.0, rtol=1e-12)
        train = lambda k: clf.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(k)})
        np.testing.assert_array_equal(train(1), train(1))
        assert not np.allclose(train(1), train(2))
        assert not np.allclose(train(1), logits)
        no_dropout = SequenceClassifier(tcn=_small("radical", dropout=0.0))
        np.testing.assert_array_equal(no_dropout.apply(v, x), logits)  # inference: dropout is the identity


# ------------------------------------------------------------------ initialisation (docs/tcn.md)
@functools.cache
def _init_params(preset, **overrides):
    """The init parameters of a preset's full network (float32, key 0), {"block1": ..., "head": ...}."""
    model = build_model(tcn_model_config(preset, **overrides))
    return jax.device_get(jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 1, 16)))["params"]["tcn"])


def _convs(params):
    """[(name, {v, g, b})] of every weight-normalised convolution, in order."""
    return [(f"{blk}/{c}", p) for blk, convs in params.items() if blk.startswith("block")
            for c, p in convs.items() if c.startswith("conv")]


def test_init_field_per_preset():
    """The paper's presets keep the "normal" init; the original TCN gets Bai et al.'s effective one."""
    assert {p: tcn_model_config(p).init for p in ("single", "double", "radical", "original")} == {
        "single": "normal", "double": "normal", "radical": "normal", "original": "pytorch_default"}
    assert build_model(tcn_model_config("original")).tcn.init_scheme == "pytorch_default"
    with pytest.raises(ValueError, match="init_scheme='xavier'"):
        build_model(tcn_model_config("original", init="xavier"))


def test_original_init_weight_norm_v_is_pytorch_default():
    """Bai et al.'s ``conv.weight.data.normal_(0, 0.01)`` is undone by the weight-norm hook, so
    v starts as PyTorch's default Conv1d weight: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = C·k
    (1·7 in block 1, 25·7 elsewhere).  Checks the bound, that the draws fill it (max |v| near the
    bound), and the uniform's std bound/sqrt(3) -- 4.4× the 0.01 of N(0, 0.01²) at fan_in 175."""
    convs = _convs(_init_params("original"))
    assert len(convs) == 16
    pooled = []
    for name, p in convs:
        c_out, c_in, k = p["v"].shape
        bound = 1.0 / np.sqrt(c_in * k)
        assert (c_in, k) == ((1 if name == "block1/conv1" else 25), 7), name
        assert np.max(np.abs(p["v"])) <= bound, name
        assert np.max(np.abs(p["v"])) > 0.9 * bound, name  # 175+ draws: P(all < 0.9 bound) < 1e-8
        pooled.append(np.ravel(p["v"]) / bound)
    pooled = np.concatenate(pooled)  # U(-1, 1): mean 0, std 1/sqrt(3)
    assert abs(pooled.mean()) < 0.02
    np.testing.assert_allclose(pooled.std(), 1 / np.sqrt(3), rtol=0.02)
    v = convs[1][1]["v"]  # block1/conv2: 25 × 25 × 7
    np.testing.assert_allclose(v.std(), 1 / np.sqrt(3 * 175), rtol=0.03)
    assert v.std() > 4 * 0.01


def test_original_init_g_is_norm_of_v_and_bias_is_pytorch_default():
    """g = ||v|| per output channel (``weight_g = norm_except_dim(weight, 2, 0)``), so the
    effective kernel w = g v / ||v|| equals v at init; biases keep PyTorch's default
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (never re-initialised by Bai et al.)."""
    pooled = []
    for name, p in _convs(_init_params("original")):
        v, g, b = (np.asarray(p[k], np.float64) for k in ("v", "g", "b"))
        np.testing.assert_allclose(g, np.sqrt((v**2).sum(axis=(1, 2))), rtol=1e-6, err_msg=name)
        w = layers.weight_norm(jnp.asarray(p["v"]), jnp.asarray(p["g"]))
        np.testing.assert_allclose(w, p["v"], rtol=1e-5, atol=1e-7, err_msg=name)
        bound = 1.0 / np.sqrt(v.shape[1] * v.shape[2])
        assert np.max(np.abs(b)) <= bound and np.all(b != 0), name
        pooled.append(b / bound)
    pooled = np.concatenate(pooled)  # 16 × 25 draws of U(-1, 1)
    np.testing.assert_allclose(pooled.std(), 1 / np.sqrt(3), rtol=0.1)


def test_original_init_downsample_and_head():
    """The 1×1 downsample is not weight-normalised, so Bai et al.'s normal_(0, 0.01) is real:
    w ~ N(0, 0.01²); its bias keeps PyTorch's U(-1/sqrt(C_in), 1/sqrt(C_in)) (C_in = 1 in the
    original TCN's block 1: U(-1, 1)).  The head is ``nn.Linear(25, 10)``, never re-initialised
    in TCN/mnist_pixel/model.py: w, b ~ U(-1/5, 1/5)."""
    params = _init_params("original")
    skips = [(blk, c) for blk, convs in params.items() if blk.startswith("block") for c in convs if c.startswith("skip")]
    assert skips == [("block1", "skip")]
    w, b = params["block1"]["skip"]["w"], params["block1"]["skip"]["b"]  # (25, 1, 1), (25,)
    assert w.shape == (25, 1, 1) and 0.006 < w.std() < 0.015 and np.max(np.abs(w)) < 0.05
    assert np.max(np.abs(b)) <= 1.0 and 0.4 < b.std() < 0.75
    head_w, head_b = params["head"]["w"], params["head"]["b"]  # (25, 10), (10,)
    assert np.max(np.abs(head_w)) <= 0.2 and np.max(np.abs(head_w)) > 0.18
    np.testing.assert_allclose(head_w.std(), 0.2 / np.sqrt(3), rtol=0.1)
    assert np.max(np.abs(head_b)) <= 0.2 and np.all(head_b != 0)
    # the module itself, at a size where the std is measured to ~1%: N(0, 0.01²), bias U(-1/8, 1/8)
    from jaxnets.nn import Conv1x1
    big = Conv1x1(400, init_scheme="pytorch_default").init(jax.random.PRNGKey(1), jnp.zeros((1, 64, 3)))["params"]
    np.testing.assert_allclose(big["w"].std(), 0.01, rtol=0.02)
    assert np.max(np.abs(big["b"])) <= 1 / 8
    np.testing.assert_allclose(big["b"].std(), 1 / (8 * np.sqrt(3)), rtol=0.1)


def test_paper_presets_keep_normal_init():
    """init="normal" (the paper's presets, and the original preset with init="normal"): v ~
    N(0, 0.01²), g = ||v||, every bias zero, a He-normal linear head (std sqrt(2/25))."""
    for preset, kw in (("radical", dict(num_blocks=2)), ("original", dict(init="normal"))):
        params = _init_params(preset, **kw)
        v = np.concatenate([np.ravel(p["v"]) for _, p in _convs(params)])
        np.testing.assert_allclose(v.std(), 0.01, rtol=0.03, err_msg=preset)
        for name, p in _convs(params):
            np.testing.assert_allclose(p["g"], np.sqrt((np.asarray(p["v"], np.float64) ** 2).sum(axis=(1, 2))), rtol=1e-6)
            np.testing.assert_array_equal(p["b"], 0.0, err_msg=f"{preset} {name}")
        for blk in params.values():
            for c, p in blk.items():
                if c.startswith("skip"):
                    np.testing.assert_array_equal(p["b"], 0.0)
    head = _init_params("original", init="normal")["head"]
    np.testing.assert_array_equal(head["b"], 0.0)
    assert 0.2 < head["w"].std() < 0.32  # truncated He normal: ~0.88 · sqrt(2/25) = 0.25


def test_build_model_from_config():
    mc = tcn_model_config("double", num_blocks=4, dilation_schedule="constant", dilation_a=2, grad="autodiff")
    model = build_model(mc)
    assert isinstance(model, SequenceClassifier)
    tcn = model.tcn
    assert (tcn.block, tcn.dilations, tcn.grad, tcn.channels, tcn.kernel_size) == ("double", (2, 2, 2, 2), "autodiff", 32, 6)
    assert model_receptive_field(mc) == 1 + 4 * 2 * 2 * 5
    orig = build_model(tcn_model_config("original")).tcn
    assert (orig.num_blocks, orig.channels, orig.kernel_size, orig.dilations[-1], orig.head) == (8, 25, 7, 128, "linear")
    with pytest.raises(ValueError, match="unknown TCN config fields"):
        tcn_model_config(blocks=3)
    with pytest.raises(ValueError, match="block='triple'"):
        build_model(tcn_model_config(block="triple"))
    with pytest.raises(ValueError, match="model.grad"):
        build_model(tcn_model_config(grad="numeric"))

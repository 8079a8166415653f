"""ResNet backbones (section 5.2.1): parameter counts, torchvision equivalence, feature shapes,
custom-vs-autodiff gradients, batch-norm train/eval behaviour, argument checks."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxnets.config import ConfigError
from jaxnets.models import build_model
from jaxnets.models.resnet import FEATURE_STRIDES, ResNet, params_from_torchvision, scale_channels, variable_shapes
from jaxnets.nn import count_params
from jaxnets.nn.blocks import Bottleneck

# Published parameter counts of the ImageNet classifiers, 1000-class fc head included:
# torchvision.models.ResNet{18,...}_Weights.IMAGENET1K_V1.meta["num_params"] (the "Params" column
# of https://pytorch.org/vision/stable/models.html), i.e. sum(p.numel() for p in
# model.parameters()): conv kernels, BN weight/bias (our gamma/beta), fc weight/bias; BN running
# statistics are buffers, not parameters, and torchvision's convolutions have no bias.
# Our backbone has no fc head: subtract 512*1000 + 1000 (basic) or 2048*1000 + 1000 (bottleneck).
PUBLISHED = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}
FC_HEAD = {18: 513_000, 34: 513_000, 50: 2_049_000, 101: 2_049_000, 152: 2_049_000}


def fast_jit(f, **kwargs):
    """``jax.jit`` without XLA's CPU backend optimisations: the same numbers, compiled about 4x
    faster (these tests run each program once or twice, so compilation is all their time)."""
    return jax.jit(f, compiler_options={"xla_backend_optimization_level": 0}, **kwargs)


def random_variables(shapes, seed=0):
    """Values for a tree of ShapeDtypeStructs without running ``init``: kernels ~ N(0, 2/fan_in)
    (He), gamma ~ U(0.5, 1.5), beta ~ U(-0.1, 0.1), running mean ~ U(-0.1, 0.1), var ~ U(0.5, 1.5)."""
    rng = np.random.RandomState(seed)

    def fill(path, s):
        name = path[-1].key
        if name == "w":
            return rng.randn(*s.shape) * np.sqrt(2.0 / np.prod(s.shape[1:]))
        lo, hi = {"gamma": (0.5, 1.5), "var": (0.5, 1.5)}.get(name, (-0.1, 0.1))
        return rng.uniform(lo, hi, s.shape)

    return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_parameter_count_equals_published_minus_fc(depth):
    """eval_shape of init: ResNet-152's 58 M parameters are counted, not allocated."""
    shapes = variable_shapes(ResNet(depth=depth))
    assert count_params(shapes["params"]) == PUBLISHED[depth] - FC_HEAD[depth]
    # state: one running mean and variance per BN channel, as many as gamma + beta
    leaves = jax.tree_util.tree_leaves_with_path(shapes["params"])
    n_bn = sum(x.size for p, x in leaves if p[-1].key in ("gamma", "beta"))
    assert count_params(shapes["batch_stats"]) == n_bn


def _torchvision_resnet(depth, seed=0):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(seed)
    model = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
    with torch.no_grad():  # non-trivial BN parameters and statistics, so eval mode tests them
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return torch, model


def _torchvision_features(torch, model, x):
    with torch.no_grad():
        h = model.maxpool(model.relu(model.bn1(model.conv1(torch.from_numpy(x)))))
        out = {}
        for i, layer in enumerate([model.layer1, model.layer2, model.layer3, model.layer4]):
            h = layer(h)
            out[f"conv{i + 2}"] = h.numpy()
    return out


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_counts_and_structure(depth):
    """torchvision's resnet{depth}(weights=None) counted the same way, and mapped by name onto
    our variables: the same tree with the same shapes."""
    torch, tv = _torchvision_resnet(depth)
    n_tv = sum(p.numel() for n, p in tv.named_parameters() if not n.startswith("fc."))
    n_fc = sum(p.numel() for n, p in tv.named_parameters() if n.startswith("fc."))
    assert n_fc == FC_HEAD[depth] and n_tv + n_fc == PUBLISHED[depth]
    shapes = variable_shapes(ResNet(depth=depth))
    assert count_params(shapes["params"]) == n_tv
    variables = params_from_torchvision(tv.state_dict(), depth)
    assert jax.tree_util.tree_structure(variables) == jax.tree_util.tree_structure(shapes)
    for a, b in zip(jax.tree_util.tree_leaves(variables), jax.tree_util.tree_leaves(shapes)):
        assert a.shape == b.shape


@pytest.mark.parametrize("depth,train", [(18, True), (50, False)])
def test_forward_matches_torchvision(depth, train):
    """Stage outputs equal torchvision's for the same weights: strides, paddings (max-pool pad
    1), shortcut placement (ResNet-50: stride on the 3x3) and BN agree. Train mode (ResNet-18)
    normalises with the batch statistics (biased variance) and moves the running means as torch
    does (momentum 0.1); torch's running variance uses the unbiased batch variance, ours the
    biased one of eqs 35 and 39, so only the means are compared. Eval mode (ResNet-50) uses
    the running statistics."""
    torch, tv = _torchvision_resnet(depth, seed=depth)
    variables = params_from_torchvision(tv.state_dict(), depth)
    x = np.random.RandomState(depth).randn(4, 3, 64, 64).astype(np.float32)  # conv5: 4*2*2 values per channel
    model = ResNet(depth=depth)
    ours, state = fast_jit(lambda v, x: model.apply(v, x, train=train, mutable=["batch_stats"]))(variables, x)
    tv.train(train)
    ref = _torchvision_features(torch, tv, x)
    assert sorted(ours) == sorted(ref)
    for level, r in ref.items():
        atol = 1e-4 * float(np.abs(r).max())
        np.testing.assert_allclose(np.asarray(ours[level]), r, rtol=0, atol=atol, err_msg=level)
    ref_stats = params_from_torchvision(tv.state_dict(), depth)["batch_stats"]
    ours_stats = jax.tree_util.tree_leaves_with_path(state["batch_stats"])
    for (path, a), b in zip(ours_stats, jax.tree_util.tree_leaves(ref_stats)):
        if path[-1].key == "mean" or not train:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5, err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("depth", [18, 50])
@pytest.mark.parametrize("size", [128, 100, 33])
def test_feature_shapes_and_strides(depth, size):
    """Levels conv2..conv7 at strides 4..128: H_level = ceil(H / stride); channels as stated."""
    model = ResNet(depth=depth, width=0.25, extra_levels=2)
    x = jax.ShapeDtypeStruct((2, 3, size, size + 8), jnp.float32)
    out, variables = jax.eval_shape(lambda x: model.init_with_output(jax.random.PRNGKey(0), x, train=False), x)
    assert tuple(out) == model.levels == ("conv2", "conv3", "conv4", "conv5", "conv6", "conv7")
    chans = model.feature_channels()
    expansion = 1 if depth == 18 else 4
    assert [chans[k] for k in model.levels[:4]] == [expansion * c for c in (16, 32, 64, 128)]
    assert chans["conv6"] == chans["conv7"] == chans["conv5"]
    for level, feat in out.items():
        s = FEATURE_STRIDES[level]
        assert feat.shape == (2, chans[level], math.ceil(size / s), math.ceil((size + 8) / s)), level


def test_extra_levels_select_outputs_and_parameters():
    base = variable_shapes(ResNet(depth=18, width=0.25))["params"]
    one = ResNet(depth=18, width=0.25, extra_levels=1)
    assert one.levels == ("conv2", "conv3", "conv4", "conv5", "conv6")
    extra = set(variable_shapes(one)["params"]) - set(base)
    assert extra == {"conv6_down", "conv6_bn", "conv6_0", "conv6_1"}
    # conv6 = 3x3/2 conv C5 -> C5 (no bias) + BN + 2 bottlenecks C5 -> C5/4 -> C5/4 -> C5
    c5 = 128
    m = c5 // 4
    block = c5 * m + 2 * m + 9 * m * m + 2 * m + m * c5 + 2 * c5
    n_extra = count_params(variable_shapes(one)["params"]) - count_params(base)
    assert n_extra == 9 * c5 * c5 + 2 * c5 + 2 * block


def test_width_rounding():
    """c -> max(1, floor(c * width + 1/2)); bottleneck outputs stay exactly 4x the base width."""
    assert scale_channels(64, 1.0) == 64
    assert scale_channels(64, 1 / 16) == 4
    assert scale_channels(64, 0.3) == 19  # 19.2
    assert scale_channels(6, 0.25) == 2  # 1.5 rounds half up
    assert scale_channels(64, 0.001) == 1
    chans = ResNet(depth=50, width=0.3).feature_channels()
    assert chans == {"conv2": 4 * 19, "conv3": 4 * 38, "conv4": 4 * 77, "conv5": 4 * 154}


def _loss_fn(model, x, weights):
    def loss(params, batch_stats):
        variables = {"params": params, "batch_stats": batch_stats}
        feats, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])
        return sum(jnp.sum(feats[k] * weights[k]) for k in feats), updates["batch_stats"]

    return fast_jit(jax.value_and_grad(loss, has_aux=True))


def test_custom_equals_autodiff_gradients_float64(float64):
    """Tiny ResNet-18 (width 1/16, 32x32: basic blocks, projections and the padded max-pool are
    on the path), train mode: every parameter's gradient agrees between the custom VJPs and
    autodiff of the references (the bottleneck has its own test below)."""
    rng = np.random.RandomState(0)  # numpy, not eager jax ops: each new shape would compile
    x = rng.randn(3, 3, 32, 32)  # float64
    results = {}
    for grad in ("custom", "autodiff"):
        model = ResNet(depth=18, width=1 / 16, grad=grad)
        if grad == "custom":
            feats, shapes = jax.eval_shape(lambda x: model.init_with_output(jax.random.PRNGKey(1), x, train=False), x)
            variables = random_variables(shapes, seed=1)  # float64 numpy arrays
            weights = {k: rng.randn(*f.shape) for k, f in feats.items()}
        results[grad] = _loss_fn(model, x, weights)(variables["params"], variables["batch_stats"])
    (lc, sc), gc = results["custom"]
    (la, sa), ga = results["autodiff"]
    assert gc["conv1"]["w"].dtype == jnp.float64
    np.testing.assert_allclose(lc, la, rtol=1e-12)
    flat_a = dict(jax.tree_util.tree_leaves_with_path(ga))
    flat_c = jax.tree_util.tree_leaves_with_path(gc)
    assert len(flat_c) == len(flat_a) == len(jax.tree_util.tree_leaves(variables["params"]))
    for path, leaf in flat_c:
        name = jax.tree_util.keystr(path)
        assert np.abs(np.asarray(leaf)).max() > 0.0, f"zero gradient at {name}"
        np.testing.assert_allclose(leaf, flat_a[path], rtol=1e-9, atol=1e-12, err_msg=name)
    for a, b in zip(jax.tree_util.tree_leaves(sc), jax.tree_util.tree_leaves(sa)):
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_bottleneck_with_strided_projection_custom_equals_autodiff(float64):
    """The bottleneck's stride-2 3x3 and 1x1/2 projection (used by ResNet-50+), both modes."""
    rng = np.random.RandomState(2)
    x = rng.randn(2, 6, 9, 9)  # float64
    grads = {}
    for grad in ("custom", "autodiff"):
        block = Bottleneck(3, stride=2, grad=grad)
        if grad == "custom":
            shapes = jax.eval_shape(lambda x: block.init(jax.random.PRNGKey(3), x, train=False), x)
            variables = random_variables(shapes, seed=3)
            w = rng.randn(2, 12, 5, 5)

        def loss(p, block=block):
            v = {"params": p, "batch_stats": variables["batch_stats"]}
            y, _ = block.apply(v, x, train=True, mutable=["batch_stats"])
            return jnp.sum(y * w)

        grads[grad] = fast_jit(jax.grad(loss))(variables["params"])
    assert set(grads["custom"]) >= {"downsample_conv", "downsample_bn", "conv3", "bn3"}
    flat_a = jax.tree_util.tree_leaves(grads["autodiff"])
    for (path, c), a in zip(jax.tree_util.tree_leaves_with_path(grads["custom"]), flat_a):
        np.testing.assert_allclose(c, a, rtol=1e-9, atol=1e-12, err_msg=jax.tree_util.keystr(path))


def test_batch_stats_update_in_train_only():
    """train=True: every running mean/var moves (eqs 38-39) and an example's features depend on
    the rest of the batch; train=False: statistics untouched and examples independent."""
    model = ResNet(depth=18, width=1 / 16)
    rng = np.random.RandomState(5)
    x = rng.randn(4, 3, 32, 32).astype(np.float32)
    variables = random_variables(variable_shapes(model, 32), seed=6)
    variables = jax.tree_util.tree_map(lambda a: a.astype(np.float32), variables)
    apply = fast_jit(lambda v, x, train: model.apply(v, x, train=train, mutable=["batch_stats"]), static_argnums=2)

    train_out, train_state = apply(variables, x, True)
    for (path, new), old in zip(jax.tree_util.tree_leaves_with_path(train_state["batch_stats"]),
                                jax.tree_util.tree_leaves(variables["batch_stats"])):
        assert not np.allclose(new, old), f"running statistic not updated: {jax.tree_util.keystr(path)}"

    eval_out, eval_state = apply(variables, x, False)
    old_stats = jax.tree_util.tree_leaves(variables["batch_stats"])
    for new, old in zip(jax.tree_util.tree_leaves(eval_state["batch_stats"]), old_stats):
        np.testing.assert_array_equal(new, old)

    # same first example, different rest of the batch (same shape: no new compilation)
    x_other = np.concatenate([x[:1], rng.randn(3, 3, 32, 32).astype(np.float32)])
    eval_other, _ = apply(variables, x_other, False)
    train_other, _ = apply(variables, x_other, True)
    np.testing.assert_allclose(eval_other["conv5"][0], eval_out["conv5"][0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(train_other["conv5"][0], train_out["conv5"][0], atol=1e-3)


def test_bad_arguments_raise_one_line():
    for kwargs, field in [({"depth": 20}, "depth"), ({"width": 0.0}, "width"),
                          ({"extra_levels": 3}, "extra_levels"), ({"grad": "numeric"}, "grad")]:
        with pytest.raises(ValueError, match=f"^{field}=") as e:
            ResNet(**kwargs)
        assert "\n" not in str(e.value)


def test_registered_builder():
    mc = ml_collections.ConfigDict(dict(name="resnet", depth=50, width=0.5, extra_levels=2, grad="autodiff"))
    model = build_model(mc)
    assert isinstance(model, ResNet)
    assert (model.depth, model.width, model.extra_levels, model.grad) == (50, 0.5, 2, "autodiff")
    mc.depth = 42
    with pytest.raises(ConfigError, match="depth=42"):
        build_model(mc)

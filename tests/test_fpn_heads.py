"""FPN (jaxnets/models/fpn.py) and FaceNet's shared heads (jaxnets/models/face_heads.py), §5.2.1,
§5.3.3, §5.3.5.  Fake backbone feature dicts with odd sizes (as a stride-2 backbone gives them:
each level ceil(H/2) of the one before); one small integration test with the real ResNet-18 at
width 1/16.  The module runs in float64 (the custom-vs-autodiff gradient check needs it)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets import layers
from jaxnets.models.face_heads import (
    DenseHead,
    FaceHeads,
    face_heads_config,
    face_heads_from_config,
    flatten_predictions,
    head_grid_sizes,
    prior_bias,
)
from jaxnets.models.fpn import FPN, fit_to, upsample_nearest_to

pytestmark = pytest.mark.usefixtures("float64")

LEVELS = ("conv2", "conv3", "conv4")
# odd sizes: 9 -> 5 -> 3 rows, 11 -> 6 -> 3 columns (ceil halves); conv5 is extra and ignored
SHAPES = {"conv2": (2, 6, 9, 11), "conv3": (2, 8, 5, 6), "conv4": (2, 10, 3, 3), "conv5": (2, 10, 2, 2)}
PI = 0.001


TWO = ("conv3", "conv4")  # the levels of the tests that compute (fewer shapes to compile)
KEY = jax.random.key(0, impl="unsafe_rbg")  # cheap to compile; Flax init is otherwise unchanged


def fake_features(seed: int = 0, shapes=SHAPES) -> dict[str, jax.Array]:
    """Standard-normal features of the given shapes (NumPy: no RNG program to compile)."""
    rng = np.random.default_rng(seed)
    return {name: jnp.asarray(rng.standard_normal(s)) for name, s in shapes.items()}


def random_variables(module, *args, seed: int = 0, scale: float = 0.3, **kw):
    """Variables of ``module`` with the structure its ``init`` gives (abstract evaluation only),
    filled with N(0, scale²) parameters (NumPy) and batch statistics mean 0, var 1."""
    shapes = jax.eval_shape(lambda *a: module.init(jax.random.PRNGKey(0), *a, **kw), *args)
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = str(path[-1])
        if "mean" in name:
            return jnp.zeros(leaf.shape)
        if "var" in name:
            return jnp.ones(leaf.shape)
        return jnp.asarray(scale * rng.standard_normal(leaf.shape))

    return jax.tree_util.tree_map_with_path(fill, shapes)


def small_heads(**kw) -> FaceHeads:
    fields = dict(levels=LEVELS, channels=8, num_anchors=3)
    fields.update(kw)
    return FaceHeads(**fields)


def n_predictions(shapes, levels, a, up=False) -> int:
    return a * sum(h * w for h, w in head_grid_sizes(shapes, levels, up))


# ------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(use_fpn=False, num_logits=2),
        dict(head_upsample=True, fpn_upsample="bilinear", head_norm="batch"),
        dict(use_fpn=False, head_upsample=True, num_anchors=1, head_blocks=2),
    ],
)
def test_output_shapes(kw):
    """(R, N, K) and (R, N, 4) with N = A · sum_l H'_l W'_l (doubled grids with head_upsample);
    shapes by abstract evaluation (nothing computed)."""
    heads = small_heads(**kw)
    feats = fake_features()
    out, variables = jax.eval_shape(lambda f: heads.init_with_output(jax.random.PRNGKey(0), f), feats)
    n = n_predictions(SHAPES, LEVELS, heads.num_anchors, heads.head_upsample)
    assert out["logits"].shape == (2, n, heads.num_logits)
    assert out["offsets"].shape == (2, n, 4)
    grids = ((9, 11), (5, 6), (3, 3))
    assert heads.grid_sizes(feats) == (tuple((2 * h, 2 * w) for h, w in grids) if heads.head_upsample else grids)
    neck = "fpn" if heads.use_fpn else "projection"
    assert set(variables["params"]) == {neck, "cls_head", "reg_head"}


def test_flatten_order_level_y_x_anchor():
    """Channel a·K + k at (y, x) lands in row (y·W + x)·A + a, column k (the anchors' order)."""
    r, a, k, h, w = 2, 3, 2, 4, 5
    ri, ai, ki, yi, xi = np.meshgrid(*(np.arange(n) for n in (r, a, k, h, w)), indexing="ij")
    code = ((((ri * 10 + ai) * 10 + ki) * 10 + yi) * 10 + xi).astype(np.float64)  # (R, A, K, H, W)
    flat = np.asarray(flatten_predictions(jnp.asarray(code.reshape(r, a * k, h, w)), a))
    assert flat.shape == (r, h * w * a, k)
    for rr, yy, xx, aa, kk in [(0, 0, 0, 0, 0), (1, 2, 3, 1, 1), (0, 3, 4, 2, 0), (1, 1, 0, 2, 1)]:
        assert flat[rr, (yy * w + xx) * a + aa, kk] == code[rr, aa, kk, yy, xx]


# ------------------------------------------------------------------------------------ prior
@pytest.mark.parametrize("num_logits", [1, 2])
def test_prior_every_anchor_starts_at_pi(num_logits):
    """Flax init, 2 levels.  final_init="zeros": every anchor's face probability is π to 1e-6
    (sigmoid for 1 logit, softmax index 1 for 2) and every offset 0.  final_init="normal"
    (RetinaNet's N(0, 0.01²) weights, the bias unchanged): the probabilities spread around π
    (mean within 10%: with unit-scale features and 8 channels it is 1.03 π (1 logit) and
    0.99 π (2 logits); E[sigmoid(b + ε)] ≈ π E[e^ε] grows with the width) and the offsets are
    small but not 0."""
    feats = fake_features(1)

    def face_prob(logits):
        return jax.nn.sigmoid(logits[..., 0]) if num_logits == 1 else jax.nn.softmax(logits, -1)[..., 1]

    zero = small_heads(levels=TWO, num_logits=num_logits, final_init="zeros")
    out, v = zero.init_with_output(KEY, feats)
    np.testing.assert_allclose(np.asarray(face_prob(out["logits"])), PI, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(out["offsets"]), 0.0)
    np.testing.assert_allclose(v["params"]["cls_head"]["final"]["b"], np.tile(prior_bias(PI, num_logits), 3), rtol=1e-7)

    normal = small_heads(levels=TWO, num_logits=num_logits, final_init="normal")
    out, v = normal.init_with_output(KEY, feats)
    w = np.asarray(v["params"]["cls_head"]["final"]["w"])
    assert 0.007 < w.std() < 0.013
    p = np.asarray(face_prob(out["logits"]))
    assert abs(p.mean() / PI - 1) < 0.1, p.mean()
    assert p.std() > 0
    assert 0 < np.abs(np.asarray(out["offsets"])).max() < 1


def test_prior_bias_values():
    b = -math.log((1 - PI) / PI)
    assert prior_bias(PI, 1) == (b,)
    assert prior_bias(PI, 2) == (0.0, b)
    # the paper's b = -log(C(1-π)/π), C = 2, on the face logit gives π/(2-π), about π/2
    paper = -math.log(2 * (1 - PI) / PI)
    assert math.isclose(1 / (1 + math.exp(-paper)), PI / (2 - PI), rel_tol=1e-12)


# ---------------------------------------------------------------------------- shared params
def test_head_parameters_shared_across_levels():
    """One set of head parameters whatever the number of levels: the heads' parameter trees for
    1 and 3 levels have the same structure and shapes; applying the head to two levels at once
    equals applying it to each alone with the same parameters, concatenated in level order."""
    feats = fake_features(2)
    trees = {}
    for levels in (("conv3",), LEVELS):
        heads = small_heads(levels=levels)
        _, v = jax.eval_shape(lambda f: heads.init_with_output(jax.random.PRNGKey(0), f), feats)
        trees[levels] = {k: v["params"][k] for k in ("cls_head", "reg_head")}
        assert set(trees[levels]["cls_head"]) == {"block1", "block2", "block3", "block4", "final"}
    assert jax.tree_util.tree_structure(trees[("conv3",)]) == jax.tree_util.tree_structure(trees[LEVELS])
    assert jax.tree_util.tree_leaves(trees[("conv3",)]) == jax.tree_util.tree_leaves(trees[LEVELS])

    head = DenseHead(outputs=2, num_anchors=3, channels=8, final_init="normal", final_bias=(0.5, -1.0))
    x = fake_features(3, {"a": (2, 8, 5, 6), "b": (2, 8, 3, 3)})  # the sizes the other tests use
    both, v = head.init_with_output(KEY, x)
    parts = [head.apply(v, {k: x[k]}) for k in ("a", "b")]
    np.testing.assert_allclose(np.asarray(both), np.asarray(jnp.concatenate(parts, axis=1)), rtol=1e-12, atol=1e-12)
    assert both.shape == (2, (30 + 9) * 3, 2)
    # the per-anchor bias is tiled over the anchors: channel a·K + k starts at final_bias[k]
    np.testing.assert_array_equal(np.asarray(v["params"]["final"]["b"]), [0.5, -1.0] * 3)


# ---------------------------------------------------------------------------- FPN, odd sizes
def test_nearest_upsample_rules():
    """Exact ×2 is the repeat; ceil(H/2) -> H is the repeat cropped at the bottom/right (equal to
    torchvision's floor(i·h/H) rule); floor(H/2) -> H follows torchvision's rule (hand case)."""
    x = jnp.arange(2 * 3 * 4 * 3, dtype=jnp.float64).reshape(2, 3, 4, 3)
    rep = jnp.repeat(jnp.repeat(x, 2, axis=2), 2, axis=3)
    np.testing.assert_array_equal(upsample_nearest_to(x, (8, 6)), rep)
    np.testing.assert_array_equal(upsample_nearest_to(x, (7, 5)), rep[:, :, :7, :5])
    row = jnp.asarray([[[[1.0, 2.0]]]])  # (1, 1, 1, 2): w = 2 -> W = 5 reads columns 0,0,0,1,1
    np.testing.assert_array_equal(upsample_nearest_to(row, (1, 5))[0, 0, 0], [1, 1, 1, 2, 2])
    np.testing.assert_array_equal(fit_to(rep, (9, 5))[:, :, 8], rep[:, :, 7, :5])  # edge-repeat
    with pytest.raises(ValueError, match="more than 1"):
        fit_to(rep, (10, 6))


@pytest.mark.parametrize("upsample", ["nearest", "bilinear"])
def test_fpn_top_down_by_hand(upsample):
    """With identity laterals and smoothing (1×1 weight I, 3×3 kernel with centre I, zero bias),
    P_l = C_l + up(P_{l+1}) on odd sizes; the bilinear ×2 is checked against
    jax.image.resize(method="bilinear") (half-pixel centres = PyTorch align_corners=False),
    cropped at the bottom/right."""
    c = 3
    shapes = {"conv2": (1, c, 9, 11), "conv3": (1, c, 5, 6), "conv4": (1, c, 3, 3)}
    feats = fake_features(5, shapes)
    fpn = FPN(LEVELS, channels=c, upsample=upsample)
    expected = jax.eval_shape(lambda f: fpn.init(jax.random.PRNGKey(0), f), feats)["params"]
    eye1 = jnp.eye(c)[:, :, None, None]
    eye3 = jnp.zeros((c, c, 3, 3)).at[:, :, 1, 1].set(jnp.eye(c))
    params = {
        f"{kind}_{lvl}": {"w": eye1 if kind == "lateral" else eye3, "b": jnp.zeros(c)}
        for kind in ("lateral", "smooth")
        for lvl in LEVELS
    }
    assert jax.tree_util.tree_map(jnp.shape, params) == jax.tree_util.tree_map(lambda a: a.shape, expected)
    out = jax.jit(fpn.apply)({"params": params}, feats)

    def up(p, size):
        if upsample == "nearest":
            big = jnp.repeat(jnp.repeat(p, 2, axis=2), 2, axis=3)
        else:
            big = jax.image.resize(p, p.shape[:2] + (2 * p.shape[2], 2 * p.shape[3]), "bilinear")
        return big[:, :, : size[0], : size[1]]

    p4 = feats["conv4"]
    p3 = feats["conv3"] + up(p4, (5, 6))
    p2 = feats["conv2"] + up(p3, (9, 11))
    for lvl, want in zip(LEVELS, (p2, p3, p4)):
        assert out[lvl].shape == shapes[lvl]
        np.testing.assert_allclose(np.asarray(out[lvl]), np.asarray(want), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------ custom vs autodiff
def _gradients_agree(**kw):
    """value_and_grad of a fixed scalar of both outputs, w.r.t. every parameter and every input
    feature, for grad="custom" and grad="autodiff" (float64, random parameters, training mode)."""
    feats = fake_features(6)
    kw = dict(levels=TWO, channels=8, num_anchors=2, num_logits=2, **kw)
    heads = {g: FaceHeads(grad=g, **kw) for g in layers.GRAD_MODES}
    variables = random_variables(heads["custom"], feats, seed=6)
    n = n_predictions(SHAPES, TWO, 2, kw.get("head_upsample", False))
    rng = np.random.default_rng(7)
    wl, wo = jnp.asarray(rng.standard_normal((2, n, 2))), jnp.asarray(rng.standard_normal((2, n, 4)))

    def loss(params, f, g):
        out, _ = heads[g].apply({**variables, "params": params}, f, train=True, mutable=["batch_stats"])
        return jnp.sum(jnp.tanh(out["logits"]) * wl) + jnp.sum(out["offsets"] ** 2 * wo)

    def both(params, f):  # one program for both modes: one compilation
        return {g: jax.value_and_grad(loss, argnums=(0, 1))(params, f, g) for g in layers.GRAD_MODES}

    grads = jax.jit(both)(variables["params"], feats)
    np.testing.assert_allclose(grads["custom"][0], grads["autodiff"][0], rtol=1e-12)
    flat_c, tree_c = jax.tree_util.tree_flatten(grads["custom"][1])
    flat_a, tree_a = jax.tree_util.tree_flatten(grads["autodiff"][1])
    assert tree_c == tree_a
    scale = max(np.abs(np.asarray(a)).max() for a in flat_a)
    for c, a in zip(flat_c, flat_a):
        np.testing.assert_allclose(np.asarray(c), np.asarray(a), rtol=1e-9, atol=1e-12 * scale)
    nonzero = [np.abs(np.asarray(c)).max() > 1e-8 * scale for c in flat_c]
    assert np.mean(nonzero) > 0.8, np.mean(nonzero)  # a few narrow BN/ReLU paths may be dead
    for name, x in grads["custom"][1][1].items():  # the levels used get a gradient, the others 0
        assert (np.abs(np.asarray(x)).max() > 1e-8 * scale) == (name in TWO), name


def test_custom_and_autodiff_gradients_agree():
    """FPN with the bilinear top-down (custom-VJP upsampling), heads with the bilinear ×2 after
    their 2 bottlenecks, 2 logits: custom and autodiff gradients agree in float64."""
    _gradients_agree(fpn_upsample="bilinear", head_upsample=True, head_blocks=2)


@pytest.mark.slow
def test_custom_and_autodiff_gradients_agree_with_batch_norm():
    """As above with nearest top-down, 4 bottlenecks and per-level batch norm in training mode."""
    _gradients_agree(head_upsample=True, head_norm="batch")


# ------------------------------------------------------------------------------ config, errors
def test_config_roundtrip_and_bad_arguments():
    heads = face_heads_from_config(face_heads_config(levels=LEVELS, channels=8, num_logits=2, head_upsample=True))
    assert heads.levels == LEVELS and heads.num_logits == 2 and heads.head_upsample and heads.prior == 0.001
    with pytest.raises(ValueError, match="unknown face-heads config fields"):
        face_heads_config(chanels=8)
    for kw, msg in [
        (dict(num_logits=3), "num_logits"),
        (dict(prior=0.0), "prior"),
        (dict(head_upsample=True, head_blocks=1), "head_blocks"),
        (dict(head_blocks=0), "head_blocks"),
        (dict(head_norm="group"), "head_norm"),
        (dict(fpn_upsample="cubic"), "fpn_upsample"),
        (dict(grad="numeric"), "grad"),
        (dict(num_anchors=0), "num_anchors"),
    ]:
        with pytest.raises(ValueError, match=msg):
            small_heads(**kw).check()
    feats = fake_features()
    for kw, msg in [
        (dict(levels=("conv2", "conv9")), "not among the features"),
        (dict(levels=("conv3", "conv2")), "fine to coarse"),
        (dict(levels=("conv2", "conv2")), "unique"),
    ]:
        with pytest.raises(ValueError, match=msg):
            heads = small_heads(**kw)
            jax.eval_shape(lambda f: heads.init(jax.random.PRNGKey(0), f), feats)


# ------------------------------------------------------------- with the backbone and the anchors
def test_on_resnet18_features_with_v24_anchors():
    """ResNet-18 at width 1/16 with conv6 and conv7 (jaxnets/models/resnet.py) feeds the heads
    directly; with the v2.4 anchors (jaxnets/detection/anchors.py: conv2-conv7, 6 anchors per
    position, heads upsampling ×2) on a 72×100 input the heads' grids are the anchor grids and
    there is one prediction per anchor.  Abstract evaluation (shapes only)."""
    import importlib

    from jaxnets.models.resnet import ResNet

    anchors_lib = importlib.import_module("jaxnets.detection.anchors")  # the package rebinds .anchors

    cfg = anchors_lib.preset("v2.4")
    backbone = ResNet(depth=18, width=1 / 16, extra_levels=2)
    heads = small_heads(levels=cfg.levels, num_anchors=cfg.anchors_per_position, head_upsample=True)
    x = jnp.zeros((1, 3, 72, 100))

    def forward(x):
        feats, _ = backbone.init_with_output(jax.random.PRNGKey(1), x, train=False)
        out, _ = heads.init_with_output(jax.random.PRNGKey(2), feats)
        return feats, out

    feats, out = jax.eval_shape(forward, x)
    assert [feats[k].shape[2:] for k in cfg.levels] == [(18, 25), (9, 13), (5, 7), (3, 4), (2, 2), (1, 1)]
    assert list(heads.grid_sizes(feats)) == anchors_lib.grid_sizes(cfg, (72, 100))
    n = len(anchors_lib.anchors(cfg, (72, 100))[0])
    assert n == 6 * 4 * (18 * 25 + 9 * 13 + 5 * 7 + 3 * 4 + 2 * 2 + 1)
    assert out["logits"].shape == (1, n, 1) and out["offsets"].shape == (1, n, 4)


def test_flatten_matches_anchor_module():
    """The heads' flattening is the anchor generator's (jaxnets/detection/anchors.py)."""
    from jaxnets.detection.anchors import flatten_level

    y = jnp.asarray(np.random.default_rng(9).standard_normal((2, 6 * 4, 3, 5)))
    np.testing.assert_array_equal(np.asarray(flatten_predictions(y, 6)), np.asarray(flatten_level(y, 4)))

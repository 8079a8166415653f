"""Training augmentation (jaxnets.data.transforms): what each transform does to images and boxes, and its config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.mnist.common import mnist_base
from jaxnets.config import ConfigError, apply_overrides
from jaxnets.data.transforms import check_augment, make_augment, random_hflip, random_shift


def _images(r=32, c=2, h=7, w=9, seed=0):
    # strictly positive pixels, so a zero in the output can only come from the fill
    return np.random.RandomState(seed).randint(1, 256, (r, c, h, w)).astype(np.uint8)


def _shifted(img, dy, dx):
    """Reference: out[i, j] = img[i - dy, j - dx] inside the image, else 0.  img (C, H, W)."""
    out = np.zeros_like(img)
    _, h, w = img.shape
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[:, i, j] = img[:, i - dy, j - dx]
    return out


def test_hflip_mirrors_about_half_of_the_images_and_leaves_the_rest():
    x = _images(r=400)
    y = np.asarray(random_hflip(jax.random.key(3), jnp.asarray(x)))
    flipped = np.array([np.array_equal(b, a[..., ::-1]) for a, b in zip(x, y)])
    kept = np.array([np.array_equal(b, a) for a, b in zip(x, y)])
    assert np.all(flipped ^ kept)  # each image is exactly one of the two
    assert 150 < flipped.sum() < 250  # Bernoulli(1/2) over 400 images


@pytest.mark.parametrize("max_shift", [1, 2, 3])
def test_shift_is_a_zero_filled_translation_within_max_shift(max_shift):
    x = _images()
    y = np.asarray(random_shift(jax.random.key(max_shift), jnp.asarray(x), max_shift))
    assert y.shape == x.shape and y.dtype == x.dtype
    seen = set()
    for a, b in zip(x, y):
        matches = [
            (dy, dx)
            for dy in range(-max_shift, max_shift + 1)
            for dx in range(-max_shift, max_shift + 1)
            if np.array_equal(b, _shifted(a, dy, dx))
        ]
        assert len(matches) == 1, "every output is exactly one translation of its input"
        seen.add(matches[0])
    assert len(seen) > 3  # offsets differ across the batch


def test_shift_zero_is_the_identity():
    x = jnp.asarray(_images())
    assert random_shift(jax.random.key(0), x, 0) is x


def test_augment_is_a_function_of_the_key_only():
    aug = make_augment({"hflip": True, "max_shift": 2})
    x = {"image": jnp.asarray(_images())}
    a, b = aug(jax.random.key(7), x)["image"], aug(jax.random.key(7), x)["image"]
    c = aug(jax.random.key(8), x)["image"]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_augment_off_by_default():
    assert make_augment(mnist_base().data.augment) is None
    assert make_augment(None) is None


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"flip": True}, "unknown field"),
        ({"max_shift": -1}, "max_shift=-1"),
        ({"max_shift": 1.5}, "max_shift=1.5"),
        ({"hflip": "yes"}, "hflip='yes'"),
        ({"max_shift": 28}, "smaller than the image"),
    ],
)
def test_bad_augment_fields_name_the_field(spec, message):
    with pytest.raises(ValueError, match=message):
        check_augment(spec, (1, 28, 28))


def test_augment_refused_for_pixel_sequences(tmp_path, capsys):
    from jaxnets.config import load_config
    from jaxnets.train import train_and_evaluate

    config = load_config("experiments/tcn/seqmnist_single_cpu.py", smoke=True)
    config.data.augment = {"hflip": True}
    with pytest.raises(ConfigError, match="cannot be combined with data.sequence"):
        train_and_evaluate(config, tmp_path, progress=False)


def test_boxes_move_with_their_pixels():
    """A flip or a shift maps a box onto the pixels it covered: the box of a bright square stays on it."""
    r, s = 64, 12
    rng = np.random.default_rng(0)
    images = np.zeros((r, 1, s, s), np.uint8)
    boxes = np.zeros((r, 4), np.float32)
    for i in range(r):
        x, y, w = rng.integers(0, 8), rng.integers(0, 8), rng.integers(2, 5)
        images[i, 0, y : y + w, x : x + w] = 255
        boxes[i] = (x, y, x + w, y + w)
    batch = {"image": jnp.asarray(images), "box": jnp.asarray(boxes), "label": jnp.arange(r)}
    out = make_augment({"hflip": True, "max_shift": 2})(jax.random.key(1), batch)
    assert np.array_equal(np.asarray(out["label"]), np.arange(r))  # other fields untouched
    moved = 0
    for img, box, before in zip(np.asarray(out["image"]), np.asarray(out["box"]), boxes):
        ys, xs = np.nonzero(img[0])
        x1, y1, x2, y2 = box.astype(int)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)  # the box is the square's extent
        moved += not np.array_equal(box, before)
    assert moved > r // 2


def test_augment_overrides_from_the_command_line():
    c = apply_overrides(mnist_base(), ["data.augment.hflip=True", "data.augment.max_shift=2"])
    assert check_augment(c.data.augment, (1, 28, 28)) == {"hflip": True, "max_shift": 2}
    with pytest.raises(ConfigError, match="data.augment.hflip"):
        apply_overrides(mnist_base(), ["data.augment.hflip=yes"])


def test_train_step_trains_on_the_augmented_batch():
    """Same state and batch: the augmented step's loss is that of the augmented images."""
    import pathlib
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).parent))
    import _tiny_model as tiny

    from jaxnets.train import TRANSFORM_STREAM, initial_state, make_mesh, make_optimizer
    from jaxnets.train import make_train_step, shard_batch

    config, mesh = mnist_base(), make_mesh()
    config.batch_size = 8
    tx, schedule = make_optimizer(config)
    plain_task = tiny.make_task(config, mesh)
    config.data.augment.hflip, config.data.augment.max_shift = True, 1
    aug_task = tiny.make_task(config, mesh)
    state = initial_state(plain_task, tx, 0, mesh)
    batch = plain_task.train_data.batch_at_step(0)
    plain = make_train_step(plain_task, tx, mesh, schedule=schedule, donate=False)
    augmented = make_train_step(aug_task, tx, mesh, schedule=schedule, donate=False)
    _, m_aug = augmented(state, shard_batch(batch, mesh))
    _, m_plain = plain(state, shard_batch(batch, mesh))
    # the images the augmented step saw: the step-0 key of the state's stream
    key = jax.random.fold_in(jax.random.fold_in(state.rng, 0), TRANSFORM_STREAM)
    seen = jax.device_get(aug_task.train_data.device_transform(key, {k: jnp.asarray(v) for k, v in batch.items()}))
    assert not np.array_equal(seen["image"], batch["image"])
    _, m_seen = plain(state, shard_batch(seen, mesh))
    np.testing.assert_allclose(float(m_aug["loss"]), float(m_seen["loss"]), rtol=1e-6)
    assert float(m_aug["loss"]) != float(m_plain["loss"])

"""Training-image augmentation (jaxnets.train.augment): what each transform does, and its config."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnets.config import ConfigError, apply_overrides, mnist_base
from jaxnets.train.augment import check_augment, make_augment, random_hflip, random_shift


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
    x = jnp.asarray(_images())
    a, b = aug(jax.random.key(7), x), aug(jax.random.key(7), x)
    c = aug(jax.random.key(8), x)
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


def test_augment_refused_for_pixel_sequences():
    with pytest.raises(ValueError, match="data.sequence"):
        check_augment({"hflip": True}, (1, 28, 28), sequence=True)


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

    from jaxnets.train import create_train_state, make_mesh, make_optimizer, make_train_step, shard_batch
    from jaxnets.train.augment import AUGMENT_STREAM

    config = mnist_base()
    model, data, mesh = tiny.TinyNet(), tiny.random_digits(), make_mesh()
    tx, schedule = make_optimizer(config)
    state = create_train_state(model, tx, 0, (1, 8, 8))
    images, labels = tiny.batch_at_step(data.train, 8, 0, 0)
    aug = make_augment({"hflip": True, "max_shift": 1})
    plain = make_train_step(model, tx, schedule, mesh, donate=False)
    augmented = make_train_step(model, tx, schedule, mesh, augment=aug, donate=False)
    _, m_aug = augmented(state, *shard_batch((images, labels), mesh))
    _, m_plain = plain(state, *shard_batch((images, labels), mesh))
    # the images the augmented step saw: the step-0 key of the state's stream
    key = jax.random.fold_in(jax.random.fold_in(state.rng, 0), AUGMENT_STREAM)
    seen = np.asarray(aug(key, jnp.asarray(images)))
    assert not np.array_equal(seen, images)
    _, m_seen = plain(state, *shard_batch((seen, labels), mesh))
    np.testing.assert_allclose(float(m_aug["loss"]), float(m_seen["loss"]), rtol=1e-6)
    assert float(m_aug["loss"]) != float(m_plain["loss"])

"""Flax modules holding parameters; the math lives in :mod:`jaxnets.layers`."""

from jaxnets.nn.modules import BatchNorm, Conv2d, Dense, count_params, he_normal, max_pool2d, relu

__all__ = ["BatchNorm", "Conv2d", "Dense", "count_params", "he_normal", "max_pool2d", "relu"]

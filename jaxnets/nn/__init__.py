"""Flax modules holding parameters; the math lives in :mod:`jaxnets.layers`."""

from jaxnets.nn.modules import BatchNorm, Conv2d, Dense, count_params, he_normal, max_pool2d, relu
from jaxnets.nn.temporal import Conv1x1, Dropout, WeightNormConv1d

__all__ = [
    "BatchNorm",
    "Conv1x1",
    "Conv2d",
    "Dense",
    "Dropout",
    "WeightNormConv1d",
    "count_params",
    "he_normal",
    "max_pool2d",
    "relu",
]

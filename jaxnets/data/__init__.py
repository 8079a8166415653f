"""Data for the paper's experiments: IDX files, tfds builders (no TensorFlow), loaders, batch order.

Public names:

* :func:`load_digits` -> :class:`Digits` (train / validation / test :class:`Split` s, NCHW uint8)
* :func:`epoch_batches`, :func:`batch_at_step`: the batch of global step t from (seed, t)
* :func:`read_idx`, :func:`write_idx`, :func:`find_idx_pair`, :func:`read_idx_pair`
* :class:`IdxDigits`, :class:`MnistSample`: tfds builders to array_record; :func:`prepare`
* :class:`DataError`: every bad-input error, naming the file
"""

from jaxnets.data.builders import IdxDigits, MnistSample, default_data_dir, prepare
from jaxnets.data.errors import DataError
from jaxnets.data.idx import find_idx_pair, read_idx, read_idx_pair, write_idx
from jaxnets.data.sources import (
    Digits,
    Split,
    batch_at_step,
    epoch_batches,
    load_digits,
    read_split,
)

__all__ = [
    "DataError",
    "Digits",
    "IdxDigits",
    "MnistSample",
    "Split",
    "batch_at_step",
    "default_data_dir",
    "epoch_batches",
    "find_idx_pair",
    "load_digits",
    "prepare",
    "read_idx",
    "read_idx_pair",
    "read_split",
    "write_idx",
]

"""Data for the paper's experiments: IDX files, tfds builders (no TensorFlow), loaders, batch order.

Public names:

* :func:`load_digits` -> :class:`Digits` (train / validation / test :class:`Split` s, NCHW uint8)
* :func:`epoch_batches`, :func:`batch_at_step`: the batch of global step t from (seed, t)
* :func:`read_idx`, :func:`write_idx`, :func:`find_idx_pair`, :func:`read_idx_pair`
* :class:`IdxDigits`, :class:`MnistSample`: tfds builders to array_record; :func:`prepare`
* :class:`DataError`: every bad-input error, naming the file
* :class:`SequenceTask`, :func:`sequence_task`, :func:`pixel_permutation`: Sequential / Permuted
  MNIST (section 6.3) as a transform of :class:`Digits`; :class:`SequenceMismatch`
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
from jaxnets.data.sequence import (
    SequenceMismatch,
    SequenceTask,
    check_saved_sequence,
    downsample,
    pixel_permutation,
    sequence_task,
)

__all__ = [
    "DataError",
    "Digits",
    "IdxDigits",
    "MnistSample",
    "SequenceMismatch",
    "SequenceTask",
    "Split",
    "batch_at_step",
    "check_saved_sequence",
    "default_data_dir",
    "downsample",
    "epoch_batches",
    "find_idx_pair",
    "load_digits",
    "pixel_permutation",
    "prepare",
    "read_idx",
    "read_idx_pair",
    "read_split",
    "sequence_task",
    "write_idx",
]

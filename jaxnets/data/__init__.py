"""Data for the paper's experiments: IDX files, tfds builders (no TensorFlow), loaders, batch order.

Public names:

* :func:`load_digits` -> :class:`Digits` (train / validation / test :class:`Split` s, NCHW uint8)
* :class:`ArraySource`, :class:`IndexedSource`, :func:`eval_batches`, :func:`epoch_batches`: the
  batch of global step t from (seed, t), in memory or read by index (:mod:`jaxnets.data.batches`)
* :func:`read_idx`, :func:`write_idx`, :func:`find_idx_pair`, :func:`read_idx_pair`
* :class:`IdxDigits`, :class:`MnistSample`: tfds builders to array_record; :func:`prepare`
* :class:`DataError`: every bad-input error, naming the file
* WIDER FACE: :func:`read_gt` / :func:`write_gt` (the txt records, :class:`WiderImage`),
  :func:`read_val_mats` / :func:`write_val_mats` (the official evaluation ground truth,
  :class:`WiderGroundTruth`), :func:`load_wider` -> :class:`WiderSplit` (records by index from the
  tfds builder :class:`WiderFaceTxt`, or tfds' own ``wider_face``), :func:`prepare_wider`
* :class:`SequenceTask`, :func:`sequence_task`, :func:`pixel_permutation`: Sequential / Permuted
  MNIST (section 6.3) as a transform of :class:`Digits`; :class:`SequenceMismatch`
"""

from jaxnets.data.builders import IdxDigits, MnistSample, default_data_dir, prepare
from jaxnets.data.errors import DataError
from jaxnets.data.idx import find_idx_pair, read_idx, read_idx_pair, write_idx
from jaxnets.data.batches import ArraySource, DataSource, IndexedSource, batch_indices, epoch_batches, eval_batches
from jaxnets.data.sources import Digits, Split, load_digits, read_split
from jaxnets.data.wider_txt import WiderFormatError, WiderImage, read_gt, write_gt
from jaxnets.data.wider_mat import WiderGroundTruth, read_val_mats, write_val_mats
from jaxnets.data.wider_builder import WiderFaceTxt, prepare_wider
from jaxnets.data.wider_source import WiderSplit, load_wider
from jaxnets.data.sequence import (
    SequenceMismatch,
    SequenceTask,
    check_saved_sequence,
    downsample,
    pixel_permutation,
    sequence_task,
)

__all__ = [
    "WiderFaceTxt",
    "WiderFormatError",
    "WiderGroundTruth",
    "WiderImage",
    "WiderSplit",
    "load_wider",
    "prepare_wider",
    "read_gt",
    "read_val_mats",
    "write_gt",
    "write_val_mats",
    "DataError",
    "Digits",
    "IdxDigits",
    "MnistSample",
    "SequenceMismatch",
    "SequenceTask",
    "Split",
    "ArraySource",
    "DataSource",
    "IndexedSource",
    "batch_indices",
    "eval_batches",
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

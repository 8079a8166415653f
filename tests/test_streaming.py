"""Data sources: the batch of a step is a pure function of (seed, step), in memory or read by index."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from jaxnets.config import load_config
from jaxnets.data import ArraySource, IndexedSource, epoch_batches, load_digits, sequence_task, write_idx
from jaxnets.train import read_metrics, train_and_evaluate

ROOT = pathlib.Path(__file__).parents[1]


def test_array_source_batch_order_is_a_pure_function_of_seed_and_step():
    batches = epoch_batches(103, 10, 7, 0)
    assert batches.shape == (10, 10) and len(set(batches.ravel().tolist())) == 100 and not batches.flags.writeable
    np.testing.assert_array_equal(batches, np.random.default_rng((7, 0)).permutation(103)[:100].reshape(10, 10))
    assert not np.array_equal(batches, epoch_batches(103, 10, 7, 1))
    assert not np.array_equal(batches, epoch_batches(103, 10, 8, 0))
    source = ArraySource({"x": np.arange(103) * 2, "y": np.arange(103)}, 10, 7)
    run = [source.batch_at_step(t) for t in range(25)]
    np.testing.assert_array_equal(run[3]["y"], batches[3])
    np.testing.assert_array_equal(run[3]["x"], 2 * batches[3])
    np.testing.assert_array_equal(run[12]["y"], epoch_batches(103, 10, 7, 1)[2])  # 10 batches an epoch
    epoch_batches.cache_clear()  # a "resumed" run recomputes from (seed, step) alone
    for t in (24, 13, 0, 17):
        np.testing.assert_array_equal(ArraySource(source.arrays, 10, 7).batch_at_step(t)["x"], run[t]["x"])
    with pytest.raises(ValueError, match="batch_size=104"):
        ArraySource(source.arrays, 104, 7)
    with pytest.raises(ValueError, match="different lengths"):
        ArraySource({"x": np.arange(3), "y": np.arange(4)}, 1, 0)
    assert ArraySource(source.arrays, 10, 7).describe() == source.describe()
    assert ArraySource({**source.arrays, "x": source.arrays["x"] + 1}, 10, 7).describe() != source.describe()


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for split, n in (("train", 300), ("t10k", 50)):
        write_idx(d / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(d / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8))
    return d


@pytest.mark.parametrize("where", ["sample", "idx"])
def test_indexed_source_reads_the_same_batches_as_memory(where, idx_dir, tmp_path):
    kw = dict(data_dir=str(tmp_path / "tfds"), seed=3)
    if where == "idx":  # validation carved out of train by the seed, then a limit
        kw.update(idx_dir=str(idx_dir), validation_size=40, limit=200)
    name = "mnist_sample" if where == "sample" else "mnist"
    memory, disk = load_digits(name, **kw), load_digits(name, stream_train=True, **kw)
    assert len(disk.train) == len(memory.train)
    np.testing.assert_array_equal(disk.validation.images, memory.validation.images)
    seq = sequence_task({"sequence": "permuted", "image_size": 14}, 3)
    a = ArraySource({"image": seq.apply_images(memory.train.images), "label": memory.train.labels}, 16, 3)
    b = IndexedSource(disk.train.read, len(disk.train), 16, 3, identity=disk.train.identity(),
                      host_transform=lambda x: {**x, "image": seq.apply_images(x["image"])})
    for step in (0, 1, len(memory.train) // 16 + 2, 97):
        x, y = a.batch_at_step(step), b.batch_at_step(step)
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert b.describe()["identity"]["stored_examples"] == (8000 if where == "sample" else 300)


def test_streamed_training_equals_in_memory_training(tmp_path):
    runs = []
    for streaming in (False, True):
        config = load_config(ROOT / "experiments" / "tcn" / "pmnist_single_cpu.py", smoke=True)
        config.data.streaming = streaming
        config.data.data_dir = str(tmp_path / "tfds")
        summary = train_and_evaluate(config, tmp_path / str(streaming), progress=False)
        records = [{k: v for k, v in r.items() if k not in ("walltime", "examples_per_sec")}
                   for r in read_metrics(tmp_path / str(streaming) / "metrics.jsonl")]
        runs.append((summary["evaluations"], records))
    assert runs[0] == runs[1]

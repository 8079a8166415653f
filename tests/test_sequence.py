"""Sequential / Permuted MNIST (section 6.3) through the data pipeline and the trainer.

* the tasks: row-major pixel order, one fixed permutation from the seed for every split, the
  optional block-mean downsampling, and the checks that refuse a different permutation;
* the trainer with a model that has no batch-norm statistics (the TCN has none): it trains,
  checkpoints, resumes exactly, saves the permutation and refuses a resume on another one;
* the TCN experiment configs: every file names its paper row and command, and one config per
  block type runs end to end in its smoke form.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import jax
import ml_collections
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache

import jaxnets.data.sequence as sequence
from jaxnets.config import load_config
from jaxnets.data import (
    Digits,
    SequenceMismatch,
    SequenceTask,
    Split,
    downsample,
    pixel_permutation,
    sequence_task,
)
from jaxnets.models import build_model, model_receptive_field
from jaxnets.train import (
    ResumeMismatch,
    initial_state,
    make_mesh,
    make_optimizer,
    read_metrics,
    restore_best,
    restore_step,
    train_and_evaluate,
)

from _kill import run_killed  # noqa: E402  (tests/ is on sys.path under pytest)

ROOT = pathlib.Path(__file__).resolve().parents[1]
TCN_CONFIGS = sorted(p for p in (ROOT / "experiments" / "tcn").glob("*.py") if p.stem not in ("common", "__init__"))


def _digits(n_train=64, n_val=24, n_test=24, seed=0) -> Digits:
    """Random 28×28 digits whose label is written as a bright 2-pixel-high band (learnable)."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = rng.integers(0, 10, n).astype(np.int32)
        images = rng.integers(0, 40, (n, 1, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 0, 2 * c + 4 : 2 * c + 6, 4:24] = 255
        return Split(images, labels)

    return Digits(split(n_train), split(n_val), split(n_test), source="random test digits")


# ------------------------------------------------------------------------------------ the tasks
def test_pixel_permutation_is_a_fixed_function_of_the_seed():
    p = pixel_permutation(0, 784)
    assert p.dtype == np.int32 and p.shape == (784,)
    np.testing.assert_array_equal(np.sort(p), np.arange(784))
    np.testing.assert_array_equal(p, pixel_permutation(0, 784))
    np.testing.assert_array_equal(p, np.random.default_rng((0, 784)).permutation(784))
    assert not np.array_equal(p, pixel_permutation(1, 784))
    assert pixel_permutation(0, 196).shape == (196,)


def test_sequential_task_is_row_major_and_permuted_task_uses_one_permutation_everywhere():
    d = _digits()
    seq = SequenceTask("sequential").apply(d)
    np.testing.assert_array_equal(seq.train.images, d.train.images)  # row-major flattening = the sequence
    assert "Sequential pixel sequence: 784 steps" in seq.source

    task = sequence_task({"sequence": "permuted"}, seed=3)
    perm = pixel_permutation(3, 784)
    np.testing.assert_array_equal(task.permutation, perm)
    out = task.apply(d)
    for name in ("train", "validation", "test"):
        before, after = getattr(d, name), getattr(out, name)
        assert after.images.shape == before.images.shape and after.images.dtype == np.uint8
        x = after.images.reshape(len(after), 784)  # the sequence the model reads, (N, T)
        np.testing.assert_array_equal(x, before.images.reshape(len(before), 784)[:, perm])  # x[t] = pixel perm[t]
        np.testing.assert_array_equal(after.labels, before.labels)
    assert "permutation sha256" in out.source


def test_downsample_by_block_means():
    images = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4) * 10  # rows 0,10,20,30 / 40.. / ...
    small = downsample(images, 2)
    np.testing.assert_array_equal(small[0, 0], [[25, 45], [105, 125]])  # means of 2×2 blocks
    assert downsample(images, 4) is images
    with pytest.raises(ValueError, match="must divide"):
        downsample(images, 3)
    task = sequence_task({"sequence": "permuted", "image_size": 14}, seed=0)
    assert task.length == 196 and task.permutation.shape == (196,)
    out = task.apply(_digits())
    assert out.train.images.shape[1:] == (1, 14, 14)
    np.testing.assert_array_equal(
        out.train.images.reshape(-1, 196), downsample(_digits().train.images, 14).reshape(-1, 196)[:, task.permutation]
    )


def test_task_selection_and_errors():
    assert sequence_task({"sequence": ""}, 0) is None and sequence_task({}, 0) is None
    with pytest.raises(ValueError, match="data.sequence='shuffled'"):
        sequence_task({"sequence": "shuffled"}, 0)
    with pytest.raises(ValueError, match="data.image_size=10 must divide 28"):
        sequence_task({"sequence": "sequential", "image_size": 10}, 0)


def test_check_refuses_another_permutation_kind_or_length():
    task = sequence_task({"sequence": "permuted"}, 0)
    task.check(task.describe())  # itself: fine
    assert json.loads(json.dumps(task.describe()))["permutation"] == task.permutation.tolist()
    with pytest.raises(SequenceMismatch, match="different pixel permutation"):
        task.check(sequence_task({"sequence": "permuted"}, 1).describe())
    with pytest.raises(SequenceMismatch, match="Sequential"):
        task.check(SequenceTask("sequential").describe())
    with pytest.raises(SequenceMismatch, match="196 steps"):
        task.check(sequence_task({"sequence": "permuted", "image_size": 14}, 0).describe())
    with pytest.raises(SequenceMismatch, match="not trained on a pixel sequence"):
        task.check(None)


def test_pixel_standardisation_is_opt_in():
    from experiments.mnist.common import mnist_base
    from experiments.tcn.common import tcn_base
    from jaxnets.tasks.classification import normalization, scale as _scale

    assert normalization(mnist_base().data) is None  # section 4: pixels in [0, 1], unchanged
    assert normalization(tcn_base().data) == (0.1307, 0.3081)
    x = np.array([[0, 255]], np.uint8)
    np.testing.assert_allclose(_scale(x, None), [[0.0, 1.0]])
    np.testing.assert_allclose(_scale(x, (0.5, 0.25)), [[-2.0, 2.0]])


# ------------------------------------------------------------------------- the TCN configs
def test_one_config_per_row_of_tables_5_and_6_plus_original_and_cpu_variants():
    names = {p.stem for p in TCN_CONFIGS}
    for task in ("seqmnist", "pmnist"):
        for block in ("single", "double", "radical", "original_tcn"):
            assert f"{task}_{block}" in names
    assert {"seqmnist_single_cpu", "seqmnist_double_cpu", "seqmnist_radical_cpu"} <= names


@pytest.mark.parametrize("path", TCN_CONFIGS, ids=lambda p: p.stem)
def test_config_names_its_row_and_command_and_sees_the_whole_sequence(path):
    config = load_config(path)
    doc = path.read_text()
    task = path.stem.split("_")[0]  # seqmnist | pmnist | seqfashion
    if task == "seqfashion":  # section 6 on Fashion-MNIST: no paper row, says so
        assert config.paper.startswith("none") and "Fashion-MNIST" in doc, config.paper
    else:
        assert config.paper.startswith(("Table 5", "Table 6")), config.paper
    assert f"jaxnets train experiments/tcn/{path.name} --workdir runs/{path.stem}" in doc
    assert "Expected:" in doc
    assert config.data.sequence == ("permuted" if task == "pmnist" else "sequential")
    model = build_model(config.model)
    # the last output sees every input: the property the paper picked the hyper-parameters for
    assert model_receptive_field(model) >= config.data.image_size**2
    full = "fashion_mnist" if task == "seqfashion" else "mnist"
    if path.stem.endswith("_cpu"):
        assert config.data.name == (full if task == "seqfashion" else "mnist_sample")
        assert config.num_steps <= 3000
    else:
        assert config.data.name == full and config.data.image_size == 28
        paper_steps = {"seqmnist": 100_000, "seqfashion": 100_000, "pmnist": 200_000}[task]
        assert config.num_steps == (20 * 859 if "original" in path.stem else paper_steps)


def test_sequential_fashion_mnist_comes_through_the_same_pipeline(tmp_path):
    """Fashion-MNIST IDX files -> tfds builder -> Sequential task of the seqfashion config."""
    from jaxnets.data import load_digits
    from jaxnets.data.idx import write_idx

    rng = np.random.default_rng(1)
    (tmp_path / "idx").mkdir()
    for prefix, n in (("train", 40), ("t10k", 12)):
        write_idx(tmp_path / "idx" / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(tmp_path / "idx" / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n).astype(np.uint8))
    config = load_config(ROOT / "experiments" / "tcn" / "seqfashion_single_cpu.py")
    data = load_digits(
        "fashion_mnist", data_dir=str(tmp_path / "tfds"), idx_dir=str(tmp_path / "idx"), validation_size=8, seed=0
    )
    assert "IDX files" in data.source
    task = sequence_task(config.data, config.seed)
    seq = task.apply(data)
    assert task.length == 196 and "196 steps" in seq.source
    assert seq.train.images.shape == (32, 1, 14, 14) and seq.test.images.shape == (12, 1, 14, 14)
    # row-major flattening = the sequence: the 2x2 block means, unpermuted
    np.testing.assert_array_equal(seq.test.images, downsample(data.test.images, 14))
    np.testing.assert_array_equal(seq.test.labels, data.test.labels)
    assert config.data.normalize == (0.2860, 0.3530)  # Fashion-MNIST's own statistics


SMOKE = {  # one config per block type, each in its smoke form (2 blocks, 7×7 = 49 steps, 6 steps)
    "single": "seqmnist_single",
    "double": "pmnist_double",
    "radical": "seqmnist_radical_cpu",
}


@pytest.fixture(scope="module", autouse=True)
def _compilation_cache(tmp_path_factory):
    """A persistent XLA cache for this module only: the interrupted, resumed and refused runs
    compile the same programs as the smoke runs, and TCN compiles dominate this file's time."""
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    old = {n: getattr(jax.config, n) for n in names}
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    compilation_cache.reset_cache()  # JAX decides once per process whether to use the cache
    yield
    for n, v in old.items():
        jax.config.update(n, v)
    compilation_cache.reset_cache()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))  # the bundled sample is prepared here once


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory, data_dir):
    runs = {}
    for block, name in SMOKE.items():
        config = load_config(ROOT / "experiments" / "tcn" / f"{name}.py", smoke=True)
        config.data.data_dir = data_dir
        workdir = tmp_path_factory.mktemp(name)
        runs[block] = (config, workdir, train_and_evaluate(config, workdir, progress=False))
    return runs


def _target(config):
    from jaxnets.registry import build_task

    mesh = make_mesh()
    return initial_state(build_task(config, mesh), make_optimizer(config)[0], config.seed, mesh)


def _leaves(state):
    return jax.tree_util.tree_leaves((state.params, state.model_state, state.opt_state, state.rng))


def test_smoke_form_of_one_config_per_block_type_runs_end_to_end(smoke_runs):
    for block, (config, workdir, summary) in smoke_runs.items():
        assert config.model.block == block and config.model.num_blocks == 2 and config.data.image_size == 7
        assert summary["num_steps"] == config.num_steps and np.isfinite(summary["evaluations"]["test"]["loss"])
        assert "bundled MNIST sample" in summary["data"] and "49 steps" in summary["data"]
        assert (workdir / "summary.json").is_file() and (workdir / "curves.png").is_file()
        splits = {r["split"] for r in read_metrics(workdir / "metrics.jsonl")}
        assert {"train", "validation", "test"} <= splits
        state, meta = restore_best(workdir, _target(config))
        assert state.model_state == {}  # the TCN has no batch-norm statistics
        assert meta["data"]["transform"]["sequence"]["length"] == 49


def test_tcn_without_batch_stats_resumes_exactly_and_keeps_its_permutation(smoke_runs, tmp_path, monkeypatch):
    config, straight_dir, straight = smoke_runs["double"]  # Permuted MNIST, Double blocks

    run_killed(monkeypatch, ("step", 4), lambda: train_and_evaluate(config, tmp_path, progress=False))
    resumed = train_and_evaluate(config, tmp_path, resume=True, progress=False)

    target = _target(config)
    assert target.model_state == {}
    a, meta = restore_step(tmp_path, target)
    b, _ = restore_step(straight_dir, target)
    assert int(a.step) == config.num_steps and a.model_state == {}
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    for key in ("evaluations", "best_step"):
        assert resumed[key] == straight[key], key
    # the permutation is in every checkpoint's data fingerprint, and is the config's
    perm = pixel_permutation(config.seed, 49)
    saved = meta["data"]["transform"]["sequence"]
    assert saved["permutation"] == perm.tolist() and saved["kind"] == "permuted"
    _, best_meta = restore_best(tmp_path, target)
    assert best_meta["data"]["transform"]["sequence"]["sha256"] == saved["sha256"]


def test_resume_with_another_permutation_or_task_is_refused(smoke_runs, tmp_path, monkeypatch):
    config, straight_dir, _ = smoke_runs["double"]
    workdir = tmp_path / "run"
    shutil.copytree(straight_dir, workdir)
    config = ml_collections.ConfigDict(config.to_dict())
    config.num_steps += 3  # continuing is allowed ...
    # ... but not on another permutation (as if numpy drew a different one for the same seed)
    monkeypatch.setattr(sequence, "pixel_permutation", lambda seed, n: np.arange(n, dtype=np.int32)[::-1].copy())
    with pytest.raises(ResumeMismatch, match="training data differ.*sequence.sha256"):
        train_and_evaluate(config, workdir, resume=True, progress=False)
    monkeypatch.undo()
    config.data.sequence = "sequential"  # nor on another task
    with pytest.raises(ResumeMismatch, match="data.sequence"):
        train_and_evaluate(config, workdir, resume=True, progress=False)
    assert int(restore_step(workdir, _target(ml_collections.ConfigDict({**config.to_dict(), "data": {**config.data.to_dict(), "sequence": "permuted"}})))[0].step) == config.num_steps - 3

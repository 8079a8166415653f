"""Bad command-line and config values: one line each naming the field, exit code 2, no traceback."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from jaxnets import cli
from jaxnets.data import write_idx

CONFIG = "experiments/mnist/cnn_sample_cpu.py"

BAD_SETTINGS = [
    ("batch_size=-8", "batch_size=-8"),
    ("batch_size=0", "batch_size=0"),
    ("batch_size=100000", "batch_size=100000"),
    ("eval_batch_size=0", "eval_batch_size=0"),
    ("num_steps=-5", "num_steps=-5"),
    ("num_steps=0", "num_steps=0"),
    ("log_every=0", "log_every=0"),
    ("eval_every=-1", "eval_every=-1"),
    ("checkpoint_every=0", "checkpoint_every=0"),
    ("keep_checkpoints=0", "keep_checkpoints=0"),
    ("seed=-1", "seed=-1"),
    ("model.name=resnet9000", "model.name='resnet9000'"),
    ("model.grad=fast", "model.grad='fast'"),
    ("optimizer.name=rmsprop", "optimizer.name='rmsprop'"),
    ("optimizer.learning_rate=-0.1", "optimizer.learning_rate=-0.1"),
    ("optimizer.learning_rate=0", "optimizer.learning_rate=0.0"),
    ("optimizer.momentum=1.5", "optimizer.momentum=1.5"),
    ("optimizer.weight_decay=-1", "optimizer.weight_decay=-1.0"),
    ("schedule=[[10]]", "schedule=[[10]]"),
    ("schedule=[[-1,0.1]]", "schedule=[[-1, 0.1]]"),
    ("schedule=[['a',0.1]]", "schedule=[['a', 0.1]]"),
    ("schedule=5", "schedule"),
    ("task=segmentation", "task='segmentation'"),
    ("data.name=cifar", "data.name='cifar'"),
    ("data.validation_size=-1", "data.validation_size=-1"),
    ("data.limit=-3", "data.limit=-3"),
    ("data.augment.max_shift=-1", "data.augment.max_shift=-1"),
    ("data.augment.max_shift=40", "data.augment.max_shift=40"),
    ("data.augment.hflip=maybe", "data.augment.hflip"),
    ("nonexistent=3", "nonexistent"),
    ("num_steps", "KEY=VALUE"),
    ("num_steps=abc", "num_steps must be a number"),
]


def _train(args, capsys) -> tuple[int, str]:
    rc = cli.main(["train", *args, "--no-progress"])
    return rc, capsys.readouterr().err


def _one_clear_error(rc: int, err: str, needle: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err, err
    ours = [line for line in err.splitlines() if line.startswith("jaxnets train: ")]  # (tfds may draw progress bars)
    assert ours and needle in "\n".join(ours), err


@pytest.mark.parametrize("setting,needle", BAD_SETTINGS)
def test_bad_value_is_one_line_naming_the_field(setting, needle, tmp_path, capsys):
    rc, err = _train([CONFIG, "--smoke", "--workdir", str(tmp_path / "w"), "--set", setting], capsys)
    _one_clear_error(rc, err, needle)
    assert not (tmp_path / "w" / "checkpoints").exists()


def test_bad_workdirs(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    _one_clear_error(*_train([CONFIG, "--smoke", "--workdir", str(tmp_path / "file")], capsys), "is a file")
    _one_clear_error(*_train([CONFIG, "--smoke", "--workdir", str(tmp_path / "missing"), "--resume"], capsys),
                     "does not exist")
    _one_clear_error(*_train(["no/such/config", "--workdir", str(tmp_path / "w")], capsys), "not found")


def test_read_only_workdir(tmp_path, capsys, monkeypatch):
    import subprocess

    ro = tmp_path / "ro"
    ro.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)], capture_output=True).returncode == 0
    if not mounted:  # no mount here: the same error, raised where the probe file is written
        import errno

        def refuse(self, data):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(pathlib.Path, "write_bytes", refuse)
    try:
        _one_clear_error(*_train([CONFIG, "--smoke", "--workdir", str(ro / "run")], capsys), "cannot be written")
    finally:
        if mounted:
            subprocess.run(["umount", str(ro)], check=True)


@pytest.mark.parametrize("n,validation,needle", [(0, 0, "holds no images"), (20, 50, "data.validation_size=50")])
def test_idx_files_with_too_few_images(n, validation, needle, tmp_path, capsys):
    idx = tmp_path / "idx"
    idx.mkdir()
    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("t10k", 10)):
        write_idx(idx / f"{split}-images-idx3-ubyte", rng.integers(0, 255, (count, 28, 28)).astype(np.uint8))
        write_idx(idx / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, count).astype(np.uint8))
    rc, err = _train([CONFIG, "--smoke", "--workdir", str(tmp_path / "w"), "--set", "data.name=mnist",
                      "--set", f"data.idx_dir={idx}", "--set", f"data.data_dir={tmp_path / 'tfds'}",
                      "--set", f"data.validation_size={validation}"], capsys)
    _one_clear_error(rc, err, needle)

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


TASK_SETTINGS = [
    ("experiments/toy/boxes.py", "data.image_size=0", "data.image_size=0"),
    ("experiments/toy/boxes.py", "data.image_size=100000", "data.image_size=100000"),
    ("experiments/toy/boxes.py", "data.train_size=0", "data.train_size=0"),
    ("experiments/toy/boxes.py", "data.validation_size=0", "data.validation_size=0"),
    ("experiments/toy/boxes.py", "batch_size=3000", "batch_size=3000"),
    ("experiments/toy/boxes.py", "task=toy_reverse", "model.num_blocks"),
    ("experiments/toy/reverse.py", "data.length=100000", "data.length=100000"),
    ("experiments/toy/reverse.py", "model.channels=0", "model.channels=0"),
    ("experiments/tcn/pmnist_single_cpu.py", "model.dropout=1.5", "dropout=1.5"),
    ("experiments/tcn/pmnist_single_cpu.py", "model.kernel_size=0", "kernel_size"),
    ("experiments/mnist/cnn_sample_cpu.py", "schedule=[[10,1e300]]", "beyond float32"),
    ("experiments/mnist/cnn_sample_cpu.py", "task=toy_boxes", "data.train_size"),
]


@pytest.mark.parametrize("config,setting,needle", TASK_SETTINGS)
def test_bad_task_fields_are_one_line_too(config, setting, needle, tmp_path, capsys):
    rc, err = _train([config, "--smoke", "--workdir", str(tmp_path / "w"), "--set", setting], capsys)
    _one_clear_error(rc, err, needle)


def test_data_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    rc, err = _train([CONFIG, "--smoke", "--workdir", str(tmp_path / "w"), "--set", f"data.data_dir={tmp_path / 'f'}"],
                     capsys)
    _one_clear_error(rc, err, "data")


@pytest.mark.parametrize("damage,needle", [("metrics.jsonl is a directory", "should be a file"),
                                           ("checkpoints is a file", "should be a directory"),
                                           ("symlink loop", "cannot be used")])
def test_damaged_workdir_layout_is_one_line(damage, needle, tmp_path, capsys):
    work = tmp_path / "w"
    if damage == "symlink loop":
        work.symlink_to(work)
    else:
        work.mkdir()
        name = damage.split()[0]
        (work / name).mkdir() if "directory" in damage else (work / name).write_text("x")
    rc, err = _train([CONFIG, "--smoke", "--workdir", str(work), "--resume"], capsys)
    _one_clear_error(rc, err, needle)


def test_lost_metrics_log_is_reported_and_the_run_finishes(tmp_path, capsys):
    args = ["experiments/toy/boxes.py", "--smoke", "--workdir", str(tmp_path / "w")]
    assert _train([*args, "--set", "num_steps=4"], capsys)[0] == 0
    (tmp_path / "w" / "metrics.jsonl").unlink()
    rc, err = _train([*args, "--resume"], capsys)
    assert rc == 0 and "metrics.jsonl is missing" in err
    (tmp_path / "w" / "metrics.jsonl").write_text("garbage\n\x00\x01 not json\n")
    rc, err = _train([*args, "--resume"], capsys)
    assert rc == 0 and "2 unreadable line(s) dropped" in err


def test_more_bad_values(tmp_path, capsys):
    _one_clear_error(*_train([CONFIG, "--smoke", "--workdir", ""], capsys), "--workdir: empty")
    _one_clear_error(*_train([CONFIG, "--smoke", "--workdir", str(tmp_path / "w"), "--set", "model.num_classes=3"],
                             capsys), "model.num_classes=3")
    old = tmp_path / "old"  # a workdir of the pre-driver layout
    (old / "checkpoints" / "latest" / "5").mkdir(parents=True)
    _one_clear_error(*_train([CONFIG, "--smoke", "--workdir", str(old), "--resume"], capsys), "checkpoints/latest")


def test_a_second_run_on_a_busy_workdir_is_refused(tmp_path, capsys):
    from jaxnets.train.workdir import WorkdirLock

    (tmp_path / "w").mkdir()
    with WorkdirLock(tmp_path / "w"):  # as if another jaxnets process were training there
        _one_clear_error(*_train(["experiments/toy/boxes.py", "--smoke", "--workdir", str(tmp_path / "w"), "--resume"],
                                 capsys), "in use by another run")
    assert _train(["experiments/toy/boxes.py", "--smoke", "--workdir", str(tmp_path / "w"), "--resume"], capsys)[0] == 0

"""Every experiment config loads, names its paper row, and runs end to end in its smoke form
(data -> train steps -> eval -> checkpoint -> test on the best checkpoint), through the same
loaders as the real runs: the bundled sample, or IDX files in the original format."""

import json
import pathlib

import numpy as np
import pytest

from jaxnets import cli
from jaxnets.config import ConfigError, apply_overrides, load_config
from jaxnets.data import write_idx
from jaxnets.train import train_and_evaluate

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in (ROOT / "experiments" / "mnist").glob("*.py") if p.stem not in ("common", "__init__"))  # TCN configs: tests/test_sequence.py


@pytest.fixture(scope="session")
def idx_dir(tmp_path_factory):
    """Small MNIST-format IDX files (train 120, test 40) with learnable class structure."""
    d = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 120), ("t10k", 40)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c : 2 * c + 6, 4:24] = 255
        write_idx(d / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(d / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return d


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


def test_there_is_one_config_per_table_3_row_and_dataset():
    names = {p.stem for p in CONFIGS}
    for model in ("cnn", "ffn"):
        for data in ("mnist", "fashion"):
            assert f"{model}_{data}" in names
    assert {"cnn_sample_cpu", "ffn_sample_cpu", "cnn_fashion_cpu", "ffn_fashion_cpu"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_states_paper_row_and_command_and_runs_in_smoke_form(path, idx_dir, data_dir, tmp_path):
    config = load_config(path)
    doc = path.read_text()
    assert config.paper, f"{path} does not name its paper row"
    assert f"jaxnets train experiments/mnist/{path.name}" in doc, "the docstring gives the command"
    assert "Expected" in doc
    assert "Measured" not in doc  # results live in README / docs only
    smoke = load_config(path, smoke=True)
    overrides = [f"data.data_dir={data_dir}"]
    if smoke.data.name != "mnist_sample":
        overrides.append(f"data.idx_dir={idx_dir}")
        smoke.data.validation_size = 20
    apply_overrides(smoke, overrides)
    summary = train_and_evaluate(smoke, str(tmp_path / "run"), progress=False)
    assert summary["num_steps"] == smoke.num_steps
    assert 0.0 <= summary["evaluations"]["test"]["accuracy"] <= 1.0
    assert np.isfinite(summary["evaluations"]["validation"]["loss"])
    run = tmp_path / "run"
    assert (run / "summary.json").is_file() and (run / "curves.png").stat().st_size > 1000
    assert any(p.name.isdigit() for p in (run / "checkpoints").iterdir())
    lines = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"train", "validation"} <= {l["split"] for l in lines}


def test_cli_train_override_and_resume(data_dir, tmp_path, capsys):
    work = tmp_path / "cli"
    args = ["train", "mnist/ffn_sample_cpu", "--smoke", "--workdir", str(work), "--no-progress",
            "--set", f"data.data_dir={data_dir}", "--set", "num_steps=4"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "test/accuracy" in out and "bundled MNIST sample" in out
    assert json.loads((work / "summary.json").read_text())["num_steps"] == 4
    # continue the same run to step 6
    args[-1] = "num_steps=6"
    assert cli.main(args + ["--resume"]) == 0
    assert json.loads((work / "summary.json").read_text())["num_steps"] == 6
    # the README-table row of the finished run, with its plot copied beside the docs
    capsys.readouterr()
    assert cli.main(["results", str(work), "--figures", str(tmp_path / "figs")]) == 0
    row = capsys.readouterr().out
    assert row.startswith("| ") and "6 it." in row and "%" in row
    assert (tmp_path / "figs" / "cli.png").stat().st_size > 1000


def test_cli_bad_override_names_the_argument(capsys):
    rc = cli.main(["train", "mnist/cnn_mnist", "--set", "optimizer.learning_rat=0.1"])
    assert rc == 2
    assert "optimizer.learning_rat" in capsys.readouterr().err
    rc = cli.main(["train", "mnist/cnn_mnist", "--set", "num_steps=many"])
    assert rc == 2
    assert "num_steps must be a number" in capsys.readouterr().err


def test_cli_bad_data_and_reused_workdir_are_one_line_errors(idx_dir, data_dir, tmp_path, capsys):
    empty = tmp_path / "no_idx_here"
    empty.mkdir()
    rc = cli.main(["train", "mnist/ffn_fashion_cpu", "--smoke", "--no-progress", "--workdir", str(tmp_path / "w"),
                   "--set", f"data.idx_dir={empty}", "--set", f"data.data_dir={data_dir}"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "no_idx_here" in err and "Traceback" not in err
    # a workdir that already holds a run is never overwritten without --resume
    args = ["train", "mnist/ffn_fashion_cpu", "--smoke", "--no-progress", "--workdir", str(tmp_path / "w2"),
            "--set", f"data.idx_dir={idx_dir}", "--set", f"data.data_dir={data_dir}", "--set", "data.validation_size=20"]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(args) == 2
    assert "resume" in capsys.readouterr().err


def test_cli_missing_config_is_a_clear_error(capsys):
    assert cli.main(["train", "mnist/nope"]) == 2
    assert "config 'mnist/nope' not found" in capsys.readouterr().err


def test_broken_config_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(:\n")
    with pytest.raises(ConfigError, match="bad.py"):
        load_config(bad)
    none = tmp_path / "none.py"
    none.write_text("x = 1\n")
    with pytest.raises(ConfigError, match="defines no get_config"):
        load_config(none)


def test_cli_params_prints_paper_comparison(capsys):
    assert cli.main(["params"]) == 0
    out = capsys.readouterr().out
    assert "153,792" in out and "167,168" in out

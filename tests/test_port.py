"""The task-agnostic driver reproduces the pre-driver code bit for bit.

``tests/data/port_reference.json`` was recorded by ``tests/data/make_port_reference.py`` run on
commit efaa238 (the last commit before the driver, whose ``train_and_evaluate`` was
classification-only), on this project's 2-core CPU dev machine with jax 0.10.2: the smoke forms
of the CNN (with flips and shifts on), the FFN and the Permuted-MNIST TCN (Single), each its
``metrics.jsonl`` (step, split, loss, accuracy) and the sha256 of its final parameters. The
same configs run here through the new driver must give exactly those numbers.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxnets.config import load_config
from jaxnets.train import Checkpoints, read_metrics, train_and_evaluate

ROOT = pathlib.Path(__file__).parents[1]
REFERENCE = json.loads((ROOT / "tests" / "data" / "port_reference.json").read_text())
CASES = {
    "cnn_sample_cpu+augment": ("experiments/mnist/cnn_sample_cpu.py", {"hflip": True, "max_shift": 1}),
    "ffn_sample_cpu": ("experiments/mnist/ffn_sample_cpu.py", None),
    "pmnist_single_cpu": ("experiments/tcn/pmnist_single_cpu.py", None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_smoke_run_equals_the_pre_driver_code_bit_for_bit(name, tmp_path):
    path, augment = CASES[name]
    config = load_config(ROOT / path, smoke=True)
    if augment:
        config.data.augment.hflip, config.data.augment.max_shift = augment["hflip"], augment["max_shift"]
    train_and_evaluate(config, tmp_path, progress=False)
    records = [{k: r[k] for k in ("step", "split", "loss", "accuracy") if k in r}
               for r in read_metrics(tmp_path / "metrics.jsonl")]
    assert records == REFERENCE[name]["records"]
    with Checkpoints(tmp_path, read_only=True) as ckpts:
        step = ckpts.steps()[-1]
        state = ckpts.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
    assert step == REFERENCE[name]["step"]
    digest = hashlib.sha256(b"".join(np.asarray(x).tobytes() for x in jax.tree_util.tree_leaves(state["params"])))
    assert digest.hexdigest() == REFERENCE[name]["params_sha256"]

"""Training stack shared by every experiment: state, optimizer, sharded steps, loop, checkpoints, metrics, plots.

Quick start::

    from jaxnets.config import load_config
    from jaxnets.train import train_and_evaluate
    summary = train_and_evaluate(load_config("experiments/mnist/cnn_mnist.py"), "runs/cnn_mnist")

Resume after an interruption with ``resume=True``; several hosts: :mod:`jaxnets.train.sharding`.
"""

from jaxnets.train.checkpoint import Checkpoints, restore_best, restore_latest
from jaxnets.train.loop import TrainingDiverged, WorkdirNotEmpty, train_and_evaluate
from jaxnets.train.metrics import MetricsWriter, read_metrics
from jaxnets.train.optim import make_optimizer, make_schedule
from jaxnets.train.plots import plot_metrics
from jaxnets.train.sharding import (
    DATA_AXIS,
    batch_sharding,
    check_batch_size,
    make_mesh,
    process_rows,
    replicated,
    shard_batch,
)
from jaxnets.train.state import TrainState, count_params, create_train_state, init_variables, tree_all_finite
from jaxnets.train.step import cross_entropy_fn, evaluate, make_eval_step, make_train_step

__all__ = [
    "Checkpoints",
    "DATA_AXIS",
    "MetricsWriter",
    "TrainState",
    "TrainingDiverged",
    "WorkdirNotEmpty",
    "batch_sharding",
    "check_batch_size",
    "count_params",
    "create_train_state",
    "cross_entropy_fn",
    "evaluate",
    "init_variables",
    "make_eval_step",
    "make_mesh",
    "make_optimizer",
    "make_schedule",
    "make_train_step",
    "plot_metrics",
    "process_rows",
    "read_metrics",
    "replicated",
    "restore_best",
    "restore_latest",
    "shard_batch",
    "train_and_evaluate",
]

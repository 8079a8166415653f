"""The task-agnostic training driver: state, jitted + sharded step, loop, checkpoints, metrics, plots.

Quick start::

    from jaxnets.config import load_config
    from jaxnets.train import train_and_evaluate
    summary = train_and_evaluate(load_config("experiments/mnist/cnn_mnist.py"), "runs/cnn_mnist")

A kind of training plugs in as a :mod:`task <jaxnets.train.task>`; resume after an
interruption with ``resume=True``; several hosts: :mod:`jaxnets.train.sharding`.
"""

from jaxnets.train.checkpoint import Checkpoints, CorruptCheckpoint, has_checkpoints, restore_best, restore_step
from jaxnets.train.interrupt import Interrupted
from jaxnets.train.loop import StorageError, TrainingDiverged, check_config, config_dict, train_and_evaluate
from jaxnets.train.metrics import MetricsWriter, read_metrics
from jaxnets.train.optim import make_optimizer, make_schedule
from jaxnets.train.plots import plot_metrics
from jaxnets.train.resume import ResumeMismatch
from jaxnets.train.sharding import (
    DATA_AXIS,
    batch_sharding,
    check_batch_size,
    make_mesh,
    process_rows,
    replicated,
    shard_batch,
)
from jaxnets.train.state import TrainState, create_train_state, init_rngs, initial_state, tree_all_finite, tree_sha256, variables_of
from jaxnets.train.step import TRANSFORM_STREAM, make_sum_step, make_train_step, sum_over_batches
from jaxnets.train.task import Evaluator, Task, check_task
from jaxnets.train.workdir import WorkdirError, WorkdirNotEmpty

__all__ = [
    "Checkpoints", "CorruptCheckpoint", "DATA_AXIS", "Evaluator", "Interrupted", "MetricsWriter",
    "ResumeMismatch", "StorageError", "TRANSFORM_STREAM", "Task", "TrainState",
    "TrainingDiverged", "WorkdirError", "WorkdirNotEmpty", "batch_sharding", "check_batch_size", "check_config",
    "check_task", "config_dict", "create_train_state", "has_checkpoints", "init_rngs", "initial_state", "make_mesh",
    "make_optimizer", "make_schedule", "make_sum_step", "make_train_step", "plot_metrics", "process_rows",
    "read_metrics", "replicated", "restore_best", "restore_step", "shard_batch", "sum_over_batches",
    "train_and_evaluate", "tree_all_finite", "tree_sha256", "variables_of",
]

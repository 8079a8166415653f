"""Shared settings of the toy tasks (not paper rows): Adam, a short schedule, a smoke form."""

from __future__ import annotations

import ml_collections


def toy_base(task: str, num_steps: int) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.paper = ""  # not a paper row: a check that the driver takes detection / seq2seq tasks
    c.task = task
    c.seed = 0
    c.batch_size = 32
    c.eval_batch_size = 64
    c.num_steps = num_steps
    c.optimizer = ml_collections.ConfigDict(dict(name="adam", learning_rate=3e-3, weight_decay=0.0))
    c.schedule = [[int(0.8 * num_steps), 0.1]]
    c.log_every = 25
    c.eval_every = 100
    c.checkpoint_every = 100
    c.keep_checkpoints = 2
    c.smoke = False
    return c


def smoke_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict(config.to_dict())
    c.smoke, c.num_steps, c.log_every, c.eval_every, c.checkpoint_every = True, 6, 2, 3, 3
    c.schedule = [[4, 0.5]]
    return c

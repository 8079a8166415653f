"""Optimizers of the paper: SGD with momentum (section 4.3) and a step-wise learning rate.

Section 4.3: "The initial learning rate was set to 0.001 and divided by 10 at 70 000 and 90 000
iterations", i.e. ``config.schedule = [[70_000, 0.1], [90_000, 0.1]]``. The learning rate used by
the update that starts from step t (t updates done, counted from 0) is

    lr(t) = learning_rate * prod(factor for (boundary, factor) in schedule if t >= boundary)

which is PyTorch's ``MultiStepLR`` stepped once per iteration.

SGD with momentum follows PyTorch's convention (the paper's models were trained in PyTorch):
``v <- mu v + (g + wd θ)``, ``θ <- θ - lr v`` (Nesterov: ``θ <- θ - lr (g + mu v)``); weight decay
is the coupled L2 form, added to the gradient before momentum. ``name="adam"`` (later TCN
experiments) is Adam with the same coupled weight decay (PyTorch ``Adam(weight_decay=...)``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax


def make_schedule(config) -> optax.Schedule:
    """``config.optimizer.learning_rate`` multiplied by each ``[step, factor]`` of ``config.schedule``."""
    scales: dict[int, float] = {}
    for entry in config.get("schedule", None) or []:
        if len(entry) != 2:
            raise ValueError(f"schedule entry {entry!r}: expected [step, factor]")
        step, factor = int(entry[0]), float(entry[1])
        if step < 0 or factor < 0:
            raise ValueError(f"schedule entry {entry!r}: step and factor must be non-negative")
        scales[step] = scales.get(step, 1.0) * factor  # two entries at one step multiply
    base = float(config.optimizer.learning_rate)
    boundaries = sorted(scales.items())

    # optax.piecewise_constant_schedule computes the same values, but mixes Python floats and
    # int32 counts (rejected under jax_numpy_dtype_promotion="strict") and turns an inf factor
    # into NaN before its boundary; this form has neither problem.
    def schedule(count):
        count = jnp.asarray(count)
        lr = jnp.asarray(base, jnp.float32)
        for boundary, factor in boundaries:
            lr = jnp.where(count >= boundary, lr * jnp.asarray(factor, jnp.float32), lr)
        return lr

    return schedule


def peak_learning_rate(config) -> float:
    """The largest learning rate :func:`make_schedule` gives over the run (inf if float32 overflows)."""
    schedule = make_schedule(config)
    steps = {0, *(int(entry[0]) for entry in config.get("schedule", None) or [])}
    with np.errstate(over="ignore"):  # a factor beyond float32 becomes inf here, as in training
        return max(float(schedule(step)) for step in steps)


def make_optimizer(config) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The optimizer named by ``config.optimizer.name`` ("sgd" | "adam"), and its LR schedule."""
    opt = config.optimizer
    schedule = make_schedule(config)
    name = opt.name.lower()
    if name == "sgd":
        momentum = float(opt.get("momentum", 0.0))
        core = optax.sgd(schedule, momentum=momentum or None, nesterov=bool(opt.get("nesterov", False)))
    elif name == "adam":
        core = optax.adam(
            schedule, b1=float(opt.get("b1", 0.9)), b2=float(opt.get("b2", 0.999)), eps=float(opt.get("eps", 1e-8))
        )
    else:
        raise ValueError(f"optimizer.name={opt.name!r}: unknown optimizer; choose 'sgd' or 'adam'")
    weight_decay = float(opt.get("weight_decay", 0.0))
    if weight_decay:
        return optax.chain(optax.add_decayed_weights(weight_decay), core), schedule
    return core, schedule

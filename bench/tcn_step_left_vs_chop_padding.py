"""Benchmark: the paper's left-only "smart zero-padding" (§6.2.1) against the original TCN's
pad-both-sides-and-chop, in the train step of the paper's SeqMNIST model.

Model: TCN (Single), 12 blocks, 32 channels, k = 6, d_b = 3b - 2, T = 784, dropout 0.05
(``jaxnets.models.tcn_model_config("single")``); the real jitted train step of
``jaxnets.train`` (forward, last-timestep loss, backward, SGD with momentum).

Variants (all give the same numbers; only the padding scheme differs):

* ``left  (custom)``   the package's path: ``jaxnets.layers.causal_conv1d`` (custom VJP),
                       pads d(k-1) zeros on the left only;
* ``left  (autodiff)`` ``reference.causal_conv1d``, the same padding, differentiated by JAX;
* ``chop  (autodiff)`` ``reference.causal_conv1d_chop``: pads d(k-1) on *both* sides, computes
                       T + d(k-1) outputs and drops the last d(k-1) (Bai et al.'s ``Chomp1d``).
                       Built by swapping that function into the autodiff op table while the step
                       is traced (see :func:`chop_padding`).

The padding comparison is ``chop (autodiff) / left (autodiff)``: same differentiation, only the
padding differs. Time: median seconds per step after compilation. Memory: XLA's compiled
``memory_analysis()`` of the train step -- ``temp_size_in_bytes`` (the buffers XLA allocates for
the step itself: activations kept for the backward pass, padded copies, scratch) beside the
argument/output sizes (the state and batch, equal across variants). That is XLA's static
buffer assignment, not a measured RSS. With PyTorch installed (optional), the same model in
PyTorch eager is timed with both paddings too (``bench/torch_tcn_models.py``; the issue reports
pad-both-and-chop taking 1.19x as long there).

    python bench/tcn_step_left_vs_chop_padding.py [--batch 100] [--steps 5] [--seq 784] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the checkout: experiments/
from experiments.tcn.common import tcn_base  # noqa: E402
from jaxnets import layers  # noqa: E402
from jaxnets.data import ArraySource  # noqa: E402
from jaxnets.layers import reference  # noqa: E402
from jaxnets.models import build_model, tcn_model_config  # noqa: E402
from jaxnets.tasks import ClassificationTask  # noqa: E402
from jaxnets.train import initial_state, make_mesh, make_optimizer, make_train_step, shard_batch  # noqa: E402


@contextlib.contextmanager
def chop_padding():
    """While active, ``get_ops("autodiff").causal_conv1d`` is the pad-both-and-chop reference."""
    ops = layers.get_ops("autodiff")
    saved = ops.causal_conv1d
    ops.causal_conv1d = reference.causal_conv1d_chop
    try:
        yield
    finally:
        ops.causal_conv1d = saved


def compiled_train_step(grad: str, chop: bool, batch: int, seq: int, block: str = "single"):
    """(compiled step, state, batch dict) for the paper's model on sequences of length ``seq``."""
    side = int(round(seq**0.5))
    if side * side != seq:
        raise ValueError(f"--seq must be a square (images side x side), got {seq}")
    config = tcn_base()
    config.model = tcn_model_config(block, grad=grad)
    config.batch_size = batch
    tx, schedule = make_optimizer(config)
    mesh = make_mesh(jax.devices()[:1])
    rng = np.random.default_rng(0)
    data = {"image": rng.integers(0, 256, (batch, 1, side, side), dtype=np.uint8),
            "label": rng.integers(0, 10, (batch,), dtype=np.int32)}
    task = ClassificationTask(model=build_model(config.model), train_data=ArraySource(data, batch, 0),
                              image_shape=(1, side, side), grad=grad, normalize=tuple(config.data.normalize))
    state = initial_state(task, tx, 0, mesh)
    batch_arrays = shard_batch(data, mesh)
    step = make_train_step(task, tx, mesh, schedule=schedule, donate=False)
    with chop_padding() if chop else contextlib.nullcontext():
        compiled = step.lower(state, batch_arrays).compile()  # traced (and the op chosen) here
    return compiled, state, batch_arrays


def measure(grad: str, chop: bool, batch: int, seq: int, steps: int, warmup: int = 1, block: str = "single") -> dict:
    """Median step time, compile time, XLA memory analysis and the loss of one variant."""
    t0 = time.perf_counter()
    compiled, state, data = compiled_train_step(grad, chop, batch, seq, block)
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    for _ in range(warmup):
        _, metrics = compiled(state, data)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        _, metrics = compiled(state, data)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    return {
        "step_s": statistics.median(times),
        "compile_s": compile_s,
        "temp_bytes": int(mem.temp_size_in_bytes),
        "argument_bytes": int(mem.argument_size_in_bytes),
        "output_bytes": int(mem.output_size_in_bytes),
        "loss": float(metrics["loss"]),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--seq", type=int, default=784, help="sequence length, a square (784 = 28x28)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch rows")
    p.add_argument("--json", help="also write the numbers to this file")
    args = p.parse_args(argv)

    print(f"TCN (Single) 12 blocks x 32 ch, k = 6, T = {args.seq}, batch {args.batch}; median of {args.steps} "
          f"steps; jax {jax.__version__} on {jax.devices()[0].device_kind}")
    res = {}
    for name, grad, chop in (("left (custom)", "custom", False), ("left (autodiff)", "autodiff", False),
                             ("chop (autodiff)", "autodiff", True)):
        r = res[name] = measure(grad, chop, args.batch, args.seq, args.steps)
        print(f"  jax {name:16s} {1000 * r['step_s']:9.1f} ms/step   temp {r['temp_bytes'] / 2**20:8.1f} MiB   "
              f"(args {r['argument_bytes'] / 2**20:.1f} MiB, out {r['output_bytes'] / 2**20:.1f} MiB, "
              f"compile {r['compile_s']:.1f} s, loss {r['loss']:.5f})")
    losses = [r["loss"] for r in res.values()]
    print(f"  same loss across variants: max difference {max(losses) - min(losses):.2e}")
    if not args.no_torch:
        try:
            import torch

            sys.path.insert(0, str(pathlib.Path(__file__).parent))
            from torch_tcn_models import time_torch_tcn_train_step

            for padding in ("left", "chop"):
                res[f"torch {padding}"] = {"step_s": time_torch_tcn_train_step(
                    "single", padding, args.batch, args.seq, args.steps)}
                print(f"  torch {padding:14s}  {1000 * res[f'torch {padding}']['step_s']:9.1f} ms/step   "
                      f"(torch {torch.__version__}, {torch.get_num_threads()} threads)")
        except ImportError as e:
            print(f"  torch: skipped ({e})")

    left, chop = res["left (autodiff)"], res["chop (autodiff)"]
    print(f"chop / left, jax autodiff: time {chop['step_s'] / left['step_s']:.3f}x, "
          f"temp memory {chop['temp_bytes'] / left['temp_bytes']:.3f}x")
    print(f"left custom / left autodiff: time {res['left (custom)']['step_s'] / left['step_s']:.3f}x, "
          f"temp memory {res['left (custom)']['temp_bytes'] / left['temp_bytes']:.3f}x")
    if "torch chop" in res:
        print(f"chop / left, torch eager: time {res['torch chop']['step_s'] / res['torch left']['step_s']:.3f}x "
              f"(issue: 1.19x)")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

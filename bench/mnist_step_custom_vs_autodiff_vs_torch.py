"""Benchmark: train-step time of the Table-1 CNN at batch 128 (issue: custom ≤ 1.05× autodiff).

Times the real jitted training step of ``jaxnets.train`` (forward, loss, backward, SGD with
momentum, BN running statistics) in ``grad="custom"`` (hand-derived VJPs) and
``grad="autodiff"`` (jax.grad of the references), and the same model in PyTorch CPU eager when
torch is installed (``pip install -e '.[torch]'``; skipped cleanly otherwise). Prints the
median time per step and the ratios. A benchmark, not a test: numbers depend on the machine.

    python bench/mnist_step_custom_vs_autodiff_vs_torch.py [--batch 128] [--steps 20] [--model mnist_cnn] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import jax
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the checkout: experiments/

from experiments.mnist.common import mnist_base  # noqa: E402
from jaxnets.data import ArraySource  # noqa: E402
from jaxnets.models import build_model  # noqa: E402
from jaxnets.tasks import ClassificationTask  # noqa: E402
from jaxnets.train import initial_state, make_mesh, make_optimizer, make_train_step, shard_batch  # noqa: E402


def time_jax_train_step(model_name: str, grad: str, batch: int, steps: int, warmup: int = 2) -> float:
    """Median seconds per jitted train step (compile excluded), on one random uint8 batch."""
    config = mnist_base()
    config.model.name = model_name
    config.model.grad = grad
    config.batch_size = batch
    rng = np.random.default_rng(0)
    data = {"image": rng.integers(0, 256, (batch, 1, 28, 28), dtype=np.uint8),
            "label": rng.integers(0, 10, (batch,), dtype=np.int32)}
    task = ClassificationTask(model=build_model(config.model), train_data=ArraySource(data, batch, 0),
                              image_shape=(1, 28, 28), grad=grad)
    tx, schedule = make_optimizer(config)
    mesh = make_mesh()
    step = make_train_step(task, tx, mesh, schedule=schedule)
    state = initial_state(task, tx, config.seed, mesh)
    batch_arrays = shard_batch(data, mesh)
    for _ in range(warmup):
        state, metrics = step(state, batch_arrays)
    jax.block_until_ready(metrics)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        state, metrics = step(state, batch_arrays)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--model", default="mnist_cnn", choices=["mnist_cnn", "mnist_ffn"])
    p.add_argument("--json", help="also write the numbers to this file")
    args = p.parse_args(argv)

    print(f"{args.model}, batch {args.batch}, median of {args.steps} steps; "
          f"jax {jax.__version__} on {jax.devices()[0].device_kind} x{jax.device_count()}")
    res = {}
    for grad in ("custom", "autodiff"):
        res[grad] = time_jax_train_step(args.model, grad, args.batch, args.steps)
        print(f"  jax {grad:8s} {1000 * res[grad]:9.1f} ms/step")
    try:
        import torch

        sys.path.insert(0, str(pathlib.Path(__file__).parent))
        from torch_mnist_models import time_torch_train_step

        if args.model != "mnist_cnn":
            raise ImportError("the PyTorch comparison is written for the CNN only")
        res["torch"] = time_torch_train_step(args.batch, args.steps)
        print(f"  torch eager  {1000 * res['torch']:9.1f} ms/step  (torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads)")
    except ImportError as e:
        print(f"  torch: skipped ({e})")

    ratio = res["custom"] / res["autodiff"]
    print(f"custom / autodiff = {ratio:.3f}  (target <= 1.05: {'met' if ratio <= 1.05 else 'NOT met'})")
    if "torch" in res:
        print(f"jax autodiff / torch = {res['autodiff'] / res['torch']:.2f}")
        print(f"jax custom / torch   = {res['custom'] / res['torch']:.2f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({k: v for k, v in res.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

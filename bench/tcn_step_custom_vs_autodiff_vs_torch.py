"""Benchmark: the JAX train step of the paper's SeqMNIST TCNs against the same models in PyTorch.

For each block type (Single, Double, Radical; 24 convolutions, 32 channels, k = 6, T = 784),
times the real jitted train step of ``jaxnets.train`` in ``grad="custom"`` (hand-derived VJPs)
and ``grad="autodiff"``, and the same network in PyTorch CPU eager (``bench/torch_tcn_models.py``,
left-only padding, SGD with momentum, loss on the last timestep). Before timing, the PyTorch
model is loaded with the JAX model's parameters and both forward passes are compared, so the two
are the same function (the max difference is printed). PyTorch is optional: without it the
script prints the JAX rows and says the PyTorch ones were skipped.

    python bench/tcn_step_custom_vs_autodiff_vs_torch.py [--batch 100] [--steps 5] [--seq 784] [--blocks single,double,radical]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from tcn_step_left_vs_chop_padding import measure  # noqa: E402

from jaxnets.models import build_model, tcn_model_config  # noqa: E402


def same_function(block: str, seq: int) -> tuple[float, float]:
    """(max |JAX - PyTorch|, max |JAX|) of the inference logits on random input, both models
    holding the same parameters: the JAX initialisation plus N(0, 0.05²) noise (at initialisation
    alone the logits are ~1e-8 and any comparison would pass)."""
    import torch
    from torch_tcn_models import build_torch_tcn, load_jax_params

    model = build_model(tcn_model_config(block))
    x = np.random.default_rng(0).random((4, 1, seq)).astype(np.float32)
    params = model.init({"params": jax.random.PRNGKey(0)}, jnp.asarray(x))["params"]
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    params = treedef.unflatten([a + 0.05 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)])
    ours = np.asarray(model.apply({"params": params}, jnp.asarray(x)))
    theirs = build_torch_tcn(block)
    load_jax_params(theirs, params)
    theirs.eval()
    with torch.no_grad():
        return float(np.abs(ours - theirs(torch.from_numpy(x)).numpy()).max()), float(np.abs(ours).max())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--seq", type=int, default=784, help="sequence length, a square (784 = 28x28)")
    p.add_argument("--blocks", default="single,double,radical")
    p.add_argument("--json", help="also write the numbers to this file")
    args = p.parse_args(argv)
    try:
        import torch

        from torch_tcn_models import time_torch_tcn_train_step
    except ImportError as e:
        torch = None
        print(f"torch: skipped ({e}); timing JAX only")

    print(f"paper SeqMNIST TCNs, T = {args.seq}, batch {args.batch}, median of {args.steps} steps; "
          f"jax {jax.__version__} on {jax.devices()[0].device_kind}"
          + (f"; torch {torch.__version__} eager, {torch.get_num_threads()} threads" if torch else ""))
    res = {}
    for block in args.blocks.split(","):
        r = res[block] = {}
        if torch is not None:
            diff, scale = same_function(block, args.seq)
            print(f"  {block}: JAX vs PyTorch forward, same parameters: max |diff| {diff:.2e} "
                  f"(logits up to {scale:.2f})")
        for grad in ("custom", "autodiff"):
            r[f"jax {grad}"] = measure(grad, False, args.batch, args.seq, args.steps, block=block)["step_s"]
        if torch is not None:
            r["torch"] = time_torch_tcn_train_step(block, "left", args.batch, args.seq, args.steps)
        line = "   ".join(f"{k} {1000 * v:8.1f} ms" for k, v in r.items())
        print(f"  {block:8s} {line}")
        if "torch" in r:
            print(f"  {block:8s} jax custom / torch = {r['jax custom'] / r['torch']:.2f}   "
                  f"jax autodiff / torch = {r['jax autodiff'] / r['torch']:.2f}   "
                  f"custom / autodiff = {r['jax custom'] / r['jax autodiff']:.2f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

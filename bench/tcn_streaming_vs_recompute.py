"""Benchmark: streaming inference (one timestep in, one output out) against recomputing the prefix.

Model: the paper's SeqMNIST TCN (default Single: 12 blocks x 32 ch, k = 6, d_b = 3b - 2),
random initialisation (timing only), a 784-step input. The task: produce the output at every
timestep t = 1..784, as an online classifier must (it may be asked for a prediction after any
pixel).

* ``stream step``: ``jaxnets.models.streaming.stream_step`` jitted, called once per timestep from
  Python with a ``block_until_ready`` (online latency); per-step cost is the median call, total
  the sum over the 784 calls.
* ``stream scan``: ``stream_sequence`` (``lax.scan`` over the 784 steps) in one jitted call.
* ``recompute``: for every t, run the whole network on the prefix x[..., :t] and keep the last
  output. To avoid 784 compilations the prefix is right-padded with zeros to the next multiple of
  ``--bucket`` (49 by default: 16 programs) -- by causality the outputs up to t do not depend on the
  padding. Per-step cost at t = 784 (a full forward pass) and the total over all t, measured.
* ``one pass``: the whole sequence once, all 784 outputs (only possible offline, when the whole
  input is known) -- the floor for comparison.

The streamed outputs are checked against the full forward pass (max |diff| printed).

    python bench/tcn_streaming_vs_recompute.py [--batch 1] [--block single] [--seq 784] [--bucket 49] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.models import build_model, tcn_model_config
from jaxnets.models.streaming import init_stream, stream_params, stream_sequence, stream_step


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--block", default="single", choices=["single", "double", "radical"])
    p.add_argument("--seq", type=int, default=784)
    p.add_argument("--bucket", type=int, default=49)
    p.add_argument("--json", help="also write the numbers to this file")
    args = p.parse_args(argv)
    T, R = args.seq, args.batch

    model = build_model(tcn_model_config(args.block))
    xs = jnp.asarray(np.random.default_rng(0).random((R, 1, T), np.float32))  # (R, 1, T)
    variables = model.init({"params": jax.random.PRNGKey(0)}, xs)
    tcn_params = {"params": variables["params"]["tcn"]}
    full = jax.jit(lambda x: model.tcn.apply(tcn_params, x))  # (R, 1, L) -> (R, K, L): every output
    sp = stream_params(model, variables)
    print(f"TCN ({args.block}) {model.tcn.num_blocks} blocks x {model.tcn.channels} ch, k = {model.tcn.kernel_size}, "
          f"T = {T}, batch {R}; jax {jax.__version__} on {jax.devices()[0].device_kind}")
    res = {}

    # one pass over the whole sequence (offline floor) -- and the reference outputs
    ref = jax.block_until_ready(full(xs))
    res["one_pass_total_s"] = statistics.median(_timed(full, xs)[1] for _ in range(5))

    # streaming, one jitted step per timestep
    step = jax.jit(stream_step)
    state = init_stream(sp, R)
    jax.block_until_ready(step(sp, state, xs[:, :, 0]))  # compile
    outs, per_step = [], []
    for t in range(T):
        (y, state), dt = _timed(step, sp, state, xs[:, :, t])
        outs.append(y)
        per_step.append(dt)
    stream_out = jnp.stack(outs, axis=2)  # (R, K, T)
    res["stream_step_median_s"] = statistics.median(per_step)
    res["stream_step_total_s"] = sum(per_step)
    res["stream_vs_full_max_abs_diff"] = float(jnp.max(jnp.abs(stream_out - ref)))

    scan = jax.jit(lambda x: stream_sequence(sp, x)[0])
    jax.block_until_ready(scan(xs))
    res["stream_scan_total_s"] = statistics.median(_timed(scan, xs)[1] for _ in range(3))

    # recompute the prefix for every t (right-padded to the next bucket: one program per bucket)
    b = args.bucket
    lengths = sorted({min(T, -(-t // b) * b) for t in range(1, T + 1)})
    for L in lengths:  # compile every bucket first; compilation is not part of the per-step cost
        jax.block_until_ready(full(jnp.zeros((R, 1, L), jnp.float32)))
    recompute, worst = [], None
    max_diff = 0.0
    for t in range(1, T + 1):
        L = min(T, -(-t // b) * b)
        prefix = jnp.pad(xs[:, :, :t], ((0, 0), (0, 0), (0, L - t)))  # zeros after t: never read by output t
        y, dt = _timed(full, prefix)
        recompute.append(dt)
        if t % b == 0 or t == T:
            max_diff = max(max_diff, float(jnp.max(jnp.abs(y[:, :, t - 1] - ref[:, :, t - 1]))))
    res["recompute_total_s"] = sum(recompute)
    res["recompute_step_at_T_s"] = statistics.median(_timed(full, xs)[1] for _ in range(5))
    res["recompute_step_median_s"] = statistics.median(recompute)
    res["recompute_vs_full_max_abs_diff"] = max_diff

    ms = lambda s: f"{1000 * s:9.2f} ms"  # noqa: E731
    print(f"  outputs: streamed vs full pass max |diff| {res['stream_vs_full_max_abs_diff']:.2e}; "
          f"recomputed vs full {max_diff:.2e}")
    print(f"  per step   stream step {ms(res['stream_step_median_s'])}   recompute at t = {T} "
          f"{ms(res['recompute_step_at_T_s'])}   (median over t: {ms(res['recompute_step_median_s'])})")
    print(f"  all {T}    stream step {ms(res['stream_step_total_s'])}   stream scan {ms(res['stream_scan_total_s'])}   "
          f"recompute {ms(res['recompute_total_s'])}   one offline pass {ms(res['one_pass_total_s'])}")
    print(f"per-step speed-up at t = {T}: {res['recompute_step_at_T_s'] / res['stream_step_median_s']:.1f}x; "
          f"total speed-up (recompute / stream step) {res['recompute_total_s'] / res['stream_step_total_s']:.1f}x, "
          f"(recompute / stream scan) {res['recompute_total_s'] / res['stream_scan_total_s']:.1f}x")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Check every hand-derived backward pass three ways, in float64, over a sweep of awkward cases.

For each layer and case: (1) the custom forward equals the reference forward, (2) the custom
VJP equals ``jax.vjp`` of the plain-``jnp`` reference (``jaxnets.layers.reference``), (3) the
custom VJP agrees with central finite differences of a random linear functional
``phi(out) = <u, f(args)>`` along random directions, and for conv / pool / causal conv (4)
the shape that ``conv_output_shape`` / ``pool_output_shape`` / ``causal_conv1d_output_shape``
predicts equals the actual one.

The sweep covers batch 1 and > 1, odd spatial sizes, 1 and many channels, kernels 1-5,
strides 1-3 (including stride > kernel), paddings 0-2 (including asymmetric), overlapping
pooling windows and max-pool ties (autodiff only: the max is not differentiable at a tie);
for the temporal layers of section 6, causal kernels 1-6, dilations 1-8 (including a
causal reach ``d(k - 1) >= T``), strides 1-2, weight-normalised kernels of rank 2-4, and
dropout with a fixed key (train, rate 0, deterministic); for the detector of section 5,
bilinear upsampling (factors 1-4, unequal, sizes 1 and odd) and the per-anchor losses (both
branches of smooth L1, saturated logits, soft targets, focal γ = 0-3).

``run_gradcheck()`` returns one ``Row`` per layer; ``format_table`` prints them; ``main``
(called by ``jaxnets gradcheck``) prints the table and returns 1 if anything fails.

The paper's printed (erroneous) formulas are at the end (``printed_*``); the tests use them
to show that they disagree with autodiff or leak the future (docs/derivations.md, Errata).
"""

from __future__ import annotations

import argparse
import functools
import time
import zlib
from dataclasses import dataclass, field
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets import layers as L
from jaxnets.layers import reference as R

__all__ = [
    "Case",
    "CaseResult",
    "Row",
    "CASES",
    "check_case",
    "checker",
    "run_gradcheck",
    "format_table",
    "main",
    "printed_dense_bwd",
    "printed_batch_norm_bwd",
    "printed_softmax_bwd",
    "printed_max_pool2d_bwd",
    "printed_conv_output_size",
    "printed_causal_conv1d",
]

# Tolerances (float64).  Custom vs autodiff differ only by summation order.
TOL_FWD = 1e-12
TOL_AUTODIFF = 1e-10
TOL_FD = 1e-6
FD_STEP = 1e-5
FD_DIRECTIONS = 3


# ------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Case:
    """One check: ``layer(*arrays, **static)``.

    ``args`` are ``(shape, kind)`` pairs for the array arguments, all differentiated; kind is
    ``normal``; ``wide`` (normal times 2.5); ``unit`` (uniform in [0, 1]: soft targets);
    ``separated`` (distinct values >= 0.01 apart, so finite differences never
    cross a max-pool switch); ``away0`` (``|x| >= 0.05``, clear of ReLU's kink); ``prob``
    (rows are softmax probabilities); ``const`` / ``ties`` (max-pool ties: all equal / small
    integers).  ``fd=False`` skips finite differences (non-differentiable points).
    A PRNG ``key`` in ``static`` (dropout) is an int seed (see ``_static_kwargs``).
    """

    layer: str
    args: tuple
    static: tuple = ()
    fd: bool = True
    label: str = ""


def _conv_cases():
    cases = []
    # (R, C, H, W, C', kh, kw, stride, padding)
    grid = [
        (1, 1, 5, 5, 1, 1, 1, 1, 0),
        (2, 3, 7, 6, 4, 1, 1, 3, 0),  # 1x1 kernel, stride > kernel
        (1, 2, 7, 7, 3, 2, 2, 1, 1),
        (2, 1, 6, 5, 2, 2, 2, 3, 0),  # stride > kernel
        (1, 3, 9, 8, 2, 2, 3, 2, ((0, 1), (2, 0))),  # asymmetric padding
        (2, 2, 7, 7, 3, 3, 3, 1, 1),
        (1, 1, 7, 9, 1, 3, 3, 2, 0),  # (H - k) % s == 0, W not
        (2, 3, 8, 8, 2, 3, 3, 2, 1),  # rows left unread at bottom/right
        (1, 2, 6, 7, 2, 3, 2, 3, ((2, 1), (1, 0))),
        (3, 2, 9, 9, 1, 4, 4, 1, 2),
        (1, 1, 10, 9, 3, 4, 4, 3, ((1, 2), (0, 2))),
        (2, 2, 11, 7, 2, 5, 5, 2, 2),
        (1, 4, 9, 10, 3, 5, 3, (1, 3), ((0, 2), (1, 1))),
        (2, 1, 5, 5, 2, 5, 5, 1, 0),  # kernel == input: 1x1 output
        (1, 2, 3, 4, 2, 5, 4, 2, ((1, 1), (0, 0))),  # kernel == padded input
        (1, 3, 8, 6, 5, 3, 1, (3, 1), ((0, 0), (2, 2))),
    ]
    for r, c, h, w, co, kh, kw, s, p in grid:
        label = f"x{(r, c, h, w)} w{(co, c, kh, kw)} s={s} p={p}"
        args = (((r, c, h, w), "normal"), ((co, c, kh, kw), "normal"), ((co,), "normal"))
        cases.append(Case("conv2d", args, (("stride", s), ("padding", p)), True, label))
    return cases


def _pool_cases():
    cases = []
    # (R, C, H, W, kernel, stride)
    grid = [
        (1, 1, 4, 4, 2, 2),
        (2, 3, 7, 7, 2, 2),  # odd: last row/col unread
        (1, 2, 7, 6, 3, 2),  # overlapping
        (2, 1, 5, 5, 3, 1),  # heavily overlapping
        (1, 3, 8, 7, 2, 3),  # stride > kernel
        (1, 1, 9, 9, 1, 2),  # 1x1 kernel
        (2, 2, 9, 8, 4, 3),
        (1, 2, 6, 9, (3, 2), (1, 3)),
        (1, 1, 5, 5, 5, 1),  # kernel == input
    ]
    for r, c, h, w, k, s in grid:
        label = f"x{(r, c, h, w)} k={k} s={s}"
        static = (("kernel", k), ("stride", s))
        cases.append(Case("max_pool2d", (((r, c, h, w), "separated"),), static, True, label))
    for r, c, h, w, k, s, kind in [
        (2, 2, 6, 6, 2, 2, "const"),
        (1, 2, 7, 7, 3, 2, "const"),
        (2, 3, 8, 7, 3, 1, "ties"),
        (1, 1, 9, 9, (2, 3), (2, 1), "ties"),
    ]:
        label = f"x{(r, c, h, w)} k={k} s={s} {kind} (ties, autodiff only)"
        static = (("kernel", k), ("stride", s))
        cases.append(Case("max_pool2d", (((r, c, h, w), kind),), static, False, label))
    return cases


def _other_cases():
    cases = []
    for n_in, n_out, lead in [(1, 1, (1,)), (5, 3, (4,)), (6, 7, (1,)), (3, 4, (2, 3))]:
        args = ((lead + (n_in,), "normal"), ((n_in, n_out), "normal"), ((n_out,), "normal"))
        cases.append(Case("dense", args, (), True, f"x{lead + (n_in,)} w{(n_in, n_out)}"))
    for name in ("relu", "sigmoid", "tanh"):
        kind = "away0" if name == "relu" else "normal"
        for shape in [(1, 1, 3, 3), (2, 3, 5, 4), (4, 7)]:
            cases.append(Case(name, ((shape, kind),), (), True, f"x{shape}"))
    for shape, eps in [((2, 3, 5, 4), 1e-5), ((1, 1, 3, 5), 1e-5), ((4, 1, 1, 1), 1e-3),
                       ((5, 6), 1e-5), ((2, 1), 1e-2), ((1, 4), 1e-5)]:
        c = shape[1]
        args = ((shape, "normal"), ((c,), "normal"), ((c,), "normal"))
        cases.append(Case("batch_norm", args, (("eps", eps),), True, f"x{shape} eps={eps}"))
    for shape in [(2, 3, 4, 5), (3, 4)]:
        c = shape[1]
        args = ((shape, "normal"), ((c,), "normal"), ((c,), "normal"), ((c,), "normal"),
                ((c,), "positive"))
        cases.append(Case("batch_norm_inference", args, (("eps", 1e-5),), True, f"x{shape}"))
    args = (((3,), "normal"), ((3,), "positive"), ((3,), "normal"), ((3,), "positive"))
    cases.append(Case("update_running_stats", args, (("momentum", 0.1),), True, "C=3"))
    for shape in [(1, 1), (1, 5), (4, 10), (2, 3, 6)]:
        cases.append(Case("softmax", ((shape, "normal"),), (), True, f"x{shape}"))
    for shape in [(1, 2), (4, 10)]:
        cases.append(Case("cross_entropy", ((shape, "prob"), (shape, "prob")), (), True,
                          f"p{shape}"))
        cases.append(Case("softmax_cross_entropy", ((shape, "normal"), (shape, "prob")), (),
                          True, f"logits{shape}"))
        cases.append(Case("mse", ((shape, "normal"), (shape, "normal")), (), True, f"y{shape}"))
    cases.append(Case("softmax_cross_entropy", (((3, 5), "normal"), ((3, 5), "normal")), (),
                      True, "logits(3, 5), y not normalised"))
    return cases


def _temporal_cases():
    """Section 6: causal_conv1d (eqs 63-64), weight_norm and dropout (§6.3.3)."""
    cases = []
    # (R, C, T, C', k, d, s); "reach" = d(k - 1), the causal left padding
    grid = [
        (1, 1, 5, 1, 1, 1, 1),  # k = 1: no padding
        (2, 3, 9, 4, 2, 8, 2),
        (1, 2, 7, 3, 3, 4, 2),  # reach 8 > T = 7; (T - 1) % s == 0
        (3, 1, 11, 2, 3, 2, 1),
        (1, 4, 12, 3, 4, 1, 2),  # even T, s = 2: no window ends on the last input
        (2, 2, 7, 3, 5, 5, 1),  # reach 20 >> T
        (1, 1, 15, 2, 6, 3, 2),
        (2, 5, 5, 6, 6, 7, 1),  # reach 35: only the last tap ever sees data
        (1, 3, 9, 2, 2, 6, 1),
    ]
    for r, c, t, co, k, d, s in grid:
        label = f"x{(r, c, t)} w{(co, c, k)} d={d} s={s}"
        args = (((r, c, t), "normal"), ((co, c, k), "normal"), ((co,), "normal"))
        cases.append(Case("causal_conv1d", args, (("dilation", d), ("stride", s)), True, label))
    for v in [(1, 1, 1), (4, 3, 5), (2, 7), (3, 2, 3, 3)]:
        args = ((v, "normal"), ((v[0],), "normal"))
        cases.append(Case("weight_norm", args, (), True, f"v{v} g{(v[0],)}"))
    for shape, rate, det in [((2, 3, 9), 0.2, False), ((1, 1, 7), 0.5, False),
                             ((4, 5), 0.0, False), ((2, 3, 5), 0.3, True)]:
        static = (("rate", rate), ("key", 7), ("deterministic", det))
        cases.append(Case("dropout", ((shape, "normal"),), static, True,
                          f"x{shape} rate={rate} deterministic={det}"))
    return cases


def _detector_cases():
    """Section 5: bilinear ×f (H or W of 1, odd sizes, f = 1-4, unequal factors) and the
    per-anchor losses (smooth L1 on both branches, soft targets in [0, 1], focal γ = 0-3)."""
    cases = []
    for shape, f in [((1, 1, 1, 1), 2), ((2, 3, 4, 5), 2), ((1, 2, 3, 7), 3),
                     ((1, 1, 2, 3), (2, 3)), ((2, 1, 5, 2), 4), ((1, 2, 3, 3), 1),
                     ((1, 1, 1, 6), 2)]:
        cases.append(Case("upsample_bilinear", ((shape, "normal"),), (("factor", f),), True,
                          f"x{shape} factor={f}"))
    for shape in [(1, 1), (2, 7, 4)]:
        cases.append(Case("smooth_l1", ((shape, "wide"),), (), True, f"x{shape}"))
    for ra in [(1, 1), (2, 9)]:
        cases.append(Case("two_class_softmax_cross_entropy", ((ra + (2,), "wide"), (ra, "unit")),
                          (), True, f"logits{ra + (2,)}"))
        cases.append(Case("sigmoid_binary_cross_entropy", ((ra, "wide"), (ra, "unit")), (), True,
                          f"logits{ra}"))
    for ra, gamma in [((1, 1), 0.0), ((2, 9), 0.5), ((2, 9), 2.0), ((3, 5), 3.0)]:
        cases.append(Case("sigmoid_focal_loss", ((ra, "wide"), (ra, "unit")),
                          (("gamma", gamma),), True, f"logits{ra} gamma={gamma}"))
    return cases


CASES: tuple[Case, ...] = tuple(
    _conv_cases() + _pool_cases() + _other_cases() + _temporal_cases() + _detector_cases()
)


# ----------------------------------------------------------------------------- checking
def _random_array(rng: np.random.Generator, shape, kind: str) -> np.ndarray:
    if kind == "normal":
        return rng.normal(size=shape)
    if kind == "positive":
        return rng.uniform(0.5, 2.0, size=shape)
    if kind == "away0":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.05, 2.0, size=shape)
    if kind == "separated":
        n = int(np.prod(shape))
        return (rng.permutation(n) * 0.05 + rng.uniform(0, 0.01, size=n)).reshape(shape) - 1.0
    if kind == "prob":
        z = 0.5 * rng.normal(size=shape)  # no tiny probabilities: log p stays well-conditioned
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    if kind == "wide":  # both branches of smooth L1, saturated logits
        return 2.5 * rng.normal(size=shape)
    if kind == "unit":  # soft targets p in [0, 1]
        return rng.uniform(0.0, 1.0, size=shape)
    if kind == "const":
        return np.full(shape, 0.5)
    if kind == "ties":
        return rng.integers(0, 3, size=shape).astype(np.float64)
    raise ValueError(f"unknown kind {kind!r}")


@functools.lru_cache(maxsize=None)
def checker(layer: str, static: tuple = ()):
    """Jitted ``(vjps, phi)`` for one layer of ``get_ops("custom")`` and static arguments,
    cached so that cases (and tests) with the same layer, statics and shapes compile once.

    ``vjps(args, cot) -> (custom out, reference out, custom VJP, reference VJP)``;
    ``phi(cot, args) = <cot, custom(args)>``, the linear functional that finite differences
    differentiate (kept separate: a forward pass compiles much faster than a vmapped one).
    """
    return _build_checker(getattr(L.get_ops("custom"), layer), layer, static)


def _static_kwargs(static: tuple) -> dict:
    """``Case.static`` as keyword arguments; a ``key`` (dropout) is stored as an int seed,
    which keeps cases hashable, and becomes a PRNG key here.  It is an ``rbg`` key: the rule
    under test does not depend on how the mask was drawn, and on CPU ``rbg`` compiles in a
    fraction of the time of the default threefry (the tests use default keys)."""
    kw = dict(static)
    if "key" in kw:
        kw["key"] = jax.random.key(kw["key"], impl="rbg")
    return kw


def _build_checker(custom_fn, layer: str, static: tuple):
    kw = _static_kwargs(static)
    fc = functools.partial(custom_fn, **kw)
    fr = functools.partial(getattr(L.get_ops("autodiff"), layer), **kw)

    def vjps(args, cot):
        yc, vjp_c = jax.vjp(fc, *args)
        yr, vjp_r = jax.vjp(fr, *args)
        return yc, yr, vjp_c(cot), vjp_r(cot)

    def phi(cot, args):
        out = jax.tree.leaves(fc(*args))
        return sum(jnp.vdot(u, y) for u, y in zip(jax.tree.leaves(cot), out))

    return jax.jit(vjps), jax.jit(phi)


def _finite_differences(phi, cot, args, grads, dirs):
    """Central differences of ``phi`` along each direction, and the VJP's prediction
    ``<grads, v>`` for it (NumPy, float64)."""
    fd, an = [], []
    for k in range(FD_DIRECTIONS):
        v = [d[k] for d in dirs]
        plus = [a + FD_STEP * d for a, d in zip(args, v)]
        minus = [a - FD_STEP * d for a, d in zip(args, v)]
        fd.append((float(phi(cot, plus)) - float(phi(cot, minus))) / (2 * FD_STEP))
        an.append(sum(float(np.vdot(g, d)) for g, d in zip(grads, v)))
    return np.array(fd), np.array(an)


@dataclass
class CaseResult:
    case: Case
    fwd_err: float
    abs_err: float  # max |custom VJP - autodiff VJP|
    rel_err: float  # abs_err / max |autodiff VJP|
    fd_rel_err: float  # max |<custom VJP, v> - FD| / max(|FD|, |<VJP, v>|, 1e-8)
    shape_ok: bool
    passed: bool = field(init=False)

    def __post_init__(self):
        self.passed = bool(
            self.fwd_err <= TOL_FWD
            and self.rel_err <= TOL_AUTODIFF
            and self.fd_rel_err <= TOL_FD
            and self.shape_ok
        )


def _max_abs(a) -> float:
    leaves = [np.abs(np.asarray(x)).max() if np.size(x) else 0.0 for x in jax.tree.leaves(a)]
    return float(max(leaves, default=0.0))


def _predicted_shape(case: Case, arg_shapes):
    kw = dict(case.static)
    if case.layer == "conv2d":
        return L.conv_output_shape(arg_shapes[0], arg_shapes[1], kw["stride"], kw["padding"])
    if case.layer == "max_pool2d":
        return L.pool_output_shape(arg_shapes[0], kw["kernel"], kw["stride"])
    if case.layer == "upsample_bilinear":
        (r, c, h, w), f = arg_shapes[0], np.broadcast_to(kw["factor"], 2)
        return (r, c, int(f[0]) * h, int(f[1]) * w)
    if case.layer == "causal_conv1d":
        return L.causal_conv1d_output_shape(arg_shapes[0], arg_shapes[1], kw["dilation"],
                                            kw["stride"])
    return None


def _stable_hash(*parts: str) -> int:
    """A per-case seed that, unlike ``hash``, does not change between Python processes."""
    return zlib.crc32("|".join(parts).encode())


def check_case(case: Case, seed: int = 0, custom_fn=None) -> CaseResult:
    """Run one case in float64 (enables x64 for the duration).  ``custom_fn`` replaces
    ``get_ops("custom")``'s function for ``case.layer`` (uncached; used to test the checker)."""
    with jax.enable_x64(True):
        rng = np.random.default_rng([seed, _stable_hash(case.layer, case.label)])
        # NumPy in, NumPy out: the only compilation is the one jitted check per case.
        args = [_random_array(rng, shape, kind) for shape, kind in case.args]
        fr = functools.partial(getattr(R, case.layer), **_static_kwargs(case.static))
        out_shapes = jax.eval_shape(fr, *args)
        cot = jax.tree.map(lambda s: rng.normal(size=s.shape), out_shapes)
        dirs = [rng.normal(size=(FD_DIRECTIONS,) + a.shape) for a in args]
        if custom_fn is None:
            vjps, phi = checker(case.layer, case.static)
        else:
            vjps, phi = _build_checker(custom_fn, case.layer, case.static)
        yc, yr, gc, gr = jax.tree.map(np.asarray, vjps(args, cot))
        scale = max(_max_abs(yr), 1e-8)
        fwd_err = _max_abs(jax.tree.map(np.subtract, yc, yr)) / scale
        abs_err = _max_abs(jax.tree.map(np.subtract, gc, gr))
        rel_err = abs_err / max(_max_abs(gr), 1e-8)
        fd_rel = 0.0
        if case.fd:
            fd_vals, an_vals = _finite_differences(phi, cot, args, gc, dirs)
            denom = np.maximum(np.maximum(np.abs(fd_vals), np.abs(an_vals)), 1e-8)
            fd_rel = float(np.max(np.abs(fd_vals - an_vals) / denom))
        predicted = _predicted_shape(case, [a.shape for a in args])
        shape_ok = predicted is None or tuple(predicted) == tuple(np.shape(yc))
        return CaseResult(case, fwd_err, abs_err, rel_err, fd_rel, shape_ok)


@dataclass(frozen=True)
class Row:
    """One line of the table: the worst errors over a layer's cases."""

    layer: str
    n_cases: int
    max_abs_err: float
    max_rel_err: float
    max_fd_rel_err: float
    max_fwd_err: float
    shapes_ok: bool
    passed: bool
    failures: tuple[str, ...] = ()


def run_gradcheck(layers: Sequence[str] | None = None, seed: int = 0,
                  cases: Sequence[Case] | None = None) -> list[Row]:
    """Check ``layers`` (default: all of ``jaxnets.layers.OP_NAMES``) over ``cases``
    (default: ``CASES``) in float64; return one ``Row`` per layer, in ``OP_NAMES`` order."""
    names = list(L.OP_NAMES) if layers is None else list(layers)
    unknown = [n for n in names if n not in L.OP_NAMES]
    if unknown:
        raise ValueError(f"layers: unknown layer(s) {unknown}; choose from {L.OP_NAMES}")
    cases = CASES if cases is None else cases
    rows = []
    for name in names:
        results = [check_case(c, seed) for c in cases if c.layer == name]
        if not results:
            continue
        rows.append(Row(
            layer=name,
            n_cases=len(results),
            max_abs_err=max(r.abs_err for r in results),
            max_rel_err=max(r.rel_err for r in results),
            max_fd_rel_err=max(r.fd_rel_err for r in results),
            max_fwd_err=max(r.fwd_err for r in results),
            shapes_ok=all(r.shape_ok for r in results),
            passed=all(r.passed for r in results),
            failures=tuple(r.case.label for r in results if not r.passed),
        ))
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """A fixed-width text table of ``rows``; failing cases are listed under it."""
    head = ("layer", "cases", "fwd rel", "vjp-ad abs", "vjp-ad rel", "vjp-FD rel", "shapes",
            "result")
    wl = max([22] + [len(r.layer) for r in rows])  # the layer column fits the longest name
    lines = [
        f"{head[0]:<{wl}} {head[1]:>5} {head[2]:>9} {head[3]:>10} {head[4]:>10} {head[5]:>10} "
        f"{head[6]:>6}  {head[7]}"
    ]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append(
            f"{r.layer:<{wl}} {r.n_cases:>5} {r.max_fwd_err:>9.1e} {r.max_abs_err:>10.1e} "
            f"{r.max_rel_err:>10.1e} {r.max_fd_rel_err:>10.1e} {'ok' if r.shapes_ok else 'BAD':>6}"
            f"  {'PASS' if r.passed else 'FAIL'}"
        )
    for r in rows:
        for label in r.failures:
            lines.append(f"FAIL {r.layer}: {label}")
    lines.append(
        f"float64; tolerances: fwd {TOL_FWD:g}, custom vs autodiff {TOL_AUTODIFF:g} (rel), "
        f"vs central differences {TOL_FD:g} (rel, step {FD_STEP:g}, {FD_DIRECTIONS} directions)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``jaxnets gradcheck [--layers conv2d,max_pool2d] [--seed 0]``: print the table; exit
    code 1 if any check fails."""
    parser = argparse.ArgumentParser(prog="jaxnets gradcheck", description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default=None,
                        help=f"comma-separated subset of {','.join(L.OP_NAMES)}")
    parser.add_argument("--seed", type=int, default=0)
    ns = parser.parse_args(list(argv) if argv is not None else None)
    layers = ns.layers.split(",") if ns.layers else None
    t0 = time.perf_counter()
    rows = run_gradcheck(layers, ns.seed)
    print(format_table(rows))
    print(f"{sum(r.n_cases for r in rows)} cases in {time.perf_counter() - t0:.1f} s")
    return 0 if all(r.passed for r in rows) else 1


# ------------------------------------------------------------ the paper's printed formulas
def printed_dense_bwd(x, w, b, delta, activation: str = "sigmoid"):
    """Eqs 15, 17, 18 exactly as printed, for ``X^(l+1) = f(X W + b)``.

    x: (R, N), w: (N, N') in our layout (the paper's ``W_{j,i}`` is ``w[i, j]``), b: (N',),
    delta = dL/dX^(l+1): (R, N').  The printed indices only type-check when ``N == N'``:

    * eq 15: ``delta_ri = sum_j delta_rj f'(Z_ri) W_ji``  (f' at the *input* index i);
    * eq 17: ``dL/dW_ji = sum_r delta_ri f'(Z_ri) X_ri``  (no j anywhere on the right);
    * eq 18: ``dL/db_i = sum_r delta_ri f'(Z_ri)``       (correct).

    Returns ``(dx, dw, db)`` shaped like ``(x, w, b)``.
    """
    z = x @ w + b
    fprime = {
        "sigmoid": lambda z: jax.nn.sigmoid(z) * (1 - jax.nn.sigmoid(z)),
        "tanh": lambda z: 1 - jnp.tanh(z) ** 2,
        "relu": lambda z: (z >= 0).astype(z.dtype),
    }[activation](z)
    dx = fprime * (delta @ w.T)  # f'(Z_ri) sum_j delta_rj W_ji
    col = jnp.sum(delta * fprime * x, axis=0)  # sum_r delta_ri f'(Z_ri) X_ri, indexed by i
    dw = jnp.broadcast_to(col[:, None], w.shape)  # paper's W_{j,i} = w[i, j]: constant along j
    db = jnp.sum(delta * fprime, axis=0)
    return dx, dw, db


def printed_batch_norm_bwd(x, gamma, delta):
    """Eq 48 exactly as printed (no epsilon, ``(sigma^2)^{-3/2}`` inside the bracket)::

        delta^(l) = (1/M) gamma (sigma^2)^{-1/2} (M delta - sum delta
                    - (X - mu)(sigma^2)^{-3/2} sum delta (X - mu))

    x, delta: (R, C, H, W) or (R, N); gamma: (C,).  Returns dL/dX like x.
    """
    axes = (0, 2, 3) if x.ndim == 4 else (0,)
    bshape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
    m = x.size // x.shape[1]
    mu = jnp.mean(x, axis=axes, keepdims=True)
    var = jnp.mean((x - mu) ** 2, axis=axes, keepdims=True)
    s_delta = jnp.sum(delta, axis=axes, keepdims=True)
    s_dx = jnp.sum(delta * (x - mu), axis=axes, keepdims=True)
    g = gamma.reshape(bshape)
    return g * var ** -0.5 / m * (m * delta - s_delta - (x - mu) * var ** -1.5 * s_dx)


def printed_softmax_bwd(x, delta):
    """Eq 52's last line as printed: ``delta^(l)_rc = delta_rc X^(l+1)_rc (1 - sum_c' X^(l+1)_rc')``,
    which is 0 up to rounding because softmax rows sum to 1.  x, delta: (R, C)."""
    y = R.softmax(x)
    return delta * y * (1 - jnp.sum(y, axis=-1, keepdims=True))


def printed_max_pool2d_bwd(x, delta, kernel, stride=None):
    """Eqs 32-33 read literally: every element equal to its window's maximum receives that
    window's delta (all tied elements, not one).  x: (R, C, H, W), delta: (R, C, H', W')."""
    (kh, kw), (sh, sw) = L.shapes.check_pool_args(x.shape, kernel, stride)
    y = R.max_pool2d(x, (kh, kw), (sh, sw))
    _, _, ho, wo = y.shape
    dx = jnp.zeros_like(x)
    for j in range(kh):
        for i in range(kw):
            view = x[:, :, j:j + sh * (ho - 1) + 1:sh, i:i + sw * (wo - 1) + 1:sw]
            dx = dx.at[:, :, j:j + sh * (ho - 1) + 1:sh, i:i + sw * (wo - 1) + 1:sw].add(
                jnp.where(view == y, delta, 0.0)
            )
    return dx


def printed_conv_output_size(size: int, k: int, p: int, s: int) -> float:
    """Eqs 20-21 as printed: ``H' = (H - k + 2p)/s + 1`` -- not an integer unless s divides
    ``H - k + 2p``."""
    return (size - k + 2 * p) / s + 1


def printed_causal_conv1d(x, w, b, dilation=1, stride=1, corrected=False):
    """Eq 63 read literally: ``X^(l+1)_{r,c',t'} = sum_c sum_{i=1}^k Xp_{r,c,(s t' - s + d i)}
    W_{c',c,i}`` with 1-based ``t'`` and ``i`` over the input left-padded by ``p_left = d(k-1)``
    (§6.2.1), plus the bias; ``T' = floor((T - 1) / s) + 1`` (eq 64).  So that every printed
    index exists, ``d - 1`` zeros are also appended on the right.

    ``corrected=True`` uses the index ``s t' - s + d (i - 1) + 1`` instead, which is
    ``causal_conv1d``.  x: (R, C, T), w: (C', C, k), b: (C',) -> (R, C', T').
    """
    d, s = dilation, stride
    t, k = x.shape[2], w.shape[2]
    t_out = (t - 1) // s + 1
    xp = jnp.pad(x, ((0, 0), (0, 0), (d * (k - 1), d - 1)))
    tp = np.arange(1, t_out + 1)
    y = jnp.zeros((x.shape[0], w.shape[0], t_out), dtype=x.dtype)
    for i in range(1, k + 1):
        idx = s * tp - s + (d * (i - 1) + 1 if corrected else d * i)  # 1-based into Xp
        y = y + jnp.einsum("rct,oc->rot", xp[:, :, idx - 1], w[:, :, i - 1])
    return y + b[None, :, None]

"""Output shapes and argument checks for the layers (paper eqs 20-21, 28-30, 64).

Layout is the paper's: activations are NCHW, ``(R, C, H, W)`` (R batch, C channels);
kernels are OIHW, ``(C', C, kh, kw)``.

The paper writes the output size as ``H' = (H - k + 2p)/s + 1`` (eqs 20-21, 28-29), which
assumes ``s`` divides ``H - k + 2p``.  When it does not, the kernel simply cannot take another
full step, so the size is ``floor((H + p_top + p_bottom - kh) / sh) + 1`` and the last
``(H + p_top + p_bottom - kh) % sh`` rows of the padded input are never read.  The functions
here use that floor everywhere.

All checks run on static shapes, so they raise while tracing (a ``ValueError`` that names the
offending argument) instead of failing later inside XLA.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

IntPair = tuple[int, int]
Padding = tuple[IntPair, IntPair]

__all__ = [
    "conv_output_shape",
    "pool_output_shape",
    "normalize_stride",
    "normalize_padding",
    "normalize_kernel",
    "check_conv_args",
    "check_pool_args",
    "check_dense_args",
    "check_batch_norm_args",
    "check_same_shape",
    "causal_conv1d_output_shape",
    "check_causal_conv1d_args",
    "check_weight_norm_args",
    "check_dropout_args",
]


def _is_int(v) -> bool:
    # Python and NumPy integers; bool is an int subclass but never a meaningful size.
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _pair(value, name: str, fn: str) -> IntPair:
    """``v`` or ``(v0, v1)`` -> ``(int, int)``; anything else is a ValueError naming ``name``."""
    if _is_int(value):
        return (int(value), int(value))
    if isinstance(value, Sequence) and len(value) == 2 and all(_is_int(v) for v in value):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{fn}: {name} must be an int or a pair of ints, got {value!r}")


def normalize_stride(stride, fn: str = "conv2d", name: str = "stride") -> IntPair:
    """``s`` or ``(sh, sw)`` -> ``(sh, sw)``, each >= 1."""
    s = _pair(stride, name, fn)
    if s[0] < 1 or s[1] < 1:
        raise ValueError(f"{fn}: {name} must be >= 1, got {stride!r}")
    return s


def normalize_kernel(kernel, fn: str = "max_pool2d", name: str = "kernel") -> IntPair:
    """``k`` or ``(kh, kw)`` -> ``(kh, kw)``, each >= 1."""
    k = _pair(kernel, name, fn)
    if k[0] < 1 or k[1] < 1:
        raise ValueError(f"{fn}: {name} must be >= 1, got {kernel!r}")
    return k


def normalize_padding(padding, fn: str = "conv2d") -> Padding:
    """Zero-padding ``p`` -> ``((p, p), (p, p))``; ``(ph, pw)`` -> ``((ph, ph), (pw, pw))``;
    ``((top, bottom), (left, right))`` is kept.  All entries must be >= 0."""
    if _is_int(padding):
        p = int(padding)
        pads = ((p, p), (p, p))
    elif isinstance(padding, Sequence) and len(padding) == 2:
        if all(_is_int(v) for v in padding):
            pads = ((int(padding[0]),) * 2, (int(padding[1]),) * 2)
        else:
            pads = tuple(_pair(v, "padding", fn) for v in padding)  # type: ignore[assignment]
    else:
        raise ValueError(
            f"{fn}: padding must be an int, (ph, pw) or ((top, bottom), (left, right)), "
            f"got {padding!r}"
        )
    if any(v < 0 for pair in pads for v in pair):
        raise ValueError(f"{fn}: padding must be non-negative, got {padding!r}")
    return pads  # type: ignore[return-value]


def _spatial_out(size: int, pad: IntPair, k: int, s: int) -> int:
    return (size + pad[0] + pad[1] - k) // s + 1


def check_conv_args(x_shape, w_shape, b_shape, stride, padding, fn: str = "conv2d"):
    """Validate conv2d arguments; return normalised ``(stride, padding)``.

    x: (R, C, H, W); w: (C', C, kh, kw); b: (C',) or None.
    """
    if len(x_shape) != 4:
        raise ValueError(f"{fn}: x must have shape (R, C, H, W), got {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"{fn}: w must have shape (C', C, kh, kw), got {tuple(w_shape)}")
    s = normalize_stride(stride, fn)
    p = normalize_padding(padding, fn)
    _, c, h, wd = x_shape
    c_out, c_in, kh, kw = w_shape
    if c != c_in:
        raise ValueError(f"{fn}: x has C={c} channels but w expects C={c_in}")
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise ValueError(f"{fn}: b must have shape (C',)=({c_out},), got {tuple(b_shape)}")
    if kh < 1 or kw < 1:
        raise ValueError(f"{fn}: w has an empty kernel {kh}x{kw}")
    hp, wp = h + p[0][0] + p[0][1], wd + p[1][0] + p[1][1]
    if kh > hp or kw > wp:
        raise ValueError(
            f"{fn}: kernel {kh}x{kw} (from w) is bigger than the padded input {hp}x{wp} "
            f"(x is {h}x{wd}, padding={p})"
        )
    return s, p


def check_pool_args(x_shape, kernel, stride, fn: str = "max_pool2d"):
    """Validate max_pool2d arguments; return normalised ``(kernel, stride)``.  x: (R, C, H, W)."""
    if len(x_shape) != 4:
        raise ValueError(f"{fn}: x must have shape (R, C, H, W), got {tuple(x_shape)}")
    k = normalize_kernel(kernel, fn)
    s = k if stride is None else normalize_stride(stride, fn)
    _, _, h, wd = x_shape
    if k[0] > h or k[1] > wd:
        raise ValueError(f"{fn}: kernel {k[0]}x{k[1]} is bigger than the input {h}x{wd}")
    return k, s


def conv_output_shape(in_shape, w_shape, stride=1, padding=0) -> tuple[int, int, int, int]:
    """Shape of ``conv2d(x, w, b, stride, padding)`` (eqs 20-21, with the floor).

    in_shape: (R, C, H, W); w_shape: (C', C, kh, kw) -> (R, C', H', W') with
    ``H' = floor((H + p_top + p_bottom - kh) / sh) + 1`` and likewise for W'.
    """
    s, p = check_conv_args(in_shape, w_shape, None, stride, padding, "conv_output_shape")
    r, _, h, wd = in_shape
    c_out, _, kh, kw = w_shape
    return (r, c_out, _spatial_out(h, p[0], kh, s[0]), _spatial_out(wd, p[1], kw, s[1]))


def pool_output_shape(in_shape, kernel, stride=None) -> tuple[int, int, int, int]:
    """Shape of ``max_pool2d(x, kernel, stride)`` (eqs 28-30, with the floor).

    in_shape: (R, C, H, W) -> (R, C, H', W'), ``H' = floor((H - kh) / sh) + 1``; stride
    defaults to the kernel size (non-overlapping windows).
    """
    k, s = check_pool_args(in_shape, kernel, stride, "pool_output_shape")
    r, c, h, wd = in_shape
    return (r, c, _spatial_out(h, (0, 0), k[0], s[0]), _spatial_out(wd, (0, 0), k[1], s[1]))


def check_dense_args(x_shape, w_shape, b_shape, fn: str = "dense"):
    """x: (R, N) (or (R, ..., N)); w: (N, N'); b: (N',)."""
    if len(x_shape) < 1 or len(w_shape) != 2:
        raise ValueError(
            f"{fn}: need x (R, N) and w (N, N'), got x {tuple(x_shape)}, w {tuple(w_shape)}"
        )
    if x_shape[-1] != w_shape[0]:
        raise ValueError(
            f"{fn}: x has N={x_shape[-1]} features but w expects N={w_shape[0]} "
            f"(w must be (N, N') = (inputs, outputs), got {tuple(w_shape)})"
        )
    if tuple(b_shape) != (w_shape[1],):
        raise ValueError(f"{fn}: b must have shape (N',)=({w_shape[1]},), got {tuple(b_shape)}")


def check_batch_norm_args(x_shape, vectors: dict, fn: str = "batch_norm"):
    """x: (R, C, H, W) or (R, N); every entry of ``vectors`` (name -> shape) must be (C,).

    Returns the reduction axes and the broadcast shape of a (C,) vector."""
    if len(x_shape) == 4:
        axes, bshape = (0, 2, 3), (1, -1, 1, 1)
    elif len(x_shape) == 2:
        axes, bshape = (0,), (1, -1)
    else:
        raise ValueError(f"{fn}: x must have shape (R, C, H, W) or (R, N), got {tuple(x_shape)}")
    c = x_shape[1]
    for name, shape in vectors.items():
        if tuple(shape) != (c,):
            raise ValueError(f"{fn}: {name} must have shape (C,)=({c},), got {tuple(shape)}")
    return axes, bshape


def check_same_shape(fn: str, names: tuple[str, str], a_shape, b_shape):
    """Prediction and target must have the same shape (R, C)."""
    if tuple(a_shape) != tuple(b_shape):
        raise ValueError(
            f"{fn}: {names[0]} and {names[1]} must have the same shape, "
            f"got {tuple(a_shape)} and {tuple(b_shape)}"
        )


# ------------------------------------------------------------ temporal layers (paper §6)
def _positive_int(value, name: str, fn: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{fn}: {name} must be an int >= 1, got {value!r}")
    return int(value)


def check_causal_conv1d_args(x_shape, w_shape, b_shape, dilation, stride,
                             fn: str = "causal_conv1d") -> tuple[int, int]:
    """Validate causal_conv1d arguments; return ``(dilation, stride)`` as ints.

    x: (R, C, T); w: (C', C, k); b: (C',) or None.  No size restriction on T: the left
    zero-padding ``d(k - 1)`` makes every ``T >= 1`` valid, even ``T < d(k - 1)``.
    """
    if len(x_shape) != 3:
        raise ValueError(f"{fn}: x must have shape (R, C, T), got {tuple(x_shape)}")
    if len(w_shape) != 3:
        raise ValueError(f"{fn}: w must have shape (C', C, k), got {tuple(w_shape)}")
    d = _positive_int(dilation, "dilation", fn)
    s = _positive_int(stride, "stride", fn)
    _, c, t = x_shape
    c_out, c_in, k = w_shape
    if c != c_in:
        raise ValueError(f"{fn}: x has C={c} channels but w expects C={c_in}")
    if b_shape is not None and tuple(b_shape) != (c_out,):
        raise ValueError(f"{fn}: b must have shape (C',)=({c_out},), got {tuple(b_shape)}")
    if k < 1:
        raise ValueError(f"{fn}: w has an empty kernel (k=0)")
    if t < 1:
        raise ValueError(f"{fn}: x has an empty time axis (T=0)")
    return d, s


def causal_conv1d_output_shape(in_shape, w_shape, dilation=1, stride=1) -> tuple[int, int, int]:
    """Shape of ``causal_conv1d(x, w, b, dilation, stride)`` (eq 64, with the floor).

    in_shape: (R, C, T); w_shape: (C', C, k) -> (R, C', T') with eq 64 at
    ``p_left = d(k - 1)``, ``p_right = 0``:
    ``T' = floor((T - d(k - 1) + p_left + p_right - 1) / s) + 1 = floor((T - 1) / s) + 1``,
    i.e. ``T' = T`` for ``s = 1`` and ``ceil(T / s)`` in general.
    """
    d, s = check_causal_conv1d_args(in_shape, w_shape, None, dilation, stride,
                                    "causal_conv1d_output_shape")
    r, _, t = in_shape
    c_out, _, k = w_shape
    p_left, p_right = d * (k - 1), 0
    return (r, c_out, (t - d * (k - 1) + p_left + p_right - 1) // s + 1)


def check_weight_norm_args(v_shape, g_shape, fn: str = "weight_norm"):
    """v: (C', ...) with at least 2 axes; g: (C',) -- one magnitude per output channel."""
    if len(v_shape) < 2:
        raise ValueError(f"{fn}: v must have shape (C', ...) with >= 2 axes, got {tuple(v_shape)}")
    if tuple(g_shape) != (v_shape[0],):
        raise ValueError(f"{fn}: g must have shape (C',)=({v_shape[0]},), got {tuple(g_shape)}")


def check_dropout_args(rate, deterministic, key, fn: str = "dropout") -> float:
    """rate: a float in [0, 1); deterministic: bool; key: a PRNG key unless the op is the
    identity (``deterministic`` or ``rate == 0``).  Returns rate as a float."""
    if not isinstance(rate, numbers.Real) or isinstance(rate, bool) or not 0.0 <= rate < 1.0:
        raise ValueError(f"{fn}: rate must be a float in [0, 1), got {rate!r}")
    if not isinstance(deterministic, (bool, np.bool_)):
        raise ValueError(f"{fn}: deterministic must be a bool, got {deterministic!r}")
    if not deterministic and rate > 0.0 and key is None:
        raise ValueError(f"{fn}: key must be a PRNG key when deterministic=False and rate > 0")
    return float(rate)

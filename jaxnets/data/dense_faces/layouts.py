"""Where the faces of one image go: crowd layouts, each a list of (x, y, height) in painter's order.

A layout function takes ``(rng, W, H)`` and returns a :class:`Layout`: face centres (x, y) and
drawn crop heights in pixels, ordered far to near (the order they are painted, so nearer faces
cover farther ones). Heights run from :data:`MIN_HEIGHT` to a third of the image's short side.

Kinds (:data:`KINDS`, with the WIDER-style event folder each is written under):

* ``portraits`` (0--Portraits): 1-3 large faces side by side;
* ``groups`` (1--Groups): 1-3 rows of medium faces (22-75 px), up to 30, rows overlapping a little;
* ``crowd_rows`` (2--Crowd): 100-400 small faces in rows receding in perspective (face height
  growing linearly down the image), rows closer than a face height overlapping;
* ``clusters`` (3--Clusters): 3-8 Gaussian clusters of similar-sized faces, 10-200 in all;
* ``scattered`` (4--Scattered): 5-60 faces of log-uniform heights at random places.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

MIN_HEIGHT = 9.0
"""Smallest drawn crop height: its face box is >= 8 px high."""


@dataclasses.dataclass(frozen=True)
class Layout:
    """x, y, height: (N,) float64 face centres and drawn crop heights, in painter's order."""

    kind: str
    x: np.ndarray
    y: np.ndarray
    height: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


def max_height(W: int, H: int) -> float:
    return min(W, H) / 3.0


def _make(kind: str, xs, ys, hs) -> Layout:
    return Layout(kind, np.asarray(xs, np.float64), np.asarray(ys, np.float64), np.asarray(hs, np.float64))


def portraits(rng: np.random.Generator, W: int, H: int) -> Layout:
    n = int(rng.integers(1, 4))
    hs = max_height(W, H) * rng.uniform(0.45, 1.0, n)
    gap = W / n
    xs = (np.arange(n) + 0.5) * gap + rng.uniform(-0.15, 0.15, n) * gap
    ys = H * rng.uniform(0.3, 0.6, n)
    order = np.argsort(hs)  # smaller (farther) first
    return _make("portraits", xs[order], ys[order], hs[order])


def groups(rng: np.random.Generator, W: int, H: int) -> Layout:
    rows = int(rng.integers(1, 4))
    top = max(MIN_HEIGHT, min(75.0, max_height(W, H)))
    h0 = rng.uniform(min(22.0, top), top)
    y = H * rng.uniform(0.2, 0.45)
    xs, ys, hs = [], [], []
    for r in range(rows):  # back row first
        h = h0 * (1 + 0.12 * r)
        step = h * rng.uniform(1.05, 1.6)
        n = int(min(W * rng.uniform(0.4, 0.95) // step, 30 // rows)) or 1
        x_start = rng.uniform(0, max(W - n * step, 1)) + step / 2
        for i in range(n):
            xs.append(x_start + i * step + rng.normal(0, 0.08) * h)
            ys.append(y + rng.normal(0, 0.06) * h)
            hs.append(h * rng.uniform(0.9, 1.1))
        y += h * rng.uniform(0.75, 1.3)
    return _make("groups", xs, ys, hs)


def crowd_rows(rng: np.random.Generator, W: int, H: int) -> Layout:
    """Rows from far (top) to near (bottom); face height grows linearly below the crowd's top.
    The full crowd is laid out, then a random subset of 100-400 faces is kept (gaps in it)."""
    h_near = rng.uniform(18, 42)
    top = H * rng.uniform(0.05, 0.45)
    h_far = rng.uniform(MIN_HEIGHT, min(16.0, h_near))
    slope = (h_near - h_far) / (H - top)
    gap = rng.uniform(0.75, 1.25)
    spacing = rng.uniform(1.0, 1.5)
    xs, ys, hs = [], [], []
    y = top
    while y < H + h_near / 3:
        h = h_far + slope * (y - top)
        step = h * spacing
        offset = rng.uniform(0, step)
        for x in np.arange(offset - step / 2, W + step / 2, step):
            xs.append(x + rng.normal(0, 0.12) * h)
            ys.append(y + rng.normal(0, 0.08) * h)
            hs.append(max(MIN_HEIGHT, h * rng.uniform(0.9, 1.1)))
        y += h * gap
    target = int(rng.integers(100, 401))
    keep = np.sort(rng.permutation(len(xs))[:target])
    return _make("crowd_rows", np.asarray(xs)[keep], np.asarray(ys)[keep], np.asarray(hs)[keep])


def clusters(rng: np.random.Generator, W: int, H: int) -> Layout:
    xs, ys, hs = [], [], []
    for _ in range(int(rng.integers(3, 9))):
        h = float(np.exp(rng.uniform(math.log(MIN_HEIGHT + 1), math.log(40))))
        n = int(rng.integers(4, 26))
        cx, cy = rng.uniform(0.1, 0.9) * W, rng.uniform(0.15, 0.9) * H
        spread = h * rng.uniform(1.2, 3.0)
        for _ in range(n):
            xs.append(cx + rng.normal(0, spread))
            ys.append(cy + rng.normal(0, spread * 0.6))
            hs.append(max(MIN_HEIGHT, h * rng.uniform(0.85, 1.15)))
    order = np.lexsort((np.asarray(ys), np.asarray(hs)))  # smaller first, then higher first
    return _make("clusters", np.asarray(xs)[order], np.asarray(ys)[order], np.asarray(hs)[order])


def scattered(rng: np.random.Generator, W: int, H: int) -> Layout:
    n = int(rng.integers(5, 61))
    hs = np.exp(rng.uniform(math.log(MIN_HEIGHT), math.log(max_height(W, H) * 0.8), n))
    xs, ys = rng.uniform(0, W, n), rng.uniform(0, H, n)
    order = np.argsort(hs)
    return _make("scattered", xs[order], ys[order], hs[order])


KINDS = {
    # name: (event folder, probability, function)
    "portraits": ("0--Portraits", 0.2, portraits),
    "groups": ("1--Groups", 0.3, groups),
    "crowd_rows": ("2--Crowd", 0.2, crowd_rows),
    "clusters": ("3--Clusters", 0.15, clusters),
    "scattered": ("4--Scattered", 0.15, scattered),
}


def choose_layout(rng: np.random.Generator, W: int, H: int) -> Layout:
    """Pick a kind by :data:`KINDS`' probabilities and lay out its faces."""
    names = list(KINDS)
    p = np.asarray([KINDS[k][1] for k in names])
    kind = names[int(rng.choice(len(names), p=p / p.sum()))]
    return KINDS[kind][2](rng, W, H)

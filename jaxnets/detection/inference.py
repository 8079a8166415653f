"""A trained FaceNet (section 5) on photos of any size: the inference path of ``jaxnets detect``.

    runner = FaceDetectorRunner.from_workdir("runs/faces_cpu_v2_3")   # config.json + best checkpoint
    dets = runner.detect(image)              # image uint8 (H, W, 3) RGB
    dets.boxes, dets.scores                  # (D, 4) x1, y1, x2, y2 original pixels; (D,), best first

The path is the task's evaluation (:meth:`jaxnets.tasks.face_detection.FaceDetection.predict`)
on a single image instead of a dataset: each image letterboxed to S × S
(:func:`~jaxnets.data.detection_augment.letterbox`; S = ``config.eval.image_size``, 0 meaning
``config.data.image_size``), the network (jitted once per S and batch size, cached), the offsets
decoded on the anchors of an S × S input, face scores, the score threshold, NMS, the boxes mapped
back with :func:`~jaxnets.data.detection_augment.unletterbox_boxes` and clipped to the image
(boxes left with no width or height, i.e. wholly in the padding, are dropped).

Multi-scale testing (``scales``): scale s runs the same path at S_s = round(S · s / 32) · 32
(at least 32); the detections of all scales, each already in original pixels, are merged and go
through the same greedy NMS again (:func:`~jaxnets.detection.nms.numpy_nms`), keeping the
``max_detections`` best.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxnets.data.detection_augment import letterbox, unletterbox_boxes
from jaxnets.detection.anchors import anchors as make_anchors
from jaxnets.detection.anchors import preset
from jaxnets.detection.box_coding import decode
from jaxnets.detection.nms import batched_nms, numpy_nms
from jaxnets.train.workdir import WorkdirError

STRIDE = 32  # the coarsest backbone stride: every letterbox side is a multiple of it


@dataclasses.dataclass(frozen=True)
class Detections:
    """The faces found in one image.

    boxes: (D, 4) float32 x1, y1, x2, y2 in the original image's pixels, inside the image;
    scores: (D,) float32 face probabilities, decreasing; image_size: (H, W) of the image."""

    boxes: np.ndarray
    scores: np.ndarray
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.scores)

    def wider_rows(self) -> np.ndarray:
        """(D, 5) float64 x, y, w, h, score: the rows of a WIDER FACE prediction file."""
        b = self.boxes.astype(np.float64)
        return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2], self.scores[:, None].astype(np.float64)], 1)


def letterbox_side(size: int, scale: float) -> int:
    """The letterbox side of ``scale`` for a base side ``size``: round(size · scale / 32) · 32, >= 32."""
    return max(STRIDE, int(round(size * float(scale) / STRIDE)) * STRIDE)


def load_run_config(workdir) -> ml_collections.ConfigDict:
    """``workdir/config.json`` (what ``jaxnets train`` wrote) as a ConfigDict of a face_detection run.

    Raises :class:`~jaxnets.train.workdir.WorkdirError` (one line naming the path) when the
    directory or the file is missing, the file is not JSON, or the run is not a face detector."""
    workdir = pathlib.Path(workdir)
    if not workdir.is_dir():
        raise WorkdirError(f"{workdir}: no such run directory (give the --workdir of a `jaxnets train` run)")
    path = workdir / "config.json"
    if not path.is_file():
        raise WorkdirError(f"{path}: missing; {workdir} is not the workdir of a `jaxnets train` run")
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise WorkdirError(f"{path}: cannot be read as JSON ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(raw, dict) or raw.get("task") != "face_detection":
        task = raw.get("task") if isinstance(raw, dict) else None
        raise WorkdirError(f"{path}: task {task!r}, not 'face_detection': {workdir} is not a face detector run")
    return ml_collections.ConfigDict(raw)


def _abstract_state(config, model):
    """The TrainState's shapes and dtypes (no arrays computed), on one device: the restore target."""
    from jaxnets.tasks.face_detection import pixels
    from jaxnets.train.optim import make_optimizer
    from jaxnets.train.state import create_train_state, init_rngs

    tx, _ = make_optimizer(config)
    seed, s = int(config.seed), int(config.data.image_size)
    example = jax.ShapeDtypeStruct((1, 3, s, s), jnp.uint8)
    shapes = jax.eval_shape(lambda x: create_train_state(model.init(init_rngs(seed), pixels(x), train=False), tx, seed),
                            example)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), shapes)


def restore_variables(workdir, target, step: int | None = None) -> tuple[dict, int]:
    """``({"params": ..., **model_state}, step)`` of the run in ``workdir``: ``step``, else the
    selected (best) checkpoint, else the newest; ``target`` the TrainState's shapes
    (:func:`_abstract_state`). WorkdirError naming the workdir when there is none or it cannot be read."""
    from jaxnets.train.checkpoint import CorruptCheckpoint, has_checkpoints, restore_best, restore_step
    from jaxnets.train.state import variables_of

    if not has_checkpoints(workdir):
        raise WorkdirError(f"{workdir}: no checkpoint in {pathlib.Path(workdir) / 'checkpoints'} (has training saved one?)")
    try:
        got = restore_best(workdir, target) if step is None else None
        if got is None:
            if step is not None and not (pathlib.Path(workdir) / "checkpoints" / str(int(step))).is_dir():
                have = sorted(int(p.name) for p in (pathlib.Path(workdir) / "checkpoints").iterdir() if p.name.isdigit())
                raise WorkdirError(f"{workdir}: no checkpoint of step {step} (saved steps: {have})")
            got = restore_step(workdir, target, step)
    except CorruptCheckpoint as e:
        if e.reason.startswith("its state cannot be read"):  # damaged, or arrays of another model than config.json's
            raise WorkdirError(f"{workdir}: checkpoint step {e.step} does not load into config.json's model "
                               f"(or is damaged): {e.reason.removeprefix('its state cannot be read ')}") from None
        raise WorkdirError(f"{workdir}: {e}") from None
    state, meta = got
    return variables_of(state), int(meta["step"])


class FaceDetectorRunner:
    """A FaceNet with fixed weights that finds faces in uint8 RGB images of any size.

    config: the run's ConfigDict (task face_detection: ``model``, ``anchors``, ``data.image_size``,
    ``eval``); variables: ``{"params": ..., "batch_stats": ...}`` of ``build_model(config.model)``.
    """

    def __init__(self, config, variables: Mapping[str, Any], *, step: int | None = None):
        from jaxnets.registry import build_model

        self.config = config
        self.model = build_model(config.model)
        self.variables = jax.device_put(dict(variables))
        self.anchor_config = preset(config.anchors)
        self.size = int(config.eval.get("image_size", 0) or 0) or int(config.data.image_size)
        self.pre_nms_top_k = int(config.eval.get("pre_nms_top_k", 5000))
        self.step = step  # the checkpoint's step (None when built from memory)
        self._forward: dict[tuple[int, int], Any] = {}

    @classmethod
    def from_workdir(cls, workdir, step: int | None = None) -> "FaceDetectorRunner":
        """The run in ``workdir``: its config.json and its best checkpoint (``restore_best``), else the
        newest, or ``step`` when given. :class:`~jaxnets.train.workdir.WorkdirError` (one line
        naming the path) when the workdir is missing, has no config.json or checkpoint, or is not a
        face_detection run."""
        from jaxnets.config import ConfigError
        from jaxnets.registry import build_model

        config = load_run_config(workdir)
        try:
            model = build_model(config.model)
            preset(config.anchors)
            target = _abstract_state(config, model)
        except (ConfigError, AttributeError, KeyError, ValueError, TypeError) as e:  # a config.json edited by hand
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise WorkdirError(f"{pathlib.Path(workdir) / 'config.json'}: {first}") from None
        variables, restored = restore_variables(workdir, target, step)
        return cls(config, variables, step=restored)

    # ------------------------------------------------------------------ the network on one side
    def forward(self, side: int, max_detections: int):
        """The jitted ``(variables, image uint8 (R, 3, S, S), score_threshold, nms_iou) -> boxes
        (R, D, 4) in S × S pixels, scores (R, D), keep (R, D) bool`` of side S (D = max_detections),
        built once per (S, D); thresholds are traced, so changing them does not recompile."""
        key = (int(side), int(max_detections))
        if key not in self._forward:
            from jaxnets.tasks.face_detection import face_scores, pixels

            boxes, _ = make_anchors(self.anchor_config, (side, side), self.model.grid_sizes(side))  # (A, 4)
            anchors = jnp.asarray(boxes)
            top_k = min(self.pre_nms_top_k, len(boxes))

            def fn(variables, image, score_threshold, nms_iou):
                out = self.model.apply(variables, pixels(image), train=False)
                scores = face_scores(out["logits"])  # (R, A)
                decoded = decode(out["offsets"], anchors[None])  # (R, A, 4)
                idx, keep = batched_nms(decoded, scores, nms_iou, score_threshold, max_out=key[1], pre_nms_top_k=top_k)
                take = jax.vmap(lambda a, i: a[i])
                return take(decoded, idx), take(scores, idx), keep

            self._forward[key] = jax.jit(fn)
        return self._forward[key]

    def _one_scale(self, images: Sequence[np.ndarray], side: int, score_threshold: float, nms_iou: float,
                   max_detections: int, batch_size: int) -> list[Detections]:
        """Every image letterboxed to side × side, run R = min(batch_size, N) at a time (the last
        batch padded with blank images, so one compiled program serves every batch)."""
        fn = self.forward(side, max_detections)
        rows, out = min(batch_size, len(images)), []
        for start in range(0, len(images), rows):
            chunk = images[start : start + rows]
            boxed = [letterbox(im, np.zeros((0, 4)), side) for im in chunk]
            batch = np.zeros((rows, 3, side, side), np.uint8)
            batch[: len(chunk)] = np.stack([b[0] for b in boxed]).transpose(0, 3, 1, 2)  # (R, 3, S, S)
            boxes, scores, keep = jax.device_get(fn(self.variables, batch, np.float32(score_threshold),
                                                    np.float32(nms_iou)))
            for r, (im, (_, _, scale, offset)) in enumerate(zip(chunk, boxed)):
                b = unletterbox_boxes(boxes[r][keep[r]], scale, offset)  # (D', 4) original pixels
                out.append(_clip(b, scores[r][keep[r]], im.shape[:2]))
        return out

    # ------------------------------------------------------------------ public
    def detect(self, image: np.ndarray, size: int | None = None, scales: Sequence[float] = (1.0,),
               score_threshold: float = 0.5, nms_iou: float = 0.3, max_detections: int = 750) -> Detections:
        """The faces of one image uint8 (H, W, 3) RGB -> :class:`Detections` in its pixels.

        size: the letterbox side S (None: ``config.eval.image_size``; rounded to a multiple of 32); scales: multi-scale testing,
        scale s runs at :func:`letterbox_side` (S, s), the scales' detections merged by NMS again
        (module docstring); score_threshold, nms_iou: the score cut and NMS IoU; max_detections:
        at most this many boxes (per scale, and after the merge)."""
        return self.detect_many([image], size, scales, score_threshold, nms_iou, max_detections, batch_size=1)[0]

    def detect_many(self, images: Sequence[np.ndarray], size: int | None = None, scales: Sequence[float] = (1.0,),
                    score_threshold: float = 0.5, nms_iou: float = 0.3, max_detections: int = 750,
                    batch_size: int = 8) -> list[Detections]:
        """:meth:`detect` of each image (uint8 (H_i, W_i, 3), any sizes: each is letterboxed to the
        same S × S) -> one Detections per image, in order; the network runs ``batch_size`` images at a time."""
        images = [_check_image(im, i) for i, im in enumerate(images)]
        scales = tuple(float(s) for s in scales)
        if not scales or not all(np.isfinite(s) and s > 0 for s in scales):
            raise ValueError(f"scales={scales}: expected one or more positive numbers")
        if int(max_detections) < 1 or int(batch_size) < 1:
            raise ValueError(f"max_detections={max_detections}, batch_size={batch_size}: expected >= 1 each")
        if not images:
            return []
        base = int(size) if size else self.size
        per_scale = [self._one_scale(images, letterbox_side(base, s), score_threshold, nms_iou, max_detections,
                                     int(batch_size)) for s in scales]
        if len(scales) == 1:
            return per_scale[0]
        return [merge_detections(list(dets), nms_iou, max_detections) for dets in zip(*per_scale)]


def merge_detections(detections: Sequence[Detections], nms_iou: float, max_detections: int) -> Detections:
    """The detections of several scales of one image merged: all boxes pooled, greedy NMS at
    ``nms_iou`` (:func:`~jaxnets.detection.nms.numpy_nms`), the ``max_detections`` best kept."""
    boxes = np.concatenate([d.boxes for d in detections]).reshape(-1, 4)
    scores = np.concatenate([d.scores for d in detections])
    keep = np.asarray(numpy_nms(boxes, scores, nms_iou), np.int64)[: int(max_detections)]
    return Detections(boxes[keep].astype(np.float32), scores[keep].astype(np.float32), detections[0].image_size)


def _clip(boxes: np.ndarray, scores: np.ndarray, hw: tuple[int, int]) -> Detections:
    """Boxes (D, 4) clipped to the W × H image; those with no width or height left are dropped."""
    h, w = hw
    b = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    b[:, 0::2] = np.clip(b[:, 0::2], 0, w)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, h)
    ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    return Detections(b[ok], np.asarray(scores, np.float32)[ok], (int(h), int(w)))


def _check_image(image, i: int) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or min(a.shape[:2]) < 1:
        raise ValueError(f"image {i}: expected uint8 (H, W, 3) RGB, got {a.dtype} {a.shape}")
    return a


def write_wider_predictions(pred_dir, detections: Mapping[str, Detections]) -> None:
    """``PRED_DIR/<event>/<stem>.txt`` in the official WIDER FACE format for every ``"event/stem"``
    -> Detections (:func:`~jaxnets.eval.wider_predictions.write_predictions`; rows x, y, w, h, score)."""
    from jaxnets.eval.wider_predictions import write_predictions

    write_predictions(pred_dir, {name: d.wider_rows() for name, d in detections.items()})

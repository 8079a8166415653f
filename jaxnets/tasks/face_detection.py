"""Face detection on WIDER FACE (section 5): FaceNet (:mod:`jaxnets.models.face_detector`) trained
through the unchanged driver.

* ``train_data``: :class:`~jaxnets.data.detection_batches.DetectionSource` over the train split of
  ``load_wider(config.data.root)`` -- §5.2.2's square crops resized to S, flips, v2.3's colour
  jitter as the device transform. Batch: ``image`` uint8 (R, 3, S, S), ``boxes`` (R, M, 4),
  ``box_mask`` / ``invalid`` (R, M), ``index``, ``dropped`` (R,).
* ``loss_fn``: the anchors of an S × S input (A, 4), computed once (static); each image's faces
  assigned to them (§5.1.2, :func:`~jaxnets.detection.assign.assign`, vmapped over R) -> labels
  (R, A) and regression targets (R, A, 4); per-anchor losses -- BCE (eq 59), focal (eq 61) or the
  2-class softmax (eq 57) and smooth L1 (eq 56) -- summed with the configured normalisation
  (eq 58 "all", eq 60 "pos", eq 62 "level"), ignored anchors (label -1) out of the
  classification sum; with ``loss.ohem`` ("image" v1.7, "batch" v1.8, §5.3.4) the classification
  sum runs over the top ``ohem_k`` losses left by an NMS ranked by loss
  (:meth:`FaceDetection.hard_examples`). Metrics: ``cls_loss``, ``reg_loss``, ``num_pos`` (positives per image),
  ``dropped`` (faces past M per image).
* ``evaluators["validation"]``: WIDER AP on the val split -- each image letterboxed to E × E
  (``eval.image_size``; 0 means S: a fully convolutional net may be trained on small crops and
  tested at the images' own scale, as §5.2.2 trains on 512² crops of larger images), the
  offsets decoded on the anchors, the score threshold, NMS (a fixed number kept), boxes mapped
  back to original pixels with the letterbox scale / offset, then
  :func:`~jaxnets.eval.wider_protocol.evaluate` with the official protocol against
  ``load_ground_truth(root)`` -> ``ap_easy``, ``ap_medium``, ``ap_hard`` (and
  ``detections_per_image``). Unlike :mod:`jaxnets.detection.inference`, boxes left with no area
  after clipping are kept (scored as misses). ``selection = ("validation/ap_hard", "max")``.

Input normalisation: pixels / 255, minus the ImageNet mean, over its standard deviation (the
statistics of the ImageNet-trained backbones of §5.2.1).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnets.config import ConfigError
from jaxnets.data.detection_augment import AugmentSpec, unletterbox_boxes
from jaxnets.data.detection_batches import DetectionSource, detection_eval_batches
from jaxnets.data.wider_source import load_wider
from jaxnets.detection import anchors as make_anchors
from jaxnets.detection import PRESETS, assign, batched_nms, decode, preset
from jaxnets.layers import get_ops
from jaxnets.layers.detection_totals import NORMALIZATIONS, OHEM_PER, detection_loss, ohem_mask
from jaxnets.registry import TASKS, build_model
from jaxnets.train import schema
from jaxnets.train.sharding import shard_batch
from jaxnets.train.state import variables_of
from jaxnets.train.step import make_sum_step

MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)  # ImageNet RGB statistics
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
CLS_LOSSES = ("bce", "focal", "softmax")


def pixels(image) -> jax.Array:
    """uint8 (R, 3, S, S) -> float32 (R, 3, S, S), ImageNet-normalised."""
    return (jnp.asarray(image, jnp.float32) / 255.0 - MEAN) / STD


def face_scores(logits: jax.Array) -> jax.Array:
    """logits (R, N, K) -> face probability (R, N): sigmoid (K = 1) or softmax index 1 (K = 2)."""
    return jax.nn.sigmoid(logits[..., 0]) if logits.shape[-1] == 1 else jax.nn.softmax(logits, -1)[..., 1]


@dataclasses.dataclass(eq=False)
class FaceDetection:
    model: Any
    train_data: DetectionSource
    val_split: Any
    root: str
    anchor_boxes: np.ndarray  # (A, 4) x1, y1, x2, y2 in S × S input pixels
    anchor_level: np.ndarray  # (A,) index into the head levels
    eval_anchor_boxes: np.ndarray  # (A_E, 4) the anchors of the E × E evaluation input
    cfg: Any  # _Cfg: the anchors' IoU threshold, config.loss and config.eval
    size: int
    eval_size: int
    max_faces: int
    eval_batch_size: int
    mesh: Any
    selection = ("validation/ap_hard", "max")
    final_evaluators = {}

    def __post_init__(self):
        self.evaluators = {"validation": self}
        self._predict = make_sum_step(self.predict, self.mesh)
        self._names = None
        self._gt = None

    # ------------------------------------------------------------------ training
    def example_batch(self):
        return {k: v[:1] for k, v in self.train_data.batch_at_step(0).items()}

    def init(self, rngs, batch):
        return self.model.init(rngs, pixels(batch["image"]), train=False)

    def targets(self, batch):
        """Assignment of each image's faces to the anchors: labels (R, A) int32, targets (R, A, 4)."""
        c = self.cfg.loss
        fn = partial(assign, iou_threshold=float(self.cfg.iou_threshold), neg_threshold=c.get("neg_threshold", None),
                     match_best=bool(c.match_best))
        out = jax.vmap(fn, in_axes=(None, 0, 0, 0))(jnp.asarray(self.anchor_boxes), batch["boxes"],
                                                    batch["box_mask"], batch["invalid"])
        return out.labels, out.targets

    def losses(self, out, batch):
        """Per-anchor classification (R, A) and regression (R, A, 4) losses, positives, valid, totals."""
        c, ops = self.cfg.loss, get_ops(self.model.heads.grad)
        logits, offsets = out["logits"], out["offsets"]  # (R, A, K), (R, A, 4)
        if logits.shape[1] != len(self.anchor_boxes):
            raise ValueError(f"model.heads: {logits.shape[1]} predictions per image, {len(self.anchor_boxes)} anchors")
        labels, targets = self.targets(batch)
        pos, valid = labels == 1, labels >= 0  # ignored anchors (-1) count nowhere
        p = pos.astype(logits.dtype)
        if c.classification == "softmax":
            cls = ops.two_class_softmax_cross_entropy(logits, p)
        elif c.classification == "focal":
            cls = ops.sigmoid_focal_loss(logits[..., 0], p, float(c.gamma))
        else:
            cls = ops.sigmoid_binary_cross_entropy(logits[..., 0], p)
        reg = ops.smooth_l1(offsets - targets)  # (R, A, 4)
        if c.ohem != "none":
            valid = self.hard_examples(cls, offsets, valid)
        total = detection_loss(cls, reg, pos, valid, c.normalize, jnp.asarray(self.anchor_level),
                               len(self.model.heads.levels))
        return total, pos

    def hard_examples(self, cls, offsets, valid):
        """OHEM (§5.3.4, v1.7 / v1.8): cls (R, A) per-anchor losses, offsets (R, A, 4), valid (R, A)
        -> (R, A) bool, the anchors whose classification loss is trained on.

        Each image's predicted boxes (the offsets decoded on the anchors) go through NMS ranked by
        their classification loss (IoU ``ohem_nms_iou``; the ``ohem_pre_nms_top_k`` largest losses
        take part, so a fixed-size NMS fits the step), as in Shrivastava et al.'s OHEM: duplicates
        of one hard region count once. Of the survivors the ``ohem_k`` largest losses are kept,
        per image (``ohem="image"``) or over the mini-batch (``"batch"``,
        :func:`~jaxnets.layers.detection_totals.ohem_mask`). No gradient flows through the choice.
        """
        c = self.cfg.loss
        k = int(c.ohem_k)
        loss = jax.lax.stop_gradient(cls)
        boxes = decode(jax.lax.stop_gradient(offsets), jnp.asarray(self.anchor_boxes)[None])  # (R, A, 4)
        idx, kept = batched_nms(boxes, loss, float(c.ohem_nms_iou), valid=valid, max_out=min(k, loss.shape[1]),
                                pre_nms_top_k=min(int(c.ohem_pre_nms_top_k), loss.shape[1]))
        rows = jnp.arange(loss.shape[0])[:, None]
        survivors = jnp.zeros(loss.shape, jnp.int32).at[rows, idx].max(kept.astype(jnp.int32)) > 0  # (R, A)
        return ohem_mask(loss, survivors, k, c.ohem)

    def loss_fn(self, params, model_state, batch, rng, train):
        out, updates = self.model.apply({"params": params, **model_state}, pixels(batch["image"]), train=train,
                                        mutable=["batch_stats"])
        total, pos = self.losses(out, batch)
        metrics = {"cls_loss": total.classification, "reg_loss": total.regression,
                   "num_pos": jnp.sum(pos) / pos.shape[0], "dropped": jnp.mean(batch["dropped"].astype(jnp.float32))}
        return total.total, metrics, {**model_state, **updates}

    # ------------------------------------------------------------------ evaluation
    def predict(self, state, batch):
        """Letterboxed images -> the NMS-kept detections: boxes (R, D, 4) in E × E pixels, scores
        (R, D), keep (R, D) bool (D = ``eval.max_detections``)."""
        c = self.cfg.eval
        out = self.model.apply(variables_of(state), pixels(batch["image"]), train=False)
        scores = face_scores(out["logits"])  # (R, A)
        boxes = decode(out["offsets"], jnp.asarray(self.eval_anchor_boxes)[None])  # (R, A, 4)
        idx, keep = batched_nms(boxes, scores, float(c.nms_iou), float(c.score_threshold),
                                max_out=int(c.max_detections), pre_nms_top_k=int(c.pre_nms_top_k))
        take = jax.vmap(lambda a, i: a[i])
        return {"boxes": take(boxes, idx), "scores": take(scores, idx), "keep": keep}

    def detections(self, state, batch) -> dict[str, np.ndarray]:
        """:meth:`predict` of one host eval batch, back on the host."""
        return jax.device_get(self._predict(state, shard_batch({"image": batch["image"]}, self.mesh)))

    def _ground_truth(self):
        from jaxnets.eval.wider_predictions import load_ground_truth

        if self._gt is None:
            self._gt = load_ground_truth(self.root)
            self._names = [r["name"].rsplit(".", 1)[0] for r in self.val_split.read(np.arange(len(self.val_split)),
                                                                                      decode=False)]
        return self._gt

    def run(self, state):
        from jaxnets.eval.wider_protocol import evaluate

        gt = self._ground_truth()
        predictions, count = {}, 0
        for batch in detection_eval_batches(self.val_split, self.eval_size, self.eval_batch_size, self.max_faces):
            got = self.detections(state, batch)
            boxes = unletterbox_boxes(got["boxes"], batch["scale"], batch["offset"])  # (R, D, 4) original pixels
            h, w = batch["image_size"][:, 0, None].astype(np.float32), batch["image_size"][:, 1, None]
            boxes[..., 0::2] = np.clip(boxes[..., 0::2], 0, w[..., None])
            boxes[..., 1::2] = np.clip(boxes[..., 1::2], 0, h[..., None])
            for r in np.flatnonzero(batch["mask"] > 0):
                k = got["keep"][r]
                b, s = boxes[r][k], got["scores"][r][k]
                predictions[self._names[batch["index"][r]]] = np.concatenate(
                    [b[:, :2], b[:, 2:] - b[:, :2], s[:, None]], 1).astype(np.float64)  # x, y, w, h, score
                count += len(b)
        result = evaluate(gt, predictions)
        ap = {f"ap_{k}": float(result.ap[k]) for k in ("easy", "medium", "hard") if k in result.ap}
        return {**ap, "detections_per_image": count / max(1, len(predictions))}


SCHEMA = [schema.Field("data.root", "str", lambda v: bool(v), "a WIDER FACE root (jaxnets make-faces)"),
          schema.Field("data.data_dir", "str"),
          schema.Field("data.image_size", "int", lambda v: 32 <= v <= 2048, "in [32, 2048]"),
          schema.Field("data.max_faces", "int", lambda v: v >= 1, ">= 1"),
          schema.Field("anchors", "str", lambda v: f"v{v.lstrip('v')}" in PRESETS, f"one of {list(PRESETS)}"),
          schema.Field("loss.classification", "str", lambda v: v in CLS_LOSSES, f"one of {list(CLS_LOSSES)}"),
          schema.Field("loss.normalize", "str", lambda v: v in NORMALIZATIONS, f"one of {list(NORMALIZATIONS)}"),
          schema.Field("loss.match_best", "bool"),
          schema.Field("loss.ohem", "str", lambda v: v in ("none", *OHEM_PER), f"one of {['none', *OHEM_PER]}"),
          schema.Field("loss.ohem_k", "int", lambda v: v >= 1, ">= 1"),
          schema.Field("loss.ohem_nms_iou", "float", lambda v: 0 < v <= 1, "in (0, 1]"),
          schema.Field("loss.ohem_pre_nms_top_k", "int", lambda v: v >= 1, ">= 1"),
          schema.Field("eval.score_threshold", "float", lambda v: 0 <= v < 1, "in [0, 1)"),
          schema.Field("eval.nms_iou", "float", lambda v: 0 < v <= 1, "in (0, 1]"),
          schema.Field("eval.max_detections", "int", lambda v: v >= 1, ">= 1"),
          schema.Field("eval.pre_nms_top_k", "int", lambda v: v >= 1, ">= 1"),
          schema.Field("eval.image_size", "int", lambda v: v == 0 or 32 <= v <= 4096, "0 (= data.image_size) or in [32, 4096]")]


@TASKS.register("face_detection")
def make_face_detection(config, mesh) -> FaceDetection:
    schema.check(config, SCHEMA)
    d = config.data
    model = build_model(config.model)
    anchor_cfg = preset(config.anchors)
    heads = model.heads
    if tuple(heads.levels) != tuple(anchor_cfg.levels):
        raise ConfigError(f"model.heads.levels={tuple(heads.levels)} differ from anchors {config.anchors!r} "
                          f"levels {anchor_cfg.levels}")
    if heads.num_anchors != anchor_cfg.anchors_per_position or (2 if heads.head_upsample else 1) != anchor_cfg.upsample:
        raise ConfigError(f"model.heads: num_anchors={heads.num_anchors}, head_upsample={heads.head_upsample} do not "
                          f"match anchors {config.anchors!r} ({anchor_cfg.anchors_per_position} per position, "
                          f"upsample {anchor_cfg.upsample})")
    size = int(d.image_size)
    boxes, level = make_anchors(anchor_cfg, (size, size), model.grid_sizes(size))
    eval_size = int(config.eval.get("image_size", 0)) or size
    eval_boxes, _ = make_anchors(anchor_cfg, (eval_size, eval_size), model.grid_sizes(eval_size))
    a = d.augment
    spec = AugmentSpec(size=size, min_crop=float(a.min_crop), max_crop=float(a.max_crop), hflip=float(a.hflip),
                       jitter=bool(a.jitter))
    train = load_wider(d.root, "train", d.data_dir)
    source = DetectionSource(train, config.batch_size, config.seed, spec, int(d.max_faces))
    val = load_wider(d.root, "validation", d.data_dir)
    cfg = _Cfg(iou_threshold=anchor_cfg.iou_threshold, loss=config.loss.copy_and_resolve_references(),
               eval=config.eval.copy_and_resolve_references())
    return FaceDetection(model, source, val, str(d.root), boxes, level, eval_boxes, cfg, size, eval_size, int(d.max_faces),
                         int(config.eval_batch_size), mesh)


@dataclasses.dataclass(frozen=True)
class _Cfg:
    iou_threshold: float
    loss: Any
    eval: Any

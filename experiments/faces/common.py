"""Shared settings of the section-5 experiments (FaceNet, Table 4).

One row of Table 4 is one entry of :data:`ROWS` (what the row changes, the paper's AP) and two
config files: ``experiments/faces/paper/v<row>.py`` (the paper's setting, ready for WIDER FACE on
an accelerator) and ``experiments/faces/cpu/v<row>.py`` (the CPU form on the dense-face set).

The paper (§5.2.2): ResNet-18, 70 000 iterations, learning rate 1e-4 lowered ×0.1 after 50 000
and 60 000, batch 8, 512² crops of 0.33-0.95 of the short side, horizontal flips. It does not
name the optimizer; ours is Adam (stated, not the paper's). v2.5's batch size is "lowered" for
the deeper backbones without a number; ours is 4.

The CPU form (:func:`cpu_config`): ResNet-18 at width 1/4, FPN and heads 64 wide, 128² crops of
0.2-0.45 of the short side (a crop of a 640×480 image is resized by 0.59-1.33: faces stay near
the scale they have at test time), 2000 steps of Adam at 1e-3 (×0.1 after 1500), evaluation on
whole images letterboxed to 640² (their own scale) with score threshold 0.01, once at the end.
"""

from __future__ import annotations

import ml_collections

from jaxnets.detection import preset
from jaxnets.models.face_heads import face_heads_config

# version -> (what the row changes over faces_base, the paper's easy / medium / hard mAP on the
# WIDER FACE validation set; Table 4 where it lists the row, else the text of §5.3).
ROWS: dict[str, tuple[dict, tuple[float, float, float]]] = {
    "1.0": (dict(fpn=False, classification="softmax", normalize="all"), (0.0, 0.0, 0.0)),
    "1.1": (dict(fpn=False), (37.4, 21.7, 9.7)),
    "1.2": (dict(fpn=False, classification="focal"), (22.4, 12.1, 5.1)),
    "1.3": (dict(), (89.3, 85.9, 65.9)),
    "1.4": (dict(classification="focal"), (81.0, 81.0, 64.2)),
    "1.5": (dict(normalize="level"), (87.2, 82.5, 50.4)),
    "1.6": (dict(classification="focal", normalize="level"), (85.1, 80.0, 50.6)),
    "1.7": (dict(ohem="image"), (46.0, 51.8, 42.3)),
    "1.8": (dict(ohem="batch"), (55.9, 36.8, 15.6)),
    "1.9": (dict(), (88.7, 86.4, 64.8)),
    "2.0": (dict(), (84.4, 83.4, 57.1)),
    "2.1": (dict(), (89.1, 86.6, 64.4)),
    "2.2": (dict(), (87.1, 84.1, 61.3)),
    "2.3": (dict(jitter=True), (92.2, 90.3, 70.1)),
    "2.4": (dict(jitter=True), (89.6, 86.8, 75.8)),
    "2.5": (dict(jitter=True, batch_size=4), (0.0, 0.0, 0.0)),  # with ResNet-50, -101 and -152
}


def faces_base(version: str) -> ml_collections.ConfigDict:
    """A Table 4 row in the paper's setting: ResNet-18, the anchors of ``version`` (levels, sizes,
    ratios, IoU threshold and the heads' ×2 upsampling follow from them), BCE, eq 60."""
    a = preset(version)
    c = ml_collections.ConfigDict()
    c.paper = ""
    c.task = "face_detection"
    c.seed = 0
    c.anchors = version  # jaxnets.detection.anchors.PRESETS: levels, sizes, ratios, upsample, IoU threshold
    c.model = ml_collections.ConfigDict(dict(
        name="face_detector", depth=18, width=1.0, extra_levels=2, grad="custom", bn_momentum=0.1, bn_eps=1e-5,
        heads=face_heads_config(levels=a.levels, head_upsample=a.upsample == 2, num_anchors=a.anchors_per_position)))
    c.data = ml_collections.ConfigDict(dict(
        root="data/wider_face",  # the WIDER FACE root (WIDER_train/, WIDER_val/, wider_face_split/)
        data_dir="",  # tfds data dir the root is prepared into ("" = ~/tensorflow_datasets)
        image_size=512, max_faces=256,
        augment=ml_collections.ConfigDict(dict(min_crop=0.33, max_crop=0.95, hflip=0.5, jitter=False))))
    c.loss = ml_collections.ConfigDict(dict(
        classification="bce",  # "bce" (eq 59) | "focal" (eq 61) | "softmax" (eq 57, v1.0)
        gamma=3.0,  # focal loss only
        normalize="pos",  # "all" (eq 58) | "pos" (eq 60) | "level" (eq 62)
        neg_threshold=None,  # None: no ignore band (the paper's rule)
        match_best=False,
        ohem="none",  # "none" | "image" (v1.7) | "batch" (v1.8), §5.3.4
        ohem_k=128,
        ohem_nms_iou=0.7,  # NMS over the training predictions, ranked by loss, before the top k
        ohem_pre_nms_top_k=2000))  # the largest losses that take part in that NMS
    c.eval = ml_collections.ConfigDict(dict(image_size=1024, score_threshold=0.05, nms_iou=0.3, max_detections=1000,
                                            pre_nms_top_k=5000))
    c.batch_size = 8
    c.eval_batch_size = 4
    c.num_steps = 70_000
    c.optimizer = ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-4, weight_decay=0.0))
    c.schedule = [[50_000, 0.1], [60_000, 0.1]]
    c.log_every = 100
    c.eval_every = 5000
    c.checkpoint_every = 5000
    c.keep_checkpoints = 2
    c.smoke = False
    return c


def row_config(version: str, depth: int = 18) -> ml_collections.ConfigDict:
    """Table 4 row ``version`` ("1.0" ... "2.5") in the paper's setting (``depth``: v2.5's backbone)."""
    changes, paper = ROWS[version]
    c = faces_base(f"v{version}")
    c.model.depth = depth
    c.model.heads.use_fpn = changes.get("fpn", True)
    c.loss.classification = changes.get("classification", "bce")
    c.model.heads.num_logits = 2 if c.loss.classification == "softmax" else 1
    c.loss.normalize = changes.get("normalize", "pos")
    c.loss.ohem = changes.get("ohem", "none")
    c.data.augment.jitter = changes.get("jitter", False)
    c.batch_size = changes.get("batch_size", 8)
    easy, medium, hard = paper
    c.paper = (f"Table 4, FaceNet v{version}" + (f" with ResNet-{depth}" if depth != 18 else "")
               + f": {easy} / {medium} / {hard} mAP (WIDER FACE val easy / medium / hard)")
    return c


def cpu_config(c: ml_collections.ConfigDict, num_steps: int = 2000, crop: int = 128) -> ml_collections.ConfigDict:
    """The 2-core CPU form of a row on the dense-face set (module docstring).

    crop: the training side; the crop fractions scale with it (0.2-0.45 of the short side at 128,
    0.4-0.9 at 256), so a face keeps the scale it has at test time whatever the side."""
    c.paper += "; CPU form on the dense-face set" + (f", {crop}² crops" if crop != 128 else "")
    c.model.width = 0.25
    c.model.heads.channels = 64
    c.data.root = "data/faces"  # jaxnets make-faces data/faces --train 2000 --val 500 --seed 0
    c.data.image_size = crop
    c.data.max_faces = 128 if crop <= 128 else 256
    c.data.augment.min_crop, c.data.augment.max_crop = 0.2 * crop / 128, 0.45 * crop / 128
    c.eval.image_size = 640
    c.eval.max_detections, c.eval.pre_nms_top_k, c.eval.score_threshold = 750, 3000, 0.01
    c.num_steps = num_steps
    c.optimizer.learning_rate = 1e-3
    c.schedule = [[int(0.75 * num_steps), 0.1]]
    c.eval_every = num_steps
    c.checkpoint_every = num_steps // 4
    c.log_every = 50
    return c


def smoke_config(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """End to end in seconds: width 1/16, 64² inputs, 3 steps; ``data.root`` must be set by the caller
    (a tiny set: ``jaxnets.data.dense_faces.writer.write_set``)."""
    c = ml_collections.ConfigDict(c.to_dict())
    c.smoke = True
    c.model.width = 1 / 16
    c.model.heads.channels = 8
    c.model.heads.head_blocks = 2
    c.data.image_size = 64
    c.data.max_faces = 16
    c.eval.image_size = 96
    c.batch_size = c.eval_batch_size = 2
    c.num_steps, c.log_every, c.eval_every, c.checkpoint_every = 3, 1, 3, 3
    c.schedule = [[2, 0.5]]
    c.eval.max_detections, c.eval.pre_nms_top_k = 20, 200
    c.eval.score_threshold = 0.0  # 3 steps leave every score near the prior: keep some detections to score
    return c

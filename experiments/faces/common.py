"""Shared settings of the section-5 experiments (FaceNet, Table 4): the base config, the CPU
form and the smoke form. Each config file in this folder is one Table 4 row.

The paper (§5.2.2): 70 000 iterations, learning rate 1e-4 lowered ×0.1 after 50 000 and 60 000,
batch 8, 512² crops of 0.33-0.95 of the short side, horizontal flips. It does not name the
optimizer; ours is Adam (stated, not the paper's).
"""

from __future__ import annotations

import ml_collections

from jaxnets.models.face_heads import face_heads_config


def faces_base(version: str) -> ml_collections.ConfigDict:
    """A Table 4 row's defaults: ResNet-18, the anchors of ``version``, BCE, eq 60's normalisation."""
    c = ml_collections.ConfigDict()
    c.paper = ""
    c.task = "face_detection"
    c.seed = 0
    c.anchors = version  # jaxnets.detection.anchors.PRESETS: levels, sizes, ratios, upsample, IoU threshold
    c.model = ml_collections.ConfigDict(dict(
        name="face_detector", depth=18, width=1.0, extra_levels=2, grad="custom", bn_momentum=0.1, bn_eps=1e-5,
        heads=face_heads_config(levels=("conv3", "conv4", "conv5", "conv6", "conv7"), head_upsample=True)))
    c.data = ml_collections.ConfigDict(dict(
        root="data/faces",  # jaxnets make-faces data/faces --train 2000 --val 500 --seed 0 (or the real WIDER root)
        data_dir="",  # tfds data dir the root is prepared into ("" = ~/tensorflow_datasets)
        image_size=512, max_faces=64,
        augment=ml_collections.ConfigDict(dict(min_crop=0.33, max_crop=0.95, hflip=0.5, jitter=False))))
    c.loss = ml_collections.ConfigDict(dict(
        classification="bce",  # "bce" (eq 59) | "focal" (eq 61) | "softmax" (eq 57, v1.0)
        gamma=3.0,  # focal loss only
        normalize="pos",  # "all" (eq 58) | "pos" (eq 60) | "level" (eq 62)
        neg_threshold=None,  # None: no ignore band (the paper's rule)
        match_best=False,
        ohem=False))  # §5.3.4 (v1.7/v1.8): not implemented yet (the task says so)
    c.eval = ml_collections.ConfigDict(dict(score_threshold=0.05, nms_iou=0.3, max_detections=200,
                                            pre_nms_top_k=2000))
    c.batch_size = 8
    c.eval_batch_size = 8
    c.num_steps = 70_000
    c.optimizer = ml_collections.ConfigDict(dict(name="adam", learning_rate=1e-4, weight_decay=0.0))
    c.schedule = [[50_000, 0.1], [60_000, 0.1]]
    c.log_every = 100
    c.eval_every = 5000
    c.checkpoint_every = 5000
    c.keep_checkpoints = 2
    c.smoke = False
    return c


def cpu_config(c: ml_collections.ConfigDict, num_steps: int = 4000) -> ml_collections.ConfigDict:
    """The 2-core CPU form: ResNet-18 at width 1/4, 128² crops, FPN/heads 64 wide, a short schedule."""
    c.model.width = 0.25
    c.model.heads.channels = 64
    c.data.image_size = 128
    c.num_steps = num_steps
    c.optimizer.learning_rate = 1e-3
    c.schedule = [[int(0.75 * num_steps), 0.1]]
    c.eval_every = c.checkpoint_every = num_steps // 4
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
    c.batch_size = c.eval_batch_size = 2
    c.num_steps, c.log_every, c.eval_every, c.checkpoint_every = 3, 1, 3, 3
    c.schedule = [[2, 0.5]]
    c.eval.max_detections, c.eval.pre_nms_top_k = 20, 200
    c.eval.score_threshold = 0.0  # 3 steps leave every score near the prior: keep some detections to score
    return c

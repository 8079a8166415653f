"""Detection components of section 5 (FaceNet): anchors, assignment, box coding, NMS.

Pure numpy / jnp, no Flax: the detector's model (``jaxnets.models``) and task
(``jaxnets.tasks``) call these. Boxes everywhere are ``(..., 4)`` x1, y1, x2, y2 in continuous
input pixels; anchors are ordered level by level, then (y, x, anchor) (:mod:`.anchors`).
"""

from jaxnets.detection.anchors import (
    LEVEL_STRIDES,
    OCTAVE_SCALES,
    PRESETS,
    AnchorConfig,
    anchor_shapes,
    anchors,
    best_anchor_iou,
    flatten_level,
    flatten_levels,
    grid_sizes,
    preset,
)
from jaxnets.detection.assign import IGNORE, NEGATIVE, POSITIVE, Assignment, assign, pad_faces
from jaxnets.detection.box_coding import BBOX_CLIP, area, decode, encode, iou_matrix, xywh_to_xyxy
from jaxnets.detection.nms import batched_nms, nms, numpy_nms

__all__ = [
    "LEVEL_STRIDES", "OCTAVE_SCALES", "PRESETS", "AnchorConfig", "anchor_shapes", "anchors",
    "best_anchor_iou", "flatten_level", "flatten_levels", "grid_sizes", "preset",
    "IGNORE", "NEGATIVE", "POSITIVE", "Assignment", "assign", "pad_faces",
    "BBOX_CLIP", "area", "decode", "encode", "iou_matrix", "xywh_to_xyxy",
    "batched_nms", "nms", "numpy_nms",
]

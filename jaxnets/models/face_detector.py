"""FaceNet, the dense face detector of section 5.2.1: ResNet backbone + neck (FPN or per-level
1×1 projection) + the shared classification and regression heads.

    x (R, 3, S, S) float  --ResNet-->  {conv2 .. conv7: (R, C_l, ceil(S/s_l), ceil(S/s_l))}
                          --FaceHeads-->  {"logits": (R, N, K), "offsets": (R, N, 4)}

N = A · sum_l H'_l W'_l over the head levels (H'_l = H_l, or 2 H_l with ``head_upsample``), rows
ordered (level, y, x, anchor) -- the order of :func:`jaxnets.detection.anchors.anchors`, so
prediction n belongs to anchor n; K = 1 (sigmoid: BCE / focal) or 2 (softmax, index 1 = face).
The input is already normalised (the task maps uint8 pixels to floats). Layout NCHW.

Config (``config.model``): ``name="face_detector"``, backbone fields ``depth``, ``width``,
``extra_levels``, ``bn_momentum``, ``bn_eps`` (:func:`~jaxnets.models.resnet.resnet_from_config`),
``grad`` (reaches every layer), and ``heads``: the fields of
:func:`~jaxnets.models.face_heads.face_heads_config` (its ``grad`` is the model's).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import ml_collections

from jaxnets.models.face_heads import FaceHeads, face_heads_from_config
from jaxnets.models.resnet import ResNet, resnet_from_config
from jaxnets.registry import MODELS

__all__ = ["FaceDetector", "face_detector_from_config"]


class FaceDetector(nn.Module):
    """Backbone + neck + heads (§5.2.1). ``__call__(x (R, 3, S, S), train)`` -> ``{"logits":
    (R, N, K), "offsets": (R, N, 4)}``; ``grid_sizes(S)`` -> each head level's (H'_l, W'_l)."""

    backbone: ResNet
    heads: FaceHeads

    def __post_init__(self):
        missing = [lv for lv in self.heads.levels if lv not in self.backbone.levels]
        if missing:
            raise ValueError(f"heads.levels: {missing} are not backbone levels {list(self.backbone.levels)} "
                             f"(raise extra_levels for conv6/conv7)")
        super().__post_init__()

    def grid_sizes(self, size: int) -> tuple[tuple[int, int], ...]:
        """(H'_l, W'_l) of each head level for an S × S input (from the traced feature shapes)."""
        x = jax.ShapeDtypeStruct((1, 3, size, size), jax.numpy.float32)
        shapes = jax.eval_shape(lambda v: self.backbone.init_with_output(jax.random.key(0), v, False)[0], x)
        return self.heads.grid_sizes(shapes)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        features = self.backbone(x, train)  # {level: (R, C_l, H_l, W_l)}
        return self.heads(features, train)


@MODELS.register("face_detector")
def face_detector_from_config(mc) -> FaceDetector:
    """``config.model`` -> :class:`FaceDetector` (fields in the module docstring)."""
    heads = mc.get("heads", None)
    heads = ml_collections.ConfigDict({} if heads is None else heads.to_dict() if hasattr(heads, "to_dict") else dict(heads))
    heads.grad = mc.get("grad", "custom")
    return FaceDetector(backbone=resnet_from_config(mc), heads=face_heads_from_config(heads))

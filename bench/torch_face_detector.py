"""FaceNet (section 5.2.1, :mod:`jaxnets.models.face_detector`) in PyTorch, for side-by-side timing.

The same architecture as ``build_model(config.model)`` for a ``face_detector`` config, layer for
layer (NCHW, float32)::

    x (R, 3, S, S) --trunk--> {conv2 .. conv7: (R, C_l, ceil(S/s_l), ceil(S/s_l))}
                   --neck (FPN or 1×1 projections)--> {level: (R, channels, H_l, W_l)}
                   --cls_head / reg_head (shared over levels)--> logits (R, N, K), offsets (R, N, 4)

* trunk conv1 .. conv5: torchvision's ``resnet{depth}`` itself at width 1 (its ``conv1``,
  ``bn1``, ``relu``, ``maxpool``, ``layer1`` .. ``layer4``; no ``avgpool``/``fc``); at another
  width the same ``_make_layer`` recipe with torchvision's own ``BasicBlock``/``Bottleneck`` and
  every width scaled as :func:`jaxnets.models.resnet.scale_channels` does;
* conv6 / conv7 as ``jaxnets/models/resnet.py`` builds them: 3×3/2 conv (pad 1, no bias,
  C5 -> C5), BN, ReLU, two torchvision bottlenecks of width C5/4 (expansion 4);
* the FPN of ``jaxnets/models/fpn.py``: lateral 1×1 and smoothing 3×3 convs with bias, the
  coarser map brought to the finer size by nearest interpolation (``F.interpolate(size=...)``,
  the rule ours copies) or bilinear ×2 then crop / edge-pad;
* the heads of ``jaxnets/models/face_heads.py``: ``head_blocks`` residual bottlenecks
  (1×1 -> channels/4, 3×3, 1×1 -> channels, + identity, ReLU; per-level BN with
  ``head_norm="batch"``), bilinear ×2 (``align_corners=False``) after bottleneck 2 with
  ``head_upsample``, a final 3×3 conv, flattened to rows (level, y, x, anchor).

:func:`load_jax_variables` copies a JAX model's ``{"params", "batch_stats"}`` into the module
and fails unless the two match one to one, name for name and shape for shape; the test suite
then checks the forward outputs agree (tests/test_bench.py). PyTorch is an optional extra
(``pip install -e '.[baselines]'``: torch, torchvision).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

# depth -> (block, blocks in conv2..conv5): He et al. Table 1, as jaxnets.models.resnet.RESNET_STAGES
STAGES = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)), 50: (Bottleneck, (3, 4, 6, 3)),
          101: (Bottleneck, (3, 4, 23, 3)), 152: (Bottleneck, (3, 8, 36, 3))}
BASE_WIDTHS = (64, 128, 256, 512)


def scale_channels(c: int, width: float) -> int:
    """``c`` at width multiplier ``width``: max(1, floor(c·width + 1/2)), jaxnets' rounding."""
    return max(1, int(np.floor(c * width + 0.5)))


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    """A projection shortcut: 1×1/stride conv (no bias) + BN, torchvision's ``downsample``."""
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


def _bottleneck(cin: int, width: int, stride: int = 1) -> Bottleneck:
    """torchvision's bottleneck (stride on the 3×3) C -> 4·width, projecting when the shape changes."""
    out = width * Bottleneck.expansion
    down = None if stride == 1 and cin == out else _conv_bn(cin, out, stride)
    return Bottleneck(cin, width, stride, down)


class Trunk(nn.Module):
    """ResNet-``depth`` at ``width`` plus ``extra_levels`` (conv6, conv7): x (R, 3, H, W) ->
    {"conv2": (R, C2, ceil(H/4), ceil(W/4)), ..., "conv5" (, "conv6", "conv7")}."""

    def __init__(self, depth: int = 18, width: float = 1.0, extra_levels: int = 0):
        super().__init__()
        block, counts = STAGES[depth]
        if width == 1.0:  # torchvision's own network (its fc and avgpool are not used)
            net = getattr(torchvision.models, f"resnet{depth}")(weights=None)
            self.conv1, self.bn1, self.maxpool = net.conv1, net.bn1, net.maxpool
            stages = [net.layer1, net.layer2, net.layer3, net.layer4]
        else:  # torchvision's _make_layer with every width scaled
            stem = scale_channels(64, width)
            self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(stem)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            stages, cin = [], stem
            for s, (n, base) in enumerate(zip(counts, BASE_WIDTHS)):
                planes = scale_channels(base, width)
                blocks = []
                for i in range(n):
                    stride = 2 if (i == 0 and s > 0) else 1
                    out = planes * block.expansion
                    down = None if stride == 1 and cin == out else _conv_bn(cin, out, stride)
                    blocks.append(block(cin, planes, stride, down))
                    cin = out
                stages.append(nn.Sequential(*blocks))
        for s, stage in enumerate(stages):
            self.add_module(f"layer{s + 1}", stage)
        self.num_stages = len(stages)
        c5 = scale_channels(BASE_WIDTHS[-1], width) * block.expansion
        w, cin = max(1, c5 // 4), c5
        self.extra = nn.ModuleList()
        for _ in range(extra_levels):  # section 5.2.1: stride-2 conv (-> C5), BN, ReLU, 2 bottlenecks
            down = nn.Sequential(nn.Conv2d(cin, c5, 3, 2, 1, bias=False), nn.BatchNorm2d(c5), nn.ReLU(inplace=True))
            self.extra.append(nn.Sequential(down, _bottleneck(c5, w), _bottleneck(4 * w, w)))
            cin = 4 * w  # = C5 when 4 divides it

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.maxpool(F.relu(self.bn1(self.conv1(x))))  # (R, 64w, H/4, W/4)
        out = {}
        for s in range(self.num_stages):
            h = getattr(self, f"layer{s + 1}")(h)
            out[f"conv{s + 2}"] = h
        for j, m in enumerate(self.extra):
            h = m(h)
            out[f"conv{6 + j}"] = h
        return out


def _fit_to(x: torch.Tensor, size) -> torch.Tensor:
    """Crop the bottom/right of x (R, C, H', W'), or repeat its last row/column, to ``size``."""
    h, w = int(size[0]), int(size[1])
    x = x[:, :, :h, :w]
    ph, pw = h - x.shape[2], w - x.shape[3]
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


class FPN(nn.Module):
    """Top-down pathway (Lin et al. 2017): {level: (R, C_l, H_l, W_l)} -> {level: (R, c, H_l, W_l)}."""

    def __init__(self, levels, in_channels: Mapping[str, int], channels: int, upsample: str = "nearest"):
        super().__init__()
        self.levels, self.upsample = tuple(levels), upsample
        self.lateral = nn.ModuleDict({lv: nn.Conv2d(in_channels[lv], channels, 1) for lv in self.levels})
        self.smooth = nn.ModuleDict({lv: nn.Conv2d(channels, channels, 3, 1, 1) for lv in self.levels})

    def _up(self, x: torch.Tensor, size) -> torch.Tensor:
        if self.upsample == "nearest":
            return F.interpolate(x, size=tuple(size), mode="nearest")
        return _fit_to(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), size)

    def forward(self, features):
        lateral = [self.lateral[lv](features[lv]) for lv in self.levels]
        merged = list(lateral)
        for i in range(len(self.levels) - 2, -1, -1):  # coarse to fine
            merged[i] = lateral[i] + self._up(merged[i + 1], lateral[i].shape[2:])
        return {lv: self.smooth[lv](m) for lv, m in zip(self.levels, merged)}


class Projection(nn.Module):
    """The FPN-less rows (v1.0-v1.2): a 1×1 conv per level to ``channels``."""

    def __init__(self, levels, in_channels: Mapping[str, int], channels: int):
        super().__init__()
        self.levels = tuple(levels)
        self.proj = nn.ModuleDict({lv: nn.Conv2d(in_channels[lv], channels, 1) for lv in self.levels})

    def forward(self, features):
        return {lv: self.proj[lv](features[lv]) for lv in self.levels}


class HeadBottleneck(nn.Module):
    """relu(x + conv3(relu(conv2(relu(conv1(x)))))), (R, c, H, W) -> (R, c, H, W); convs with
    bias, or (``norm="batch"``) without bias and a BN per level after each."""

    def __init__(self, channels: int, levels, norm: str = "none"):
        super().__init__()
        mid, bias = max(1, channels // 4), norm == "none"
        self.conv1 = nn.Conv2d(channels, mid, 1, bias=bias)
        self.conv2 = nn.Conv2d(mid, mid, 3, 1, 1, bias=bias)
        self.conv3 = nn.Conv2d(mid, channels, 1, bias=bias)
        self.norm = norm
        if norm == "batch":
            for i, c in ((1, mid), (2, mid), (3, channels)):
                self.add_module(f"bn{i}", nn.ModuleDict({lv: nn.BatchNorm2d(c) for lv in levels}))

    def _bn(self, h: torch.Tensor, i: int, level: str) -> torch.Tensor:
        return getattr(self, f"bn{i}")[level](h) if self.norm == "batch" else h

    def forward(self, x: torch.Tensor, level: str) -> torch.Tensor:
        h = F.relu(self._bn(self.conv1(x), 1, level))
        h = F.relu(self._bn(self.conv2(h), 2, level))
        return F.relu(self._bn(self.conv3(h), 3, level) + x)


class DenseHead(nn.Module):
    """One shared head: {level: (R, c, H_l, W_l)} -> (R, N, K), rows (level, y, x, anchor)."""

    def __init__(self, outputs: int, num_anchors: int, channels: int, levels, num_blocks: int = 4,
                 upsample: bool = False, norm: str = "none", upsample_after: int = 2):
        super().__init__()
        self.outputs, self.upsample, self.upsample_after = outputs, upsample, upsample_after
        self.blocks = nn.ModuleList([HeadBottleneck(channels, levels, norm) for _ in range(num_blocks)])
        self.final = nn.Conv2d(channels, num_anchors * outputs, 3, 1, 1)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, features) -> torch.Tensor:
        out = []
        for level, x in features.items():
            for i, block in enumerate(self.blocks):
                if self.upsample and i == self.upsample_after:
                    x = self._up(x)  # (R, c, 2H, 2W)
                x = block(x, level)
            if self.upsample and self.upsample_after == len(self.blocks):
                x = self._up(x)
            y = self.final(x)  # (R, A·K, H', W'), channel a·K + k
            r, _, h, w = y.shape
            out.append(y.permute(0, 2, 3, 1).reshape(r, h * w * (y.shape[1] // self.outputs), self.outputs))
        return torch.cat(out, dim=1)  # (R, N, K)


class TorchFaceDetector(nn.Module):
    """Trunk + neck + classification and regression heads: x (R, 3, S, S) (normalised) ->
    {"logits": (R, N, K), "offsets": (R, N, 4)}."""

    def __init__(self, model_config):
        super().__init__()
        mc = model_config
        hc = mc["heads"]
        depth, width, extra = int(mc.get("depth", 18)), float(mc.get("width", 1.0)), int(mc.get("extra_levels", 0))
        levels = tuple(hc["levels"])
        self.levels = levels
        self.backbone = Trunk(depth, width, extra)
        block = STAGES[depth][0]
        chans = {f"conv{i + 2}": scale_channels(c, width) * block.expansion for i, c in enumerate(BASE_WIDTHS)}
        for j in range(extra):
            chans[f"conv{6 + j}"] = 4 * max(1, chans["conv5"] // 4)
        c = int(hc["channels"])
        self.neck = (FPN(levels, chans, c, hc.get("fpn_upsample", "nearest")) if hc.get("use_fpn", True)
                     else Projection(levels, chans, c))
        common = dict(num_anchors=int(hc["num_anchors"]), channels=c, levels=levels,
                      num_blocks=int(hc.get("head_blocks", 4)), upsample=bool(hc.get("head_upsample", False)),
                      norm=hc.get("head_norm", "none"))
        self.cls_head = DenseHead(int(hc.get("num_logits", 1)), **common)
        self.reg_head = DenseHead(4, **common)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(x)
        neck = self.neck(features)
        neck = {lv: neck[lv] for lv in self.levels}  # fine to coarse
        return {"logits": self.cls_head(neck), "offsets": self.reg_head(neck)}


def count_params(module: nn.Module) -> int:
    """Trainable scalars (BN running statistics are buffers, as JAX's ``batch_stats``)."""
    return sum(p.numel() for p in module.parameters())


_LEAF = {"w": "weight", "b": "bias", "gamma": "weight", "beta": "bias", "mean": "running_mean", "var": "running_var"}


def _torch_module(path: tuple[str, ...]) -> str:
    """A JAX module path, e.g. ("backbone", "conv3_0", "downsample_bn") -> its torch name,
    "backbone.layer2.0.downsample.1"."""
    out = []
    for part in path:
        if m := re.fullmatch(r"conv([2-5])_(\d+)", part):  # stage block
            out += [f"layer{int(m[1]) - 1}", m[2]]
        elif m := re.fullmatch(r"conv([67])_(\d+)", part):  # extra level's bottleneck i
            out += ["extra", str(int(m[1]) - 6), str(int(m[2]) + 1)]
        elif m := re.fullmatch(r"conv([67])_(down|bn)", part):  # extra level's stride-2 conv, BN
            out += ["extra", str(int(m[1]) - 6), "0", "0" if m[2] == "down" else "1"]
        elif part in ("downsample_conv", "downsample_bn"):
            out += ["downsample", "0" if part.endswith("conv") else "1"]
        elif part in ("fpn", "projection"):
            out.append("neck")
        elif m := re.fullmatch(r"(lateral|smooth|proj)_(\w+)", part):
            out += [m[1], m[2]]
        elif m := re.fullmatch(r"block(\d+)", part):
            out += ["blocks", str(int(m[1]) - 1)]
        elif m := re.fullmatch(r"(bn[123])_(\w+)", part):  # a head bottleneck's per-level BN
            out += [m[1], m[2]]
        elif part != "heads":
            out.append(part)
    return ".".join(out)


def jax_state_dict(variables) -> dict[str, np.ndarray]:
    """``{"params", "batch_stats"}`` of the JAX FaceDetector -> {torch state_dict key: array}."""
    out = {}
    for collection in ("params", "batch_stats"):
        flat = _flatten(variables.get(collection, {}))
        for path, value in flat.items():
            out[f"{_torch_module(path[:-1])}.{_LEAF[path[-1]]}"] = value
    return out


def _flatten(tree, prefix=()) -> dict[tuple[str, ...], object]:
    if isinstance(tree, Mapping):
        out = {}
        for k, v in tree.items():
            out.update(_flatten(v, prefix + (str(k),)))
        return out
    return {prefix: tree}


def load_jax_variables(module: TorchFaceDetector, variables) -> None:
    """Copy the JAX model's parameters and BN statistics into ``module`` (in place).

    ValueError unless every torch tensor (bar ``num_batches_tracked``) receives exactly one JAX
    array of its shape and every JAX array is used: the two networks are the same, name for name.
    Leaves may be arrays or ``jax.ShapeDtypeStruct`` (then only the match is checked).
    """
    theirs = jax_state_dict(variables)
    ours = {k: v for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing, extra = sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))
    shapes = [f"{k}: torch {tuple(ours[k].shape)} vs jax {tuple(theirs[k].shape)}"
              for k in sorted(set(ours) & set(theirs)) if tuple(ours[k].shape) != tuple(theirs[k].shape)]
    if missing or extra or shapes:
        raise ValueError(f"torch and JAX models differ: torch only {missing[:5]}, jax only {extra[:5]}, "
                         f"shapes {shapes[:5]}")
    if any(not hasattr(v, "__array__") for v in theirs.values()):
        return  # shapes only
    with torch.no_grad():
        for k, v in ours.items():
            v.copy_(torch.from_numpy(np.array(theirs[k], np.float32)))


__all__ = ["TorchFaceDetector", "Trunk", "FPN", "DenseHead", "count_params", "jax_state_dict", "load_jax_variables"]

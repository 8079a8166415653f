"""The TCNs of section 6 in PyTorch (CPU), for side-by-side timing only.

The same dataflow as ``jaxnets.models.tcn`` (Single / Double / Radical blocks, 1×1 projections
where widths differ, ReLU after each block's output sum, the last convolution of a conv-head
network giving the logits without ReLU/dropout), the same initialisation family (kernel
directions N(0, 0.01²), g = ||v||, zero biases), weight normalisation ``w = g v / ||v||``
computed in the forward pass as in ours, dropout 0.05, SGD with momentum, loss on the last
timestep. ``padding="left"`` pads d(k-1) zeros on the left only (the paper's §6.2.1);
``padding="chop"`` pads both sides and drops the last d(k-1) outputs (Bai et al.'s ``Chomp1d``).
PyTorch is an optional extra (``pip install torch==2.13.0``).
"""

from __future__ import annotations

CONVS = {"single": 2, "double": 2, "radical": 4}
PRESETS = {  # (num_blocks, dilation a, b): d_j = a j - b
    "single": (12, 3, 2),
    "double": (12, 3, 2),
    "radical": (6, 6, 5),
}


def build_torch_tcn(block: str = "single", channels: int = 32, kernel_size: int = 6, num_classes: int = 10,
                    dropout: float = 0.05, padding: str = "left", num_blocks: int | None = None):
    """The paper's SeqMNIST classifier: x (R, 1, T) -> logits of the last timestep (R, num_classes)."""
    import torch
    import torch.nn as tnn
    import torch.nn.functional as F

    if padding not in ("left", "chop"):
        raise ValueError(f"padding={padding!r}: 'left' or 'chop'")
    n, a, b = PRESETS[block]
    n = num_blocks or n
    dilations = [a * j - b for j in range(1, n + 1)]

    class WNConv(tnn.Module):
        """Weight-normalised causal conv: (R, C, T) -> (R, C', T)."""

        def __init__(self, cin, cout, k, d):
            super().__init__()
            self.v = tnn.Parameter(torch.randn(cout, cin, k) * 0.01)
            self.g = tnn.Parameter(self.v.detach().flatten(1).norm(dim=1).clone())
            self.b = tnn.Parameter(torch.zeros(cout))
            self.d, self.p = d, d * (k - 1)

        def forward(self, x):
            w = self.g[:, None, None] * self.v / self.v.flatten(1).norm(dim=1)[:, None, None]
            if padding == "left":
                return F.conv1d(F.pad(x, (self.p, 0)), w, self.b, dilation=self.d)
            y = F.conv1d(x, w, self.b, padding=self.p, dilation=self.d)  # T + p outputs
            return y[:, :, : -self.p] if self.p else y  # chomp

    class Block(tnn.Module):
        def __init__(self, cin, c, cout, d, logits):
            super().__init__()
            k, m = kernel_size, CONVS[block]
            widths = [(cin, c)] + [(c, c)] * (m - 2) + [(c, cout)]
            self.convs = tnn.ModuleList([WNConv(i, o, k, d) for i, o in widths])
            self.drop = tnn.Dropout(dropout)
            self.logits = logits

            def proj(i, o):
                return tnn.Conv1d(i, o, 1) if i != o else None

            self.skip = proj(cin, cout)
            self.skip_in2 = proj(cin, c) if block == "radical" else None
            self.skip_a2 = proj(c, cout) if block == "radical" else None

        def f(self, h, i, act=True):
            h = self.convs[i](h)
            return self.drop(F.relu(h)) if act else h

        def forward(self, x, carry):
            p = lambda m, h: h if m is None else m(h)  # noqa: E731
            last = not self.logits
            if block == "radical":
                a1 = self.f(x, 0)
                a2 = self.f(a1, 1) + p(self.skip_in2, x)
                a3 = self.f(a2, 2) + a1
                s = self.f(a3, 3, last) + p(self.skip_a2, a2) + p(self.skip, x)
                carry = None
            else:
                a1 = self.f(x, 0)
                if block == "double" and carry is not None:
                    a1 = a1 + carry
                s = self.f(a1, 1, last) + p(self.skip, x)
                carry = a1
            return (s if self.logits else F.relu(s)), carry

    class TCN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = tnn.ModuleList([
                Block(1 if i == 0 else channels, channels, num_classes if i == n - 1 else channels, d, i == n - 1)
                for i, d in enumerate(dilations)
            ])
            for m in self.modules():
                if isinstance(m, tnn.Conv1d):
                    tnn.init.normal_(m.weight, 0.0, 0.01)
                    tnn.init.zeros_(m.bias)

        def forward(self, x):
            h, carry = x, None
            for blk in self.blocks:
                h, carry = blk(h, carry)
            return h[:, :, -1]  # (R, num_classes): the last timestep

    return TCN()


def load_jax_params(model, params) -> None:
    """Copy a ``jaxnets`` SequenceClassifier's ``variables["params"]`` into ``model`` (in place)."""
    import numpy as np
    import torch

    tree = params["tcn"]
    with torch.no_grad():
        for i, blk in enumerate(model.blocks):
            p = tree[f"block{i + 1}"]
            for j, conv in enumerate(blk.convs):
                for name in ("v", "g", "b"):
                    getattr(conv, name).copy_(torch.from_numpy(np.array(p[f"conv{j + 1}"][name])))
            skip = "skip_out" if "skip_out" in p else "skip"  # Radical names its input->output skip
            for ours, theirs in (("skip", skip), ("skip_in2", "skip_in2"), ("skip_a2", "skip_a2")):
                m = getattr(blk, ours)
                if m is not None:
                    m.weight.copy_(torch.from_numpy(np.array(p[theirs]["w"])))
                    m.bias.copy_(torch.from_numpy(np.array(p[theirs]["b"])))


def time_torch_tcn_train_step(block: str = "single", padding: str = "left", batch: int = 100, seq: int = 784,
                              steps: int = 5, warmup: int = 1, seed: int = 0) -> float:
    """Median seconds per SGD-momentum train step of the paper's TCN on (batch, 1, seq) inputs."""
    import statistics
    import time

    import torch

    torch.manual_seed(seed)
    model = build_torch_tcn(block, padding=padding)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.rand(batch, 1, seq)
    y = torch.randint(0, 10, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)

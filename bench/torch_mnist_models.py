"""The Table-1 CNN and Table-2 FFN in PyTorch (CPU), for side-by-side timing only.

Same layers, shapes, initialisation family (He normal) and optimizer (SGD with momentum) as
``jaxnets.models.mnist``; PyTorch is an optional extra (``pip install torch==2.13.0``).
"""

from __future__ import annotations


def build_torch_cnn(channels: int = 64, num_classes: int = 10):
    import torch.nn as tnn

    def block(cin, cout, relu=True):
        mods = [tnn.BatchNorm2d(cin, momentum=0.1, eps=1e-5), tnn.Conv2d(cin, cout, 3, 1, 0)]
        if relu:
            mods.append(tnn.ReLU())
        return mods

    layers = [
        *block(1, channels), *block(channels, channels), tnn.MaxPool2d(2, 2),
        *block(channels, channels), *block(channels, channels), *block(channels, channels), tnn.MaxPool2d(2, 2),
        *block(channels, num_classes, relu=False), tnn.Flatten(),
    ]
    model = tnn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, tnn.Conv2d):
            tnn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            tnn.init.zeros_(m.bias)
    return model


def time_torch_train_step(batch: int = 128, steps: int = 20, warmup: int = 3, seed: int = 0) -> float:
    """Median seconds per SGD-momentum train step of the Table-1 CNN at ``batch`` on the CPU."""
    import statistics
    import time

    import torch

    torch.manual_seed(seed)
    model = build_torch_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.rand(batch, 1, 28, 28)
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

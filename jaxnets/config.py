"""Experiment configs: one `get_config()` file per paper table row, plus dotted overrides.

A config file is a plain Python module (e.g. ``experiments/mnist/cnn_fashion.py``) whose
``get_config()`` returns an ``ml_collections.ConfigDict``. It is imported as a module from its
path (never ``exec``-ed into globals). Any field can then be overridden from the command line:

    jaxnets train experiments/mnist/cnn_mnist.py --set num_steps=2000 --set optimizer.learning_rate=0.01

Every config has a smoke form (``smoke=True`` via :func:`smoke_config`) that the tests run end
to end in seconds.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import sys
from collections.abc import Iterable

import ml_collections


class ConfigError(ValueError):
    """A config file or an override is malformed; the message names the file or argument."""


def mnist_base() -> ml_collections.ConfigDict:
    """Shared defaults of the section-4 experiments (Tables 1-3): SGD with momentum, step-wise LR."""
    c = ml_collections.ConfigDict()
    c.paper = ""  # paper row this config reproduces, e.g. "Table 3, CNN (99.30%)"
    c.task = "classification"
    c.seed = 0
    c.model = ml_collections.ConfigDict(
        dict(name="mnist_cnn", grad="custom", bn_momentum=0.1, bn_eps=1e-5, num_classes=10)
    )
    c.data = ml_collections.ConfigDict(
        dict(
            name="mnist",  # "mnist" | "fashion_mnist"
            data_dir="",  # tfds data dir ("" = tfds default, ~/tensorflow_datasets)
            idx_dir="",  # directory of IDX files given on the command line
            validation_size=5000,  # held out of training as in the paper (5,000 of 60,000)
            limit=0,  # if > 0, keep only this many examples per split (smoke runs)
            # training-image augmentation (not in the paper; off): jaxnets.train.augment
            augment=ml_collections.ConfigDict(dict(hflip=False, max_shift=0)),
        )
    )
    c.batch_size = 50
    c.eval_batch_size = 1000
    c.num_steps = 100_000
    c.optimizer = ml_collections.ConfigDict(
        dict(name="sgd", learning_rate=1e-3, momentum=0.9, nesterov=False, weight_decay=0.0)
    )
    # Step-wise schedule: list of [step, factor]; the LR is multiplied by factor at that step.
    c.schedule = [[70_000, 0.1], [90_000, 0.1]]
    c.log_every = 100
    c.eval_every = 5000
    c.checkpoint_every = 5000
    c.keep_checkpoints = 2  # most recent checkpoints kept besides the best-on-validation one
    c.expected = ml_collections.ConfigDict(dict(test_accuracy=0.0, walltime="", hardware=""))
    c.smoke = False
    return c


def tcn_base() -> ml_collections.ConfigDict:
    """Shared defaults of the section-6 experiments (Tables 5-6): the paper's SeqMNIST run.

    Model: ``jaxnets.models.tcn_model_config()`` -- 12 Single blocks (24 convolutions), 32
    channels, kernel 6, linear dilations d_b = 3b - 2, weight norm, ReLU, dropout 0.05 (the paper
    gives no rate), a 10-channel output convolution read at the last timestep.
    Data: Sequential MNIST, 784 steps (``data.sequence``, :mod:`jaxnets.data.sequence`), 5,000 of
    the 60,000 training images held out for validation; pixels standardised with MNIST's mean and
    std (0.1307, 0.3081) as the original TCN's loader does (the paper, which builds on it, does
    not say; without it SGD stayed at chance for 800 steps in our CPU runs).
    "All models were trained simultaneously on the same randomly picked mini-batches of 100
    images": batch 100, one seed for every row.
    Optimizer: SGD with momentum (0.9; the paper gives no value), learning rate 0.001 "increased
    by a factor of 10 after 200 and 1000 iterations, and decreased by a factor of 10 after 70 000
    and 90 000 iterations" of 100 000 (PMNIST configs override the schedule).
    """
    from jaxnets.models import tcn_model_config  # section-6 model defaults live with the model

    c = ml_collections.ConfigDict()
    c.paper = ""
    c.task = "classification"
    c.seed = 0
    c.model = tcn_model_config()
    c.data = ml_collections.ConfigDict(
        dict(
            name="mnist",  # "mnist" | "fashion_mnist" | "mnist_sample"
            data_dir="",
            idx_dir="",
            validation_size=5000,
            limit=0,
            sequence="sequential",  # "sequential" (SeqMNIST) | "permuted" (PMNIST); see jaxnets.data.sequence
            image_size=28,  # 28 -> 784 steps; a divisor of 28 shrinks the images (CPU runs only)
            normalize=(0.1307, 0.3081),  # pixels standardised with MNIST's mean/std, as the original TCN
        )
    )
    c.batch_size = 100
    c.eval_batch_size = 500
    c.num_steps = 100_000
    c.optimizer = ml_collections.ConfigDict(
        dict(name="sgd", learning_rate=1e-3, momentum=0.9, nesterov=False, weight_decay=0.0)
    )
    c.schedule = [[200, 10.0], [1000, 10.0], [70_000, 0.1], [90_000, 0.1]]
    c.log_every = 100
    c.eval_every = 5000
    c.checkpoint_every = 5000
    c.keep_checkpoints = 2
    c.expected = ml_collections.ConfigDict(dict(test_accuracy=0.0, walltime="", hardware=""))
    c.smoke = False
    return c


def smoke_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The seconds-long form of any config: a few steps on a few hundred examples."""
    c = ml_collections.ConfigDict(config.to_dict())
    c.smoke = True
    c.num_steps = 6
    c.batch_size = 8
    c.eval_batch_size = 64
    c.log_every = 2
    c.eval_every = 3
    c.checkpoint_every = 3
    c.schedule = [[4, 0.5]]
    if "data" in c:
        c.data.validation_size = min(c.data.validation_size, 64)
        c.data.limit = 256  # examples per split
        if c.data.get("sequence", ""):
            c.data.image_size = 7  # pixel sequences: 7×7 = 49 steps
    if "model" in c and c.model.get("name") == "tcn":
        # The same block type, head, kernel and dilation rule, but 2 blocks: XLA's CPU compile
        # time grows with depth (~1 s per convolution), and 24 convolutions take ~30 s to compile.
        c.model.num_blocks = min(int(c.model.num_blocks), 2)
    return c


def load_config(path: str | pathlib.Path) -> ml_collections.ConfigDict:
    """Import ``path`` as a module and return its ``get_config()``."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    name = "jaxnets_config_" + "_".join(path.with_suffix("").parts[-3:]).replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: not a Python config file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a syntax or import error inside the user's config file
        raise ConfigError(f"{path}: failed to import: {type(e).__name__}: {e}") from e
    if not hasattr(module, "get_config"):
        raise ConfigError(f"{path}: defines no get_config()")
    config = module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{path}: get_config() must return an ml_collections.ConfigDict")
    return config


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string such as fashion_mnist


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> ml_collections.ConfigDict:
    """Apply ``key.sub=value`` overrides; an unknown key or a wrong type names the argument."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. num_steps=2000")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node = config
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], ml_collections.ConfigDict):
                raise ConfigError(f"override {item!r}: unknown config field {key!r}")
            node = node[p]
        leaf = parts[-1]
        if leaf not in node:
            raise ConfigError(f"override {item!r}: unknown config field {key!r}")
        value = _parse_value(text)
        old = node[leaf]
        if isinstance(old, bool) and not isinstance(value, bool):
            raise ConfigError(f"override {item!r}: {key} is a bool; use True or False")
        if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(old, (int, float)) and not isinstance(old, bool) and not isinstance(value, (int, float)):
            raise ConfigError(f"override {item!r}: {key} must be a number, got {text!r}")
        if isinstance(old, str) and not isinstance(value, str):
            value = text
        try:
            node[leaf] = value
        except (TypeError, ValueError) as e:
            raise ConfigError(f"override {item!r}: {e}") from e
    return config


#: The paper's Table-3 rows (section 4.3, PyTorch run on a GTX 1080 Ti).
TABLE3 = {
    "mnist_cnn": "Table 3, Convolutional Neural Network: 99.30% test accuracy on MNIST, val. loss 0.026",
    "mnist_ffn": "Table 3, Feed-forward Neural Network: 97.40% test accuracy on MNIST, val. loss 0.146",
}


def table3_config(model: str, data: str) -> ml_collections.ConfigDict:
    """The paper's Table-3 setting (100k iterations, batch 50, lr 1e-3 ÷10 at 70k/90k) for one row."""
    c = mnist_base()
    c.model.name = model
    c.data.name = data
    c.paper = TABLE3[model] + ("" if data == "mnist" else f" (run here on {data})")
    c.expected.hardware = "paper: Nvidia GTX 1080 Ti (PyTorch)"
    return c


def cpu_schedule(
    c: ml_collections.ConfigDict,
    *,
    batch_size: int,
    num_steps: int,
    learning_rate: float,
    decay_at: tuple[int, int],
    eval_every: int,
    log_every: int,
    weight_decay: float = 5e-4,
) -> ml_collections.ConfigDict:
    """Shorten a Table-3 config to a CPU-feasible schedule: LR ÷10 at ``decay_at``, eval = checkpoint."""
    c.batch_size = batch_size
    c.num_steps = num_steps
    c.optimizer.learning_rate = learning_rate
    c.optimizer.weight_decay = weight_decay
    c.schedule = [[decay_at[0], 0.1], [decay_at[1], 0.1]]
    c.eval_every = c.checkpoint_every = eval_every
    c.log_every = log_every
    c.expected.hardware = "2-core CPU (this project's dev machine)"
    return c


#: The paper's section-6.3.3 schedules: LR x10 after 200 and 1,000 iterations, /10 near the end.
TCN_PAPER_SCHEDULES = {
    "sequential": (100_000, [[200, 10.0], [1000, 10.0], [70_000, 0.1], [90_000, 0.1]]),  # Table 5
    "permuted": (200_000, [[200, 10.0], [1000, 10.0], [130_000, 0.1], [180_000, 0.1]]),  # Table 6
}


def tcn_paper_config(block: str, sequence: str) -> ml_collections.ConfigDict:
    """One row of Tables 5-6: ``block`` ("single" | "double" | "radical") on ``sequence``
    ("sequential" = SeqMNIST, "permuted" = PMNIST), full MNIST, the paper's schedule."""
    from jaxnets.models import tcn_model_config

    c = tcn_base()
    c.model = tcn_model_config(block)
    c.data.name = "mnist"
    c.data.sequence = sequence
    c.num_steps, c.schedule = TCN_PAPER_SCHEDULES[sequence]
    c.expected.hardware = "paper: not stated for section 6"
    return c


#: Reduced-scale section-6 runs: iterations of batch 32 on 14×14 images (196-step sequences).
TCN_CPU_STEPS = 1_500


def tcn_cpu_config(
    preset: str, sequence: str, *, data: str = "mnist_sample", peak: float = 0.1
) -> ml_collections.ConfigDict:
    """A section-6 model at the reduced scale that trains in minutes on a 2-core CPU.

    ``preset``: a TCN preset ("single" | "double" | "radical" | "original"); ``sequence``:
    "sequential" | "permuted"; ``data``: "mnist_sample" (the bundled 10k sample, split 8,000 /
    1,000 / 1,000) or a full set ("mnist" | "fashion_mnist", 5,000 held out for validation).
    What differs from the paper: each image shrunk to 14×14 by 2×2 block means (196 steps, not
    784); batch 32, not 100; 1,500 iterations, not 100k / 200k. Schedule: SGD with momentum 0.9,
    the paper's compressed -- learning rate 0.001, ×10 after 50 and (for ``peak`` 0.1) after 150
    iterations, ÷10 at 70% and 90% of the run. The "original" preset gets its own published
    optimizer instead: Adam 2e-3, ÷10 halfway. Best-on-validation checkpoint tested.
    """
    from jaxnets.models import tcn_model_config

    if peak not in (0.01, 0.1):
        raise ValueError(f"peak={peak!r}: the compressed paper schedule peaks at 0.01 or 0.1")
    n = TCN_CPU_STEPS
    c = tcn_base()
    c.model = tcn_model_config(preset)
    c.data.name = data
    if data == "mnist_sample":
        c.data.validation_size = 1000
    if data == "fashion_mnist":
        c.data.normalize = (0.2860, 0.3530)  # Fashion-MNIST's own pixel mean / std
    c.data.sequence = sequence
    c.data.image_size = 14  # 2x2 block means: 196 steps
    c.batch_size = 32
    c.eval_batch_size = 500
    c.num_steps = n
    raises = [[50, 10.0], [150, 10.0]] if peak == 0.1 else [[50, 10.0]]
    c.schedule = raises + [[int(0.7 * n), 0.1], [int(0.9 * n), 0.1]]
    if preset == "original":
        c.optimizer.name = "adam"
        c.optimizer.learning_rate = 2e-3
        c.optimizer.momentum = 0.0  # unused by Adam (PyTorch's defaults b1 0.9, b2 0.999, eps 1e-8)
        c.schedule = [[n // 2, 0.1]]
    c.log_every = 25
    c.eval_every = 250
    c.checkpoint_every = 250
    c.expected.hardware = "2-core CPU (this project's dev machine)"
    return c

"""Shared settings of the section-4 experiments (Tables 1-3): the base config, the paper's
Table-3 rows, the CPU schedule and the smoke form. Each config file in this folder is one row.
"""

from __future__ import annotations

import ml_collections


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
            streaming=False,  # True: read training batches by index from the prepared split (jaxnets.data.batches)
            # training-image augmentation (not in the paper; off): jaxnets.data.transforms
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


def smoke_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The seconds-long form of a section-4 config: a few steps on a few hundred examples."""
    c = ml_collections.ConfigDict(config.to_dict())
    c.smoke = True
    c.num_steps = 6
    c.batch_size = 8
    c.eval_batch_size = 64
    c.log_every = 2
    c.eval_every = 3
    c.checkpoint_every = 3
    c.schedule = [[4, 0.5]]
    c.data.validation_size = min(c.data.validation_size, 64)
    c.data.limit = 256  # examples per split
    return c

"""FFN (Table 2) on the bundled MNIST sample.

Paper row: Table 3, Feed-forward Neural Network (paper: 97.40% on full MNIST) -- on a CPU-feasible schedule (the paper ran 100k iterations on a GPU).
Schedule: SGD with momentum 0.9, batch 64, learning rate 0.02 divided by 10 at 1750 and 2250
of 2500 iterations (20 epochs of the 8,000 training images), weight decay 0.0005; best-on-validation checkpoint
(evaluated every 125 iterations) is the one tested.
Data: the bundled 10k MNIST sample, split 8,000 / 1,000 / 1,000 (jaxnets.data).
Command:  jaxnets train experiments/mnist/ffn_sample_cpu.py --workdir runs/ffn_sample_cpu
Expected: target >= 94.0% test accuracy (measured results: README.md).
"""

from experiments.mnist.common import cpu_schedule, table3_config, smoke_config


def get_config(smoke: bool = False):
    c = table3_config("mnist_ffn", "mnist_sample")
    c.data.validation_size = 1000
    cpu_schedule(
        c,
        batch_size=64,
        num_steps=2500,
        learning_rate=0.02,
        decay_at=(1750, 2250),
        eval_every=125,
        log_every=25,
    )
    c.expected.test_accuracy = 0.94
    return smoke_config(c) if smoke else c

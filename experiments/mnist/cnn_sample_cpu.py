"""CNN (Table 1) on the bundled MNIST sample: the README's main job and a results row.

Paper row: Table 3, Convolutional Neural Network (paper: 99.30% on full MNIST) -- on a CPU-feasible schedule (the paper ran 100k iterations on a GPU).
Schedule: SGD with momentum 0.9, batch 64, learning rate 0.02 divided by 10 at 875 and 1125
of 1250 iterations (10 epochs of the 8,000 training images), weight decay 0.0005; best-on-validation checkpoint
(evaluated every 125 iterations) is the one tested.
Data: the bundled 10k MNIST sample, split 8,000 / 1,000 / 1,000 (jaxnets.data).
Command:  jaxnets train experiments/mnist/cnn_sample_cpu.py --workdir runs/cnn_sample_cpu
Expected: target >= 98.0% test accuracy (measured results: README.md).
"""

from experiments.mnist.common import cpu_schedule, table3_config, smoke_config


def get_config(smoke: bool = False):
    c = table3_config("mnist_cnn", "mnist_sample")
    c.data.validation_size = 1000
    cpu_schedule(
        c,
        batch_size=64,
        num_steps=1250,
        learning_rate=0.02,
        decay_at=(875, 1125),
        eval_every=125,
        log_every=25,
    )
    c.expected.test_accuracy = 0.98
    return smoke_config(c) if smoke else c

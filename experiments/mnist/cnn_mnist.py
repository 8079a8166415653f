"""CNN (Table 1) on MNIST, the paper's full 100k-iteration schedule.

Paper row: Table 3, Convolutional Neural Network on MNIST: 99.30% test accuracy, validation loss 0.026.
Setting: the paper's PyTorch run (section 4.3): SGD with momentum 0.9, batch 50, learning rate
0.001 divided by 10 at 70,000 and 90,000 of 100,000 iterations, 5,000 training images held out
for validation, checkpoint every 5,000 iterations, best-on-validation checkpoint evaluated on test.
Data: full MNIST when a prepared tfds `mnist` or an IDX directory (--set data.idx_dir=...) is
found, else the bundled 10k sample (see jaxnets.data).
Command:  jaxnets train experiments/mnist/cnn_mnist.py --workdir runs/cnn_mnist
Expected: the paper's 99.30% test accuracy
"""

from experiments.mnist.common import table3_config, smoke_config


def get_config(smoke: bool = False):
    c = table3_config("mnist_cnn", "mnist")
    c.expected.test_accuracy = 0.993
    c.expected.walltime = "not run here: 100k steps; estimate from bench/ (CPU) or a GPU"
    return smoke_config(c) if smoke else c

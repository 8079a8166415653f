"""CNN (Table 1) on the bundled MNIST sample: the README's main job and a results row.

Paper row: Table 3, Convolutional Neural Network (paper: 99.30% on full MNIST) -- on a CPU-feasible schedule (the paper ran 100k iterations on a GPU).
Schedule: SGD with momentum 0.9, batch 64, learning rate 0.02 divided by 10 at 875 and 1125
of 1250 iterations (10 epochs of the 8,000 training images), weight decay 0.0005; best-on-validation checkpoint
(evaluated every 125 iterations) is the one tested.
Data: the bundled 10k MNIST sample, split 8,000 / 1,000 / 1,000 (jaxnets.data).
Command:  jaxnets train experiments/mnist/cnn_sample_cpu.py --workdir runs/cnn_sample_cpu
Expected: target >= 98.0% test accuracy; see README results for the measured value and walltime
"""

from jaxnets.config import mnist_base


def get_config():
    c = mnist_base()
    c.paper = "Table 3, Convolutional Neural Network (paper: 99.30% on full MNIST)"
    c.model.name = "mnist_cnn"
    c.data.name = "mnist_sample"
    c.data.validation_size = 1000
    c.batch_size = 64
    c.num_steps = 1250
    c.optimizer.learning_rate = 0.02
    c.optimizer.weight_decay = 0.0005
    c.schedule = [[875, 0.1], [1125, 0.1]]
    c.log_every = 25
    c.eval_every = 125
    c.checkpoint_every = 125
    c.expected.test_accuracy = 0.98
    c.expected.walltime = "see README results"
    c.expected.hardware = "2-core CPU (this project's dev machine)"
    return c

"""TCN (Single) on Sequential Fashion-MNIST, reduced to run on a 2-core CPU in minutes.

Paper row: none -- the paper runs section 6 on MNIST only (Tables 5-6); Sequential
Fashion-MNIST is the same task on the harder full Fashion-MNIST (55,000 train / 5,000
validation / 10,000 test), through the same tfds pipeline (`apt-get install -y
dataset-fashion-mnist`).
Reduced scale (experiments.tcn.common.tcn_cpu_config): images shrunk to 14x14 (196 steps, row by row),
batch 32, 1,500 iterations (less than one epoch of the 55,000 images); SGD with momentum 0.9,
learning rate 0.001, x10 after 50 and 150 iterations (peak 0.1), /10 at 70% and 90%. Pixels are
standardised with Fashion-MNIST's own mean / std (0.2860, 0.3530) instead of MNIST's.
Same model as the paper's Single row: 12 Single blocks, d_b = 3b - 2, kernel 6, 32 channels,
weight norm, dropout 0.05, output convolution read at the last timestep.
Command:  jaxnets train experiments/tcn/seqfashion_single_cpu.py --workdir runs/seqfashion_single_cpu
Expected: no target (a reduced-scale run; the paper's number is above); measured results are
in docs/tcn_results.md.
"""

from experiments.tcn.common import tcn_cpu_config, smoke_config


def get_config(smoke: bool = False):
    c = tcn_cpu_config("single", "sequential", data="fashion_mnist")
    c.paper = "none (section 6 on Fashion-MNIST; the paper's Table 5 Single row is 99.53% on MNIST)"
    return smoke_config(c) if smoke else c

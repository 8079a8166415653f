"""TCN (Double) on SequenceMNIST, reduced to run on a 2-core CPU in minutes.

Paper row: Table 5 (SequenceMNIST), TCN (Double): paper 99.34% on full MNIST, 784 steps -- here
at a CPU-feasible reduced scale.
Reduced scale (what differs from the paper): the bundled 10k MNIST sample (8,000 train / 1,000
validation / 1,000 test) instead of 60k/10k; every image shrunk to 14x14 by averaging 2x2
blocks, so the sequence has 196 steps instead of 784 (Sequential MNIST, row by row); batch 32
instead of 100; 1,500 iterations instead of 100,000.
Schedule: SGD with momentum 0.9, the paper's schedule compressed: learning rate 0.001, x10 after
50 and 150 iterations (peak 0.1, as the paper), /10 at 70% and 90% of the run.
Same as the paper: the model (12 Double blocks, d_b = 3b - 2, kernel 6, 32 channels, 24
convolutions, weight norm, dropout 0.05, 10-channel output convolution, prediction and loss on
the last timestep only); best-on-validation checkpoint tested.
Command:  jaxnets train experiments/tcn/seqmnist_double_cpu.py --workdir runs/seqmnist_double_cpu
Expected: no target (a reduced-scale run; the paper's number is above); measured results are
in docs/tcn_results.md.
"""

from experiments.tcn.common import tcn_cpu_config, smoke_config


def get_config(smoke: bool = False):
    c = tcn_cpu_config("double", "sequential")
    c.paper = (
        "Table 5 (SequenceMNIST), TCN (Double): paper 99.34% on full MNIST, 784 steps -- here"
        " at a CPU-feasible reduced scale"
    )
    return smoke_config(c) if smoke else c

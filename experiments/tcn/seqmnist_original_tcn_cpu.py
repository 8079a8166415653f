"""Bai et al.'s original TCN on SequenceMNIST, at the reduced scale of the `_cpu` rows.

Paper row: Table 5 (SequenceMNIST), TCN (Original) [33]: Bai et al. 99.0% on full MNIST, 784 steps -- here at a CPU-feasible reduced scale, on the same data, sequence
length, batch and number of iterations as `seqmnist_single_cpu.py`, so the original scheme and the
paper's are compared on the same code.
Model: the original TCN's published setting (jaxnets.models.tcn_model_config("original")): 8
levels x 25 channels, kernel 7, exponential dilations 2^i, dropout 0.05, linear head on the last
timestep. Optimizer: its own, Adam 2e-3 /10 halfway (after 750 of 1,500 iterations).
Reduced scale (experiments.tcn.common.tcn_cpu_config): the bundled 10k MNIST sample (8,000 / 1,000 /
1,000), images shrunk to 14x14 (196 steps), batch 32, 1,500 iterations.
Command:  jaxnets train experiments/tcn/seqmnist_original_tcn_cpu.py --workdir runs/seqmnist_original_tcn_cpu
Expected: no target (a reduced-scale run; the paper's number is above); measured results are
in docs/tcn_results.md.
"""

from experiments.tcn.common import tcn_cpu_config, smoke_config


def get_config(smoke: bool = False):
    c = tcn_cpu_config("original", "sequential")
    c.paper = "Table 5 (SequenceMNIST), TCN (Original) [33]: Bai et al. 99.0% on full MNIST, 784 steps -- here at a CPU-feasible reduced scale"
    return smoke_config(c) if smoke else c

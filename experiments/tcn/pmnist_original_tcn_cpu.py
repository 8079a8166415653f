"""Bai et al.'s original TCN on Permuted SequenceMNIST, at the reduced scale of the `_cpu` rows.

Paper row: Table 6 (Permuted SequenceMNIST), TCN (Original) [33]: Bai et al. 97.2% on full
MNIST, 784 steps -- here at a CPU-feasible reduced scale, on the same data, permutation,
sequence length, batch and iterations as `pmnist_single_cpu.py`.
Model and optimizer: those of `seqmnist_original_tcn_cpu.py` (8 levels x 25 channels, k = 7,
d = 2^i, dropout 0.05, linear head; Adam 2e-3 /10 after 750 of 1,500 iterations).
Command:  jaxnets train experiments/tcn/pmnist_original_tcn_cpu.py --workdir runs/pmnist_original_tcn_cpu
Expected: no target (a reduced-scale run; the paper's number is above); measured results are
in docs/tcn_results.md.
"""

from experiments.tcn.common import tcn_cpu_config, smoke_config


def get_config(smoke: bool = False):
    c = tcn_cpu_config("original", "permuted")
    c.paper = "Table 6 (Permuted SequenceMNIST), TCN (Original) [33]: Bai et al. 97.2% on full MNIST, 784 steps -- here at a CPU-feasible reduced scale"
    return smoke_config(c) if smoke else c

"""TCN (Single) on Sequential Fashion-MNIST at the paper's Table-5 scale.

Paper row: none -- the paper runs section 6 on MNIST only; this is its Table 5 Single setting
(12 Single blocks, d_b = 3b - 2, kernel 6, 32 channels, 784 steps, batch 100, SGD with momentum,
learning rate 0.001 x10 after 200 and 1,000 iterations, /10 after 70k and 90k of 100k) on full
Fashion-MNIST (55,000 train / 5,000 validation / 10,000 test), pixels standardised with
Fashion-MNIST's mean / std (0.2860, 0.3530).
Command:  jaxnets train experiments/tcn/seqfashion_single.py --workdir runs/seqfashion_single
Expected: no published number. Not run here (too slow for this project's 2-core CPU: step
times and estimates in docs/tcn_results.md); an accelerator run.
"""

from experiments.tcn.common import tcn_paper_config, smoke_config


def get_config(smoke: bool = False):
    c = tcn_paper_config("single", "sequential")
    c.paper = "none (section 6 on Fashion-MNIST; the paper's Table 5 Single row is 99.53% on MNIST)"
    c.data.name = "fashion_mnist"
    c.data.normalize = (0.2860, 0.3530)  # Fashion-MNIST's own pixel mean / std
    c.expected.walltime = "not run here: 100k steps; CPU step times in docs/tcn_results.md"
    return smoke_config(c) if smoke else c

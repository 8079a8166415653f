"""TCN with Radical residual blocks on Permuted SequenceMNIST: the paper's run.

Paper row: Table 6 (Permuted SequenceMNIST), TCN (Radical): test 97.82%, validation 97.94%,
validation loss 0.117, train loss 0.017.
Task: Permuted MNIST (PMNIST): the 784 pixels in one fixed random order, drawn from the config
seed and saved with every checkpoint (jaxnets.data.sequence); prediction and loss on the last
timestep only. 5,000 of the 60,000 training images are held out for validation; the best-on-
validation checkpoint is tested.
Model: 6 Radical blocks (four convolutions; residuals input->output, input->conv 2, conv
2->output, conv 1->conv 3), dilations d_b = 6b - 5 (1, 7, ..., 31); kernel 6, 32 channels, 24
convolutions, weight norm, ReLU, dropout 0.05 (the paper gives no rate); the last convolution
outputs the 10 logits (jaxnets.models.tcn_model_config("radical")).
Schedule: batch 100, SGD with momentum 0.9 (the paper gives no value), 200,000 iterations;
learning rate 0.001, x10 after 200 and 1,000 iterations, /10 after 130,000 and 180,000.
Data: full MNIST when a prepared tfds `mnist` or an IDX directory (--set data.idx_dir=...) is
found, else the bundled 10k sample (see jaxnets.data).
Command:  jaxnets train experiments/tcn/pmnist_radical.py --workdir runs/pmnist_radical
Expected: the paper's 97.82% test accuracy. Not run here (too slow for this project's 2-core CPU:
step times and estimates in docs/tcn_results.md); the paper does not state its hardware for section
6 (section 4 used a GTX 1080 Ti). docs/tcn_results.md has the reduced-scale runs.
"""

from experiments.tcn.common import tcn_paper_config, smoke_config


def get_config(smoke: bool = False):
    c = tcn_paper_config("radical", "permuted")
    c.paper = (
        "Table 6 (Permuted SequenceMNIST), TCN (Radical): test 97.82%, validation 97.94%, "
        "validation loss 0.117, train loss 0.017"
    )
    c.expected.test_accuracy = 0.9782
    c.expected.walltime = "not run here: 200k steps; CPU step times in docs/tcn_results.md"
    return smoke_config(c) if smoke else c

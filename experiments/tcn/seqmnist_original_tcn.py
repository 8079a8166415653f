"""Bai et al.'s original TCN on SequenceMNIST, in their published setting.

Paper row: Table 5 (SequenceMNIST), TCN (Original) [33]: test 99.0% (Bai, Kolter & Koltun 2018).
Setting: the defaults of locuslab/TCN `TCN/mnist_pixel/pmnist_test.py` (read from the
repository): 8 levels x 25 channels (--levels 8 --nhid 25), kernel 7, exponential dilations 2^i
(1, ..., 128; receptive field 1 + 2*6*255 = 3,061), two weight-normalised causal convolutions
per block with ReLU and dropout 0.05, a 1x1 `downsample` on the first residual, a linear layer
on the last timestep (`self.linear(y1[:, :, -1])`); Adam, learning rate 2e-3 divided by 10 after
epoch 10 of 20, batch 64. Gradient clipping: none -- the script has `--clip` but its default is
-1, "no clip", and the README gives no other value.
Differences (theirs -> ours): they train on all 60,000 images and track the test set; we hold
out 5,000 for validation and test the best-on-validation checkpoint, so 20 epochs are 20 x 859 =
17,180 steps of 64 (lr /10 at 8,590). Both standardise pixels with MNIST's mean/std (0.1307,
0.3081). Their DataLoader does not shuffle; our batches are reshuffled every
epoch from the seed. Their permutation is np.random.permutation(784) unseeded; ours comes from
the config seed. Padding: theirs pads both sides and chops, ours pads the left only (same
outputs; bench/tcn_step_left_vs_chop_padding.py times the two).
Command:  jaxnets train experiments/tcn/seqmnist_original_tcn.py --workdir runs/seqmnist_original_tcn
Expected: 99.0% test accuracy (Bai et al.). Not run here (CPU step time and estimate in
docs/tcn_results.md).
"""

from experiments.tcn.common import smoke_config, tcn_base
from jaxnets.models import tcn_model_config

STEPS_PER_EPOCH = 55_000 // 64  # 859: 60,000 training images less the 5,000 held out


def get_config(smoke: bool = False):
    c = tcn_base()
    c.paper = "Table 5 (SequenceMNIST), TCN (Original) [33]: test 99.0% (Bai, Kolter & Koltun 2018)"
    c.model = tcn_model_config("original")  # 8 x 25, k = 7, d = 2^i, dropout 0.05, linear head
    c.data.name = "mnist"
    c.data.sequence = "sequential"
    c.batch_size = 64
    c.num_steps = 20 * STEPS_PER_EPOCH
    c.optimizer.name = "adam"
    c.optimizer.learning_rate = 2e-3
    c.optimizer.momentum = 0.0  # unused by Adam (b1 = 0.9, b2 = 0.999, eps = 1e-8: PyTorch defaults)
    c.schedule = [[10 * STEPS_PER_EPOCH, 0.1]]
    c.eval_every = STEPS_PER_EPOCH
    c.checkpoint_every = STEPS_PER_EPOCH
    c.expected.test_accuracy = 0.990
    c.expected.walltime = "not run here: 17,180 steps; CPU step time in docs/tcn_results.md"
    c.expected.hardware = "Bai et al.: GPU (not stated per task)"
    return smoke_config(c) if smoke else c

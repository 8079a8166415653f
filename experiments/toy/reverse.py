"""Toy sequence-to-sequence (not a paper row): reverse a string of 4 digits.

Runs the ``toy_reverse`` task (jaxnets/tasks/toy_reverse.py): a causal TCN reads
``[d, SEP, reversed d]`` one-hot and predicts the next token (teacher forcing, loss on the answer
tokens); validation decodes greedily from ``[d, SEP]`` and reports exact-match, which selects the
checkpoint. Validation strings never occur in training.
Command:  jaxnets train experiments/toy/reverse.py --workdir runs/toy_reverse
"""

from experiments.toy.common import smoke_config, toy_base


def get_config(smoke: bool = False):
    c = toy_base("toy_reverse", num_steps=400)
    c.data = dict(train_size=4096, validation_size=256, length=4)
    c.model = dict(num_blocks=3, channels=32, kernel_size=3)
    return smoke_config(c) if smoke else c

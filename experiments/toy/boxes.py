"""Toy detection (not a paper row): one bright square per image, box regression and a score.

Runs the ``toy_boxes`` task (jaxnets/tasks/toy_boxes.py): 16×16 noise images, 3/4 with a square;
a 2-conv net regresses the box and a presence score; random horizontal flips move image and box
together; the checkpoint with the best validation mean IoU is kept.
Command:  jaxnets train experiments/toy/boxes.py --workdir runs/toy_boxes
"""

from experiments.toy.common import smoke_config, toy_base


def get_config(smoke: bool = False):
    c = toy_base("toy_boxes", num_steps=400)
    c.data = dict(train_size=2048, validation_size=256, image_size=16, hflip=True)
    return smoke_config(c) if smoke else c

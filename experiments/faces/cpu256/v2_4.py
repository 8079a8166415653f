"""FaceNet v2.4 (Table 4), CPU form trained on 256² crops instead of 128² (the same face scale), 1000 steps.

The paper: 89.6 / 86.8 / 75.8 mAP (easy / medium / hard, WIDER FACE val) at full size on a GPU.
Why this form: experiments/faces/cpu256/__init__.py.
This row runs 1000 steps (lr ×0.1 after 750), half the other forms' 2000, because a step of v2.4
on 256² crops costs about 4× one on 128².
Data:     jaxnets make-faces data/faces --train 2000 --val 500 --seed 0
Command:  jaxnets train faces/cpu256/v2_4 --workdir runs/faces_cpu256_v2_4
"""

from experiments.faces.common import cpu_config, row_config, smoke_config


def get_config(smoke: bool = False):
    c = cpu_config(row_config("2.4"), crop=256, num_steps=1000)
    return smoke_config(c) if smoke else c

"""FaceNet v1.1 (Table 4), CPU form trained on 256² crops instead of 128² (the same face scale).

The paper: 37.4 / 21.7 / 9.7 mAP (easy / medium / hard, WIDER FACE val) at full size on a GPU.
Why this form: experiments/faces/cpu256/__init__.py.
Data:     jaxnets make-faces data/faces --train 2000 --val 500 --seed 0
Command:  jaxnets train faces/cpu256/v1_1 --workdir runs/faces_cpu256_v1_1
"""

from experiments.faces.common import cpu_config, row_config, smoke_config


def get_config(smoke: bool = False):
    c = cpu_config(row_config("1.1"), crop=256)
    return smoke_config(c) if smoke else c

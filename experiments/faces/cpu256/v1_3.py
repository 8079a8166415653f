"""FaceNet v1.3 (Table 4), CPU form trained on 256² crops instead of 128² (the same face scale).

The paper: 89.3 / 85.9 / 65.9 mAP (easy / medium / hard, WIDER FACE val) at full size on a GPU.
Why this form: experiments/faces/cpu256/__init__.py.
Data:     jaxnets make-faces data/faces --train 2000 --val 500 --seed 0
Command:  jaxnets train faces/cpu256/v1_3 --workdir runs/faces_cpu256_v1_3
"""

from experiments.faces.common import cpu_config, row_config, smoke_config


def get_config(smoke: bool = False):
    c = cpu_config(row_config("1.3"), crop=256)
    return smoke_config(c) if smoke else c

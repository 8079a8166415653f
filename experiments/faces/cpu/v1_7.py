"""FaceNet v1.7 (Table 4): v1.3 with online hard example mining per image (top 128 losses after NMS). CPU form on the dense-face set.

The paper: 46.0 / 51.8 / 42.3 mAP (easy / medium / hard, WIDER FACE val) at full size on a GPU.
This form (experiments/faces/common.py, cpu_config) trains ResNet-18 at width 1/4 on 128²
crops for 2000 steps on 2 CPU cores and evaluates on the held-out identities of the dense-face val split.
Data:     jaxnets make-faces data/faces --train 2000 --val 500 --seed 0
Command:  jaxnets train faces/cpu/v1_7 --workdir runs/faces_cpu_v1_7
"""

from experiments.faces.common import cpu_config, row_config, smoke_config


def get_config(smoke: bool = False):
    c = cpu_config(row_config("1.7"))
    return smoke_config(c) if smoke else c

"""FaceNet v1.0 (Table 4): the baseline: conv2-conv6 without FPN, 2-class softmax cross-entropy normalised by |N| (eqs 57, 58). CPU form on the dense-face set.

The paper: 0.0 / 0.0 / 0.0 mAP (easy / medium / hard, WIDER FACE val) at full size on a GPU.
This form (experiments/faces/common.py, cpu_config) trains ResNet-18 at width 1/4 on 128²
crops for 2000 steps on 2 CPU cores and evaluates on the held-out identities of the dense-face val split.
Data:     jaxnets make-faces data/faces --train 2000 --val 500 --seed 0
Command:  jaxnets train faces/cpu/v1_0 --workdir runs/faces_cpu_v1_0
"""

from experiments.faces.common import cpu_config, row_config, smoke_config


def get_config(smoke: bool = False):
    c = cpu_config(row_config("1.0"))
    return smoke_config(c) if smoke else c

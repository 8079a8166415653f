"""FaceNet v2.3 (Table 4: conv3-conv7, BCE, FPN, heads upsampled ×2, colour jitter), CPU form.

The paper's v2.3: 92.2 / 90.3 / 70.1 mAP (easy / medium / hard) on the WIDER FACE validation set,
ResNet-18 at 512² for 70 000 steps on a GPU. This form trains ResNet-18 at width 1/4 on 128²
crops of the dense-face set for 4000 steps on 2 CPU cores. Expected: far below the paper's
numbers (smaller net, smaller inputs, synthetic faces); it checks the pipeline learns.
Data:     jaxnets make-faces data/faces --train 2000 --val 500 --seed 0
Command:  jaxnets train experiments/faces/v2_3_cpu.py --workdir runs/faces_v2_3_cpu
"""

from experiments.faces.common import cpu_config, faces_base, smoke_config


def get_config(smoke: bool = False):
    c = faces_base("v2.3")
    c.paper = "Table 4, FaceNet v2.3 (92.2 / 90.3 / 70.1 mAP), CPU form"
    c.data.augment.jitter = True
    c = cpu_config(c)
    return smoke_config(c) if smoke else c

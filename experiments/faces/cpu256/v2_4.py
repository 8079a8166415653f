"""FaceNet v2.4 (Table 4), CPU form trained on 256² crops instead of 128² (the same face scale), 1000 steps.

The paper: 89.6 / 86.8 / 75.8 mAP (easy / medium / hard, WIDER FACE val) at full size on a GPU.
Why a second CPU form: at 128² the deepest levels are tiny (conv6 2×2, conv7 1×1), so their batch
norm statistics describe maps made mostly of padding, and a 640² test image (conv6 10×10) puts
them far outside what they saw; and a crop of 0.2-0.45 of the short side rarely holds a large
face whole. 256² crops of 0.4-0.9 of the short side keep the faces' scale and quarter the gap.
This row runs 1000 steps (lr ×0.1 after 750), half the other forms' 2000: a step of v2.4 on
256² crops costs about 4× one on 128², and the whole run has to fit about 50 minutes here.
Data:     jaxnets make-faces data/faces --train 2000 --val 500 --seed 0
Command:  jaxnets train faces/cpu256/v2_4 --workdir runs/faces_cpu256_v2_4
"""

from experiments.faces.common import cpu_config, row_config, smoke_config


def get_config(smoke: bool = False):
    c = cpu_config(row_config("2.4"), crop=256, num_steps=1000)
    return smoke_config(c) if smoke else c

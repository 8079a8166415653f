"""FaceNet v1.1 (Table 4), CPU form trained on 256² crops instead of 128² (the same face scale).

The paper: 37.4 / 21.7 / 9.7 mAP (easy / medium / hard, WIDER FACE val) at full size on a GPU.
Why a second CPU form: at 128² the deepest levels are tiny (conv6 2×2, conv7 1×1), so their batch
norm statistics describe maps made mostly of padding, and a 640² test image (conv6 10×10) puts
them far outside what they saw; and a crop of 0.2-0.45 of the short side rarely holds a large
face whole. 256² crops of 0.4-0.9 of the short side keep the faces' scale and quarter the gap.
Data:     jaxnets make-faces data/faces --train 2000 --val 500 --seed 0
Command:  jaxnets train faces/cpu256/v1_1 --workdir runs/faces_cpu256_v1_1
"""

from experiments.faces.common import cpu_config, row_config, smoke_config


def get_config(smoke: bool = False):
    c = cpu_config(row_config("1.1"), crop=256)
    return smoke_config(c) if smoke else c

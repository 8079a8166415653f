"""FaceNet v2.5 (Table 4): v2.4 with a deeper backbone, ResNet-101. The paper's setting on WIDER FACE.

The paper: 0.0 / 0.0 / 0.0 mAP (easy / medium / hard, WIDER FACE val), ResNet-101, 512² crops,
batch lowered (ours: 4), 70 000 iterations, learning rate 1e-4 (×0.1 at 50 000 and 60 000) on a GPU.
Data:     the WIDER FACE root at data/wider_face (or --set data.root=DIR)
Command:  jaxnets train faces/paper/v2_5_r101 --workdir runs/faces_paper_v2_5_r101
"""

from experiments.faces.common import row_config, smoke_config


def get_config(smoke: bool = False):
    c = row_config("2.5", depth=101)
    return smoke_config(c) if smoke else c

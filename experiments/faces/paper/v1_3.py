"""FaceNet v1.3 (Table 4): v1.1 with a feature pyramid network. The paper's setting on WIDER FACE.

The paper: 89.3 / 85.9 / 65.9 mAP (easy / medium / hard, WIDER FACE val), ResNet-18, 512² crops,
batch 8, 70 000 iterations, learning rate 1e-4 (×0.1 at 50 000 and 60 000) on a GPU.
Data:     the WIDER FACE root at data/wider_face (or --set data.root=DIR)
Command:  jaxnets train faces/paper/v1_3 --workdir runs/faces_paper_v1_3
"""

from experiments.faces.common import row_config, smoke_config


def get_config(smoke: bool = False):
    c = row_config("1.3")
    return smoke_config(c) if smoke else c

"""FaceNet v1.4 (Table 4): v1.2 with a feature pyramid network (focal loss + FPN). The paper's setting on WIDER FACE.

The paper: 81.0 / 81.0 / 64.2 mAP (easy / medium / hard, WIDER FACE val), ResNet-18, 512² crops,
batch 8, 70 000 iterations, learning rate 1e-4 (×0.1 at 50 000 and 60 000) on a GPU.
Data:     the WIDER FACE root at data/wider_face (or --set data.root=DIR)
Command:  jaxnets train faces/paper/v1_4 --workdir runs/faces_paper_v1_4
"""

from experiments.faces.common import row_config, smoke_config


def get_config(smoke: bool = False):
    c = row_config("1.4")
    return smoke_config(c) if smoke else c

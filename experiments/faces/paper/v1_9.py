"""FaceNet v1.9 (Table 4): v1.3 with anchors 1:1 and 1:1.5 and IoU threshold 0.65. The paper's setting on WIDER FACE.

The paper: 88.7 / 86.4 / 64.8 mAP (easy / medium / hard, WIDER FACE val), ResNet-18, 512² crops,
batch 8, 70 000 iterations, learning rate 1e-4 (×0.1 at 50 000 and 60 000) on a GPU.
Data:     the WIDER FACE root at data/wider_face (or --set data.root=DIR)
Command:  jaxnets train faces/paper/v1_9 --workdir runs/faces_paper_v1_9
"""

from experiments.faces.common import row_config, smoke_config


def get_config(smoke: bool = False):
    c = row_config("1.9")
    return smoke_config(c) if smoke else c

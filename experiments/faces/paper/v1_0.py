"""FaceNet v1.0 (Table 4): the baseline: conv2-conv6 without FPN, 2-class softmax cross-entropy normalised by |N| (eqs 57, 58). The paper's setting on WIDER FACE.

The paper: 0.0 / 0.0 / 0.0 mAP (easy / medium / hard, WIDER FACE val), ResNet-18, 512² crops,
batch 8, 70 000 iterations, learning rate 1e-4 (×0.1 at 50 000 and 60 000) on a GPU.
Data:     the WIDER FACE root at data/wider_face (or --set data.root=DIR)
Command:  jaxnets train faces/paper/v1_0 --workdir runs/faces_paper_v1_0
"""

from experiments.faces.common import row_config, smoke_config


def get_config(smoke: bool = False):
    c = row_config("1.0")
    return smoke_config(c) if smoke else c

"""FaceNet v2.0 (Table 4): v1.9 on conv3-conv7. The paper's setting on WIDER FACE.

The paper: 84.4 / 83.4 / 57.1 mAP (easy / medium / hard, WIDER FACE val), ResNet-18, 512² crops,
batch 8, 70 000 iterations, learning rate 1e-4 (×0.1 at 50 000 and 60 000) on a GPU.
Data:     the WIDER FACE root at data/wider_face (or --set data.root=DIR)
Command:  jaxnets train faces/paper/v2_0 --workdir runs/faces_paper_v2_0
"""

from experiments.faces.common import row_config, smoke_config


def get_config(smoke: bool = False):
    c = row_config("2.0")
    return smoke_config(c) if smoke else c

"""FaceNet v2.3 (Table 4): v2.1 with colour jitter. The paper's setting on WIDER FACE.

The paper: 92.2 / 90.3 / 70.1 mAP (easy / medium / hard, WIDER FACE val), ResNet-18, 512² crops,
batch 8, 70 000 iterations, learning rate 1e-4 (×0.1 at 50 000 and 60 000) on a GPU.
Data:     the WIDER FACE root at data/wider_face (or --set data.root=DIR)
Command:  jaxnets train faces/paper/v2_3 --workdir runs/faces_paper_v2_3
"""

from experiments.faces.common import row_config, smoke_config


def get_config(smoke: bool = False):
    c = row_config("2.3")
    return smoke_config(c) if smoke else c

"""``jaxnets real-photos OUT``: the three real photographs with hand-drawn face boxes, as a WIDER root.

    jaxnets real-photos /tmp/photos
    jaxnets baselines mtcnn /tmp/photos /tmp/photos_mtcnn && jaxnets wider-eval /tmp/photos_mtcnn --gt /tmp/photos

Writes ``OUT/WIDER_val/images/0--Real_Photos/{astronaut,camera,grace_hopper}.jpg``,
``OUT/wider_face_split/wider_face_val_bbx_gt.txt`` and ``OUT/eval_tools/ground_truth/*.mat``
(every face in easy, medium and hard); see :mod:`jaxnets.data.real_photos` for the photos and how
the boxes were drawn.
"""

from __future__ import annotations

import argparse
import sys

COMMAND = "real-photos"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(COMMAND, help="write the 3 real photos (astronaut, camera, Grace Hopper) as a WIDER root",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", metavar="OUT", help="folder to write the WIDER layout into")
    p.set_defaults(func=run)


def run(args) -> int:
    from jaxnets.data.errors import DataError
    from jaxnets.data.real_photos import write_real_photos

    if not args.out.strip():
        print(f"jaxnets {COMMAND}: OUT: empty; give a folder", file=sys.stderr)
        return 2
    try:
        images = write_real_photos(args.out)
    except DataError as e:
        print(f"jaxnets {COMMAND}: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    for im in images:
        boxes = "; ".join(" ".join(str(int(v)) for v in b) for b in im.boxes)
        print(f"{im.name}: {len(im.faces)} face(s) x y w h = {boxes}")
    print(f"wrote {args.out}/WIDER_val, wider_face_split, eval_tools/ground_truth")
    return 0

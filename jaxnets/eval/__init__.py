"""The official evaluation protocols.

WIDER FACE (``docs/wider_protocol.md``):

* :func:`evaluate` -> :class:`WiderResult`: easy / medium / hard AP and PR curves, the rules of
  the official MATLAB ``eval_tools`` (:mod:`jaxnets.eval.wider_protocol`)
* :func:`height_bin_subsets`: the stand-in subsets (all valid faces, face-height bins) used when
  the ground truth has no subset ``.mat`` files -- not the official ones
* :func:`read_predictions`, :func:`write_predictions`, :func:`read_prediction_file`,
  :func:`load_ground_truth`, :func:`evaluate_dir`: prediction folders ``<event>/<stem>.txt``
  (:mod:`jaxnets.eval.wider_predictions`)
* :func:`plot_pr_curves`: the PR-curve PNG (:mod:`jaxnets.eval.pr_curves`)
"""

from jaxnets.eval.pr_curves import plot_pr_curves
from jaxnets.eval.wider_predictions import (
    evaluate_dir,
    find_prediction_files,
    load_ground_truth,
    read_prediction_file,
    read_predictions,
    write_predictions,
)
from jaxnets.eval.wider_protocol import (
    ALL_VALID,
    HEIGHT_BINS,
    OFFICIAL_SUBSETS,
    WiderResult,
    evaluate,
    height_bin_subsets,
    image_names,
    iou_plus_one,
    normalise_scores,
    voc_ap,
)

__all__ = [
    "ALL_VALID",
    "HEIGHT_BINS",
    "OFFICIAL_SUBSETS",
    "WiderResult",
    "evaluate",
    "evaluate_dir",
    "find_prediction_files",
    "height_bin_subsets",
    "image_names",
    "iou_plus_one",
    "load_ground_truth",
    "normalise_scores",
    "plot_pr_curves",
    "read_prediction_file",
    "read_predictions",
    "voc_ap",
    "write_predictions",
]

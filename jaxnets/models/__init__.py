"""Models of the paper: section 4 (MNIST CNN/FFN), section 6 (TCNs); detectors follow.

``build_model(config.model)`` (:mod:`jaxnets.models.registry`) builds any of them by name.
"""

from jaxnets.models import mnist, tcn  # noqa: F401  (register their builders)
from jaxnets.models import face_detector  # noqa: F401  (registers "face_detector")
from jaxnets.models.mnist import (
    PAPER_PARAMS,
    MnistCNN,
    MnistFFN,
    ParamReport,
    param_report,
    variable_shapes,
)
from jaxnets.models.predict import predict
from jaxnets.models.registry import MODELS, build_model
from jaxnets.models.streaming import init_stream, stream_params, stream_sequence, stream_step
from jaxnets.models.tcn import (
    TCN,
    TCN_PRESETS,
    SequenceClassifier,
    build_tcn,
    conv_path,
    dilation_schedule,
    model_receptive_field,
    receptive_field,
    tcn_from_config,
    tcn_model_config,
)

__all__ = [
    "MODELS",
    "PAPER_PARAMS",
    "MnistCNN",
    "MnistFFN",
    "ParamReport",
    "SequenceClassifier",
    "TCN",
    "TCN_PRESETS",
    "build_model",
    "build_tcn",
    "conv_path",
    "dilation_schedule",
    "init_stream",
    "model_receptive_field",
    "param_report",
    "predict",
    "receptive_field",
    "stream_params",
    "stream_sequence",
    "stream_step",
    "tcn_from_config",
    "tcn_model_config",
    "variable_shapes",
]

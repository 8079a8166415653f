"""Models of the paper: section 4 (MNIST CNN/FFN); TCNs and detectors follow."""

from jaxnets.models.mnist import (
    MODELS,
    PAPER_PARAMS,
    MnistCNN,
    MnistFFN,
    ParamReport,
    build_model,
    init_variables,
    param_report,
    variable_shapes,
)

__all__ = ["MODELS", "PAPER_PARAMS", "MnistCNN", "MnistFFN", "ParamReport", "build_model", "init_variables", "param_report", "variable_shapes"]

"""Section 5 (FaceNet, Table 4): the dense face detector's experiments, one config per row."""

"""The emotion model: the ONNX session and its metadata contract, the live inference stage, patch reuse,
pooling, and the explanation of emotions as mid-level contributions. ``assets/`` holds the shipped models."""

"""The shipped ONNX models and their licences (package data, found with importlib.resources)."""

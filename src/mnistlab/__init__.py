"""mnistlab: the tested code behind the handwritten-digit classification course."""

import os as _os

# TensorFlow's start-up log lines must never reach a notebook or the report.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

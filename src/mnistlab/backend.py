"""Which Keras backend a notebook trains with, chosen before Keras is imported.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, so the choice has to be made
by the setup cell, before ``mnistlab.networks`` (or anything else) imports Keras.
"""

from __future__ import annotations

import os
import sys


def jax_sees_a_gpu() -> bool:
    """True when JAX is installed and its default device is a GPU (as in Colab's GPU runtime)."""
    try:
        import jax
    except ImportError:
        return False
    try:
        return jax.default_backend() == "gpu"
    except RuntimeError:  # a broken CUDA install is no GPU
        return False


def choose_keras_backend() -> str:
    """Select the JAX backend when JAX sees a GPU and nothing chose a backend yet; return the
    backend Keras will use. A ``KERAS_BACKEND`` set by the user, or a Keras already imported,
    is left as it is."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if not os.environ.get("KERAS_BACKEND") and jax_sees_a_gpu():
        os.environ["KERAS_BACKEND"] = "jax"
    return os.environ.get("KERAS_BACKEND", "tensorflow")

"""A persistent cache of compiled programs for Keras' JAX backend.

A grid search builds hundreds of networks but only a few dozen distinct programs (the weight
initializer and the epoch count change no compiled code); without the cache JAX compiles each
network anew. Measured with the JAX backend on 2 CPU cores: one-epoch fits of simple_cnn on
1,333 images took 3 s each, 1 s once the same configuration had been compiled. On an H100 the
chapter 6 search in ``full`` (96 combinations x 3 folds) left the GPU idle while it compiled.
TensorFlow and PyTorch keep no such cache: there this does nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import config


def enable(directory: str | Path | None = None) -> Path | None:
    """Turn the cache on (``directory``, ``$MNISTLAB_JAX_CACHE`` or ``build/jax-cache``) when the
    Keras backend is JAX; returns the folder, or None with any other backend."""
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    path = Path(directory or os.environ.get("MNISTLAB_JAX_CACHE") or config.repo_root() / "build" / "jax-cache")
    path.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # small networks compile fast, often
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return path

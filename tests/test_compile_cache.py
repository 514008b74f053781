"""The JAX compilation cache: on with the JAX backend (in its own process), a no-op elsewhere."""

import os
import subprocess
import sys

import keras
import pytest

from mnistlab import compile_cache


def test_nothing_to_do_without_jax_backend(tmp_path):
    if keras.backend.backend() == "jax":
        pytest.skip("this process runs the JAX backend")
    assert compile_cache.enable(tmp_path / "cache") is None
    assert not (tmp_path / "cache").exists()


def test_jax_backend_compiles_into_the_cache(tmp_path):
    code = (
        "import sys, keras, jax, numpy as np\n"
        "from mnistlab import compile_cache\n"
        "path = compile_cache.enable(sys.argv[1])\n"
        "assert jax.config.jax_compilation_cache_dir == str(path)\n"
        "jax.jit(lambda x: x * 2 + 1)(np.arange(3.0)).block_until_ready()\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "cache")], env=env, check=True, timeout=120)
    assert any((tmp_path / "cache").iterdir()), "nothing was compiled into the cache"

"""The compiled JAX training loop (mnistlab.jaxloop), on JAX's CPU backend, smoke-sized.

The loop needs Keras on the JAX backend, and the suite runs on TensorFlow, so the training cases
run once in a child process (tests/jax_cases.py) and these tests check what it wrote. The
on-device augmentation needs only JAX and is checked here directly.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")

from mnistlab import augment  # noqa: E402

N_TEST = 500


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    out = tmp_path_factory.mktemp("jax") / "cases.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    script = Path(__file__).with_name("jax_cases.py")
    done = subprocess.run([sys.executable, str(script), str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_cases_ran_on_jax(cases):
    assert cases["backend"] == "jax"


def test_loop_trains_a_small_network_past_a_floor(cases):
    for curve in cases["pair_test_accuracy"]:
        assert curve[-1] >= 0.45  # 10 classes: chance is 0.1; about 0.55 after 3 short epochs
        assert curve[-1] > curve[0]
    # The weights written back into the Keras models are the ones the loop scored.
    for curve, keras_accuracy in zip(cases["pair_test_accuracy"], cases["pair_keras_accuracy"]):
        assert abs(curve[-1] - keras_accuracy) <= 1 / N_TEST


def test_loop_trains_with_elastic_distortions_on_the_device(cases):
    accuracy = cases["elastic_test_accuracy"]
    assert len(accuracy) == 2 and accuracy[-1] > 0.2  # chance is 0.1; 2 short epochs of 1,024 images


def test_members_trained_together_match_members_trained_alone(cases):
    assert cases["together_vs_alone_max_diff"] < 1e-4
    assert cases["members_differ"] > 0.01  # and they are different networks (their own seeds)


def test_an_epoch_per_device_call_trains_as_a_step_per_call(cases):
    """The GPU's way (a whole epoch in one lax.scan) and the CPU's (a step per call) are one loop."""
    assert cases["epoch_per_call_max_diff"] < 1e-4


def test_the_host_sets_the_learning_rate_the_updates_use(cases):
    frozen = cases["frozen_at_rate_0"]
    assert frozen["mixed_float16"]["optimizer"] == "LossScaleOptimizer"
    for policy in ("float32", "mixed_float16"):
        assert frozen[policy]["moved"] == 0.0


def test_same_seed_gives_the_same_numbers(cases):
    assert cases["rerun_max_diff"] == 0.0


def test_a_trained_member_saves_and_reloads_to_the_same_predictions(cases):
    assert cases["reload_max_diff"] < 1e-6


def test_compiling_is_timed_apart_from_training(cases):
    assert cases["compile_seconds"] > 0
    seconds = cases["seconds"]
    assert len(seconds) == 3 and all(b > a for a, b in zip(seconds, seconds[1:]))


def test_the_chapters_entry_points_train_on_jax(cases):
    assert len(cases["plateau_val_accuracy"]) == 2 and cases["plateau_val_accuracy"][-1] > 0.2
    assert cases["classifier_accuracy"] > 0.2


def test_bench_trains_recipes_in_the_loop_and_times_compiling_apart(cases):
    one, pair, fit = cases["bench"]
    assert one["training_images"] < pair["training_images"] == 1024  # the pair trains on all images
    assert len(one["curve"]) == 1 and len(pair["curve"]) == 2  # a point per epoch
    assert len(pair["member_seconds_to"]) == 2
    for row in (one, pair):
        assert row["compile_seconds"] > 0 and row["final_accuracy"] > 0.15
    # the same kind of network by Keras' fit on JAX: nothing compiled ahead
    assert fit["compile_seconds"] is None and fit["final_accuracy"] > 0.15


def test_bench_measures_the_loops_throughput_with_compiling_apart(cases):
    row = cases["loop_throughput"]
    assert row["loop batch size"] == 64
    for name in ("loop", "loop + augmentation"):
        assert row[f"{name} images/s"] > 0 and row[f"{name} compile s"] > 0


def test_device_augmentation_draws_from_the_ranges_of_augment():
    from mnistlab import jaxloop

    angle, scale, tx, ty = (np.asarray(v) for v in jaxloop.draw_transforms(jax.random.key(0), 20000, 28, 28))
    for values, limit in ((np.rad2deg(angle), augment.ROTATION), (scale - 1, augment.ZOOM)):
        assert values.min() >= -limit and values.max() <= limit
        assert values.min() < -0.95 * limit and values.max() > 0.95 * limit  # the whole range, not a part
    for shift, size in ((tx, 28), (ty, 28)):
        assert np.abs(shift).max() <= augment.SHIFT * size and np.abs(shift).max() > 0.95 * augment.SHIFT * size


def test_device_augmentation_is_the_transform_of_augment():
    from mnistlab import jaxloop

    rng = np.random.default_rng(0)
    x = (rng.random((16, 28, 28)) > 0.7).astype(np.float32)
    key = jax.random.key(3)
    on_device = np.asarray(jaxloop.augment_batch(key, x))
    draws = (np.asarray(v, dtype=np.float64) for v in jaxloop.draw_transforms(key, 16, 28, 28))
    on_host = augment.bilinear(x, *augment.source_coordinates(*draws, 28, 28))
    np.testing.assert_allclose(on_device, on_host, atol=1e-4)
    assert not np.allclose(on_device, x)


def test_device_elastic_fields_are_those_of_augment():
    from mnistlab import jaxloop

    noise = np.random.default_rng(1).uniform(-1, 1, (2, 4, 28, 28)).astype(np.float32)
    on_device = np.asarray(jaxloop.elastic_displacements(noise, 34.0))
    np.testing.assert_allclose(on_device, augment.elastic_displacements(noise, 34.0), atol=1e-4)
    x = (np.random.default_rng(0).random((4, 28, 28)) > 0.7).astype(np.float32)
    plain, elastic = (np.asarray(jaxloop.augment_batch(jax.random.key(3), x, e)) for e in (0.0, 34.0))
    assert np.abs(plain - elastic).mean() > 0.01

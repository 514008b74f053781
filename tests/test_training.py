"""The training recipe: augmentation in the input pipeline, the one-cycle schedule, label
smoothing, and the cost of each architecture."""

import numpy as np
import pytest

from mnistlab import augment, networks, training


def digits(n=4):
    x = np.zeros((n, 28, 28), np.float32)
    x[:, 8:20, 12:16] = 1.0  # a bar: an upright "1"
    return x


def test_augmentation_with_zero_ranges_is_the_identity():
    x = digits()
    np.testing.assert_allclose(augment.augment_images(x, np.random.default_rng(0), 0, 0, 0), x, atol=1e-6)


def test_augmentation_is_reproducible_and_varied():
    x = digits(8)
    a = augment.augment_images(x, np.random.default_rng(1))
    b = augment.augment_images(x, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[0], a[1])  # each image draws its own transform
    assert 0.8 < a.sum() / x.sum() < 1.25  # zoom of ±10% changes the ink by at most ~20%
    assert a.min() >= 0 and a.max() <= 1


def test_bilinear_shift_reads_zeros_outside():
    x = digits(1)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    shifted = augment.bilinear(x, xx[None] - 3, yy[None])  # output pixel (r, c) reads (r, c - 3)
    np.testing.assert_allclose(shifted[0, :, 3:], x[0, :, :-3])
    assert not shifted[0, :, :3].any()


def test_elastic_fields_are_smooth_and_scaled_by_alpha():
    noise = np.random.default_rng(0).uniform(-1, 1, (2, 64, 28, 28))
    field = augment.elastic_displacements(noise, alpha=34.0, sigma=4.0)
    raw_step = np.abs(np.diff(noise, axis=-1)).mean()
    smooth_step = np.abs(np.diff(field, axis=-1)).mean() / 34.0
    assert smooth_step < raw_step / 10  # neighbouring pixels move together: a smooth field
    np.testing.assert_allclose(augment.elastic_displacements(noise, alpha=68.0), 2 * field, rtol=1e-5)
    assert 0.5 < np.abs(field).mean() < 5  # displacements of a pixel or two, as in Simard et al.
    assert abs(augment.gaussian_kernel(4.0).sum() - 1) < 1e-6 and len(augment.gaussian_kernel(4.0)) == 25


def test_elastic_distortion_moves_ink_without_losing_it():
    x = digits(8)
    affine = augment.augment_images(x, np.random.default_rng(2))
    elastic = augment.augment_images(x, np.random.default_rng(2), elastic=augment.ELASTIC_ALPHA)
    again = augment.augment_images(x, np.random.default_rng(2), elastic=augment.ELASTIC_ALPHA)
    np.testing.assert_array_equal(elastic, again)
    assert np.abs(elastic - affine).mean() > 0.01  # the field moves pixels the affine transform left
    assert 0.7 < elastic.sum() / x.sum() < 1.3


def test_augment_argument_names_the_augmentation():
    assert [augment.mode(a) for a in (False, None, True, "affine", "elastic")] == [
        None,
        None,
        "affine",
        "affine",
        "elastic",
    ]
    with pytest.raises(ValueError, match="unknown augmentation 'warp'"):
        augment.mode("warp")


def test_training_batches_are_reproducible_and_aligned():
    x = np.arange(10 * 28 * 28, dtype=np.float32).reshape(10, 28, 28)
    y = np.arange(10)
    plain = training.TrainingBatches(x, y, batch_size=4, seed=3, augment=False)
    assert len(plain) == 3
    xb, yb = plain[0]
    np.testing.assert_array_equal(xb, x[yb])  # labels follow their images
    again = training.TrainingBatches(x, y, batch_size=4, seed=3, augment=True)
    other = training.TrainingBatches(x, y, batch_size=4, seed=3, augment=True)
    np.testing.assert_array_equal(again[1][0], other[1][0])
    first = again[1][0]
    again.on_epoch_end()
    assert not np.array_equal(again[1][0], first)  # a new epoch: new order and transforms
    elastic = training.TrainingBatches(x, y, batch_size=4, seed=3, augment="elastic")
    assert not np.allclose(elastic[1][0], other[1][0])  # "elastic" adds its distortion


def test_one_cycle_warms_up_then_anneals():
    schedule = training.OneCycle(max_lr=1e-2, total_steps=100, warmup=0.25)
    lr = np.array([float(networks.keras.ops.convert_to_numpy(schedule(step))) for step in range(101)])
    assert lr[0] == pytest.approx(1e-2 / 25)
    assert lr.argmax() == 25 and lr.max() == pytest.approx(1e-2)
    assert np.all(np.diff(lr[:26]) > 0) and np.all(np.diff(lr[25:]) <= 1e-12)
    assert lr[100] == pytest.approx(1e-6, rel=1e-3)


def test_smoothed_crossentropy():
    y = np.array([0, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], np.float32)
    plain = training.SmoothedCrossentropy(0.0)(y, p)
    expected = -np.mean(np.log([0.7, 0.8]))
    assert float(networks.keras.ops.convert_to_numpy(plain)) == pytest.approx(expected, rel=1e-5)
    smoothed = training.SmoothedCrossentropy(0.3)(y, p)
    assert float(networks.keras.ops.convert_to_numpy(smoothed)) > expected


def test_multiply_adds_count_convolutions_and_dense_layers():
    simple = networks.build("simple_cnn")
    assert networks.multiply_adds(simple) == 26 * 26 * 32 * 9 + 11 * 11 * 64 * 9 * 32 + 1600 * 10
    assert networks.multiply_adds(networks.build("deep_cnn")) < 16_000_000  # 'valid' as published, not 35M


def test_one_cycle_training_with_augmentation_learns_and_saves(tmp_path):
    from mnistlab.data import load_dataset

    ds = load_dataset("mnist-sample", "smoke", seed=0)
    model = networks.build("bn_cnn")
    history, _ = training.train(
        model,
        networks.images(ds.x_train),
        ds.y_train,
        3,
        32,
        seed=0,
        schedule="one-cycle",
        augment=True,
        verbose_lines=False,
    )
    assert len(history.epoch) == 3 and history.history["accuracy"][-1] > 0.5
    model.save(tmp_path / "m.keras")
    reloaded = networks.keras.models.load_model(tmp_path / "m.keras")
    x = networks.images(ds.x_test[:50])
    np.testing.assert_allclose(networks.predict_proba(reloaded, x), networks.predict_proba(model, x), atol=1e-5)


def test_bench_recipe_trains_a_narrow_bn_cnn_at_its_own_one_cycle_peak():
    from mnistlab import bench
    from mnistlab.data import load_dataset

    ds = load_dataset("mnist-sample", "smoke", seed=0)
    recipe = bench.Recipe("bn_cnn-16", 1, batch_size=64, max_lr=0.02)
    model = bench.train_recipe(recipe, networks.images(ds.x_train[:640]), ds.y_train[:640], seed=0, jit_compile=False)
    schedule = model.optimizer.get_config()["learning_rate"]["config"]
    assert schedule["max_lr"] == 0.02 and schedule["total_steps"] == 10  # 640 images in batches of 64
    assert networks.multiply_adds(model) < 0.3 * networks.multiply_adds(networks.build("bn_cnn"))
    assert model.optimizer.iterations == 10
    networks.build("resnet")  # draws from Keras' random state: the next recipe must not depend on it
    again = bench.train_recipe(recipe, networks.images(ds.x_train[:640]), ds.y_train[:640], seed=0, jit_compile=False)
    x = networks.images(ds.x_test[:20])
    np.testing.assert_allclose(networks.predict_proba(again, x), networks.predict_proba(model, x), atol=1e-6)


def test_ensemble_curve_averages_members_trained_together_and_adds_up_their_rounds():
    from mnistlab import bench

    y = np.array([0, 1, 2, 3])
    onehot = lambda labels: np.eye(4)[labels]  # noqa: E731
    first = [(10.0, onehot([0, 1, 0, 0])), (20.0, 0.5 * onehot([0, 1, 2, 0]))]  # right on 2, then 3 of 4
    second = [(12.0, onehot([0, 0, 0, 0])), (25.0, onehot([0, 1, 2, 3]))]  # 1 of 4, then all 4
    third = [(7.0, onehot([3, 1, 2, 3]))]
    points, members, seconds = bench.ensemble_curve([[first, second], [third]], y)
    # a round is timed by its slowest member; the next round starts where it ended
    assert [t for t, _ in points] == [12.0, 25.0, 32.0]
    assert points[1][1] == 1.0  # (3 of 4 + all 4) averaged: every image right
    assert points[2][1] == 1.0 and seconds == 32.0
    assert members == [[(10.0, 0.5), (20.0, 0.75)], [(12.0, 0.25), (25.0, 1.0)], [(7.0, 0.75)]]


def test_members_train_one_after_the_other_on_a_gpu():
    """Side by side is for CPU cores; two processes on one GPU would each claim its memory."""
    from mnistlab import bench

    recipe = bench.Recipe("dense", 1, members=2, side_by_side=2)
    rounds, params, _, _ = bench.train_members(recipe, "mnist-sample", seed=0, max_train=300, gpu=True)
    assert [len(r) for r in rounds] == [1, 1] and params > 0
    assert len(rounds[0][0]) == 1  # one (seconds, test probabilities) per epoch

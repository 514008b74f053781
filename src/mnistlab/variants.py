"""Derived datasets, deterministic for a seed: noisy digits and multi-digit ("max digit") images."""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import ndimage

from . import config

NOISE_LEVEL = 0.3  # default: uniform noise up to 30% of full intensity
TRANSFORM_SHARE = 0.2  # default: share of images rotated, flipped or transposed
TRANSFORMS = ("rot90", "rot180", "rot270", "flip_lr", "flip_ud", "transpose")
CANVAS = 64  # side of a triplet image
TRIPLET_NOISE = 0.15  # background noise of a triplet canvas, share of full intensity
INK_THRESHOLD = int(TRIPLET_NOISE * 255) + 5  # brighter than any noise pixel: ink


def add_uniform_noise(x, level: int = 100, seed: int = config.DEFAULT_SEED) -> np.ndarray:
    """Add uniform noise in ``[0, level)`` to every pixel of uint8 images, clipped to 255."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, level, size=np.shape(x), dtype=np.int16)
    return np.clip(np.asarray(x, dtype=np.int16) + noise, 0, 255).astype(np.uint8)


def _transform(image, name):
    return {
        "rot90": lambda a: np.rot90(a, 1),
        "rot180": lambda a: np.rot90(a, 2),
        "rot270": lambda a: np.rot90(a, 3),
        "flip_lr": np.fliplr,
        "flip_ud": np.flipud,
        "transpose": np.transpose,
    }[name](image)


def noisy_digits(
    x, level: float = NOISE_LEVEL, transform_share: float = TRANSFORM_SHARE, seed: int = config.DEFAULT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform background noise of amplitude ``level`` (0..1) over each whole image, and a
    random rotation, flip or transpose on a share of the images (as in noisy competition data).

    Returns ``(images, transforms)``; ``transforms`` names what was applied ('' for none).
    """
    if not 0 <= level <= 1:
        raise ValueError(f"noise level must be between 0 and 1, got {level}")
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.uint8)
    applied = np.where(rng.random(len(x)) < transform_share, rng.choice(TRANSFORMS, len(x)), "")
    out = reorient(x, applied)
    noise = rng.uniform(0, level * 255, size=out.shape)
    return np.clip(out + noise, 0, 255).astype(np.uint8), applied


def reorient(x, transforms) -> np.ndarray:
    """Each image of ``x`` with the transform named beside it (one of :data:`TRANSFORMS`, or ''
    for none): given the ``transforms`` that :func:`noisy_digits` returns and the clean images it
    was given, the clean counterpart of each noisy image."""
    x = np.asarray(x)
    if len(transforms) != len(x):
        raise ValueError(f"{len(x)} images but {len(transforms)} transforms")
    return np.array([_transform(img, t) if t else img for img, t in zip(x, transforms)], dtype=x.dtype)


AMBIGUITY_CONFIDENCE = 0.9  # a clean reoriented digit read as another digit at least this surely
MUTUAL_SHARE = 0.1  # ... and the way back as common as this: ambiguous
#: The transform that undoes each of :data:`TRANSFORMS`.
INVERSE = {
    "rot90": "rot270",
    "rot180": "rot180",
    "rot270": "rot90",
    "flip_lr": "flip_lr",
    "flip_ud": "flip_ud",
    "transpose": "transpose",
}


def orientation_confusions(predict, x, y, confidence: float = AMBIGUITY_CONFIDENCE, n_classes: int = 10) -> dict:
    """For each of :data:`TRANSFORMS`, a classes × classes matrix: the share of the clean images
    ``x`` of class ``i`` that a network trained on upright digits, shown them so transformed,
    reads as another class ``j`` with a probability of at least ``confidence`` (the diagonal is 0).
    ``predict``: images -> class probabilities."""
    y = np.asarray(y)
    counts = np.maximum(np.bincount(y, minlength=n_classes), 1)[:, None]
    found = {}
    for name in TRANSFORMS:
        p = np.asarray(predict(reorient(x, [name] * len(x))))
        sure = (p.max(axis=1) >= confidence) & (p.argmax(axis=1) != y)
        matrix = np.zeros((n_classes, n_classes))
        np.add.at(matrix, (y[sure], p.argmax(axis=1)[sure]), 1)
        found[name] = matrix / counts
    return found


def ambiguous_orientations(
    clean_probabilities,
    y,
    transforms,
    confidence: float = AMBIGUITY_CONFIDENCE,
    confusions: dict | None = None,
    mutual: float = MUTUAL_SHARE,
) -> np.ndarray:
    """True for each reoriented image whose orientation makes it another digit: a network trained
    on upright clean digits, shown the *clean* reoriented image (:func:`reorient`), gives another
    class than ``y`` a probability of at least ``confidence`` (a 6 turned upside down read as a 9).
    ``clean_probabilities``: that network's class probabilities, images × classes.

    Such a network is also confidently wrong about digits no reader would confuse (a 1 on its side
    read as a 4). With ``confusions`` (:func:`orientation_confusions`) an image counts only when
    the confusion goes both ways: the inverse transform makes at least ``mutual`` of the images
    of the class it is read as look like its own class (turned, a 9 is also read as a 6)."""
    p, y, transforms = np.asarray(clean_probabilities), np.asarray(y), np.asarray(transforms)
    reads = p.argmax(axis=1)
    found = (transforms != "") & (p.max(axis=1) >= confidence) & (reads != y)
    if confusions is None:
        return found
    back = np.array([confusions[INVERSE[t]][r, c] if t else 0.0 for t, r, c in zip(transforms, reads, y)])
    return found & (back >= mutual)


def ambiguity_summary(y, predictions, ambiguous, transforms, read_as=None, top: int = 5, one_way=None) -> dict:
    """How many test images are ambiguous (:func:`ambiguous_orientations`) and what they cost a
    classifier whose test ``predictions`` are given: its accuracy on all images, on the
    unambiguous ones, and on the ambiguous ones (None when there are none). With ``read_as``
    (what the upright network read each image as) the ``top`` most frequent confusions, as
    ``{"6 as 9": count}``; with ``one_way`` (the images read as another digit, whether or not the
    confusion goes both ways) how many of those were left out, and the classifier's accuracy on them."""
    y, predictions, ambiguous = np.asarray(y), np.asarray(predictions), np.asarray(ambiguous, dtype=bool)
    right = predictions == y

    def share(mask):
        return float(right[mask].mean()) if mask.any() else None

    summary = {
        "n_test": int(len(y)),
        "n_reoriented": int(np.sum(np.asarray(transforms) != "")),
        "n_ambiguous": int(ambiguous.sum()),
        "share_of_test": float(ambiguous.mean()) if len(y) else 0.0,
        "accuracy_all": share(np.ones(len(y), dtype=bool)),
        "accuracy_unambiguous": share(~ambiguous),
        "accuracy_ambiguous": share(ambiguous),
    }
    summary["share_of_reoriented"] = (
        summary["n_ambiguous"] / summary["n_reoriented"] if summary["n_reoriented"] else 0.0
    )
    if read_as is not None:
        confusions = Counter(f"{a} as {b}" for a, b in zip(y[ambiguous], np.asarray(read_as)[ambiguous]))
        summary["confusions"] = dict(confusions.most_common(top))
    if one_way is not None:
        left_out = np.asarray(one_way, dtype=bool) & ~ambiguous
        summary["n_one_way"] = int(left_out.sum())
        summary["accuracy_one_way"] = share(left_out)
    return summary


def ambiguity_sentences(summary: dict, model: str, upright_accuracy: float | None = None) -> list[str]:
    """The findings of :func:`ambiguity_summary` in words: how many reoriented test images are
    ambiguous, what ``model`` (whose predictions the summary scored) loses on them, and, with
    ``upright_accuracy`` (the same recipe in the noise-only, upright setting), how much of the
    gap between the two settings they explain."""
    s = summary
    if not s["n_reoriented"]:
        return ["No test image is reoriented, so none can be ambiguous."]
    pairs = ", ".join(f"{pair} ({n})" for pair, n in s.get("confusions", {}).items())
    sentences = [
        f"Of the {s['n_test']:,} mixed-orientation test images, {s['n_reoriented']:,} are reoriented, and "
        f"{s['n_ambiguous']:,} of those ({s['share_of_reoriented']:.1%}; {s['share_of_test']:.2%} of all test "
        f"images) are ambiguous" + (f", most often {pairs}." if pairs else ".")
    ]
    if s.get("n_one_way"):
        sentences.append(
            f"Another {s['n_one_way']:,} reoriented images are read as another digit one way only (the way back "
            f"is rare) and are not counted; {model} reads {s['accuracy_one_way']:.2%} of them right."
        )
    if not s["n_ambiguous"]:
        sentences.append(
            f"{model} scores {s['accuracy_all']:.2%} on the mixed test images; by this measure none of its "
            "errors comes from an orientation that makes a digit another one."
        )
    else:
        lost = s["share_of_test"] * (1 - s["accuracy_ambiguous"])
        verdict = (
            "An ambiguous image shows another digit, and upright digits are far more common than turned ones, "
            "so most of them are beyond any classifier"
            if s["accuracy_ambiguous"] < 0.5
            else "It still reads most of them: they look like another digit to a network that knows only upright "
            "digits more than to one that has seen turned ones"
        )
        sentences.append(
            f"{model} scores {s['accuracy_all']:.2%} on all mixed test images, {s['accuracy_unambiguous']:.2%} on "
            f"the unambiguous ones and {s['accuracy_ambiguous']:.2%} on the ambiguous ones, which cost it "
            f"{100 * lost:.2f} points. {verdict}; the accuracy on the unambiguous images is the fairer measure "
            "of what it learned."
        )
    if upright_accuracy is not None:
        gap = upright_accuracy - s["accuracy_all"]
        gap_unambiguous = upright_accuracy - s["accuracy_unambiguous"]
        sentences.append(
            f"In the project's setting (noise only, upright) the recipe, without copies, scores "
            f"{upright_accuracy:.2%}: {100 * abs(gap):.2f} points {'above' if gap >= 0 else 'below'} the mixed "
            "setting on all its test images, "
            f"{100 * abs(gap_unambiguous):.2f} points {'above' if gap_unambiguous >= 0 else 'below'} it on the "
            "unambiguous ones."
        )
    return sentences


def reoriented(x, seed: int = config.DEFAULT_SEED) -> np.ndarray:
    """Each image with one of :data:`TRANSFORMS` applied, drawn at random: extra training
    examples of the orientations a share of the noisy images come in. Uniform noise looks
    the same in every orientation, so noisy images can be reoriented as they are."""
    x = np.asarray(x)
    picks = np.random.default_rng(seed).choice(TRANSFORMS, len(x))
    return np.array([_transform(img, t) for img, t in zip(x, picks)], dtype=x.dtype)


def with_reoriented_copies(x, y, seed: int = config.DEFAULT_SEED):
    """``(x, y)`` followed by a reoriented copy of every image (:func:`reoriented`), same labels."""
    return np.concatenate([x, reoriented(x, seed)]), np.concatenate([y, y])


def triplets(
    x, y, n: int, seed: int = config.DEFAULT_SEED, noise: float = TRIPLET_NOISE, canvas: int = CANVAS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` canvases (``canvas``×``canvas``) each holding three digits of ``x`` in three of the
    four quadrants (so they never overlap), with a small random shift and background noise.

    Returns ``(images, labels, parts)``: the label is the largest of the three digits, ``parts``
    the three digits themselves.
    """
    rng = np.random.default_rng(seed)
    half = canvas // 2
    slack = half - x.shape[1]
    if slack < 0:
        raise ValueError(f"a {canvas}-pixel canvas cannot hold {x.shape[1]}-pixel digits in quadrants")
    images = np.zeros((n, canvas, canvas), dtype=np.float32)
    picks = rng.integers(0, len(x), size=(n, 3))
    for i in range(n):
        for k, quadrant in enumerate(rng.permutation(4)[:3]):
            r, c = divmod(int(quadrant), 2)
            dr, dc = rng.integers(0, slack + 1, size=2)
            top, left = r * half + dr, c * half + dc
            images[i, top : top + x.shape[1], left : left + x.shape[2]] = x[picks[i, k]]
    images += rng.uniform(0, noise * 255, size=images.shape)
    parts = np.asarray(y)[picks]
    return np.clip(images, 0, 255).astype(np.uint8), parts.max(axis=1), parts


def extract_digits(image, n: int = 3, threshold: int = INK_THRESHOLD, size: int = 28) -> np.ndarray:
    """The ``n`` largest connected components of a multi-digit image, each placed on a
    ``size``×``size`` canvas with its centre of mass in the middle, as MNIST digits are
    (by area, largest first; blank if missing). Centring by the bounding box instead shifts
    digits by a pixel or two, which costs a pixel-based classifier dearly.

    The ink mask is dilated by two pixels before labelling, so that a digit drawn in two
    strokes (a 5 with a detached bar) stays one component; digits are further apart than that.
    """
    mask = np.asarray(image) > threshold
    labels, count = ndimage.label(ndimage.binary_dilation(mask, iterations=2))
    labels = np.where(mask, labels, 0)
    areas = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
    out = np.zeros((n, size, size), dtype=np.uint8)
    for k, component in enumerate(np.argsort(-areas)[:n] + 1):
        rows, cols = ndimage.find_objects((labels == component).astype(int))[0]
        crop = np.where(labels[rows, cols] == component, image[rows, cols], 0)
        h, w = crop.shape
        if h > size or w > size:
            continue
        centre_row, centre_col = ndimage.center_of_mass(crop.astype(np.float64))
        top = int(np.clip(round(size / 2 - centre_row), 0, size - h))
        left = int(np.clip(round(size / 2 - centre_col), 0, size - w))
        out[k, top : top + h, left : left + w] = crop
    return out


def largest_digit(digit_predictions, crops) -> np.ndarray:
    """The pipeline's answer for each image: the largest digit predicted among its non-blank
    crops. ``crops`` is images × n × 28 × 28 (from :func:`extract_digits`), ``digit_predictions``
    one class per crop (images × n, or flat); -1 where no digit was found at all."""
    crops = np.asarray(crops)
    predictions = np.asarray(digit_predictions).reshape(crops.shape[:2])
    return np.where(crops.any(axis=(2, 3)), predictions, -1).max(axis=1)


def threshold_denoise(x, threshold: int) -> np.ndarray:
    """Set every pixel darker than ``threshold`` to 0 (background)."""
    x = np.asarray(x)
    return np.where(x < threshold, 0, x).astype(np.uint8)


def median_denoise(x, size: int = 3) -> np.ndarray:
    """A ``size``×``size`` median filter on each image."""
    return ndimage.median_filter(np.asarray(x), size=(1, size, size)).astype(np.uint8)

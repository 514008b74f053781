"""Figures and tables for the notebooks: digit grids, distributions, ``save_fig`` and ``Table``."""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import config


def setup_notebook() -> None:
    """Common look for every chapter: inline PNG figures, seaborn style, quiet warnings."""
    import warnings

    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "figure.figsize": (7, 4)})
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")
    try:  # inside IPython: PNG output (the LaTeX report cannot take SVG)
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        set_matplotlib_formats("png")
    except ImportError:  # pragma: no cover - plain Python
        pass


def save_fig(fig, name: str, tight: bool = True):
    """Save ``fig`` as ``figures/<name>.png`` under the run's output directory; return the path."""
    path = config.figures_dir() / f"{name}.png"
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


def digit_grid(images, labels=None, class_names=None, n_cols: int = 10, title: str | None = None,
               size: float = 0.9):
    """A grid of 28×28 images with optional labels above each."""
    images = np.asarray(images)
    n_rows = int(np.ceil(len(images) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * size, n_rows * size * 1.15),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.ravel(), images)):
        ax.imshow(image.reshape(28, 28), cmap="binary", interpolation="nearest")
        if labels is not None:
            label = labels[i]
            ax.set_title(class_names[label] if class_names is not None and not isinstance(label, str)
                         else str(label), fontsize=8, pad=2)
    if title:
        fig.suptitle(title)
    return fig


def first_of_each_class(y, per_class: int = 10, seed: int = config.DEFAULT_SEED):
    """Indices of ``per_class`` random examples of each class, ordered column-wise by class."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    picks = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in classes]
    return np.stack(picks, axis=1).ravel()


def class_balance(y_train, y_test, class_names):
    """Bar chart of the share of each class in the training and test sets."""
    counts = pd.DataFrame({
        "train": np.bincount(y_train, minlength=len(class_names)) / len(y_train),
        "test": np.bincount(y_test, minlength=len(class_names)) / len(y_test),
    }, index=class_names)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    counts.plot.bar(ax=ax, rot=0 if len(max(class_names, key=len)) < 3 else 30)
    ax.set_ylabel("share of the set")
    ax.set_xlabel("class")
    return fig, counts


def mean_images(x, y, class_names):
    """The mean image of each class."""
    fig, axes = plt.subplots(1, len(class_names), figsize=(len(class_names) * 1.0, 1.4))
    for c, ax in enumerate(axes):
        ax.imshow(x[y == c].mean(axis=0), cmap="magma")
        ax.set_title(class_names[c], fontsize=8)
        ax.axis("off")
    return fig


def pixel_histogram(x):
    """Distribution of pixel intensities, log-scaled counts."""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(np.asarray(x).ravel(), bins=64, color="steelblue")
    ax.set_yscale("log")
    ax.set_xlabel("pixel intensity (0 = background, 255 = ink)")
    ax.set_ylabel("number of pixels (log)")
    return fig


def explained_variance(pca, target: float = 0.95):
    """Cumulative explained variance of a fitted PCA, with the component count for ``target``."""
    cumulative = np.cumsum(pca.explained_variance_ratio_)
    n_target = int(np.searchsorted(cumulative, target) + 1)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(np.arange(1, len(cumulative) + 1), cumulative)
    ax.axhline(target, color="grey", ls="--")
    ax.axvline(n_target, color="grey", ls="--")
    ax.annotate(f"{n_target} components: {target:.0%}", (n_target, target),
                textcoords="offset points", xytext=(8, -16))
    ax.set_xlabel("number of components")
    ax.set_ylabel("cumulative explained variance")
    return fig, n_target


def embedding_scatter(points, y, class_names, title: str | None = None):
    """A 2-D embedding coloured by class, each class labelled at its median."""
    fig, ax = plt.subplots(figsize=(7, 6))
    palette = sns.color_palette("tab10", len(class_names))
    for c, name in enumerate(class_names):
        mask = y == c
        ax.scatter(points[mask, 0], points[mask, 1], s=6, color=palette[c], alpha=0.7, label=name)
        if mask.any():
            cx, cy = np.median(points[mask], axis=0)
            ax.text(cx, cy, name, fontsize=11, weight="bold", ha="center", va="center",
                    bbox={"boxstyle": "round", "fc": "white", "alpha": 0.7})
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


class Table:
    """A DataFrame shown as HTML in notebooks and as an escaped booktabs table in the PDF."""

    def __init__(self, frame: pd.DataFrame, caption: str | None = None, float_format: str = "{:.4f}",
                 index: bool = True):
        self.frame, self.caption, self.float_format, self.index = frame, caption, float_format, index

    def _formatted(self) -> pd.DataFrame:
        return self.frame.apply(lambda col: col.map(
            lambda v: self.float_format.format(v) if isinstance(v, (float, np.floating)) else v))

    def _repr_html_(self) -> str:
        body = self._formatted().to_html(index=self.index, escape=True, border=0)
        caption = f"<p><em>{html.escape(self.caption)}</em></p>" if self.caption else ""
        return caption + body

    def _repr_latex_(self) -> str:
        frame = self._formatted().astype(str)
        latex = frame.to_latex(index=self.index, escape=True, caption=self.caption,
                               position="htbp")
        return latex.replace("\\begin{tabular}", "\\centering\n\\begin{tabular}")

    def __repr__(self) -> str:
        return self._formatted().to_string(index=self.index)

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


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]<>#|"})


def escape_markdown(text: str) -> str:
    """``text`` with Markdown's special characters escaped, so that it typesets as written."""
    return str(text).translate(_MARKDOWN_SPECIAL)


def say(*parts, sep: str = " ", markdown: bool = False) -> None:
    """Show a sentence that carries computed numbers as text (Markdown), not as a monospace print.

    Works like ``print``: the parts are joined with ``sep``; their Markdown characters are
    escaped unless ``markdown=True`` (then the text is Markdown as written). Outside IPython it
    prints.
    """
    text = sep.join(str(p) for p in parts)
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - plain Python
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
        return
    display(Markdown(text if markdown else escape_markdown(text)))


def learned(points) -> None:
    """The closing "What we learned" section of a chapter: three to five computed points."""
    points = [p for p in points if p]
    if not 3 <= len(points) <= 5:
        raise ValueError(f"'What we learned' takes three to five points, got {len(points)}")
    say("## What we learned\n\n" + "\n".join(f"- {p}" for p in points), markdown=True)


def save_fig(fig, name: str, caption: str | None = None, tight: bool = True) -> None:
    """Save ``fig`` as ``figures/<name>.png`` under the run's output directory.

    With a ``caption`` (and inside a notebook) the figure is shown with it, and becomes a
    numbered, captioned figure in the PDF report.
    """
    path = config.figures_dir() / f"{name}.png"
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=150, bbox_inches="tight")
    if caption:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:  # pragma: no cover - plain Python without IPython
            return
        if get_ipython() is not None:
            display(fig, metadata={"caption": caption})
            plt.close(fig)


def digit_grid(images, labels=None, class_names=None, n_cols: int = 10, title: str | None = None, size: float = 0.9):
    """A grid of 28×28 images with optional labels above each."""
    images = np.asarray(images)
    n_rows = int(np.ceil(len(images) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * size, n_rows * size * 1.15), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.ravel(), images)):
        side = int(round(np.sqrt(image.size)))
        ax.imshow(image.reshape(side, side), cmap="binary", interpolation="nearest")
        if labels is not None:
            label = labels[i]
            ax.set_title(
                class_names[label] if class_names is not None and not isinstance(label, str) else str(label),
                fontsize=8,
                pad=2,
            )
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
    counts = pd.DataFrame(
        {
            "train": np.bincount(y_train, minlength=len(class_names)) / len(y_train),
            "test": np.bincount(y_test, minlength=len(class_names)) / len(y_test),
        },
        index=class_names,
    )
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
    ax.annotate(f"{n_target} components: {target:.0%}", (n_target, target), textcoords="offset points", xytext=(8, -16))
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
            ax.text(
                cx,
                cy,
                name,
                fontsize=11,
                weight="bold",
                ha="center",
                va="center",
                bbox={"boxstyle": "round", "fc": "white", "alpha": 0.7},
            )
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


TEXT_WIDTH_PT, LANDSCAPE_WIDTH_PT = 460, 640  # nbconvert's report layout: 1-inch margins on letter paper
_CHAR_PT = {"small": 4.6, "footnotesize": 4.2}  # average width of a character at 9 and 8 pt
_COLUMN_PAD_PT = 12


def _looks_numeric(text: str) -> bool:
    return bool(text) and all(ch in "0123456789.,%+-–e " for ch in text.strip())


def _width(chars, size) -> float:
    return sum(c * _CHAR_PT[size] + _COLUMN_PAD_PT for c in chars)


def table_layout(chars: list[int], numeric: list[bool]) -> dict:
    """Font size, orientation and column format for a table whose columns are ``chars`` wide:
    9 pt if it fits the text width, else 8 pt; then long text columns wrap (``p{}``), then landscape."""
    chars = list(chars)
    spec = ["r" if n else "l" for n in numeric]
    for size in ("small", "footnotesize"):
        if _width(chars, size) <= TEXT_WIDTH_PT:
            return {"size": size, "landscape": False, "format": "".join(spec)}
    landscape = False
    while _width(chars, "footnotesize") > (LANDSCAPE_WIDTH_PT if landscape else TEXT_WIDTH_PT):
        texts = [i for i, n in enumerate(numeric) if not n and chars[i] > 24]
        if texts:  # wrap the widest text column at 24 characters
            i = max(texts, key=lambda k: chars[k])
            chars[i] = 24
            spec[i] = f">{{\\raggedright\\arraybackslash}}p{{{24 * _CHAR_PT['footnotesize']:.0f}pt}}"
        elif not landscape:
            landscape = True
        else:
            break  # as good as it gets: 8 pt, landscape, wrapped
    return {"size": "footnotesize", "landscape": landscape, "format": "".join(spec)}


class Table:
    """A DataFrame shown as HTML in notebooks and as an escaped booktabs table in the PDF."""

    def __init__(
        self,
        frame: pd.DataFrame,
        caption: str | None = None,
        float_format: str = "{:.4f}",
        index: bool = True,
        pdf_columns: list | None = None,
    ):
        """``pdf_columns``: the columns a reader of the PDF needs (default: all); the HTML keeps all."""
        self.frame, self.caption, self.float_format, self.index = frame, caption, float_format, index
        self.pdf_columns = pdf_columns

    def _formatted(self) -> pd.DataFrame:
        return self.frame.apply(
            lambda col: col.map(lambda v: self.float_format.format(v) if isinstance(v, (float, np.floating)) else v)
        )

    def _repr_html_(self) -> str:
        body = self._formatted().to_html(index=self.index, escape=True, border=0)
        caption = f"<p><em>{html.escape(self.caption)}</em></p>" if self.caption else ""
        return caption + body

    def _repr_latex_(self) -> str:
        """Booktabs LaTeX at 9 or 8 pt, never shrunk below: a table too wide for the page gets its
        long text columns wrapped and, if still too wide, a landscape page of its own."""
        from nbconvert.filters import escape_latex

        frame = self._formatted().astype(str)
        if self.pdf_columns:
            frame = frame[self.pdf_columns]
        caption = escape_latex(self.caption) if self.caption else None
        columns = ([frame.index.astype(str)] if self.index else []) + [frame[c] for c in frame.columns]
        headers = ([str(frame.index.name or "")] if self.index else []) + [str(c) for c in frame.columns]
        chars = [max([len(h)] + [len(v) for v in col]) for h, col in zip(headers, columns)]
        numeric = [self.index is False or i > 0 for i in range(len(chars))]
        numeric = [n and all(_looks_numeric(v) for v in col) for n, col in zip(numeric, columns)]
        layout = table_layout(chars, numeric)
        latex = frame.to_latex(
            index=self.index, escape=True, caption=caption, position="H", column_format=layout["format"]
        )
        latex = latex.replace("\\begin{tabular}", f"\\centering\\{layout['size']}\n\\begin{{tabular}}")
        if layout["landscape"]:
            latex = "\\begin{landscape}\n" + latex + "\\end{landscape}\n"
        return latex

    def __repr__(self) -> str:
        return self._formatted().to_string(index=self.index)


def precision_recall_vs_threshold(y_true, scores, threshold: float | None = None):
    """Precision and recall as functions of the decision threshold, ``threshold`` marked."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(y_true, scores)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(thresholds, precision[:-1], "b--", label="precision")
    ax.plot(thresholds, recall[:-1], "g-", label="recall")
    if threshold is not None:
        ax.axvline(threshold, color="black", ls=":", label=f"threshold {threshold:.2f}")
    ax.set_xlabel("decision threshold")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="center left")
    return fig


def _curve(display, y_true, scores, ax, name, **line):
    """``display.from_predictions`` with line styles passed the way this scikit-learn takes them
    (``curve_kwargs`` from 1.7 on; plain keyword arguments before, as on Colab's 1.6)."""
    import inspect

    if "curve_kwargs" in inspect.signature(display.from_predictions).parameters:
        return display.from_predictions(y_true, scores, ax=ax, name=name, curve_kwargs=line)
    return display.from_predictions(y_true, scores, ax=ax, name=name, **line)


def pr_and_roc(y_true, scores: dict, thresholds: dict | None = None):
    """PR and ROC curves of several models (``{name: scores}``), each threshold marked on both."""
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay, precision_score, recall_score

    fig, (ax_pr, ax_roc) = plt.subplots(1, 2, figsize=(11, 4.5))
    for (name, s), color in zip(scores.items(), sns.color_palette("tab10")):
        _curve(PrecisionRecallDisplay, y_true, s, ax_pr, name, color=color)
        _curve(RocCurveDisplay, y_true, s, ax_roc, name, color=color)
        if thresholds and name in thresholds:
            pred = np.asarray(s) >= thresholds[name]
            p, r = precision_score(y_true, pred), recall_score(y_true, pred)
            fpr = np.mean(pred[~np.asarray(y_true, bool)])
            ax_pr.plot(r, p, "o", color=color, ms=8)
            ax_roc.plot(fpr, r, "o", color=color, ms=8)
    ax_roc.plot([0, 1], [0, 1], "k:", lw=1)
    ax_pr.set_title("precision-recall")
    ax_roc.set_title("ROC")
    return fig


def one_vs_rest_curves(y_true, scores, class_names):
    """Per-class one-vs-rest ROC and PR curves of a ten-class model, with the micro average."""
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay
    from sklearn.preprocessing import label_binarize

    onehot = label_binarize(y_true, classes=np.arange(len(class_names)))
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(12, 5))
    palette = sns.color_palette("tab10", len(class_names))
    for c, name in enumerate(class_names):
        style = {"color": palette[c], "lw": 1, "alpha": 0.8}
        _curve(RocCurveDisplay, onehot[:, c], scores[:, c], ax_roc, name, **style)
        _curve(PrecisionRecallDisplay, onehot[:, c], scores[:, c], ax_pr, name, **style)
    micro = {"color": "black", "lw": 2.5, "ls": "--"}
    _curve(RocCurveDisplay, onehot.ravel(), scores.ravel(), ax_roc, "micro average", **micro)
    _curve(PrecisionRecallDisplay, onehot.ravel(), scores.ravel(), ax_pr, "micro average", **micro)
    for ax in (ax_roc, ax_pr):
        ax.legend(fontsize=7, loc="lower left" if ax is ax_pr else "lower right")
    ax_roc.set_title("one-vs-rest ROC")
    ax_pr.set_title("one-vs-rest precision-recall")
    return fig


def confusion_matrices(y_true, y_pred, class_names):
    """Two views of one confusion matrix, annotated at a size that stays legible in print:
    counts, and the errors alone (each row's errors as a share of that true class)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
    options = {
        "display_labels": class_names,
        "colorbar": False,
        "labels": np.arange(len(class_names)),
        "xticks_rotation": 45 if len(max(class_names, key=len)) > 2 else 0,
        "text_kw": {"fontsize": 11},
    }
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, ax=axes[0], **options)
    errors = np.asarray(y_true) != np.asarray(y_pred)
    ConfusionMatrixDisplay.from_predictions(
        y_true, y_pred, ax=axes[1], normalize="true", values_format=".0%", sample_weight=errors.astype(float), **options
    )
    for ax, title in zip(axes, ["counts", "errors only (share of each true class)"]):
        ax.set_title(title, fontsize=13)
        ax.tick_params(labelsize=11)
        ax.grid(False)
    return fig


def confused_pair_grid(x, y_true, y_pred, a: int, b: int, class_names, per_block: int = 12):
    """The book's 2×2 grid: a→a, a→b (top); b→a, b→b (bottom)."""
    fig, axes = plt.subplots(2, 2, figsize=(8, 8))
    for ax, (t, p) in zip(axes.ravel(), [(a, a), (a, b), (b, a), (b, b)]):
        pick = np.flatnonzero((y_true == t) & (y_pred == p))[:per_block]
        side = int(np.ceil(np.sqrt(max(per_block, 1))))
        canvas = np.zeros((side * 28, side * 28))
        for k, i in enumerate(pick):
            r, c = divmod(k, side)
            canvas[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = x[i]
        ax.imshow(canvas, cmap="binary")
        ax.set_title(
            f"true {class_names[t]}, predicted {class_names[p]} ({len(np.flatnonzero((y_true == t) & (y_pred == p)))})"
        )
        ax.axis("off")
    return fig


def training_curves(histories: dict):
    """All networks of a chapter in one figure: validation accuracy and training loss per epoch."""
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.2))
    for (name, history), color in zip(histories.items(), sns.color_palette("tab10", len(histories))):
        h = history.history if hasattr(history, "history") else history
        epochs = np.arange(1, len(h["loss"]) + 1)
        ax_acc.plot(epochs, h["val_accuracy"], "o-", ms=3, color=color, label=name)
        ax_loss.plot(epochs, h["loss"], "o-", ms=3, color=color, label=name)
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    ax_loss.set(xlabel="epoch", ylabel="training loss (log scale)", title="training loss", yscale="log")
    ax_acc.legend(fontsize=8, loc="lower right")
    return fig


def accuracy_against_time(curves: dict, reference: str | None = None):
    """Validation accuracy against training seconds, one line per network; ``reference`` (the
    Keras example's recipe) dashed in black."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    others = [n for n in curves if n != reference]
    for name, color in zip(others, sns.color_palette("tab10", len(others))):
        ax.plot(curves[name]["seconds"], curves[name]["val_accuracy"], "o-", ms=3, color=color, label=name)
    if reference in curves:
        c = curves[reference]
        ax.plot(c["seconds"], c["val_accuracy"], "k--", lw=2, label=f"{reference} (reference)")
    ax.set_xscale("log")
    values = [v for c in curves.values() for v in c["val_accuracy"]]
    if values:
        ax.set_ylim(max(min(values), max(values) - 0.06), min(1.0, max(values) + 0.005))
    ax.set(xlabel="training time, seconds (log scale)", ylabel="validation accuracy")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def misclassified_gallery(x, y_true, proba, class_names, n: int = 24, n_cols: int = 8):
    """Misclassified images, most confident first: true label, prediction with its confidence,
    and the second-best guess."""
    pred = proba.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    wrong = wrong[np.argsort(-proba[wrong, pred[wrong]])][:n]
    n_rows = max(1, int(np.ceil(len(wrong) / n_cols)))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * 1.35, n_rows * 1.75), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong):
        second = np.argsort(proba[i])[-2]
        ax.imshow(x[i], cmap="binary")
        ax.set_title(
            f"true {class_names[y_true[i]]}\npred {class_names[pred[i]]} {proba[i, pred[i]]:.0%}\n"
            f"2nd {class_names[second]} {proba[i, second]:.0%}",
            fontsize=7,
        )
    return fig


def accuracy_vs_time(board):
    """Test accuracy against training time (log scale), one labelled point per model."""
    fig, ax = plt.subplots(figsize=(8, 5))
    chapters = sorted(board["chapter"].unique())
    palette = dict(zip(chapters, sns.color_palette("tab10", len(chapters))))
    for _, row in board.iterrows():
        ax.errorbar(
            max(row["fit s"], 1e-3),
            row["accuracy"],
            yerr=[[row["accuracy"] - row["CI low"]], [row["CI high"] - row["accuracy"]]],
            fmt="o",
            color=palette[row["chapter"]],
            ms=5,
            capsize=2,
        )
        ax.annotate(
            row["model"],
            (max(row["fit s"], 1e-3), row["accuracy"]),
            fontsize=6,
            textcoords="offset points",
            xytext=(4, 2),
        )
    for chapter, color in palette.items():
        ax.plot([], [], "o", color=color, label=f"chapter {chapter}")
    ax.set_xscale("log")
    ax.set_xlabel("training time (seconds, log scale)")
    ax.set_ylabel("test accuracy (95% CI)")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def heatmap(frame, fmt: str = ".2f", cmap: str = "viridis", **kwargs):
    """A labelled heat map of a DataFrame (rows and columns as they are)."""
    fig, ax = plt.subplots(figsize=(min(14, 1 + 0.8 * frame.shape[1]), 0.45 * frame.shape[0] + 1.2))
    sns.heatmap(frame, annot=True, fmt=fmt, cmap=cmap, cbar=False, ax=ax, annot_kws={"fontsize": 7}, **kwargs)
    ax.tick_params(labelsize=8)
    return fig

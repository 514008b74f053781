"""Figures and tables for the notebooks: digit grids, distributions, ``save_fig`` and ``Table``."""

from __future__ import annotations

import html
import re
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

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


#: The largest figure the PDF prints at its own size, in inches (measured in the report: 5.86 in
#: wide; the template allows 0.55 of the page height), less the margin the notebook adds around
#: a figure: figures drawn at this size print their text at the font sizes they set.
PRINT_WIDTH_IN, PRINT_HEIGHT_IN = 5.75, 5.8
PRINT_FONT_PT = 8  # the smallest text of a figure drawn at its printed size
_CHAR_EM = 0.56  # average width of a character of matplotlib's sans-serif font, in ems


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
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    path = config.figures_dir() / f"{name}.png"
    if tight and not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):  # laid out already
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


def digit_grid(
    images,
    labels=None,
    class_names=None,
    n_cols: int = 10,
    title: str | None = None,
    size: float = 0.9,
    printed: bool = False,
):
    """A grid of 28×28 images with optional labels above each.

    ``printed``: drawn at its printed size (:data:`PRINT_WIDTH_IN` wide, ``size`` ignored), so its
    labels, which may have several lines, print at :data:`PRINT_FONT_PT`: with at most ``n_cols``
    columns, fewer where a label's widest line needs more room (Fashion-MNIST's "T-shirt/top")."""
    images = np.asarray(images)
    texts = None
    if labels is not None:
        texts = [
            class_names[label] if class_names is not None and not isinstance(label, str) else str(label)
            for label in labels
        ]
    if printed:
        width = PRINT_WIDTH_IN - 0.15  # save_fig's margin: the outer labels reach the figure's edges
        widest = max((len(line) for t in texts or [] for line in t.split("\n")), default=0)
        fits = int(0.85 * width * 72 / max(1e-9, widest * _CHAR_EM * PRINT_FONT_PT))  # room between two labels
        n_cols = max(1, min(n_cols, fits))
        column = width / n_cols
        lines = max((t.count("\n") + 1 for t in texts or []), default=0)
        label_in = lines * PRINT_FONT_PT * 1.25 / 72 + (0.04 if lines else 0)
        image_in = 0.92 * column
        n_rows = int(np.ceil(len(images) / n_cols))
        fig, axes = plt.subplots(
            n_rows,
            n_cols,
            figsize=(width, n_rows * (image_in + label_in) + 0.1 + (0.3 if title else 0)),
            squeeze=False,
            layout="constrained",
        )
        fig.get_layout_engine().set(w_pad=0.01, h_pad=0.01, wspace=0.0, hspace=0.0)
        fontsize = PRINT_FONT_PT
    else:
        n_rows = int(np.ceil(len(images) / n_cols))
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(n_cols * size, n_rows * size * 1.15), squeeze=False)
        fontsize = 8
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.ravel(), images)):
        side = int(round(np.sqrt(image.size)))
        ax.imshow(image.reshape(side, side), cmap="binary", interpolation="nearest")
        if texts is not None:
            ax.set_title(texts[i], fontsize=fontsize, pad=2, linespacing=1.1)
    if title:
        fig.suptitle(title, **({"fontsize": PRINT_FONT_PT + 1} if printed else {}))
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


TEXT_WIDTH_PT, LANDSCAPE_WIDTH_PT = 468, 648  # nbconvert's report layout: 1-inch margins on letter paper (6.5 and 9 in)
_CHAR_PT = {"small": 4.6, "footnotesize": 4.2}  # average width of a character at 9 and 8 pt
_COLUMN_PAD_PT = 12
_HEADER_MIN_CHARS = 10  # a header longer than its column's values is broken into lines of at least this

_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "\\": r"\textbackslash{}",
}


def escape_latex(text) -> str:
    """``text`` with LaTeX's special characters escaped (as nbconvert's filter does, without
    needing nbconvert: the notebooks also run where only the package is installed, as in Colab)."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in str(text))


def _looks_numeric(text: str) -> bool:
    return bool(text) and all(ch in "0123456789.,%+-–e " for ch in text.strip())


def _width(chars, size) -> float:
    return sum(c * _CHAR_PT[size] + _COLUMN_PAD_PT for c in chars)


def header_lines(header: str, width: int) -> list[str]:
    """``header`` broken at spaces, or after the underscores of a name (``kernel_`` / ``initializer``),
    into lines of about ``width`` characters (a long header over short values would otherwise set
    the column's width)."""
    width = max(width, _HEADER_MIN_CHARS)
    pieces = [(sep, piece) for word in str(header).split(" ") for sep, piece in _name_pieces(word)]
    lines: list[str] = []
    for sep, piece in pieces:
        if lines and len(lines[-1]) + len(sep) + len(piece) <= width:
            lines[-1] += sep + piece
        else:
            lines.append(piece)
    if len(lines) > 1 and len(lines[-1]) < 4:  # no line of its own for a unit ("s") or a stray word
        sep = "" if lines[-2].endswith("_") else " "
        lines[-2:] = [lines[-2] + sep + lines[-1]]
    return lines or [""]


def _name_pieces(word: str) -> list[tuple[str, str]]:
    """``word`` cut after each inner underscore, each piece with what joins it to the one before."""
    pieces = [p for p in re.split(r"(?<=_)(?=[^_])", word)] or [""]
    return [(" ", pieces[0])] + [("", p) for p in pieces[1:]]


def table_layout(chars: list[int], numeric: list[bool]) -> dict:
    """Font size, orientation and column format for a table whose columns are ``chars`` wide:
    9 pt if it fits the text width, else 8 pt; then long text columns wrap (``p{}``), then landscape."""
    chars = list(chars)
    spec = ["r" if n else "l" for n in numeric]
    for size in ("small", "footnotesize"):
        if _width(chars, size) <= TEXT_WIDTH_PT:
            return {"size": size, "landscape": False, "format": "".join(spec), "wrapped": []}
    landscape, wrapped = False, []
    while _width(chars, "footnotesize") > (LANDSCAPE_WIDTH_PT if landscape else TEXT_WIDTH_PT):
        texts = [i for i, n in enumerate(numeric) if not n and chars[i] > 24]
        if texts:  # wrap the widest text column at 24 characters
            i = max(texts, key=lambda k: chars[k])
            chars[i] = 24
            spec[i] = f">{{\\raggedright\\arraybackslash}}p{{{24 * _CHAR_PT['footnotesize']:.0f}pt}}"
            wrapped.append(i)
        elif not landscape:
            landscape = True
        else:
            break  # as good as it gets: 8 pt, landscape, wrapped
    return {"size": "footnotesize", "landscape": landscape, "format": "".join(spec), "wrapped": wrapped}


#: Columns that hold seconds ("fit s", "predict s / 1,000", "s / epoch", "fit seconds"): one decimal.
_SECONDS_COLUMN = re.compile(r"(^|\s)(s|seconds)(\s|/|$)")
_DECIMALS = re.compile(r"\.(\d+)[f%eg]")


def _format_floats(column: pd.Series, fmt: str) -> pd.Series:
    """Floats formatted with ``fmt``; integers too when it groups thousands (``{:,.0f}``)."""

    def shown(v):
        if isinstance(v, (float, np.floating)):
            return fmt.format(v)
        if "," in fmt and isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            return fmt.format(v)
        return v

    return column.map(shown)


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
        """``pdf_columns``: the columns a reader of the PDF needs (default: all); the HTML keeps all.
        Columns of seconds are shown with one decimal whatever ``float_format`` says."""
        self.frame, self.caption, self.float_format, self.index = frame, caption, float_format, index
        self.pdf_columns = pdf_columns

    def _column_format(self, column) -> str:
        decimals = _DECIMALS.search(self.float_format)
        if _SECONDS_COLUMN.search(str(column)) and (decimals is None or int(decimals.group(1)) > 1):
            return "{:,.1f}"
        return self.float_format

    def _formatted(self) -> pd.DataFrame:
        if self.frame.shape[1] == 0:
            return self.frame.copy()
        columns = [
            _format_floats(self.frame.iloc[:, i], self._column_format(c)) for i, c in enumerate(self.frame.columns)
        ]
        formatted = pd.concat(columns, axis=1)
        formatted.columns = self.frame.columns
        return formatted

    def _repr_html_(self) -> str:
        body = self._formatted().to_html(index=self.index, escape=True, border=0)
        caption = f"<p><em>{html.escape(self.caption)}</em></p>" if self.caption else ""
        return caption + body

    def _repr_latex_(self) -> str:
        """Booktabs LaTeX at 9 or 8 pt, never shrunk below: long headers over short numbers are
        broken into lines; a table still too wide for the page gets its long text columns wrapped
        and, if still too wide, a landscape page of its own."""
        frame = self._formatted().astype(str)
        if self.pdf_columns:
            frame = frame[self.pdf_columns]
        columns = ([list(frame.index.astype(str))] if self.index else []) + [list(frame[c]) for c in frame.columns]
        headers = ([str(frame.index.name or "")] if self.index else []) + [
            " ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns
        ]
        values = [max([len(v) for v in col], default=0) for col in columns]
        numeric = [self.index is False or i > 0 for i in range(len(columns))]
        numeric = [n and all(_looks_numeric(v) for v in col) for n, col in zip(numeric, columns)]
        broken = [[h] for h in headers]
        layout = table_layout([max(w, len(h)) for w, h in zip(values, headers)], numeric)
        if layout["size"] != "small" or layout["wrapped"]:  # too wide: break the long headers first
            broken = [header_lines(h, w) for h, w in zip(headers, values)]
            layout = table_layout([max([w] + [len(x) for x in b]) for w, b in zip(values, broken)], numeric)

        def head(i):
            if i in layout["wrapped"] or len(broken[i]) == 1:  # a p{} column wraps its header itself
                return escape_latex(headers[i])
            align = "r" if numeric[i] else "l"
            lines = "\\\\".join(escape_latex(line) for line in broken[i])
            return f"\\begin{{tabular}}[b]{{@{{}}{align}@{{}}}}{lines}\\end{{tabular}}"

        rows = [" & ".join(escape_latex(col[r]) for col in columns) + " \\\\" for r in range(len(frame))]
        parts = [
            "\\begin{table}[H]",
            f"\\caption{{{escape_latex(self.caption)}}}" if self.caption else "",
            f"\\centering\\{layout['size']}",
            f"\\begin{{tabular}}{{{layout['format']}}}",
            "\\toprule",
            " & ".join(head(i) for i in range(len(headers))) + " \\\\",
            "\\midrule",
            *rows,
            "\\bottomrule",
            "\\end{tabular}",
            "\\end{table}",
        ]
        latex = "\n".join(p for p in parts if p) + "\n"
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


def score_per_parameter(grid_search):
    """Mean cross-validated score against each value of each hyper-parameter a fitted grid search
    varied (the last round of a successive-halving search), in rows of three legible panels."""
    cv_results = pd.DataFrame(grid_search.cv_results_)
    if "iter" in cv_results:
        cv_results = cv_results[cv_results["iter"] == cv_results["iter"].max()]
    grid = getattr(grid_search, "param_grid", {})
    varied = [p for p, values in grid.items() if len(values) > 1] or ["(none varied)"]
    n_cols = min(3, len(varied))
    n_rows = -(-len(varied) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.4 * n_cols, 2.3 * n_rows), squeeze=False, sharey=True)
    for ax in axes.ravel()[len(varied) :]:
        ax.set_visible(False)
    for ax, param in zip(axes.ravel(), varied):
        if f"param_{param}" in cv_results:
            sns.pointplot(data=cv_results, x=f"param_{param}", y="mean_test_score", ax=ax, errorbar=None)
        else:  # a grid of one configuration (the smoke profile): nothing to compare
            ax.text(0.5, 0.5, "one configuration", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
        ax.set_xlabel(param)
        ax.set_ylabel("mean CV accuracy")
        ax.tick_params(axis="x", rotation=30)
    return fig


def confusion_matrices(y_true, y_pred, class_names):
    """Two views of one confusion matrix, annotated at 8 pt or more in print: counts, and the
    errors alone, each row in percent of that true class's errors (where its errors go)."""
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4))  # printed 6.2 in wide: 12-pt text prints at 8 pt
    labels = np.arange(len(class_names))
    options = {
        "colorbar": False,
        "xticks_rotation": 45 if len(max(class_names, key=len)) > 2 else 0,
        "text_kw": {"fontsize": 12},
    }
    ConfusionMatrixDisplay(confusion_matrix(y_true, y_pred, labels=labels), display_labels=class_names).plot(
        ax=axes[0], **options
    )
    errors = confusion_matrix(y_true, y_pred, labels=labels)
    np.fill_diagonal(errors, 0)
    per_row = errors.sum(axis=1, keepdims=True)
    percent = np.divide(100 * errors, per_row, out=np.zeros(errors.shape), where=per_row > 0)
    ConfusionMatrixDisplay(percent, display_labels=class_names).plot(ax=axes[1], values_format=".0f", **options)
    for ax, title in zip(axes, ["counts", "errors only: % of the row's errors"]):
        ax.set_title(title, fontsize=13)
        ax.tick_params(labelsize=12)
        ax.xaxis.label.set_size(12)
        ax.yaxis.label.set_size(12)
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
    """All networks of a chapter in one figure: validation accuracy and training loss per epoch.
    Drawn at its printed size, the legend under both panels."""
    fig, (ax_acc, ax_loss) = plt.subplots(
        1, 2, figsize=(PRINT_WIDTH_IN, 2.9 + 0.16 * ((len(histories) + 1) // 2)), layout="constrained"
    )
    for (name, history), color in zip(histories.items(), sns.color_palette("tab10", len(histories))):
        h = history.history if hasattr(history, "history") else history
        epochs = np.arange(1, len(h["loss"]) + 1)
        ax_acc.plot(epochs, h["val_accuracy"], "o-", ms=3, color=color, label=name)
        ax_loss.plot(epochs, h["loss"], "o-", ms=3, color=color, label=name)
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    ax_loss.set(xlabel="epoch", ylabel="training loss (log scale)", title="training loss", yscale="log")
    for ax in (ax_acc, ax_loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _print_sizes(ax_acc, ax_loss)
    fig.legend(
        *ax_acc.get_legend_handles_labels(),
        loc="outside lower center",
        ncol=2,
        fontsize=PRINT_FONT_PT,
        frameon=False,
    )
    return fig


def _print_sizes(*axes) -> None:
    """Labels, titles and ticks at the sizes a figure drawn at its printed size needs."""
    for ax in axes:
        ax.tick_params(labelsize=PRINT_FONT_PT)
        ax.xaxis.label.set_fontsize(PRINT_FONT_PT + 1)
        ax.yaxis.label.set_fontsize(PRINT_FONT_PT + 1)
        ax.title.set_fontsize(PRINT_FONT_PT + 1)


def accuracy_against_time(curves: dict, reference: str | None = None):
    """Validation accuracy against training seconds, one line per network; ``reference`` (the
    Keras example's recipe) dashed in black. Drawn at its printed size, the legend underneath."""
    fig, ax = plt.subplots(figsize=(PRINT_WIDTH_IN, 3.2 + 0.16 * ((len(curves) + 1) // 2)), layout="constrained")
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
    _print_sizes(ax)
    fig.legend(loc="outside lower center", ncol=2, fontsize=PRINT_FONT_PT, frameon=False)
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


def place_labels(ax, xs, ys, texts, fontsize: float = PRINT_FONT_PT, marker_pt: float = 4.0) -> list:
    """Write ``texts`` beside the points ``(xs, ys)`` of ``ax`` so that no two labels overlap and
    no label covers a point or the axes' legend: each takes the nearest free place around its point
    (a thin leader line joins the ones pushed further out). Call it once the axes' limits and scales are final.
    Returns the annotations."""
    fig = ax.figure
    fig.canvas.draw()
    to_pt = 72 / fig.dpi
    points = ax.transData.transform(np.c_[xs, ys]) * to_pt
    box = ax.get_window_extent()
    x_min, y_min, x_max, y_max = (v * to_pt for v in (box.x0, box.y0, box.x1, box.y1))
    angles = np.deg2rad([45, 0, 90, 315, 135, 270, 180, 225, 20, 70, 110, 160, 200, 250, 290, 340])
    placed, annotations = [], []
    if ax.get_legend() is not None:  # drawn already: labels keep out of it
        legend = ax.get_legend().get_window_extent()
        placed.append(tuple(v * to_pt for v in (legend.x0, legend.y0, legend.x1, legend.y1)))

    def free(b):
        if b[0] < x_min or b[1] < y_min or b[2] > x_max or b[3] > y_max:
            return False
        if any(b[0] < o[2] and o[0] < b[2] and b[1] < o[3] and o[1] < b[3] for o in placed):
            return False
        return not any(
            b[0] - marker_pt < px < b[2] + marker_pt and b[1] - marker_pt < py < b[3] + marker_pt for px, py in points
        )

    for (px, py), (x, y), text in zip(points, zip(xs, ys), texts):
        w, h = len(str(text)) * _CHAR_EM * fontsize + 2, fontsize + 1
        spot = None
        for radius in (w / 2 + marker_pt + 1, 12, 17, 23, 30, 38, 48, 60):
            for a in angles:
                cx, cy = px + radius * np.cos(a), py + radius * np.sin(a)
                candidate = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
                if free(candidate):
                    spot = (cx, cy, radius, candidate)
                    break
            if spot:
                break
        if spot is None:  # no free place: upper right, as close as possible
            cx, cy = px + w / 2 + marker_pt, py + h / 2 + marker_pt
            spot = (cx, cy, 0, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        cx, cy, radius, taken = spot
        placed.append(taken)
        leader = {"arrowstyle": "-", "lw": 0.5, "color": "0.45", "shrinkA": 1, "shrinkB": 2.5}
        annotations.append(
            ax.annotate(
                str(text),
                (x, y),
                xytext=(cx - px, cy - py),
                textcoords="offset points",
                ha="center",
                va="center",
                fontsize=fontsize,
                arrowprops=leader if radius > w / 2 + marker_pt + 2 else None,
            )
        )
    return annotations


def _wrapped(text: str, width: int, indent: str = "") -> list[str]:
    return textwrap.wrap(str(text), width, subsequent_indent=indent, break_on_hyphens=False) or [""]


_ACCURACY_TICKS = (0.5, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.997, 0.998, 0.999, 0.9995)


def accuracy_vs_time(board):
    """Test accuracy against training time, one numbered point per model of the leaderboard
    ``board`` (1 = its first row, the most accurate), its colour the chapter, its shape where it
    trained (CPU or GPU seconds are not the same seconds); a key below names the numbers. A row
    with a ``seed sd`` (the mean of a recipe's networks from many seeds) also gets a wide, pale bar:
    mean ± 1.96 sd, where one seed's network lands 95% of the time.

    Drawn at its printed size. The accuracy axis is stretched towards 100% (logit scale), where
    the best models crowd."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    board = board.reset_index(drop=True)
    numbers = [str(i + 1) for i in range(len(board))]
    key_chars = 40
    entries = [_wrapped(f"{n}  {m}", key_chars, indent="     ") for n, m in zip(numbers, board["model"])]
    half = np.searchsorted(np.cumsum([len(e) for e in entries]), sum(len(e) for e in entries) / 2) + 1
    columns = [sum(entries[:half], []), sum(entries[half:], [])]
    line_in = PRINT_FONT_PT * 1.3 / 72
    key_height = max(len(c) for c in columns) * line_in + 0.25
    plot_height = min(3.6, PRINT_HEIGHT_IN - key_height - 0.7)
    fig = plt.figure(figsize=(PRINT_WIDTH_IN, plot_height + 0.7 + key_height), layout="constrained")
    grid = fig.add_gridspec(2, 1, height_ratios=[plot_height + 0.7, key_height])
    ax, key = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])

    chapters = sorted(board["chapter"].unique())
    palette = dict(zip(chapters, sns.color_palette("tab10", len(chapters))))
    shapes = {"CPU": "o", "GPU": "^"}
    devices = board["fit on"] if "fit on" in board else pd.Series("CPU", index=board.index)
    seconds = np.maximum(board["fit s"].astype(float), 1e-2)
    for i, row in board.iterrows():
        ax.errorbar(
            seconds[i],
            row["accuracy"],
            yerr=[[row["accuracy"] - row["CI low"]], [row["CI high"] - row["accuracy"]]],
            fmt=shapes.get(devices[i], "o"),
            color=palette[row["chapter"]],
            ms=5,
            mec="black",
            mew=0.4,
            elinewidth=0.8,
            capsize=1.5,
            alpha=0.9,
        )
    # the mean of a recipe's networks trained from many seeds (the seeds chapter): where one seed's lands, 95%
    seeded = board["seed sd"].notna() if "seed sd" in board else pd.Series(False, index=board.index)
    for i in np.flatnonzero(seeded):
        row = board.iloc[i]
        reach = 1.96 * float(row["seed sd"])
        ax.errorbar(
            seconds[i],
            row["accuracy"],
            yerr=reach,
            fmt="none",
            ecolor=palette[row["chapter"]],
            elinewidth=4,
            alpha=0.35,
            capsize=0,
        )
    ax.set_xscale("log")
    ax.set_yscale("logit")
    spread_low = (board["accuracy"] - 1.96 * board["seed sd"]).min() if seeded.any() else np.inf
    low, high = float(min(board["CI low"].min(), spread_low)), float(min(board["CI high"].max(), 0.9999))
    logit = np.log(np.array([low, high]) / (1 - np.array([low, high])))
    pad = 0.06 * (logit[1] - logit[0])
    ax.set_ylim(*(1 / (1 + np.exp(-(logit + [-pad, pad])))))
    ticks = [t for t in _ACCURACY_TICKS if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.2f}".rstrip("0").rstrip(".") + "%")
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_formatter(NullFormatter())
    x_low, x_high = seconds.min() / 2, seconds.max() * 2.5
    ax.set_xlim(x_low, x_high)
    ax.set_xlabel("training time, seconds (log scale)", fontsize=PRINT_FONT_PT + 1)
    ax.set_ylabel("test accuracy, 95% CI (stretched near 100%)", fontsize=PRINT_FONT_PT + 1)
    ax.tick_params(labelsize=PRINT_FONT_PT)
    handles = [
        plt.Line2D([], [], ls="", marker="s", ms=6, color=palette[c], label=f"chapter {str(c).lstrip('0')}")
        for c in chapters
    ]
    handles += [
        plt.Line2D([], [], ls="", marker=shape, ms=6, mfc="white", mec="black", label=f"trained on a {device}")
        for device, shape in shapes.items()
        if device in set(devices)
    ]
    if seeded.any():
        handles.append(plt.Line2D([], [], color="0.5", lw=4, alpha=0.5, label="mean over seeds: one seed's 95% range"))
    ax.legend(handles=handles, fontsize=PRINT_FONT_PT, loc="best", framealpha=0.9)  # where fewest points are
    key.axis("off")
    place_labels(ax, seconds, board["accuracy"], numbers)

    key.axis("off")
    key.text(
        0,
        1,
        "Models by number (the leaderboard's order, most accurate first):",
        fontsize=PRINT_FONT_PT,
        weight="bold",
        va="top",
        transform=key.transAxes,
    )
    for column, lines in enumerate(columns):
        key.annotate(
            "\n".join(lines),
            (0.51 * column, 1),
            xycoords="axes fraction",
            xytext=(0, -1.5 * PRINT_FONT_PT),
            textcoords="offset points",
            fontsize=PRINT_FONT_PT,
            va="top",
            linespacing=1.15,
        )
    return fig


def heatmap(frame, fmt: str = ".2f", cmap: str = "viridis", label_chars: int = 30, **kwargs):
    """A labelled, annotated heat map of a DataFrame (rows and columns as they are), drawn at its
    printed size so that its numbers print at 8.5 pt and its labels at 8 pt: row labels longer
    than ``label_chars`` are wrapped, a row is as tall as its label needs, and a column as wide as
    its widest number (``fmt``: "100.0" needs more room than "0.99"). ``kwargs`` go to
    :meth:`~matplotlib.axes.Axes.pcolormesh` (``vmin``, ``vmax``...)."""
    values = frame.to_numpy(dtype=float)
    n_rows, n_cols = values.shape
    shown = [[format(v, fmt) for v in row] for row in values]
    number_chars = max((len(text) for row in shown for text in row), default=4)
    number_in = number_chars * _CHAR_EM * 8.5 / 72 + 0.08  # "0.99" or "99.7": 0.34 in with room

    def layout(chars):
        labels = ["\n".join(_wrapped(r, chars)) for r in frame.index]
        lines = np.array([label.count("\n") + 1 for label in labels])
        heights = np.maximum(0.22, (PRINT_FONT_PT * (1 + 0.95 * (lines - 1)) + 3) / 72)
        width = max(len(line) for label in labels for line in label.split("\n")) * _CHAR_EM * PRINT_FONT_PT / 72
        cell = min(0.7, (PRINT_WIDTH_IN - width - 0.2) / n_cols)
        scale = min(1.0, PRINT_HEIGHT_IN / (heights.sum() + 0.45), cell / number_in)
        return scale, -heights.sum(), labels, heights, width, cell

    # the widest labels that still print everything at full size (fewer lines, narrower cells);
    # narrower ones when the numbers need wider cells
    widths = (label_chars, int(label_chars * 1.4), int(label_chars * 1.8), int(label_chars * 0.8))
    _, _, labels, heights, label_width, cell_width = max((layout(c) for c in widths), key=lambda o: o[:2])
    edges = np.concatenate([[0.0], np.cumsum(heights)])
    fig, ax = plt.subplots(figsize=(label_width + 0.2 + cell_width * n_cols, edges[-1] + 0.45))
    mesh = ax.pcolormesh(np.arange(n_cols + 1), edges, values, cmap=cmap, **kwargs)
    ax.set_ylim(edges[-1], 0)  # the first row on top
    centres = (edges[:-1] + edges[1:]) / 2
    ax.set_yticks(centres, labels, linespacing=0.95)
    ax.set_xticks(np.arange(n_cols) + 0.5, [str(c) for c in frame.columns])
    ax.tick_params(labelsize=PRINT_FONT_PT, length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    for i in range(n_rows):
        for j in range(n_cols):
            if np.isnan(values[i, j]):
                continue
            red, green, blue, _ = mesh.cmap(mesh.norm(values[i, j]))
            ink = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
            ax.text(j + 0.5, centres[i], shown[i][j], ha="center", va="center", fontsize=8.5, color=ink)
    return fig

"""The figures ``--plot`` writes: each function returns a matplotlib figure (Agg backend,
no display needed); :func:`mxugen.outputs.save_figure` writes it."""

from __future__ import annotations

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.ticker import MaxNLocator  # noqa: E402


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, title: str):
    classes = int(max(labels.max(), predicted.max())) + 1
    counts = np.zeros((classes, classes), dtype=int)
    np.add.at(counts, (labels, predicted), 1)
    fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
    ax.imshow(counts, cmap="Blues")
    for (i, j), count in np.ndenumerate(counts):
        if count:
            ax.text(j, i, count, ha="center", va="center", fontsize=7,
                    color="white" if count > counts.max() / 2 else "black")
    ax.set(xlabel="prediction", ylabel="label", xticks=range(classes), yticks=range(classes),
           title=title)
    return fig


def layer_errors(rows: list[dict], title: str):
    """Histograms of ``row["error"]`` (dequantized int8 − float) per layer, SQNR in titles."""
    fig, axes = plt.subplots(1, len(rows), figsize=(4 * len(rows), 3.4), squeeze=False,
                             layout="constrained")
    for ax, row in zip(axes[0], rows):
        ax.hist(row["error"].ravel(), bins=60, color="tab:orange")
        ax.set(title=f"{row['layer']}: SQNR {row['sqnr_db']:.1f} dB",
               xlabel="int8 − float (dequantized)", ylabel="count")
    fig.suptitle(title)
    return fig


def utilization(names: list[str], ideal: list[float], model: list[int], title: str):
    """Per layer: cycles if every PE were busy, and the cycle model's count."""
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    positions = np.arange(len(names))
    ax.bar(positions - 0.2, ideal, 0.4, label="ideal (every PE busy)")
    ax.bar(positions + 0.2, model, 0.4, label="cycle model")
    ax.set(xticks=positions, xticklabels=names, ylabel="cycles", title=title)
    ax.legend()
    return fig


def bit_width_sweep(formats: list[str], values: list[float], ylabel: str,
                    reference: float | None, title: str):
    """A figure of ``values`` per weight format, with the float model's as a line."""
    fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    ax.plot(formats, values, "o-", label="quantized")
    if reference is not None:
        ax.axhline(reference, color="grey", linestyle="--", label="float")
    ax.set(xlabel="weight format", ylabel=ylabel, title=title)
    ax.legend()
    return fig


def allocation(path: list[tuple[int, float]], uniform: list[tuple[str, int, float]],
               ylabel: str, title: str):
    """A mixed-precision allocation's path (weight bytes, score) from uniform int8, move by
    move, beside every uniform weight format's (name, weight bytes, score)."""
    fig, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    ax.plot(*zip(*path), "o-", color="tab:blue", label="per-layer widths, move by move")
    ax.plot(*path[-1], "*", color="tab:red", markersize=14, label="chosen")
    for name, size, value in uniform:
        ax.plot(size, value, "s", color="grey")
        ax.annotate(name, (size, value), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    ax.set(xlabel="weight bytes (packed)", ylabel=ylabel, title=title)
    ax.legend()
    return fig


def pareto(points: list[dict], front: list[dict], title: str):
    """Inferences per second against LUTs, DSPs and block RAMs of every placed point (those
    that do not fit the target hollow, those on the Pareto front of all three resources in
    orange); on each axis the staircase of the points no other beats on that resource alone,
    labelled."""
    placed = [p for p in points if "inferences_per_s" in p]
    on_front = {id(p) for p in front}
    axes_of = (("luts", "LUTs"), ("dsps", "DSPs (MULT18X18D)"), ("block_rams", "block RAMs"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained", sharey=True)
    for ax, (key, label) in zip(axes, axes_of):
        for fits in (True, False):
            for best in (True, False):
                chosen = [p for p in placed if bool(p.get("fits")) == fits and
                          (id(p) in on_front) == best]
                color = "tab:orange" if best else "tab:blue"
                ax.scatter([p[key] for p in chosen], [p["inferences_per_s"] for p in chosen],
                           facecolors=color if fits else "none", edgecolors=color, zorder=3,
                           label=("Pareto front" if best else "fits") if fits else
                           "does not fit")
        stairs, fastest = [], 0.0
        for p in sorted((p for p in placed if p.get("fits")),
                        key=lambda p: (p[key], -p["inferences_per_s"])):
            if p["inferences_per_s"] > fastest:
                stairs.append(p)
                fastest = p["inferences_per_s"]
        ax.step([p[key] for p in stairs], [p["inferences_per_s"] for p in stairs],
                where="post", color="tab:gray", linewidth=0.8)
        for p in stairs:
            ax.annotate(p["candidate"].split(" ")[0], (p[key], p["inferences_per_s"]),
                        fontsize=7, textcoords="offset points", xytext=(4, -10))
        ax.set(xlabel=label)
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    axes[0].set(ylabel="inferences per second")
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    axes[0].legend(unique.values(), unique.keys(), fontsize=8)
    fig.suptitle(title)
    return fig

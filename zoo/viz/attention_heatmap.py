"""Alignment heatmaps of attention weights."""

import matplotlib

matplotlib.use("Agg")  # headless: training and CI have no display
import matplotlib.pyplot as plt
import numpy as np


def plot_attention(weights, source_tokens, target_tokens, path=None, title=None):
    """Draw `weights [target, source]` as a heatmap; save a PNG to `path` if given.

    Returns the matplotlib Figure (closed after saving when `path` is given).
    """
    weights = np.asarray(weights, dtype=np.float32)
    weights = weights[: len(target_tokens), : len(source_tokens)]
    width = max(4.0, 0.45 * len(source_tokens) + 1.5)
    height = max(3.0, 0.4 * len(target_tokens) + 1.5)
    figure, axes = plt.subplots(figsize=(width, height))
    image = axes.imshow(weights, cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(source_tokens)))
    axes.set_xticklabels(source_tokens, rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(target_tokens)))
    axes.set_yticklabels(target_tokens, fontsize=8)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    if title:
        axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=110)
        plt.close(figure)
    return figure

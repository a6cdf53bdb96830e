"""Visualisation: attention heatmaps."""

from zoo.viz.attention_heatmap import plot_attention

__all__ = ["plot_attention"]

"""The review's figures, each redrawn from this project's own models; one file per figure."""

from deepnets.figures.fig1 import draw_fig1

FIGURES = {"fig1": draw_fig1}

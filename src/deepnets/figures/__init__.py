"""The review's figures, each redrawn from this project's own models; one file per figure."""

from deepnets.figures.fig1 import draw_fig1
from deepnets.figures.fig2 import draw_fig2
from deepnets.figures.fig4 import draw_fig4
from deepnets.figures.fig5 import draw_fig5
from deepnets.figures.pretraining import draw_dbn_samples, draw_filters

FIGURES = {
    "fig1": draw_fig1,
    "fig2": draw_fig2,
    "fig4": draw_fig4,
    "fig5": draw_fig5,
    "fig-filters": draw_filters,
    "fig-dbn-samples": draw_dbn_samples,
}

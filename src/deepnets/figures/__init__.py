"""The review's figures, each redrawn from this project's own models; one file per figure."""

from deepnets.figures.dqn import draw_dqn_curves, draw_dqn_q
from deepnets.figures.fig1 import draw_fig1
from deepnets.figures.fig2 import draw_fig2
from deepnets.figures.fig3 import draw_fig3
from deepnets.figures.fig4 import draw_fig4
from deepnets.figures.fig5 import draw_fig5
from deepnets.figures.glimpses import draw_glimpses
from deepnets.figures.memn2n import draw_memn2n_hops
from deepnets.figures.minima import draw_minima
from deepnets.figures.ntm import draw_ntm_copy, draw_ntm_sort
from deepnets.figures.phrases import draw_phrases
from deepnets.figures.pretraining import draw_dbn_samples, draw_filters

FIGURES = {
    "fig1": draw_fig1,
    "fig2": draw_fig2,
    "fig3": draw_fig3,
    "fig4": draw_fig4,
    "fig4-phrases": draw_phrases,
    "fig5": draw_fig5,
    "fig-filters": draw_filters,
    "fig-dbn-samples": draw_dbn_samples,
    "fig-memn2n-hops": draw_memn2n_hops,
    "fig-ntm-copy": draw_ntm_copy,
    "fig-ntm-sort": draw_ntm_sort,
    "fig-dqn-curves": draw_dqn_curves,
    "fig-dqn-q": draw_dqn_q,
    "fig-glimpses": draw_glimpses,
    "fig-minima": draw_minima,
}

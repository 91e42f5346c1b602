"""The MemN2N hop-attention table (Sukhbaatar et al. 2015, Fig. 2): for one bAbI test story,
the attention p_i each hop of a trained memory network puts on each sentence, beside the
question, the true answer, the model's answer and the supporting facts (marked *).

The story is the first test question of task 2 (two supporting facts) when the run trained it,
else the first test question of the run's first task; `question=N` picks the N-th test question
of that task instead.
"""

from __future__ import annotations

from pathlib import Path

from deepnets import DeepnetsError
from deepnets.figures.output import save_figure


def pick_question(data: dict, tasks: tuple[int, ...], index: int = 0):
    """The `index`-th test question of task 2, or of the first task trained."""
    task = 2 if 2 in tasks else tasks[0]
    questions = [q for q in data["test"].questions if q.task == task]
    if not 0 <= index < len(questions):
        raise DeepnetsError(f"task {task} has {len(questions)} test questions, not {index + 1}")
    return questions[index]


def draw_memn2n_hops(run_dir: str | None = None, out: str | None = None, question: int = 0) -> Path:
    """Draw a memn2n-babi run's attention over a test story at each hop (default
    figures/fig-memn2n-hops.png)."""
    if run_dir is None:
        raise DeepnetsError(
            "fig-memn2n-hops needs a trained memory network's run folder, for example "
            "`deepnets run memn2n-babi` then "
            "`deepnets figure fig-memn2n-hops runs/memn2n-babi/<run>`"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from deepnets.train.memn2n import answer, load_trained

    config, data, model = load_trained(run_dir, "cpu")
    q = pick_question(data, config.tasks, question)
    story = [" ".join(s) for s in q.story[-config.memory_size :]]
    offset = len(q.story) - len(story)  # supporting facts index the whole story
    result = answer(config, data["vocab"], model, story, " ".join(q.question) + "?")
    attention = result["attention"]  # (K, n)
    hops, n = len(attention), len(story)

    fig, ax = plt.subplots(figsize=(4.5 + 0.9 * hops, 1.8 + 0.32 * n), layout="constrained")
    table = [[attention[k][i] for k in range(hops)] for i in range(n)]  # (n, K)
    ax.imshow(table, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for i in range(n):
        for k in range(hops):
            value = table[i][k]
            color = "white" if value > 0.6 else "black"
            ax.text(k, i, f"{value:.2f}", ha="center", va="center", fontsize=8, color=color)
    support = {s - offset for s in q.support}
    ax.set_yticks(range(n))
    ax.set_yticklabels(
        [("* " if i in support else "") + s for i, s in enumerate(story)], fontsize=8
    )
    ax.set_xticks(range(hops))
    ax.set_xticklabels([f"hop {k + 1}" for k in range(hops)], fontsize=9)
    ax.xaxis.tick_top()
    fig.suptitle(
        f"task {q.task}: {' '.join(q.question)}?\n"
        f"true answer: {q.answer}   model: {result['answer']} (p = {result['probability']:.2f})"
        f"   * supporting fact",
        fontsize=9,
    )
    path = Path(out) if out else Path("figures") / "fig-memn2n-hops.png"
    return save_figure(fig, path, dpi=110)

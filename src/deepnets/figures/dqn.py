"""Deep Q-learning figures (Mnih et al. 2015, Figs. 2 and 3): the learning curve (the return of
each training game against environment steps, one line per seed, with the validation returns),
and the Q-values along one evaluation episode of a trained agent.

`fig-dqn-curves` takes a run folder, or a folder of run folders (for example
runs/bench/dqn-cartpole, where `deepnets bench` puts its seeds); `fig-dqn-q` takes one run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepnets import DeepnetsError

SMOOTH = 10  # games in the moving average of the curve


def run_folders(path: Path) -> list[Path]:
    """`path` itself if it is a run folder, else the run folders directly inside it."""
    if (path / "config.json").is_file():
        return [path]
    found = (
        sorted(p for p in path.iterdir() if (p / "config.json").is_file()) if path.is_dir() else []
    )
    if not found:
        raise DeepnetsError(f"{path} is not a run folder and holds none")
    return found


def curves(run_dir: Path) -> dict:
    """The game returns and validation returns of one run: {'games': (steps, returns),
    'val': (steps, returns), 'experiment', 'seed'}."""
    from deepnets.run import RunDir

    run = RunDir.open(run_dir)
    experiment, config, _ = run.read_config()
    from deepnets.train.reinforce import DQN

    if not isinstance(experiment.task, DQN):
        raise DeepnetsError(f"{run_dir} is a {experiment.id} run, not a DQN run")
    rows = run.read_metrics()
    games = [(r["step"], r["return"]) for r in rows if "return" in r]
    val = [(r["step"], r["val_return"]) for r in rows if "val_return" in r]
    return {
        "games": as_arrays(games),
        "val": as_arrays(val),
        "experiment": experiment.id,
        "config": config,
        "seed": config.seed,
    }


def as_arrays(pairs: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) pairs as two float arrays (empty if there are none)."""
    if not pairs:
        return np.zeros(0), np.zeros(0)
    x, y = zip(*pairs)
    return np.array(x, dtype=float), np.array(y, dtype=float)


def moving_average(values: np.ndarray, n: int) -> np.ndarray:
    """The mean of each value and the up to n - 1 before it."""
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    k = np.arange(1, len(values) + 1)
    low = np.maximum(0, k - n)
    return (cumulative[k] - cumulative[low]) / (k - low)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: str | None, name: str) -> Path:
    path = Path(out) if out else Path("figures") / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def draw_dqn_curves(run_dir: str | None = None, out: str | None = None) -> Path:
    """Return against environment steps for every run (seed) under `run_dir`."""
    if run_dir is None:
        raise DeepnetsError(
            "fig-dqn-curves needs a DQN run folder or a folder of them, for example "
            "`deepnets figure fig-dqn-curves runs/bench/dqn-cartpole`"
        )
    runs = [curves(p) for p in run_folders(Path(run_dir))]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for k, c in enumerate(runs):
        colour = f"C{k}"
        steps, returns = c["games"]
        if len(steps):
            ax.plot(steps, returns, color=colour, alpha=0.15, linewidth=0.8)
            ax.plot(steps, moving_average(returns, SMOOTH), color=colour, label=f"seed {c['seed']}")
        v_steps, v_returns = c["val"]
        if len(v_steps):
            ax.plot(v_steps, v_returns, "o", color=colour, markersize=4)
    frames = runs[0]["config"].env == "atari"
    ax.set(
        xlabel="environment steps" + (" (x4 frames)" if frames else ""),
        ylabel="return",
        title=f"{runs[0]['experiment']}: training games (mean of {SMOOTH}) and validations (dots)",
    )
    ax.legend()
    fig.tight_layout()
    path = _save(fig, out, "fig-dqn-curves")
    plt.close(fig)
    return path


def load_agent(run_dir: Path) -> tuple:
    """A DQN run's experiment, config and Q-network (the selected weights, eval mode, CPU)."""
    from deepnets.run import RunDir
    from deepnets.train.reinforce import DQN

    run = RunDir.open(run_dir)
    experiment, config, _ = run.read_config()
    if not isinstance(experiment.task, DQN):
        raise DeepnetsError(f"{run_dir} is a {experiment.id} run, not a DQN run")
    q = experiment.build_model(config)
    q.load_state_dict(run.selected_weights(config.select))
    return experiment, config, q.eval()


def play_greedy(experiment, config, q, seed: int, max_steps: int = 1000) -> dict:
    """One greedy evaluation episode of at most max_steps, reset with `seed`: the observations
    (T + 1, ...) before each step and after the last, Q(s_t, .) (T, A), the actions (T,) and the
    rewards (T,)."""
    from deepnets.train.reinforce import greedy

    env = experiment.task.make_env(experiment, config, training=False)
    try:
        obs, _ = env.reset(seed=seed, new_game=True)
        observations, values, actions, rewards = [obs], [], [], []
        for _ in range(max_steps):
            action, q_values = greedy(q, obs, "cpu")
            values.append(q_values.numpy())
            actions.append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            rewards.append(reward)
            if terminated or truncated:
                break
    finally:
        env.close()
    return {
        "observations": np.stack(observations),
        "q": np.stack(values),
        "actions": np.array(actions),
        "rewards": np.array(rewards),
    }


def q_trace(run_dir: Path, seed: int, max_steps: int = 1000) -> dict:
    """Q(s_t, .) at each step of one greedy evaluation episode of a run's selected weights."""
    experiment, config, q = load_agent(run_dir)
    trace = play_greedy(experiment, config, q, seed, min(max_steps, config.eval_max_steps))
    return {"q": trace["q"], "rewards": trace["rewards"], "experiment": experiment.id}


def draw_dqn_q(run_dir: str | None = None, out: str | None = None) -> Path:
    """The Q-value of every action along one test episode, with the rewards received."""
    from deepnets.train.reinforce import TEST_SEED

    if run_dir is None:
        raise DeepnetsError("fig-dqn-q needs a trained DQN run folder")
    trace = q_trace(Path(run_dir), TEST_SEED)
    plt = _pyplot()
    fig, (ax, ax_r) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=(3, 1))
    for a in range(trace["q"].shape[1]):
        ax.plot(trace["q"][:, a], linewidth=1, label=f"Q(s, a={a})")
    ax.set(ylabel="Q-value", title=f"{trace['experiment']}: Q-values along one test episode")
    ax.legend(fontsize=8, ncol=3)
    ax_r.bar(np.arange(len(trace["rewards"])), trace["rewards"], color="k")
    ax_r.set(xlabel="step", ylabel="reward")
    fig.tight_layout()
    path = _save(fig, out, "fig-dqn-q")
    plt.close(fig)
    return path

"""Deep Q-learning (Mnih et al. 2015): the RL loop, on the same run folder as the gradient engine.

`DQN().train(experiment, config, run)` reads top to bottom:

1. set up: the training and evaluation environments, the Q-network and its target copy
   theta^-, the optimizer (Adam or RMSProp), the replay buffer, one numpy generator for every
   random draw of training (epsilon-greedy actions and minibatches); or, with `--resume`, all of
   these as the last checkpoint left them;
2. each environment step: act epsilon-greedily (epsilon falls linearly from eps_start to eps_end
   over eps_steps, then stays), store the transition in the replay buffer; every `train_every`
   steps after `learning_starts`, draw a minibatch and take one gradient step on the Huber loss
   between Q(s, a) and y = r + gamma * (1 - terminated) * max_a' Q(s', a'; theta^-); every
   `target_every` steps copy theta into theta^-;
3. every `eval_every` steps, play `val_episodes` evaluation episodes with fixed seeds and keep
   the weights with the best mean return (best.safetensors);
4. at an episode end (a whole game for Atari), once `checkpoint_every` steps have passed since
   the last one, checkpoint: weights, target weights, optimizer, replay buffer, the generator's
   state and the episode counter. Episode k of training is reset with a seed made from
   (seed, k), so a resumed run continues exactly as an uninterrupted one;
5. finally test the selected weights on `eval_episodes` episodes with other fixed seeds and
   write summary.json: the mean return beside the published number.

metrics.jsonl holds one line per training game (step, return, length), one per `log_every`
steps (loss, epsilon, mean Q, steps per second) and one per validation (val_return).
"""

from __future__ import annotations

import copy
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from deepnets import DeepnetsError
from deepnets.run import RunDir, summary_record
from deepnets.train import checkpoint as ckpt
from deepnets.train.distributed import resolve_device
from deepnets.train.engine import Log, print_line
from deepnets.train.replay import ReplayBuffer

REPLAY = "replay.safetensors"
VAL_SEED, TEST_SEED = 1_000_000, 2_000_000  # evaluation episode j is reset with seed BASE + j


def episode_seed(seed: int, k: int) -> int:
    """The reset seed of training episode k of a run seeded `seed`."""
    return (seed * 1_000_003 + k) % (2**31 - 1)


def epsilon_at(step: int, config) -> float:
    """Linear decay from eps_start to eps_end over eps_steps, then constant."""
    fraction = min(1.0, step / config.eps_steps)
    return config.eps_start + fraction * (config.eps_end - config.eps_start)


def newest_frame(obs: np.ndarray, stack: int) -> np.ndarray:
    """What the replay buffer stores of an observation: its newest frame if it is a stack."""
    return obs[-1] if stack > 1 else obs


def make_optimizer(model: nn.Module, config) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, eps=config.adam_eps)
    # the RMSProp of the DQN papers: centred, squared-gradient decay 0.95
    return torch.optim.RMSprop(
        model.parameters(), lr=config.lr, alpha=0.95, eps=config.adam_eps, centered=True
    )


def td_loss(q: nn.Module, target: nn.Module, batch: dict, gamma: float, double: bool):
    """Huber loss between Q(s, a) and r + gamma (1 - terminated) max_a' Q^-(s', a'), and the mean
    Q(s, a). With `double`, a' is chosen by q and valued by the target (van Hasselt 2016)."""
    q_sa = q(batch["obs"]).gather(1, batch["action"][:, None])[:, 0]  # (B,)
    with torch.no_grad():
        next_q = target(batch["next_obs"])  # (B, A)
        if double:
            best = q(batch["next_obs"]).argmax(1, keepdim=True)
            next_value = next_q.gather(1, best)[:, 0]
        else:
            next_value = next_q.max(1).values
        y = batch["reward"] + gamma * (1.0 - batch["terminated"]) * next_value  # the TD target
    return F.smooth_l1_loss(q_sa, y), q_sa.detach().mean()


def greedy(q: nn.Module, obs: np.ndarray, device: torch.device) -> tuple[int, torch.Tensor]:
    """argmax_a Q(obs, a) and the values Q(obs, .)."""
    with torch.no_grad():
        values = q(torch.as_tensor(obs, device=device)[None])[0]  # (A,)
    return int(values.argmax()), values


def play(q: nn.Module, env, seeds: list[int], epsilon: float, max_steps: int, device) -> list:
    """The return of one episode per seed (a whole game), acting epsilon-greedily with a
    generator seeded by the episode's seed: the same weights always score the same."""
    returns = []
    q.eval()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        obs, _ = env.reset(seed=seed, new_game=True)
        total = 0.0
        for _ in range(max_steps):
            if rng.random() < epsilon:
                action = int(rng.integers(env.action_space.n))
            else:
                action, _ = greedy(q, obs, device)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += reward
            if terminated or truncated:
                break
        returns.append(total)
    q.train()
    return returns


class DQN:
    """The task of the DQN experiments (see the module docstring)."""

    def make_env(self, experiment, config, training: bool):
        from deepnets.envs import make_env

        limit = config.max_episode_steps if training else 0
        return make_env(config.env, config.game, max_episode_steps=limit, training=training)

    def train(
        self,
        experiment,
        config,
        run: RunDir,
        preset: str = "custom",
        resume: bool = False,
        progress: bool = True,
        log: Log = print_line,
    ) -> dict:
        device = resolve_device(config.device)
        env = self.make_env(experiment, config, training=True)
        eval_env = self.make_env(experiment, config, training=False)
        n_actions = env.action_space.n
        stack = env.observation_shape[0] if config.env == "atari" else 1
        frame_shape = env.observation_shape[1:] if stack > 1 else env.observation_shape
        dtype = np.float32 if config.env == "cartpole" else np.uint8

        # --- 1. set up: networks, optimizer, replay, generator, or the last checkpoint --------
        torch.manual_seed(config.seed)
        q = experiment.build_model(config).to(device)
        target = copy.deepcopy(q)
        optimizer = make_optimizer(q, config)
        buffer = ReplayBuffer(config.buffer_size, frame_shape, dtype, stack)
        rng = np.random.default_rng(config.seed)
        state = {
            "step": 0,  # environment steps taken (Atari: 4 frames each)
            "episode": 0,  # training episodes reset so far (the next reset uses seed k)
            "updates": 0,
            "games": 0,  # whole games finished
            "recent": [],  # returns of the last 100 games
            "best": None,  # best validation return
            "best_step": None,
            "train_seconds": 0.0,
        }
        if resume:
            if (run / RunDir.SUMMARY).exists():
                raise DeepnetsError(f"{run.path} has finished (it holds {RunDir.SUMMARY})")
            model_state, optimizer_state, state = run.load_checkpoint()
            q.load_state_dict(model_state)
            optimizer.load_state_dict(optimizer_state)
            tensors, saved = ckpt.load_tensors(run / REPLAY)
            if saved["step"] != state["step"]:
                raise DeepnetsError(
                    f"{run / REPLAY} is from step {saved['step']}, the checkpoint from step "
                    f"{state['step']}: the run folder is inconsistent"
                )
            target.load_state_dict(
                {k[7:]: v for k, v in tensors.items() if k.startswith("target.")}
            )
            buffer.load_state_dict(
                {k[7:]: v for k, v in tensors.items() if k.startswith("replay.")}, saved["replay"]
            )
            rng.bit_generator.state = saved["rng"]
            torch.set_rng_state(tensors["torch_rng"])
            run.keep_metrics(lambda row: row["step"] <= state["step"])
            log(f"resuming {run.path} at step {state['step']} (episode {state['episode']})")
        else:
            run.write_config(experiment, preset, config, device, 1)
            log(
                f"{experiment.id}: {config.env} {config.game or ''} for {config.env_steps} steps, "
                f"{sum(p.numel() for p in q.parameters())} parameters, {n_actions} actions"
            )

        def checkpoint() -> None:
            """The replay file first, then the checkpoint that names its step."""
            tensors = {f"target.{k}": v for k, v in ckpt.model_tensors(target).items()}
            replay_tensors, replay_state = buffer.state_dict()
            tensors |= {f"replay.{k}": v for k, v in replay_tensors.items()}
            tensors["torch_rng"] = torch.get_rng_state()
            saved = {"step": state["step"], "replay": replay_state, "rng": rng.bit_generator.state}
            ckpt.save_tensors(run / REPLAY, tensors, saved)
            run.save_checkpoint(q, optimizer, state)
            log(f"checkpoint at step {state['step']}")

        def validate() -> float:
            seeds = [VAL_SEED + j for j in range(config.val_episodes)]
            returns = play(q, eval_env, seeds, config.eval_epsilon, config.eval_max_steps, device)
            mean = float(np.mean(returns))
            if config.select == "best_val" and (state["best"] is None or mean > state["best"]):
                state["best"], state["best_step"] = mean, state["step"]
                run.save_best(q, state["step"], state["step"])
            run.log_metrics({"step": state["step"], "val_return": mean})
            log(f"step {state['step']}  val return {mean:.2f} ({len(seeds)} episodes)")
            return mean

        def start_episode() -> np.ndarray:
            obs, _ = env.reset(seed=episode_seed(config.seed, state["episode"]))
            state["episode"] += 1
            buffer.start(newest_frame(obs, stack))
            return obs

        # --- 2. the environment steps -----------------------------------------------------
        terminal = progress and sys.stderr.isatty()
        bar = tqdm(
            total=config.env_steps,
            initial=state["step"],
            desc=experiment.id,
            dynamic_ncols=True,
            leave=False,
            disable=not terminal,
        )
        started, last_log = time.perf_counter(), time.perf_counter()
        seconds_before, steps_at_log = state["train_seconds"], state["step"]
        last_checkpoint = state["step"]
        losses, q_means = [], []
        obs = start_episode()
        game_return, game_length = 0.0, 0
        stopped = False
        while state["step"] < config.env_steps:
            step = state["step"]
            epsilon = epsilon_at(step, config)
            if rng.random() < epsilon:
                action = int(rng.integers(n_actions))
            else:
                action, _ = greedy(q, obs, device)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            state["step"] = step = step + 1
            game_return += reward
            game_length += 1
            stored = float(np.sign(reward)) if config.clip_rewards else reward
            buffer.add(action, stored, terminated, newest_frame(next_obs, stack))

            if step > config.learning_starts and step % config.train_every == 0:
                batch = buffer.sample(config.batch_size, rng)
                batch = {
                    k: torch.as_tensor(v, device=device).float()
                    if k in ("reward", "terminated")
                    else torch.as_tensor(v, device=device)
                    for k, v in batch.items()
                    if k != "write"
                }
                loss, q_mean = td_loss(q, target, batch, config.gamma, config.double)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.clip_grad_norm > 0:
                    nn.utils.clip_grad_norm_(q.parameters(), config.clip_grad_norm)
                optimizer.step()
                state["updates"] += 1
                losses.append(float(loss.detach()))
                q_means.append(float(q_mean))
                if not math.isfinite(losses[-1]):
                    raise DeepnetsError(
                        f"the TD loss became {losses[-1]} at step {step}; try a lower lr"
                    )
            if step % config.target_every == 0:
                target.load_state_dict(q.state_dict())  # theta^- <- theta

            if step % config.log_every == 0:
                now = time.perf_counter()
                rate = (step - steps_at_log) / max(now - last_log, 1e-9)
                recent = state["recent"][-10:]
                shown = f"{np.mean(recent):.2f}" if recent else "n/a"
                row = {"step": step, "epsilon": epsilon, "steps_per_second": rate}
                if losses:
                    row |= {"loss": float(np.mean(losses)), "q_mean": float(np.mean(q_means))}
                run.log_metrics(row)
                bar.set_postfix(ret=shown, eps=f"{epsilon:.2f}")
                if progress and not terminal:
                    log(
                        f"step {step}/{config.env_steps}  return(last 10) {shown}  "
                        f"eps {epsilon:.3f}  loss {row.get('loss', math.nan):.4f}  "
                        f"{rate:.0f} steps/s"
                    )
                losses, q_means, last_log, steps_at_log = [], [], now, step
            bar.update(1)

            if config.eval_every and step % config.eval_every == 0:  # 3. validation
                val_return = validate()
                stopped = config.stop_early and val_return >= config.stop_at
            if terminated or truncated:
                if getattr(env, "game_over", True):  # Atari: a lost life is not a game's end
                    state["games"] += 1
                    state["recent"] = (state["recent"] + [game_return])[-100:]
                    run.log_metrics(
                        {"step": step, "game": state["games"], "return": game_return}
                        | {"length": game_length}
                    )
                    game_return, game_length = 0.0, 0
                    if step - last_checkpoint >= config.checkpoint_every:
                        state["train_seconds"] = seconds_before + time.perf_counter() - started
                        checkpoint()
                        last_checkpoint = step
                obs = start_episode()
            else:
                obs = next_obs
            if stopped:
                log(f"validation return reached stop_at={config.stop_at}; stopping")
                break
        bar.close()
        state["train_seconds"] = seconds_before + time.perf_counter() - started
        checkpoint()

        # --- 5. the test ------------------------------------------------------------------
        if config.select == "best_val" and state["best_step"] is not None:
            q.load_state_dict(run.selected_weights("best_val"))
        tested = time.perf_counter()
        seeds = [TEST_SEED + j for j in range(config.eval_episodes)]
        returns = play(q, eval_env, seeds, config.eval_epsilon, config.eval_max_steps, device)
        scores = {
            "return": float(np.mean(returns)),
            "return_std": float(np.std(returns)),
            "env_steps": float(state["step"]),
            "frames": float(state["step"] * (4 if config.env == "atari" else 1)),
            "steps_per_second": state["step"] / max(state["train_seconds"], 1e-9),
            "replay_gb_per_million": buffer.nbytes / buffer.capacity * 1e6 / 1e9,
        }
        summary_state = {
            "epoch": state["games"],
            "step": state["step"],
            "best_epoch": state["best_step"],
            "train_seconds": state["train_seconds"],
        }
        summary = summary_record(experiment, preset, config, scores, summary_state, device, "test")
        summary |= {"stopped_at_target": stopped, "test_seconds": time.perf_counter() - tested}
        summary["selected"] = "best_val" if state["best_step"] is not None else "last"
        run.write_summary(summary)
        env.close()
        eval_env.close()
        log(
            f"test return {scores['return']:.2f} +- {scores['return_std']:.2f} over "
            f"{len(returns)} episodes after {state['step']} steps, "
            f"{state['train_seconds']:.0f}s  vs {experiment.published_text(preset)}"
        )
        return summary

    def evaluate_run(self, run: RunDir, device: str = "auto", split: str = "test") -> dict:
        """Play the run's selected weights on the test (or validation) episode seeds."""
        if split not in ("test", "val"):
            raise DeepnetsError(f"unknown split {split!r}; splits: test, val")
        experiment, config, _ = run.read_config()
        dev = resolve_device(device)
        q = experiment.build_model(config).to(dev)
        q.load_state_dict(run.selected_weights(config.select))
        env = self.make_env(experiment, config, training=False)
        base, n = (
            (TEST_SEED, config.eval_episodes)
            if split == "test"
            else (VAL_SEED, config.val_episodes)
        )
        returns = play(
            q, env, [base + j for j in range(n)], config.eval_epsilon, config.eval_max_steps, dev
        )
        env.close()
        return {"return": float(np.mean(returns)), "return_std": float(np.std(returns))}

"""The web page's glimpses panel (the recurrent attention model on a drawn digit) and dqn panel
(a DQN agent playing one greedy episode), through the server's API on tiny trained runs."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from test_serve import blank_image, drawn_seven, huge_image, need  # noqa: E402

from deepnets.serve.app import create_app  # noqa: E402

RAM = "ram-mnist/20261127-000000-tiny-s0"
CARTPOLE = "dqn-cartpole/20261127-000000-tiny-s0"
MINATAR = "dqn-minatar/20261127-000000-tiny-s0"


@pytest.fixture(scope="module")
def client(served_runs, tmp_path_factory):
    app = create_app(served_runs, cache_size=2, figures=tmp_path_factory.mktemp("figures"))
    with TestClient(app) as c:
        yield c


def look(client, image: bytes, **fields):
    return client.post(
        f"/api/panel/glimpses/look?run={RAM}", files={"file": ("d.png", image)}, data=fields
    )


def test_a_drawn_digit_gets_its_classes_and_glimpse_path(client, served_runs):
    need(served_runs, RAM)
    panels = {r["id"]: r["panels"] for r in client.get("/api/runs").json()["runs"]}
    assert panels[RAM] == ["glimpses"]
    described = client.post(f"/api/panel/glimpses/describe?run={RAM}", json={}).json()
    assert described == {"size": 28, "glimpses": 3, "glimpse_size": 8, "scales": 1}
    response = look(client, drawn_seven())
    assert response.status_code == 200, response.text
    out = response.json()
    assert len(out["classes"]) == 10 and out["top"] == out["classes"][0][0]
    assert sum(p for _, p in out["classes"]) == pytest.approx(1, abs=1e-3)
    assert len(out["input"]) == 28 and len(out["input"][0]) == 28
    assert max(map(max, out["input"])) == pytest.approx(1, abs=0.01)  # 0-1 scale, as trained
    glimpses = out["glimpses"]
    assert len(glimpses) == 3 and (glimpses[0]["row"], glimpses[0]["col"]) == (14, 14)
    for g in glimpses:  # the first at the centre, every one inside the image
        assert 0 <= g["row"] <= 28 and 0 <= g["col"] <= 28 and g["sides"] == [8]
    assert look(client, drawn_seven()).json() == out  # the policy's mean: deterministic


def test_a_digit_on_a_larger_canvas_is_placed_where_it_was_drawn(served_runs):
    need(served_runs, RAM)
    import torch

    from deepnets import DeepnetsError
    from deepnets.serve.inputs import Inputs
    from deepnets.serve.panels.glimpses import drawn_input

    inputs = Inputs({"row": "0.9", "col": "0.1"}, drawn_seven())
    x = drawn_input(inputs, 60)
    assert x.shape == (1, 1, 60, 60)
    rows, cols = torch.nonzero(x[0, 0] > 0.5, as_tuple=True)
    assert rows.min() >= 32 and cols.max() < 28  # the bottom-left 28x28 field
    with pytest.raises(DeepnetsError, match="row must be in"):
        drawn_input(Inputs({"row": 2}, drawn_seven()), 60)


def test_bad_drawings_are_refused_in_one_line(client, served_runs):
    need(served_runs, RAM)
    for body, status, message in (
        (blank_image(), 400, "blank"),
        (b"not an image", 400, "not an image"),
        (huge_image(), 413, "at most 4096"),
    ):
        refused = look(client, body)
        assert refused.status_code == status and message in refused.json()["error"], refused.text
        assert "\n" not in refused.json()["error"]
    refused = client.post(f"/api/panel/glimpses/look?run={RAM}", json={"file": "x"})
    assert refused.status_code == 400 and "multipart" in refused.json()["error"]
    refused = client.post(f"/api/panel/glimpses/look?run={CARTPOLE}", files={"file": ("d", b"")})
    if (served_runs / CARTPOLE).is_dir():
        assert refused.status_code == 400 and "does not serve" in refused.json()["error"]


def play(client, run, **body):
    return client.post(f"/api/panel/dqn/play?run={run}", json=body)


def check_episode(out: dict, actions: int) -> None:
    steps = out["steps"]
    assert 1 <= steps == len(out["q"]) == len(out["actions"]) == len(out["rewards"])
    assert all(len(row) == actions for row in out["q"]) and len(out["action_names"]) == actions
    for row, action in zip(out["q"], out["actions"]):  # greedy: the argmax, to the rounding
        assert row[action] == max(row)
    assert out["return"] == pytest.approx(sum(out["rewards"]))


def test_a_cartpole_agent_plays_one_greedy_episode(client, served_runs):
    need(served_runs, CARTPOLE)
    out = play(client, CARTPOLE, seed=7, max_steps=300).json()
    check_episode(out, 2)
    assert out["env"] == "cartpole" and len(out["observations"]) == out["steps"] + 1
    assert all(len(obs) == 4 for obs in out["observations"])
    assert all(r == 1.0 for r in out["rewards"])  # CartPole: 1 per step it stays up
    if out["steps"] < 300:  # it fell: the last observation is past a limit
        x, _, angle, _ = out["observations"][-1]
        assert abs(x) > 2.4 or abs(angle) > 0.2094
    assert play(client, CARTPOLE, seed=7, max_steps=300).json() == out  # the seed fixes it
    short = play(client, CARTPOLE, seed=7, max_steps=3).json()
    assert short["steps"] == min(3, out["steps"]) and short["q"] == out["q"][: short["steps"]]


def test_a_minatar_agent_plays_with_its_frames(client, served_runs):
    need(served_runs, MINATAR)
    out = play(client, MINATAR, seed=0, max_steps=40).json()
    check_episode(out, 6)
    assert out["env"] == "minatar" and out["game"] == "breakout"
    assert out["channels"] == ["paddle", "ball", "trail", "brick"]
    frames = out["frames"]
    assert len(frames) == out["steps"] + 1 and all(len(f) == 10 and len(f[0]) == 10 for f in frames)
    cells = {v for f in frames for row in f for v in row}
    assert 0 in cells and cells <= set(range(5)) and 4 in cells  # empty, ..., brick


@pytest.mark.parametrize(
    "body, message",
    [
        ({"seed": -1}, "seed must be in"),
        ({"seed": 10**6 + 1}, "seed must be in"),
        ({"seed": 1.5}, "whole number"),
        ({"seed": "x"}, "seed must be a number"),
        ({"max_steps": 0}, "max_steps must be in"),
        ({"max_steps": 1001}, "max_steps must be in"),
    ],
)
def test_bad_episode_requests_are_refused_in_one_line(client, served_runs, body, message):
    need(served_runs, CARTPOLE)
    refused = play(client, CARTPOLE, **body)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in error
    refused = client.post(f"/api/panel/dqn/play?run={RAM}", json={})
    if (served_runs / RAM).is_dir():
        assert refused.status_code == 400 and "does not serve" in refused.json()["error"]

"""The web page's server (`deepnets serve`): every endpoint on small trained runs, every bad
request a 4xx with a one-line message, the model cache's bound, concurrent requests, the static
export. The browser drives the page in test_serve_browser.py."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from conftest import run_cli, shared_data

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from deepnets.experiments import EXPERIMENTS  # noqa: E402
from deepnets.serve.app import create_app  # noqa: E402

LENET = "lenet5-mnist/20261127-000000-fast-s0"
LSTM = "lstm-ptb/20261127-000000-tiny-s0"
TDNN = "tdnn-fsdd/20261127-000000-tiny-s0"
NTM = "ntm-copy/20261127-000000-tiny-s0"
MEMN2N = "memn2n-babi/20261127-000000-tiny-s0"
ATTENTION = "attention-multi30k/20261127-000000-tiny-s0"
CAPTION = "caption-digits/20261127-000000-tiny-s0"
DIGITS = ("convnet-digits/20261127-000000-tiny-s0", "convnet-digits/20261127-000000-tiny-s1")


def drawn_seven(size: int = 280) -> bytes:
    """A "7" as a user draws it: a white stroke on black, PNG."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (size, size))
    s = size / 280
    ImageDraw.Draw(image).line(
        [(70 * s, 60 * s), (215 * s, 60 * s), (120 * s, 240 * s)], fill=255, width=int(20 * s)
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def client(served_runs, tmp_path_factory):
    app = create_app(served_runs, cache_size=2, figures=tmp_path_factory.mktemp("figures"))
    with TestClient(app) as c:
        yield c


def need(served_runs: Path, run_id: str) -> None:
    if not (served_runs / run_id / "summary.json").is_file():
        pytest.skip(f"{run_id} needs data that DEEPNETS_DATA does not hold")


def post_file(client, panel, action, run, data: bytes, name="upload.png"):
    return client.post(f"/api/panel/{panel}/{action}?run={run}", files={"file": (name, data)})


def test_runs_are_listed_by_id_with_their_panels(client, served_runs):
    runs = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(DIGITS) <= set(runs)
    assert runs[DIGITS[0]]["panels"] == ["digits"]
    if LSTM in runs:
        assert runs[LSTM]["panels"] == ["language", "words"]
    if TDNN in runs:
        assert runs[TDNN]["panels"] == ["speech"]
    assert all(r["finished"] for r in runs.values())


def test_systems_table_holds_every_experiment(client):
    systems = client.get("/api/systems").json()["systems"]
    assert {s["id"] for s in systems} == set(EXPERIMENTS)
    assert all(s["command"].startswith(f"deepnets bench {s['id']} --preset ") for s in systems)


def test_claims_table_is_the_claims_verdicts(client):
    from deepnets.claims import claims_records

    claims = client.get("/api/claims").json()["claims"]
    assert claims == claims_records() and [c["number"] for c in claims] == list(range(1, 10))


def test_curves_are_the_runs_metrics(client):
    records = client.get(f"/api/curves?run={DIGITS[0]}").json()["records"]
    assert sum("train_loss" in r for r in records) >= 2
    assert records[-1]["epoch"] == 2


def test_a_drawn_seven_is_read_as_seven_with_every_layers_maps(client, served_runs):
    need(served_runs, LENET)
    out = post_file(client, "digits", "classify", LENET, drawn_seven()).json()
    assert out["top"] == "7"
    assert sum(p for _, p in out["classes"]) == pytest.approx(1, abs=1e-3)
    channels = {layer["name"]: layer["channels"] for layer in out["layers"]}
    assert channels["C1 conv"] == 6 and channels["C3 conv"] == 16
    c1 = next(layer for layer in out["layers"] if layer["name"] == "C1 conv")
    assert len(c1["maps"]) == 6 and len(c1["maps"][0]) == 28


def test_the_8x8_digits_net_reads_a_drawing_at_its_own_size(client):
    out = post_file(client, "digits", "classify", DIGITS[0], drawn_seven()).json()
    assert len(out["input"]) == 8 and len(out["classes"]) == 10
    assert sum(p for _, p in out["classes"]) == pytest.approx(1, abs=1e-3)


def test_language_model_streams_its_continuation_and_next_word_distribution(client, served_runs):
    need(served_runs, LSTM)
    body = {"prompt": "the company said", "length": 7, "temperature": 0.8, "seed": 3}
    lines = client.post(f"/api/panel/language/generate?run={LSTM}", json=body).text.splitlines()
    items = [json.loads(line) for line in lines]
    assert len(items) == 8 and all("piece" in i for i in items[:7])
    assert len(items[-1]["next"]) == 10
    again = client.post(f"/api/panel/language/generate?run={LSTM}", json=body).text
    assert again.splitlines() == lines  # the same seed draws the same words


def test_word_neighbours(client, served_runs):
    need(served_runs, LSTM)
    out = client.post(f"/api/panel/words/neighbours?run={LSTM}", json={"word": "Monday", "k": 4})
    assert out.status_code == 200
    near = out.json()["neighbours"]
    assert len(near) == 4 and all(-1 <= c <= 1 for _, c in near)


def test_a_spoken_digit_is_recognised(client, served_runs):
    need(served_runs, TDNN)
    wav = (shared_data("fsdd", ["SHA256SUMS"]) / "fsdd/recordings/7_jackson_32.wav").read_bytes()
    out = post_file(client, "speech", "recognise", TDNN, wav, "seven.wav").json()
    assert out["digits"] in "0123456789" and len(out["digits"]) == 1
    assert sum(p for _, p in out["classes"]) == pytest.approx(1, abs=1e-4)


def test_a_copy_example_shows_the_ntms_memory_use(client):
    out = client.post(f"/api/panel/algorithmic/run?run={NTM}", json={"length": 30, "seed": 1})
    assert out.status_code == 200, out.text
    out = out.json()
    assert len(out["input"]) == 61 and len(out["target"]) == len(out["output"]) == 30
    assert 0 <= out["bit_errors"] <= 30 * 8
    assert len(out["write"]) == 61
    assert all(sum(row) == pytest.approx(1, abs=1e-2) for row in out["write"])  # a weighting


def test_a_memory_network_answers_with_its_attention(client, served_runs):
    need(served_runs, MEMN2N)
    story = "Mary moved to the bathroom.\nJohn went to the hallway."
    body = {"story": story, "question": "Where is Mary?"}
    out = client.post(f"/api/panel/memory/answer?run={MEMN2N}", json=body).json()
    assert out["sentences"] == ["mary moved to the bathroom", "john went to the hallway"]
    # each hop's softmax runs over the sentences and the memory's unused slots (empty_attention)
    for hop, unused in zip(out["attention"], out["unused"], strict=True):
        assert 0 < sum(hop) <= 1 + 1e-5 and 0 <= unused < 1
        assert sum(hop) + unused == pytest.approx(1, abs=1e-5)
    assert isinstance(out["answer"], str) and 0 < out["probability"] <= 1


def test_a_translation_comes_with_its_attention_matrix(client, served_runs):
    need(served_runs, ATTENTION)
    body = {"sentence": "Ein Mann fährt Fahrrad.", "beam": 3}
    out = client.post(f"/api/panel/translation/translate?run={ATTENTION}", json=body)
    assert out.status_code == 200, out.text
    out = out.json()
    assert out["pair"] == "de-en" and isinstance(out["translation"], str)
    assert len(out["attention"]) == len(out["target_pieces"])
    assert all(len(row) == len(out["source_pieces"]) for row in out["attention"])
    assert all(sum(row) == pytest.approx(1, abs=1e-4) for row in out["attention"])
    for bad, message in (
        ({"sentence": "   "}, "empty"),
        ({"sentence": "ein Mann", "beam": 0}, "beam must be in"),
        ({"sentence": "x" * 3000}, "at most 2000"),
    ):
        refused = client.post(f"/api/panel/translation/translate?run={ATTENTION}", json=bad)
        assert 400 <= refused.status_code < 500 and message in refused.json()["error"]


def test_an_uploaded_scene_is_captioned_with_a_map_per_word(client, served_runs):
    need(served_runs, CAPTION)
    url = f"/api/panel/caption/caption?run={CAPTION}"
    out = client.post(url, files={"file": ("seven.png", drawn_seven(64))}, data={"beam": "2"})
    assert out.status_code == 200, out.text
    out = out.json()
    assert isinstance(out["caption"], str) and len(out["attention"]) == len(out["words"])
    for grid in out["attention"]:  # each word's weights over the feature grid sum to 1
        assert sum(map(sum, grid)) == pytest.approx(1, abs=1e-4)
    assert len(out["image"]) == 1 and len(out["image"][0]) == 64  # grey, as the model saw it
    for body, status, message in (
        (b"not an image", 400, "not an image"),
        (huge_image(), 413, "at most 4096"),
    ):
        refused = client.post(url, files={"file": ("x.png", body)})
        assert refused.status_code == status and message in refused.json()["error"]
    refused = client.post(url, files={"file": ("s.png", drawn_seven(64))}, data={"beam": "0"})
    assert refused.status_code == 400 and "beam must be in" in refused.json()["error"]


def not_audio() -> bytes:
    return b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40


def blank_image() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (280, 280)).save(out, format="PNG")
    return out.getvalue()


def huge_image() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (10000, 10000)).save(out, format="PNG")
    return out.getvalue()


BAD_REQUESTS = {  # name: (method, url, keyword arguments, status)
    "unknown run id": ("get", "/api/curves?run=lenet5-mnist/nope", {}, 404),
    "a path as run id": ("get", "/api/curves?run=../../etc/passwd", {}, 400),
    "an absolute path": ("get", "/api/curves?run=/etc/passwd", {}, 400),
    "no run named": ("get", "/api/curves", {}, 400),
    "unknown panel": ("post", f"/api/panel/nope/go?run={DIGITS[0]}", {"json": {}}, 404),
    "unknown action": ("post", f"/api/panel/digits/nope?run={DIGITS[0]}", {"json": {}}, 404),
    "a run the panel does not serve": (
        "post",
        f"/api/panel/language/generate?run={DIGITS[0]}",
        {"json": {"prompt": "a"}},
        400,
    ),
    "a prompt of 1 MB": (
        "post",
        f"/api/panel/language/generate?run={LSTM}",
        {"json": {"prompt": "a " * 500_000}},
        413,
    ),
    "a length of 10^9": (
        "post",
        f"/api/panel/language/generate?run={LSTM}",
        {"json": {"prompt": "the", "length": 10**9}},
        400,
    ),
    "a temperature that is a word": (
        "post",
        f"/api/panel/language/generate?run={LSTM}",
        {"json": {"prompt": "the", "temperature": "hot"}},
        400,
    ),
    "malformed JSON": (
        "post",
        f"/api/panel/language/generate?run={LSTM}",
        {"content": b'{"prompt": "the', "headers": {"content-type": "application/json"}},
        400,
    ),
    "JSON that is not an object": (
        "post",
        f"/api/panel/words/neighbours?run={LSTM}",
        {"json": ["monday"]},
        400,
    ),
    "a word outside the vocabulary": (
        "post",
        f"/api/panel/words/neighbours?run={LSTM}",
        {"json": {"word": "qwertyuiop"}},
        400,
    ),
    "a non-image upload": (
        "post",
        f"/api/panel/digits/classify?run={DIGITS[0]}",
        {"files": {"file": ("notes.txt", b"not an image at all")}},
        400,
    ),
    "an image of 10,000 x 10,000 pixels": (
        "post",
        f"/api/panel/digits/classify?run={DIGITS[0]}",
        {"files": {"file": ("big.png", huge_image())}},
        413,
    ),
    "a blank drawing": (
        "post",
        f"/api/panel/digits/classify?run={DIGITS[0]}",
        {"files": {"file": ("blank.png", blank_image())}},
        400,
    ),
    "JSON where a file belongs": (
        "post",
        f"/api/panel/digits/classify?run={DIGITS[0]}",
        {"json": {"file": "x"}},
        400,
    ),
    "a WAV that is not audio": (
        "post",
        f"/api/panel/speech/recognise?run={TDNN}",
        {"files": {"file": ("x.wav", not_audio())}},
        400,
    ),
    "a body over the limit": (
        "post",
        f"/api/panel/digits/classify?run={DIGITS[0]}",
        {"content": b"x" * (9 * 1024 * 1024), "headers": {"content-type": "application/json"}},
        413,
    ),
    "a copy longer than allowed": (
        "post",
        f"/api/panel/algorithmic/run?run={NTM}",
        {"json": {"length": 10_000}},
        400,
    ),
    "a question with no question mark": (
        "post",
        f"/api/panel/memory/answer?run={MEMN2N}",
        {"json": {"story": "Mary moved to the bathroom.", "question": "Where is Mary"}},
        400,
    ),
    "unknown figure": ("get", f"/api/figure?name=fig99&run={DIGITS[0]}", {}, 404),
    "a figure of the wrong run": ("get", f"/api/figure?name=fig4&run={DIGITS[0]}", {}, 400),
}


@pytest.mark.parametrize("name", list(BAD_REQUESTS))
def test_bad_request_is_a_4xx_with_a_one_line_message(client, served_runs, name):
    method, url, kwargs, status = BAD_REQUESTS[name]
    for needed in (LSTM, TDNN, MEMN2N):
        if needed in url:
            need(served_runs, needed)
    response = getattr(client, method)(url, **kwargs)
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert message and "\n" not in message and "Traceback" not in message
    assert client.get("/api/runs").status_code == 200  # and the server keeps serving


def test_the_model_cache_keeps_at_most_its_size(client, served_runs):
    models = client.app.app.state.models
    for run in (*DIGITS, LENET, *DIGITS):
        if (served_runs / run).is_dir():
            post_file(client, "digits", "classify", run, drawn_seven())
            assert len(models) <= 2


def test_figures_are_drawn_from_the_runs_found_with_their_caption(client, served_runs):
    choices = client.get("/api/figures").json()["figures"]
    assert {"name": "fig2", "run": DIGITS[1], "experiment": "convnet-digits"} in choices
    response = client.get(f"/api/figure?name=fig2&run={DIGITS[1]}")
    assert response.status_code == 200 and response.content[:4] == b"\x89PNG"
    assert DIGITS[1] in response.headers["x-caption"] and "commit" in response.headers["x-caption"]


def test_concurrent_requests_on_a_live_server(live_server):
    import httpx

    errors, done = [], []

    def client_loop(k: int):
        with httpx.Client(base_url=live_server, timeout=60) as http:
            for _ in range(4):
                r = http.post(
                    f"/api/panel/digits/classify?run={DIGITS[k % 2]}",
                    files={"file": ("d.png", drawn_seven())},
                )
                (done if r.status_code == 200 else errors).append(r.status_code)

    threads = []
    for k in range(16):
        threads.append(threading.Thread(target=client_loop, args=(k,)))
        threads[-1].start()
    for t in threads:
        t.join()
    assert errors == [] and len(done) == 64


def test_static_export_opens_without_a_server(served_runs, tmp_path):
    out = tmp_path / "site"
    done = run_cli("serve", "--runs", str(served_runs), "--export", str(out), "--no-figures")
    assert done.returncode == 0, done.stderr
    data = (out / "data.js").read_text()
    payload = json.loads(data.removeprefix("window.DEEPNETS_EXPORT = ").rstrip(";\n"))
    assert {s["id"] for s in payload["systems"]} == set(EXPERIMENTS)
    assert [c["number"] for c in payload["claims"]] == list(range(1, 10))
    assert DIGITS[0] in payload["curves"] and payload["curves"][DIGITS[0]]
    assert (out / "index.html").is_file() and (out / "static" / "app.js").is_file()


@pytest.mark.parametrize("args", [["--port", "0"], ["--port", "70000"]])
def test_serve_refuses_a_bad_port(args):
    done = run_cli("serve", *args)
    assert done.returncode == 2 and "--port" in done.stderr and "Traceback" not in done.stderr

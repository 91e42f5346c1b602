"""The page in a real browser: Debian's Chromium, headless, driven by Playwright.

`.ci/run` installs Chromium and sets DEEPNETS_REQUIRE_BROWSER=1, so there a missing browser is a
failure, not a skip. Screenshots of each view go to $DEEPNETS_SCREENSHOTS when it is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

pytest.importorskip("playwright")
from playwright.sync_api import sync_playwright  # noqa: E402

from deepnets.experiments import EXPERIMENTS  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("DEEPNETS_REQUIRE_BROWSER") != "1":
    pytest.skip("no chromium (apt-get install chromium)", allow_module_level=True)

LENET = "lenet5-mnist/20261127-000000-fast-s0"
LSTM = "lstm-ptb/20261127-000000-tiny-s0"
CAPTION = "caption-digits/20261127-000000-tiny-s0"


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM is not None, "DEEPNETS_REQUIRE_BROWSER=1 but no chromium on PATH"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    page.close()
    assert errors == [], errors  # no uncaught JavaScript error on any view


def screenshot(page, name: str) -> None:
    folder = os.environ.get("DEEPNETS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def open_run(page, live_server: str, run_id: str) -> None:
    page.goto(f"{live_server}/?view=try")
    page.wait_for_selector(f"#try-run option[value='{run_id}']", state="attached")
    page.select_option("#try-run", run_id)
    page.wait_for_selector(".panel h3")


def test_drawing_a_seven_on_the_lenet5_canvas(page, live_server, served_runs):
    if not (served_runs / LENET).is_dir():
        pytest.skip("needs MNIST")
    open_run(page, live_server, LENET)
    canvas = page.locator("#panel-digits canvas.draw")
    box = canvas.bounding_box()
    stroke = [(70, 60), (215, 60), (120, 240)]  # the top bar, then the stem, as a hand draws it
    page.mouse.move(box["x"] + stroke[0][0], box["y"] + stroke[0][1])
    page.mouse.down()
    for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
        for k in range(1, 21):
            t = k / 20
            page.mouse.move(box["x"] + x0 + t * (x1 - x0), box["y"] + y0 + t * (y1 - y0))
    page.mouse.up()
    page.wait_for_function(
        "() => { const p = document.querySelector('#panel-digits');"
        " return p.dataset.predictions && !p.querySelector('canvas.draw').matches(':active'); }"
    )
    page.wait_for_timeout(500)  # the prediction after the last point of the stroke
    assert page.inner_text("#panel-digits .digits-top") == "7"
    c1 = page.locator("#panel-digits .layer[data-name='C1 conv'] canvas")
    c3 = page.locator("#panel-digits .layer[data-name='C3 conv'] canvas")
    assert (c1.count(), c3.count()) == (6, 16)
    screenshot(page, "try-digits")


def test_a_prompt_gets_a_continuation(page, live_server, served_runs):
    if not (served_runs / LSTM).is_dir():
        pytest.skip("needs Penn Treebank")
    open_run(page, live_server, LSTM)
    page.fill("#panel-language .prompt", "the market")
    page.fill("#panel-language .length", "12")
    page.click("#panel-language .generate")
    page.wait_for_function(
        "() => document.querySelector('#panel-language .out').dataset.done === 'yes'"
    )
    text = page.inner_text("#panel-language .out")
    assert text.startswith("the market") and len(text.split()) >= 2 + 6
    assert page.locator("#panel-language .next div").count() == 10
    screenshot(page, "try-language")


def test_an_uploaded_scene_gets_a_caption_and_a_map_per_word(
    page, live_server, served_runs, tmp_path
):
    if not (served_runs / CAPTION).is_dir():
        pytest.skip("needs MNIST")
    from test_serve import drawn_seven

    picture = tmp_path / "seven.png"
    picture.write_bytes(drawn_seven(64))
    open_run(page, live_server, CAPTION)
    page.set_input_files("#panel-caption .picture", str(picture))
    page.wait_for_selector("#panel-caption .caption-maps figure canvas")
    words = page.locator("#panel-caption .caption-maps figcaption").all_inner_texts()
    assert words and " ".join(w for w in words if w != "</s>") == page.inner_text(
        "#panel-caption .caption-out"
    ).replace("(empty caption)", "")
    screenshot(page, "try-caption")


def listed_experiments() -> set[str]:
    done = run_cli("list")
    assert done.returncode == 0, done.stderr
    return {line.split()[0] for line in done.stdout.splitlines()[1:] if line.strip()}


def test_results_view_shows_every_listed_experiment(page, live_server):
    page.goto(live_server)
    page.wait_for_selector("#systems tbody tr")
    shown = set(
        page.eval_on_selector_all(
            "#systems tbody tr", "rows => rows.map(r => r.dataset.experiment)"
        )
    )
    assert shown == listed_experiments() == set(EXPERIMENTS)
    assert page.locator("#claims tbody tr").count() == 9  # each claim with its verdict
    page.wait_for_selector("#curves canvas")
    page.wait_for_selector("#figures figure img[src^='blob:']", timeout=60_000)
    screenshot(page, "results")


def test_the_export_opens_from_files(page, served_runs, tmp_path):
    done = run_cli("serve", "--runs", str(served_runs), "--export", str(tmp_path / "site"))
    assert done.returncode == 0, done.stderr
    page.goto((tmp_path / "site" / "index.html").as_uri())
    page.wait_for_selector("#systems tbody tr")
    assert page.locator("#systems tbody tr").count() >= len(EXPERIMENTS)
    assert page.locator("#claims tbody tr").count() == 9
    page.wait_for_selector("#figures figure img")
    assert page.locator("#tab-try").is_hidden()
    screenshot(page, "export")


COLOURED = """canvas => {  // pixels that are not grey: what a panel drew over its picture
  const d = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2]) n++;
  return n;
}"""


def test_glimpses_on_a_drawn_digit_and_dqn_agents_playing(page, live_server, served_runs):
    ram, cartpole, minatar = (
        "ram-mnist/20261127-000000-tiny-s0",
        "dqn-cartpole/20261127-000000-tiny-s0",
        "dqn-minatar/20261127-000000-tiny-s0",
    )
    shown = 0
    if (served_runs / ram).is_dir():
        open_run(page, live_server, ram)
        page.wait_for_function(
            "() => document.querySelector('#panel-glimpses .note')"
            ".textContent.includes('3 glimpses')"
        )
        box = page.locator("#panel-glimpses canvas.draw").bounding_box()
        page.mouse.move(box["x"] + 70, box["y"] + 60)
        page.mouse.down()
        for k in range(1, 21):  # a "7": the top bar, then the stem
            page.mouse.move(box["x"] + 70 + 7 * k, box["y"] + 60)
        for k in range(1, 21):
            page.mouse.move(box["x"] + 210 - 4.5 * k, box["y"] + 60 + 9 * k)
        page.mouse.up()
        page.wait_for_function("() => document.querySelector('#panel-glimpses').dataset.looks")
        assert page.locator("#panel-glimpses .bars div").count() == 10
        assert page.locator("#panel-glimpses canvas.glimpse-view").evaluate(COLOURED) > 100
        screenshot(page, "try-glimpses")
        shown += 1
    for run, name in ((cartpole, "cartpole"), (minatar, "minatar")):
        if not (served_runs / run).is_dir():
            continue
        open_run(page, live_server, run)
        page.fill("#panel-dqn .seed", "7")
        page.click("#panel-dqn .go")
        page.wait_for_function("() => document.querySelector('#panel-dqn').dataset.episodes")
        assert "return" in page.inner_text("#panel-dqn .summary")
        assert page.locator("#panel-dqn canvas.chart").evaluate(COLOURED) > 100  # Q-value lines
        assert page.locator("#panel-dqn canvas.stage").evaluate(COLOURED) > 50  # pole, or bricks
        screenshot(page, f"try-dqn-{name}")
        shown += 1
    if not shown:
        pytest.skip("needs MNIST or gymnasium")

"""A bounded load test of `deepnets serve` on 127.0.0.1: prediction requests from concurrent
clients, their latency percentiles, and the server's memory while different runs are requested.

1. Trains five small runs into a temporary runs folder: lenet5-mnist (`fast`, one epoch; needs
   MNIST under DEEPNETS_DATA, else a sixth convnet-digits seed stands in) and convnet-digits
   (`tiny`, seeds 0-3: no download).
2. Starts `deepnets serve` in its own process (model cache of 4 runs, one torch thread).
3. Load: N requests (default 500), each a drawn "7" sent to the digits panel of the LeNet-5 run,
   from C concurrent clients (default 16, httpx + asyncio); every reply must be a 200.
   Reported: the 50th and 99th percentile latency, requests per second, and the ratio of the
   median latency to the median time of the same prediction called in-process (no HTTP), which
   this script measures beside it.
4. Memory: the server's resident set size (VmRSS) after start, then while the five runs are
   requested in turn for three rounds (the cache holds four, so every round reloads some);
   the bound stated is the peak, and rounds 2-3 must not grow past round 1's peak by more than
   50 MB (nothing accumulates).

    python benchmarks/serve_load.py [--requests 500] [--clients 16]
Writes benchmarks/results/serve_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from deepnets.config import apply_overrides
from deepnets.experiments import get_experiment
from deepnets.run import RunDir


def drawn_seven() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("L", (280, 280))
    ImageDraw.Draw(image).line([(70, 60), (215, 60), (120, 240)], fill=255, width=20)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def train_runs(root: Path) -> list[str]:
    have_mnist = (Path(os.environ.get("DEEPNETS_DATA", "/nonexistent")) / "mnist").is_dir()
    plan = [("lenet5-mnist", "fast", ["epochs=1"])] if have_mnist else []
    plan += [("convnet-digits", "tiny", [f"seed={s}"]) for s in range(4 + (not have_mnist))]
    ids = []
    for experiment_id, preset, overrides in plan:
        experiment = get_experiment(experiment_id)
        config = apply_overrides(experiment.preset(preset), overrides)
        run_id = f"{experiment_id}/{preset}-s{config.seed}"
        run = RunDir.create(root / run_id)
        experiment.task.train(experiment, config, run, preset=preset, progress=False)
        ids.append(run_id)
    return ids


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def in_process_ms(root: Path, run_id: str, image: bytes, repeats: int = 50) -> float:
    """The median time of the prediction itself: the panel's action, no HTTP."""
    import torch

    from deepnets.serve.inputs import Inputs
    from deepnets.serve.panels import digits

    torch.set_num_threads(1)  # as the server runs
    loaded = digits.PANEL.load(root / run_id)
    action = digits.PANEL.actions["classify"].run
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action(loaded, Inputs({}, image))
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


async def load(base: str, run_id: str, image: bytes, requests: int, clients: int):
    latencies, statuses = [], []
    queue = asyncio.Queue()
    for _ in range(requests):
        queue.put_nowait(None)

    async def client():
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            while not queue.empty():
                queue.get_nowait()
                start = time.perf_counter()
                r = await http.post(
                    f"/api/panel/digits/classify?run={run_id}", files={"file": ("d.png", image)}
                )
                latencies.append(1000 * (time.perf_counter() - start))
                statuses.append(r.status_code)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, statuses, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    image = drawn_seven()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        ids = train_runs(root)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "deepnets", "serve", "--runs", str(root), "--port", str(port)],
            stdout=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/api/runs").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            rss_start = rss_mb(server.pid)
            main_run = ids[0]
            httpx.post(
                f"{base}/api/panel/digits/classify?run={main_run}",
                files={"file": ("d.png", image)},
            ).raise_for_status()  # loaded before timing
            latencies, statuses, seconds = asyncio.run(
                load(base, main_run, image, args.requests, args.clients)
            )
            reference = in_process_ms(root, main_run, image)
            peaks = []
            for _ in range(3):
                peak = 0.0
                for run_id in ids:
                    r = httpx.post(
                        f"{base}/api/panel/digits/classify?run={run_id}",
                        files={"file": ("d.png", image)},
                        timeout=120,
                    )
                    statuses.append(r.status_code)
                    peak = max(peak, rss_mb(server.pid))
                peaks.append(peak)
        finally:
            server.terminate()
            server.wait(timeout=30)
    errors = sum(s != 200 for s in statuses)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    result = {
        "requests": args.requests,
        "clients": args.clients,
        "errors": errors,
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "requests_per_second": round(args.requests / seconds, 1),
        "in_process_median_ms": round(reference, 2),
        "p50_over_in_process": round(p50 / reference, 1),
        "runs_cycled": ids,
        "rss_mb_after_start": round(rss_start, 1),
        "rss_mb_peak_per_round": [round(p, 1) for p in peaks],
        "cores": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).with_name("results") / "serve_load.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    assert errors == 0, f"{errors} requests failed"
    assert max(peaks[1:]) <= peaks[0] + 50, "memory grew while cycling the same runs"


if __name__ == "__main__":
    main()

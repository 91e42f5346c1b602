// Watch a DQN agent play one greedy episode: the game (CartPole's cart and pole drawn from the
// observation, or MinAtar's 10x10 frame), step by step, beside the Q-value of every action.
"use strict";
window.DeepnetsPanels.dqn = (root, run, api) => {
  root.insertAdjacentHTML("beforeend", `
    <label>seed <input class="seed" type="number" value="0" min="0" max="1000000"></label>
    <label>max steps <input class="max-steps" type="number" value="500" min="1" max="1000"></label>
    <button class="go">Play</button> <span class="summary"></span>
    <div class="dqn-out hidden"><div class="row">
      <div><canvas class="stage" width="300" height="240"></canvas><br>
        <button class="pause">Pause</button>
        <input class="step" type="range" min="0" value="0" style="width: 200px">
        <div class="now" style="font-family: monospace; white-space: pre"></div>
        <div class="legend note"></div></div>
      <div><div>Q(s, a) along the episode (the agent takes the largest)</div>
        <canvas class="chart" width="460" height="240"></canvas>
        <div class="keys note"></div></div>
    </div></div>`);
  const q = s => root.querySelector(s);
  const stage = q(".stage"), sctx = stage.getContext("2d");
  const chart = q(".chart"), cctx = chart.getContext("2d");
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
  const CELLS = ["#000", "#f5d442", "#e8e8e8", "#4a90d9", "#d9534f", "#5cb85c", "#b05cd9",
                 "#f0ad4e", "#5bc0de", "#aaa", "#ff69b4"];  // 0: empty; k: channel k - 1
  let out = null, timer = null, t = 0;

  function drawCartPole(obs) {
    const [x, , theta] = obs, w = stage.width, h = stage.height, ground = h - 60;
    sctx.fillStyle = "#fff"; sctx.fillRect(0, 0, w, h);
    const sx = v => w / 2 + v * (w / 2 - 20) / 2.4;  // the track is [-2.4, 2.4]
    sctx.strokeStyle = "#888"; sctx.lineWidth = 1;
    sctx.beginPath(); sctx.moveTo(sx(-2.4), ground); sctx.lineTo(sx(2.4), ground); sctx.stroke();
    const cx = sx(x);
    sctx.fillStyle = "#333"; sctx.fillRect(cx - 25, ground - 15, 50, 30);
    const length = 120;
    sctx.strokeStyle = "#c8743a"; sctx.lineWidth = 8; sctx.lineCap = "round";
    sctx.beginPath(); sctx.moveTo(cx, ground - 10);
    sctx.lineTo(cx + length * Math.sin(theta), ground - 10 - length * Math.cos(theta));
    sctx.stroke();
  }

  function drawFrame(frame) {
    const n = frame.length, cell = Math.floor(stage.height / n);
    sctx.fillStyle = "#fff"; sctx.fillRect(0, 0, stage.width, stage.height);
    frame.forEach((row, r) => row.forEach((v, c) => {
      sctx.fillStyle = CELLS[v % CELLS.length];
      sctx.fillRect(c * cell, r * cell, cell - 1, cell - 1);
    }));
  }

  function drawChart() {
    const w = chart.width, h = chart.height, pad = 36, values = out.q.flat();
    const lo = Math.min(...values), hi = Math.max(...values), span = hi - lo || 1;
    const n = Math.max(out.steps - 1, 1);
    const px = s => pad + (w - pad - 8) * s / n, py = v => h - 20 - (h - 30) * (v - lo) / span;
    cctx.fillStyle = "#fff"; cctx.fillRect(0, 0, w, h);
    cctx.strokeStyle = "#999"; cctx.lineWidth = 1; cctx.strokeRect(pad, 10, w - pad - 8, h - 30);
    cctx.fillStyle = "#333"; cctx.font = "11px sans-serif";
    cctx.fillText(hi.toPrecision(3), 2, 16); cctx.fillText(lo.toPrecision(3), 2, h - 20);
    cctx.fillText("step 0", pad, h - 6); cctx.fillText(String(out.steps - 1), w - 30, h - 6);
    out.action_names.forEach((_, a) => {
      cctx.strokeStyle = COLOURS[a % COLOURS.length]; cctx.lineWidth = 1.5; cctx.beginPath();
      out.q.forEach((row, s) => (s ? cctx.lineTo(px(s), py(row[a])) : cctx.moveTo(px(s), py(row[a]))));
      cctx.stroke();
    });
    const s = Math.min(t, out.steps - 1);
    cctx.strokeStyle = "#000"; cctx.setLineDash([3, 3]);
    cctx.beginPath(); cctx.moveTo(px(s), 10); cctx.lineTo(px(s), h - 20); cctx.stroke();
    cctx.setLineDash([]);
  }

  function show(step) {
    t = step;
    q(".step").value = String(t);
    if (out.env === "minatar") drawFrame(out.frames[t]); else drawCartPole(out.observations[t]);
    drawChart();
    if (t < out.steps) {
      const values = out.q[t].map(v => v.toFixed(3)).join(" ");
      q(".now").textContent = `step ${t}: Q = [${values}]\n` +
        `action ${out.actions[t]} (${out.action_names[out.actions[t]]}), reward ${out.rewards[t]}`;
    } else {
      q(".now").textContent = `step ${t}: the episode is over`;
    }
  }

  function animate(on) {
    clearInterval(timer); timer = null;
    q(".pause").textContent = on ? "Pause" : "Play";
    if (on) timer = setInterval(() => {
      if (!root.isConnected || t >= out.steps) { animate(false); return; }
      show(t + 1);
    }, out.env === "minatar" ? 150 : 50);
  }

  q(".pause").onclick = () => animate(timer === null && out !== null);
  q(".step").oninput = () => { animate(false); show(Number(q(".step").value)); };
  q(".go").onclick = async () => {
    animate(false);
    q(".summary").textContent = "playing...";
    try {
      out = await api.post(api.action("dqn", "play", run),
        {seed: Number(q(".seed").value), max_steps: Number(q(".max-steps").value)});
    } catch (err) { q(".summary").textContent = err.message; return; }
    const game = out.env === "minatar" ? `MinAtar ${out.game}` : "CartPole";
    q(".summary").textContent = `${game}: return ${out.return} over ${out.steps} steps`;
    q(".step").max = String(out.steps);
    q(".keys").replaceChildren(...out.action_names.map((name, a) => Object.assign(
      document.createElement("span"), {textContent: `\u25a0 ${a} ${name}  `,
        style: `color: ${COLOURS[a % COLOURS.length]}`})));
    if (out.env === "minatar") {
      q(".legend").replaceChildren("cells: ", ...out.channels.flatMap((name, k) => [
        Object.assign(document.createElement("span"), {textContent: "\u25a0",
          style: `color: ${CELLS[(k + 1) % CELLS.length]}; text-shadow: 0 0 1px #000`}),
        ` ${name}  `]));
    } else {
      q(".legend").textContent = "the cart on its track [-2.4, 2.4], the pole at its angle";
    }
    q(".dqn-out").classList.remove("hidden");
    show(0);
    root.dataset.episodes = String(Number(root.dataset.episodes || 0) + 1);
    animate(true);
  };
};

// deepnets page: the results view (systems, curves, figures) and the "try a model" panels.
// Works served (deepnets serve) or exported (window.DEEPNETS_EXPORT from data.js, no server).
"use strict";
const EXPORTED = window.DEEPNETS_EXPORT || null;
window.DeepnetsPanels = window.DeepnetsPanels || {};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(err) {
  const box = document.getElementById("message");
  box.textContent = String(err.message || err);
  box.classList.remove("hidden");
}

async function checked(response) {
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

// What panels use to talk to the server.
const api = {
  async json(url) { return (await checked(await fetch(url))).json(); },
  async post(url, payload) {
    const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                body: JSON.stringify(payload)});
    return (await checked(r)).json();
  },
  async upload(url, blob, name = "upload", fields = {}) {
    const form = new FormData();
    form.append("file", blob, name);
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    return (await checked(await fetch(url, {method: "POST", body: form}))).json();
  },
  // POST JSON, then call onItem for each line of the newline-delimited JSON reply as it comes.
  async stream(url, payload, onItem) {
    const r = await checked(await fetch(url, {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload)}));
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const {done, value} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, cut); buffer = buffer.slice(cut + 1);
        if (line.trim()) onItem(JSON.parse(line));
      }
    }
  },
  action(panel, action, run) {
    return `api/panel/${panel}/${action}?run=${encodeURIComponent(run.id)}`;
  },
  // One row of canvases per layer: a (H, W) map each, grey levels scaled per layer.
  drawMaps(container, layers, size = 56) {
    container.replaceChildren();
    for (const layer of layers) {
      const maps = el("div", {class: "maps"});
      const all = layer.maps.flat(2);
      const lo = Math.min(...all), hi = Math.max(...all), span = hi - lo || 1;
      for (const m of layer.maps) {
        const h = m.length, w = m[0].length;
        const canvas = el("canvas", {width: w, height: h, title: layer.name});
        canvas.style.width = canvas.style.height = `${Math.max(size * w / 28, 24)}px`;
        const ctx = canvas.getContext("2d");
        const img = ctx.createImageData(w, h);
        m.flat().forEach((v, i) => {
          const g = Math.round(255 * (v - lo) / span);
          img.data.set([g, g, g, 255], 4 * i);
        });
        ctx.putImageData(img, 0, 0);
        maps.append(canvas);
      }
      container.append(el("div", {class: "layer", "data-name": layer.name},
        el("div", {text: `${layer.name}: ${layer.channels} maps`}), maps));
    }
  },
  bars(container, pairs, n = 10) {
    container.replaceChildren(...pairs.slice(0, n).map(([name, p]) => el("div", {},
      `${String(name).padEnd(12)} ${(100 * p).toFixed(1).padStart(5)}% `,
      Object.assign(el("span", {class: "bar"}), {style: `width:${Math.round(200 * p)}px`}))));
  },
};
window.deepnetsApi = api;

// --- results -----------------------------------------------------------------------------------

function fillSystems(systems) {
  const body = document.querySelector("#systems tbody");
  body.replaceChildren(...systems.map(s => el("tr", {"data-experiment": s.id},
    el("td", {text: s.id}), el("td", {text: s.title}), el("td", {text: s.preset}),
    el("td", {text: s.ours ?? "not yet run"}), el("td", {text: s.seeds ?? ""}),
    el("td", {text: s.published}), el("td", {text: s.seconds_per_seed ?? ""}),
    el("td", {text: s.device ?? ""}), el("td", {}, el("code", {text: s.command})))));
}

function fillClaims(claims) {
  const body = document.querySelector("#claims tbody");
  body.replaceChildren(...claims.map(c => el("tr", {"data-claim": c.number},
    el("td", {text: c.number}), el("td", {text: `${c.claim} (${c.reference})`}),
    el("td", {text: c.experiment}), el("td", {text: c.numbers || "-"}),
    el("td", {}, el("strong", {text: c.verdict}), ` ${c.reason}`))));
}

function drawChart(title, points) {
  const w = 360, h = 200, pad = 36;
  const canvas = el("canvas", {width: w, height: h});
  const ctx = canvas.getContext("2d");
  const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = x => pad + (w - pad - 8) * (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5);
  const sy = y => h - pad + (pad + 8 - h) * (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5);
  ctx.strokeStyle = "#999"; ctx.strokeRect(pad, 8, w - pad - 8, h - pad - 8);
  ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
  ctx.fillText(y1.toPrecision(4), 2, 16); ctx.fillText(y0.toPrecision(4), 2, h - pad);
  ctx.fillText(`step ${x0}`, pad, h - 20); ctx.fillText(`${x1}`, w - 50, h - 20);
  ctx.strokeStyle = "#1f5f9f"; ctx.lineWidth = 1.5; ctx.beginPath();
  points.forEach(([x, y], i) => (i ? ctx.lineTo(sx(x), sy(y)) : ctx.moveTo(sx(x), sy(y))));
  ctx.stroke();
  if (points.length === 1) ctx.fillRect(sx(xs[0]) - 2, sy(ys[0]) - 2, 4, 4);
  return el("div", {class: "chart"}, el("div", {text: title}), canvas);
}

function showCurves(records) {
  const box = document.getElementById("curves");
  const series = {};
  for (const r of records) {
    for (const [k, v] of Object.entries(r)) {
      if (["epoch", "step", "lr", "seconds"].includes(k) || typeof v !== "number") continue;
      (series[k] = series[k] || []).push([r.step ?? r.epoch ?? 0, v]);
    }
  }
  const names = Object.keys(series);
  box.replaceChildren(...(names.length ? names.map(k => drawChart(k, series[k]))
                                        : [el("p", {class: "note", text: "no metrics logged"})]));
}

async function loadCurves(runId) {
  if (!runId) return;
  const records = EXPORTED ? EXPORTED.curves[runId] || []
                           : (await api.json(`api/curves?run=${encodeURIComponent(runId)}`)).records;
  showCurves(records);
}

async function addFigure(choice) {
  const img = el("img", {alt: `${choice.name} from ${choice.run}`});
  const caption = el("figcaption", {text: `${choice.name} from ${choice.run}: drawing...`});
  document.getElementById("figures").append(el("figure", {"data-name": choice.name}, img, caption));
  if (EXPORTED) { img.src = choice.src; caption.textContent = choice.caption; return; }
  try {
    const r = await checked(await fetch(
      `api/figure?name=${encodeURIComponent(choice.name)}&run=${encodeURIComponent(choice.run)}`));
    caption.textContent = r.headers.get("X-Caption");
    img.src = URL.createObjectURL(await r.blob());
  } catch (err) { caption.textContent = `${choice.name} from ${choice.run}: ${err.message}`; }
}

async function loadResults() {
  const systems = EXPORTED ? EXPORTED.systems : (await api.json("api/systems")).systems;
  fillSystems(systems);
  fillClaims(EXPORTED ? EXPORTED.claims : (await api.json("api/claims")).claims);
  const runs = EXPORTED ? EXPORTED.runs : (await api.json("api/runs")).runs;
  const select = document.getElementById("curve-run");
  select.replaceChildren(...runs.map(r => el("option", {value: r.id, text: r.id})));
  select.onchange = () => loadCurves(select.value).catch(showError);
  if (runs.length) await loadCurves(runs[runs.length - 1].id).then(() => {
    select.value = runs[runs.length - 1].id;
  });
  const figures = EXPORTED ? EXPORTED.figures : (await api.json("api/figures")).figures;
  for (const choice of figures) addFigure(choice);
}

// --- try a model -------------------------------------------------------------------------------

const loadedScripts = {};
function panelScript(name) {
  loadedScripts[name] = loadedScripts[name] || new Promise((resolve, reject) => {
    const s = el("script", {src: `static/panels/${name}.js`});
    s.onload = resolve; s.onerror = () => reject(new Error(`cannot load panel ${name}`));
    document.body.append(s);
  });
  return loadedScripts[name];
}

async function showPanels(run, titles) {
  const box = document.getElementById("panels");
  box.replaceChildren();
  for (const name of run.panels) {
    await panelScript(name);
    const panel = el("div", {class: "panel", id: `panel-${name}`}, el("h3", {text: titles[name]}));
    box.append(panel);
    window.DeepnetsPanels[name](panel, run, api);
  }
}

async function loadTry() {
  const {runs, panels} = await api.json("api/runs");
  const usable = runs.filter(r => r.panels.length);
  document.getElementById("try-empty").classList.toggle("hidden", usable.length > 0);
  const select = document.getElementById("try-run");
  select.replaceChildren(...usable.map(r => el("option", {value: r.id,
    text: `${r.experiment} / ${r.id.split("/").pop()}`})));
  select.onchange = () => showPanels(usable.find(r => r.id === select.value), panels)
    .catch(showError);
  if (usable.length) await showPanels(usable[0], panels);
}

function switchTo(view) {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.classList.toggle("active", tab.dataset.view === view);
  }
  for (const name of ["results", "try"]) {
    document.getElementById(`view-${name}`).classList.toggle("hidden", name !== view);
  }
}

document.querySelectorAll(".tab").forEach(tab => { tab.onclick = () => switchTo(tab.dataset.view); });
if (EXPORTED) document.getElementById("tab-try").classList.add("hidden");
loadResults().catch(showError);
if (!EXPORTED) loadTry().catch(showError);
const wanted = new URLSearchParams(location.search).get("view");
if (wanted === "try" && !EXPORTED) switchTo("try");

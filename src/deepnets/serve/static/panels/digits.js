// Draw a digit: class probabilities and every layer's feature maps, updated as you draw.
"use strict";
window.DeepnetsPanels.digits = (root, run, api) => {
  const canvas = Object.assign(document.createElement("canvas"), {width: 280, height: 280,
    className: "draw"});
  const clear = Object.assign(document.createElement("button"), {textContent: "Clear"});
  const top = Object.assign(document.createElement("div"), {className: "top digits-top"});
  const bars = Object.assign(document.createElement("div"), {className: "bars"});
  const maps = Object.assign(document.createElement("div"), {className: "feature-maps"});
  const left = document.createElement("div");
  left.append(canvas, document.createElement("br"), clear);
  const right = document.createElement("div");
  right.append(top, bars);
  const row = Object.assign(document.createElement("div"), {className: "row"});
  row.append(left, right);
  root.append(row, maps);
  const ctx = canvas.getContext("2d");
  const reset = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, 280, 280); };
  reset();
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 20; ctx.lineCap = ctx.lineJoin = "round";
  let drawing = false, inked = false, busy = false, again = false, last = 0;
  async function predict() {
    if (!inked) return;
    if (busy) { again = true; return; }
    busy = true;
    try {
      const blob = await new Promise(resolve => canvas.toBlob(resolve, "image/png"));
      const out = await api.upload(api.action("digits", "classify", run), blob, "digit.png");
      top.textContent = out.top;
      api.bars(bars, out.classes);
      api.drawMaps(maps, out.layers);
      root.dataset.predictions = String(Number(root.dataset.predictions || 0) + 1);
    } catch (err) { top.textContent = ""; bars.textContent = err.message; }
    busy = false;
    if (again) { again = false; predict(); }
  }
  const at = e => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  canvas.addEventListener("pointerdown", e => {
    drawing = true; canvas.setPointerCapture(e.pointerId);
    ctx.beginPath(); ctx.moveTo(...at(e));
  });
  canvas.addEventListener("pointermove", e => {
    if (!drawing) return;
    ctx.lineTo(...at(e)); ctx.stroke(); inked = true;
    const now = Date.now();
    if (now - last > 200) { last = now; predict(); }  // live, a few times a second
  });
  const end = () => { if (drawing) { drawing = false; predict(); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointerleave", end);
  clear.onclick = () => { reset(); inked = false; top.textContent = ""; bars.replaceChildren(); maps.replaceChildren(); };
};

// Draw a digit for the recurrent attention model: its class probabilities and its glimpse path,
// drawn over the input it saw as numbered boxes (each glimpse's patches) joined in order.
"use strict";
window.DeepnetsPanels.glimpses = (root, run, api) => {
  const side = 280;
  const canvas = Object.assign(document.createElement("canvas"), {width: side, height: side,
    className: "draw"});
  const view = Object.assign(document.createElement("canvas"), {width: side, height: side,
    className: "glimpse-view", title: "what the model saw, and where it looked"});
  view.style.border = "1px solid #444";
  const clear = Object.assign(document.createElement("button"), {textContent: "Clear"});
  const note = Object.assign(document.createElement("p"), {className: "note"});
  const top = Object.assign(document.createElement("div"), {className: "top glimpses-top"});
  const bars = Object.assign(document.createElement("div"), {className: "bars"});
  const left = document.createElement("div");
  left.append(canvas, document.createElement("br"), clear);
  const middle = document.createElement("div");
  middle.append(view);
  const right = document.createElement("div");
  right.append(top, bars);
  const row = Object.assign(document.createElement("div"), {className: "row"});
  row.append(left, middle, right);
  root.append(note, row);
  const ctx = canvas.getContext("2d"), vctx = view.getContext("2d");
  let box = null;  // the ink's bounding box on the canvas: [top, left, bottom, right]
  const reset = () => {
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, side, side);
    vctx.fillStyle = "#000"; vctx.fillRect(0, 0, side, side);
    box = null; top.textContent = ""; bars.replaceChildren();
  };
  reset();
  ctx.strokeStyle = "#fff"; ctx.lineCap = ctx.lineJoin = "round"; ctx.lineWidth = 20;
  api.post(api.action("glimpses", "describe", run), {}).then(d => {
    ctx.lineWidth = 20 * 28 / d.size;  // a digit drawn across a 28x28 field's canvas
    const s = d.glimpse_size, big = s * 2 ** (d.scales - 1);
    const patches = d.scales > 1 ? `${d.scales} patches from ${s}x${s} to ${big}x${big} pixels` +
      " (the larger dashed)" : `one ${s}x${s} patch`;
    note.textContent = (d.size > 28 ? `Draw a digit anywhere on the ${d.size}x${d.size} ` +
      "canvas (it is scaled to MNIST's 20-pixel digits)." : "Draw a digit.") + ` The model sees only ${d.glimpses} glimpses, ` +
      `each ${patches}: 1 is the first, at the centre; the class is read after the last.`;
  }).catch(err => { note.textContent = err.message; });

  function show(out) {
    const n = out.size, scale = side / n;
    const small = Object.assign(document.createElement("canvas"), {width: n, height: n});
    const sctx = small.getContext("2d"), img = sctx.createImageData(n, n);
    out.input.flat().forEach((v, i) => {
      const g = Math.round(255 * Math.max(0, Math.min(1, v)));
      img.data.set([g, g, g, 255], 4 * i);
    });
    sctx.putImageData(img, 0, 0);
    vctx.imageSmoothingEnabled = false;
    vctx.drawImage(small, 0, 0, side, side);
    const at = g => [g.col * scale, g.row * scale];  // canvas (x, y) of a glimpse's centre
    vctx.strokeStyle = "#f90"; vctx.lineWidth = 2; vctx.beginPath();
    out.glimpses.forEach((g, t) => (t ? vctx.lineTo(...at(g)) : vctx.moveTo(...at(g))));
    vctx.stroke();
    vctx.font = "bold 14px sans-serif"; vctx.textAlign = "center"; vctx.textBaseline = "middle";
    out.glimpses.forEach((g, t) => {
      const [x, y] = at(g);
      g.sides.forEach((s, k) => {
        vctx.strokeStyle = k ? "rgba(80, 220, 110, 0.85)" : "#3c5";
        vctx.setLineDash(k ? [4, 3] : []); vctx.lineWidth = k ? 1 : 2;
        vctx.strokeRect(x - s * scale / 2, y - s * scale / 2, s * scale, s * scale);
      });
      vctx.setLineDash([]);
      vctx.fillStyle = "#ff0"; vctx.fillText(String(t + 1), x, y);
    });
  }

  let drawing = false, busy = false, again = false;
  async function look() {
    if (!box) return;
    if (busy) { again = true; return; }
    busy = true;
    try {
      const blob = await new Promise(resolve => canvas.toBlob(resolve, "image/png"));
      const fields = {row: ((box[0] + box[2]) / 2 / side).toFixed(4),
                      col: ((box[1] + box[3]) / 2 / side).toFixed(4)};
      const out = await api.upload(api.action("glimpses", "look", run), blob, "digit.png", fields);
      top.textContent = out.top;
      api.bars(bars, out.classes);
      show(out);
      root.dataset.looks = String(Number(root.dataset.looks || 0) + 1);
    } catch (err) { top.textContent = ""; bars.textContent = err.message; }
    busy = false;
    if (again) { again = false; look(); }
  }
  const at = e => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  const ink = ([x, y]) => {
    box = box ? [Math.min(box[0], y), Math.min(box[1], x), Math.max(box[2], y), Math.max(box[3], x)]
              : [y, x, y, x];
  };
  canvas.addEventListener("pointerdown", e => {
    drawing = true; canvas.setPointerCapture(e.pointerId);
    ctx.beginPath(); ctx.moveTo(...at(e));
  });
  canvas.addEventListener("pointermove", e => {
    if (!drawing) return;
    const p = at(e);
    ctx.lineTo(...p); ctx.stroke(); ink(p);
  });
  const end = () => { if (drawing) { drawing = false; look(); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointerleave", end);
  clear.onclick = reset;
};

// A fresh copy or sort example through a Neural Turing Machine (or its LSTM baseline).
"use strict";
window.DeepnetsPanels.algorithmic = (root, run, api) => {
  root.insertAdjacentHTML("beforeend", `
    <label>copy length <input class="length" type="number" value="20" min="1" max="120"></label>
    <label>seed <input class="seed" type="number" value="0" min="0"></label>
    <button class="go">Run</button> <span class="errors"></span>
    <div class="grids"></div>`);
  const q = s => root.querySelector(s);
  // A (rows, columns) grid of values in [0, 1] as a picture, time running left to right.
  function picture(title, grid, scale = 6) {
    const t = grid.length, n = grid[0].length;
    const canvas = Object.assign(document.createElement("canvas"), {width: t, height: n});
    canvas.style.width = `${t * scale}px`; canvas.style.height = `${n * scale}px`;
    canvas.style.imageRendering = "pixelated";
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(t, n);
    grid.forEach((column, x) => column.forEach((v, y) => {
      const g = Math.round(255 * Math.max(0, Math.min(1, v)));
      img.data.set([g, g, g, 255], 4 * (y * t + x));
    }));
    ctx.putImageData(img, 0, 0);
    const box = document.createElement("div");
    box.append(Object.assign(document.createElement("div"), {textContent: title}), canvas);
    return box;
  }
  q(".go").onclick = async () => {
    try {
      const out = await api.post(api.action("algorithmic", "run", run),
                                 {length: Number(q(".length").value), seed: Number(q(".seed").value)});
      q(".errors").textContent = `${out.bit_errors} bits wrong`;
      const shown = [picture("input", out.input), picture("target", out.target),
                     picture("output", out.output)];
      if (out.write) shown.push(picture("write weighting (memory rows down)", out.write, 3),
                                picture("read weighting", out.read, 3));
      q(".grids").replaceChildren(...shown);
    } catch (err) { q(".errors").textContent = err.message; }
  };
};

// Caption an uploaded image: the caption and, with attention, each word's map over the image.
"use strict";
window.DeepnetsPanels.caption = (root, run, api) => {
  root.insertAdjacentHTML("beforeend", `
    <input class="picture" type="file" accept="image/*">
    <label>beam <input class="beam" type="number" min="1" max="10" value="3"></label>
    <div class="top caption-out"></div><div class="caption-maps"></div>`);
  const q = s => root.querySelector(s);
  // one canvas: the image as the model saw it, the word's attention laid over it in red
  const drawWord = (image, map, word) => {
    const [c, h, w] = [image.length, image[0].length, image[0][0].length], scale = 2;
    const canvas = Object.assign(document.createElement("canvas"), {width: w * scale, height: h * scale});
    const ctx = canvas.getContext("2d"), pixels = ctx.createImageData(w, h);
    const gh = map ? map.length : 1, gw = map ? map[0].length : 1;
    const peak = map ? Math.max(...map.flat()) || 1 : 1;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x), a = map ? map[Math.floor(y * gh / h)][Math.floor(x * gw / w)] / peak : 0;
      const rgb = [0, 1, 2].map(k => image[c === 1 ? 0 : k][y][x]);
      pixels.data[i] = Math.round(rgb[0] * (1 - a) + 255 * a);
      pixels.data[i + 1] = Math.round(rgb[1] * (1 - a));
      pixels.data[i + 2] = Math.round(rgb[2] * (1 - a));
      pixels.data[i + 3] = 255;
    }
    const small = Object.assign(document.createElement("canvas"), {width: w, height: h});
    small.getContext("2d").putImageData(pixels, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, w * scale, h * scale);
    const box = document.createElement("figure");
    box.append(canvas, Object.assign(document.createElement("figcaption"), {textContent: word}));
    return box;
  };
  const go = async () => {
    const file = q(".picture").files[0];
    if (!file) return;
    try {
      const out = await api.upload(api.action("caption", "caption", run), file, file.name,
                                   {beam: q(".beam").value});
      q(".caption-out").textContent = out.caption || "(empty caption)";
      const maps = q(".caption-maps");
      maps.replaceChildren(...(out.attention
        ? out.words.map((word, t) => drawWord(out.image, out.attention[t], word))
        : [drawWord(out.image, null, "no attention: the image feeds the decoder once")]));
    } catch (err) { q(".caption-out").textContent = err.message; q(".caption-maps").replaceChildren(); }
  };
  q(".picture").onchange = go;
  q(".beam").onchange = go;
};

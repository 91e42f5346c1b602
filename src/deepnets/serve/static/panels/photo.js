// Upload a photo: the top classes and the ConvNet's feature maps.
"use strict";
window.DeepnetsPanels.photo = (root, run, api) => {
  const input = Object.assign(document.createElement("input"), {type: "file", accept: "image/*"});
  const preview = Object.assign(document.createElement("img"), {width: 128});
  const top = Object.assign(document.createElement("div"), {className: "top photo-top"});
  const bars = Object.assign(document.createElement("div"), {className: "bars"});
  const maps = Object.assign(document.createElement("div"), {className: "feature-maps"});
  const row = Object.assign(document.createElement("div"), {className: "row"});
  const right = document.createElement("div");
  right.append(top, bars);
  row.append(preview, right);
  root.append(input, row, maps);
  input.onchange = async () => {
    const file = input.files[0];
    if (!file) return;
    preview.src = URL.createObjectURL(file);
    try {
      const out = await api.upload(api.action("photo", "classify", run), file, file.name);
      top.textContent = out.top;
      api.bars(bars, out.classes, 5);
      api.drawMaps(maps, out.layers, 40);
    } catch (err) { top.textContent = ""; bars.textContent = err.message; }
  };
};

// Word vectors: nearest neighbours of a typed word, and the run's t-SNE map (Fig. 4).
"use strict";
window.DeepnetsPanels.words = (root, run, api) => {
  root.insertAdjacentHTML("beforeend", `
    <label>word <input class="word" value="monday" maxlength="100"></label>
    <button class="near">Nearest neighbours</button> <button class="map">Show the t-SNE map</button>
    <div class="bars neighbours"></div><div class="tsne"></div>`);
  const q = s => root.querySelector(s);
  q(".near").onclick = async () => {
    try {
      const out = await api.post(api.action("words", "neighbours", run), {word: q(".word").value});
      api.bars(q(".neighbours"), out.neighbours);
    } catch (err) { q(".neighbours").textContent = err.message; }
  };
  q(".map").onclick = () => {
    q(".tsne").innerHTML = `<p class="note">drawing the map (t-SNE takes a few seconds)...</p>`;
    const img = document.createElement("img");
    img.style.maxWidth = "100%";
    img.onload = () => q(".tsne").replaceChildren(img);
    img.onerror = () => { q(".tsne").textContent = "the map could not be drawn"; };
    img.src = `api/figure?name=fig4&run=${encodeURIComponent(run.id)}`;
  };
};

// Translate a sentence: the beam-search translation and, with attention, the attention matrix.
"use strict";
window.DeepnetsPanels.translation = (root, run, api) => {
  const example = {"de-en": "Ein Mann fährt mit dem Fahrrad die Straße entlang.",
                   "en-de": "A man rides his bike down the street."};
  root.insertAdjacentHTML("beforeend", `
    <input class="sentence" size="60" value="${example["de-en"]}">
    <label>beam <input class="beam" type="number" min="1" max="10" value="5"></label>
    <button class="go">Translate</button>
    <div class="top translation-out"></div><table class="attention"></table>`);
  const q = s => root.querySelector(s);
  const esc = s => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  q(".go").onclick = async () => {
    try {
      const out = await api.post(api.action("translation", "translate", run),
                                 {sentence: q(".sentence").value, beam: Number(q(".beam").value)});
      q(".translation-out").textContent = out.translation + (out.note ? ` (${out.note})` : "");
      if (!out.attention) { q(".attention").innerHTML = "<tr><td>no attention: the encoder's final state is the only link</td></tr>"; return; }
      const head = `<tr><th></th>${out.source_pieces.map(p => `<th class="vertical">${esc(p)}</th>`).join("")}</tr>`;
      const rows = out.attention.map((row, t) => `<tr><th>${esc(out.target_pieces[t])}</th>${row.map(w =>
        `<td style="background:rgba(31,95,159,${w.toFixed(3)})" title="${w.toFixed(3)}"></td>`).join("")}</tr>`);
      q(".attention").innerHTML = head + rows.join("");
    } catch (err) { q(".translation-out").textContent = err.message; q(".attention").innerHTML = ""; }
  };
};

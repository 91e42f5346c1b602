// Continue a prompt: the continuation streamed as it is generated, then the next-token distribution.
"use strict";
window.DeepnetsPanels.language = (root, run, api) => {
  root.insertAdjacentHTML("beforeend", `
    <textarea class="prompt" rows="2" maxlength="2000">the company said</textarea><br>
    <label>temperature <input class="temperature" type="number" value="1.0" min="0.05" max="5" step="0.05"></label>
    <label>length <input class="length" type="number" value="40" min="1" max="500"></label>
    <label>seed <input class="seed" type="number" value="0" min="0"></label>
    <button class="generate">Generate</button>
    <pre class="out"></pre><div class="note">next-token distribution of the last step:</div>
    <div class="bars next"></div>`);
  if (run.experiment === "charlstm-shakespeare") root.querySelector(".prompt").value = "ROMEO:";
  const q = s => root.querySelector(s);
  q(".generate").onclick = async () => {
    const out = q(".out"), prompt = q(".prompt").value;
    out.textContent = prompt;
    out.dataset.done = "";
    q(".next").replaceChildren();
    try {
      await api.stream(api.action("language", "generate", run), {
        prompt, temperature: Number(q(".temperature").value), length: Number(q(".length").value),
        seed: Number(q(".seed").value),
      }, item => {
        if (item.piece !== undefined) {  // no space at the start of a new line
          const piece = out.textContent.endsWith("\n") ? item.piece.trimStart() : item.piece;
          out.textContent += piece;
        }
        if (item.next) api.bars(q(".next"), item.next);
        if (item.error) out.textContent += `\n[${item.error}]`;
      });
      out.dataset.done = "yes";
    } catch (err) { out.textContent = err.message; out.dataset.done = "error"; }
  };
};

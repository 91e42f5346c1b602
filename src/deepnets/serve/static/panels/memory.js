// Ask a memory network about a story: the answer, and the attention over sentences at each hop.
"use strict";
window.DeepnetsPanels.memory = (root, run, api) => {
  root.insertAdjacentHTML("beforeend", `
    <div class="note">One sentence per line, in the words of the bAbI tasks.</div>
    <textarea class="story" rows="6">Mary moved to the bathroom.
John went to the hallway.
Daniel went back to the hallway.
Sandra moved to the garden.
John moved to the office.</textarea><br>
    <label>question <input class="question" size="40" value="Where is John?"></label>
    <button class="ask">Answer</button>
    <div class="top memory-answer"></div><table class="hops"></table>`);
  const q = s => root.querySelector(s);
  q(".ask").onclick = async () => {
    try {
      const out = await api.post(api.action("memory", "answer", run),
                                 {story: q(".story").value, question: q(".question").value});
      q(".memory-answer").textContent = `${out.answer} (p = ${out.probability.toFixed(3)})`;
      const head = `<tr><th>sentence</th>${out.attention.map((_, k) => `<th>hop ${k + 1}</th>`).join("")}</tr>`;
      const rows = out.sentences.map((s, i) => `<tr><td>${s.replace(/</g, "&lt;")}</td>${out.attention.map(hop =>
        `<td style="background:rgba(31,95,159,${hop[i].toFixed(3)})">${hop[i].toFixed(2)}</td>`).join("")}</tr>`);
      const unused = `<tr><td><em>(unused memory slots)</em></td>${out.unused.map(w =>
        `<td style="background:rgba(31,95,159,${w.toFixed(3)})">${w.toFixed(2)}</td>`).join("")}</tr>`;
      q(".hops").innerHTML = head + rows.join("") + unused;
    } catch (err) { q(".memory-answer").textContent = ""; q(".hops").textContent = err.message; }
  };
};

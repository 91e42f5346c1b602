// Spoken digits: upload a WAV (mono 16-bit 8 kHz) or record one where the browser allows it.
"use strict";
window.DeepnetsPanels.speech = (root, run, api) => {
  root.insertAdjacentHTML("beforeend", `
    <input class="wav" type="file" accept=".wav,audio/wav">
    <button class="record">Record 2 s</button>
    <div class="top speech-top"></div><div class="bars"></div>`);
  const q = s => root.querySelector(s);
  async function send(blob) {
    try {
      const out = await api.upload(api.action("speech", "recognise", run), blob, "speech.wav");
      q(".speech-top").textContent = out.digits || "(nothing heard)";
      if (out.classes) api.bars(q(".bars"), out.classes, 5);
    } catch (err) { q(".speech-top").textContent = ""; q(".bars").textContent = err.message; }
  }
  q(".wav").onchange = () => q(".wav").files[0] && send(q(".wav").files[0]);
  // A recording, resampled to 8 kHz mono and written as a 16-bit PCM WAV, as FSDD's files are.
  function wav(samples, rate) {
    const view = new DataView(new ArrayBuffer(44 + 2 * samples.length));
    const text = (at, s) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
    text(0, "RIFF"); view.setUint32(4, 36 + 2 * samples.length, true); text(8, "WAVEfmt ");
    view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
    view.setUint32(24, rate, true); view.setUint32(28, 2 * rate, true);
    view.setUint16(32, 2, true); view.setUint16(34, 16, true); text(36, "data");
    view.setUint32(40, 2 * samples.length, true);
    samples.forEach((v, i) => view.setInt16(44 + 2 * i, Math.max(-1, Math.min(1, v)) * 32767, true));
    return new Blob([view], {type: "audio/wav"});
  }
  q(".record").onclick = async () => {
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      q(".speech-top").textContent = "this browser cannot record here; upload a WAV"; return;
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({audio: true});
      const recorder = new MediaRecorder(stream), chunks = [];
      recorder.ondataavailable = e => chunks.push(e.data);
      recorder.onstop = async () => {
        stream.getTracks().forEach(t => t.stop());
        const decoded = await new AudioContext().decodeAudioData(await new Blob(chunks).arrayBuffer());
        const offline = new OfflineAudioContext(1, Math.ceil(decoded.duration * 8000), 8000);
        const source = offline.createBufferSource();
        source.buffer = decoded; source.connect(offline.destination); source.start();
        send(wav((await offline.startRendering()).getChannelData(0), 8000));
      };
      recorder.start();
      q(".speech-top").textContent = "recording...";
      setTimeout(() => recorder.stop(), 2000);
    } catch (err) { q(".speech-top").textContent = `cannot record: ${err.message}`; }
  };
};

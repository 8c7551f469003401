// What atende's two WebRTC calling pages share (the dashboard's talk page and the SIP
// bridge's calling page): a meter of what is heard, and the wait for ICE candidates
// (atende takes the offer with every candidate in it: nothing is trickled).
window.atendeWebRtc = {
  // Measure `stream` every 50 ms: shown on the <meter> `level`, kept on `box` as
  // data-heard-peak (the loudest RMS) and data-heard-loud (50 ms windows above a
  // murmur). Returns the interval, to clear when the call ends.
  listen(stream, level, box) {
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    ctx.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    let peak = 0, loud = 0;
    return setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const v of samples) sum += v * v;
      const rms = Math.sqrt(sum / samples.length);
      level.value = Math.min(1, rms * 4);
      peak = Math.max(peak, rms);
      if (rms > 0.02) loud += 1;
      box.dataset.heardPeak = peak.toFixed(4);
      box.dataset.heardLoud = String(loud);
    }, 50);
  },

  // A call's end, on the page's side: the meter stops, the microphone is let go, the
  // connection closed (any of them may be null: the call ended before it had them).
  release(pc, mic, meter) {
    if (meter) clearInterval(meter);
    if (mic) for (const t of mic.getTracks()) t.stop();
    if (pc) pc.close();
  },

  // Resolves once `pc` has gathered its candidates, or after 3 s with what it found.
  gathered(pc) {
    return new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") resolve();
      });
      setTimeout(resolve, 3000);
    });
  },
};

// Hand-drawn canvas charts (no library: the page must work offline with no build step).
"use strict";

const Charts = (() => {
  const PAD = { l: 44, r: 12, t: 12, b: 26 };
  const COLORS = ["#1e88e5", "#6a3fd1", "#2e7d32", "#ef6c00", "#00838f", "#ad1457"];

  function frame(canvas) {
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.font = "11px system-ui, sans-serif";
    const w = canvas.width - PAD.l - PAD.r;
    const h = canvas.height - PAD.t - PAD.b;
    return { ctx, w, h };
  }

  function axes(ctx, w, h, yMax, yLabel, yMin = 0, integer = false) {
    const range = yMax - yMin;
    const digits = integer ? 0 : range >= 50 ? 0 : range >= 5 ? 1 : 2;
    ctx.strokeStyle = "#c9d0d8";
    ctx.fillStyle = "#66707c";
    ctx.beginPath();
    ctx.moveTo(PAD.l, PAD.t);
    ctx.lineTo(PAD.l, PAD.t + h);
    ctx.lineTo(PAD.l + w, PAD.t + h);
    ctx.stroke();
    for (let i = 0; i <= 4; i++) {
      const v = yMin + ((yMax - yMin) * i) / 4;
      const y = PAD.t + h - (h * i) / 4;
      if (!integer || Number.isInteger(v)) ctx.fillText(v.toFixed(digits), 4, y + 4);
      ctx.strokeStyle = "#eef1f4";
      ctx.beginPath();
      ctx.moveTo(PAD.l + 1, y);
      ctx.lineTo(PAD.l + w, y);
      ctx.stroke();
    }
    ctx.textAlign = "right";
    ctx.fillText(yLabel, PAD.l + w - 4, PAD.t + 10);
    ctx.textAlign = "left";
  }

  // Running uncertainty of the answer being streamed: entropy and p per token, alerts.
  function tokens(canvas, stats, alerts, thresholds) {
    const { ctx, w, h } = frame(canvas);
    const n = Math.max(stats.length, 16);
    const hMax = Math.max(4, ...stats.map((s) => s.entropy));
    axes(ctx, w, h, hMax, "entropy (nats); p(token) from 0 at the bottom to 1 at the top");
    const x = (i) => PAD.l + (w * (i + 0.5)) / n;
    const yH = (v) => PAD.t + h - (h * v) / hMax;
    const yP = (p) => PAD.t + h - h * p;
    if (thresholds) {
      ctx.setLineDash([4, 4]);
      ctx.strokeStyle = "#b39ddb";
      ctx.beginPath();
      ctx.moveTo(PAD.l, yH(thresholds.spike_entropy));
      ctx.lineTo(PAD.l + w, yH(thresholds.spike_entropy));
      ctx.stroke();
      ctx.strokeStyle = "#90caf9";
      ctx.beginPath();
      ctx.moveTo(PAD.l, yP(thresholds.low_p));
      ctx.lineTo(PAD.l + w, yP(thresholds.low_p));
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.fillStyle = "rgba(198,40,40,.18)";
    for (const a of alerts) ctx.fillRect(x(a.index) - w / n / 2, PAD.t, w / n, h);
    line(ctx, stats.map((s, i) => [x(i), yP(s.p)]), "#1e88e5");
    line(ctx, stats.map((s, i) => [x(i), yH(s.entropy)]), "#6a3fd1");
    ctx.fillStyle = "#66707c";
    ctx.fillText(`${stats.length} tokens`, PAD.l + w - 60, PAD.t + h + 18);
  }

  function line(ctx, points, color) {
    if (!points.length) return;
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    points.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
    ctx.stroke();
    ctx.fillStyle = color;
    for (const [px, py] of points) ctx.fillRect(px - 1.5, py - 1.5, 3, 3);
    ctx.lineWidth = 1;
  }

  // One metric over versions, a line per evaluation set; the stable version is marked.
  function versions(canvas, series, stable, metric) {
    const { ctx, w, h } = frame(canvas);
    const all = Object.values(series).flat();
    const vs = [...new Set(all.map((p) => p.version))].sort((a, b) => a - b);
    if (!vs.length) {
      ctx.fillStyle = "#66707c";
      ctx.fillText(`no ${metric} evaluations yet`, PAD.l + 10, PAD.t + 30);
      return;
    }
    const ys = all.map((p) => p.value);
    let lo = Math.min(...ys), hi = Math.max(...ys);
    if (hi === lo) { hi += 1; lo = Math.max(0, lo - 1); }
    axes(ctx, w, h, hi, metric, lo);
    const x = (v) => PAD.l + (w * (vs.indexOf(v) + 0.5)) / vs.length;
    const y = (v) => PAD.t + h - (h * (v - lo)) / (hi - lo);
    ctx.fillStyle = "#66707c";
    for (const v of vs) ctx.fillText(v === stable ? `v${v} ★` : `v${v}`, x(v) - 8, PAD.t + h + 16);
    Object.entries(series).forEach(([set, points], i) => {
      const color = COLORS[i % COLORS.length];
      line(ctx, points.map((p) => [x(p.version), y(p.value)]), color);
      ctx.fillStyle = color;
      ctx.fillText(set, PAD.l + 120 + 140 * i, PAD.t + 10);
    });
  }

  // Stacked bars: interactions per day and source.
  function volume(canvas, rows) {
    const { ctx, w, h } = frame(canvas);
    const days = [...new Set(rows.map((r) => r.day))].sort();
    const sources = [...new Set(rows.map((r) => r.source))].sort();
    if (!days.length) {
      ctx.fillStyle = "#66707c";
      ctx.fillText("no feedback in this period", PAD.l + 10, PAD.t + 30);
      return;
    }
    const totals = days.map((d) => rows.filter((r) => r.day === d).reduce((s, r) => s + r.interactions, 0));
    const max = Math.max(...totals);
    axes(ctx, w, h, max, "interactions per day", 0, true);
    const bw = Math.min(40, (w / days.length) * 0.7);
    days.forEach((d, i) => {
      let base = 0;
      const cx = PAD.l + (w * (i + 0.5)) / days.length;
      sources.forEach((s, j) => {
        const r = rows.find((q) => q.day === d && q.source === s);
        if (!r) return;
        const bh = (h * r.interactions) / max;
        ctx.fillStyle = COLORS[j % COLORS.length];
        ctx.fillRect(cx - bw / 2, PAD.t + h - base - bh, bw, bh);
        base += bh;
      });
      ctx.fillStyle = "#66707c";
      ctx.fillText(d.slice(5), cx - 14, PAD.t + h + 16);
    });
    sources.forEach((s, j) => {
      ctx.fillStyle = COLORS[j % COLORS.length];
      ctx.fillRect(PAD.l + 10 + 80 * j, PAD.t + 4, 10, 10);
      ctx.fillStyle = "#3d4650";
      ctx.fillText(s, PAD.l + 24 + 80 * j, PAD.t + 13);
    });
  }

  return { tokens, versions, volume };
})();

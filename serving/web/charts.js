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

  // A 4-interval axis over [lo, hi] on round steps (1, 2, 2.5, 5 × 10^k), within `bounds`.
  function niceRange(lo, hi, bounds) {
    const raw = Math.max((hi - lo) / 4, 1e-9);
    const scale = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10, 20]) {
      const step = m * scale;
      let low = Math.floor(lo / step) * step;
      if (bounds[0] !== null) low = Math.max(bounds[0], low);
      let high = low + 4 * step;
      if (bounds[1] !== null && high > bounds[1]) {
        high = bounds[1];
        low = Math.max(bounds[0] ?? -Infinity, high - 4 * step);
      }
      if (high >= hi && low <= lo) return { lo: low, hi: high, step };
    }
    return { lo, hi, step: (hi - lo) / 4 };
  }

  // One metric per UTC day, a line per version with its 95 % interval as whiskers. Days run
  // from the first to the last with data, gaps left open. `bounds` ([min, max], either may
  // be null) keeps the axis within the metric's own range. Returns the legend (label and
  // colour per series) for the page to show above the chart.
  function daily(canvas, series, metric, bounds = [null, null]) {
    const { ctx, w, h } = frame(canvas);
    const legend = series.map((s, i) => ({ label: s.label, stable: s.stable, color: COLORS[i % COLORS.length] }));
    const points = series.flatMap((s) => s.points);
    if (!points.length) {
      ctx.fillStyle = "#66707c";
      ctx.fillText(`no ${metric} in this period`, PAD.l + 10, PAD.t + 30);
      return legend;
    }
    const dayMs = 86400000;
    const t = (d) => Date.parse(`${d}T00:00:00Z`);
    const first = Math.min(...points.map((p) => t(p.day)));
    const last = Math.max(...points.map((p) => t(p.day)));
    const span = Math.round((last - first) / dayMs) + 1;
    const values = points.map((p) => p.value);
    let lo = Math.min(...points.map((p) => p.low), ...values);
    let hi = Math.max(...points.map((p) => p.high), ...values);
    if (hi - lo < 1e-9) { hi += 1; lo -= 1; } // one value (or one answer): an axis around it
    if (bounds[0] !== null) lo = Math.max(bounds[0], lo);
    if (bounds[1] !== null) hi = Math.min(bounds[1], hi);
    const axis = niceRange(lo, hi, bounds);
    const integer = axis.step >= 1 && Number.isInteger(axis.lo);
    axes(ctx, w, h, axis.hi, "", axis.lo, integer);
    const x = (d) => PAD.l + (w * ((t(d) - first) / dayMs + 0.5)) / span;
    const y = (v) => PAD.t + h - (h * (Math.min(axis.hi, Math.max(axis.lo, v)) - axis.lo)) / (axis.hi - axis.lo);
    ctx.fillStyle = "#66707c";
    const step = Math.max(1, Math.ceil(span / 12));
    for (let i = 0; i < span; i += step) {
      const day = new Date(first + i * dayMs).toISOString().slice(0, 10);
      ctx.fillText(day.slice(5), x(day) - 14, PAD.t + h + 16);
    }
    series.forEach((s, i) => {
      const color = legend[i].color;
      const shift = (i - (series.length - 1) / 2) * 5; // whiskers of one day side by side
      ctx.strokeStyle = color;
      ctx.globalAlpha = 0.45;
      ctx.lineWidth = 3;
      for (const p of s.points) {
        ctx.beginPath();
        ctx.moveTo(x(p.day) + shift, y(p.low));
        ctx.lineTo(x(p.day) + shift, y(p.high));
        ctx.stroke();
      }
      ctx.globalAlpha = 1;
      ctx.lineWidth = 1;
      // Consecutive days are joined; a day without answers breaks the line.
      let run = [];
      const flush = () => { line(ctx, run, color); run = []; };
      s.points.forEach((p, j) => {
        if (j && t(p.day) - t(s.points[j - 1].day) > dayMs) flush();
        run.push([x(p.day) + shift, y(p.value)]);
      });
      flush();
      ctx.fillStyle = color; // each day's value, visible even where no line joins it
      for (const p of s.points) ctx.fillRect(x(p.day) + shift - 2.5, y(p.value) - 2.5, 5, 5);
    });
    return legend;
  }

  return { tokens, versions, volume, daily };
})();

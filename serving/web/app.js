// The web chat: streams /v1/chat/completions, colours tokens by probability, charts the
// uncertainty, and rates/corrects answers through the phones' feedback route. Devices an
// operator made reviewers also get a review view: the queue of answers to correct.
"use strict";

const $ = (id) => document.getElementById(id);
const DEVICE_KEY = "distillery.device";
// What the browser test (and a curious person in the console) can read.
const chat = (window.__chat = { reads: 0, tokens: 0, done: false, error: null, turns: [] });
const review = (window.__review = { role: null, loaded: 0, saved: 0, error: null });
let history = [];
let current = null; // the last answer: {interactionId, student, version, prompt, response, createdAt, updatedAt}

async function device(force = false) {
  let stored = JSON.parse(localStorage.getItem(DEVICE_KEY) || "null");
  if (!stored || force) {
    const resp = await fetch("/api/devices", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ platform: "web", app_version: "web-1" }),
    });
    const body = await resp.json();
    if (!resp.ok) throw new Error(`device registration refused: ${body.detail}`);
    stored = { device_id: body.device_id, token: body.token, status: body.status };
    localStorage.setItem(DEVICE_KEY, JSON.stringify(stored));
  }
  $("device").textContent = `web device ${stored.device_id.slice(0, 8)}…`;
  $("device").title = `device id ${stored.device_id} (an operator grants review: distillery devices grant reviewer ${stored.device_id})`;
  return stored;
}

// The device's role: reviewers see the review view (the service checks it on every request).
async function whoami() {
  const resp = await authed("/api/devices/me", {});
  const body = await resp.json();
  review.role = resp.ok ? body.role : null;
  $("tab-review").hidden = review.role !== "reviewer";
  return review.role;
}

async function authed(url, init, retry = true) {
  const dev = await device();
  const headers = { ...(init.headers || {}), Authorization: `Bearer ${dev.token}` };
  const resp = await fetch(url, { ...init, headers });
  if (resp.status === 401 && retry) {
    await device(true); // unknown or revoked token: register again once
    return authed(url, init, false);
  }
  return resp;
}

async function loadModels() {
  const resp = await fetch("/v1/models");
  const body = await resp.json();
  const select = $("model");
  select.innerHTML = "";
  for (const m of body.data || []) {
    const opt = document.createElement("option");
    opt.value = m.id;
    opt.textContent = `${m.id} v${m.version}`;
    opt.dataset.info = `${m.file_name || ""} ${m.quantization || ""}`;
    select.appendChild(opt);
  }
  if (!select.options.length) $("status").textContent = "No student is published yet.";
  showInfo();
}

function showInfo() {
  const opt = $("model").selectedOptions[0];
  $("model-info").textContent = opt ? opt.dataset.info : "";
}

function colour(p) {
  // red (p = 0) through yellow to green (p = 1)
  return `hsl(${Math.round(120 * p)} 75% ${p > 0.7 ? 86 : 82}%)`;
}

function addTurn(role, text) {
  const div = document.createElement("div");
  div.className = `turn ${role}`;
  div.innerHTML = `<div class="who"></div><div class="text"></div>`;
  div.querySelector(".who").textContent = role === "user" ? "you" : "student";
  div.querySelector(".text").textContent = text || "";
  $("log").appendChild(div);
  return div;
}

async function ask(event) {
  event.preventDefault();
  const prompt = $("prompt").value.trim();
  if (!prompt) return;
  $("send").disabled = true;
  $("feedback").hidden = true;
  $("alerts").innerHTML = "";
  Object.assign(chat, { reads: 0, tokens: 0, done: false, error: null });
  history.push({ role: "user", content: prompt });
  addTurn("user", prompt);
  $("prompt").value = "";
  const turn = addTurn("assistant", "");
  const text = turn.querySelector(".text");
  const stats = [];
  const alerts = [];
  let head = null;
  let last = null;
  try {
    const resp = await authed("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: $("model").value || undefined,
        messages: history,
        stream: true,
        max_tokens: Number($("max-tokens").value) || 128,
      }),
    });
    if (!resp.ok) throw new Error((await resp.json()).detail || resp.statusText);
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chat.reads += 1;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const line = buffer.slice(0, cut).trim();
        buffer = buffer.slice(cut + 2);
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") continue;
        const ev = JSON.parse(data);
        if (ev.error) throw new Error(ev.error.message);
        if (!head) {
          head = ev;
          $("status").textContent = `${ev.student} v${ev.version} is answering…`;
        }
        if (ev.token) {
          const span = document.createElement("span");
          span.className = "tok";
          span.textContent = ev.token.text;
          span.style.background = colour(ev.token.p);
          span.title = `p=${ev.token.p.toFixed(3)} · entropy=${ev.token.entropy.toFixed(2)} nats`;
          text.appendChild(span);
          stats.push(ev.token);
          chat.tokens += 1;
          for (const a of ev.alerts || []) {
            alerts.push(a);
            span.classList.add("alerted");
            const li = document.createElement("li");
            li.textContent = a.message;
            $("alerts").appendChild(li);
          }
          Charts.tokens($("chart"), stats, alerts, null);
        }
        if (ev.uncertainty) last = ev;
      }
    }
  } catch (err) {
    chat.error = String(err.message || err);
    $("status").textContent = `✗ ${chat.error}`;
    history.pop();
    $("send").disabled = false;
    return;
  }
  const response = stats.map((s) => s.text).join("");
  history.push({ role: "assistant", content: response });
  if (last) {
    const u = last.uncertainty;
    Charts.tokens($("chart"), stats, alerts, u.thresholds);
    const rate = last.timings && last.timings.tokens_per_s;
    const summary = document.createElement("div");
    summary.className = "summary";
    summary.textContent =
      `${last.student} v${last.version} · ${u.tokens} tokens` +
      (rate ? ` · ${rate} tokens/s` : "") +
      ` · mean entropy ${u.mean_entropy ?? "–"} nats · ${Math.round(100 * (u.low_p_share || 0))}% of tokens p<${u.thresholds.low_p}` +
      ` · ${u.alerts.length} alert(s)`;
    turn.appendChild(summary);
    if (last.stored) {
      current = {
        interactionId: last.interaction_id,
        student: last.student,
        version: String(last.version),
        prompt: last.stored_prompt,
        response,
        createdAt: last.created_at,
        updatedAt: last.created_at,
        rating: null,
        correction: null,
      };
      $("feedback").hidden = false;
      $("correction").value = "";
      $("feedback-status").textContent = "";
      for (const b of ["thumbs-up", "thumbs-down"]) $(b).classList.remove("chosen");
    }
    $("status").textContent = "";
  }
  chat.turns.push({ interactionId: last && last.interaction_id, tokens: stats.length, summary: last && last.uncertainty });
  chat.done = true;
  $("send").disabled = false;
}

async function sendFeedback(change) {
  if (!current) return;
  Object.assign(current, change);
  // Later than anything stored for this id, whatever this browser's clock says.
  const now = Date.now();
  const after = Date.parse(current.updatedAt) + 1;
  current.updatedAt = new Date(Math.max(now, after)).toISOString();
  const dev = await device();
  const body = {
    device_id: dev.device_id,
    timestamp: new Date().toISOString(),
    interactions: [
      {
        id: current.interactionId,
        model_name: current.student,
        model_version: current.version,
        prompt: current.prompt,
        response: current.response,
        rating: current.rating,
        correction: current.correction,
        category: "chat",
        created_at: current.createdAt,
        updated_at: current.updatedAt,
      },
    ],
  };
  const resp = await authed("/api/training/feedback", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const result = await resp.json();
  $("feedback-status").textContent = resp.ok
    ? `saved (${result.updated ? "updated" : result.accepted ? "stored" : "unchanged"})`
    : `✗ ${result.detail}`;
  $("feedback-status").dataset.state = resp.ok ? "saved" : "error";
}

function rate(rating, button) {
  for (const b of ["thumbs-up", "thumbs-down"]) $(b).classList.remove("chosen");
  $(button).classList.add("chosen");
  return sendFeedback({ rating });
}

async function loadQuality() {
  const [quality, volume] = await Promise.all([
    fetch("/api/web/quality").then((r) => r.json()),
    fetch("/api/web/feedback-volume?days=30").then((r) => r.json()),
  ]);
  const metrics = new Set();
  for (const s of quality.students) for (const sc of s.scores) Object.keys(sc.metrics).forEach((m) => metrics.add(m));
  const select = $("metric");
  const chosen = select.value || (metrics.has("perplexity") ? "perplexity" : [...metrics][0]);
  select.innerHTML = "";
  for (const m of [...metrics].sort()) select.add(new Option(m, m, false, m === chosen));
  const box = $("quality-charts");
  box.innerHTML = "";
  for (const s of quality.students) {
    const card = document.createElement("div");
    card.className = "quality-card";
    card.innerHTML = `<strong></strong> <span class="muted"></span><canvas width="900" height="180"></canvas>`;
    card.querySelector("strong").textContent = s.student;
    card.querySelector(".muted").textContent = s.stable_version ? `stable: v${s.stable_version}` : "";
    box.appendChild(card);
    const series = {};
    for (const sc of s.scores) {
      if (!(chosen in sc.metrics)) continue;
      (series[sc.eval_set] ||= []).push({ version: sc.version, value: sc.metrics[chosen] });
    }
    Charts.versions(card.querySelector("canvas"), series, s.stable_version, chosen || "metric");
  }
  if (!quality.students.length) box.textContent = "No student has evaluations yet.";
  Charts.volume($("volume-chart"), volume.volume);
  const sum = (key) => volume.volume.reduce((s, r) => s + r[key], 0);
  $("volume-note").textContent =
    `${sum("interactions")} interactions in the last ${volume.days} days:` +
    ` ${sum("rated")} rated, ${sum("corrected")} corrected`;
}

// The range each live metric can take: intervals are clipped to it on the chart.
const LIVE_BOUNDS = {
  mean_rating: [1, 5],
  thumbs_down: [0, 1],
  corrections: [0, 1],
  answer_chars: [0, null],
  mean_entropy: [0, null],
};

async function loadLive() {
  const days = $("live-days").value || "30";
  const resp = await fetch(`/api/web/live-quality?days=${days}`);
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.detail || resp.statusText);
  const select = $("live-metric");
  const chosen = select.value || "mean_rating";
  select.innerHTML = "";
  for (const m of body.metrics) select.add(new Option(m.label, m.name, false, m.name === chosen));
  const metric = body.metrics.find((m) => m.name === select.value) || body.metrics[0];
  const students = {};
  for (const v of body.versions) (students[v.student] ||= []).push(v);
  const box = $("live-charts");
  box.innerHTML = "";
  for (const [student, versions] of Object.entries(students)) {
    const card = document.createElement("div");
    card.className = "live-card";
    card.innerHTML = `<strong></strong> <span class="muted"></span><div class="legend"></div><canvas width="900" height="220"></canvas>`;
    card.querySelector("strong").textContent = student;
    const answers = versions.reduce((n, v) => n + v.interactions, 0);
    const worse = metric.worse_when ? ` · ${metric.worse_when} is worse` : "";
    card.querySelector(".muted").textContent = `${answers} answers in ${body.days} days${worse}`;
    box.appendChild(card);
    const series = versions.map((v) => ({
      label: `v${v.version}`,
      stable: v.stable,
      points: v.days
        .filter((d) => d[metric.name])
        .map((d) => ({ day: d.day, value: d[metric.name].value, low: d[metric.name].low, high: d[metric.name].high, n: d[metric.name].n })),
    }));
    const legend = Charts.daily(card.querySelector("canvas"), series, metric.label, LIVE_BOUNDS[metric.name]);
    const keys = card.querySelector(".legend");
    keys.append(`${metric.label}: `);
    for (const key of legend) {
      const item = document.createElement("span");
      item.className = "version-key";
      item.innerHTML = `<span class="swatch"></span> `;
      item.querySelector(".swatch").style.background = key.color;
      item.append(key.stable ? `${key.label} (stable)` : key.label);
      keys.appendChild(item);
    }
  }
  if (!body.versions.length) box.textContent = `No answers in the last ${body.days} days.`;
}

function reviewItem(item) {
  const li = document.createElement("li");
  li.className = "review-item";
  li.dataset.id = item.interaction_id;
  li.innerHTML =
    `<div class="meta"><strong class="model"></strong><span class="source"></span><span class="rating"></span></div>` +
    `<div class="label">asked</div><div class="prompt"></div>` +
    `<div class="label">answered</div><div class="answer"></div>` +
    `<form><textarea rows="2" placeholder="The answer it should have given" required></textarea>` +
    `<button type="submit">Save correction</button></form><div class="result muted"></div>`;
  li.querySelector(".model").textContent = `${item.model_name} v${item.model_version}`;
  li.querySelector(".source").textContent = item.source === "web" ? "web chat" : "phone";
  // A low rating is already one of the reasons; otherwise say whether the user rated it.
  const ratedLow = item.reasons.some((why) => why.startsWith("rated "));
  li.querySelector(".rating").textContent = ratedLow ? "" : item.rating ? `rated ${item.rating} of 5` : "not rated";
  const meta = li.querySelector(".meta");
  for (const why of item.reasons) {
    const chip = document.createElement("span");
    chip.className = "reason";
    chip.textContent = why;
    meta.appendChild(chip);
  }
  li.querySelector(".prompt").textContent = item.prompt;
  li.querySelector(".answer").textContent = item.response;
  li.querySelector("form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = li.querySelector("textarea").value.trim();
    if (text) saveReview(li, text);
  });
  return li;
}

async function loadReview() {
  $("review-status").textContent = "loading…";
  const resp = await authed("/api/review/queue?limit=50", {});
  const body = await resp.json();
  if (!resp.ok) {
    review.error = body.detail || resp.statusText;
    $("review-status").textContent = `✗ ${review.error}`;
    if (resp.status === 403) $("tab-review").hidden = true;
    return;
  }
  const list = $("review-list");
  list.innerHTML = "";
  for (const item of body.items) list.appendChild(reviewItem(item));
  review.loaded = body.items.length;
  reviewCount();
}

function reviewCount() {
  const left = $("review-list").children.length;
  $("review-status").textContent = left ? `${left} answer(s) to review` : "Nothing to review right now.";
}

async function saveReview(li, text) {
  const button = li.querySelector("button");
  button.disabled = true;
  const resp = await authed(`/api/review/${li.dataset.id}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ correction: text }),
  });
  const body = await resp.json();
  if (resp.ok) {
    review.saved += 1;
    li.remove(); // stored as a review: it left the queue
    reviewCount();
    return;
  }
  const result = li.querySelector(".result");
  result.textContent = `✗ ${body.detail || resp.statusText}`;
  result.dataset.state = "error";
  // Corrected by someone else meanwhile (409) or gone (404): it is no longer in the queue.
  if (resp.status === 409 || resp.status === 404) button.textContent = "No longer open";
  else button.disabled = false;
}

function show(view) {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.classList.toggle("active", tab.dataset.view === view);
    $(tab.dataset.view).hidden = tab.dataset.view !== view;
  }
  if (view === "quality-view") {
    loadLive().catch((err) => ($("live-charts").textContent = `✗ ${err.message}`));
    loadQuality();
  }
  if (view === "review-view") loadReview().catch((err) => ($("review-status").textContent = `✗ ${err.message}`));
}

window.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
  $("ask").addEventListener("submit", ask);
  $("model").addEventListener("change", showInfo);
  $("new-chat").addEventListener("click", () => {
    history = [];
    $("log").innerHTML = "";
    $("feedback").hidden = true;
  });
  $("thumbs-up").addEventListener("click", () => rate(5, "thumbs-up"));
  $("thumbs-down").addEventListener("click", () => rate(1, "thumbs-down"));
  $("send-correction").addEventListener("click", () => {
    const text = $("correction").value.trim();
    if (text) sendFeedback({ correction: text });
  });
  $("metric").addEventListener("change", loadQuality);
  for (const id of ["live-metric", "live-days"]) $(id).addEventListener("change", () => loadLive());
  $("review-refresh").addEventListener("click", () => loadReview());
  device()
    .then(whoami)
    .catch((err) => ($("device").textContent = `✗ ${err.message}`));
  loadModels().catch((err) => ($("status").textContent = `✗ ${err.message}`));
  Charts.tokens($("chart"), [], [], null);
});

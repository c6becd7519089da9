// The web chat: streams /v1/chat/completions, colours tokens by probability, charts the
// uncertainty, and rates/corrects answers through the phones' feedback route.
"use strict";

const $ = (id) => document.getElementById(id);
const DEVICE_KEY = "distillery.device";
// What the browser test (and a curious person in the console) can read.
const chat = (window.__chat = { reads: 0, tokens: 0, done: false, error: null, turns: [] });
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
  return stored;
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

function show(view) {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.classList.toggle("active", tab.dataset.view === view);
    $(tab.dataset.view).hidden = tab.dataset.view !== view;
  }
  if (view === "quality-view") loadQuality();
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
  device().catch((err) => ($("device").textContent = `✗ ${err.message}`));
  loadModels().catch((err) => ($("status").textContent = `✗ ${err.message}`));
  Charts.tokens($("chart"), [], [], null);
});

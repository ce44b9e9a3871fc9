// mer-live dashboard: one WebSocket (/ws), frames drawn as they arrive. No libraries, nothing from the network
// but this server. window.merLive holds the state (the tests read it, and so can a curious user's console).
"use strict";

const COLORS = ["#4fb3ff", "#ffb347", "#ff5f7e", "#e53935", "#9c6ade", "#ffe066", "#5c7cfa", "#63e6be"];
const RECONNECT_MS = 1000;
const MIN_SPAN_S = 30;  // the history plot's shortest time axis
const state = { hello: null, frame: null, history: [], frames: 0, socket: null, connected: false, contribScale: 1.0 };
window.merLive = state;

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => { const e = document.createElement(tag); if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
const SHORT = { melodiousness: "melodious", articulation: "articulation", rhythm_complexity: "rhythm cx", rhythm_stability: "rhythm stab", dissonance: "dissonance", tonal_stability: "tonal stab", minorness: "minorness" };
const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v)) ? "-" : Number(v).toFixed(d);

function token() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  return $("token").value || fromHash || "";
}

// ----------------------------------------------------------------------------------------------- layout
function meter(parent, key, label, color) {
  const row = el("div", "meter"); row.dataset.key = key;
  const track = el("div", "track"); const fill = el("div", "fill"); fill.style.background = color; track.append(fill);
  row.append(el("span", "label", label), track, el("span", "num", "-"));
  parent.append(row);
}

function build(hello) {
  $("emotions").replaceChildren(); $("mids").replaceChildren(); $("explain").replaceChildren(); $("legend").replaceChildren();
  hello.emotions.forEach((name, i) => meter($("emotions"), "emotion." + name, name, COLORS[i % COLORS.length]));
  hello.mids.forEach((name) => meter($("mids"), "mid." + name, name.replace("_", " "), "#8fa3bf"));
  hello.emotions.forEach((name, e) => {
    const card = el("div", "card"); card.dataset.emotion = name;
    const title = el("div", "title"); title.append(el("span", "", name), el("span", "num sum", "-"));
    card.append(title);
    const rows = [["bias", "bias"], ...hello.mids.map((m) => [m, "mid"])];
    rows.forEach(([part, kind]) => {
      const row = el("div", "row" + (kind === "bias" ? " bias" : "")); row.dataset.part = part;
      const axis = el("div", "axis"); axis.append(el("div", "bar"));
      row.append(el("span", "", SHORT[part] || part), axis, el("span", "num", "-"));
      card.append(row);
    });
    $("explain").append(card);
  });
  buildControls(hello);
  $("token-row").hidden = !(hello.can_control && hello.control_needs_token);
  $("controls").hidden = !hello.can_control;
  $("control-result").textContent = hello.can_control ? "" : "read-only: this page shows, it does not control";
  const info = hello.info || {};
  $("source").textContent = [info.source, info.model && ("model " + info.model), info.version && ("v" + info.version)].filter(Boolean).join(" · ");
  legend();
}

function buildControls(hello) {
  const box = $("controls"); box.replaceChildren();
  for (const c of hello.controls) {
    if (c.types === "f") {
      const row = el("div", "control"); row.dataset.control = c.name; row.title = c.help;
      const slider = el("input"); slider.type = "range"; slider.min = c.min; slider.max = Math.min(c.max, c.name === "follow" ? 100 : c.max);
      slider.step = (c.max - c.min) > 50 ? 0.5 : 0.01;
      const number = el("input"); number.type = "number"; number.min = c.min; number.max = c.max; number.step = "any";
      slider.addEventListener("input", () => { number.value = slider.value; });
      slider.addEventListener("change", () => send(c.name, Number(slider.value)));
      number.addEventListener("change", () => send(c.name, Number(number.value)));
      row.append(el("span", "", c.name.replace("_", " ")), slider, number);
      box.append(row);
    } else if (c.name === "reset") {
      const b = el("button", "", "reset smoothing"); b.dataset.control = "reset"; b.title = c.help;
      b.addEventListener("click", () => send("reset", null)); box.append(b, document.createTextNode(" "));
    } else if (c.name === "mute") {
      const b = el("button", "", "mute"); b.dataset.control = "mute"; b.title = c.help;
      b.addEventListener("click", () => send("mute", state.frame && state.frame.muted ? 0 : 1)); box.append(b);
    }
  }
}

let controlId = 0;
function send(command, value) {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) return;
  state.socket.send(JSON.stringify({ type: "control", id: ++controlId, command, value, token: token() }));
}

function legend() {
  const names = $("history-kind").value === "mid" ? state.hello.mids : state.hello.emotions;
  $("legend").replaceChildren(...names.map((n, i) => { const s = el("span", "", n); s.style.setProperty("--c", seriesColor(i)); return s; }));
}
const seriesColor = (i) => $("history-kind").value === "mid" ? `hsl(${(i * 360) / 7}, 60%, 62%)` : COLORS[i % COLORS.length];

// ------------------------------------------------------------------------------------------------ frames
function setMeter(key, value) {
  const row = document.querySelector(`.meter[data-key="${key}"]`);
  if (!row) return;
  row.dataset.value = value;
  row.querySelector(".fill").style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
  row.querySelector(".num").textContent = fmt(value);
}

function drawFrame(f) {
  const hello = state.hello;
  $("time").textContent = fmt(f.t, 2); $("time").dataset.t = f.t;
  $("state").textContent = f.muted ? "muted" : f.state; $("state").className = "badge " + f.state;
  $("level").textContent = fmt(f.level, 1);
  $("levelfill").style.width = `${Math.max(0, Math.min(1, (f.level + 60) / 60)) * 100}%`;
  $("updates").textContent = f.updates; $("overflows").textContent = f.overflows; $("dropped").textContent = f.dropped;
  if (f.config) $("rate").textContent = f.config.rate;
  if (f.emotion) {
    hello.emotions.forEach((n, i) => setMeter("emotion." + n, f.emotion[i]));
    hello.mids.forEach((n, i) => setMeter("mid." + n, f.mid[i]));
    drawExplain(f);
  }
  if (f.config) syncControls(f.config);
  if (f.outputs) drawOutputs(f.outputs, f.t);
  $("clients").textContent = `${f.clients} web client(s); ${f.skipped} frame(s) skipped for slow clients`;
  const mute = document.querySelector('button[data-control="mute"]');
  if (mute) { mute.textContent = f.muted ? "unmute" : "mute"; mute.classList.toggle("active", !!f.muted); }
}

function drawExplain(f) {
  const hello = state.hello;
  let biggest = 0;
  f.contributions.forEach((row, e) => { biggest = Math.max(biggest, Math.abs(f.bias[e]), ...row.map(Math.abs)); });
  state.contribScale = Math.max(state.contribScale, Math.ceil(biggest * 2) / 2);  // grows only: bars stay comparable
  hello.emotions.forEach((name, e) => {
    const card = document.querySelector(`.card[data-emotion="${name}"]`);
    const sum = card.querySelector(".sum");
    sum.textContent = "= " + fmt(f.emotion_unclipped[e]); sum.dataset.value = f.emotion_unclipped[e];
    card.querySelectorAll(".row").forEach((row) => {
      const part = row.dataset.part;
      const value = part === "bias" ? f.bias[e] : f.contributions[e][hello.mids.indexOf(part)];
      row.dataset.value = value;
      const bar = row.querySelector(".bar"); const half = (Math.abs(value) / state.contribScale) * 50;
      bar.className = "bar " + (value >= 0 ? "pos" : "neg");
      bar.style.left = value >= 0 ? "50%" : `${50 - half}%`; bar.style.width = `${half}%`;
      row.querySelector(".num").textContent = (value >= 0 ? "+" : "") + fmt(value);
    });
  });
}

function syncControls(config) {
  document.querySelectorAll(".control").forEach((row) => {
    const value = config[row.dataset.control];
    if (value === undefined) return;
    const [slider, number] = row.querySelectorAll("input");
    if (document.activeElement !== slider && document.activeElement !== number) { slider.value = value; number.value = value; }
    row.dataset.value = value;
  });
}

const HEALTH_WINDOW_S = 5;  // an output that dropped an update in the last 5 s of stream time is "dropping"
const lastDrop = {};
function drawOutputs(outputs, t) {
  const body = $("outputs").querySelector("tbody");
  body.replaceChildren(...outputs.map((o) => {
    const before = lastDrop[o.name];
    if (!before || o.dropped > before.dropped) lastDrop[o.name] = { dropped: o.dropped, t: before || !o.dropped ? t : -Infinity };
    const dropping = o.dropped > 0 && t - lastDrop[o.name].t < HEALTH_WINDOW_S;
    const tr = el("tr"); tr.dataset.output = o.name; tr.dataset.health = dropping ? "dropping" : "ok";
    tr.append(el("td", "", o.name), el("td", dropping ? "bad" : "ok", dropping ? "dropping" : "ok"), el("td", "n", o.delivered),
      el("td", "n" + (o.dropped ? " bad" : ""), o.dropped), el("td", "n", o.queued === null || o.queued === undefined ? "-" : o.queued));
    return tr;
  }));
}

// ----------------------------------------------------------------------------------------------- history
function addHistory(entry) {
  state.history.push(entry);
  const span = state.hello ? state.hello.history_s : 300;
  while (state.history.length && entry[0] - state.history[0][0] > span) state.history.shift();
}

function drawHistory() {
  const canvas = $("history"); const ctx = canvas.getContext("2d");
  const width = canvas.width = canvas.clientWidth * devicePixelRatio; const height = canvas.height = canvas.clientHeight * devicePixelRatio;
  ctx.clearRect(0, 0, width, height);
  const h = state.history; if (!state.hello || h.length < 2) return;
  const end = h[h.length - 1][0];
  const span = Math.min(state.hello.history_s, Math.max(MIN_SPAN_S, end - h[0][0]));  // fills the plot from the start
  const start = end - span;
  const x = (t) => ((t - start) / span) * width; const y = (v) => height - v * height;
  ctx.strokeStyle = "#2a313b"; ctx.lineWidth = 1;
  for (const v of [0.25, 0.5, 0.75]) { ctx.beginPath(); ctx.moveTo(0, y(v)); ctx.lineTo(width, y(v)); ctx.stroke(); }
  const which = $("history-kind").value === "mid" ? 2 : 1; const count = h[0][which].length;
  ctx.lineWidth = 1.5 * devicePixelRatio;
  for (let i = 0; i < count; i++) {
    ctx.strokeStyle = seriesColor(i); ctx.beginPath();
    h.forEach((entry, k) => { const px = x(entry[0]); const py = y(entry[which][i]); k ? ctx.lineTo(px, py) : ctx.moveTo(px, py); });
    ctx.stroke();
  }
  $("history-span").textContent = `last ${Math.round(Math.min(span, end - h[0][0]))} s (keeps ${state.hello.history_s} s)`;
}

let historyDirty = false;
function scheduleHistory() { if (!historyDirty) { historyDirty = true; requestAnimationFrame(() => { historyDirty = false; drawHistory(); }); } }

// -------------------------------------------------------------------------------------------- connection
function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  state.socket = socket;
  socket.onopen = () => { state.connected = true; $("connection").textContent = "live"; $("connection").className = "badge on"; };
  socket.onclose = () => {
    state.connected = false; $("connection").textContent = "disconnected"; $("connection").className = "badge off";
    setTimeout(connect, RECONNECT_MS);
  };
  socket.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "hello") { state.hello = m; build(m); }
    else if (m.type === "history") { state.history = m.entries; scheduleHistory(); }
    else if (m.type === "frame") {
      state.frame = m; state.frames++;
      if (m.update && m.emotion) addHistory([m.t, m.emotion.map((v) => +v.toFixed(4)), m.mid.map((v) => +v.toFixed(4))]);
      drawFrame(m); scheduleHistory();
    } else if (m.type === "control_result") {
      state.lastControl = m;
      $("control-result").textContent = `${m.command}: ${m.message}`;
    }
  };
}

$("history-kind").addEventListener("change", () => { legend(); drawHistory(); });
window.addEventListener("resize", drawHistory);
connect();

// convoflow's page: chat over POST /run/stream, sessions, history and a status strip fed by /health.

const KEY_STORAGE = "convoflow.apiKey";
const SESSION_STORAGE = "convoflow.sessionId";
const HEALTH_EVERY_MS = 10000;
const PERSISTED_POLL_MS = 1000;
const PERSISTED_POLL_LIMIT = 60;
const HISTORY_LIMIT = 50;
const SESSIONS_LIMIT = 50;

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// --- talking to the API ------------------------------------------------------------------------

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (a proxy's page, say): the status line is all there is
  }
  const message = body?.message || response.statusText || "no explanation given";
  return new ApiError(response.status, body?.error || "http_error", message);
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...authHeaders(), ...options.headers } });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

// Error codes of JSON answers and of the stream's `error` event, in words people can act on.
function readable(error) {
  if (!(error instanceof ApiError)) {
    return `The API could not be reached (${error.message}). Is it running?`;
  }
  if (error.status === 401 || error.code === "unauthorized") {
    return "This service requires an API key: the key is missing or was refused. Enter a valid key above and press Save key.";
  }
  if (error.code === "model_unavailable" || error.status === 502) {
    return `The language model is not answering: ${error.message}`;
  }
  if (error.code === "broker_unavailable" || error.code === "redis_unavailable" || error.status === 503) {
    return `The service cannot reach its message broker or Redis right now: ${error.message}. Try again in a moment.`;
  }
  if (error.code === "task_timeout" || error.status === 504) {
    return `No worker answered in time: ${error.message}. Are the Celery workers running?`;
  }
  return error.status ? `${error.message} (HTTP ${error.status})` : error.message;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

// Server-sent events from a fetch body: EventSource cannot POST, so the stream is parsed here.
async function* readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) yield event;
    }
  }
}

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // keep-alive comments
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { event: name, data: JSON.parse(data.join("\n")) } : null;
}

// --- the conversation --------------------------------------------------------------------------

let sessionId = localStorage.getItem(SESSION_STORAGE) || newSessionId();
let persistedPoll = null;
let turnsGeneration = 0; // bumped by every message sent, so a slower history load does not replace its turn

function newSessionId() {
  // Not crypto.randomUUID: it exists only on https or localhost pages.
  return `web-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

function badge(kind, text, title) {
  const element = document.createElement("span");
  element.className = `badge ${kind}`;
  element.textContent = text;
  element.title = title;
  return element;
}

function markPending(item) {
  if (!item.querySelector(".badge.pending")) {
    item.append(badge("pending", "not saved yet", "answered, waiting for its database write"));
  }
}

function renderTurn(turn) {
  const item = document.createElement("li");
  item.className = "turn";
  if (turn.turn_id) item.dataset.turnId = turn.turn_id;
  const user = document.createElement("p");
  user.className = "bubble user";
  user.textContent = turn.user_input;
  const answer = document.createElement("p");
  answer.className = "bubble assistant";
  answer.textContent = turn.ai_response;
  item.append(user, answer);
  if (turn.status === "interrupted") {
    item.append(badge("interrupted", "interrupted", "the answer stopped before it was complete"));
  }
  if (turn.persisted === false) markPending(item);
  return item;
}

async function loadHistory() {
  const requested = sessionId;
  const generation = turnsGeneration;
  const page = await api(`/history?session_id=${encodeURIComponent(requested)}&limit=${HISTORY_LIMIT}`);
  // Too late: another session was opened, or a message was sent meanwhile (its turn must not be wiped).
  if (requested !== sessionId || generation !== turnsGeneration) return;
  const turns = $("turns");
  turns.replaceChildren(...page.history.slice().reverse().map(renderTurn));
  turns.scrollTop = turns.scrollHeight;
  if (page.history.some((turn) => turn.persisted === false)) watchPersistence();
}

// Turns answered but not stored yet keep their badge until /history says they are persisted.
function watchPersistence(attempt = 0) {
  if (persistedPoll !== null && attempt === 0) return;
  persistedPoll = setTimeout(async () => {
    persistedPoll = null;
    const watched = sessionId;
    let page;
    try {
      page = await api(`/history?session_id=${encodeURIComponent(watched)}&limit=${HISTORY_LIMIT}`);
    } catch {
      page = null; // the next poll tries again; the badge stays, which is the truth we know
    }
    if (watched !== sessionId) return;
    for (const turn of page?.history ?? []) {
      if (!turn.persisted) continue;
      const item = document.querySelector(`.turn[data-turn-id="${CSS.escape(turn.turn_id)}"]`);
      item?.querySelector(".badge.pending")?.remove();
    }
    if (document.querySelector(".badge.pending")) {
      if (attempt + 1 < PERSISTED_POLL_LIMIT) watchPersistence(attempt + 1);
    } else {
      loadSessions().catch((error) => showError(readable(error)));
    }
  }, PERSISTED_POLL_MS);
}

async function send(text) {
  clearError();
  turnsGeneration += 1;
  const item = renderTurn({ user_input: text, ai_response: "" });
  const answer = item.querySelector(".assistant");
  const turns = $("turns");
  turns.append(item);
  turns.setAttribute("aria-busy", "true"); // screen readers hear the answer once, when it is complete
  $("send").disabled = true;
  try {
    const response = await fetch("/run/stream", {
      method: "POST",
      headers: { ...authHeaders(), "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ user_input: text, session_id: sessionId }),
    });
    if (!response.ok) throw await errorFrom(response);
    let finished = null;
    for await (const { event, data } of readEvents(response.body)) {
      if (event === "token") {
        answer.textContent += data.delta;
        turns.scrollTop = turns.scrollHeight;
      } else if (event === "done") {
        finished = data;
      } else if (event === "error") {
        throw new ApiError(0, data.error, data.message);
      }
    }
    if (!finished) throw new ApiError(0, "stream_ended", "the answer stream ended before the answer was complete");
    answer.textContent = finished.answer;
    item.dataset.turnId = finished.turn_id;
    markPending(item);
    watchPersistence();
    return true;
  } catch (error) {
    item.remove();
    showError(readable(error));
    return false;
  } finally {
    turns.removeAttribute("aria-busy");
    $("send").disabled = false;
  }
}

// --- sessions ----------------------------------------------------------------------------------

function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

function renderSession(session) {
  const item = document.createElement("li");
  item.className = "session";
  const open = document.createElement("button");
  open.type = "button";
  open.className = "open";
  open.setAttribute("aria-current", String(session.session_id === sessionId));
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = session.turn_count === undefined
    ? "new, nothing stored yet"
    : `${session.turn_count} turn${session.turn_count === 1 ? "" : "s"} · ${formatTime(session.last_activity)}`;
  open.append(session.session_id, meta);
  open.addEventListener("click", () => switchTo(session.session_id));
  item.append(open);
  if (session.turn_count !== undefined) {
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "delete";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete session ${session.session_id}`);
    remove.addEventListener("click", () => deleteSession(session.session_id));
    item.append(remove);
  }
  return item;
}

async function loadSessions() {
  const page = await api(`/sessions?limit=${SESSIONS_LIMIT}`);
  const sessions = page.sessions.slice();
  if (!sessions.some((session) => session.session_id === sessionId)) {
    sessions.unshift({ session_id: sessionId });
  }
  $("sessions").replaceChildren(...sessions.map(renderSession));
  $("sessions-empty").hidden = page.sessions.length > 0;
}

function showSessionId() {
  $("session-id").textContent = sessionId;
  localStorage.setItem(SESSION_STORAGE, sessionId);
}

async function switchTo(id) {
  sessionId = id;
  showSessionId();
  $("turns").replaceChildren();
  await refresh();
  $("message").focus();
}

async function deleteSession(id) {
  if (!window.confirm(`Delete session ${id} and all its turns?`)) return;
  clearError();
  try {
    await api(`/sessions/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (error) {
    showError(readable(error));
    return;
  }
  if (id === sessionId) await switchTo(newSessionId());
  else await refresh();
}

async function refresh() {
  clearError();
  const results = await Promise.allSettled([loadSessions(), loadHistory()]);
  const failed = results.find((result) => result.status === "rejected");
  if (failed) showError(readable(failed.reason));
}

// --- status strip ------------------------------------------------------------------------------

function workerCount(check) {
  if (check.data && Object.keys(check.data).length) {
    return new Set(Object.values(check.data).flat()).size;
  }
  const match = /^(\d+) worker/.exec(check.detail || "");
  return match ? Number(match[1]) : null;
}

function queueDepth(check) {
  if (!check?.data) return null;
  const depths = Object.values(check.data).map((queue) => queue.depth).filter(Number.isFinite);
  return depths.length ? depths.reduce((sum, depth) => sum + depth, 0) : null;
}

function statusItem(state, text, title) {
  const item = document.createElement("li");
  item.className = `check ${state}`;
  item.textContent = text;
  if (title) item.title = title;
  return item;
}

async function loadHealth() {
  let health;
  try {
    const response = await fetch("/health", { headers: authHeaders() });
    health = await response.json();
  } catch (error) {
    $("status-checks").replaceChildren(statusItem("bad", "API: unreachable", error.message));
    return;
  }
  const checks = health.checks || {};
  const items = [];
  for (const [name, label] of [["broker", "Broker"], ["database", "Database"], ["workers", "Workers"]]) {
    const check = checks[name];
    if (!check) {
      items.push(statusItem("unknown", `${label}: not reported`));
      continue;
    }
    const count = name === "workers" && check.ok ? workerCount(check) : null;
    const word = check.ok ? (count === null ? "ok" : `${count} up`) : "down";
    items.push(statusItem(check.ok ? "ok" : "bad", `${label}: ${word}`, check.detail));
  }
  const depth = queueDepth(checks.queues);
  items.push(
    depth === null
      ? statusItem("unknown", "Queue depth: n/a", "this API's /health does not report queue depths")
      : statusItem(checks.queues.ok ? "ok" : "bad", `Queue depth: ${depth}`, checks.queues.detail),
  );
  $("status-checks").replaceChildren(...items);
}

async function loadConfig() {
  let flowerUrl = "";
  try {
    const response = await fetch("/ui-config");
    if (response.ok) flowerUrl = (await response.json()).flower_url || "";
  } catch {
    // the default below still points somewhere sensible
  }
  $("flower-link").href = flowerUrl || `${location.protocol}//${location.hostname}:5555`;
}

// --- wiring ------------------------------------------------------------------------------------

function start() {
  $("api-key").value = apiKey();
  showSessionId();

  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
    await Promise.all([refresh(), loadHealth()]);
    $("message").focus();
  });

  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = $("message");
    const text = box.value.trim();
    if (!text || $("send").disabled) return;
    box.value = "";
    if (!(await send(text))) box.value = text; // keep it for another try
  });

  $("message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });

  $("new-session").addEventListener("click", () => switchTo(newSessionId()));

  loadConfig();
  loadHealth();
  setInterval(loadHealth, HEALTH_EVERY_MS);
  refresh();
}

start();

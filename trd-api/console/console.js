// TRD operator console. One script for every page: the path says which page to draw, and every
// figure comes from the JSON routes any client uses, with the credential the operator signed in
// with (kept for the browser tab only, in sessionStorage).

const UI = "/trd/ui";
const POLL_MS = 2000;
const LOW_SCORE = 60;
const FILE_FORMATS = ["json", "csv", "txt", "vtt", "srt", "trs", "extended_trs"];
const BATCH_FORMATS = ["json", "json-array", "csv", "txt", "vtt", "srt", "trs", "extended_trs"];
const STAGES = [
  ["normalization", "Normalization"],
  ["diarization", "Diarization"],
  ["recognition", "Recognition"],
  ["progress", "Overall"],
];
const CONTROLS = ["IDLE", "RUNNING", "PAUSED", "FINISHED", "FAILED"];
const PALETTE = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#be185d"];

const main = document.getElementById("main");
let me = null;

// ---------------------------------------------------------------------------------------------
// Credentials and requests

const credential = {
  get: () => sessionStorage.getItem("trd.credential"),
  set: (value) => sessionStorage.setItem("trd.credential", value),
  clear: () => sessionStorage.removeItem("trd.credential"),
};

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function toSignIn() {
  const next = location.pathname + location.search;
  location.assign(`${UI}/sign-in?next=${encodeURIComponent(next)}`);
}

async function request(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = credential.get();
  if (key) headers.set("Authorization", `Bearer ${key}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    credential.clear();
    toSignIn();
    throw new ApiError(401, "signed out");
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      message = body?.error?.message || body?.message || message;
    } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, message);
  }
  return response;
}

const getJson = async (path) => (await request(path)).json();

// ---------------------------------------------------------------------------------------------
// Small helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c !== undefined && c !== null) node.append(c);
  }
  return node;
}

const escapeHtml = (s) => String(s ?? "").replace(/[&<>"']/g, (c) =>
  ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

function clock(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  const s = Math.max(0, seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const mm = String(m).padStart(2, "0"), ss = sec.toFixed(1).padStart(4, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${m}:${ss}`;
}

function duration(seconds) {
  if (!seconds || seconds <= 0) return "0 s";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

const percent = (x) => `${Math.round((x || 0) * 100)} %`;

function page(title, ...children) {
  document.title = `${title} · TRD console`;
  main.replaceChildren(el("h1", { text: title }), ...children.filter((c) => c != null));
}

function fail(error) {
  if (error instanceof ApiError && error.status === 401) return;
  main.append(el("p", { class: "error", role: "alert", text: error.message }));
}

function confirmAction(text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

async function download(path, fallbackName) {
  const response = await request(path);
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const named = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const a = el("a", { href: URL.createObjectURL(blob), download: named ? decodeURIComponent(named[1]) : fallbackName });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 10000);
}

// ---------------------------------------------------------------------------------------------
// Sign-in

function signInPage() {
  const next = new URLSearchParams(location.search).get("next") || UI;
  const safeNext = next.startsWith(UI) ? next : UI;
  const message = el("p", { class: "error", role: "alert", id: "sign-in-error" });
  const keyForm = el("form", { class: "stack", id: "key-form" },
    el("label", {}, "API key", el("input", { name: "key", id: "key", type: "password", autocomplete: "off", required: true })),
    el("button", { class: "primary", type: "submit", id: "key-submit" }, "Sign in with the key"));
  const userForm = el("form", { class: "stack", id: "user-form" },
    el("label", {}, "User", el("input", { name: "username", id: "username", autocomplete: "username", required: true })),
    el("label", {}, "Password", el("input", { name: "password", id: "password", type: "password", autocomplete: "current-password", required: true })),
    el("button", { type: "submit" }, "Sign in as the user"));
  async function accept(secret) {
    credential.set(secret);
    try {
      await getJson("/trd/console/me");
      location.assign(safeNext);
    } catch (e) {
      credential.clear();
      message.textContent = e.message;
    }
  }
  keyForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    accept(keyForm.key.value.trim());
  });
  userForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const response = await fetch("/token", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: userForm.username.value, password: userForm.password.value }),
    });
    if (!response.ok) {
      message.textContent = response.status === 401 ? "Wrong user name or password." : `Sign-in failed: ${response.status}`;
      return;
    }
    accept((await response.json()).access_token);
  });
  page("Sign in", message, el("div", { class: "grid" },
    el("section", { class: "card" }, el("h2", { text: "API key" }), keyForm),
    el("section", { class: "card" }, el("h2", { text: "User" }), userForm)));
  document.getElementById("key").focus();
}

// ---------------------------------------------------------------------------------------------
// Batches: cards with live bars

function barsOf(status) {
  return el("div", { class: "bars" }, STAGES.map(([key, label]) => [
    el("span", { text: label }),
    el("progress", { max: "1", value: String(status[key] ?? 0), dataset: { stage: key }, "aria-label": `${label} progress` }),
    el("span", { class: "pct", dataset: { pct: key }, text: percent(status[key]) }),
  ]));
}

function updateBars(card, status) {
  for (const [key] of STAGES) {
    const bar = card.querySelector(`progress[data-stage="${key}"]`);
    if (bar) bar.value = status[key] ?? 0;
    const pct = card.querySelector(`[data-pct="${key}"]`);
    if (pct) pct.textContent = percent(status[key]);
  }
}

function figuresOf(status) {
  const byControl = status.accounted_control || {};
  return el("div", { class: "figures" },
    el("span", { dataset: { figure: "files" }, text: `${status.total_files} files` }),
    el("span", { dataset: { figure: "audio" }, text: `${(status.total_audio / 3600).toFixed(2)} h audio` }),
    el("span", { dataset: { figure: "eta" }, text: `ETA ${status.ETA > 0 ? duration(status.ETA) : "–"}` }),
    CONTROLS.filter((c) => byControl[c]).map((c) =>
      el("span", { class: `chip c-${c}`, dataset: { control: c }, text: `${c} ${byControl[c].files}` })));
}

function actionsOf(batch, refresh) {
  if (!me?.may_operate) return null;
  const act = async (action, needsConfirm) => {
    if (needsConfirm && !(await confirmAction(needsConfirm))) return;
    try {
      if (action === "delete") {
        await request(`/trd/audiofile/delete/batch/${encodeURIComponent(batch)}`, { method: "DELETE" });
      } else {
        await request(`/trd/transcription/${action}/batch/${encodeURIComponent(batch)}`);
      }
      refresh(`${action} done`);
    } catch (e) {
      refresh(`${action} failed: ${e.message}`, true);
    }
  };
  return el("div", { class: "actions" },
    el("button", { class: "primary", dataset: { action: "start" }, onclick: () => act("start") }, "Start"),
    el("button", { dataset: { action: "stop" }, onclick: () => act("stop") }, "Stop"),
    el("button", { class: "danger", dataset: { action: "reset" }, onclick: () => act("reset", `Reset the unfinished files of “${batch}”? Their transcription data is deleted and they start over when started again.`) }, "Reset"),
    el("button", { class: "danger", dataset: { action: "delete" }, onclick: () => act("delete", `Delete the records of “${batch}” and their transcripts? The audio stays in the work directory.`) }, "Delete records"));
}

// A button that would change nothing is disabled: start needs IDLE or PAUSED files, stop
// RUNNING ones, reset files that did not finish (PAUSED or FAILED).
function updateActions(card, status) {
  const has = (c) => (status.accounted_control?.[c]?.files || 0) > 0;
  const enable = { start: has("IDLE") || has("PAUSED"), stop: has("RUNNING"), reset: has("PAUSED") || has("FAILED") };
  for (const [action, on] of Object.entries(enable)) {
    const button = card.querySelector(`button[data-action="${action}"]`);
    if (button) button.disabled = !on;
  }
}

async function failuresOf(batch) {
  const rows = await getJson(`/trd/console/batch/${encodeURIComponent(batch)}/files`);
  const reasons = new Map();
  for (const r of rows) if (r.control === "FAILED") reasons.set(r.error || "no reason", (reasons.get(r.error || "no reason") || 0) + 1);
  return [...reasons.entries()].slice(0, 5).map(([reason, n]) => el("li", { text: `${n} × ${reason}` }));
}

async function batchesPage() {
  const list = el("div", { class: "grid", id: "batches" });
  const note = el("p", { class: "muted", id: "batches-note", role: "status" });
  page("Batches", note, list);
  const cards = new Map();
  async function poll() {
    const batches = await getJson("/trd/console/batches");
    note.textContent = batches.length ? "" : "No batches yet: drop audio into a folder of the work directory, or upload.";
    const statuses = await Promise.all(batches.map((b) =>
      getJson(`/trd/transcription/status/batch/${encodeURIComponent(b.name)}`).catch(() => null)));
    const seen = new Set();
    for (const [i, b] of batches.entries()) {
      seen.add(b.name);
      const status = statuses[i];
      // A batch being reset has no records for a moment: its card waits for the next figures.
      if (!status) continue;
      let card = cards.get(b.name);
      const failures = b.by_control.FAILED ? await failuresOf(b.name).catch(() => []) : [];
      if (!card) {
        const message = el("p", { class: "muted", role: "status" });
        card = el("section", { class: "card", dataset: { batch: b.name } },
          el("h2", {}, el("a", { href: `${UI}/batch/${encodeURIComponent(b.name)}` }, b.name)),
          barsOf(status), el("div", { class: "figures-slot" }), el("ul", { class: "failures" }),
          actionsOf(b.name, (text, bad) => { message.textContent = text; message.className = bad ? "error" : "muted"; tick(); }),
          message);
        cards.set(b.name, card);
        list.append(card);
      }
      updateBars(card, status);
      updateActions(card, status);
      card.querySelector(".figures-slot").replaceChildren(figuresOf(status));
      card.querySelector(".failures").replaceChildren(...failures);
    }
    for (const [name, card] of cards) if (!seen.has(name)) { card.remove(); cards.delete(name); }
    document.documentElement.dataset.updated = String(Date.now());
  }
  let timer = null;
  async function tick() {
    clearTimeout(timer);
    try { await poll(); } catch (e) { fail(e); }
    timer = setTimeout(tick, POLL_MS);
  }
  await tick();
}

// ---------------------------------------------------------------------------------------------
// Upload: files or folders into a new or existing batch, one progress bar per file

function uploadOne(file, batch, row) {
  return new Promise((resolve) => {
    const form = new FormData();
    if (batch) form.append("batch", batch);
    form.append("files", file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/trd/audiofile/upload");
    xhr.setRequestHeader("Authorization", `Bearer ${credential.get()}`);
    const bar = row.querySelector("progress"), state = row.querySelector(".state");
    xhr.upload.onprogress = (ev) => { if (ev.lengthComputable) bar.value = ev.loaded / ev.total; };
    xhr.onload = () => {
      if (xhr.status === 200) {
        bar.value = 1;
        state.textContent = "uploaded";
        row.dataset.state = "uploaded";
      } else {
        let reason = `${xhr.status}`;
        try { reason = JSON.parse(xhr.responseText).error.message; } catch (_) { /* not JSON */ }
        state.textContent = reason;
        state.className = "state error";
        row.dataset.state = "refused";
      }
      resolve(xhr.status === 200);
    };
    xhr.onerror = () => {
      state.textContent = "connection lost";
      state.className = "state error";
      row.dataset.state = "refused";
      resolve(false);
    };
    xhr.send(form);
  });
}

async function filesOfDrop(items) {
  const out = [];
  async function walk(entry) {
    if (entry.isFile) {
      out.push(await new Promise((ok, no) => entry.file(ok, no)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, no) => reader.readEntries(ok, no));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  }
  for (const item of items) {
    const entry = item.webkitGetAsEntry?.();
    if (entry) await walk(entry);
    else if (item.getAsFile?.()) out.push(item.getAsFile());
  }
  return out;
}

async function uploadPage() {
  if (!me.may_operate) {
    page("Upload", el("p", { class: "error", text: `${me.label} may not upload (it needs the operate scope).` }));
    return;
  }
  const batches = await getJson("/trd/console/batches");
  const preset = new URLSearchParams(location.search).get("batch") || "";
  const batchInput = el("input", { id: "batch", name: "batch", list: "known-batches", value: preset, placeholder: "a new or existing batch", pattern: "[A-Za-z0-9._\\-]+", required: true });
  const fileInput = el("input", { id: "files", type: "file", multiple: true, accept: "audio/*,video/*,.wav,.mp3,.flac,.ogg,.opus,.m4a,.amr,.wma,.aac,.webm" });
  const list = el("ul", { class: "uploads", id: "uploads" });
  const summary = el("p", { role: "status", id: "upload-summary" });
  const drop = el("div", { class: "drop", id: "drop", tabindex: "0" }, "Drop files or a folder here, or ", el("label", { for: "files", class: "button" }, "choose files"), fileInput);
  fileInput.hidden = true;
  fileInput.style.display = "none";
  async function send(files) {
    const batch = batchInput.value.trim();
    if (!batchInput.checkValidity()) {
      summary.textContent = "Name the batch first: letters, digits, dot, dash and underscore.";
      summary.className = "error";
      batchInput.focus();
      return;
    }
    const rows = files.map((f) => {
      const row = el("li", { dataset: { file: f.name } },
        el("span", { class: "name", text: f.name }), el("progress", { max: "1", value: "0" }), el("span", { class: "state", text: "waiting" }));
      list.append(row);
      return [f, row];
    });
    summary.className = "";
    summary.textContent = `Uploading ${files.length} file(s)…`;
    let ok = 0;
    // Two at a time: each gets bandwidth, and the server's upload slots stay free for others.
    const queue = [...rows];
    await Promise.all([0, 1].map(async () => {
      while (queue.length) {
        const [file, row] = queue.shift();
        row.querySelector(".state").textContent = "uploading";
        if (await uploadOne(file, batch, row)) ok++;
      }
    }));
    summary.replaceChildren(`${ok} of ${files.length} uploaded into `, el("a", { href: `${UI}/batch/${encodeURIComponent(batch)}` }, batch), ".");
    summary.dataset.done = String(ok);
  }
  fileInput.addEventListener("change", () => { send([...fileInput.files]); fileInput.value = ""; });
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    send(await filesOfDrop([...ev.dataTransfer.items]));
  });
  drop.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); fileInput.click(); } });
  page("Upload",
    el("form", { class: "stack", onsubmit: (ev) => ev.preventDefault() },
      el("label", {}, "Batch", batchInput),
      el("datalist", { id: "known-batches" }, batches.map((b) => el("option", { value: b.name })))),
    drop, summary, list);
}

// ---------------------------------------------------------------------------------------------
// A batch: its figures, actions, downloads and a sortable, filterable table of its files

const COLUMNS = [
  ["filename", "File", (r) => r.filename],
  ["control", "Control", (r) => r.control],
  ["status", "Status", (r) => r.status],
  ["duration", "Duration", (r) => r.duration ?? -1],
  ["speakers", "Speakers", (r) => r.speakers],
  ["speech_ratio", "Speech", (r) => r.speech_ratio ?? -1],
  ["score", "Score", (r) => r.score ?? -1],
];

function rowHtml(r) {
  const link = `${UI}/file/${r.id}`;
  const problem = r.error ? `<span class="error">${escapeHtml(r.error)}</span>` : (r.warnings ? `${r.warnings} warning(s)` : "");
  return `<tr data-id="${r.id}"><td class="name"><a href="${link}">${escapeHtml(r.filename)}</a></td>`
    + `<td><span class="chip c-${r.control}">${r.control}</span></td><td>${r.status}</td>`
    + `<td class="num">${r.duration == null ? "–" : clock(r.duration)}</td>`
    + `<td class="num">${r.speakers || "–"}</td>`
    + `<td class="num">${r.speech_ratio == null ? "–" : percent(r.speech_ratio)}</td>`
    + `<td class="num">${r.score == null ? "–" : r.score.toFixed(0)}</td><td>${problem}</td></tr>`;
}

async function batchPage(batch) {
  const encoded = encodeURIComponent(batch);
  const [status, rows0] = await Promise.all([
    getJson(`/trd/transcription/status/batch/${encoded}`),
    getJson(`/trd/console/batch/${encoded}/files`),
  ]);
  let rows = rows0;
  const summary = el("section", { class: "card", dataset: { batch } }, barsOf(status), el("div", { class: "figures-slot" }, figuresOf(status)));
  const message = el("p", { class: "muted", role: "status", id: "batch-message" });
  const actions = actionsOf(batch, (text, bad) => { message.textContent = text; message.className = bad ? "error" : "muted"; refresh(); });
  if (actions) summary.append(actions, el("a", { class: "button", href: `${UI}/upload?batch=${encoded}` }, "Upload into this batch"));
  updateActions(summary, status);
  summary.append(message);
  const downloads = el("div", { class: "downloads", id: "batch-downloads" }, "Download the batch (ZIP): ",
    BATCH_FORMATS.map((f) => el("button", { dataset: { format: f }, onclick: () => download(`/trd/transcription/result/batch/${encoded}?format=${f}`, `${batch}-${f}.zip`).catch(fail) }, f)));
  const filter = el("input", { id: "filter", type: "search", placeholder: "file name contains…", "aria-label": "Filter by file name" });
  const controlFilter = el("select", { id: "control-filter", "aria-label": "Filter by control" },
    el("option", { value: "" }, "every control"), CONTROLS.map((c) => el("option", { value: c }, c)));
  let sortKey = "filename", ascending = true;
  const head = el("tr", {}, COLUMNS.map(([key, label]) =>
    el("th", { scope: "col", dataset: { key }, "aria-sort": key === sortKey ? "ascending" : "none" },
      el("button", { onclick: () => { ascending = sortKey === key ? !ascending : true; sortKey = key; draw(); } }, label))),
    el("th", { scope: "col", text: "Problem" }));
  const body = el("tbody");
  const count = el("span", { class: "muted", id: "row-count" });
  function draw() {
    const needle = filter.value.trim().toLowerCase(), control = controlFilter.value;
    const value = COLUMNS.find(([k]) => k === sortKey)[2];
    const shown = rows.filter((r) => (!needle || r.filename.toLowerCase().includes(needle)) && (!control || r.control === control));
    shown.sort((a, b) => {
      const x = value(a), y = value(b);
      const order = typeof x === "string" ? x.localeCompare(y) : x - y;
      return ascending ? order : -order;
    });
    body.innerHTML = shown.map(rowHtml).join("");
    for (const th of head.querySelectorAll("th[data-key]")) {
      th.setAttribute("aria-sort", th.dataset.key === sortKey ? (ascending ? "ascending" : "descending") : "none");
    }
    count.textContent = `${shown.length} of ${rows.length} files`;
  }
  filter.addEventListener("input", draw);
  controlFilter.addEventListener("change", draw);
  page(batch, summary, downloads,
    el("h2", { text: "Files" }),
    el("div", { class: "table-tools" }, filter, controlFilter, count),
    el("div", { class: "scroll" }, el("table", { id: "files" }, el("thead", {}, head), body)));
  draw();
  document.documentElement.dataset.rendered = String(performance.now());
  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    try {
      const [s, r] = await Promise.all([
        getJson(`/trd/transcription/status/batch/${encoded}`),
        getJson(`/trd/console/batch/${encoded}/files`),
      ]);
      updateBars(summary, s);
      updateActions(summary, s);
      summary.querySelector(".figures-slot").replaceChildren(figuresOf(s));
      rows = r;
      draw();
    } catch (e) { fail(e); }
    if (rows.some((r) => r.control === "RUNNING")) timer = setTimeout(refresh, POLL_MS);
  }
  if (rows.some((r) => r.control === "RUNNING")) timer = setTimeout(refresh, POLL_MS);
}

// ---------------------------------------------------------------------------------------------
// A file: waveform, speaker timeline, conversation, the current word followed as it plays

// The media type of a recording by its file name's extension (as the service sends it);
// null when unknown.
function mediaTypeOf(filename) {
  const extension = (filename.split(".").pop() || "").toLowerCase();
  return {
    wav: "audio/wav", wave: "audio/wav", mp3: "audio/mpeg", flac: "audio/flac", ogg: "audio/ogg",
    oga: "audio/ogg", opus: "audio/ogg; codecs=opus", m4a: "audio/mp4", mp4: "audio/mp4",
    aac: "audio/mp4", webm: "audio/webm",
  }[extension] ?? null;
}

function colourOf(key, keys) {
  return PALETTE[keys.indexOf(key) % PALETTE.length];
}

async function filePage(id) {
  const result = await getJson(`/trd/transcription/result/audiofile/${encodeURIComponent(id)}`);
  const segments = result.segments || [];
  const lanes = [...new Set(segments.map((s) => `${s.channel}:${s.speaker}`))].sort();
  const laneName = (key) => {
    const [channel, speaker] = key.split(":");
    const channels = (result.audioChannels || []).length;
    const who = /^\d+$/.test(speaker) ? `speaker ${speaker}` : speaker;
    return channels > 1 ? `channel ${channel} · ${who}` : who;
  };
  const total = (result.audioChannels?.[0]?.duration) || Math.max(0, ...segments.map((s) => s.end)) || 1;
  // The original recording if this browser plays its format, else the WAV copy the service
  // makes (AIFF, ADPCM WAV…); a recording that fails to play anyway falls back to the copy.
  const audioUrl = (format) => `/trd/audiofile/audio/${encodeURIComponent(id)}?format=${format}&auth_token=${encodeURIComponent(credential.get())}`;
  const probe = document.createElement("audio");
  const mime = mediaTypeOf(result.filename);
  const plays = mime !== null && probe.canPlayType(mime) !== "";
  const audio = el("audio", { id: "audio", controls: true, preload: "metadata", src: audioUrl(plays ? "original" : "wav"),
    dataset: plays ? {} : { copy: "wav" } });
  // A recording the browser cannot play (AIFF, ADPCM WAV…) is played from a WAV copy.
  const copyNote = "This browser cannot play the recording's format: playing a WAV copy made by the service.";
  const playerNote = el("p", { class: "notice", id: "player-note", hidden: plays, text: copyNote });
  audio.addEventListener("error", () => {
    audio.dataset.loadError = `${audio.error?.code}: ${audio.error?.message || ""}`;
    // Only a source the browser cannot read at all is replaced by the copy: an error once the
    // audio is loaded (Firefox reports a missing sound device that way) leaves it playing.
    const unreadable = audio.error?.code === MediaError.MEDIA_ERR_SRC_NOT_SUPPORTED
      || audio.readyState === HTMLMediaElement.HAVE_NOTHING;
    if (audio.dataset.copy || !unreadable) return;
    audio.dataset.copy = "wav";
    playerNote.hidden = false;
    audio.src = audioUrl("wav");
  });
  const words = [];
  const segNodes = [];
  const transcript = el("div", { class: "transcript", id: "transcript", "aria-label": "Transcript" });
  segments.forEach((s, i) => {
    const key = `${s.channel}:${s.speaker}`;
    const colour = colourOf(key, lanes);
    const node = el("article", { class: `seg${lanes.indexOf(key) % 2 ? " right" : ""}`, style: `--c:${colour}`, dataset: { start: s.start, end: s.end, index: i } },
      el("header", {},
        el("button", { class: "play-seg", title: "Play from here", onclick: () => seek(s.start, true) }, `▶ ${clock(s.start)}–${clock(s.end)}`),
        ` ${laneName(key)}`, s.status !== "RECOGNIZED" ? ` · ${s.status}${s.reason ? `: ${s.reason}` : ""}` : ""));
    const line = el("p", { class: "words" });
    if (s.words?.length) {
      for (const w of s.words) {
        const span = el("span", { class: `w${w.score < LOW_SCORE ? " low" : ""}`, dataset: { start: w.start, end: w.end, score: w.score },
          title: `${clock(w.start)} · confidence ${w.score}` }, w.text);
        line.append(span, " ");
        words.push({ start: w.start, end: w.end, node: span, segment: i });
      }
    } else {
      line.textContent = s.text || "";
    }
    node.append(line);
    transcript.append(node);
    segNodes.push(node);
  });
  transcript.addEventListener("click", (ev) => {
    const w = ev.target.closest(".w");
    if (w) seek(Number(w.dataset.start), true);
  });
  const timeline = el("div", { class: "timeline", id: "timeline", "aria-label": "Speaker timeline" }, lanes.map((key) =>
    el("div", { class: "lane", dataset: { lane: key } }, el("span", { class: "label", text: laneName(key) }),
      segments.filter((s) => `${s.channel}:${s.speaker}` === key).map((s) =>
        el("button", { class: "turn", tabindex: "-1", title: `${laneName(key)} ${clock(s.start)}–${clock(s.end)}`, "aria-label": `play ${laneName(key)} at ${clock(s.start)}`,
          style: `left:${(100 * s.start) / total}%;width:${Math.max(0.2, (100 * (s.end - s.start)) / total)}%;background:${colourOf(key, lanes)}`,
          onclick: () => seek(s.start, true) })))));
  const notes = [...(result.warnings || [])];
  const encoded = encodeURIComponent(id);
  page(result.filename,
    el("div", { class: "figures" },
      el("span", { class: `chip c-${result.control}`, text: result.control }), el("span", { text: result.status }),
      el("span", { text: `duration ${clock(total)}` }), el("span", { text: `${segments.length} segments` }),
      el("span", { text: `${lanes.length} speaker lane(s)` }),
      result.batch ? el("a", { href: `${UI}/batch/${encodeURIComponent(result.batch)}` }, `batch ${result.batch}`) : null),
    result.error ? el("p", { class: "error", text: `Failed at ${result.error.stage}: ${result.error.reason}` }) : null,
    notes.length ? el("ul", { class: "hints", id: "warnings" }, notes.map((n) => el("li", { class: "warning", text: n }))) : null,
    el("div", { class: "downloads", id: "file-downloads" }, "Download: ",
      FILE_FORMATS.map((f) => el("button", { dataset: { format: f }, onclick: () => download(`/trd/transcription/result/audiofile/${encoded}?format=${f}`, `${result.filename}.${f === "extended_trs" ? "trs" : f}`).catch(fail) }, f))),
    el("div", { class: "player" }, el("div", { id: "waveform" }), timeline, audio, playerNote,
      el("p", { class: "muted" }, "Space plays or pauses; ← → move between segments; click a word to hear it.")),
    transcript);

  let current = null, currentSeg = null;
  function follow() {
    const t = audio.currentTime;
    // The last word that started at or before now, if it has not ended long ago.
    let lo = 0, hi = words.length - 1, found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (words[mid].start <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    const word = found >= 0 && t < words[found].end + 0.3 ? words[found] : null;
    if (word !== current) {
      current?.node.classList.remove("current");
      current?.node.removeAttribute("aria-current");
      current = word;
      if (word) {
        word.node.classList.add("current");
        word.node.setAttribute("aria-current", "true");
      }
    }
    const seg = segments.findIndex((s) => s.start <= t && t < s.end);
    if (seg !== currentSeg) {
      if (currentSeg != null && segNodes[currentSeg]) segNodes[currentSeg].classList.remove("active");
      currentSeg = seg >= 0 ? seg : null;
      if (currentSeg != null) {
        segNodes[currentSeg].classList.add("active");
        if (!audio.paused) segNodes[currentSeg].scrollIntoView({ block: "nearest" });
      }
    }
  }
  function loop() {
    follow();
    if (!audio.paused) requestAnimationFrame(loop);
  }
  // A browser may refuse to play (no audio device, a policy): say so instead of nothing.
  function playAudio() {
    audio.play().then(() => { delete audio.dataset.playError; }, (e) => {
      audio.dataset.playError = `${e.name}: ${e.message}`;
      playerNote.hidden = false;
      playerNote.textContent = `The browser did not play the audio: ${e.message}`;
    });
  }
  function seek(t, play) {
    audio.currentTime = t;
    follow();
    if (play) playAudio();
  }
  audio.addEventListener("play", () => requestAnimationFrame(loop));
  audio.addEventListener("seeked", follow);
  audio.addEventListener("timeupdate", follow);
  document.addEventListener("keydown", (ev) => {
    // Typing stays typing; a focused control keeps its own keys.
    if (ev.target.closest("input, select, textarea, audio, dialog")) return;
    if (ev.key === " " && ev.target.closest("button, a")) return;
    if (ev.key === " ") {
      ev.preventDefault();
      if (audio.paused) playAudio(); else audio.pause();
    } else if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
      ev.preventDefault();
      const t = audio.currentTime;
      const target = ev.key === "ArrowRight"
        ? segments.find((s) => s.start > t + 0.05)
        : [...segments].reverse().find((s) => s.start < t - 0.5) || segments[0];
      if (target) seek(target.start, !audio.paused);
    }
  });
  // The waveform: drawn by wavesurfer.js once the page is usable. It decodes the audio with a
  // media element of its own (given ours, it would swap our element's source for a blob of the
  // whole file, which Firefox then fails to play); its cursor follows our player, and a click
  // on it seeks our player.
  const noWaveform = () => { document.getElementById("waveform").textContent = "The waveform could not be drawn."; };
  import("/trd/ui/assets/vendor/wavesurfer.esm.js").then(({ default: WaveSurfer }) => {
    const waveform = WaveSurfer.create({ container: "#waveform", url: audio.src, height: 72, waveColor: "#9fb3d1",
      progressColor: "#1f5fbf", cursorColor: "#b3261e", normalize: true, autoScroll: false, autoCenter: false });
    waveform.on("interaction", (t) => seek(t, !audio.paused));
    waveform.on("error", noWaveform);
    const follow = () => waveform.setTime(audio.currentTime);
    for (const event of ["timeupdate", "seeked"]) audio.addEventListener(event, follow);
  }).catch(noWaveform);
  document.documentElement.dataset.rendered = String(performance.now());
}

// ---------------------------------------------------------------------------------------------
// Health: dependencies, queues, throughput

function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const part of (m[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[part[1]] = part[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

async function healthPage() {
  const body = el("div", { id: "health" });
  page("Health", body);
  async function poll() {
    const response = await fetch("/trd/health", { headers: { Authorization: `Bearer ${credential.get()}` } });
    if (response.status === 401) return toSignIn();
    const health = await response.json();
    const metrics = parseMetrics(await (await request("/trd/metrics")).text());
    const dep = (name, d) => el("li", { dataset: { dependency: name } },
      el("strong", { class: d.ok ? "ok" : "bad", text: d.ok ? "up" : "down" }), ` ${name}`, d.error ? ` — ${d.error}` : "");
    const queues = Object.entries(health.queues || {});
    const deepest = Math.max(1, ...queues.map(([, q]) => q.messages));
    const rtf = metrics.filter((m) => m.name === "trd_recognizer_real_time_factor");
    const files = metrics.filter((m) => m.name === "trd_files");
    body.replaceChildren(
      el("section", { class: "card" }, el("h2", { text: `Dependencies: ${health.status}` }),
        el("ul", {}, dep("MongoDB", health.mongodb), dep("RabbitMQ", health.rabbitmq))),
      el("section", { class: "card" }, el("h2", { text: "Queues" }),
        el("div", { class: "scroll" }, el("table", { id: "queues" },
          el("thead", {}, el("tr", {}, el("th", { text: "Queue" }), el("th", { text: "Waiting" }), el("th", { text: "" }), el("th", { text: "Workers attached" }))),
          el("tbody", {}, queues.map(([name, q]) => el("tr", { dataset: { queue: name } },
            el("td", { text: name }), el("td", { class: "num", text: String(q.messages) }),
            el("td", {}, el("progress", { max: String(deepest), value: String(q.messages), "aria-label": `${name} depth` })),
            el("td", { class: `num ${q.consumers ? "" : "bad"}`, text: String(q.consumers) }))))))),
      el("section", { class: "card" }, el("h2", { text: "Recognition speed" }),
        rtf.length ? el("ul", {}, rtf.map((m) => el("li", { dataset: { metric: "rtf" } },
          `real-time factor ${m.value.toFixed(3)}${Object.keys(m.labels).length ? ` (${Object.entries(m.labels).map(([k, v]) => `${k} ${v}`).join(", ")})` : ""}`)))
          : el("p", { class: "muted", text: "No segment recognized yet." })),
      el("section", { class: "card" }, el("h2", { text: "Files" }),
        el("ul", {}, files.filter((m) => m.value > 0).map((m) => el("li", { text: `${Object.values(m.labels).join(" ")}: ${m.value}` })))));
    document.documentElement.dataset.updated = String(Date.now());
  }
  async function tick() {
    try { await poll(); } catch (e) { fail(e); }
    setTimeout(tick, 5000);
  }
  await tick();
}

// ---------------------------------------------------------------------------------------------
// Start

async function start() {
  const path = location.pathname.replace(/\/+$/, "");
  const rest = path.startsWith(UI) ? path.slice(UI.length) : "";
  if (rest === "/sign-in") return signInPage();
  if (!credential.get()) return toSignIn();
  try {
    me = await getJson("/trd/console/me");
  } catch (e) {
    return fail(e);
  }
  document.getElementById("who").textContent = `${me.label} · ${me.scope ?? "no"} scope`;
  const signOut = document.getElementById("sign-out");
  signOut.hidden = false;
  signOut.addEventListener("click", () => { credential.clear(); location.assign(`${UI}/sign-in`); });
  document.getElementById("nav-upload").hidden = !me.may_operate;
  const section = rest.split("/")[1] || "batches";
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
  }
  try {
    if (section === "batches") await batchesPage();
    else if (section === "upload") await uploadPage();
    else if (section === "health") await healthPage();
    else if (section === "batch") await batchPage(decodeURIComponent(rest.split("/")[2] || ""));
    else if (section === "file") await filePage(decodeURIComponent(rest.split("/")[2] || ""));
    else page("Not found", el("p", {}, "No such page. ", el("a", { href: UI }, "Batches")));
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      page("Something went wrong");
      fail(e);
    }
  }
}

start();

// The console's one script: it fills the server-rendered pages from the JSON API (same origin, the session cookie
// as credential, X-CSRF-Token on every change) and never writes markup from data: text only (textContent).
"use strict";

const page = document.body.dataset;
const BASE = page.base || "";
const CSRF = page.csrf || "";
const POLL_MS = 1000;
const POLL_LIMIT = 3600; // a page polls for an hour at most; reload to go on

const byId = (id) => document.getElementById(id);

function say(message) {
  const status = byId("status");
  if (status) status.textContent = message;
}

class Failure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, { query, json, allow, credential } = {}) {
  const url = new URL(`${BASE}/api/v1${path}`, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = CSRF;
  if (credential) headers["X-Room-Member-Token"] = credential;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(url, { method, headers, body, credentials: "same-origin" });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok && !(allow || []).includes(response.status)) {
    if (response.status === 401) say("Your session has ended: sign in again.");
    throw new Failure(response.status, (data && data.message) || response.statusText);
  }
  return { status: response.status, data };
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

// ------------------------------------------------------------------ formatting (the viewer's locale)

function humanSize(bytes) {
  if (bytes === undefined || bytes === null) return "–";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 10 ? 0 : 1;
  return `${value.toLocaleString(undefined, { maximumFractionDigits: digits })} ${units[unit]}`;
}

function humanDuration(seconds) {
  if (seconds === undefined || seconds === null) return "–";
  const total = Math.max(0, Math.round(seconds));
  const pad = (n) => String(n).padStart(2, "0");
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

function localDate(ms) {
  if (!ms) return "–";
  return new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" }).format(new Date(ms));
}

const LAYOUTS = { grid: "Grid", speaker: "Speaker", "single-speaker": "Single speaker" };

function statusText(recording) {
  return recording.status.replace("_", " ");
}

function recordingUrl(id, what, secret) {
  const query = secret ? `?recordingSecret=${encodeURIComponent(secret)}` : "";
  return `${BASE}/api/v1/recordings/${encodeURIComponent(id)}/${what}${query}`;
}

function poster(id, secret) {
  const image = el("img", { class: "poster", alt: "" });
  image.addEventListener("error", () => image.replaceWith(el("span", { class: "poster none", text: "No poster" })), {
    once: true,
  });
  image.src = recordingUrl(id, "poster", secret);
  return image;
}

async function copyField(input) {
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    say("Copied to the clipboard.");
  } catch {
    say("Selected: copy it with your keyboard.");
  }
}

function wireCopyButtons() {
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", () => copyField(byId(button.dataset.copy)));
  }
}

// ------------------------------------------------------------------ keyset paging

class Pager {
  constructor(load) {
    this.tokens = [null];
    this.index = 0;
    this.load = load;
    this.prev = byId("prev");
    this.next = byId("next");
    this.prev.addEventListener("click", () => this.go(-1));
    this.next.addEventListener("click", () => this.go(1));
  }
  reset() {
    this.tokens = [null];
    this.index = 0;
    return this.load(null);
  }
  go(step) {
    this.index += step;
    return this.load(this.tokens[this.index]);
  }
  show(pagination) {
    this.tokens.length = this.index + 1;
    if (pagination.isTruncated && pagination.nextPageToken) this.tokens.push(pagination.nextPageToken);
    this.prev.disabled = this.index === 0;
    this.next.disabled = this.tokens.length <= this.index + 1;
  }
}

// ------------------------------------------------------------------ rooms

function roomsPage() {
  const rows = byId("rooms");
  let name = "";
  const pager = new Pager(async (token) => {
    const query = { maxItems: 20, nextPageToken: token };
    if (name) Object.assign(query, { roomName: name, roomNameMatchMode: "partial", roomNameCaseInsensitive: "true" });
    try {
      const { data } = await api("GET", "/rooms", { query });
      rows.replaceChildren(
        ...data.rooms.map((room) =>
          el(
            "tr",
            {},
            el("td", {}, el("a", { href: `${BASE}/console/rooms/${encodeURIComponent(room.roomId)}`, text: room.roomName })),
            el("td", {}, el("code", { text: room.roomId })),
            el("td", { text: localDate(room.creationDate) }),
            el("td", { text: room.status }),
          ),
        ),
      );
      if (!data.rooms.length) rows.replaceChildren(el("tr", {}, el("td", { colspan: "4", text: "No rooms." })));
      pager.show(data.pagination);
    } catch (failure) {
      say(failure.message);
    }
  });
  byId("room-search").addEventListener("submit", (event) => {
    event.preventDefault();
    name = byId("room-name").value.trim();
    pager.reset();
  });
  byId("create-room").addEventListener("submit", async (event) => {
    event.preventDefault();
    const roomName = byId("new-name").value.trim();
    const recording = { layout: byId("new-layout").value };
    try {
      const { data } = await api("POST", "/rooms", { json: { roomName, config: { recording } } });
      location.assign(`${BASE}/console/rooms/${encodeURIComponent(data.roomId)}`);
    } catch (failure) {
      say(`Not created: ${failure.message}`);
    }
  });
  pager.reset();
}

// ------------------------------------------------------------------ a room: config, links, call, live recording

function roomPage() {
  const roomId = page.room;
  const path = `/rooms/${encodeURIComponent(roomId)}`;
  const state = byId("rec-state");
  const elapsed = byId("rec-elapsed");
  const reason = byId("rec-reason");
  const link = byId("rec-link");
  const startButton = byId("start-button");
  const stopButton = byId("stop-button");
  let current = null;
  let lastAnnounced = "";
  let polls = 0;
  let focusStartWhenFree = false; // after Stop (which then is disabled): Start gets the focus once it may be used
  let moderatorSecret = null;
  let controlToken = null;

  // Starting and stopping is for the API key and room members (as in Meet): an administrator's console does it
  // with a moderator token of this room, got for the room's secret and kept in this page's memory only.
  async function control() {
    if (!moderatorSecret) return undefined;
    if (!controlToken) {
      const { data } = await api("POST", `${path}/members/token`, {
        json: { secret: moderatorSecret, participantName: "Administrator (console)" },
      });
      controlToken = data.token;
    }
    return controlToken;
  }

  async function loadRoom() {
    try {
      const { data } = await api("GET", path);
      byId("room-title").replaceChildren(`${data.roomName} `, el("code", { text: data.roomId }));
      document.title = `${data.roomName} · callrec`;
      const config = data.config.recording;
      byId("cfg-enabled").checked = config.enabled !== false;
      byId("cfg-layout").value = config.layout;
      byId("cfg-encoding").value = typeof config.encoding === "string" ? config.encoding : "custom";
      byId("cfg-public").checked = config.publicAccess !== false;
      if (data.moderatorSecret) {
        moderatorSecret = data.moderatorSecret;
        const join = `${location.origin}${BASE}/console/join/${encodeURIComponent(roomId)}?secret=`;
        byId("moderator-link").value = join + encodeURIComponent(data.moderatorSecret);
        byId("speaker-link").value = join + encodeURIComponent(data.speakerSecret);
      }
    } catch (failure) {
      say(failure.message);
    }
  }

  async function loadCall() {
    const list = byId("participants");
    try {
      const { status, data } = await api("GET", `${path}/call`, { allow: [404] });
      const people = status === 404 ? [] : data.participants;
      list.replaceChildren(
        ...(people.length
          ? people.map((p) => el("li", { text: p.name || p.id || "participant" }))
          : [el("li", { text: "Nobody is in the call." })]),
      );
    } catch (failure) {
      list.replaceChildren(el("li", { text: failure.message }));
    }
  }

  function show(recording) {
    current = recording;
    const running = recording && ["starting", "active", "ending"].includes(recording.status);
    const text = recording ? statusText(recording) : "not recording";
    state.textContent = text;
    state.className = recording ? `s-${recording.status}` : "";
    if (recording && recording.startDate) {
      const end = running ? Date.now() : recording.endDate || Date.now();
      elapsed.textContent = `(${humanDuration(recording.duration ?? (end - recording.startDate) / 1000)})`;
    } else {
      elapsed.textContent = "";
    }
    const failed = recording && ["failed", "aborted", "limit_reached"].includes(recording.status);
    reason.hidden = !failed;
    reason.textContent = failed ? `Why: ${recording.details || recording.error || "no reason given"}` : "";
    link.hidden = !(recording && recording.status === "complete");
    if (recording) link.querySelector("a").href = `${BASE}/recording/${encodeURIComponent(recording.recordingId)}`;
    if (startButton) {
      startButton.disabled = Boolean(running);
      stopButton.disabled = !(recording && recording.status === "active");
      if (focusStartWhenFree && !startButton.disabled) {
        focusStartWhenFree = false;
        startButton.focus();
      }
    }
    const announce = recording ? `Recording ${text}${failed ? `: ${reason.textContent}` : ""}` : "";
    if (announce && announce !== lastAnnounced) {
      lastAnnounced = announce;
      say(announce);
    }
  }

  async function poll() {
    try {
      const { data } = await api("GET", "/recordings", {
        query: { roomId, maxItems: 1, sortField: "startDate", sortOrder: "desc" },
      });
      show(data.recordings[0] || null);
    } catch (failure) {
      say(failure.message);
    }
    await loadCall();
    polls += 1;
    if (polls < POLL_LIMIT) setTimeout(poll, document.hidden ? POLL_MS * 5 : POLL_MS);
  }

  if (byId("start")) {
    byId("start").addEventListener("submit", async (event) => {
      event.preventDefault();
      const config = {};
      if (byId("start-layout").value) config.layout = byId("start-layout").value;
      if (byId("start-encoding").value) config.encoding = byId("start-encoding").value;
      const json = { roomId, ...(Object.keys(config).length ? { config } : {}) };
      startButton.disabled = true;
      show({ status: "starting", recordingId: "", startDate: Date.now() });
      try {
        const { data } = await api("POST", "/recordings", { json, credential: await control() });
        show(data);
        stopButton.focus();
      } catch (failure) {
        startButton.disabled = false;
        show(null);
        say(`Not started: ${failure.message}`);
      }
    });
    stopButton.addEventListener("click", async () => {
      if (!current) return;
      focusStartWhenFree = true;
      state.focus(); // the focus stays in the recording's section while it ends
      stopButton.disabled = true;
      try {
        const stop = `/recordings/${encodeURIComponent(current.recordingId)}/stop`;
        const { data } = await api("POST", stop, { credential: await control() });
        show(data);
      } catch (failure) {
        focusStartWhenFree = false;
        stopButton.disabled = false;
        stopButton.focus();
        say(`Not stopped: ${failure.message}`);
      }
    });
  }

  // A publish link (WHIP) for one person: the publish page with a token of this room in its fragment.
  byId("publish").addEventListener("submit", async (event) => {
    event.preventDefault();
    const participantName = byId("publish-name").value.trim();
    try {
      const { data } = await api("POST", `${path}/publish-token`, { json: { participantName } });
      const publish = byId("publish-link");
      publish.href = `${BASE}/rooms/${encodeURIComponent(roomId)}/publish#token=${encodeURIComponent(data.token)}`;
      publish.textContent = `Open the publish page as ${participantName}`;
      byId("publish-result").hidden = false;
      publish.focus();
    } catch (failure) {
      say(`No publish link: ${failure.message}`);
    }
  });

  if (page.manages) {
    byId("config").addEventListener("submit", async (event) => {
      event.preventDefault();
      const recording = {
        enabled: byId("cfg-enabled").checked,
        layout: byId("cfg-layout").value,
        publicAccess: byId("cfg-public").checked,
      };
      if (byId("cfg-encoding").value !== "custom") recording.encoding = byId("cfg-encoding").value;
      try {
        await api("PUT", `${path}/config`, { json: { config: { recording } } });
        say("Settings saved.");
      } catch (failure) {
        say(`Not saved: ${failure.message}`);
      }
    });
  }
  wireCopyButtons();
  loadRoom();
  poll();
}

// ------------------------------------------------------------------ recordings

function recordingsPage() {
  const rows = byId("recordings");
  const form = byId("filters");
  const selectAll = byId("select-all");
  const zip = byId("zip");
  const remove = byId("delete");
  const outcome = byId("outcome");
  const params = new URLSearchParams(location.search);
  if (params.get("roomId")) byId("f-room").value = params.get("roomId");

  const selected = () => [...rows.querySelectorAll("input[type=checkbox]:checked")].map((box) => box.value);
  function selectionChanged() {
    const count = selected().length;
    if (zip) zip.disabled = count === 0;
    if (remove) remove.disabled = count === 0;
  }

  function row(recording) {
    const id = recording.recordingId;
    const box = el("input", { type: "checkbox", value: id, "aria-label": `Select ${recording.roomName} ${localDate(recording.startDate)}` });
    box.addEventListener("change", selectionChanged);
    const failed = recording.details || recording.error;
    const status = el("td", { class: `s-${recording.status}`, text: statusText(recording) });
    if (failed && recording.status !== "complete") status.append(el("div", { class: "error", text: failed }));
    return el(
      "tr",
      {},
      el("td", {}, box),
      el("td", {}, poster(id)),
      el("td", {}, el("a", { href: `${BASE}/recording/${encodeURIComponent(id)}`, text: recording.roomName || recording.roomId })),
      el("td", { text: localDate(recording.startDate) }),
      el("td", { text: humanDuration(recording.duration) }),
      el("td", { text: humanSize(recording.size) }),
      el("td", { text: LAYOUTS[recording.layout] || recording.layout || "–" }),
      status,
    );
  }

  function filters() {
    const data = Object.fromEntries(new FormData(form));
    if (!data.roomName) delete data.roomNameMatchMode;
    else data.roomNameCaseInsensitive = "true";
    return data;
  }

  const pager = new Pager(async (token) => {
    try {
      const { data } = await api("GET", "/recordings", { query: { ...filters(), maxItems: 20, nextPageToken: token } });
      rows.replaceChildren(...data.recordings.map(row));
      if (!data.recordings.length) rows.replaceChildren(el("tr", {}, el("td", { colspan: "8", text: "No recordings." })));
      selectAll.checked = false;
      selectionChanged();
      pager.show(data.pagination);
    } catch (failure) {
      say(failure.message);
    }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    pager.reset();
  });
  selectAll.addEventListener("change", () => {
    for (const box of rows.querySelectorAll("input[type=checkbox]")) box.checked = selectAll.checked;
    selectionChanged();
  });
  if (zip) {
    zip.addEventListener("click", () => {
      const url = new URL(`${BASE}/api/v1/recordings/download`, location.origin);
      url.searchParams.set("recordingIds", selected().join(","));
      const anchor = el("a", { href: url.href, download: "recordings.zip" });
      document.body.append(anchor);
      anchor.click();
      anchor.remove();
      say("Downloading the ZIP.");
    });
  }
  if (remove) {
    remove.addEventListener("click", async () => {
      const ids = selected();
      if (!window.confirm(`Delete ${ids.length} recording(s)? This cannot be undone.`)) return;
      try {
        const { data } = await api("DELETE", "/recordings", { query: { recordingIds: ids.join(",") }, allow: [400] });
        const failed = data.failed || [];
        outcome.hidden = failed.length === 0;
        outcome.replaceChildren(
          el("p", { text: `${data.deleted.length} deleted, ${failed.length} not deleted.` }),
          el("ul", {}, ...failed.map((f) => el("li", { text: `${f.recordingId}: ${f.error}` }))),
        );
        say(`${data.deleted.length} recording(s) deleted${failed.length ? `, ${failed.length} not` : ""}.`);
        pager.go(0);
      } catch (failure) {
        say(`Not deleted: ${failure.message}`);
      }
    });
  }
  pager.reset();
}

// ------------------------------------------------------------------ player

const AUDIO = /\.(m4a|mp3|ogg|oga|opus|wav|aac)$/i;

function meta(list, name, value) {
  list.append(el("dt", { text: name }), el("dd", { text: value }));
}

async function playerPage() {
  const id = page.recording;
  const secret = page.secret;
  const screen = byId("screen");
  if (!screen) return;
  let recording;
  try {
    ({ data: recording } = await api("GET", `/recordings/${encodeURIComponent(id)}`, { query: { recordingSecret: secret } }));
  } catch (failure) {
    screen.replaceChildren(el("p", { class: "error", text: `This recording cannot be shown: ${failure.message}` }));
    return;
  }
  const list = byId("meta");
  meta(list, "Room", recording.roomName || recording.roomId);
  meta(list, "Started", localDate(recording.startDate));
  meta(list, "Duration", humanDuration(recording.duration));
  meta(list, "Size", humanSize(recording.size));
  meta(list, "Layout", LAYOUTS[recording.layout] || recording.layout || "–");
  meta(list, "Status", statusText(recording));
  if (recording.details && recording.status !== "complete") meta(list, "Why", recording.details);
  if (recording.status !== "complete") {
    screen.replaceChildren(el("p", { class: "placeholder", text: `Nothing to play: the recording is ${statusText(recording)}.` }));
    return;
  }
  const audio = AUDIO.test(recording.filename || "");
  const player = el(audio ? "audio" : "video", { id: "player", controls: "", preload: "metadata" });
  player.setAttribute("aria-label", `Recording of ${recording.roomName || recording.roomId}`);
  if (!audio) {
    // the poster when there is one; else the browser shows the first frame (a 404 shows nothing)
    const probe = new Image();
    probe.addEventListener("load", () => { player.poster = probe.src; }, { once: true });
    probe.src = recordingUrl(id, "poster", secret);
    player.append(el("track", { kind: "metadata", src: recordingUrl(id, "thumbnails.vtt", secret), label: "Previews" }));
  }
  player.src = recordingUrl(id, "media", secret);
  screen.replaceChildren(player);
  const download = byId("download");
  if (download) {
    download.href = recordingUrl(id, "download", secret);
    download.hidden = false;
  }
  for (const [button, privateAccess] of [["share-public", false], ["share-private", true]]) {
    const node = byId(button);
    if (!node) continue;
    node.addEventListener("click", async () => {
      try {
        const { data } = await api("GET", `/recordings/${encodeURIComponent(id)}/url`, { query: { privateAccess } });
        byId("share-url").value = data.url;
        await copyField(byId("share-url"));
      } catch (failure) {
        say(`No link: ${failure.message}`);
      }
    });
  }
}

const PAGES = { rooms: roomsPage, room: roomPage, recordings: recordingsPage, player: playerPage };
(PAGES[page.page] || (() => {}))();

// The courier's phone page: today's round, one stop at a time, big buttons, proof at the door.
// Works without signal: a service worker (courier-sw.js) serves the page and the last round;
// every action goes into an IndexedDB outbox first (idempotency key + device time) and is sent
// in order when the network answers, each item deleted only after the server stored it.
// While online, a WebSocket says when the dispatcher publishes a new version, and the round is
// read at once; the periodic sync stays as the fallback.
"use strict";

// -- the outbox: IndexedDB, one object store in insertion order ------------------------------

const Outbox = (() => {
  const DB_NAME = "courier-outbox";
  const ITEMS = "items";
  const REJECTED = "rejected";
  let dbPromise = null;

  function db() {
    dbPromise ??= new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => {
        request.result.createObjectStore(ITEMS, { keyPath: "seq", autoIncrement: true });
        request.result.createObjectStore(REJECTED, { keyPath: "seq" });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    return dbPromise;
  }

  /** Run `work(stores)` in one transaction; resolve with its result once committed. */
  async function transact(names, mode, work) {
    const database = await db();
    return new Promise((resolve, reject) => {
      const tx = database.transaction(names, mode);
      const stores = names.map((n) => tx.objectStore(n));
      let result;
      Promise.resolve(work(...stores)).then((r) => { result = r; }, reject);
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }

  const req = (request) => new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

  return {
    /** Queue items (one transaction: a photo and its event go in together or not at all). */
    add: (...items) => transact([ITEMS], "readwrite", (s) => {
      for (const item of items) s.add(item);
    }),
    all: () => transact([ITEMS], "readonly", (s) => req(s.getAll())),
    remove: (seq) => transact([ITEMS], "readwrite", (s) => { s.delete(seq); }),
    /**
     * The photo is on the server: drop its blob, give its id to the events that wait for it —
     * as the proof's photo, or as the photo of an authorisation (`photoRefs[ref]`).
     */
    photoSent: (seq, ref, photoId) => transact([ITEMS], "readwrite", async (s) => {
      const items = await req(s.getAll());
      s.delete(seq);
      for (const item of items) {
        if (item.type !== "event") continue;
        if (item.photoRef === ref) {
          item.body.proof = { ...item.body.proof, photo_id: photoId };
          delete item.photoRef;
          s.put(item);
        } else if (item.photoRefs?.[ref] === "authorisation") {
          item.body.proof.authorised = { ...item.body.proof.authorised, photo_id: photoId };
          delete item.photoRefs[ref];
          s.put(item);
        }
      }
    }),
    /** The server refused an item for good (4xx): keep it aside for the dispatcher, unblock the rest. */
    reject: (item, error) => transact([ITEMS, REJECTED], "readwrite", (s, r) => {
      s.delete(item.seq);
      r.put({ ...item, blob: undefined, error });
    }),
    rejected: () => transact([REJECTED], "readonly", (r) => req(r.getAll())),
    /** Drop what one user left queued (their GPS fixes, on signing out). */
    dropOwned: (owner) => transact([ITEMS], "readwrite", async (s) => {
      for (const item of await req(s.getAll())) if (item.owner === owner) s.delete(item.seq);
    }),
  };
})();

// -- the page ---------------------------------------------------------------------------------

(() => {
  const me = CR.requireRole("courier");
  const params = new URLSearchParams(location.search);
  const day = params.get("day") || CR.today();
  const RETRY_MS = 15000;
  // How often an open page asks for a newer version of the round (the dispatcher re-planned),
  // whether or not the live socket told it so: the fallback when a proxy drops the socket.
  const ROUND_REFRESH_MS = 60000;
  const LIVE_RETRY_MAX_MS = 60000;
  const POSITION_EVERY_MS = 60000;
  const ROAD_EDGES = 6000;
  const RANK = { planned: 0, arrived: 1, completed: 2, failed: 2 };
  const $ = (id) => document.getElementById(id);
  const el = CR.el;

  const state = { round: null, local: {}, pending: 0, openStop: null, map: null };

  // Local overlay: what the courier did on this phone, shown at once and kept across reloads.
  // It is kept by day, not by plan version: an action taken on one version still shows on the
  // next one the dispatcher publishes (and its outbox item still names the version it was on).
  const who = me.courier_id || me.username;
  const localKey = () => `courier.local.${who}.${day}`;
  const loadLocal = () => JSON.parse(localStorage.getItem(localKey()) || "{}");
  const saveLocal = () => localStorage.setItem(localKey(), JSON.stringify(state.local));

  // -- a new version of the round: stops added are marked, stops moved away are listed ---------

  const seenKey = `courier.local.seen.${who}.${day}`;
  const changesKey = `courier.local.changes.${who}.${day}`;
  const readJson = (key) => JSON.parse(localStorage.getItem(key) || "null");
  const noChanges = () => ({ version: null, added: [], removed: [] });
  let changes = readJson(changesKey) || noChanges();

  /**
   * Compare a round with the last one this phone showed (kept in localStorage, so a change
   * found at the first sync after a night offline is still found). A newer version adds its
   * new stops to `changes.added` and the stops it no longer has to `changes.removed`; both stay
   * until the courier dismisses them.
   */
  function noteRound(round) {
    const seen = readJson(seenKey);
    const now = Object.fromEntries(round.stops.map((st) => [st.job_id, { address: st.address, recipient: st.recipient }]));
    if (seen && seen.plan_id !== round.plan_id && round.version >= seen.version) {
      const added = round.stops.map((st) => st.job_id).filter((id) => !(id in seen.stops));
      const removed = Object.entries(seen.stops).filter(([id]) => !(id in now))
        .map(([jobId, st]) => ({ job_id: jobId, ...st }));
      const keepAdded = changes.added.filter((id) => id in now && !added.includes(id));
      const keepRemoved = changes.removed.filter((r) => !(r.job_id in now) && !removed.some((x) => x.job_id === r.job_id));
      changes = { version: round.version, added: [...keepAdded, ...added], removed: [...keepRemoved, ...removed] };
      if (changes.added.length || changes.removed.length) localStorage.setItem(changesKey, JSON.stringify(changes));
      else dismissChanges();
    }
    localStorage.setItem(seenKey, JSON.stringify({ plan_id: round.plan_id, version: round.version, stops: now }));
  }

  function dismissChanges() {
    changes = noChanges();
    localStorage.removeItem(changesKey);
    render();
  }

  const isNew = (stop) => changes.added.includes(stop.job_id);

  function renderChanges() {
    const box = $("round-changes");
    const shown = changes.added.length > 0 || changes.removed.length > 0;
    box.hidden = !shown;
    if (!shown) return;
    box.dataset.version = String(changes.version);
    $("round-changes-title").textContent = CR.t("courier.round_changed", { version: changes.version });
    $("moved-away").hidden = changes.removed.length === 0;
    $("moved-away-title").textContent = CR.t("courier.moved_away_title", { n: changes.removed.length });
    $("moved-away-list").replaceChildren(...changes.removed.map((r) => el("li", { "data-job": r.job_id },
      el("strong", { text: r.address || r.job_id }),
      r.recipient ? el("span", { class: "muted", text: ` · ${r.recipient}` }) : null)));
  }

  /** A stop's status: the server's, unless this phone recorded something further along. */
  function statusOf(stop) {
    const mine = state.local[stop.job_id];
    if (!mine) return { status: stop.status, reason: stop.fail_reason };
    if (RANK[mine.status] >= RANK[stop.status]) return mine;
    return { status: stop.status, reason: stop.fail_reason };
  }

  const isDone = (stop) => RANK[statusOf(stop).status] === 2;

  function money(vnd) {
    return `${new Intl.NumberFormat("vi-VN").format(vnd)} ₫`;
  }

  function windowsText(stop) {
    return stop.windows.map(([a, b]) => `${a}–${b}`).join(", ");
  }

  function taskText(stop) {
    const task = stop.task;
    const what = task.action === "collect" ? "courier.collect_items" : "courier.hand_over_items";
    return CR.t(what, { n: task.items });
  }

  function categoryText(stop) {
    const key = `courier.category_${stop.category}`;
    const text = CR.t(key);
    return text === key ? stop.category : text;
  }

  // -- navigation links ----------------------------------------------------------------------

  /**
   * Links to a phone's map apps. The scheme and place are fixed here and the place is made of
   * numbers only; the label (an address from a file) goes in percent-encoded.
   */
  function navLinks(stop) {
    const lat = Number(stop.lat);
    const lon = Number(stop.lon);
    if (!Number.isFinite(lat) || !Number.isFinite(lon)) return null;
    const ll = `${lat.toFixed(6)},${lon.toFixed(6)}`;
    const label = encodeURIComponent(String(stop.address || stop.recipient || stop.job_id));
    return {
      geo: `geo:${ll}?q=${ll}(${label})`,
      google: `https://www.google.com/maps/dir/?api=1&destination=${ll}&travelmode=two-wheeler`,
      osmand: `https://osmand.net/map?pin=${ll}#16/${lat.toFixed(5)}/${lon.toFixed(5)}`,
    };
  }

  // -- rendering -----------------------------------------------------------------------------

  function badge(stop) {
    const { status, reason } = statusOf(stop);
    const text = CR.t(`common.status_${status}`) + (reason ? ` · ${CR.t(`common.reason_${reason}`)}` : "");
    return el("span", { class: `badge ${status}`, text });
  }

  function taskLines(stop) {
    const task = stop.task;
    const lines = [
      el("p", { class: "task" }, el("strong", { text: taskText(stop) }),
        ` · ${categoryText(stop)}`),
    ];
    if (task.cash_payout_vnd > 0) {
      lines.push(el("p", { class: "cash", "data-cash": task.cash_payout_vnd },
        CR.t("courier.cash_to_pay"), " ", el("strong", { text: money(task.cash_payout_vnd) })));
    }
    if (task.id_check_required) {
      lines.push(el("p", { class: "id-check-needed", text: CR.t("courier.id_check_needed") }));
    }
    if (stop.note) lines.push(el("p", { class: "note", text: stop.note }));
    return lines;
  }

  function actionButtons(stop) {
    const { status } = statusOf(stop);
    const nav = navLinks(stop);
    const buttons = el("div", { class: "actions" });
    if (status === "planned") {
      buttons.append(el("button", {
        type: "button", class: "big primary", "data-act": "arrived",
        text: CR.t("courier.arrived"), onclick: () => record(stop, "arrived"),
      }));
    }
    buttons.append(
      el("button", {
        type: "button", class: "big good", "data-act": "done",
        text: CR.t("courier.done"), onclick: () => openProof(stop),
      }),
      el("button", {
        type: "button", class: "big bad", "data-act": "failed",
        text: CR.t("courier.failed"), onclick: () => openFail(stop),
      }),
    );
    return el("div", {},
      nav ? el("div", { class: "nav" },
        el("a", { class: "nav-main", href: nav.geo, "data-nav": "geo", text: CR.t("courier.navigate") }),
        el("a", { class: "nav-alt", href: nav.google, target: "_blank", rel: "noopener", text: "Google Maps" }),
        el("a", { class: "nav-alt", href: nav.osmand, target: "_blank", rel: "noopener", text: "OsmAnd" }),
      ) : null,
      buttons,
    );
  }

  function stopHeader(stop) {
    return el("div", { class: "stop-head" },
      el("span", { class: "seq", text: String(stop.seq + 1) }),
      el("span", { class: "eta", text: `${CR.t("courier.eta")} ${stop.planned_arrival}` }),
      isNew(stop) ? el("span", { class: "badge new-badge", text: CR.t("courier.new_badge") }) : null,
      badge(stop),
    );
  }

  function nextCard(stop) {
    return el("article", { class: "card stop next", "data-job": stop.job_id, "data-status": statusOf(stop).status },
      el("p", { class: "kicker", text: CR.t("courier.next_stop") }),
      stopHeader(stop),
      el("h2", { class: "address", text: stop.address || stop.job_id }),
      el("p", { class: "recipient", text: stop.recipient }),
      callLink(stop),
      el("p", { class: "window" }, `${CR.t("courier.window")} `, el("strong", { text: windowsText(stop) })),
      ...taskLines(stop),
      actionButtons(stop),
    );
  }

  /** A tap to call the citizen of the stop being served (other stops' phones come masked). */
  function callLink(stop) {
    const digits = String(stop.phone || "");
    if (!/^84\d{8,10}$/.test(digits)) return null;
    return el("p", { class: "call" },
      el("a", { class: "button call-button", href: `tel:+${digits}`, text: `${CR.t("courier.call")} +${digits}` }));
  }

  function laterCard(stop) {
    const open = state.openStop === stop.job_id;
    const details = el("details", {
      class: "card stop later", "data-job": stop.job_id, "data-status": statusOf(stop).status, open,
    },
    el("summary", {},
      stopHeader(stop),
      el("span", { class: "address", text: stop.address || stop.job_id }),
      el("span", { class: "muted small", text: [stop.recipient, windowsText(stop)].filter(Boolean).join(" · ") }),
      stop.task.cash_payout_vnd > 0 ? el("span", { class: "cash small", text: money(stop.task.cash_payout_vnd) }) : null,
    ),
    ...taskLines(stop),
    actionButtons(stop));
    details.addEventListener("toggle", () => {
      if (details.open) state.openStop = stop.job_id;
      else if (state.openStop === stop.job_id) state.openStop = null;
    });
    return details;
  }

  function doneRow(stop) {
    return el("div", { class: "stop done", "data-job": stop.job_id, "data-status": statusOf(stop).status },
      el("span", { class: "seq", text: String(stop.seq + 1) }),
      el("span", { class: "address", text: stop.address || stop.job_id }),
      badge(stop));
  }

  function render() {
    const round = state.round;
    if (!round) return;
    const stops = [...round.stops].sort((a, b) => a.seq - b.seq);
    const open = stops.filter((s) => !isDone(s));
    const done = stops.filter(isDone);
    $("round-title").textContent = CR.t("courier.round_of", { courier: round.courier_id, day: round.day });
    $("round-progress").textContent = CR.t("courier.progress", { done: done.length, total: stops.length });
    $("round-progress").dataset.done = String(done.length);
    const cashLeft = open.reduce((sum, s) => sum + (s.task.cash_payout_vnd || 0), 0);
    $("round-cash").hidden = cashLeft === 0;
    $("round-cash").textContent = CR.t("courier.cash_left", { amount: money(cashLeft) });
    renderCashInHand(stops);

    const next = $("next-stop");
    next.replaceChildren(open.length
      ? nextCard(open[0])
      : el("article", { class: "card all-done", text: CR.t("courier.all_done") }));
    $("later-stops").replaceChildren(...open.slice(1).map(laterCard));
    $("done-stops").hidden = done.length === 0;
    $("done-summary").textContent = CR.t("courier.done_stops", { n: done.length });
    $("done-list").replaceChildren(...done.map(doneRow));
    renderChanges();
    drawStops();
  }

  /**
   * Cash in hand: what the post office issued this morning (or the payouts planned, until the
   * dispatcher enters it) minus what was paid out; payouts completed here count at once (at the
   * amount due), even before the outbox has sent them.
   */
  function renderCashInHand(stops) {
    const cash = state.cash;
    const box = $("cash-in-hand");
    if (!cash || cash.returned_vnd !== null) {
      box.hidden = true;
      return;
    }
    const issued = cash.issued_vnd ?? cash.proposed_vnd;
    const paidHere = stops
      .filter((s) => s.task.cash_payout_vnd > 0 && statusOf(s).status === "completed")
      .reduce((sum, s) => sum + s.task.cash_payout_vnd, 0);
    const inHand = issued - Math.max(paidHere, cash.paid_vnd);
    box.hidden = issued === 0;
    box.dataset.amount = String(inHand);
    box.textContent = CR.t("courier.cash_in_hand", { amount: money(inHand) });
  }

  async function loadCash() {
    try {
      state.cash = await CR.api(`/cash/me?day=${day}`);
      render();
    } catch {
      // offline, or no cash for this round: the line stays hidden
    }
  }

  // -- the map ---------------------------------------------------------------------------------

  let stopLayer = null;
  let legLayer = null;
  let roadsBounds = null;

  /** Draw the round's roads (again, when a new version of the round comes). */
  function drawLegs(bounds) {
    if (!legLayer) return;
    legLayer.clearLayers();
    for (const leg of state.round.legs || []) {
      if (leg.length) {
        L.polyline(leg.map(([lon, lat]) => [lat, lon]), { color: "#1a73e8", weight: 5, opacity: 0.8 })
          .addTo(legLayer);
        if (bounds) for (const [lon, lat] of leg) bounds.extend([lat, lon]);
      }
    }
    $("round-map").dataset.legs = String((state.round.legs || []).filter((leg) => leg.length).length);
  }
  /** Draw the round; resolves once the road lines are in (or failed to come). */
  async function drawMap() {
    const round = state.round;
    if (!round.stops.length) return;
    const m = await CR.map.create("round-map", { zoomControl: false });
    state.map = m;
    const bounds = L.latLngBounds(round.stops.map((s) => [s.lat, s.lon]));
    legLayer = L.layerGroup().addTo(m.map);
    drawLegs(bounds);
    m.map.fitBounds(bounds.pad(0.05));
    stopLayer = L.layerGroup().addTo(m.map);
    drawStops();
    $("map-box").addEventListener("toggle", () => m.map.invalidateSize());
    // The same box every time, so the service worker's cached answer serves it offline.
    roadsBounds = bounds;
    await m.showRoadsAround(bounds, ROAD_EDGES).catch(() => undefined);
  }

  /** Resolve true when a service worker took over this page after it loaded, false if it already had. */
  function whenControlled() {
    if (!("serviceWorker" in navigator)) return new Promise(() => undefined);
    if (navigator.serviceWorker.controller) return Promise.resolve(false);
    return new Promise((resolve) => {
      navigator.serviceWorker.addEventListener("controllerchange", () => resolve(true), { once: true });
    });
  }

  /**
   * On the first visit the round and the roads were fetched before the service worker took
   * over, so they are not cached yet: fetch them again through it. Then the page can start
   * without signal, and says so.
   */
  async function keepForOffline(mapDrawn) {
    const fresh = await whenControlled();
    await mapDrawn;
    if (fresh) {
      await Promise.all([
        CR.api(`/rounds/me?day=${day}`),
        CR.api("/map/config"),
        roadsBounds ? CR.map.fetchRoads(roadsBounds.pad(0.15), ROAD_EDGES) : null,
      ]);
    }
    document.body.dataset.offlineReady = "1";
    $("offline-ready").hidden = false;
  }

  function drawStops() {
    if (!stopLayer) return;
    stopLayer.clearLayers();
    const open = state.round.stops.filter((s) => !isDone(s)).sort((a, b) => a.seq - b.seq);
    const nextId = open[0]?.job_id;
    for (const stop of state.round.stops) {
      const status = statusOf(stop).status;
      const cls = (stop.job_id === nextId ? "next" : status) + (isNew(stop) ? " new" : "");
      L.marker([stop.lat, stop.lon], {
        icon: L.divIcon({
          className: `stop-pin ${cls}`, html: el("span", { text: String(stop.seq + 1) }), iconSize: [28, 28],
        }),
        title: stop.address,
      }).addTo(stopLayer);
    }
  }

  // -- actions: optimistic state, then the outbox ---------------------------------------------

  function nowIso() {
    return new Date().toISOString();
  }

  let recording = false;
  /** Record one action; a second tap while the first is being queued is ignored. */
  async function record(stop, kind, options = {}) {
    if (recording) return;
    recording = true;
    try {
      await queueAction(stop, kind, options);
    } finally {
      recording = false;
    }
  }

  async function queueAction(stop, kind, { reason, proof, note, photo, authorisation } = {}) {
    const deviceTs = nowIso();
    const body = {
      idempotency_key: CR.newKey(),
      device_ts: deviceTs,
      job_id: stop.job_id,
      kind,
      plan_id: state.round.plan_id,
    };
    if (reason) body.reason = reason;
    if (proof) body.proof = proof;
    if (note) body.note = note;
    if (lastFix) Object.assign(body, { lon: lastFix.lon, lat: lastFix.lat });
    const items = [];
    const ref = photo ? CR.newKey() : null;
    if (photo) items.push({ type: "photo", owner: me.username, ref, blob: photo, name: photo.name || "proof.jpg", at: deviceTs });
    const event = { type: "event", owner: me.username, body, photoRef: ref || undefined, at: deviceTs };
    if (authorisation) {
      // The authorisation's photo goes first; its id fills proof.authorised.photo_id.
      const authRef = CR.newKey();
      items.push({ type: "photo", owner: me.username, ref: authRef, blob: authorisation,
        name: authorisation.name || "authorisation.jpg", at: deviceTs });
      event.photoRefs = { [authRef]: "authorisation" };
    }
    items.push(event);
    await Outbox.add(...items);
    state.local[stop.job_id] = { status: kind, reason: reason || null, at: deviceTs };
    saveLocal();
    if (state.openStop === stop.job_id && kind !== "arrived") state.openStop = null;
    render();
    await showCount();
    flush();
  }

  async function showCount() {
    const items = await Outbox.all();
    const events = items.filter((i) => i.type === "event" && i.owner === me.username).length;
    state.pending = events;
    const badgeEl = $("outbox-count");
    badgeEl.dataset.count = String(events);
    badgeEl.textContent = events ? CR.t("courier.outbox_waiting", { n: events }) : CR.t("courier.outbox_empty");
    const rejected = await Outbox.rejected();
    const notice = $("round-notice");
    notice.hidden = rejected.length === 0;
    notice.dataset.rejected = String(rejected.length);
    notice.textContent = CR.t("courier.rejected", { n: rejected.length });
  }

  // Signing out: never with the courier's proof still on the phone (a revoked token could not
  // send it), and leave nothing of this round for the next person to use the phone.
  CR.beforeSignOut(async () => {
    const unsent = (await Outbox.all()).filter((i) => i.owner === me.username && i.type === "event");
    if (unsent.length) {
      const notice = $("round-notice");
      notice.hidden = false;
      notice.dataset.unsent = String(unsent.length);
      notice.textContent = CR.t("courier.unsent_on_logout", { n: unsent.length });
      return false;
    }
    await Outbox.dropOwned(me.username);
    for (const key of Object.keys(localStorage)) {
      if (key.startsWith("courier.local.")) localStorage.removeItem(key);
    }
    if (window.caches) {
      for (const name of await caches.keys()) {
        const cache = await caches.open(name);
        for (const request of await cache.keys()) {
          if (new URL(request.url).pathname.startsWith("/rounds/")) await cache.delete(request);
        }
      }
    }
    return true;
  });

  const PATHS = { event: "/rounds/me/events", position: "/rounds/me/positions" };

  async function send(item) {
    if (item.type === "photo") {
      const form = new FormData();
      form.append("file", item.blob, item.name);
      const stored = await CR.api("/rounds/me/photos", { method: "POST", body: form });
      await Outbox.photoSent(item.seq, item.ref, stored.photo_id);
      return;
    }
    await CR.api(PATHS[item.type], { method: "POST", json: item.body });
    await Outbox.remove(item.seq);
  }

  const permanent = (err) => err instanceof CR.ApiError && err.status >= 400 && err.status < 500
    && ![401, 408, 425, 429].includes(err.status);

  let flushing = null;
  let flushAgain = false;
  /**
   * Send the outbox in order; stop at the first network failure and try again later. A call
   * while a flush runs (the signal came back meanwhile, say) makes one more pass after it.
   */
  function flush() {
    if (flushing) {
      flushAgain = true;
      return flushing;
    }
    flushAgain = false;
    flushing = (async () => {
      let sent = 0;
      try {
        for (;;) {
          const item = (await Outbox.all()).find((i) => i.owner === me.username);
          if (!item) break;
          try {
            await send(item);
            sent += 1;
          } catch (err) {
            if (!permanent(err)) break; // offline, or the server is down: keep it, retry later
            await Outbox.reject(item, err.body || { detail: String(err) });
          }
          await showCount();
        }
      } finally {
        flushing = null;
        await showCount();
      }
      if (sent) refreshRound();
      if (flushAgain) flush();
    })();
    return flushing;
  }

  /**
   * Re-read the round (after sending, on a timer, when the signal or the courier comes back;
   * also refreshes the service worker's cached copy). A new version replaces the round in
   * place; the outbox keeps its items, each naming the version it was recorded on.
   */
  async function refreshRound() {
    let round;
    try {
      round = await CR.api(`/rounds/me?day=${day}`);
    } catch (err) {
      if (!(err instanceof CR.ApiError && err.status === 404 && state.round)) return; // offline: keep it
      // No round in the version now in force: every stop moved away.
      round = { ...state.round, plan_id: null, stops: [], legs: [] };
    }
    const changed = round.plan_id !== state.round?.plan_id;
    noteRound(round);
    state.round = round;
    if (changed) {
      if (!state.map && round.stops.length) drawMap().catch((err) => console.warn("map", err));
      else if (state.map && round.stops.length) {
        const bounds = L.latLngBounds(round.stops.map((st) => [st.lat, st.lon]));
        drawLegs(bounds);
        state.map.map.fitBounds(bounds.pad(0.05));
      } else drawLegs(null);
    }
    render();
    loadCash();
    document.body.dataset.planVersion = String(round.version);
  }

  /** Send what waits, then read the round: the phone's sync. */
  async function sync() {
    await flush();
    await refreshRound();
  }

  // -- word of a new version, pushed while online ---------------------------------------------

  const live = { socket: null, attempt: 0, timer: null };

  /**
   * Follow the day's versions on a WebSocket (only the version number comes through it; the
   * round itself is read from /rounds/me as at a sync). Its first message is the version in
   * force, so one published while the phone had no signal is caught on reconnecting. Closed
   * (no signal, a restart) it is opened again with a growing wait, or when the signal is back.
   */
  function openLive() {
    if (live.socket || !navigator.onLine || !CR.token()) return;
    clearTimeout(live.timer);
    live.timer = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = `day=${encodeURIComponent(day)}&token=${encodeURIComponent(CR.token())}`;
    const socket = new WebSocket(`${scheme}://${location.host}/rounds/me/live?${query}`);
    live.socket = socket;
    socket.onopen = () => {
      live.attempt = 0;
      document.body.dataset.live = "1";
    };
    socket.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg.type === "round_changed" && msg.plan_id !== state.round?.plan_id) refreshRound();
    };
    socket.onclose = (e) => {
      if (live.socket !== socket) return;
      live.socket = null;
      document.body.dataset.live = "0";
      // Token revoked or expired: the next API call finds out and goes back to sign-in.
      if (e.code === 4401) { CR.api("/auth/me").catch(() => {}); return; }
      if (e.code === 4403) return; // not a courier: the periodic sync alone
      const wait = e.code === 4429 ? LIVE_RETRY_MAX_MS : Math.min(LIVE_RETRY_MAX_MS, 1000 * 2 ** live.attempt);
      live.attempt += 1;
      live.timer = setTimeout(openLive, wait);
    };
  }

  // -- proof and failure forms ---------------------------------------------------------------

  let formStop = null;

  function openProof(stop) {
    formStop = stop;
    const form = $("proof-form");
    form.reset();
    $("proof-error").hidden = true;
    $("proof-photo-preview").hidden = true;
    $("proof-stop").textContent = `${stop.seq + 1}. ${stop.address} · ${taskText(stop)}`;
    $("proof-recipient").value = stop.task.action === "hand_over" ? stop.recipient : "";
    $("proof-id-check").hidden = !stop.task.id_check_required;
    const cash = stop.task.cash_payout_vnd || 0;
    $("proof-cash-label").hidden = cash === 0;
    $("proof-cash").value = cash ? String(cash) : "";
    $("proof-cash-due").textContent = cash ? CR.t("courier.cash_due", { amount: money(cash) }) : "";
    $("proof-received-by").hidden = !stop.task.authorised_allowed;
    $("auth-photo-preview").hidden = true;
    showAuthorised(false);
    $("proof-dialog").showModal();
  }

  function openFail(stop) {
    formStop = stop;
    $("fail-form").reset();
    $("fail-error").hidden = true;
    $("fail-stop").textContent = `${stop.seq + 1}. ${stop.address}`;
    $("fail-dialog").showModal();
  }

  function formError(id, key) {
    $(id).textContent = CR.t(key);
    $(id).hidden = false;
  }

  /** Shrink a camera photo (often 4–8 MB) to a JPEG of at most 1600 px for a weak signal. */
  async function shrink(file) {
    try {
      const bitmap = await createImageBitmap(file);
      const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
      if (scale === 1 && file.size < 1_500_000) return file;
      const canvas = document.createElement("canvas");
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.8));
      return blob ? new File([blob], "proof.jpg", { type: "image/jpeg" }) : file;
    } catch {
      return file;
    }
  }

  for (const form of ["proof-form", "fail-form"]) {
    $(form).addEventListener("input", () => {
      for (const error of $(form).querySelectorAll(".error")) error.hidden = true;
    });
  }

  /** The authorised person's fields, shown when the courier says someone else received it. */
  function showAuthorised(on) {
    $("proof-authorised").hidden = !on;
    for (const input of $("proof-authorised").querySelectorAll("input")) input.disabled = !on;
  }

  for (const radio of document.querySelectorAll("input[name=received_by]")) {
    radio.addEventListener("change", () => showAuthorised(radio.value === "authorised" && radio.checked));
  }

  for (const [input, img] of [["proof-photo", "proof-photo-preview"], ["auth-photo", "auth-photo-preview"]]) {
    $(input).addEventListener("change", () => {
      const file = $(input).files[0];
      const preview = $(img);
      if (preview.src) URL.revokeObjectURL(preview.src);
      preview.hidden = !file;
      if (file) preview.src = URL.createObjectURL(file);
    });
  }

  $("proof-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const stop = formStop;
    const task = stop.task;
    const name = $("proof-recipient").value.trim();
    const idCheck = new FormData($("proof-form")).get("id_check");
    if (task.action === "hand_over" && !name) return formError("proof-error", "courier.need_name");
    if (task.id_check_required && !idCheck) return formError("proof-error", "courier.need_id_check");
    if (task.id_check_required && idCheck === "failed") {
      // No handover without a matching ID: record the stop as failed instead.
      $("proof-dialog").close();
      return record(stop, "failed", { reason: "id_mismatch", note: name });
    }
    const proof = { recipient_name: name, id_check: task.id_check_required ? idCheck : "not_required" };
    if (task.cash_payout_vnd > 0) {
      const paid = Number($("proof-cash").value);
      if ($("proof-cash").value === "" || !Number.isFinite(paid) || paid < 0) {
        return formError("proof-error", "courier.need_cash");
      }
      proof.cash_paid_vnd = Math.round(paid);
    }
    let authorisation = null;
    if (task.authorised_allowed && new FormData($("proof-form")).get("received_by") === "authorised") {
      const person = {
        name: $("auth-name").value.trim(),
        relation: $("auth-relation").value.trim(),
        id_last_digits: $("auth-digits").value.trim(),
      };
      authorisation = $("auth-photo").files[0];
      if (!person.name || !person.relation || !/^[0-9]{3,6}$/.test(person.id_last_digits) || !authorisation) {
        return formError("proof-error", "courier.need_authorised");
      }
      proof.received_by = "authorised";
      proof.authorised = person;
    }
    const file = $("proof-photo").files[0];
    $("proof-dialog").close();
    return record(stop, "completed", {
      proof,
      photo: file ? await shrink(file) : null,
      authorisation: authorisation ? await shrink(authorisation) : null,
    });
  });

  $("fail-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const reason = new FormData($("fail-form")).get("reason");
    if (!reason) return formError("fail-error", "courier.need_reason");
    $("fail-dialog").close();
    return record(formStop, "failed", { reason, note: $("fail-note").value.trim() });
  });

  for (const button of document.querySelectorAll("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }

  // -- GPS: a fix a minute through the same outbox (the latest only while offline) -------------

  let lastFix = null;
  let lastSent = 0;
  function watchPosition() {
    if (!navigator.geolocation) return;
    navigator.geolocation.watchPosition(async (pos) => {
      lastFix = { lon: pos.coords.longitude, lat: pos.coords.latitude };
      if (Date.now() - lastSent < POSITION_EVERY_MS) return;
      lastSent = Date.now();
      const stale = (await Outbox.all()).filter((i) => i.type === "position");
      for (const item of stale) await Outbox.remove(item.seq);
      await Outbox.add({
        type: "position", owner: me.username, at: nowIso(),
        body: {
          idempotency_key: CR.newKey(), device_ts: nowIso(), ...lastFix,
          accuracy_m: Math.min(pos.coords.accuracy || 0, 100000),
        },
      });
      flush();
    }, () => undefined, { enableHighAccuracy: true, maximumAge: 30000 });
  }

  // -- start -----------------------------------------------------------------------------------

  async function start() {
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/courier-sw.js", { scope: "/courier" }).catch((err) => {
        console.warn("service worker not registered", err);
      });
    }
    await showCount();
    try {
      state.round = await CR.api(`/rounds/me?day=${day}`);
    } catch (err) {
      $("round-loading").hidden = true;
      $("round-error").hidden = false;
      $("round-error").textContent = err instanceof CR.ApiError && err.status === 404
        ? CR.t("courier.no_round", { day })
        : CR.t("courier.load_failed");
      return;
    }
    $("round-loading").hidden = true;
    state.local = loadLocal();
    noteRound(state.round);
    document.body.dataset.planVersion = String(state.round.version);
    $("round-changes-dismiss").addEventListener("click", dismissChanges);
    render();
    loadCash();
    const mapDrawn = drawMap().catch((err) => console.warn("map", err));
    keepForOffline(mapDrawn).catch((err) => console.warn("offline cache", err));
    document.body.dataset.ready = "1";
    window.addEventListener("online", () => {
      live.attempt = 0;
      openLive();
      sync();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && navigator.onLine) {
        openLive();
        sync();
      }
    });
    setInterval(() => { if (navigator.onLine) flush(); }, RETRY_MS);
    setInterval(() => { if (navigator.onLine) refreshRound(); }, ROUND_REFRESH_MS);
    watchPosition();
    openLive();
    flush();
  }

  start();
})();

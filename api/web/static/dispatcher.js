// The dispatcher's page: upload the day's files, plan, inspect and edit rounds, publish, then
// follow the day live (stop events, couriers' positions) on a map drawn from our own roads.
// Needs common.js, Leaflet and map.js loaded first.
"use strict";

(() => {
  const me = CR.requireRole("dispatcher");
  const LANG = document.documentElement.lang === "en" ? "en" : "vi";
  const $ = (sel) => document.querySelector(sel);
  const t = CR.t;
  const el = CR.el;

  /** One colour per round, far apart on the wheel; cycles past 16 rounds. */
  const PALETTE = [
    "#1a73e8", "#d93025", "#188038", "#f29900", "#9334e6", "#00838f", "#e52592", "#5f6368",
    "#a0522d", "#3949ab", "#7cb342", "#ef6c00", "#00acc1", "#8e24aa", "#c0ca33", "#6d4c41",
  ];
  const STATUS_COLOUR = {
    planned: "#ffffff", arrived: "#1a73e8", completed: "#1e8e3e", failed: "#c5221f",
  };
  const SOLVING = ["queued", "solving"];
  const EDITABLE = ["ready", "published"];

  const state = {
    day: null,
    plans: [],
    planId: null,
    plan: null,
    couriers: [],
    jobCount: null,
    colours: {},
    progress: {}, // courier_id -> {done, total}
    stopStatus: {}, // job_id -> status
    failed: new Map(), // job_id -> {courier_id, job_id, reason}
    late: new Map(), // job_id -> {courier_id, job_id, status}
    live: {}, // courier_id -> {position, next_stop, eta_drift_s, expected_late}
    selected: null,
    socket: null,
    pollTimer: null,
    loadSeq: 0,
  };

  let view = null; // {map, roads, showRoadsAround}
  const svg = L.svg({ padding: 0.3 });
  const layers = {};
  const stopMarkers = new Map(); // job_id -> circle marker
  const courierMarkers = new Map(); // courier_id -> marker
  const roundLines = new Map(); // courier_id -> polyline
  const unassignedAt = new Map(); // job_id -> [lat, lon] of a job on no round

  // -- small helpers ---------------------------------------------------------------------------

  const clock = (s) => (s === null || s === undefined ? "–"
    : `${String(Math.floor(s / 3600)).padStart(2, "0")}:${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}`);
  const km = (m) => (m / 1000).toFixed(1);
  const hoursMinutes = (s) => {
    const min = Math.round(s / 60);
    return t("dispatcher.working_time", { h: Math.floor(min / 60), m: min % 60 });
  };
  const signedPercent = (f) => {
    const pct = Math.round(f * 100);
    return pct > 0 ? `+${pct}` : pct < 0 ? `−${-pct}` : "±0";
  };
  const officeOf = (depotId) => (state.plan?.balance || []).find((b) => b.depot_id === depotId);
  const colourOf = (cid) => state.colours[cid] || "#5f6368";
  const courierName = (cid) => state.couriers.find((c) => c.id === cid)?.data?.name || cid;
  const statusText = (st) => t(`common.status_${st}`);
  const failReason = (code) => (code ? t(`common.reason_${code}`) : t("common.reason_other"));

  /**
   * Tooltip content as a DOM node: Leaflet parses a string as HTML, and ids, names and
   * messages come from the dispatcher's files.
   */
  const tip = (text) => el("span", { class: "tip", text });

  function setText(sel, text) {
    const node = $(sel);
    if (node) node.textContent = text;
  }

  function show(sel, visible) {
    const node = $(sel);
    if (node) node.hidden = !visible;
  }

  function apiErrorText(err) {
    if (err instanceof CR.ApiError) return err.body?.detail || `HTTP ${err.status}`;
    return t("dispatcher.network_error");
  }

  // -- plan status -----------------------------------------------------------------------------

  function setPlanStatus(status) {
    const node = $("#plan-status");
    node.dataset.status = status || "none";
    node.textContent = status ? t("dispatcher.status_line", {
      version: state.plan?.version ?? state.plans.find((p) => p.id === state.planId)?.version ?? "?",
      status: t(`dispatcher.status_${status}`),
    }) : t("dispatcher.status_none");
    $("#btn-publish").disabled = status !== "ready";
    $("#btn-plan").disabled = SOLVING.includes(status);
    show("#solve-progress", SOLVING.includes(status));
  }

  function showSolve(p) {
    if (!p || !Object.keys(p).length) return;
    const stage = p.stage ? t(`dispatcher.stage_${p.stage}`) : "";
    const parts = [stage];
    if (p.elapsed_s !== undefined && p.elapsed_s !== null) {
      parts.push(t("dispatcher.elapsed", { s: Number(p.elapsed_s).toFixed(1) }));
    }
    if (p.jobs_assigned !== undefined && p.jobs_assigned !== null) {
      parts.push(t("dispatcher.jobs_assigned", { n: p.jobs_assigned, total: state.jobCount ?? "?" }));
    }
    const text = $("#solve-text");
    text.textContent = parts.filter(Boolean).join(" · ");
    text.dataset.stage = p.stage || "";
    let fraction = 0;
    if (p.status === "ready") fraction = 1;
    else if (p.jobs_assigned && state.jobCount) fraction = p.jobs_assigned / state.jobCount;
    else if (p.total) fraction = (p.done || 0) / p.total;
    $("#solve-bar").style.width = `${Math.round(Math.min(1, fraction) * 100)}%`;
  }

  // -- loading a day and a plan ----------------------------------------------------------------

  async function loadDay(day) {
    state.day = day;
    const url = new URL(location.href);
    url.searchParams.set("day", day);
    history.replaceState(null, "", url);
    const [plans, jobs, couriers] = await Promise.all([
      CR.api(`/plans?day=${day}`),
      CR.api(`/jobs?day=${day}&limit=1`).catch(() => ({ count: null })),
      CR.apiAll("/couriers").catch(() => ({ data: [] })),
    ]);
    state.jobCount = jobs.count;
    state.couriers = couriers.data;
    state.plans = plans.data;
    fillPlanSelect();
    // The published plan is what couriers follow (and what the live feed is about); without
    // one, the newest plan still in play.
    const current = state.plans.find((p) => p.status === "published")
      || state.plans.find((p) => !["superseded", "failed"].includes(p.status))
      || state.plans[0];
    await loadPlan(current ? current.id : null);
  }

  function fillPlanSelect() {
    const select = $("#plan-select");
    select.replaceChildren(
      ...(state.plans.length ? [] : [el("option", { value: "", text: t("dispatcher.no_plan") })]),
      ...state.plans.map((p) => el("option", {
        value: p.id,
        text: t("dispatcher.plan_option", { version: p.version, status: t(`dispatcher.status_${p.status}`) }),
      })),
    );
    if (state.planId) select.value = String(state.planId);
  }

  async function refreshPlanList() {
    state.plans = (await CR.api(`/plans?day=${state.day}`)).data;
    fillPlanSelect();
    renderRunning();
  }

  function resetLive() {
    state.progress = {};
    state.stopStatus = {};
    state.failed.clear();
    state.late.clear();
    state.live = {};
  }

  async function loadPlan(planId) {
    const seq = ++state.loadSeq;
    closeSocket();
    stopPolling();
    const changed = planId !== state.planId;
    state.planId = planId;
    if (changed) {
      resetLive();
      state.selected = null;
    }
    if (!planId) {
      state.plan = null;
      clearMap();
      renderAll();
      setPlanStatus(null);
      return;
    }
    const [plan, geojson] = await Promise.all([
      CR.api(`/plans/${planId}`),
      CR.api(`/plans/${planId}/geojson`),
    ]);
    if (seq !== state.loadSeq) return; // a newer load won
    applyPlan(plan, geojson);
    openSocket(planId);
    if (SOLVING.includes(plan.status)) startPolling(planId);
  }

  /** Take a plan (JSON and GeoJSON) as the page's current one and draw it. */
  function applyPlan(plan, geojson) {
    state.plan = plan;
    const ids = plan.routes.map((r) => r.courier_id).sort();
    state.colours = Object.fromEntries(ids.map((cid, i) => [cid, PALETTE[i % PALETTE.length]]));
    for (const r of plan.routes) {
      const done = r.stops.filter((s) => ["completed", "failed"].includes(s.status)).length;
      const live = state.progress[r.courier_id];
      // Stop statuses from the plan are authoritative at load; live messages refine them later.
      state.progress[r.courier_id] = live && live.total === r.stops.length
        ? { done: Math.max(live.done, done), total: live.total }
        : { done, total: r.stops.length };
      for (const s of r.stops) {
        const known = state.stopStatus[s.job_id];
        if (!known || s.status !== "planned") state.stopStatus[s.job_id] = s.status;
      }
    }
    if (state.selected && !ids.includes(state.selected)) state.selected = null;
    drawPlan(geojson);
    renderAll();
    setPlanStatus(plan.status);
    fillPlanSelect();
  }

  async function reloadPlan() {
    if (!state.planId) return;
    const [plan, geojson] = await Promise.all([
      CR.api(`/plans/${state.planId}`),
      CR.api(`/plans/${state.planId}/geojson`),
    ]);
    applyPlan(plan, geojson);
  }

  // -- the map ---------------------------------------------------------------------------------

  function clearMap() {
    for (const name of ["rounds", "stops", "unassigned", "depots", "diff"]) layers[name]?.clearLayers();
    stopMarkers.clear();
    unassignedAt.clear();
    roundLines.clear();
    for (const m of courierMarkers.values()) m.remove();
    courierMarkers.clear();
  }

  function stopStyle(jobId, courierId) {
    const st = state.stopStatus[jobId] || "planned";
    const selected = state.selected === courierId;
    return {
      radius: selected ? 8 : 6,
      color: colourOf(courierId),
      weight: selected ? 4 : 3,
      fillColor: STATUS_COLOUR[st] || STATUS_COLOUR.planned,
      fillOpacity: 1,
    };
  }

  function drawPlan(geojson) {
    if (!view) return;
    clearMap();
    const legs = {};
    const bounds = L.latLngBounds([]);
    for (const f of geojson.features) {
      const p = f.properties;
      const g = f.geometry;
      if (p.type === "leg") {
        (legs[p.courier_id] ??= []).push(g.coordinates.map(([x, y]) => [y, x]));
      } else if (p.type === "depot") {
        const [x, y] = g.coordinates;
        bounds.extend([y, x]);
        L.marker([y, x], {
          icon: L.divIcon({ className: "depot-icon", html: el("span", { text: "✉" }), iconSize: [26, 26] }),
          title: p.name,
        }).bindTooltip(tip(`${t("common.post_office")}: ${p.name}`)).addTo(layers.depots);
      } else if (p.type === "stop") {
        const [x, y] = g.coordinates;
        bounds.extend([y, x]);
        const marker = L.circleMarker([y, x], {
          renderer: svg, className: "stop-marker", ...stopStyle(p.job_id, p.courier_id),
        })
          .bindTooltip(tip(`${p.seq + 1}. ${p.job_id} · ${courierName(p.courier_id)} · ${p.eta || ""}`))
          .on("click", () => selectRound(p.courier_id))
          .addTo(layers.stops);
        marker.courierId = p.courier_id;
        stopMarkers.set(p.job_id, marker);
        const node = marker.getElement();
        if (node) {
          node.dataset.job = p.job_id;
          node.dataset.status = state.stopStatus[p.job_id] || "planned";
        }
      } else if (p.type === "unassigned") {
        const [x, y] = g.coordinates;
        unassignedAt.set(p.job_id, [y, x]);
        L.circleMarker([y, x], {
          renderer: svg, className: "unassigned-marker", radius: 6, color: "#5f6368",
          weight: 2, dashArray: "3 3", fillColor: "#fbbc04", fillOpacity: 0.9,
        }).bindTooltip(tip(`${p.job_id}: ${LANG === "en" ? p.message_en : p.message_vi}`))
          .addTo(layers.unassigned);
      }
    }
    for (const [cid, lines] of Object.entries(legs)) {
      const line = L.polyline(lines, {
        renderer: svg, className: "round-line", color: colourOf(cid), weight: 4, opacity: 0.85,
      }).bindTooltip(tip(courierName(cid)), { sticky: true })
        .on("click", () => selectRound(cid))
        .addTo(layers.rounds);
      line.getElement()?.setAttribute("data-courier", cid);
      roundLines.set(cid, line);
      for (const part of lines) for (const ll of part) bounds.extend(ll);
    }
    highlightRound();
    drawDiff();
    for (const [cid, st] of Object.entries(state.live)) moveCourier(cid, st);
    if (bounds.isValid()) {
      state.bounds = bounds;
      view.map.fitBounds(bounds, { padding: [30, 30], maxZoom: 15 });
    }
  }

  function restyleStop(jobId) {
    const marker = stopMarkers.get(jobId);
    if (!marker) return;
    marker.setStyle(stopStyle(jobId, marker.courierId));
    const node = marker.getElement();
    if (node) node.dataset.status = state.stopStatus[jobId] || "planned";
  }

  function highlightRound() {
    for (const [cid, line] of roundLines) {
      const on = !state.selected || state.selected === cid;
      line.setStyle({ opacity: on ? 0.9 : 0.25, weight: state.selected === cid ? 6 : 4 });
      if (state.selected === cid) line.bringToFront();
    }
    for (const jobId of stopMarkers.keys()) restyleStop(jobId);
  }

  function moveCourier(cid, st) {
    const pos = st?.position;
    if (!view || !pos || pos.lat === undefined) return;
    let marker = courierMarkers.get(cid);
    if (!marker) {
      marker = L.marker([pos.lat, pos.lon], {
        icon: L.divIcon({
          className: "courier-icon",
          html: el("span", { style: { background: colourOf(cid) }, text: cid }),
          iconSize: null,
        }),
        zIndexOffset: 1000,
      }).bindTooltip(tip(courierName(cid))).addTo(view.map);
      marker.getElement()?.setAttribute("data-courier", cid);
      courierMarkers.set(cid, marker);
    } else {
      marker.setLatLng([pos.lat, pos.lon]);
    }
  }

  // -- the panel -------------------------------------------------------------------------------

  function renderAll() {
    renderRounds();
    renderRoundDetail();
    renderIssues();
    renderSummary();
    renderDiff();
    renderRunning();
  }

  function renderSummary() {
    const plan = state.plan;
    if (!plan) {
      setText("#plan-summary", state.jobCount !== null
        ? t("dispatcher.jobs_loaded", { n: state.jobCount }) : "");
      return;
    }
    const stops = plan.routes.reduce((n, r) => n + r.stops.length, 0);
    const dist = plan.routes.reduce((n, r) => n + (r.distance_m || 0), 0);
    setText("#plan-summary", t("dispatcher.plan_summary", {
      rounds: plan.routes.length, stops, unassigned: plan.unassigned.length, km: km(dist),
    }));
  }

  function renderRounds() {
    const list = $("#rounds");
    const routes = [...(state.plan?.routes || [])].sort((a, b) => a.courier_id.localeCompare(b.courier_id));
    show("#rounds-empty", !routes.length);
    setText("#rounds-count", routes.length ? `(${routes.length})` : "");
    list.replaceChildren(...routes.map((r) => roundItem(r)));
  }

  function roundItem(r) {
    const cid = r.courier_id;
    const p = state.progress[cid] || { done: 0, total: r.stops.length };
    const li = el("li", {
      class: `round${state.selected === cid ? " selected" : ""}`,
      "data-round": cid,
      "data-done": p.done,
      "data-total": p.total,
      tabindex: "0",
      role: "button",
      "aria-pressed": state.selected === cid ? "true" : "false",
      onclick: () => selectRound(cid),
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); selectRound(cid); } },
    },
    el("span", { class: "swatch", style: { background: colourOf(cid) } }),
    el("span", { class: "round-name" },
      el("strong", { text: cid }), " ", el("span", { class: "muted", text: courierName(cid) })),
    el("span", { class: "round-count", text: `${p.done}/${p.total}` }),
    el("span", { class: "progress round-bar" }, ...barParts(r, p)),
    el("span", { class: "round-meta muted small", text: roundMeta(r) }));
    return li;
  }

  /** A round's working time, against its post office's mean when the office has other rounds. */
  function roundWorking(r) {
    if (typeof r.working_s !== "number") return null;
    const office = officeOf(r.depot_id);
    if (!office || office.rounds < 2 || typeof r.vs_office_mean !== "number") return hoursMinutes(r.working_s);
    return t("dispatcher.round_working", { time: hoursMinutes(r.working_s), pct: signedPercent(r.vs_office_mean) });
  }

  function roundMeta(r) {
    const bits = [t("dispatcher.round_times", { start: clock(r.start_s), end: clock(r.end_s) }),
      roundWorking(r), `${km(r.distance_m || 0)} km`].filter(Boolean);
    const live = state.live[r.courier_id];
    if (live?.next_stop?.job_id) bits.push(t("dispatcher.next_stop", { job: live.next_stop.job_id }));
    if (typeof live?.eta_drift_s === "number") {
      const min = Math.round(live.eta_drift_s / 60);
      bits.push(min > 0 ? t("dispatcher.drift_late", { min }) : t("dispatcher.drift_ok"));
    }
    const ahead = expectedLate(r.courier_id);
    if (ahead.length) bits.push(t("dispatcher.expected_late", { n: ahead.length }));
    const outside = outsideUsual(r);
    if (outside) bits.push(t("dispatcher.outside_usual", { n: outside }));
    return bits.join(" · ");
  }

  /** The plan's territory: each commune's usual courier and each job's preferred courier. */
  const territory = () => state.plan?.stats?.territory || {};

  /** Stops of a round whose commune's usual courier is someone else. */
  function outsideUsual(route) {
    const preferred = territory().preferred || {};
    return route.stops.filter((s) => preferred[s.job_id] && preferred[s.job_id] !== route.courier_id).length;
  }

  /** "Commune · usual courier X" of a stop (empty when the job names no commune). */
  function communeLine(stop) {
    if (!stop.zone_id) return "";
    const usual = (territory().usual || {})[stop.zone_id];
    return usual ? t("dispatcher.usual_courier", { zone: stop.zone_id, courier: usual })
      : t("dispatcher.no_usual_courier", { zone: stop.zone_id });
  }

  /** The stops a courier's last fix projects late, less those served since that fix. */
  function expectedLate(cid) {
    return (state.live[cid]?.expected_late || [])
      .filter((job) => !["completed", "failed"].includes(state.stopStatus[job]));
  }

  /** The bar of a round: completed stops in green, then failed ones in red. */
  function barParts(route, p) {
    const failed = route.stops.filter((s) => state.stopStatus[s.job_id] === "failed").length;
    const pct = (n) => (p.total ? Math.round((100 * n) / p.total) : 0);
    return [
      el("span", { class: "bar-done", style: { width: `${pct(Math.max(0, p.done - failed))}%` } }),
      el("span", { class: "bar-failed", style: { width: `${pct(Math.min(failed, p.done))}%` } }),
    ];
  }

  /** Update one round's counters in place (the live feed calls this often). */
  function updateRoundProgress(cid) {
    const li = document.querySelector(`[data-round="${CSS.escape(cid)}"]`);
    const p = state.progress[cid];
    if (!li || !p) return;
    li.dataset.done = String(p.done);
    li.dataset.total = String(p.total);
    li.querySelector(".round-count").textContent = `${p.done}/${p.total}`;
    const route = state.plan?.routes.find((r) => r.courier_id === cid);
    if (route) {
      li.querySelector(".round-bar").replaceChildren(...barParts(route, p));
      li.querySelector(".round-meta").textContent = roundMeta(route);
    }
  }

  function selectRound(cid) {
    state.selected = state.selected === cid ? null : cid;
    hideEditError();
    for (const li of document.querySelectorAll("[data-round]")) {
      const on = li.dataset.round === state.selected;
      li.classList.toggle("selected", on);
      li.setAttribute("aria-pressed", on ? "true" : "false");
    }
    highlightRound();
    renderRoundDetail();
    if (state.selected) {
      const line = roundLines.get(state.selected);
      if (line && view) view.map.fitBounds(line.getBounds(), { padding: [40, 40], maxZoom: 15 });
      $("#round-card").scrollIntoView({ block: "nearest" });
    } else if (state.bounds?.isValid() && view) {
      view.map.fitBounds(state.bounds, { padding: [30, 30], maxZoom: 15 });
    }
  }

  function courierOptions(exclude) {
    const ids = state.couriers.length ? state.couriers.map((c) => c.id)
      : (state.plan?.routes || []).map((r) => r.courier_id);
    return ids.filter((id) => id !== exclude).sort().map((id) =>
      el("option", { value: id, text: `${id} · ${courierName(id)}` }));
  }

  function renderRoundDetail() {
    const cid = state.selected;
    const route = state.plan?.routes.find((r) => r.courier_id === cid);
    show("#round-card", Boolean(route));
    if (!route) return;
    const card = $("#round-card");
    card.dataset.courier = cid;
    card.style.borderLeftColor = colourOf(cid);
    setText("#round-title", t("dispatcher.round_title", { courier: cid, name: courierName(cid) }));
    setText("#round-summary", t("dispatcher.round_summary", {
      n: route.stops.length, start: clock(route.start_s), end: clock(route.end_s),
      km: km(route.distance_m || 0), brk: clock(route.break_start_s),
    }));
    const office = officeOf(route.depot_id);
    setText("#round-balance", office ? t("dispatcher.office_balance", {
      office: office.depot_id, rounds: office.rounds, mean: hoursMinutes(office.mean_working_s),
      ratio: office.ratio.toFixed(2),
    }) : "");
    const editable = EDITABLE.includes(state.plan.status);
    const last = route.stops.length - 1;
    $("#round-stops tbody").replaceChildren(...route.stops.map((s, i) => {
      const st = state.stopStatus[s.job_id] || s.status;
      const select = el("select", { class: "move-to", "aria-label": t("dispatcher.move_to") },
        el("option", { value: "", text: t("dispatcher.move_to") }), ...courierOptions(cid));
      select.disabled = !editable;
      select.addEventListener("change", () => {
        if (select.value) edit({ op: "move", job_id: s.job_id, courier_id: select.value });
      });
      return el("tr", { "data-job": s.job_id, "data-seq": s.seq },
        el("td", { class: "num", text: String(i + 1) }),
        el("td", {}, el("strong", { text: s.job_id }), " ",
          el("span", { class: `badge ${st}`, text: statusText(st) }), el("br"),
          el("span", { class: "muted small", text: t(`dispatcher.kind_${s.kind}`) }),
          ...(s.zone_id ? [el("br"), el("span", { class: "muted small commune", text: communeLine(s) })] : [])),
        el("td", { class: "num", text: s.eta || clock(s.arrival_s) }),
        el("td", { class: "actions" },
          el("button", {
            type: "button", class: "small-btn move-up", title: t("dispatcher.move_up"),
            "aria-label": t("dispatcher.move_up"), disabled: !editable || i === 0,
            onclick: () => reorder(route, i, -1), text: "↑",
          }),
          el("button", {
            type: "button", class: "small-btn move-down", title: t("dispatcher.move_down"),
            "aria-label": t("dispatcher.move_down"), disabled: !editable || i === last,
            onclick: () => reorder(route, i, 1), text: "↓",
          }),
          select));
    }));
  }

  function renderIssues() {
    const failed = [...state.failed.values()];
    setText("#failed-count", String(failed.length));
    $("#failed-list").replaceChildren(...(failed.length ? failed.map((f) => el("li", { "data-job": f.job_id },
      el("strong", { text: f.job_id }), ` · ${f.courier_id} · `,
      el("span", { class: "error", text: failReason(f.reason) })))
      : [el("li", { class: "muted", text: t("dispatcher.none") })]));

    const late = [...state.late.values()];
    setText("#late-count", String(late.length));
    $("#late-list").replaceChildren(...(late.length ? late.map((l) => el("li", { "data-job": l.job_id },
      el("strong", { text: l.job_id }), ` · ${l.courier_id} · `,
      el("span", { class: "warn", text: statusText(state.stopStatus[l.job_id] || l.status || "planned") })))
      : [el("li", { class: "muted", text: t("dispatcher.none") })]));

    // Rounds whose last GPS fix projects stops past their windows (along the roads).
    const behind = Object.keys(state.live)
      .map((cid) => [cid, expectedLate(cid).length, state.live[cid].eta_drift_s])
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1]);
    setText("#behind-count", String(behind.length));
    $("#behind-list").replaceChildren(...(behind.length ? behind.map(([cid, n, drift]) =>
      el("li", { "data-courier": cid, "data-expected-late": n },
        el("strong", { text: cid }), " · ",
        el("span", { class: "warn", text: t("dispatcher.expected_late", { n }) }),
        typeof drift === "number" && drift > 0
          ? ` · ${t("dispatcher.drift_late", { min: Math.round(drift / 60) })}` : null))
      : [el("li", { class: "muted", text: t("dispatcher.none") })]));

    const unassigned = state.plan?.unassigned || [];
    setText("#unassigned-count", String(unassigned.length));
    const editable = state.plan && EDITABLE.includes(state.plan.status);
    $("#unassigned-list").replaceChildren(...(unassigned.length ? unassigned.map((u) => {
      const select = el("select", { class: "assign-to", "aria-label": t("dispatcher.assign_to") },
        el("option", { value: "", text: t("dispatcher.assign_to") }), ...courierOptions(null));
      select.disabled = !editable;
      select.addEventListener("change", () => {
        if (select.value) edit({ op: "move", job_id: u.job_id, courier_id: select.value });
      });
      return el("li", { "data-job": u.job_id },
        el("strong", { text: u.job_id }), " · ",
        el("span", { text: LANG === "en" ? u.message_en : u.message_vi }), select);
    }) : [el("li", { class: "muted", text: t("dispatcher.none") })]));

    // Couriers whose round cannot end (another office too far for their shift, no road).
    const stranded = Object.entries(state.plan?.stats?.stranded || {});
    setText("#stranded-count", String(stranded.length));
    $("#stranded-box").hidden = !stranded.length;
    $("#stranded-list").replaceChildren(...stranded.map(([cid, why]) => el("li", { "data-courier": cid },
      el("strong", { text: courierName(cid) }), " · ",
      el("span", { class: "warn", text: t(`dispatcher.stranded_${why.reason}`, { from: why.from, to: why.to }) }))));
  }

  // -- edits -----------------------------------------------------------------------------------

  function hideEditError() {
    const box = $("#edit-error");
    box.hidden = true;
    box.replaceChildren();
  }

  function showEditError(err, body) {
    const box = $("#edit-error");
    const items = err instanceof CR.ApiError ? err.body?.errors || [] : [];
    const lines = items.map((e) => el("li", { "data-kind": e.kind || "" },
      el("strong", { text: e.kind ? t(`dispatcher.violation_${e.kind}`) : (e.column || "") }),
      violationWhere(e),
      e.reason ? el("span", { class: "muted small", text: ` — ${e.reason}` }) : null));
    const what = body?.op === "move"
      ? t("dispatcher.edit_move", { job: body.job_id, courier: body.courier_id })
      : body?.op === "reorder" ? t("dispatcher.edit_reorder", { courier: body.courier_id }) : "";
    const title = err instanceof CR.ApiError && err.status === 409 && items.length
      ? `${t("dispatcher.edit_rejected")}${what ? ` — ${what}` : ""}`
      : `${t("dispatcher.edit_failed")}: ${apiErrorText(err)}`;
    box.replaceChildren(el("strong", { text: title }), lines.length ? el("ul", {}, ...lines) : null);
    box.hidden = false;
    if (!state.selected) box.closest(".card").hidden = false;
  }

  /** " (courier C01, job J0049)" for a violation: the API puts the courier in column, the job in value. */
  function violationWhere(e) {
    const parts = [];
    if (e.kind && e.column) parts.push(`${t("common.courier")} ${e.column}`);
    if (e.kind && e.value) parts.push(`${t("dispatcher.job")} ${e.value}`);
    if (!e.kind && e.column) parts.push(e.column);
    return parts.length ? ` (${parts.join(", ")})` : "";
  }

  async function edit(body) {
    hideEditError();
    const planId = state.planId;
    document.body.classList.add("busy");
    try {
      const plan = await CR.api(`/plans/${planId}/edits`, { method: "POST", json: body });
      if (plan.id !== planId) {
        // Editing a published plan makes a new version to publish in its turn.
        await refreshPlanList();
        await loadPlan(plan.id);
      } else {
        applyPlan(plan, await CR.api(`/plans/${planId}/geojson`));
      }
      flash(t("dispatcher.edit_saved"));
    } catch (err) {
      renderRoundDetail();
      renderIssues();
      showEditError(err, body);
      if (!state.selected) flash(t("dispatcher.edit_rejected"), true);
    } finally {
      document.body.classList.remove("busy");
    }
  }

  function reorder(route, i, delta) {
    const ids = route.stops.map((s) => s.job_id);
    const j = i + delta;
    if (j < 0 || j >= ids.length) return;
    [ids[i], ids[j]] = [ids[j], ids[i]];
    edit({ op: "reorder", courier_id: route.courier_id, job_ids: ids });
  }

  function flash(text, bad = false) {
    const node = $("#flash");
    node.textContent = text;
    node.className = `flash${bad ? " bad" : ""}`;
    node.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { node.hidden = true; }, 4000);
  }

  // -- the live feed ---------------------------------------------------------------------------

  function closeSocket() {
    if (state.socket) {
      state.socket.onclose = null;
      state.socket.close();
      state.socket = null;
    }
  }

  function openSocket(planId, attempt = 0) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/plans/${planId}/live?token=${encodeURIComponent(CR.token())}`);
    state.socket = socket;
    socket.onopen = () => { attempt = 0; document.body.dataset.live = "1"; };
    socket.onmessage = (e) => {
      if (state.planId !== planId) return;
      try {
        onLive(JSON.parse(e.data));
      } catch (err) {
        console.error("live message", err);
      }
    };
    socket.onclose = (e) => {
      document.body.dataset.live = "0";
      if (state.planId !== planId || state.socket !== socket) return;
      // Token revoked or expired: the next API call finds out and goes back to sign-in.
      if (e.code === 4401) { CR.api("/auth/me").catch(() => {}); return; }
      if (e.code === 4403) return;
      const wait = Math.min(30000, 1000 * 2 ** attempt);
      setTimeout(() => {
        if (state.planId === planId && state.socket === socket) openSocket(planId, attempt + 1);
      }, wait);
    };
  }

  function onLive(msg) {
    switch (msg.type) {
      case "batch": return msg.messages.forEach(onLive);
      case "snapshot": return onSnapshot(msg);
      case "solve": return onSolve(msg);
      case "stop_event": return onStopEvent(msg);
      case "position": return onPosition(msg);
      case "plan_edited":
        if (msg.revision !== state.plan?.revision) reloadPlan().catch(() => {});
        return undefined;
      case "published":
        refreshPlanList().catch(() => {});
        if (state.plan && state.plan.status !== "published") {
          state.plan.status = "published";
          setPlanStatus("published");
          renderRoundDetail();
          renderIssues();
        }
        return undefined;
      default:
        return undefined;
    }
  }

  function onSnapshot(msg) {
    for (const [cid, p] of Object.entries(msg.routes || {})) {
      state.progress[cid] = { done: p.done, total: p.total };
      updateRoundProgress(cid);
    }
    for (const f of msg.failed || []) {
      state.failed.set(f.job_id, f);
      state.stopStatus[f.job_id] = "failed";
      restyleStop(f.job_id);
    }
    for (const l of msg.late || []) state.late.set(l.job_id, l);
    for (const [cid, st] of Object.entries(msg.couriers || {})) {
      state.live[cid] = { ...state.live[cid], ...st };
      moveCourier(cid, st);
      updateRoundProgress(cid);
    }
    if (msg.plan_status && state.plan && msg.plan_status !== state.plan.status) {
      reloadPlan().catch(() => {});
    }
    if (msg.solve && SOLVING.includes(state.plan?.status)) showSolve(msg.solve);
    renderIssues();
  }

  function onSolve(msg) {
    // a solved plan never goes back to solving: a progress message arriving late is ignored
    if (SOLVING.includes(msg.status) && state.plan && !SOLVING.includes(state.plan.status)) return;
    showSolve(msg);
    if (msg.status === "ready" || msg.status === "failed") {
      stopPolling();
      reloadPlan().then(refreshPlanList).catch(() => {});
      if (msg.status === "failed") showPlanError(msg.error);
    } else if (msg.status && state.plan && msg.status !== state.plan.status) {
      state.plan.status = msg.status;
      setPlanStatus(msg.status);
    }
  }

  function onStopEvent(msg) {
    const cid = msg.courier_id;
    if (msg.progress) state.progress[cid] = { done: msg.progress.done, total: msg.progress.total };
    if (msg.stop_status) state.stopStatus[msg.job_id] = msg.stop_status;
    if (msg.stop_status === "failed" || msg.failed) {
      state.failed.set(msg.job_id, { courier_id: cid, job_id: msg.job_id, reason: msg.reason });
    } else {
      state.failed.delete(msg.job_id);
    }
    if (msg.late) state.late.set(msg.job_id, { courier_id: cid, job_id: msg.job_id, status: msg.stop_status });
    state.live[cid] = { ...state.live[cid], next_stop: msg.next_stop };
    restyleStop(msg.job_id);
    updateRoundProgress(cid);
    renderIssues();
    if (state.selected === cid) renderRoundDetail();
  }

  function onPosition(msg) {
    const cid = msg.courier_id;
    state.live[cid] = {
      ...state.live[cid],
      position: { lon: msg.lon, lat: msg.lat, device_ts: msg.device_ts },
      next_stop: msg.next_stop,
      eta_drift_s: msg.eta_drift_s,
      expected_late: msg.expected_late || [],
    };
    if (msg.progress) state.progress[cid] = { done: msg.progress.done, total: msg.progress.total };
    moveCourier(cid, state.live[cid]);
    updateRoundProgress(cid);
    renderIssues();
  }

  /** Polling backs up the WebSocket while a plan solves (a proxy may drop sockets). */
  function startPolling(planId) {
    stopPolling();
    state.pollTimer = setInterval(async () => {
      if (state.planId !== planId) return stopPolling();
      try {
        const st = await CR.api(`/plans/${planId}/status`);
        showSolve({ ...st.progress, status: st.status, elapsed_s: st.elapsed_s, stage: st.stage, jobs_assigned: st.jobs_assigned });
        if (!SOLVING.includes(st.status)) {
          stopPolling();
          if (st.status === "failed") showPlanError(st.error);
          await reloadPlan();
          await refreshPlanList();
        }
      } catch (err) {
        console.warn("status poll", err);
      }
      return undefined;
    }, 1500);
  }

  function stopPolling() {
    clearInterval(state.pollTimer);
    state.pollTimer = null;
  }

  function showPlanError(text) {
    const node = $("#plan-error");
    node.textContent = `${t("dispatcher.plan_failed")}${text ? `: ${text}` : ""}`;
    node.hidden = false;
  }

  // -- planning and publishing -----------------------------------------------------------------

  async function startPlan() {
    const limit = Number($("#time-limit").value);
    $("#plan-error").hidden = true;
    if (!(limit > 0 && limit <= 3600)) {
      showPlanError(t("dispatcher.time_limit_invalid"));
      return;
    }
    $("#btn-plan").disabled = true;
    $("#upload-card").open = false;
    try {
      const created = await CR.api("/plans", { method: "POST", json: { day: state.day, time_limit_s: limit } });
      await followNewPlan(created);
    } catch (err) {
      showPlanError(apiErrorText(err));
      $("#btn-plan").disabled = false;
    }
  }

  /** Show a plan just queued (a day's plan or a re-plan) and follow its solve until it is ready. */
  async function followNewPlan(created, extra = {}) {
    await refreshPlanList();
    const seq = ++state.loadSeq;
    closeSocket();
    stopPolling();
    resetLive();
    state.selected = null;
    state.planId = created.plan_id;
    state.plan = {
      id: created.plan_id, version: created.version, status: created.status, routes: [], unassigned: [],
      stats: {}, ...extra,
    };
    clearMap();
    renderAll();
    fillPlanSelect();
    setPlanStatus(created.status);
    showSolve({ status: created.status, stage: "queued", elapsed_s: 0 });
    if (seq !== state.loadSeq) return;
    openSocket(created.plan_id);
    startPolling(created.plan_id);
  }

  async function publish() {
    if (!state.plan || state.plan.status !== "ready") return;
    const ok = window.confirm(t("dispatcher.publish_confirm", {
      version: state.plan.version, day: state.day, rounds: state.plan.routes.length,
    }));
    if (!ok) return;
    $("#btn-publish").disabled = true;
    try {
      const plan = await CR.api(`/plans/${state.plan.id}/publish`, { method: "POST" });
      state.plan.status = plan.status;
      setPlanStatus(plan.status);
      await refreshPlanList();
      renderDiff();
      flash(t("dispatcher.published"));
    } catch (err) {
      showPlanError(apiErrorText(err));
      setPlanStatus(state.plan.status);
    }
  }

  // -- the running day: urgent jobs, re-planning from now, a draft's difference ---------------

  const running = {
    newJobs: [], // rows (keyed like the jobs file) to place in the next re-plan
    cancelled: new Set(),
    picking: false,
    pickMarker: null,
    asked: null, // {planId, job, now}: what the shown suggestions answer
  };
  const DIFF_KINDS = ["moved", "added", "dropped", "unrouted", "kept"];
  const CHANGED = ["moved", "added", "dropped", "unrouted"];

  /** The local time now (Asia/Ho_Chi_Minh) as HH:MM. */
  function hhmmNow() {
    return new Intl.DateTimeFormat("en-GB", {
      timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
    }).format(new Date());
  }

  /** HH:MM of the shown day as an ISO moment in Vietnam's time zone (null when empty). */
  const momentOf = (hhmm) => (hhmm ? `${state.day}T${hhmm}:00+07:00` : null);
  const publishedPlan = () => state.plans.find((p) => p.status === "published") || null;
  const reasonText = (code) => {
    if (!code) return "";
    const key = `dispatcher.unassigned_${code}`;
    const text = t(key);
    return text === key ? code : text;
  };
  const minutes = (s) => Math.round(s / 60);

  function formError(sel, text, items = []) {
    const node = $(sel);
    node.replaceChildren(text, ...(items.length ? [el("ul", {}, ...items.map((i) => el("li", { text: i })))] : []));
    node.hidden = false;
  }

  /** The server's 422 rows as "column: reason" lines. */
  function errorLines(err) {
    const rows = err instanceof CR.ApiError ? err.body?.errors || [] : [];
    return rows.map((e) => [e.column, e.value !== undefined && e.value !== null && e.value !== "" ? `“${e.value}”` : "",
      e.code ? rowErrorReason(e) : e.reason].filter(Boolean).join(" "));
  }

  // The urgent-job form.

  function newJobId() {
    const now = new Intl.DateTimeFormat("en-GB", {
      timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    }).format(new Date()).replaceAll(":", "");
    return `GAP-${now}`;
  }

  /** The form as a row of the jobs file, or null (and the error shown) when a field is missing. */
  function urgentRow() {
    const f = $("#urgent-form").elements;
    const val = (name) => f[name].value.trim();
    const missing = [
      ["job_id", "dispatcher.job_id"], ["lon", "dispatcher.lon"], ["lat", "dispatcher.lat"],
      ["window_from", "dispatcher.window_from"], ["window_to", "dispatcher.window_to"],
    ].filter(([name]) => !val(name)).map(([, key]) => t(key));
    if (missing.length) {
      formError("#urgent-error", t("dispatcher.field_required", { field: missing.join(", ") }));
      return null;
    }
    $("#urgent-error").hidden = true;
    const row = {
      job_id: val("job_id"),
      kind: val("kind"),
      lon: Number(val("lon")),
      lat: Number(val("lat")),
      windows: `${val("window_from")}-${val("window_to")}`,
      priority: Number(val("priority")),
    };
    for (const name of ["category", "address", "recipient", "note"]) if (val(name)) row[name] = val(name);
    for (const name of ["service_min", "items", "cash_vnd"]) if (val(name) !== "") row[name] = Number(val(name));
    return row;
  }

  async function askSuggestions(event) {
    event.preventDefault();
    const pub = publishedPlan();
    const job = urgentRow();
    if (!job || !pub) return;
    const now = momentOf($("#urgent-now").value);
    $("#btn-suggest").disabled = true;
    try {
      const answer = await CR.api(`/plans/${pub.id}/suggestions`, {
        method: "POST", json: { job, limit: 10, ...(now ? { now } : {}) },
      });
      running.asked = { planId: pub.id, job, now };
      renderSuggestions(answer);
      markJob(L.latLng(job.lat, job.lon));
    } catch (err) {
      $("#suggest-box").hidden = true;
      formError("#urgent-error", apiErrorText(err), errorLines(err));
    } finally {
      $("#btn-suggest").disabled = !publishedPlan();
    }
  }

  function renderSuggestions(answer) {
    const rows = answer.data;
    const feasible = rows.filter((s) => s.feasible).length;
    $("#suggest-box").hidden = false;
    setText("#suggest-summary", rows.length
      ? t("dispatcher.suggest_count", { n: rows.length, feasible }) : t("dispatcher.suggest_none"));
    $("#suggestions tbody").replaceChildren(...rows.map((s, i) => {
      const late = s.newly_late || [];
      const problems = s.violations || [];
      const accept = el("button", {
        type: "button", class: "small-btn good accept", text: t("dispatcher.accept"),
        disabled: problems.length > 0, onclick: () => acceptSuggestion(s, accept),
      });
      return el("tr", {
        class: s.feasible ? "suggestion" : "suggestion infeasible",
        "data-courier": s.courier_id, "data-position": s.position, "data-feasible": s.feasible ? "1" : "0",
      },
      el("td", { class: "num", text: String(i + 1) }),
      el("td", {},
        el("span", { class: "swatch", style: { background: colourOf(s.courier_id) } }),
        el("strong", { text: s.courier_id }), " ", el("span", { class: "muted", text: courierName(s.courier_id) }),
        el("br"),
        el("span", { class: "muted small", text: t("dispatcher.position_text", { n: s.position + 1 })
          + (s.via_office ? ` · ${t("dispatcher.via_office")}` : "") }),
        ...(problems.length ? [el("ul", { class: "violations small" },
          ...problems.map((v) => el("li", { text: v })))] : []),
        s.feasible ? null : el("span", { class: "badge infeasible-badge", text: t("dispatcher.infeasible") })),
      el("td", { class: "num eta", text: clock(s.eta_s) }),
      el("td", { class: "num", text: `${t("dispatcher.added_min", { min: minutes(s.added_s) })} · ${t("dispatcher.added_km", { km: km(s.added_m) })}` }),
      el("td", { class: `late${late.length ? " warn" : " muted"}`, "data-late": late.join(" "),
        text: late.length ? t("dispatcher.late_list", { jobs: late.join(", ") }) : t("dispatcher.late_none") }),
      el("td", {}, accept));
    }));
  }

  async function acceptSuggestion(s, button) {
    const asked = running.asked;
    if (!asked) return;
    button.disabled = true;
    try {
      const draft = await CR.api(`/plans/${asked.planId}/suggestions/accept`, {
        method: "POST",
        json: { job: asked.job, courier_id: s.courier_id, position: s.position, ...(asked.now ? { now: asked.now } : {}) },
      });
      running.asked = null;
      $("#suggest-box").hidden = true;
      $("#urgent-job-id").value = newJobId();
      clearPick();
      await refreshPlanList();
      await loadPlan(draft.id);
      flash(t("dispatcher.accepted", { job: asked.job.job_id, courier: s.courier_id, version: draft.version }));
      $("#diff-card").scrollIntoView({ block: "nearest" });
    } catch (err) {
      button.disabled = false;
      formError("#urgent-error", apiErrorText(err), errorLines(err));
    }
  }

  function addToReplan() {
    const job = urgentRow();
    if (!job) return;
    running.newJobs = running.newJobs.filter((j) => j.job_id !== job.job_id).concat([job]);
    $("#urgent-job-id").value = newJobId();
    clearPick();
    renderRunning();
    flash(t("dispatcher.job_added_replan", { job: job.job_id }));
    $("#replan-card").open = true;
  }

  // Picking the job's place on the map.

  function startPick() {
    running.picking = true;
    view?.map.getContainer().classList.add("picking");
    flash(t("dispatcher.pick_hint"));
  }

  function clearPick() {
    running.pickMarker?.remove();
    running.pickMarker = null;
  }

  function onMapClick(e) {
    if (!running.picking) return;
    running.picking = false;
    view.map.getContainer().classList.remove("picking");
    $("#urgent-lon").value = e.latlng.lng.toFixed(6);
    $("#urgent-lat").value = e.latlng.lat.toFixed(6);
    markJob(e.latlng);
  }

  /** Show where the urgent job is. */
  function markJob(latlng) {
    clearPick();
    if (!view) return;
    running.pickMarker = L.marker(latlng, {
      icon: L.divIcon({ className: "pick-icon", html: el("span", { text: "!" }), iconSize: [24, 24] }),
      zIndexOffset: 900,
    }).addTo(view.map);
  }

  // The re-plan form.

  function offRow(courierId, at) {
    const select = el("select", { class: "off-courier", "aria-label": t("common.courier") }, ...courierOptions(null));
    if (courierId) select.value = courierId;
    const time = el("input", { type: "time", class: "off-at", value: at || hhmmNow(), "aria-label": t("dispatcher.courier_off_from") });
    const li = el("li", { class: "off-row" }, select, el("span", { class: "muted", text: t("dispatcher.courier_off_from") }), time,
      el("button", { type: "button", class: "small-btn", text: t("dispatcher.remove"), onclick: () => li.remove() }));
    return li;
  }

  function chip(text, onRemove, attrs = {}) {
    return el("li", { class: "chip", ...attrs }, el("span", { text }),
      el("button", { type: "button", class: "chip-x", "aria-label": t("dispatcher.remove"), title: t("dispatcher.remove"), text: "×", onclick: onRemove }));
  }

  /** The parts of the running day that follow the shown plan: what can be re-planned, cancelled. */
  function renderRunning() {
    const pub = publishedPlan();
    for (const sel of ["#btn-suggest", "#btn-add-replan", "#btn-replan"]) {
      const node = $(sel);
      if (node) node.disabled = !pub;
    }
    show("#replan-blocked", !pub);
    $("#replan-new-jobs").replaceChildren(...(running.newJobs.length
      ? running.newJobs.map((j) => chip(`${j.job_id} · ${t(`dispatcher.kind_${j.kind}`)} · ${j.windows}`, () => {
        running.newJobs = running.newJobs.filter((x) => x !== j);
        renderRunning();
      }, { "data-job": j.job_id }))
      : [el("li", { class: "muted small", text: t("dispatcher.new_jobs_none") })]));
    $("#replan-cancelled").replaceChildren(...[...running.cancelled].map((id) => chip(id, () => {
      running.cancelled.delete(id);
      renderRunning();
    }, { "data-job": id })));
    const open = [];
    for (const r of state.plan?.routes || []) {
      for (const s of r.stops) {
        const st = state.stopStatus[s.job_id] || s.status;
        if (!["completed", "failed"].includes(st) && !running.cancelled.has(s.job_id)) open.push([s.job_id, r.courier_id]);
      }
    }
    for (const u of state.plan?.unassigned || []) if (!running.cancelled.has(u.job_id)) open.push([u.job_id, null]);
    open.sort((a, b) => a[0].localeCompare(b[0]));
    $("#replan-cancel-pick").replaceChildren(
      el("option", { value: "", text: t("dispatcher.cancel_job") }),
      ...open.map(([id, cid]) => el("option", { value: id, text: cid ? `${id} · ${cid}` : id })),
    );
  }

  /** Upload the chosen jobs file for the day; resolve false (errors shown) if it was refused. */
  async function uploadReplanJobs(file) {
    const box = $("#replan-upload-errors");
    box.hidden = true;
    const body = new FormData();
    body.append("file", file);
    try {
      await CR.api(`/jobs?${new URLSearchParams({ day: state.day, keep_good: "false" })}`, { method: "POST", body });
      $("#replan-file").value = "";
      return true;
    } catch (err) {
      const errors = err instanceof CR.ApiError ? err.body?.errors || [] : [];
      setText("#replan-upload-title", errors.length
        ? t("dispatcher.upload_rejected", { file: file.name, n: errors.length })
        : `${file.name}: ${apiErrorText(err)}`);
      $("#replan-upload-list").replaceChildren(...errors.map((e) => el("li", { "data-row": e.row ?? "", "data-column": e.column ?? "" },
        el("strong", { text: `${t("common.row")} ${e.row ?? "–"}` }), ` · ${e.column ?? ""} · `,
        el("span", { text: rowErrorReason(e) }))));
      box.hidden = false;
      return false;
    }
  }

  async function startReplan(event) {
    event.preventDefault();
    const pub = publishedPlan();
    $("#replan-error").hidden = true;
    if (!pub) return;
    const limit = Number($("#replan-time-limit").value);
    if (!(limit > 0 && limit <= 600)) {
      formError("#replan-error", t("dispatcher.time_limit_invalid"));
      return;
    }
    let closures = null;
    const text = $("#replan-closures").value.trim();
    if (text) {
      try {
        closures = JSON.parse(text);
      } catch {
        closures = null;
      }
      if (!closures || closures.type !== "FeatureCollection" || !Array.isArray(closures.features)) {
        formError("#replan-error", t("dispatcher.closures_bad"));
        return;
      }
    }
    const now = momentOf($("#replan-now").value);
    const unavailable = [...document.querySelectorAll("#replan-off .off-row")].map((li) => ({
      courier_id: li.querySelector(".off-courier").value,
      at: momentOf(li.querySelector(".off-at").value) || now,
    })).filter((o) => o.courier_id).map((o) => (o.at ? o : { courier_id: o.courier_id }));
    $("#btn-replan").disabled = true;
    try {
      const file = $("#replan-file").files[0];
      if (file && !(await uploadReplanJobs(file))) return;
      const body = {
        new_jobs: running.newJobs,
        with_uploaded_jobs: $("#replan-with-uploaded").checked || Boolean(file),
        cancelled: [...running.cancelled],
        unavailable,
        time_limit_s: limit,
        ...(now ? { now } : {}),
        ...(closures ? { closures } : {}),
      };
      const created = await CR.api(`/plans/${pub.id}/replan`, { method: "POST", json: body });
      running.newJobs = [];
      running.cancelled.clear();
      $("#replan-off").replaceChildren();
      $("#replan-closures").value = "";
      $("#replan-card").open = false;
      await followNewPlan(created, { parent_id: pub.id });
      $("#plan-card").scrollIntoView({ block: "nearest" });
    } catch (err) {
      formError("#replan-error", `${t("dispatcher.replan_failed")}: ${apiErrorText(err)}`, errorLines(err));
    } finally {
      $("#btn-replan").disabled = !publishedPlan();
    }
  }

  // The draft's difference from the plan in force: a table and marks on the map.

  function diffOf(plan) {
    return plan?.parent_id && plan.stats?.diff ? plan.stats.diff : null;
  }

  function courierCell(cid) {
    if (!cid) return el("span", { class: "muted", text: t("dispatcher.no_round") });
    return el("span", { class: "who", "data-courier": cid },
      el("span", { class: "swatch", style: { background: colourOf(cid) } }), cid);
  }

  /** A job's planned service start in the shown plan (a line of an insertion carries none). */
  function plannedStart(jobId) {
    for (const r of state.plan?.routes || []) {
      const stop = r.stops.find((s) => s.job_id === jobId);
      if (stop) return stop.start_s ?? stop.arrival_s;
    }
    return null;
  }

  function etaChange(line) {
    if (line.eta_change_s === null || line.eta_change_s === undefined) {
      return clock(line.eta_after_s ?? line.eta_before_s ?? (line.after ? plannedStart(line.job_id) : null));
    }
    const min = minutes(line.eta_change_s);
    return `${t("dispatcher.diff_eta", { before: clock(line.eta_before_s), after: clock(line.eta_after_s) })} (${
      t("dispatcher.diff_minutes", { sign: min > 0 ? "+" : "", min })})`;
  }

  function renderDiff() {
    const plan = state.plan;
    const diff = diffOf(plan);
    show("#diff-card", Boolean(diff));
    for (const node of document.querySelectorAll(".diff-legend")) node.hidden = !diff;
    if (!diff) return;
    const parent = state.plans.find((p) => p.id === plan.parent_id);
    setText("#diff-title", t("dispatcher.diff_title", { version: parent?.version ?? "?" }));
    const counts = diff.counts || {};
    $("#diff-counts").replaceChildren(...DIFF_KINDS.filter((k) => counts[k]).map((k) => el("span", {
      class: `badge diff-${k}`, "data-kind": k, "data-count": counts[k], text: `${counts[k]} ${t(`dispatcher.diff_count_${k}`)}`,
    })));
    const lines = (diff.jobs || []).filter((j) => CHANGED.includes(j.kind))
      .sort((a, b) => CHANGED.indexOf(a.kind) - CHANGED.indexOf(b.kind) || a.job_id.localeCompare(b.job_id));
    $("#diff-jobs tbody").replaceChildren(...(lines.length ? lines.map((j) => el("tr", {
      "data-job": j.job_id, "data-kind": j.kind, "data-before": j.before ?? "", "data-after": j.after ?? "",
      "data-reason": j.reason ?? "",
    },
    el("td", {}, el("strong", { text: j.job_id }), " ",
      el("span", { class: `badge diff-${j.kind}`, text: t(`dispatcher.diff_kind_${j.kind}`) }),
      j.reason ? el("div", { class: "reason small", text: reasonText(j.reason) }) : null),
    el("td", { class: "couriers" }, courierCell(j.before), " → ", courierCell(j.after)),
    el("td", { class: "num small", text: etaChange(j) })))
      : [el("tr", {}, el("td", { colspan: "3", class: "muted", text: t("dispatcher.diff_none") }))]));
    const shifted = (diff.jobs || []).filter((j) => j.kind === "kept" && j.eta_change_s);
    show("#diff-eta-box", shifted.length > 0);
    setText("#diff-eta-summary", t("dispatcher.diff_eta_changed", { n: shifted.length }));
    $("#diff-eta-list").replaceChildren(...shifted.map((j) => el("li", { "data-job": j.job_id },
      el("strong", { text: j.job_id }), ` · ${j.after} · ${etaChange(j)}`)));
    const button = $("#btn-publish-draft");
    button.textContent = t("dispatcher.publish_draft", { version: plan.version });
    button.hidden = plan.status !== "ready";
    button.disabled = plan.status !== "ready";
  }

  function drawDiff() {
    layers.diff?.clearLayers();
    const diff = diffOf(state.plan);
    if (!diff || !view) return;
    for (const j of diff.jobs || []) {
      if (j.kind === "moved" || j.kind === "added") {
        const marker = stopMarkers.get(j.job_id);
        if (!marker) continue;
        marker.getElement()?.setAttribute("data-diff", j.kind);
        const label = j.kind === "moved"
          ? `${j.job_id}: ${j.before ?? "–"} → ${j.after}` : `${j.job_id}: ${t("dispatcher.diff_kind_added")} · ${j.after}`;
        const ring = L.circleMarker(marker.getLatLng(), {
          renderer: svg, className: `diff-ring diff-${j.kind}`, radius: 12, color: colourOf(j.after),
          weight: 3, dashArray: j.kind === "moved" ? "4 3" : null, fill: false, interactive: true,
        }).bindTooltip(tip(label)).addTo(layers.diff);
        ring.getElement()?.setAttribute("data-job", j.job_id);
        if (j.kind === "added") {
          L.marker(marker.getLatLng(), {
            icon: L.divIcon({ className: "diff-mark diff-added", html: el("span", { text: "+" }), iconSize: [18, 18], iconAnchor: [-4, 22] }),
            interactive: false,
          }).addTo(layers.diff).getElement()?.setAttribute("data-job", j.job_id);
        }
      } else if (j.kind === "dropped" || j.kind === "unrouted") {
        const where = unassignedAt.get(j.job_id);
        if (!where) continue;
        const mark = L.marker(where, {
          icon: L.divIcon({ className: "diff-mark diff-dropped", html: el("span", { text: "×" }), iconSize: [22, 22] }),
          zIndexOffset: 800,
        }).bindTooltip(tip(`${j.job_id}: ${j.before ?? "–"} → ${t("dispatcher.no_round")} · ${reasonText(j.reason)}`))
          .addTo(layers.diff);
        mark.getElement()?.setAttribute("data-job", j.job_id);
      }
    }
  }

  function startRunningDay() {
    $("#urgent-job-id").value = newJobId();
    $("#urgent-now").value = hhmmNow();
    $("#replan-now").value = hhmmNow();
    $("#urgent-form").addEventListener("submit", askSuggestions);
    $("#urgent-form").addEventListener("input", () => { $("#urgent-error").hidden = true; });
    $("#btn-add-replan").addEventListener("click", addToReplan);
    $("#btn-pick").addEventListener("click", startPick);
    $("#replan-form").addEventListener("submit", startReplan);
    $("#btn-add-off").addEventListener("click", () => {
      $("#replan-off").append(offRow(null, $("#replan-now").value));
    });
    $("#replan-cancel-pick").addEventListener("change", (e) => {
      if (e.target.value) running.cancelled.add(e.target.value);
      renderRunning();
    });
    $("#btn-publish-draft").addEventListener("click", publish);
    // The suggestions answer one plan in force; a newer one makes them stale.
    $("#plan-select").addEventListener("change", () => {
      running.asked = null;
      $("#suggest-box").hidden = true;
    });
  }

  // -- uploads ---------------------------------------------------------------------------------

  const KINDS = ["depots", "couriers", "jobs"];

  function showUploadErrors(kind, errors, title) {
    $("#upload-errors-box").hidden = !errors.length;
    setText("#upload-errors-title", title);
    $("#upload-errors tbody").replaceChildren(...errors.map((e) => el("tr", {
      "data-row": e.row ?? "", "data-column": e.column ?? "", "data-file": kind,
    },
    el("td", { text: t(`dispatcher.file_${kind}`) }),
    el("td", { class: "num", text: e.row ?? "–" }),
    el("td", {}, el("code", { text: e.column ?? "" })),
    el("td", {}, el("code", { text: e.value ?? "" })),
    el("td", { text: rowErrorReason(e) }))));
  }

  /** A refused row's reason in the page's language when it has a message, else the server's words. */
  function rowErrorReason(e) {
    if (!e.code) return e.reason;
    const key = `dispatcher.reason_${e.code}`;
    const text = t(key, e.params);
    return text === key ? e.reason : text;
  }

  async function upload(event) {
    event.preventDefault();
    const form = $("#upload-form");
    const keep = $("#keep-good").checked;
    const chosen = KINDS.filter((k) => form.elements[k].files.length);
    const result = $("#upload-result");
    result.replaceChildren();
    showUploadErrors("jobs", [], "");
    if (!chosen.length) {
      result.append(el("p", { class: "error", text: t("dispatcher.upload_none") }));
      return;
    }
    $("#btn-upload").disabled = true;
    try {
      for (const kind of chosen) {
        const body = new FormData();
        body.append("file", form.elements[kind].files[0]);
        const params = new URLSearchParams({ keep_good: keep ? "true" : "false" });
        if (kind === "jobs") params.set("day", state.day);
        try {
          const res = await CR.api(`/${kind}?${params}`, { method: "POST", body });
          result.append(el("p", { class: "ok", "data-file": kind, text: t("dispatcher.upload_stored", {
            file: t(`dispatcher.file_${kind}`), n: res.stored,
          }) }));
          if (res.rejected?.length) {
            showUploadErrors(kind, res.rejected, t("dispatcher.upload_skipped", {
              file: t(`dispatcher.file_${kind}`), n: res.rejected.length,
            }));
          }
          form.elements[kind].value = "";
        } catch (err) {
          if (err instanceof CR.ApiError && err.body?.errors?.length) {
            showUploadErrors(kind, err.body.errors, t("dispatcher.upload_rejected", {
              file: t(`dispatcher.file_${kind}`), n: err.body.errors.length,
            }));
          } else {
            result.append(el("p", { class: "error", text: `${t(`dispatcher.file_${kind}`)}: ${apiErrorText(err)}` }));
          }
          const rest = chosen.slice(chosen.indexOf(kind) + 1);
          if (rest.length) {
            result.append(el("p", { class: "muted small", text: t("dispatcher.upload_stopped", {
              files: rest.map((k) => t(`dispatcher.file_${k}`)).join(", "),
            }) }));
          }
          break;
        }
      }
      const [jobs, couriers] = await Promise.all([
        CR.api(`/jobs?day=${state.day}&limit=1`).catch(() => ({ count: null })),
        CR.apiAll("/couriers").catch(() => ({ data: state.couriers })),
      ]);
      state.jobCount = jobs.count;
      state.couriers = couriers.data;
      renderSummary();
    } finally {
      $("#btn-upload").disabled = false;
    }
  }

  // -- start -----------------------------------------------------------------------------------

  async function start() {
    const main = document.querySelector(".dispatch");
    main.prepend(el("div", { id: "flash", class: "flash", hidden: true, role: "status" }));
    const day = new URLSearchParams(location.search).get("day") || CR.today();
    $("#day").value = day;
    $("#day").addEventListener("change", (e) => {
      if (e.target.value) loadDay(e.target.value).catch(showLoadError);
    });
    $("#plan-select").addEventListener("change", (e) => {
      const id = Number(e.target.value);
      if (id) loadPlan(id).catch(showLoadError);
    });
    $("#upload-form").addEventListener("submit", upload);
    $("#btn-plan").addEventListener("click", startPlan);
    $("#btn-publish").addEventListener("click", publish);
    $("#btn-round-close").addEventListener("click", () => selectRound(state.selected));
    startRunningDay();
    $("#upload-card").open = true;
    try {
      view = await CR.map.create("map");
      for (const name of ["rounds", "stops", "unassigned", "depots", "diff"]) layers[name] = L.layerGroup().addTo(view.map);
      view.map.on("click", onMapClick);
      let roadsTimer = null;
      view.map.on("moveend", () => {
        // Roads follow the view after a pan or zoom (one request once the map settles).
        clearTimeout(roadsTimer);
        roadsTimer = setTimeout(() => view.showRoadsAround(view.map.getBounds()).catch(() => {}), 500);
      });
    } catch (err) {
      console.error("map", err);
    }
    await loadDay(day);
    if (state.plan) $("#upload-card").open = false;
    if (!state.plan && view) view.map.fire("moveend");
    document.body.dataset.ready = "1";
  }

  function showLoadError(err) {
    showPlanError(apiErrorText(err));
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((err) => {
      showLoadError(err);
      document.body.dataset.ready = "1";
    });
  });
  void me;
})();

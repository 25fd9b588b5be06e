// The manager's page: a date range and a grouping, then the report of /reports/range —
// headline numbers, server-drawn SVG charts, tables, CSV and XLSX downloads (with the token).
"use strict";

(() => {
  CR.requireRole("manager", "dispatcher");
  const LANG = document.documentElement.lang === "en" ? "en" : "vi";
  const LOCALE = LANG === "vi" ? "vi-VN" : "en-GB";
  const form = document.getElementById("report-form");
  const errorBox = document.getElementById("report-error");
  const statusLine = document.getElementById("report-status");
  const KEY_COLUMN = { post_office: "depot_id", zone: "zone_id", courier: "courier_id", day: "day" };
  const TEXT_COLUMNS = new Set(["depot_id", "zone_id", "courier_id", "day", "ly_do"]);
  const PERCENT = new Set(["on_time_rate", "completion_rate", "late_share", "share",
    "first_attempt_success_rate", "authorised_share"]);
  const DECIMAL = new Set([
    "mean_h", "median_h", "p90_h", "median_min", "p90_min", "stops_per_day",
    "median_delay_min", "p90_delay_min", "mean_attempts_to_complete",
  ]);
  const TABLES = {
    groups: ["attempts", "completed", "failed", "on_time", "on_time_rate", "completion_rate",
      "median_h", "p90_h", "median_min", "late_share"],
    failures: ["ly_do", "count", "share"],
    couriers: ["courier_id", "depot_id", "days", "attempts", "stops_per_day", "completion_rate",
      "on_time_rate", "median_delay_min", "failed"],
    unassigned: ["ly_do", "count"],
    first_attempt: ["first_attempts", "first_attempt_success_rate", "mean_attempts_to_complete",
      "completed_after_retry"],
    handovers: ["handovers", "citizen", "authorised", "authorised_share"],
  };
  const blobUrls = new Map();

  const pct = new Intl.NumberFormat(LOCALE, { style: "percent", maximumFractionDigits: 1 });
  const dec = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 });
  const int = new Intl.NumberFormat(LOCALE);

  function addDays(iso, n) {
    const d = new Date(`${iso}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }

  function formatDay(iso) {
    const [y, m, d] = iso.split("-");
    return `${d}/${m}/${y}`;
  }

  function format(column, value) {
    if (value === null || value === undefined) return "–";
    if (column === "day") return formatDay(value);
    if (PERCENT.has(column)) return pct.format(value);
    if (DECIMAL.has(column)) return dec.format(value);
    if (typeof value === "number") return int.format(value);
    return String(value);
  }

  function params() {
    const data = new FormData(form);
    return new URLSearchParams({ start: data.get("start"), end: data.get("end"), by: data.get("by") });
  }

  function showError(err) {
    const item = err?.body?.errors?.[0];
    const reason = item ? `${item.column ? item.column + ": " : ""}${item.reason}` : err.message;
    errorBox.textContent = CR.t("manager.error_range", { reason });
    errorBox.hidden = false;
    statusLine.textContent = "";
  }

  function renderHeadline(h) {
    const tiles = {
      stops: [int.format(h.stops), `${CR.t("manager.pending")}: ${int.format(h.pending)} · `
        + `${CR.t("manager.unassigned")}: ${int.format(h.unassigned)}`],
      completed: [int.format(h.completed), ""],
      failed: [int.format(h.failed), ""],
      on_time_rate: [h.on_time_rate === null ? "–" : pct.format(h.on_time_rate),
        CR.t("manager.of_attempts", { on_time: h.on_time, attempts: h.attempts })],
      median_r2c: [h.median_request_to_completion_h === null ? "–"
        : CR.t("manager.hours_short", { value: dec.format(h.median_request_to_completion_h) }), ""],
    };
    for (const [key, [value, note]] of Object.entries(tiles)) {
      const tile = document.querySelector(`.tile[data-key=${key}]`);
      tile.querySelector(".tile-value").textContent = value;
      tile.querySelector(".tile-note").textContent = note;
    }
  }

  function renderTable(key, title, table, columns) {
    const head = CR.el("tr", {}, ...columns.map((c) =>
      CR.el("th", { class: TEXT_COLUMNS.has(c) ? null : "num",
        text: CR.t(`manager.col_${key === "unassigned" && c === "count" ? "jobs" : c}`),
        scope: "col" })));
    const body = table.rows.map((row) => CR.el("tr", {}, ...columns.map((c) => {
      const value = c === "ly_do" && LANG === "en" ? row.reason_en : row[c];
      return CR.el("td", { class: typeof value === "number" ? "num" : null, text: format(c, value) });
    })));
    if (!body.length) {
      body.push(CR.el("tr", {}, CR.el("td", { class: "empty", colspan: columns.length,
        text: CR.t("manager.no_data") })));
    }
    return CR.el("section", { class: "card table-card", "data-table": key },
      CR.el("h2", { text: title }),
      CR.el("table", {}, CR.el("thead", {}, head), CR.el("tbody", {}, ...body)));
  }

  function renderTables(report) {
    const keyColumn = KEY_COLUMN[report.by];
    const group = CR.t(`manager.group_${report.by}`);
    const container = document.getElementById("tables");
    container.replaceChildren(
      renderTable("groups", CR.t("manager.table_groups", { group }), report.tables.groups,
        [keyColumn, ...TABLES.groups]),
      renderTable("failures", CR.t("manager.table_failures"), report.tables.failures,
        [keyColumn, ...TABLES.failures]),
      renderTable("couriers", CR.t("manager.table_couriers"), report.tables.couriers, TABLES.couriers),
      renderTable("unassigned", CR.t("manager.table_unassigned"), report.tables.unassigned,
        TABLES.unassigned),
      renderTable("first_attempt", CR.t("manager.table_first_attempt", { group }),
        report.tables.first_attempt, [keyColumn, ...TABLES.first_attempt]),
      renderTable("handovers", CR.t("manager.table_handovers", { group }), report.tables.handovers,
        [keyColumn, ...TABLES.handovers]),
    );
  }

  /** Fetch with the token and return the body as a Blob (a plain link cannot send the header). */
  async function fetchBlob(path) {
    const response = await CR.api(path);
    return { blob: await response.blob(), response };
  }

  async function loadCharts(query, generation) {
    await Promise.all([...document.querySelectorAll("img[data-chart]")].map(async (img) => {
      const chart = img.dataset.chart;
      const q = new URLSearchParams(query);
      q.set("chart", chart);
      q.set("lang", LANG);
      const { blob } = await fetchBlob(`/reports/range.svg?${q}`);
      if (generation !== loads) return; // a newer request owns the page now
      const url = URL.createObjectURL(blob);
      await new Promise((resolve) => {
        img.onload = img.onerror = resolve;
        img.src = url;
      });
      img.dataset.query = String(query);
      if (blobUrls.has(chart)) URL.revokeObjectURL(blobUrls.get(chart));
      blobUrls.set(chart, url);
    }));
  }

  let loads = 0; // the number of the latest request: slower, older answers are dropped

  async function load() {
    const generation = ++loads;
    errorBox.hidden = true;
    statusLine.textContent = CR.t("common.loading");
    const query = params();
    const here = new URLSearchParams(location.search);
    for (const [name, value] of query) here.set(name, value);
    history.replaceState(null, "", `?${here}`);
    // The language switch keeps the range and grouping.
    const other = document.querySelector("a.lang-switch");
    if (other) other.search = `?${query}&lang=${other.hreflang}`;
    try {
      const report = await CR.api(`/reports/range?${query}`);
      if (generation !== loads) return;
      renderHeadline(report.headline);
      renderTables(report);
      await loadCharts(query, generation);
      if (generation !== loads) return;
      statusLine.textContent = report.days.length
        ? CR.t("manager.range_days", { days: report.days.length })
        : CR.t("manager.no_plans");
      document.body.dataset.reportLoaded = `${query}`;
    } catch (err) {
      if (generation === loads) showError(err);
    }
  }

  async function download(kind, button) {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = CR.t("manager.downloading");
    try {
      const { blob, response } = await fetchBlob(`/reports/range.${kind}?${params()}`);
      const match = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
      const link = CR.el("a", { href: URL.createObjectURL(blob),
        download: match ? match[1] : `report.${kind}` });
      document.body.append(link);
      link.click();
      setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  const given = new URLSearchParams(location.search);
  const today = CR.today();
  form.elements.end.value = given.get("end") || today;
  form.elements.start.value = given.get("start") || addDays(form.elements.end.value, -6);
  if (given.get("by")) form.elements.by.value = given.get("by");
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  form.elements.by.addEventListener("change", load);
  for (const button of document.querySelectorAll("[data-download]")) {
    button.addEventListener("click", () => download(button.dataset.download, button));
  }
  load();
})();

// The manager's cash reconciliation of pension payouts: per post office and courier for the
// report's date range, the courier days with a difference (signed off with a note by a
// manager), and CSV/XLSX downloads. Loaded after manager.js; follows its date range.
"use strict";

(() => {
  const me = CR.requireRole("manager", "dispatcher");
  const LANG = document.documentElement.lang === "en" ? "en" : "vi";
  const LOCALE = LANG === "vi" ? "vi-VN" : "en-GB";
  const form = document.getElementById("report-form");
  const status = document.getElementById("cash-status");
  const errorBox = document.getElementById("cash-error");
  const vnd = new Intl.NumberFormat(LOCALE);
  const el = CR.el;
  const MONEY = new Set(["issued_vnd", "paid_vnd", "returned_vnd", "difference_vnd"]);
  const canSign = me.role === "manager" || me.role === "admin";
  let loads = 0;

  function range() {
    const data = new FormData(form);
    return new URLSearchParams({ start: data.get("start"), end: data.get("end") });
  }

  function cell(column, value) {
    let text;
    if (value === null || value === undefined) text = "–";
    else if (MONEY.has(column)) text = `${vnd.format(value)} ₫`;
    else if (column === "day") text = value.split("-").reverse().join("/");
    else if (typeof value === "number") text = vnd.format(value);
    else if (typeof value === "boolean") text = value ? "●" : "";
    else text = String(value);
    const numeric = typeof value === "number" || MONEY.has(column);
    return el("td", { class: numeric ? "num" : null, "data-column": column, text });
  }

  function table(key, rows, columns, extra) {
    const head = el("tr", {}, ...columns.map((c) => el("th", { scope: "col",
      class: MONEY.has(c) || ["days", "payouts", "flagged"].includes(c) ? "num" : null,
      text: CR.t(`manager.col_${c}`) })), extra ? el("th", { text: CR.t("manager.col_action") }) : null);
    const body = rows.map((row) => el("tr", {
      "data-courier": row.courier_id ?? null, "data-depot": row.depot_id ?? null,
      "data-day": row.day ?? null, "data-flagged": row.flagged === true || row.flagged > 0 ? "1" : "0",
    }, ...columns.map((c) => cell(c, row[c])), extra ? el("td", {}, extra(row)) : null));
    if (!body.length) {
      body.push(el("tr", {}, el("td", { class: "empty", colspan: columns.length + (extra ? 1 : 0),
        text: CR.t("manager.no_data") })));
    }
    return el("table", { "data-cash-table": key }, el("thead", {}, head), el("tbody", {}, ...body));
  }

  function signOff(row) {
    if (!row.flagged) {
      return row.sign_off_note
        ? el("span", { class: "muted", text: CR.t("manager.signed_off", { note: row.sign_off_note }) })
        : null;
    }
    if (!canSign) return null;
    const note = el("input", { type: "text", maxlength: "1000", name: "note",
      placeholder: CR.t("manager.sign_off_note"), "aria-label": CR.t("manager.sign_off_note") });
    const button = el("button", { type: "submit", class: "primary", text: CR.t("manager.sign_off") });
    return el("form", { class: "sign-off", onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true;
      errorBox.hidden = true;
      try {
        await CR.api(`/days/${row.day}/cash/${encodeURIComponent(row.courier_id)}/sign-off`,
          { method: "POST", json: { note: note.value } });
        await load();
      } catch (err) {
        const item = err?.body?.errors?.[0];
        errorBox.textContent = CR.t("manager.sign_off_failed",
          { reason: item ? `${item.column ? `${item.column}: ` : ""}${item.reason}` : err.message });
        errorBox.hidden = false;
        button.disabled = false;
      }
    } }, note, button);
  }

  async function load() {
    const generation = ++loads;
    const query = range();
    errorBox.hidden = true;
    try {
      const rep = await CR.api(`/reports/cash?${query}`);
      if (generation !== loads) return;
      const amounts = ["payouts", "issued_vnd", "paid_vnd", "returned_vnd", "difference_vnd", "flagged"];
      document.getElementById("cash-offices").replaceChildren(
        table("offices", rep.by_office, ["depot_id", "days", ...amounts]));
      document.getElementById("cash-couriers").replaceChildren(
        table("couriers", rep.by_courier, ["depot_id", "courier_id", "days", ...amounts]));
      const open = rep.rows.filter((r) => r.flagged || (r.difference_vnd ?? 0) !== 0);
      document.getElementById("cash-days").replaceChildren(
        table("days", open, ["day", "depot_id", "courier_id", "issued_vnd", "paid_vnd",
          "returned_vnd", "difference_vnd"], signOff));
      status.textContent = CR.t("manager.cash_flagged_count", { n: rep.flagged });
      document.body.dataset.cashLoaded = `${query}`;
    } catch (err) {
      if (generation !== loads) return;
      errorBox.textContent = CR.t("manager.error_range", { reason: err.message });
      errorBox.hidden = false;
    }
  }

  async function download(kind, button) {
    button.disabled = true;
    try {
      const response = await CR.api(`/reports/cash.${kind}?${range()}`);
      const blob = await response.blob();
      const match = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
      const link = el("a", { href: URL.createObjectURL(blob), download: match ? match[1] : `cash.${kind}` });
      document.body.append(link);
      link.click();
      setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
    } catch (err) {
      errorBox.textContent = err.message;
      errorBox.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  form.addEventListener("submit", () => load());
  for (const button of document.querySelectorAll("[data-cash-download]")) {
    button.addEventListener("click", () => download(button.dataset.cashDownload, button));
  }
  load();
})();

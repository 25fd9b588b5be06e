// The dispatcher's day end: cash issued and returned per courier, closing the day, and the jobs
// it carried to the next working day, held or returned; then the jobs carried into the day shown.
// Loaded after dispatcher.js; follows the page's day picker and plan status. Text goes in as text.
"use strict";

(() => {
  CR.requireRole("dispatcher");
  const LANG = document.documentElement.lang === "en" ? "en" : "vi";
  const LOCALE = LANG === "vi" ? "vi-VN" : "en-GB";
  const $ = (sel) => document.querySelector(sel);
  const t = CR.t;
  const el = CR.el;
  const vnd = new Intl.NumberFormat(LOCALE);
  const money = (v) => (v === null || v === undefined ? "–" : vnd.format(v));
  const when = new Intl.DateTimeFormat(LOCALE, {
    timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
  });
  const reasonText = (code) => (code ? t(`common.reason_${code}`) : "");
  const state = { day: null, closed: null, cash: [], loads: 0 };

  function apiErrorText(err) {
    const item = err?.body?.errors?.[0];
    if (item) return `${item.column ? `${item.column}: ` : ""}${item.reason}`;
    return err?.message || String(err);
  }

  function showError(text) {
    $("#close-error").textContent = text;
    $("#close-error").hidden = !text;
  }

  /** One job of a close: id, address, attempts, last reason, first request. */
  function jobLine(o, extra) {
    const parts = [t("dispatcher.attempts", { n: o.attempts })];
    if (o.fail_reason) parts.push(reasonText(o.fail_reason));
    if (o.first_requested_at) {
      parts.push(t("dispatcher.first_requested", { time: when.format(new Date(o.first_requested_at)) }));
    }
    return el("li", { "data-job": o.job_id, "data-attempts": String(o.attempts) },
      el("strong", { text: o.job_id }), " ",
      o.address ? el("span", { class: "muted", text: o.address }) : null,
      el("div", { class: "small", text: parts.join(" · ") }),
      extra || null);
  }

  function amountInput(name, row, value) {
    return el("input", {
      type: "number", min: "0", step: "1000", inputmode: "numeric", class: "cash-input",
      name, "data-courier": row.courier_id, value: value === null || value === undefined ? "" : String(value),
      placeholder: String(name === "issued" ? row.proposed_vnd
        : (row.issued_vnd ?? row.proposed_vnd) - row.paid_vnd),
      title: name === "issued" ? `${t("dispatcher.cash_proposed")}: ${money(row.proposed_vnd)}` : null,
      "aria-label": `${t(name === "issued" ? "dispatcher.cash_issued" : "dispatcher.cash_returned")} ${row.courier_id}`,
    });
  }

  function renderCash() {
    const closed = state.closed !== null;
    const rows = state.cash.map((row) => {
      const diff = row.difference_vnd;
      return el("tr", { "data-courier": row.courier_id, "data-flagged": row.flagged ? "1" : "0" },
        el("td", { text: row.courier_id }),
        el("td", { class: "num" }, closed ? money(row.issued_vnd) : amountInput("issued", row, row.issued_vnd)),
        el("td", { class: "num", text: money(row.paid_vnd) }),
        el("td", { class: "num" }, closed ? money(row.returned_vnd) : amountInput("returned", row, row.returned_vnd)),
        el("td", { class: `num${row.flagged ? " error" : ""}` }, money(diff),
          row.flagged ? el("span", { class: "badge failed", text: t("dispatcher.cash_flagged") }) : null));
    });
    $("#cash-table tbody").replaceChildren(...rows);
  }

  function renderClosed() {
    const c = state.closed;
    $("#close-result").hidden = c === null;
    if (c === null) return;
    const counts = c.counts || {};
    $("#close-status").textContent = t("dispatcher.close_done", {
      completed: counts.completed ?? 0, failed: counts.failed ?? 0, not_attempted: counts.not_attempted ?? 0,
    });
    $("#close-status").dataset.closed = "1";
    $("#carried-title").textContent = t("dispatcher.carried_title", { day: c.next_day || "–" });
    $("#carried-list").replaceChildren(...c.carried.map((o) => jobLine(o)));
    const next = $("#btn-open-next");
    next.hidden = !c.next_day;
    next.textContent = c.next_day ? t("dispatcher.open_day", { day: c.next_day }) : "";
    next.dataset.day = c.next_day || "";
    const held = c.held.filter((o) => !o.carried_to);
    $("#held-count").textContent = String(held.length);
    $("#held-list").replaceChildren(...held.map((o) => jobLine(o,
      el("button", { type: "button", class: "small-btn", text: t("dispatcher.release"),
        onclick: () => release(o) }))));
    $("#returned-count").textContent = String(c.returned.length);
    $("#returned-list").replaceChildren(...c.returned.map((o) => jobLine(o)));
    // Results phones sent after the close that the dispatcher must see to (routing.close.revise).
    const late = c.late || [];
    $("#after-close-box").hidden = late.length === 0;
    $("#after-close-count").textContent = String(late.length);
    $("#after-close-list").replaceChildren(...late.map((o) => jobLine(o, el("div", {
      class: "small late-result", "data-late": o.late_result,
      text: t(`dispatcher.after_close_${o.late_result}`, { day: o.carried_to || c.next_day || "–" }),
    }))));
  }

  function renderCarriedIn(rows) {
    $("#carried-in-count").textContent = String(rows.length);
    $("#carried-in-empty").hidden = rows.length > 0;
    $("#carried-in-list").replaceChildren(...rows.map((o) => jobLine(o)));
  }

  async function load(day) {
    const generation = ++state.loads;
    state.day = day;
    showError("");
    const [closed, cash, carried] = await Promise.all([
      CR.api(`/days/${day}/close`).catch((err) => {
        if (err instanceof CR.ApiError && err.status === 404) return null;
        throw err;
      }),
      CR.api(`/days/${day}/cash`),
      CR.api(`/days/${day}/carried`),
    ]);
    if (generation !== state.loads) return; // another day was picked meanwhile
    state.closed = closed;
    state.cash = closed ? closed.cash : cash.data;
    $("#close-status").dataset.closed = closed ? "1" : "0";
    if (!closed) {
      $("#close-status").textContent = cash.data.length ? t("dispatcher.close_open") : t("dispatcher.close_no_plan");
    }
    $("#btn-close-day").hidden = closed !== null;
    $("#btn-close-day").disabled = closed !== null || cash.data.length === 0;
    renderCash();
    renderClosed();
    renderCarriedIn(carried.data);
    document.body.dataset.closeLoaded = day;
  }

  function amounts(name) {
    const out = {};
    for (const input of document.querySelectorAll(`#cash-table input[name=${name}]`)) {
      if (input.value === "") continue;
      const value = Number(input.value);
      if (!Number.isFinite(value) || value < 0) throw new Error(`${input.dataset.courier}: ${input.value}`);
      out[input.dataset.courier] = Math.round(value);
    }
    return out;
  }

  async function closeDay() {
    const day = state.day;
    if (!window.confirm(t("dispatcher.close_confirm", { day }))) return;
    const button = $("#btn-close-day");
    button.disabled = true;
    showError("");
    try {
      const issued = amounts("issued");
      const returned = amounts("returned");
      for (const row of state.cash) {
        const value = issued[row.courier_id];
        if (value !== undefined && value !== row.issued_vnd) {
          await CR.api(`/days/${day}/cash/${encodeURIComponent(row.courier_id)}`,
            { method: "PUT", json: { issued_vnd: value } });
        }
      }
      await CR.api(`/days/${day}/close`, { method: "POST", json: { cash_returned: returned } });
      await load(day);
    } catch (err) {
      showError(t("dispatcher.close_failed", { reason: apiErrorText(err) }));
      button.disabled = false;
    }
  }

  async function release(o) {
    showError("");
    try {
      const done = await CR.api(`/days/${o.day}/held/${encodeURIComponent(o.job_id)}/release`,
        { method: "POST", json: {} });
      $("#close-status").textContent = t("dispatcher.released", { job: done.job_id, day: done.carried_to });
      await load(state.day);
    } catch (err) {
      showError(apiErrorText(err));
    }
  }

  function openDay(day) {
    const picker = $("#day");
    picker.value = day;
    picker.dispatchEvent(new Event("change")); // dispatcher.js loads the day; so do we
  }

  document.addEventListener("DOMContentLoaded", () => {
    const picker = $("#day");
    const reload = () => {
      if (picker.value) load(picker.value).catch((err) => showError(apiErrorText(err)));
    };
    picker.addEventListener("change", reload);
    $("#btn-close-day").addEventListener("click", closeDay);
    $("#btn-open-next").addEventListener("click", (e) => openDay(e.target.dataset.day));
    // A plan published (or another version picked) on this page changes the rounds to close.
    new MutationObserver(reload).observe($("#plan-status"), { attributes: true, attributeFilter: ["data-status"] });
    reload();
  });
})();

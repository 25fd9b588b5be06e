// Shared by every page: text in the chosen language, the signed-in user's token, API calls.
// Plain browser JavaScript, no build step; pages add their own script after this one.
"use strict";

const CR = (() => {
  const TOKEN_KEY = "courier.token";
  const USER_KEY = "courier.user";
  const MESSAGES = JSON.parse(document.getElementById("i18n").textContent);

  /** Text of `key` ("page.key"), with {name} placeholders filled from `values`. */
  function t(key, values) {
    let text = MESSAGES[key] ?? key;
    for (const [name, value] of Object.entries(values || {})) {
      text = text.replaceAll(`{${name}}`, String(value));
    }
    return text;
  }

  const token = () => localStorage.getItem(TOKEN_KEY);
  const user = () => JSON.parse(localStorage.getItem(USER_KEY) || "null");

  function signIn(accessToken, me) {
    localStorage.setItem(TOKEN_KEY, accessToken);
    localStorage.setItem(USER_KEY, JSON.stringify(me));
  }

  /** Forget the token on this device and go back to the sign-in page. */
  function forget() {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
    location.href = "/";
  }

  // A page may hold the user back (unsent work) or clean up before signing out.
  const signOutChecks = [];
  const beforeSignOut = (check) => signOutChecks.push(check);

  /** The sign-out button: checks, then the server revokes the token (offline it just expires). */
  async function signOut() {
    for (const check of signOutChecks) {
      if ((await check()) === false) return;
    }
    const held = token();
    if (held) {
      try {
        await fetch("/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${held}` } });
      } catch {
        // no signal: the token stays valid until it expires or an admin revokes it
      }
    }
    forget();
  }

  /** An API error: HTTP status and the JSON error body ({detail, errors[]}). */
  class ApiError extends Error {
    constructor(status, body) {
      super(body?.detail || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  /**
   * Call the API with the user's token. `options.json` is sent as a JSON body; a FormData
   * `options.body` is sent as is. Resolves to the parsed JSON (or the Response for non-JSON);
   * rejects with ApiError for 4xx/5xx and TypeError when the network is down.
   */
  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}) };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    let body = options.body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    const response = await fetch(path, { method: options.method || "GET", headers, body });
    const type = response.headers.get("content-type") || "";
    const data = type.includes("json") ? await response.json() : null;
    if (response.status === 401 && !options.allowUnauthorized) {
      forget();
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return data ?? response;
  }

  /**
   * Read every page of a list endpoint (`{data, count, next_after}`), following `next_after`;
   * resolves to `{data, count}` with all the rows.
   */
  async function apiAll(path) {
    const rows = [];
    let after = null;
    let page;
    do {
      const url = new URL(path, location.origin);
      url.searchParams.set("limit", "5000");
      if (after !== null) url.searchParams.set("after", after);
      page = await api(url.pathname + url.search);
      rows.push(...page.data);
      after = page.next_after ?? null;
    } while (after !== null);
    return { data: rows, count: page.count };
  }

  /** The page only works signed in with one of `roles` (admins pass); else back to login. */
  function requireRole(...roles) {
    const me = user();
    if (!token() || !me || !(roles.includes(me.role) || me.role === "admin")) {
      location.href = "/";
      throw new Error("not signed in");
    }
    return me;
  }

  /** The local date (Asia/Ho_Chi_Minh) as YYYY-MM-DD. */
  function today() {
    return new Intl.DateTimeFormat("en-CA", { timeZone: "Asia/Ho_Chi_Minh" }).format(new Date());
  }

  // Links the pages make: same-site paths, the web, a phone's map app, a downloaded blob, a
  // call to a number (digits only).
  const SAFE_URL = /^(?:https?:|geo:|blob:|tel:\+?\d{6,15}$|\/(?!\/)|\?|#)/i;

  /**
   * Make an element: el("div", {class: "x", text: "y", style: {width: "3px"}}, child, ...).
   * Text goes in as text (never parsed as HTML); strings among the children become text nodes.
   * `style` is an object set through the CSSOM, which the Content-Security-Policy allows (a
   * style attribute would be refused). An `href`/`src` with any other scheme (javascript:,
   * data:) is left out.
   */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "style") Object.assign(node.style, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if ((name === "href" || name === "src") && !SAFE_URL.test(String(value).trim())) {
        console.warn(`el: refused ${name}`, value);
      } else node.setAttribute(name, value === true ? "" : value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  /** A random id for idempotency keys. */
  function newKey() {
    if (crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
      b.toString(16).padStart(2, "0")).join("");
  }

  function showNetStatus() {
    const badge = document.getElementById("net-status");
    if (!badge) return;
    badge.dataset.online = navigator.onLine ? "1" : "0";
    badge.textContent = t(navigator.onLine ? "common.online" : "common.offline");
  }
  window.addEventListener("online", showNetStatus);
  window.addEventListener("offline", showNetStatus);
  document.addEventListener("DOMContentLoaded", () => {
    showNetStatus();
    for (const button of document.querySelectorAll("[data-action=logout]")) {
      button.addEventListener("click", signOut);
    }
  });

  return { t, token, user, signIn, signOut, beforeSignOut, api, apiAll, ApiError, requireRole, today, el, newKey };
})();

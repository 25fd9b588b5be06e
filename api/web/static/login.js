// Sign in with a username and password (or a token from `courier users token`), then go to
// the page of one's role.
"use strict";

const HOME = { dispatcher: "/dispatcher", admin: "/dispatcher", courier: "/courier", manager: "/manager" };

document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const error = document.getElementById("login-error");
  error.hidden = true;
  try {
    let accessToken = (form.get("token") || "").trim();
    if (!accessToken) {
      const got = await CR.api("/auth/token", {
        method: "POST",
        json: { username: form.get("username"), password: form.get("password") },
        allowUnauthorized: true,
      });
      accessToken = got.access_token;
    }
    const me = await fetch("/auth/me", { headers: { Authorization: `Bearer ${accessToken}` } });
    if (!me.ok) throw new CR.ApiError(me.status, await me.json());
    const who = await me.json();
    CR.signIn(accessToken, who);
    location.href = HOME[who.role] + location.search;
  } catch (e) {
    if (e instanceof CR.ApiError && e.status === 429) {
      error.textContent = CR.t("common.login_throttled");
    } else {
      error.textContent = e instanceof CR.ApiError ? CR.t("common.login_failed") : `${CR.t("common.error")}: ${e.message}`;
    }
    error.hidden = false;
  }
});

// Service worker of the courier page (scope /courier): the page starts and shows the round
// without signal. It only answers GET requests; the page's own outbox (IndexedDB, courier.js)
// holds the courier's actions until the network is back, so nothing here ever replays a write.
"use strict";

// The server names the cache after the files it holds (api/web/views.py): a deploy that
// changes any of them installs this worker anew and drops the old cache.
const VERSION = "courier-dev";
const SHELL = [
  "/courier",
  "/courier.webmanifest",
  "/static/app.css",
  "/static/courier.css",
  "/static/common.js",
  "/static/map.js",
  "/static/courier.js",
  "/static/courier-icon.svg",
  "/static/vendor/leaflet/leaflet.js",
  "/static/vendor/leaflet/leaflet.css",
  "/static/vendor/leaflet/images/layers.png",
  "/static/vendor/leaflet/images/layers-2x.png",
];
// Data the page needs offline, answered network-first and kept in the cache.
const DATA = ["/rounds/me", "/cash/me", "/map/roads", "/map/config"];
// How long to wait for a weak signal before answering from the cache.
const NETWORK_TIMEOUT_MS = 5000;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(VERSION)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

/** Fetch with a deadline, so a weak signal falls back to the cache instead of hanging. */
function fetchWithin(request, ms) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), ms);
  return fetch(request, { signal: controller.signal }).finally(() => clearTimeout(timer));
}

/** Network first; store good answers; fall back to the cache (by URL, or ignoring ?query). */
async function networkFirst(request, { ignoreSearch = false, cacheKey = request } = {}) {
  const cache = await caches.open(VERSION);
  try {
    const response = await fetchWithin(request, NETWORK_TIMEOUT_MS);
    if (response.ok) await cache.put(cacheKey, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(cacheKey, { ignoreSearch });
    if (cached) return cached;
    throw err;
  }
}

/** Cache first, refreshing the cached copy in the background (scripts, styles, Leaflet). */
async function staleWhileRevalidate(request, event) {
  const cache = await caches.open(VERSION);
  const cached = await cache.match(request, { ignoreSearch: true });
  const refresh = fetch(request)
    .then((response) => {
      if (response.ok) return cache.put(request, response.clone()).then(() => response);
      return response;
    });
  if (cached) {
    event.waitUntil(refresh.catch(() => undefined));
    return cached;
  }
  return refresh;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return; // writes go through the page's outbox
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // tiles from a tile server: not ours
  if (request.mode === "navigate") {
    // The page shell: one cached copy for /courier?day=…&lang=…
    event.respondWith(networkFirst(request, { ignoreSearch: true, cacheKey: "/courier" }));
  } else if (url.pathname.startsWith("/static/") || url.pathname === "/courier.webmanifest") {
    event.respondWith(staleWhileRevalidate(request, event));
  } else if (DATA.some((path) => url.pathname === path)) {
    event.respondWith(networkFirst(request));
  }
});

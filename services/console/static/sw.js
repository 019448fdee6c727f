// Service worker: keeps the app shell for a quick start, the report form for use offline (it holds no record),
// sends the outbox (queue.js) when Background Sync says the network is back, and shows push alerts (notifications'
// push-alerts.js: lock-screen-safe words only, the link opened on tap). Case pages are never cached.
"use strict";
importScripts("/static/queue.js", "/push-alerts.js");
SafeguardPushAlerts.listen(self, { icon: "/static/icon.svg", home: "/" });

const SHELL = "safeguard-shell-v2";
const PAGES = "safeguard-pages-v1";
const SHELL_FILES = [
  "/static/console.css",
  "/static/console.js",
  "/static/queue.js",
  "/static/icon.svg",
  "/manifest.webmanifest",
];
const OFFLINE_PAGES = ["/report"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(SHELL_FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  const kept = [SHELL, PAGES];
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((n) => !kept.includes(n)).map((n) => caches.delete(n))))
      .then(() => self.clients.claim())
  );
});

// The report form: the network first (fresh CSRF token and key), the last copy when offline.
function networkFirst(request) {
  return fetch(request)
    .then((answer) => {
      if (answer.ok && !answer.redirected) {
        const copy = answer.clone();
        caches.open(PAGES).then((cache) => cache.put(request.url, copy));
      }
      return answer;
    })
    .catch(() => caches.match(request.url).then((hit) => hit || Response.error()));
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (OFFLINE_PAGES.includes(url.pathname) && event.request.mode === "navigate") {
    event.respondWith(networkFirst(event.request));
  } else if (SHELL_FILES.includes(url.pathname)) {
    event.respondWith(caches.match(event.request).then((hit) => hit || fetch(event.request)));
  }
});

async function sendAndTell() {
  const report = await SafeguardQueue.flush();
  const open = await self.clients.matchAll({ type: "window" });
  open.forEach((client) => client.postMessage({ outbox: report }));
  if (report.left && !report.signIn) throw new Error("kept items left: the browser tries the sync again");
}

self.addEventListener("sync", (event) => {
  if (event.tag === "safeguard-outbox") event.waitUntil(sendAndTell());
});

// App-shell service worker of the browser POS. scripts/build-web.sh fills in __VERSION__ (a
// hash of the bundle) and __PRECACHE__ (every file of the bundle), so a new build installs a
// new cache and removes the old one.
//
// Only the shell is cached. The till's API (/v1/...) always goes to the network: sales live
// in IndexedDB, never in this cache, and a stale answer must never pass for a live one.
const VERSION = "__VERSION__";
const CACHE = "pos-shell-" + VERSION;
const PRECACHE = __PRECACHE__;

self.addEventListener("install", (event) => {
  event.waitUntil(
    // cache: "reload" bypasses the HTTP cache, so a new version never pairs old JS with new WASM.
    caches.open(CACHE)
      .then((c) => c.addAll(PRECACHE.map((url) => new Request(url, { cache: "reload" }))))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(
        keys.filter((k) => k.startsWith("pos-shell-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/v1/") || url.pathname === "/metrics") return;
  if (req.mode === "navigate") {
    event.respondWith(caches.match("./index.html").then((hit) => hit || fetch(req)));
    return;
  }
  event.respondWith(caches.match(req).then((hit) => hit || fetch(req)));
});

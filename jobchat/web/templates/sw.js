// jobchat's service worker (served at /sw.js, scope /): the app shell for offline use, and the
// notifications of Web Push. Rendered by jobchat/web/pwa.py with this build's asset URLs.
//
// Privacy: only the offline page and our static files are ever cached. Pages (someone's inbox,
// a conversation) and API answers always go to the network and are never stored, so a shared
// computer keeps nothing of the person who used it.
"use strict";

const VERSION = {{ version|tojson }};
const CACHE = `jobchat-shell-${VERSION}`;
const SHELL = {{ shell|tojson }};
const OFFLINE = "/offline";
const ICON = {{ icon|tojson }};
const BADGE = {{ badge|tojson }};

self.addEventListener("install", (event) => {
  // Only navigations and /static/ are ours to answer: everything else (the API, fragments,
  // the socket) goes straight to the network without waking this worker, where the browser
  // can route (Chromium's static routing). That also keeps a page's keepalive request as it
  // unloads (app.js: "Delete for me" when leaving) from depending on a worker.
  if (event.addRoutes) {
    try {
      event.addRoutes([
        { condition: { not: { or: [{ requestMode: "navigate" }, { urlPattern: "/static/*" }] } }, source: "network" },
      ]);
    } catch {
      // An older browser that knows addRoutes but not these conditions: the fetch handler
      // below lets those requests through anyway.
    }
  }
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SHELL);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("jobchat-") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // Network first, never stored; the offline page only when the network fails.
    event.respondWith((async () => {
      try {
        return await fetch(request);
      } catch (error) {
        const offline = await caches.match(OFFLINE);
        if (offline) return offline;
        throw error;
      }
    })());
    return;
  }
  if (url.pathname.startsWith("/static/")) {
    // Our assets are named by their content (?v=hash): a cached one is the right one.
    event.respondWith((async () => {
      const cached = await caches.match(request);
      if (cached) return cached;
      const response = await fetch(request);
      if (response.ok && url.searchParams.has("v")) {
        const cache = await caches.open(CACHE);
        await cache.put(request, response.clone());
      }
      return response;
    })());
  }
  // Anything else (the API, fragments, the socket): the browser's own way, never cached here.
});

// --- push ------------------------------------------------------------------------------------

function sameOriginPath(value) {
  // Only a page of ours: a payload cannot send a click elsewhere.
  try {
    const url = new URL(value, self.location.origin);
    if (url.origin === self.location.origin) return url.pathname + url.search + url.hash;
  } catch {
    // not a URL at all
  }
  return "/";
}

function text(value, fallback) {
  return typeof value === "string" && value.trim() ? value : fallback;
}

self.addEventListener("push", (event) => {
  let data = null;
  try {
    data = event.data ? event.data.json() : null;
  } catch {
    data = null; // not JSON: still show something (a push without a notification is punished)
  }
  if (data === null || typeof data !== "object") data = {};
  const conversation = data.conversation;
  const options = {
    body: text(data.body, "Open jobchat to read it."),
    // One notification per conversation: a newer message replaces the older one.
    tag: conversation !== undefined && conversation !== null ? `conversation-${conversation}` : "jobchat",
    renotify: true,
    icon: ICON,
    badge: BADGE,
    timestamp: Date.now(),
    data: {
      url: sameOriginPath(data.url || "/inbox"),
      conversation: conversation ?? null,
      message: data.message ?? null,
    },
  };
  event.waitUntil(self.registration.showNotification(text(data.title, "New message"), options));
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const path = sameOriginPath(event.notification.data && event.notification.data.url);
  const target = new URL(path, self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    const ours = windows.filter((client) => new URL(client.url).origin === self.location.origin);
    // The window last used is first; take it to the conversation instead of opening another.
    for (const client of ours) {
      try {
        const focused = await client.focus();
        try {
          await (focused || client).navigate(target);
        } catch {
          // navigate() works on windows this worker controls; ask any other to go there.
          (focused || client).postMessage({ type: "jobchat-open", url: path });
        }
        return;
      } catch {
        // a window that may not take focus: try the next one
      }
    }
    await self.clients.openWindow(target);
  })());
});

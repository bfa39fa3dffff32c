// The installable app in the pages: registers the service worker (/sw.js), asks at the right
// moment whether to turn on notifications, and drives the "This device" part of Settings.
//
// The right moment: just after the person sent a message (app.js fires "jobchat:sent"), never
// on first load; only where Web Push works, permission has not been asked yet, and they did
// not say "Not now" before (remembered in localStorage). On an iPhone or iPad, Web Push works
// only in the app added to the Home Screen, so there the prompt says how to do that instead.
"use strict";

(() => {
  const body = document.body;
  if (!body || !body.dataset.me || !("serviceWorker" in navigator)) {
    if (body && body.dataset.me) window.jobchatPush = { supported: false };
    return;
  }
  const me = body.dataset.me;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const LATER = `jobchat:push-later:${me}`;
  // The browser may refuse storage: in a third-party frame (jobchat embedded in an ATS's page)
  // when it blocks third-party cookies, reading localStorage throws. Then what it keeps
  // lasts as long as the page.
  const store = {
    get(key) { try { return window.localStorage.getItem(key); } catch { return null; } },
    set(key, value) { try { window.localStorage.setItem(key, value); } catch { /* refused */ } },
    remove(key) { try { window.localStorage.removeItem(key); } catch { /* refused */ } },
  };

  const registered = navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => null);

  // A click on a notification when this window is not controlled by the worker (a first visit).
  navigator.serviceWorker.addEventListener("message", (event) => {
    const data = event.data || {};
    if (data.type === "jobchat-open" && typeof data.url === "string" && data.url.startsWith("/") && !data.url.startsWith("//")) {
      window.location.assign(data.url);
    }
  });

  // In another site's frame (jobchat embedded in an ATS's page) browsers do not let a page ask
  // for notifications: offering to turn them on there would offer what cannot be given.
  const framed = window.self !== window.top;
  const supported = !framed && "PushManager" in window && "Notification" in window;
  const appleMobile = /iPhone|iPad|iPod/.test(navigator.userAgent)
    || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
  const installed = window.matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
  const needsHomeScreen = !framed && appleMobile && !installed && !supported;

  async function api(method, path, payload) {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "X-Requested-With": "fetch" },
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch { data = null; }
    }
    if (!response.ok) {
      const message = data && data.error && data.error.message;
      throw new Error(message || `The server answered ${response.status}.`);
    }
    return data;
  }

  function keyBytes(base64url) {
    const padded = base64url.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (base64url.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  }

  async function registration() {
    const found = await registered;
    if (!found) throw new Error("This browser would not start jobchat’s service worker.");
    return navigator.serviceWorker.ready;
  }

  // What this device is: "on", "off", "blocked", "unsupported" or "home-screen".
  async function state() {
    if (needsHomeScreen) return "home-screen";
    if (!supported) return "unsupported";
    if (Notification.permission === "denied") return "blocked";
    if (Notification.permission !== "granted") return "off";
    const reg = await registration();
    const subscription = await reg.pushManager.getSubscription();
    if (!subscription) return "off";
    const { items } = await api("GET", "/api/v1/push/subscriptions");
    return items.some((s) => s.endpoint === subscription.endpoint) ? "on" : "off";
  }

  // Permission, then the browser's push subscription, then the server keeps it.
  async function enable() {
    const permission = await Notification.requestPermission();
    if (permission === "denied") return "blocked";
    if (permission !== "granted") return "off";
    const reg = await registration();
    let subscription = await reg.pushManager.getSubscription();
    if (!subscription) {
      const { public_key: key } = await api("GET", "/api/v1/push/key");
      subscription = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
    }
    await api("POST", "/api/v1/push/subscriptions", subscription.toJSON());
    store.remove(LATER);
    return "on";
  }

  // The server forgets this browser's subscription, then the browser drops it.
  async function forget(subscription) {
    try {
      const { items } = await api("GET", "/api/v1/push/subscriptions");
      for (const s of items.filter((item) => item.endpoint === subscription.endpoint)) {
        await api("DELETE", `/api/v1/push/subscriptions/${encodeURIComponent(s.id)}`);
      }
    } finally {
      await subscription.unsubscribe();
    }
  }

  async function disable() {
    const reg = await registration();
    const subscription = await reg.pushManager.getSubscription();
    if (subscription) await forget(subscription);
    return "off";
  }

  window.jobchatPush = { supported, state, enable, disable };

  // --- signing out unsubscribes this browser ------------------------------------------------
  // Otherwise the next person on this device (a shared or family computer) would see the last
  // one's notifications. Never holds up the sign-out: whatever fails, or after a few seconds,
  // the form is sent; the server also deletes the subscriptions of the session that ends (so
  // without this script, too).

  async function forgetThisBrowser() {
    if (!supported) return;
    const reg = await navigator.serviceWorker.getRegistration("/");
    const subscription = reg ? await reg.pushManager.getSubscription() : null;
    if (subscription) await forget(subscription);
  }

  for (const form of document.querySelectorAll('form[action="/logout"]')) {
    let leaving = false;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (leaving) return;
      leaving = true;
      const enough = new Promise((resolve) => { setTimeout(resolve, 3000); });
      Promise.race([forgetThisBrowser().catch(() => {}), enough]).finally(() => form.submit());
    });
  }

  // --- the prompt in a conversation, after a send ------------------------------------------

  const prompt = document.getElementById("push-prompt");
  if (prompt) {
    const status = prompt.querySelector(".push-prompt-status");
    const enableButton = prompt.querySelector("[data-push=enable]");
    const laterButton = prompt.querySelector("[data-push=later]");
    const close = () => { prompt.hidden = true; };

    // What the last send decided, and how many sends there were (data-sent, data-decision):
    // a sign for tests, and for anyone debugging why the prompt did or did not come.
    let sends = 0;
    const decide = (decision) => {
      sends += 1;
      prompt.dataset.decision = decision;
      prompt.dataset.sent = String(sends);
    };
    document.addEventListener("jobchat:sent", () => {
      if (!prompt.hidden) return decide("already-shown");
      if (store.get(LATER)) return decide("later");
      if (needsHomeScreen) {
        prompt.classList.add("home-screen");
      } else if (!supported || Notification.permission !== "default") {
        return decide(supported ? "asked-before" : "unsupported");
      }
      prompt.hidden = false;
      return decide("shown");
    });

    laterButton.addEventListener("click", () => {
      store.set(LATER, new Date().toISOString());
      close();
    });

    enableButton.addEventListener("click", async () => {
      enableButton.disabled = true;
      status.textContent = "Turning on notifications…";
      try {
        const result = await enable();
        if (result === "on") {
          status.textContent = "Notifications are on for this device.";
          prompt.classList.add("done");
          setTimeout(close, 4000);
        } else if (result === "blocked") {
          status.textContent = "Notifications are blocked in this browser. You can allow them in the site settings (the icon beside the address), then turn them on in Settings.";
        } else {
          status.textContent = "Notifications stay off. You can turn them on any time in Settings.";
        }
      } catch (error) {
        status.textContent = `Notifications could not be turned on: ${error.message} Try again in Settings.`;
      } finally {
        enableButton.disabled = false;
      }
    });
  }

  // --- Settings: this device ---------------------------------------------------------------

  const device = document.getElementById("push-device");
  if (device) {
    const line = device.querySelector(".push-device-state");
    const toggle = device.querySelector("[data-push=toggle]");
    const help = device.querySelector(".push-device-help");
    const status = device.querySelector(".push-device-status");
    const TEXT = {
      on: ["Notifications are on for this device.", "Turn off on this device", ""],
      off: ["Notifications are off for this device.", "Turn on for this device", ""],
      blocked: [
        "Notifications are blocked in this browser.",
        "",
        "To allow them, open the site settings (the icon beside the address bar), set Notifications to Allow, then reload this page.",
      ],
      unsupported: ["This browser cannot show jobchat’s notifications.", "", "Email notifications still reach you."],
      "home-screen": [
        "On an iPhone or iPad, notifications work in the jobchat app on your Home Screen.",
        "",
        "Add jobchat to your Home Screen first: tap Share, then “Add to Home Screen”, open jobchat from there and turn notifications on in Settings.",
      ],
    };
    let current = "off";
    const show = (name) => {
      current = name;
      const [what, action, how] = TEXT[name];
      device.dataset.state = name;
      line.textContent = what;
      toggle.textContent = action;
      toggle.hidden = !action;
      help.textContent = how;
      help.hidden = !how;
    };
    state().then(show, (error) => {
      show("off");
      status.textContent = `Could not check this device: ${error.message}`;
    });
    toggle.addEventListener("click", async () => {
      toggle.disabled = true;
      status.textContent = current === "on" ? "Turning off…" : "Turning on…";
      try {
        const next = current === "on" ? await disable() : await enable();
        show(next);
        status.textContent = next === "on" ? "Done: this device will get notifications." : next === "off" ? "Done: this device will not get notifications." : "";
      } catch (error) {
        status.textContent = `That did not work: ${error.message}`;
      } finally {
        toggle.disabled = false;
      }
    });
  }
})();

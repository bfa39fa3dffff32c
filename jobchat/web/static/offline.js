// The offline page: "Try again" reloads the page that failed (the service worker showed this
// page in its place, so the address is still that page's). It also reloads by itself once
// jobchat answers again: checked when the browser says it is back online, and every few
// seconds (backing off to 15 s) for when the network was up and jobchat was not. Without this
// script the button is a link home.
"use strict";

(() => {
  const retry = document.getElementById("retry");
  const status = document.getElementById("offline-status");
  let delay = 1000;
  let timer = 0;

  const again = () => {
    if (status) status.textContent = "Reconnecting…";
    window.location.reload();
  };

  async function reachable() {
    try {
      // Not a navigation and not under /static/: the worker lets it through to the network.
      const response = await fetch("/offline", { cache: "no-store", credentials: "omit" });
      return response.ok;
    } catch {
      return false;
    }
  }

  async function check() {
    clearTimeout(timer);
    if (await reachable()) {
      again();
      return;
    }
    delay = Math.min(delay * 2, 15000);
    timer = setTimeout(check, delay);
  }

  if (retry) {
    retry.addEventListener("click", (event) => {
      event.preventDefault();
      again();
    });
  }
  window.addEventListener("online", () => {
    delay = 500; // just back: look again soon if the first try is too early
    check();
  });
  timer = setTimeout(check, delay);
})();

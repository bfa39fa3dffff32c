// The candidate pages' own script, beside app.js (which drives the open conversation, #thread):
// the candidate manager redraws itself when a conversation with one candidate changes, and a
// profile keeps its blue dots (agency threads, tabs) in step with what is unread.
// Markup comes only from the server (fragments it rendered and escaped); nothing here builds
// markup out of names or message text.
"use strict";

(() => {
  // --- the candidate manager: redrawn by the server -------------------------------------------

  const list = document.getElementById("candidates");
  if (list) {
    // Conversations the server said cannot change the list (job chats, agency threads): a
    // conversation's kind never changes, so they are never asked about again.
    const unrelated = new Set();
    const pending = new Set();
    let timer = null;

    async function refresh() {
      const ids = [...pending].filter((id) => !unrelated.has(id));
      pending.clear();
      if (!ids.length) return;
      const params = new URLSearchParams();
      for (const key of ["messaging", "q", "cursor"]) {
        const value = list.dataset[key];
        if (value && !(key === "messaging" && value === "all")) params.set(key, value);
      }
      // One conversation: the server may answer 204 (nothing to redraw, now or ever).
      if (ids.length === 1) params.set("conversation", String(ids[0]));
      let response;
      try {
        response = await fetch(`/candidates/list.html?${params}`, {
          credentials: "same-origin",
          headers: { "X-Requested-With": "fetch" },
        });
      } catch {
        return; // offline: the next frame retries
      }
      if (response.status === 204) { unrelated.add(ids[0]); return; }
      if (!response.ok) return;
      const html = await response.text();
      // Keep the keyboard where it was: the same control in the new rows, if it is still there.
      const focused = document.activeElement && list.contains(document.activeElement)
        ? focusKey(document.activeElement) : null;
      list.innerHTML = html;
      if (focused) {
        const again = [...list.querySelectorAll("a, button")].find((el) => focusKey(el) === focused);
        if (again) again.focus();
      }
    }

    function focusKey(el) {
      const row = el.closest("[data-candidate]");
      const form = el.closest("form");
      const what = form ? `${form.elements.kind.value}:${(form.elements.application || form.elements.candidate || {}).value}` : el.getAttribute("href");
      return `${row ? row.dataset.candidate : ""}|${el.tagName}|${what}`;
    }

    document.addEventListener("jobchat:frame", (event) => {
      const frame = event.detail;
      // Only stored events change the list (typing and presence do not).
      if (frame.id === null || typeof frame.conversation !== "number") return;
      if (unrelated.has(frame.conversation)) return;
      pending.add(frame.conversation);
      clearTimeout(timer);
      timer = setTimeout(refresh, 200);
    });
  }

  // --- a profile: blue dots for what is unread ----------------------------------------------

  const profile = document.getElementById("candidate-profile");
  if (profile) {
    const counts = (attribute) => {
      const map = new Map();
      for (const pair of (attribute || "").split(" ")) {
        const [id, count] = pair.split(":").map(Number);
        if (id) map.set(id, count || 0);
      }
      return map;
    };
    const agency = counts(profile.dataset.agency);
    const messages = counts(profile.dataset.messages);
    const tabs = document.querySelector('nav[aria-label="Candidate"]');

    function tabDot(tab, on) {
      if (!tabs) return;
      const link = [...tabs.querySelectorAll("a")].find(
        (a) => new URL(a.href, location.href).searchParams.get("tab") === tab,
      );
      if (!link) return;
      let dot = link.querySelector(".dot");
      if (on && !dot) {
        dot = document.createElement("span");
        dot.className = "dot";
        dot.setAttribute("role", "img");
        dot.setAttribute("aria-label", "new messages");
        link.append(" ", dot);
      } else if (!on && dot) {
        dot.remove();
      }
    }

    document.addEventListener("jobchat:frame", (event) => {
      const frame = event.detail;
      const id = frame.conversation;
      if (!frame.unread || typeof frame.unread.conversation !== "number") return;
      const unread = frame.unread.conversation;
      if (agency.has(id)) {
        agency.set(id, unread);
        const dot = profile.querySelector(`.agency-threads li[data-conversation="${Number(id)}"] .dot`);
        if (dot) dot.hidden = unread === 0;
        tabDot("agency", [...agency.values()].some((n) => n > 0));
      } else if (messages.has(id)) {
        messages.set(id, unread);
        tabDot("messages", [...messages.values()].some((n) => n > 0));
      }
    });
  }
})();

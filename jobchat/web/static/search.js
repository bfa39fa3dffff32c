// Search: Ctrl+K (Cmd+K) focuses the header's search field (or opens the search page where
// the header shows only its icon), "Load more" on the results page appends the next page in
// place, and a conversation opened at a result (?at=) loads newer messages as the reader
// scrolls down. Without this script the field, the "Load more" link and the "Load newer"
// button's page reloads still work. Results are server-rendered HTML; nothing is built here
// from message text.
"use strict";

(() => {
  const body = document.body;
  if (!body || !body.dataset.me) return;

  const visible = (el) => el && el.offsetParent !== null && getComputedStyle(el).visibility !== "hidden";

  document.addEventListener("keydown", (event) => {
    if (event.key.toLowerCase() !== "k" || !(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey) return;
    event.preventDefault();
    const field = [document.getElementById("search-q"), document.getElementById("topsearch-q")].find(visible);
    if (field) { field.focus(); field.select(); } else location.href = "/search";
  });

  async function page(href) {
    const response = await fetch(href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } });
    if (!response.ok) throw new Error(String(response.status));
    return response.text();
  }

  // --- the results page: "Load more" appends ---------------------------------------------------
  const results = document.getElementById("search-results");
  if (results) results.addEventListener("click", async (event) => {
    const more = event.target instanceof Element && event.target.closest("a[data-more]");
    if (!more || event.ctrlKey || event.metaKey || event.shiftKey) return;
    event.preventDefault();
    more.setAttribute("aria-disabled", "true");
    let html;
    try { html = await page(more.href); } catch { more.removeAttribute("aria-disabled"); return; }
    const doc = new DOMParser().parseFromString(html, "text/html");
    const list = results.querySelector(".search-results");
    const items = [...doc.querySelectorAll(".search-results > li")];
    const known = new Set([...list.querySelectorAll("li")].map((li) => li.dataset.messageId));
    const fresh = items.filter((li) => !known.has(li.dataset.messageId));
    for (const li of fresh) list.append(document.adoptNode(li));
    const next = doc.querySelector("a[data-more]");
    const holder = more.closest("p");
    if (next) { more.href = next.getAttribute("href"); more.removeAttribute("aria-disabled"); } else holder.remove();
    const count = doc.querySelector(".search-count");
    const shownCount = results.querySelector(".search-count");
    if (count && shownCount) shownCount.textContent = count.textContent;
    if (fresh.length) fresh[0].querySelector("a").focus();
  });

  // --- a conversation opened at a message: newer messages on scrolling down ------------------------
  const thread = document.getElementById("thread");
  const list = document.getElementById("messages");
  if (!thread || !list || !thread.dataset.at) return;
  const conversation = Number(thread.dataset.conversation);
  // The message opened at: highlighted for a moment (CSS), then like the others.
  const at = list.querySelector(`li.message[data-message-id="${CSS.escape(thread.dataset.at)}"]`);
  if (at) {
    at.classList.add("found");
    at.addEventListener("animationend", () => at.classList.remove("found", "notified"), { once: true });
  }
  let busy = false;
  async function loadNewer(button) {
    if (busy || !button.isConnected) return;
    busy = true;
    button.disabled = true;
    const days = list.querySelectorAll("li.message, li.activity");
    const day = days.length ? days[days.length - 1].dataset.day : "";
    let html = null;
    try {
      html = await page(`/conversations/${conversation}/messages.html?after=${Number(button.dataset.after)}&newer=1&day=${encodeURIComponent(day)}`);
    } catch { html = null; }
    busy = false;
    if (html === null) { button.disabled = false; return; }
    const template = document.createElement("template");
    template.innerHTML = html;
    // app.js may have drawn some already (a message that arrived meanwhile).
    const known = new Set([...list.querySelectorAll("li.message")].map((li) => li.dataset.messageId));
    for (const li of template.content.querySelectorAll("li.message")) if (known.has(li.dataset.messageId)) li.remove();
    const holder = button.closest("li");
    holder.replaceWith(template.content);
    watch();
  }
  const observer = "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
        for (const entry of entries) if (entry.isIntersecting) loadNewer(entry.target);
      }, { root: document.getElementById("scroller"), rootMargin: "0px 0px 200px 0px" })
    : null;
  function watch() {
    const button = list.querySelector(".load-newer");
    if (!button) return;
    button.addEventListener("click", () => loadNewer(button));
    // Only once the reader has moved: the page opens with the found message in view.
    if (observer) setTimeout(() => observer.observe(button), 800);
  }
  watch();
})();

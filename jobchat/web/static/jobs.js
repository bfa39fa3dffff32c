// The job pages and the candidate portal: lists that the server redraws when something in them
// changes. Each `[data-live-src]` element is replaced by the server-rendered (escaped) fragment
// at that address when a stored event arrives for one of the conversations it shows (any event,
// with `data-live-any`), or when the user joins or leaves a conversation (a chat was started).
// Nothing here builds markup out of names or message text.
"use strict";

(() => {
  const lists = document.querySelectorAll("[data-live-src]");
  if (!lists.length) return;

  const { fragment } = window.jobchat; // app.js, loaded before this script

  function shown(list) {
    return new Set([...list.querySelectorAll("[data-conversation]")].map((el) => Number(el.dataset.conversation)));
  }

  function watch(list) {
    let timer = null;
    let running = Promise.resolve();

    const redraw = () => {
      running = running.then(async () => {
        let html;
        try { html = await fragment(list.dataset.liveSrc); } catch { return; } // the next event retries
        // Keep the keyboard where it was: the same link or button in the new rows.
        const active = document.activeElement;
        const key = active && list.contains(active) ? active.dataset.key : null;
        list.innerHTML = html;
        if (key) {
          const again = list.querySelector(`[data-key="${CSS.escape(key)}"]`);
          if (again) again.focus();
        }
      });
    };

    document.addEventListener("jobchat:frame", (event) => {
      const frame = event.detail;
      if (!frame || frame.id === null || frame.conversation === null) return;
      const concerned =
        list.hasAttribute("data-live-any") ||
        shown(list).has(frame.conversation) ||
        frame.type === "member.added" ||
        frame.type === "member.removed";
      if (!concerned) return;
      clearTimeout(timer);
      timer = setTimeout(redraw, 150);
    });
  }

  for (const list of lists) watch(list);

  // On a phone the open chat is below the list: go to it (its history scrolls by itself to the
  // first unread message).
  const open = document.querySelector(".chat-layout .open-pane");
  if (open && window.matchMedia("(max-width: 59.99rem)").matches) {
    open.scrollIntoView({ block: "start" });
  }
})();

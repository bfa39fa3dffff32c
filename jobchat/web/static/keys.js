// jobchat keyboard shortcuts (press ? on any page for the list).
//
//   /        focus the page's search field
//   g i      inbox          g c   candidates (staff)     g j   jobs (the portal for candidates)
//   j / k    next / previous conversation in a list (also Alt+ArrowDown / Alt+ArrowUp)
//   Enter    opens the focused conversation (it is a link: the browser does that)
//   c / r    focus the composer on a conversation page
//   ?        the shortcut list, a <dialog>
//
// None of them fires while the person types (input, textarea, select, contenteditable) or
// holds Ctrl or Meta, so the browser's and the system's own shortcuts keep working.
"use strict";

(() => {
  const body = document.body;
  const candidate = body.dataset.meKind === "candidate";
  const places = { i: "/inbox", c: candidate ? null : "/candidates", j: candidate ? "/portal" : "/jobs" };
  const help = document.getElementById("shortcuts");
  // After "g", the next key picks a place; a second and a half later the "g" is forgotten.
  let pending = false;
  let pendingTimer = null;

  function typing(target) {
    if (!(target instanceof Element)) return false;
    if (target.closest("[contenteditable]:not([contenteditable='false'])")) return true;
    const field = target.closest("input, textarea, select");
    if (!field) return false;
    // Checkboxes and buttons take no text: shortcuts stay on there.
    return !(field instanceof HTMLInputElement) ||
      !["checkbox", "radio", "button", "submit", "reset"].includes(field.type);
  }

  // The conversation links of the list on this page: the inbox, or any list of chats.
  function rows() {
    return [...document.querySelectorAll(".conversation-list .row-link, .conversation-list a.chat-link")]
      .filter((link) => link.offsetParent !== null);
  }

  // Roving focus: one row link is in the tab order (the current one), the others are reached
  // with j/k, so Tab leaves the list in one step instead of walking every row.
  function rove(links, index) {
    links.forEach((link, i) => { link.tabIndex = i === index ? 0 : -1; });
    const link = links[index];
    link.focus();
    link.scrollIntoView({ block: "nearest" });
  }

  function move(step) {
    const links = rows();
    if (!links.length) return false;
    const current = links.indexOf(document.activeElement);
    const next = current === -1 ? (step > 0 ? 0 : links.length - 1)
      : Math.min(links.length - 1, Math.max(0, current + step));
    rove(links, next);
    return true;
  }

  function focusSearch() {
    // The page's own search field, else the header's message search where it is shown.
    const search = [document.querySelector("main input[type='search']"), document.getElementById("topsearch-q")]
      .find((field) => field && field.offsetParent !== null);
    if (!search) return false;
    search.focus();
    search.select();
    return true;
  }

  function focusComposer() {
    const composer = document.querySelector("#composer textarea");
    if (!composer || composer.disabled) return false;
    composer.focus();
    return true;
  }

  function showHelp() {
    if (!help || help.open) return false;
    help.showModal();
    return true;
  }

  if (help) {
    help.addEventListener("click", (event) => {
      // The close button, or a click on the backdrop (outside the dialog's box).
      if (event.target.closest("[data-close-dialog]") || event.target === help) help.close();
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.isComposing) return;
    if (typing(event.target) || (help && help.open)) return;
    let handled = false;
    if (event.altKey) {
      if (event.key === "ArrowDown") handled = move(1);
      else if (event.key === "ArrowUp") handled = move(-1);
    } else if (pending) {
      pending = false;
      clearTimeout(pendingTimer);
      const place = places[event.key];
      if (place) { location.assign(place); handled = true; }
    } else {
      switch (event.key) {
        case "/": handled = focusSearch(); break;
        case "?": handled = showHelp(); break;
        case "j": handled = move(1); break;
        case "k": handled = move(-1); break;
        case "c": case "r": handled = focusComposer(); break;
        case "g":
          pending = true;
          pendingTimer = setTimeout(() => { pending = false; }, 1500);
          handled = true;
          break;
        default: break;
      }
    }
    if (handled) event.preventDefault();
  });

  // The inbox is redrawn by app.js when something changes; a keyboard user keeps their place:
  // the row of the same conversation gets the focus back, wherever it moved to. Only when the
  // redraw took the focus away (it is on nothing, and it just left, or never left, the list),
  // never when the person had moved on.
  const inbox = document.getElementById("inbox");
  if (inbox) {
    let focused = null;
    let leftAt = null;
    inbox.addEventListener("focusin", (event) => {
      const row = event.target.closest("[data-conversation]");
      focused = row ? row.dataset.conversation : null;
      leftAt = null;
    });
    inbox.addEventListener("focusout", (event) => {
      if (!inbox.contains(event.relatedTarget)) leftAt = performance.now();
    });
    new MutationObserver(() => {
      const lost = document.activeElement === null || document.activeElement === body;
      if (!focused || !lost || (leftAt !== null && performance.now() - leftAt > 100)) return;
      const row = inbox.querySelector(`[data-conversation="${CSS.escape(focused)}"] .row-link`);
      if (row) rove(rows(), rows().indexOf(row));
    }).observe(inbox, { childList: true });
  }
})();

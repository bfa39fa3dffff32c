// Bulk messages: the candidate manager's selection (a count in the sticky bar, select all on the
// page, kept when the list redraws itself), and the progress page, redrawn from the server until
// the bulk is done. Markup comes only from the server; nothing here builds it from names.
"use strict";

(() => {
  // --- the candidate manager --------------------------------------------------------------

  const bar = document.querySelector("[data-bulk-bar]");
  const list = document.getElementById("candidates");
  if (bar && list) {
    const chosen = new Set();
    const all = bar.querySelector("[data-bulk-all]");
    const count = bar.querySelector("[data-bulk-count]");
    const go = bar.querySelector("[data-bulk-go]");
    const boxes = () => [...list.querySelectorAll("input.bulk-check")];

    function show() {
      const n = chosen.size;
      count.textContent = n ? `${n} selected` : "None selected";
      go.disabled = n === 0;
      go.textContent = n ? `Message ${n}` : "Message";
      const here = boxes();
      all.checked = here.length > 0 && here.every((box) => box.checked);
      all.indeterminate = !all.checked && here.some((box) => box.checked);
      bar.hidden = here.length === 0 && n === 0;
    }

    // The list is redrawn by candidates.js when a conversation changes: tick again what was
    // ticked, so a new message does not lose the selection.
    function restore() {
      for (const box of boxes()) box.checked = chosen.has(box.value);
      show();
    }

    list.addEventListener("change", (event) => {
      const box = event.target.closest("input.bulk-check");
      if (!box) return;
      if (box.checked) chosen.add(box.value); else chosen.delete(box.value);
      show();
    });
    all.addEventListener("change", () => {
      for (const box of boxes()) {
        box.checked = all.checked;
        if (all.checked) chosen.add(box.value); else chosen.delete(box.value);
      }
      show();
    });
    // Selected on this page but no longer in the list (redrawn without them): still sent.
    bar.addEventListener("submit", () => {
      const here = new Set(boxes().map((box) => box.value));
      for (const value of chosen) {
        if (here.has(value)) continue;
        const hidden = document.createElement("input");
        hidden.type = "hidden";
        hidden.name = "application";
        hidden.value = value;
        bar.append(hidden);
      }
    });
    new MutationObserver(restore).observe(list, { childList: true });
    for (const box of boxes()) if (box.checked) chosen.add(box.value);
    show();
  }

  // --- the progress page --------------------------------------------------------------------

  const progress = document.getElementById("bulk-progress");
  if (progress) {
    const every = Number(progress.dataset.every) || 1500;
    const finished = () => {
      const status = progress.querySelector("[data-status]");
      return status && status.dataset.status === "done";
    };

    async function poll() {
      if (finished()) return;
      try {
        const response = await fetch(progress.dataset.poll, {
          credentials: "same-origin",
          headers: { "X-Requested-With": "fetch" },
        });
        if (response.ok) {
          const html = await response.text();
          // Only a change is drawn: the status line is a live region, read out when it changes.
          if (html !== progress.dataset.last) {
            progress.dataset.last = html;
            const open = [...progress.querySelectorAll("details[open]")].map((d) => d.className);
            progress.innerHTML = html;
            for (const name of open) {
              const again = progress.querySelector(`details.${CSS.escape(name)}`);
              if (again) again.open = true;
            }
          }
        }
      } catch {
        // offline: try again at the next tick
      }
      if (!finished()) setTimeout(poll, every);
    }

    setTimeout(poll, every);
  }
})();

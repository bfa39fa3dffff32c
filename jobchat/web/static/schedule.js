// Scheduled send: "Send later" in a thread's composer (a preset or a date and time, in the
// viewer's own time zone from their settings, not the browser's), the author's scheduled
// messages under the thread (cancelled here, redrawn when one is sent), and the confirmation
// before cancelling on the scheduled-messages page. Without this script the composer's form
// posts the choice and the server schedules it; the page's forms post as they are.
// Markup comes from the server (fragments) or is set with textContent: never built from text.
"use strict";

(() => {
  const body = document.body;
  if (!body || !body.dataset.me) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const zoneName = body.dataset.timezone || "UTC";
  const DAY = 86400000;

  // --- times in the viewer's zone ----------------------------------------------------------

  const wallFormat = new Intl.DateTimeFormat("en-US", {
    timeZone: zoneName, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  const labelFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: zoneName, hourCycle: "h23", weekday: "short", day: "numeric", month: "short",
    hour: "2-digit", minute: "2-digit",
  });

  function wall(ms) {
    const p = {};
    for (const part of wallFormat.formatToParts(new Date(ms))) p[part.type] = part.value;
    return { y: +p.year, m: +p.month, d: +p.day, h: +p.hour % 24, min: +p.minute, s: +p.second };
  }

  // The instant whose wall clock in the viewer's zone reads this (twice, for a change of
  // offset between the guess and the answer, as around a daylight-saving switch).
  function fromWall(y, m, d, h, min) {
    const asUtc = Date.UTC(y, m - 1, d, h, min);
    const offset = (ms) => {
      const w = wall(ms);
      return Date.UTC(w.y, w.m - 1, w.d, w.h, w.min, w.s) - Math.floor(ms / 1000) * 1000;
    };
    const first = asUtc - offset(asUtc);
    return asUtc - offset(first);
  }

  // "Tue 6 Jan, 08:00", as the server writes it.
  function label(ms) {
    const p = {};
    for (const part of labelFormat.formatToParts(new Date(ms))) p[part.type] = part.value;
    return `${p.weekday} ${p.day} ${p.month}, ${p.hour}:${p.minute}`;
  }

  // Tomorrow, or the next Monday (a week on, on a Monday), at 08:00 in the viewer's zone.
  function preset(choice) {
    const now = wall(Date.now());
    const today = Date.UTC(now.y, now.m - 1, now.d);
    const weekday = new Date(today).getUTCDay(); // 0 is Sunday
    const ahead = choice === "tomorrow" ? 1 : (8 - weekday) % 7 || 7;
    const day = new Date(today + ahead * DAY);
    return fromWall(day.getUTCFullYear(), day.getUTCMonth() + 1, day.getUTCDate(), 8, 0);
  }

  function picked(value) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || "");
    return m ? fromWall(+m[1], +m[2], +m[3], +m[4], +m[5]) : null;
  }

  // --- talking to the server ----------------------------------------------------------------

  async function api(method, path, payload) {
    let response;
    try {
      response = await fetch(path, {
        method,
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "X-Requested-With": "fetch" },
        body: payload === undefined ? undefined : JSON.stringify(payload),
      });
    } catch {
      return { ok: false, status: 0, error: { message: "You seem to be offline; try again." } };
    }
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch { data = null; }
    }
    const error = (data && data.error) || { message: `Something went wrong (${response.status}); try again.` };
    return { ok: response.ok, status: response.status, data, error };
  }

  // --- confirming (the page's dialog, or the thread's) ----------------------------------------

  function confirmFirst(dialog, title, detail, action) {
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(window.confirm(title));
    dialog.querySelector(".confirm-title").textContent = title;
    dialog.querySelector(".confirm-detail").textContent = detail || "";
    const yes = dialog.querySelector('[data-answer="yes"]');
    if (action) yes.textContent = action;
    const opener = document.activeElement;
    return new Promise((resolve) => {
      const done = (answer) => {
        dialog.close();
        dialog.removeEventListener("click", onClick);
        dialog.removeEventListener("cancel", onCancel);
        if (opener && opener.isConnected) opener.focus();
        resolve(answer);
      };
      const onClick = (event) => {
        const button = event.target.closest("[data-answer]");
        if (button) done(button.dataset.answer === "yes");
      };
      const onCancel = (event) => { event.preventDefault(); done(false); };
      dialog.addEventListener("click", onClick);
      dialog.addEventListener("cancel", onCancel);
      dialog.showModal();
      dialog.querySelector('[data-answer="no"]').focus();
    });
  }

  // --- a thread's composer --------------------------------------------------------------------

  function setUp(composer) {
    const menu = composer.querySelector("[data-schedule-menu]");
    if (!menu || composer.dataset.scheduleReady) return;
    composer.dataset.scheduleReady = "yes";
    const conversation = Number(composer.dataset.conversation);
    const thread = composer.closest(".thread");
    const row = composer.querySelector(".compose-row");
    const send = row && row.querySelector("button.send");
    const textarea = composer.querySelector("textarea[name=body]");
    const subject = composer.querySelector("input[name=subject]");
    const custom = menu.querySelector("input[name=send_at]");
    const chosen = composer.querySelector("[data-schedule-chosen]");
    const chosenText = chosen.querySelector("[data-chosen-text]");
    const formError = composer.querySelector(".form-error");
    const strip = composer.querySelector("[data-scheduled-strip]");
    const announcer = document.getElementById("announcer");
    const dialog = composer.querySelector(".schedule-confirm");

    // The control sits beside Send; the scheduled messages go below the last message.
    if (send) row.insertBefore(menu, send);
    const scroller = thread && thread.querySelector(".scroller");
    if (strip && scroller) scroller.appendChild(strip);

    const choice = () => (menu.querySelector("input[name=send_later]:checked") || {}).value || "now";
    function when() {
      const c = choice();
      if (c === "now") return null;
      return c === "custom" ? picked(custom.value) : preset(c);
    }
    function fillHints() {
      for (const hint of menu.querySelectorAll("[data-hint]")) hint.textContent = label(preset(hint.dataset.hint)).split(",")[0];
      if (!custom.min) {
        const w = wall(Date.now() + 60000);
        const pad = (n) => String(n).padStart(2, "0");
        custom.min = `${w.y}-${pad(w.m)}-${pad(w.d)}T${pad(w.h)}:${pad(w.min)}`;
      }
    }
    function show() {
      const c = choice();
      const at = when();
      menu.classList.toggle("chosen", c !== "now");
      if (send) send.textContent = c === "now" ? "Send" : "Send later";
      chosen.hidden = c === "now";
      if (c === "now") return;
      chosenText.replaceChildren();
      if (at === null) {
        chosenText.textContent = "Pick a date and time to send it.";
        return;
      }
      chosenText.append("Will be sent ");
      const strong = document.createElement("strong");
      strong.textContent = label(at);
      chosenText.append(strong);
    }
    function reset() {
      menu.querySelector('input[name=send_later][value="now"]').checked = true;
      custom.value = "";
      show();
    }

    menu.addEventListener("toggle", () => { if (menu.open) fillHints(); });
    menu.addEventListener("change", (event) => {
      if (event.target.name === "send_later" && event.target.value !== "custom" && event.target.value !== "now") {
        menu.open = false;
        if (textarea) textarea.focus();
      }
      if (event.target.name === "send_later" && event.target.value === "custom") custom.focus();
      show();
    });
    custom.addEventListener("input", () => {
      menu.querySelector('input[name=send_later][value="custom"]').checked = true;
      show();
    });
    chosen.querySelector("[data-schedule-clear]").addEventListener("click", () => {
      reset();
      if (textarea) textarea.focus();
    });
    // Escape closes the panel and gives the focus back to its button.
    menu.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && menu.open) {
        event.stopPropagation();
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (menu.open && !menu.contains(event.target)) menu.open = false;
    });

    function problem(message) {
      formError.textContent = message;
      formError.hidden = false;
    }

    async function redraw() {
      if (!strip) return;
      try {
        const response = await fetch(`/conversations/${conversation}/scheduled.html`, {
          credentials: "same-origin", headers: { "X-Requested-With": "fetch" },
        });
        if (!response.ok) return;
        strip.innerHTML = await response.text();
      } catch { return; }
      strip.hidden = !strip.querySelector(".scheduled-item");
      wakeAtTheirTimes();
    }

    // Sent by the worker: the thread's live update brings the message, and this one goes.
    // One that fails sends no event, so each is also looked at again just after its time.
    let timers = [];
    function wakeAtTheirTimes() {
      timers.forEach(clearTimeout);
      timers = [];
      if (!strip) return;
      for (const item of strip.querySelectorAll("[data-send-at]")) {
        const wait = Date.parse(item.dataset.sendAt) - Date.now() + 3000;
        if (wait < 2 ** 31 - 1) timers.push(setTimeout(redraw, Math.max(wait, 1000)));
      }
    }
    wakeAtTheirTimes();
    document.addEventListener("jobchat:frame", (event) => {
      const frame = event.detail;
      if (frame.conversation === conversation && frame.type === "message.created" && strip && !strip.hidden) redraw();
    });

    async function cancel(id) {
      const ok = await confirmFirst(dialog, "Cancel this scheduled message?", "It will not be sent.", "Cancel message");
      if (!ok) return;
      const result = await api("DELETE", `/api/v1/scheduled-messages/${id}`);
      if (!result.ok && result.status !== 409) { problem(result.error.message); return; }
      await redraw();
      if (announcer) announcer.textContent = result.ok ? "Scheduled message cancelled." : result.error.message;
    }
    if (strip) strip.addEventListener("click", (event) => {
      const button = event.target.closest("[data-cancel-scheduled]");
      if (!button) return;
      event.preventDefault();
      cancel(button.dataset.cancelScheduled);
    });

    // One idempotency key per message being scheduled: a retry after a network error is
    // stored once.
    let pendingKey = null;
    async function schedule() {
      formError.hidden = true;
      const text = textarea.value;
      if (!text.trim()) { textarea.focus(); return; }
      const at = when();
      if (at === null || at <= Date.now()) {
        menu.open = true;
        fillHints();
        problem(at === null ? "Pick a date and time to send it." : "Pick a time in the future.");
        custom.focus();
        return;
      }
      const checked = composer.querySelector("input[name=channel]:checked");
      const channel = checked ? checked.value : "app";
      const payload = { body: text, channel, send_at: new Date(at).toISOString(), idempotency_key: pendingKey ||= crypto.randomUUID() };
      if (subject && channel === "email") payload.subject = subject.value.trim() || null;
      send.disabled = true;
      const result = await api("POST", `/api/v1/conversations/${conversation}/messages`, payload);
      send.disabled = false;
      if (!result.ok) {
        if (result.status !== 0 && result.status < 500) pendingKey = null;
        const fields = result.error.fields || {};
        problem(fields.send_at ? `The time ${fields.send_at}.` : result.error.message);
        return;
      }
      pendingKey = null;
      textarea.value = "";
      textarea.style.height = "";
      if (subject) subject.value = "";
      try {
        localStorage.removeItem(`jobchat:draft:${body.dataset.me}:${conversation}`);
      } catch {
        // storage refused (a third-party frame): there was no draft kept to remove
      }
      reset();
      await redraw();
      if (announcer) announcer.textContent = `Scheduled for ${label(at)}.`;
      const last = strip && strip.querySelector(".scheduled-item:last-child");
      if (last) last.scrollIntoView({ block: "nearest" });
      textarea.focus();
    }

    // Before app.js's own submit handler (on the form itself): with "Send later" chosen this
    // one schedules and the event goes no further.
    composer.addEventListener("jobchat:schedule", schedule);
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.matches("form.composer")) return;
    const checked = form.querySelector("input[name=send_later]:checked");
    if (!checked || checked.value === "now") return;
    event.preventDefault();
    event.stopPropagation();
    setUp(form); // a composer drawn after this script ran
    form.dispatchEvent(new CustomEvent("jobchat:schedule"));
  }, true);

  for (const composer of document.querySelectorAll("form.composer")) setUp(composer);

  // --- the scheduled-messages page ------------------------------------------------------------

  const pageDialog = document.getElementById("schedule-confirm");
  for (const form of document.querySelectorAll("form[data-schedule-confirm]")) {
    form.addEventListener("submit", async (event) => {
      if (form.dataset.confirmed === "yes") return;
      event.preventDefault();
      const ok = await confirmFirst(pageDialog, form.dataset.scheduleConfirm, form.dataset.scheduleConfirmDetail, "Cancel message");
      if (!ok) return;
      form.dataset.confirmed = "yes";
      form.requestSubmit();
    });
  }
  // A link from a thread's Edit opens that message's editor.
  const editing = new URLSearchParams(location.search).get("edit");
  const editor = editing && document.querySelector(`[data-edit="${CSS.escape(editing)}"]`);
  if (editor) {
    editor.open = true;
    const field = editor.querySelector("textarea");
    if (field) field.focus();
  }
})();

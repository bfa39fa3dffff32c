// jobchat's own script: live updates over the event stream, and a friendlier composer.
// The pages work without it (forms post and redirect); with it nothing needs a reload.
// Everything drawn from user content is either HTML the server rendered (and escaped) or
// set with textContent: this script never builds markup out of message text or names.
"use strict";

(() => {
  const body = document.body;
  if (!body || !body.dataset.me) return; // pages outside the signed-in frame

  const me = body.dataset.me;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const coarse = window.matchMedia("(pointer: coarse)").matches;

  // --- talking to the server ------------------------------------------------------------

  async function api(method, path, payload) {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-CSRF-Token": csrf,
        "X-Requested-With": "fetch",
      },
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch { data = null; }
    }
    return { ok: response.ok, status: response.status, data };
  }

  async function fragment(path) {
    const response = await fetch(path, {
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    });
    if (!response.ok) throw new Error(`${path}: ${response.status}`);
    return response.text();
  }

  // For the page scripts (jobs.js, candidates.js), which run after this one.
  window.jobchat = Object.freeze({ fragment });

  function problem(result) {
    const error = result.data && result.data.error;
    if (error) return error;
    if (result.status === 0) return { message: "You seem to be offline; try again." };
    return { message: `Something went wrong (${result.status}); try again.` };
  }

  // --- the event stream -----------------------------------------------------------------

  const connection = document.getElementById("connection");
  let lastId = Number(body.dataset.head) || 0;
  let socket = null;
  let attempt = 0;
  let statusTimer = null;

  function showConnection(text) {
    clearTimeout(statusTimer);
    if (!text) { connection.hidden = true; return; }
    // A blip shorter than a second or two is not worth a banner.
    statusTimer = setTimeout(() => { connection.textContent = text; connection.hidden = false; }, 1500);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    // Resume after the newest event the page (or the last socket) saw: nothing falls between.
    const query = lastId ? `?after=${lastId}` : "";
    socket = new WebSocket(`${scheme}//${location.host}/api/v1/events${query}`);
    socket.addEventListener("open", () => {
      attempt = 0;
      showConnection("");
      document.dispatchEvent(new CustomEvent("jobchat:open"));
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (typeof frame.id === "number") lastId = Math.max(lastId, frame.id);
      receive(frame);
    });
    socket.addEventListener("close", (event) => {
      socket = null;
      if (event.code === 4001) { location.reload(); return; } // too far behind to resume
      showConnection("Reconnecting…");
      const delay = Math.min(30000, 500 * 2 ** attempt++) * (0.5 + Math.random());
      setTimeout(connect, delay);
    });
  }

  function send(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function receive(frame) {
    if (frame.unread) setBadge(frame.unread.messages);
    document.dispatchEvent(new CustomEvent("jobchat:frame", { detail: frame }));
  }

  // --- the badge in the header ----------------------------------------------------------

  const badge = document.getElementById("unread-badge");
  const baseTitle = document.title;

  function setBadge(count) {
    if (!badge || typeof count !== "number") return;
    const before = Number(badge.textContent) || 0;
    badge.textContent = String(count);
    badge.setAttribute("aria-label", `${count} unread messages`);
    badge.hidden = count === 0;
    document.title = count ? `(${count}) ${baseTitle}` : baseTitle;
    if (count > before) {
      badge.classList.remove("bump");
      void badge.offsetWidth; // restart the animation
      badge.classList.add("bump");
    }
  }
  setBadge(Number(badge && badge.textContent) || 0);

  // --- the inbox: redrawn by the server whenever one of its rows may have changed ---------

  const inbox = document.getElementById("inbox");
  if (inbox) {
    let timer = null;
    const refresh = async () => {
      const params = new URLSearchParams();
      if (inbox.dataset.filter && inbox.dataset.filter !== "all") params.set("filter", inbox.dataset.filter);
      if (inbox.dataset.q) params.set("q", inbox.dataset.q);
      try { inbox.innerHTML = await fragment(`/inbox/list.html?${params}`); } catch { /* next event retries */ }
    };
    document.addEventListener("jobchat:frame", (event) => {
      if (event.detail.conversation === null || event.detail.id === null) return;
      clearTimeout(timer);
      timer = setTimeout(refresh, 150);
    });
  }

  // --- a conversation -------------------------------------------------------------------

  const thread = document.getElementById("thread");
  if (thread) startThread(thread);

  function startThread(thread) {
    const conversation = Number(thread.dataset.conversation);
    const list = document.getElementById("messages");
    const scroller = document.getElementById("scroller");
    const composer = document.getElementById("composer");
    const textarea = composer && composer.querySelector("textarea[name=body]");
    const subject = composer && composer.querySelector("input[name=subject]");
    const formError = composer && composer.querySelector(".form-error");
    const subjectError = composer && composer.querySelector(".subject-row .field-error");
    const smsInfo = composer && composer.querySelector(".sms-info");
    const typingLine = document.getElementById("typing");
    const draftKey = `jobchat:draft:${me}:${conversation}`;

    const items = () => list.querySelectorAll("li.message");
    const newestId = () => {
      const all = items();
      return all.length ? Number(all[all.length - 1].dataset.messageId) : 0;
    };
    const newestDay = () => {
      const all = items();
      return all.length ? all[all.length - 1].dataset.day : "";
    };
    const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    const toBottom = () => { scroller.scrollTop = scroller.scrollHeight; };

    // Where to start reading: the "New messages" line, else the newest message.
    // Only the history scrolls: the page itself stays where it is (a profile has more above).
    const marker = list.querySelector(".unread-marker");
    if (marker) scroller.scrollTop = marker.offsetTop - scroller.clientHeight / 3; else toBottom();

    // Reading marks read, up to what is on the screen (not what arrives after).
    let readUpTo = Number(thread.dataset.unread) > 0 ? 0 : newestId();
    async function markRead() {
      const upTo = newestId();
      if (document.visibilityState !== "visible" || upTo <= readUpTo) return;
      readUpTo = upTo;
      await api("POST", `/api/v1/conversations/${conversation}/read`, { up_to: upTo });
    }
    markRead();
    document.addEventListener("visibilitychange", markRead);

    // New messages come as server-rendered bubbles, one fetch at a time, so none is drawn twice.
    let loading = Promise.resolve();
    function loadNew(stick) {
      loading = loading.then(async () => {
        const wasAtBottom = nearBottom();
        const html = await fragment(
          `/conversations/${conversation}/messages.html?after=${newestId()}&day=${encodeURIComponent(newestDay())}`,
        ).catch(() => "");
        if (!html.trim()) return;
        const known = new Set([...items()].map((li) => li.dataset.messageId));
        const template = document.createElement("template");
        template.innerHTML = html;
        const arrived = [];
        for (const li of template.content.querySelectorAll("li.message")) {
          if (known.has(li.dataset.messageId)) li.remove(); else arrived.push(li);
        }
        list.append(template.content);
        announce(arrived.filter((li) => li.classList.contains("theirs")));
        const empty = document.getElementById("empty-thread");
        if (empty) empty.remove();
        if (stick || wasAtBottom) toBottom();
        await markRead();
      });
      return loading;
    }

    // Screen readers hear what others write as it arrives (not the history, nor our own).
    const announcer = document.getElementById("announcer");
    function announce(lis) {
      if (!announcer || !lis.length) return;
      announcer.textContent = lis.map((li) => {
        const author = li.querySelector(".author");
        const text = li.querySelector(".body");
        return `${author ? author.textContent : ""}: ${text ? text.textContent : ""}`;
      }).join(". ");
    }

    function tombstone(id) {
      const li = list.querySelector(`li.message[data-message-id="${Number(id)}"]`);
      if (!li) return;
      li.classList.add("deleted");
      const bubble = li.querySelector(".bubble");
      for (const old of bubble.querySelectorAll(".subject, .body, .delivery")) old.remove();
      const text = document.createElement("p");
      text.className = "body deleted-text";
      text.textContent = "This message was deleted";
      bubble.querySelector(".meta").after(text);
      for (const form of li.querySelectorAll("form.delete-form")) {
        if (form.elements.for.value === "everyone") form.remove();
      }
    }

    function hide(id) {
      const li = list.querySelector(`li.message[data-message-id="${Number(id)}"]`);
      if (li) li.remove();
    }

    // Typing: others' come as frames; ours go out at most every 2 s, and "stopped" at once.
    const typists = new Map();
    function drawTyping() {
      const names = [...typists.keys()];
      typingLine.textContent =
        names.length === 0 ? "" :
        names.length === 1 ? `${names[0]} is typing…` :
        `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]} are typing…`;
    }
    function someoneTyping(user, typing) {
      clearTimeout(typists.get(user.name));
      typists.delete(user.name);
      if (typing) typists.set(user.name, setTimeout(() => { typists.delete(user.name); drawTyping(); }, 6000));
      drawTyping();
    }

    // Presence: who of the members has jobchat open. Asked on every (re)connect, then kept
    // current by the comings and goings the stream announces.
    function showOnline(ext, online) {
      for (const member of thread.querySelectorAll(".member")) {
        if (member.dataset.member !== ext || ext === body.dataset.meExt) continue;
        member.classList.toggle("online", online);
        member.querySelector(".presence-text").textContent = online ? " (online)" : "";
      }
    }
    document.addEventListener("jobchat:open", () => send({ type: "presence", conversation }));
    document.addEventListener("jobchat:frame", (event) => {
      const frame = event.detail;
      if (frame.type !== "presence") return;
      const data = frame.data || {};
      if (frame.conversation === conversation && Array.isArray(data.online)) {
        for (const member of thread.querySelectorAll(".member")) {
          showOnline(member.dataset.member, data.online.includes(member.dataset.member));
        }
      } else if (frame.conversation === null && data.user) {
        showOnline(data.user.id, data.online === true);
      }
    });

    document.addEventListener("jobchat:frame", (event) => {
      const frame = event.detail;
      if (frame.conversation !== conversation) return;
      const data = frame.data || {};
      switch (frame.type) {
        case "message.created":
          if (data.author) someoneTyping(data.author, false);
          loadNew(false);
          break;
        case "message.deleted":
          if (data.for === "everyone") tombstone(data.id); else hide(data.id);
          break;
        case "conversation.updated":
          if (data.status) thread.dataset.status = data.status;
          break;
        case "typing":
          if (data.user) someoneTyping(data.user, data.typing !== false);
          break;
        case "member.removed":
          // Our own removal is the last frame of this conversation we get: show where we stand.
          if (data.member && data.member.id === body.dataset.meExt && data.member.kind === body.dataset.meKind) location.reload();
          break;
      }
    });

    // Older messages: when the top comes into view, or on the button (keyboard users).
    async function loadOlder(button) {
      if (button.disabled) return;
      button.disabled = true;
      const holder = button.closest("li");
      const html = await fragment(
        `/conversations/${conversation}/messages.html?before=${Number(button.dataset.before)}`,
      ).catch(() => null);
      if (html === null) { button.disabled = false; return; }
      const height = scroller.scrollHeight;
      holder.remove();
      const template = document.createElement("template");
      template.innerHTML = html;
      list.prepend(template.content);
      // One separator per day, though a page boundary may fall inside a day.
      const seen = new Set();
      for (const sep of list.querySelectorAll(".day-separator")) {
        if (seen.has(sep.dataset.day)) sep.remove(); else seen.add(sep.dataset.day);
      }
      scroller.scrollTop += scroller.scrollHeight - height;
      watchOlder();
    }
    const observer = "IntersectionObserver" in window
      ? new IntersectionObserver((entries) => {
          for (const entry of entries) if (entry.isIntersecting) loadOlder(entry.target);
        }, { root: scroller, rootMargin: "200px 0px 0px 0px" })
      : null;
    function watchOlder() {
      const button = list.querySelector(".load-older");
      if (!button) return;
      button.addEventListener("click", () => loadOlder(button));
      if (observer) observer.observe(button);
    }
    watchOlder();

    // Delete menus: done in place, without leaving the page.
    list.addEventListener("submit", async (event) => {
      const form = event.target.closest("form.delete-form");
      if (!form) return;
      event.preventDefault();
      const li = form.closest("li.message");
      const which = form.elements.for.value;
      const result = await api("DELETE", `/api/v1/messages/${Number(li.dataset.messageId)}?for=${which}`);
      if (!result.ok) { alertProblem(problem(result)); return; }
      if (which === "everyone") tombstone(li.dataset.messageId); else hide(li.dataset.messageId);
    });
    // One menu open at a time; Escape closes it.
    list.addEventListener("toggle", (event) => {
      if (!event.target.open) return;
      for (const other of list.querySelectorAll("details.menu[open]")) if (other !== event.target) other.open = false;
    }, true);
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      for (const open of list.querySelectorAll("details.menu[open]")) {
        open.open = false;
        open.querySelector("summary").focus();
      }
    });

    function alertProblem(error) {
      if (!formError) return;
      formError.textContent = error.message;
      formError.hidden = false;
    }

    if (!composer) return;

    // The draft outlives the page: kept per user and conversation until it is sent.
    const saved = JSON.parse(localStorage.getItem(draftKey) || "null");
    if (saved) {
      textarea.value = saved.body || "";
      if (subject) subject.value = saved.subject || "";
    }
    function saveDraft() {
      const draft = { body: textarea.value, subject: subject ? subject.value : "" };
      if (draft.body || draft.subject) localStorage.setItem(draftKey, JSON.stringify(draft));
      else localStorage.removeItem(draftKey);
    }

    const channel = () => {
      const checked = composer.querySelector("input[name=channel]:checked");
      return checked ? checked.value : "app";
    };
    function showChannel() {
      for (const el of composer.querySelectorAll("[data-for-channel]")) {
        el.hidden = el.dataset.forChannel !== channel();
      }
      countSegments();
    }
    composer.addEventListener("change", (event) => {
      if (event.target.name === "channel") showChannel();
    });

    let segmentsTimer = null;
    function countSegments() {
      if (!smsInfo || channel() !== "sms") return;
      clearTimeout(segmentsTimer);
      segmentsTimer = setTimeout(async () => {
        if (!textarea.value) { smsInfo.textContent = ""; return; }
        const result = await api("POST", "/api/v1/sms/segments", { body: textarea.value });
        if (!result.ok) return;
        const s = result.data;
        const many = s.segments === 1 ? "1 segment" : `${s.segments} segments`;
        smsInfo.textContent = `${many} · ${s.characters} characters (${s.encoding})` +
          (s.too_long ? " · too long for one text message" : "");
      }, 250);
    }
    showChannel();

    let typingSentAt = 0;
    textarea.addEventListener("input", () => {
      saveDraft();
      countSegments();
      const now = Date.now();
      if (textarea.value && now - typingSentAt > 2000) {
        typingSentAt = now;
        send({ type: "typing", conversation, typing: true });
      } else if (!textarea.value && typingSentAt) {
        typingSentAt = 0;
        send({ type: "typing", conversation, typing: false });
      }
    });
    if (subject) subject.addEventListener("input", () => {
      saveDraft();
      subject.removeAttribute("aria-invalid");
      subjectError.hidden = true;
    });

    // Enter sends, Shift+Enter is a new line (on touch screens Enter stays a new line).
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && (!coarse || event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        composer.requestSubmit();
      }
    });

    // One idempotency key per message being sent: a retry after a network error is stored once.
    let pendingKey = null;
    composer.addEventListener("submit", async (event) => {
      event.preventDefault();
      formError.hidden = true;
      if (subjectError) subjectError.hidden = true;
      if (subject) subject.removeAttribute("aria-invalid");
      const text = textarea.value;
      if (!text.trim()) { textarea.focus(); return; }
      const button = composer.querySelector("button[type=submit]");
      const payload = { body: text, channel: channel(), idempotency_key: pendingKey ||= crypto.randomUUID() };
      if (subject && payload.channel === "email") payload.subject = subject.value.trim() || null;
      button.disabled = true;
      let result;
      try {
        result = await api("POST", `/api/v1/conversations/${conversation}/messages`, payload);
      } catch {
        result = { ok: false, status: 0, data: null };
      }
      button.disabled = false;
      if (!result.ok) {
        const error = problem(result);
        if (error.fields && error.fields.subject && subject) {
          subject.setAttribute("aria-invalid", "true");
          subjectError.textContent = `Subject ${error.fields.subject}`;
          subjectError.hidden = false;
          subject.focus();
        } else {
          alertProblem(error);
        }
        if (result.status !== 0 && result.status < 500) pendingKey = null;
        return;
      }
      pendingKey = null;
      textarea.value = "";
      if (subject) subject.value = "";
      localStorage.removeItem(draftKey);
      if (smsInfo) smsInfo.textContent = "";
      typingSentAt = 0;
      send({ type: "typing", conversation, typing: false });
      thread.dataset.status = "open"; // a staff member's message reopens an ended conversation
      await loadNew(true);
      textarea.focus();
    });
  }

  // --- settings: suggest the browser's time zone until one is chosen --------------------

  const zoneInput = document.getElementById("timezone");
  if (zoneInput && zoneInput.dataset.saved === "no") {
    const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    const known = [...document.querySelectorAll("#timezones option")].some((o) => o.value === browserZone);
    const hint = document.getElementById("browser-zone-hint");
    if (browserZone && known && browserZone !== zoneInput.value) {
      zoneInput.value = browserZone;
      if (hint) hint.textContent = `Filled in from your browser (${browserZone}); press Save to keep it.`;
    }
  }

  connect();
})();

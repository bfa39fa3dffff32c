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
  // The browser may refuse storage: in a third-party frame (jobchat embedded in an ATS's page)
  // when it blocks third-party cookies, reading localStorage throws. Then what it keeps
  // lasts as long as the page.
  const store = {
    get(key) { try { return window.localStorage.getItem(key); } catch { return null; } },
    set(key, value) { try { window.localStorage.setItem(key, value); } catch { /* refused */ } },
    remove(key) { try { window.localStorage.removeItem(key); } catch { /* refused */ } },
  };

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
  let graceTimer = null;
  let bannerShown = false; // "Reconnecting…" was on screen: say so when it is back
  // After this many failed attempts in a row the banner stops saying "Reconnecting…" and says
  // jobchat cannot be reached (it keeps trying, less often).
  const FAILURES_BEFORE_ERROR = 5;

  // state: "" (connected, nothing to say), "reconnecting", "restored", "failed". The banner's
  // look is app.css's (#connection); data-state lets it tell the three apart.
  function showConnection(state) {
    if (!connection) return;
    if (state === "reconnecting" && (graceTimer || bannerShown)) return; // already on its way
    clearTimeout(statusTimer);
    clearTimeout(graceTimer);
    graceTimer = null;
    const put = (text) => {
      connection.dataset.state = state;
      connection.textContent = text;
      connection.hidden = false;
    };
    if (state === "") {
      if (!bannerShown) { connection.hidden = true; return; }
      bannerShown = false;
      state = "restored";
      put("Connected again");
      statusTimer = setTimeout(() => { connection.hidden = true; delete connection.dataset.state; }, 2500);
    } else if (state === "failed") {
      bannerShown = true;
      put("Can’t reach jobchat. Your drafts are kept; still trying…");
    } else {
      // A blip shorter than a second or two is not worth a banner.
      graceTimer = setTimeout(() => { graceTimer = null; bannerShown = true; put("Reconnecting…"); }, 2000);
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    // Resume after the newest event the page (or the last socket) saw: nothing falls between.
    const query = lastId ? `?after=${lastId}` : "";
    const current = new WebSocket(`${scheme}//${location.host}/api/v1/events${query}`);
    socket = current;
    // Connected means the server talks (a frame) or the socket stays up a moment: one that
    // opens and drops at once (a proxy, a restart) is one more failed attempt, not a recovery.
    let up = false;
    let upTimer = null;
    const connected = () => {
      clearTimeout(upTimer);
      if (up || socket !== current) return;
      up = true;
      attempt = 0;
      showConnection("");
    };
    current.addEventListener("open", () => {
      upTimer = setTimeout(connected, 1000);
      document.dispatchEvent(new CustomEvent("jobchat:open"));
    });
    current.addEventListener("message", (event) => {
      connected();
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (typeof frame.id === "number") lastId = Math.max(lastId, frame.id);
      receive(frame);
    });
    current.addEventListener("close", (event) => {
      clearTimeout(upTimer);
      socket = null;
      if (event.code === 4001) { location.reload(); return; } // too far behind to resume
      attempt += 1;
      showConnection(attempt >= FAILURES_BEFORE_ERROR ? "failed" : "reconnecting");
      const delay = Math.min(30000, 500 * 2 ** (attempt - 1)) * (0.5 + Math.random());
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

    // The conversation page is a column as tall as what can be seen: the on-screen keyboard
    // must not cover the composer. Where the browser has the VirtualKeyboard API, the keyboard
    // overlays the page and CSS takes its height off (env(keyboard-inset-height)); elsewhere
    // the column follows the visual viewport's height.
    if (thread.classList.contains("thread--page")) {
      if ("virtualKeyboard" in navigator) {
        navigator.virtualKeyboard.overlaysContent = true;
      } else if (window.visualViewport) {
        const fit = () => {
          const keyboard = window.innerHeight - window.visualViewport.height > 80;
          body.style.setProperty("--thread-vh", `${window.visualViewport.height}px`);
          body.toggleAttribute("data-fit", keyboard);
          if (keyboard) window.scrollTo(0, 0);
        };
        window.visualViewport.addEventListener("resize", fit);
        fit();
      }
    }

    const items = () => list.querySelectorAll("li.message");
    const newestId = () => {
      const all = items();
      return all.length ? Number(all[all.length - 1].dataset.messageId) : 0;
    };
    // The day of the newest thing drawn (a message or an activity line): a separator goes
    // before what arrives only when its day differs.
    const newestDay = () => {
      const all = list.querySelectorAll("li.message, li.activity");
      return all.length ? all[all.length - 1].dataset.day : "";
    };
    const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
    const toBottom = () => { scroller.scrollTop = scroller.scrollHeight; };

    // Where to start reading: the "New messages" line, else the newest message.
    // Only the history scrolls: the page itself stays where it is (a profile has more above).
    // A notification's message (?message=) comes first: scrolled to and highlighted.
    const notified = thread.dataset.notified
      && list.querySelector(`.message[data-message-id="${CSS.escape(thread.dataset.notified)}"]`);
    const marker = list.querySelector(".unread-marker");
    if (notified) {
      notified.classList.add("notified");
      scroller.scrollTop = notified.offsetTop - scroller.clientHeight / 3;
    } else if (marker) scroller.scrollTop = marker.offsetTop - scroller.clientHeight / 3; else toBottom();

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
        const knownLines = new Set([...list.querySelectorAll("li.activity")].map((li) => li.dataset.activityId));
        const template = document.createElement("template");
        template.innerHTML = html;
        const arrived = [];
        for (const li of template.content.querySelectorAll("li.message")) {
          if (known.has(li.dataset.messageId)) li.remove(); else arrived.push(li);
        }
        for (const li of template.content.querySelectorAll("li.activity")) {
          if (knownLines.has(li.dataset.activityId)) li.remove(); else arrived.push(li);
        }
        // Nothing new but a separator for a day already drawn: leave it out.
        if (!template.content.querySelector("li.message, li.activity")) return;
        list.append(template.content);
        announce(arrived.filter((li) => li.classList.contains("theirs") || li.classList.contains("activity")));
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
        if (li.classList.contains("activity")) return li.querySelector("p").firstChild.textContent.trim();
        const author = li.querySelector(".author");
        const text = li.querySelector(".body");
        const files = li.querySelectorAll(".att").length;
        const sent = files ? ` (${files === 1 ? "1 file" : `${files} files`})` : "";
        return `${author ? author.textContent : ""}: ${text ? text.textContent : ""}${sent}`;
      }).join(". ");
    }

    function tombstone(id) {
      const li = list.querySelector(`li.message[data-message-id="${Number(id)}"]`);
      if (!li) return;
      li.classList.add("deleted");
      const bubble = li.querySelector(".bubble");
      for (const old of bubble.querySelectorAll(".subject, .body, .delivery, .attachments")) old.remove();
      li.classList.remove("has-files", "files-only");
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
          // Ended or reopened: the line it left in the history is drawn like a message.
          if (data.activity) loadNew(false);
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
      // (Asked before disabling it: a disabled button loses the focus.)
      const hadFocus = document.activeElement === button;
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
      const firstNew = template.content.querySelector("li.message, li.activity");
      list.prepend(template.content);
      // One separator per day, though a page boundary may fall inside a day.
      const seen = new Set();
      for (const sep of list.querySelectorAll(".day-separator")) {
        if (seen.has(sep.dataset.day)) sep.remove(); else seen.add(sep.dataset.day);
      }
      scroller.scrollTop += scroller.scrollHeight - height;
      // Asked for from the keyboard: focus goes on to what came, not back to the page's top.
      if (hadFocus && firstNew) {
        firstNew.tabIndex = -1;
        firstNew.focus({ preventScroll: true });
        firstNew.scrollIntoView({ block: "nearest" });
      }
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

    // --- menus: the message menus (⋯) and the header's (members, more actions) ---------------
    // <details> opens and closes them without our script; with it, one is open at a time,
    // Escape or a click elsewhere closes it and focus goes back to its button, and a message
    // menu is placed where it fits: below its button, or above it when there is no room below
    // (the last message), and never past the viewport's sides.
    const openMenus = () => thread.querySelectorAll("details.menu[open], details.head-menu[open]");
    function closeMenu(details, refocus) {
      details.open = false;
      if (refocus) details.querySelector("summary").focus();
    }
    function placeMenu(details) {
      const panel = details.querySelector(".menu-items");
      if (!panel) return;
      panel.classList.add("placed");
      const button = details.querySelector("summary").getBoundingClientRect();
      const view = window.visualViewport;
      const width = view ? view.width : document.documentElement.clientWidth;
      const height = view ? view.height : window.innerHeight;
      const box = panel.getBoundingClientRect();
      const gap = 4;
      const below = button.bottom + gap;
      const top = below + box.height <= height - gap || button.top - gap - box.height < gap
        ? below : button.top - gap - box.height;
      // Aligned with the button's outer edge (right for mine, left for theirs), then kept in.
      let left = details.closest("li.message.mine") ? button.right - box.width : button.left;
      left = Math.max(gap, Math.min(left, width - gap - box.width));
      panel.style.top = `${Math.max(gap, top)}px`;
      panel.style.left = `${left}px`;
      panel.dataset.side = top < below ? "up" : "down";
    }
    // The toggle event comes a task after the menu opens: until it is placed, the menu is kept
    // hidden (thread.css, .menus-placed), so it never shows for a frame where it does not fit.
    thread.classList.add("menus-placed");
    thread.addEventListener("toggle", (event) => {
      const details = event.target;
      if (!(details instanceof HTMLDetailsElement)) return;
      if (!details.open) {
        details.querySelector(".menu-items")?.classList.remove("placed");
        return;
      }
      for (const other of openMenus()) if (other !== details) other.open = false;
      if (details.classList.contains("menu")) placeMenu(details);
    }, true);
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      for (const open of openMenus()) closeMenu(open, true);
    });
    document.addEventListener("click", (event) => {
      for (const open of openMenus()) if (!open.contains(event.target)) closeMenu(open, false);
    });
    // A fixed menu would stay put while the history moves under it: close it instead.
    scroller.addEventListener("scroll", () => {
      for (const open of thread.querySelectorAll("details.menu[open]")) closeMenu(open, false);
    }, { passive: true });
    window.addEventListener("resize", () => {
      for (const open of thread.querySelectorAll("details.menu[open]")) placeMenu(open);
    });

    // --- asking before what cannot be undone -------------------------------------------------
    // A form with data-confirm asks in the dialog first; the question's words are the form's
    // own (server-rendered) attributes, set as text. Focus returns to the menu's button.
    const dialog = document.getElementById("confirm-dialog");
    function confirmFirst(form, opener) {
      return new Promise((resolve) => {
        if (!dialog || typeof dialog.showModal !== "function") { resolve(true); return; }
        document.getElementById("confirm-title").textContent = form.dataset.confirm;
        document.getElementById("confirm-detail").textContent = form.dataset.confirmDetail || "";
        document.getElementById("confirm-action").textContent = form.dataset.confirmAction || "Confirm";
        dialog.returnValue = "cancel";
        dialog.addEventListener("close", () => {
          if (opener && opener.isConnected) opener.focus();
          resolve(dialog.returnValue === "confirm");
        }, { once: true });
        dialog.showModal();
        // The safe choice has the focus: Enter or a stray tap does not destroy anything.
        dialog.querySelector("button[value=cancel]").focus();
      });
    }

    // --- "Delete for me": hidden at once, sent when the undo is no longer offered -------------
    const toast = document.getElementById("undo-toast");
    const UNDO_MS = 6000;
    let pendingHide = null; // {id, li, button, timer}
    function sendHide(pending, leaving) {
      const path = `/api/v1/messages/${Number(pending.id)}?for=me`;
      if (leaving) {
        // The page is going away: keepalive lets the request outlive it.
        fetch(path, {
          method: "DELETE", keepalive: true, credentials: "same-origin",
          headers: { "X-CSRF-Token": csrf, "X-Requested-With": "fetch" },
        }).catch(() => {});
        return Promise.resolve();
      }
      return api("DELETE", path).then((result) => {
        if (!result.ok && result.status !== 404) {
          restore(pending);
          alertProblem(problem(result));
        } else {
          pending.spot.remove();
        }
      }, () => { restore(pending); alertProblem({ message: "You seem to be offline; try again." }); });
    }
    function commitHide(leaving) {
      const pending = pendingHide;
      if (!pending) return;
      pendingHide = null;
      clearTimeout(pending.timer);
      if (toast) {
        // Focus was on "Undo": it goes on to the composer (or the history), not to nowhere.
        if (toast.contains(document.activeElement)) (textarea || scroller).focus({ preventScroll: true });
        toast.hidden = true;
      }
      sendHide(pending, leaving);
    }
    // The message leaves the list at once; a comment keeps its place for the undo.
    function restore(pending) {
      if (pending.spot.isConnected) pending.spot.replaceWith(pending.li);
    }
    function hideWithUndo(li) {
      commitHide(false); // one undo at a time: an earlier one is final now
      const button = li.querySelector(".menu summary");
      const spot = document.createComment("deleted for me");
      li.replaceWith(spot);
      pendingHide = { id: li.dataset.messageId, li, spot, button, timer: setTimeout(() => commitHide(false), UNDO_MS) };
      if (!toast) { commitHide(false); return; }
      toast.hidden = false;
      toast.querySelector(".toast-undo").focus({ preventScroll: true });
    }
    if (toast) {
      toast.querySelector(".toast-undo").addEventListener("click", () => {
        const pending = pendingHide;
        if (!pending) return;
        pendingHide = null;
        clearTimeout(pending.timer);
        toast.hidden = true;
        restore(pending);
        pending.button.focus({ preventScroll: true });
      });
    }
    window.addEventListener("pagehide", () => commitHide(true));

    // Delete menus: done in place, without leaving the page.
    list.addEventListener("submit", async (event) => {
      const form = event.target.closest("form.delete-form");
      if (!form) return;
      event.preventDefault();
      const li = form.closest("li.message");
      const details = form.closest("details");
      const opener = details && details.querySelector("summary");
      if (details) details.open = false;
      const which = form.elements.for.value;
      if (which === "me") { hideWithUndo(li); return; }
      if (form.dataset.confirm && !(await confirmFirst(form, opener))) return;
      const result = await api("DELETE", `/api/v1/messages/${Number(li.dataset.messageId)}?for=${which}`);
      if (!result.ok) { alertProblem(problem(result)); return; }
      tombstone(li.dataset.messageId);
    });

    // Ending, from the header's menu: asked first, then done in place (the line it leaves in
    // the history arrives like any other update).
    const endForm = thread.querySelector("form.end-form");
    if (endForm) endForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const details = endForm.closest("details");
      const opener = details && details.querySelector("summary");
      if (details) details.open = false;
      if (!(await confirmFirst(endForm, opener))) return;
      const result = await api("POST", `/api/v1/conversations/${conversation}/end`);
      if (!result.ok) { alertProblem(problem(result)); return; }
      thread.dataset.status = "ended";
      await loadNew(false);
      if (opener) opener.focus();
    });

    function alertProblem(error) {
      if (!formError) return;
      formError.textContent = error.message;
      formError.hidden = false;
    }

    if (!composer) return;

    // The draft outlives the page: kept per user and conversation until it is sent.
    const saved = JSON.parse(store.get(draftKey) || "null");
    if (saved) {
      textarea.value = saved.body || "";
      if (subject) subject.value = saved.subject || "";
    }
    function saveDraft() {
      const draft = { body: textarea.value, subject: subject ? subject.value : "" };
      if (draft.body || draft.subject) store.set(draftKey, JSON.stringify(draft));
      else store.remove(draftKey);
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
    // The composer grows with what is written (up to a limit in CSS), from one line.
    function fitTextarea() {
      textarea.style.height = "auto";
      textarea.style.height = `${textarea.scrollHeight + 2}px`;
    }
    textarea.addEventListener("input", fitTextarea);
    if (textarea.value) fitTextarea();

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
      // Files being attached (attach.js): the message waits for their uploads, and may be
      // files only.
      const attached = composer.jobchatAttachments;
      if (attached && attached.busy()) { alertProblem({ message: "Wait for the files to finish uploading." }); return; }
      if (attached && attached.failed()) { alertProblem({ message: "Remove or retry the files that did not upload." }); return; }
      const files = attached ? attached.ids() : [];
      if (!text.trim() && !files.length) { textarea.focus(); return; }
      const button = composer.querySelector("button[type=submit]");
      const payload = { body: text, channel: channel(), idempotency_key: pendingKey ||= crypto.randomUUID() };
      if (files.length) payload.attachments = files;
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
      if (attached) attached.clear();
      textarea.value = "";
      fitTextarea();
      if (subject) subject.value = "";
      store.remove(draftKey);
      if (smsInfo) smsInfo.textContent = "";
      typingSentAt = 0;
      send({ type: "typing", conversation, typing: false });
      thread.dataset.status = "open"; // a staff member's message reopens an ended conversation
      await loadNew(true);
      textarea.focus();
      // push.js may now offer notifications (the moment they have just written to someone).
      document.dispatchEvent(new CustomEvent("jobchat:sent", { detail: { conversation } }));
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

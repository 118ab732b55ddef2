// The sandbox page: one person's view of the fake Slack workspace, refreshed on every change.
"use strict";

(() => {
  const { h } = BlockKit;
  const $ = (id) => document.getElementById(id);

  // Clicking one fills the composer: [label, text].
  const SUGGESTIONS = [
    ["@pmteam design a job queue…", "@pmteam design a durable job queue on PostgreSQL for our billing exports"],
    ["/pm status", "/pm status"],
    ["/pm help", "/pm help"],
  ];

  const page = {
    me: localStorage.getItem("pmteam-sandbox-as") || "",
    route: parseRoute(),
    state: null,
    rendered: {},
    loading: false,
    again: false,
  };

  // --- routing: #/c/<channel>[/t/<ts>] or #/app/<home|messages>[/t/<ts>] ---------------------

  function parseRoute() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
    const route = { view: "channel", channel: null, tab: "home", thread: null };
    if (parts[0] === "app") {
      route.view = "app";
      route.tab = parts[1] === "messages" ? "messages" : "home";
      if (parts[2] === "t") route.thread = parts[3] || null;
    } else if (parts[0] === "c") {
      route.channel = parts[1] || null;
      if (parts[2] === "t") route.thread = parts[3] || null;
    }
    return route;
  }

  function go(route) {
    page.route = { ...page.route, ...route };
    const r = page.route;
    const base = r.view === "app" ? `#/app/${r.tab}` : `#/c/${r.channel || ""}`;
    const hash = r.thread ? `${base}/t/${r.thread}` : base;
    if (location.hash !== hash) history.pushState(null, "", hash);
    if (r.view === "app" && r.tab === "home") openHome();
    refresh();
  }

  window.addEventListener("popstate", () => {
    page.route = parseRoute();
    refresh();
  });

  // --- talking to the fake -----------------------------------------------------------------------

  function currentChannel() {
    const s = page.state;
    if (page.route.view === "app") return s ? s.dm : null;
    return page.route.channel;
  }

  async function refresh() {
    if (page.loading) {
      page.again = true;
      return;
    }
    page.loading = true;
    try {
      do {
        page.again = false;
        const query = new URLSearchParams();
        if (page.me) query.set("as", page.me);
        // The App Home's Messages tab is the person's DM with the app ("dm").
        const channel = page.route.view === "app" ? "dm" : page.route.channel;
        if (channel) query.set("channel", channel);
        if (page.route.thread && channel) query.set("thread", page.route.thread);
        let response = await fetch(`/sandbox/state?${query}`);
        if (response.status === 400) {
          // A person or channel from an earlier session: start over with the defaults.
          page.me = "";
          page.route = { view: "channel", channel: null, tab: "home", thread: null };
          response = await fetch("/sandbox/state");
        }
        const state = await response.json();
        if (!response.ok) throw new Error(state.error || response.statusText);
        page.me = state.me;
        localStorage.setItem("pmteam-sandbox-as", page.me);
        if (page.route.view === "channel" && !page.route.channel) {
          const first = state.channel_order.find((id) => state.channels[id].name === "engineering")
            || state.channel_order[0];
          page.route.channel = first;
          history.replaceState(null, "", `#/c/${first}`);
          page.again = true;
        }
        page.state = state;
        render();
      } while (page.again);
    } catch (error) {
      toast(`Could not reach the sandbox: ${error.message}`);
    } finally {
      page.loading = false;
    }
  }

  async function call(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ as: page.me, ...body }),
    });
    const result = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(result.error || response.statusText);
    return result;
  }

  function openHome() {
    if (!page.me) return;
    call("/sandbox/home", {}).then((result) => {
      if (!result.acked) toast("pmteam did not acknowledge app_home_opened");
    }).catch((error) => toast(error.message));
  }

  function startLive() {
    const live = new EventSource("/sandbox/live");
    live.addEventListener("revision", () => refresh());
    live.onerror = () => setConnection(null);
  }

  // --- rendering ---------------------------------------------------------------------------------

  function ctxFor(container) {
    const s = page.state;
    return {
      me: s.me,
      users: Object.fromEntries(Object.entries(s.users).map(([id, u]) => [id, { ...u, name: u.name }])),
      channels: s.channels,
      onChannel: (id) => go({ view: "channel", channel: id, thread: null }),
      onLink: (anchor, url) => {
        // Permalinks point at this fake: open the thread here instead of a JSON page.
        const match = /^https?:\/\/[^/]+\/archives\/([A-Z0-9]+)\/p(\d+)(\d{6})(?:\?thread_ts=([\d.]+))?/.exec(url);
        if (!match || new URL(url).port !== location.port) return;
        anchor.removeAttribute("target");
        anchor.addEventListener("click", (event) => {
          event.preventDefault();
          const ts = match[4] || `${match[2]}.${match[3]}`;
          go({ view: "channel", channel: match[1], thread: ts });
        });
      },
      onAction: (action) => act(container, action),
      confirm: confirmDialog,
    };
  }

  async function act(container, { element, blockId, value, selectedOption, node }) {
    const body = { action_id: element.action_id, block_id: blockId };
    if (value !== undefined) body.value = value;
    if (selectedOption) body.selected_option = selectedOption;
    if (container.view_id) body.view_id = container.view_id;
    else Object.assign(body, { channel: container.channel, ts: container.ts });
    if (node) node.disabled = true;
    try {
      const result = await call("/sandbox/click", body);
      if (!result.acked) toast("pmteam did not acknowledge the click");
    } catch (error) {
      toast(error.message);
    } finally {
      if (node) node.disabled = false;
    }
  }

  function render() {
    const s = page.state;
    $("team-name").textContent = s.team.name;
    renderBanner(s.model);
    renderViewer(s);
    renderSidebar(s);
    setConnection(s.connection);
    renderMain(s);
    renderThread(s);
    renderModal(s);
  }

  function renderBanner(model) {
    const banner = $("banner");
    banner.hidden = !model;
    if (!model) return;
    banner.className = model.offline ? "banner offline" : "banner live";
    banner.textContent = model.text;
  }

  function renderViewer(s) {
    const select = $("viewer");
    const key = JSON.stringify([s.people, s.me]);
    if (page.rendered.viewer === key) return;
    page.rendered.viewer = key;
    select.replaceChildren(...s.people.map((p) =>
      h("option", { value: p.id, selected: p.id === s.me }, `${p.real_name}${p.title ? ` · ${p.title}` : ""}`)));
  }

  function renderSidebar(s) {
    const list = $("channel-list");
    const items = s.channel_order.filter((id) => !s.channels[id].is_im).map((id) => {
      const c = s.channels[id];
      const active = page.route.view === "channel" && page.route.channel === id;
      return h("li", {}, h("button", {
        type: "button",
        class: active ? "nav-item active" : "nav-item",
        "data-channel": c.name,
        onclick: () => go({ view: "channel", channel: id, thread: null }),
      }, h("span", { class: "hash", "aria-hidden": "true" }, "#"), c.name));
    });
    list.replaceChildren(...items);
    $("nav-app").className = page.route.view === "app" ? "nav-item active" : "nav-item";
  }

  function setConnection(mode) {
    const labels = {
      http: ["ok", "pmteam connected · HTTP events"],
      socket: ["ok", "pmteam connected · Socket Mode"],
      none: ["down", "pmteam is not connected"],
    };
    const [kind, text] = labels[mode] || ["down", "reconnecting to the sandbox…"];
    const node = $("connection");
    node.className = `connection ${kind}`;
    node.textContent = text;
  }

  function renderMain(s) {
    const inApp = page.route.view === "app";
    const channel = inApp ? s.channels[s.dm] : s.channels[page.route.channel];
    $("app-tabs").hidden = !inApp;
    $("tab-home").setAttribute("aria-selected", String(inApp && page.route.tab === "home"));
    $("tab-messages").setAttribute("aria-selected", String(inApp && page.route.tab === "messages"));
    const showHome = inApp && page.route.tab === "home";
    $("home").hidden = !showHome;
    $("messages").hidden = showHome;
    $("composer").hidden = showHome;
    if (inApp) {
      $("main-title").replaceChildren(h("span", { class: "app-dot big", "aria-hidden": "true" }, "pm"), s.bot.name);
      $("main-subtitle").textContent = "Your backend engineer: tasks, reports and standups";
    } else if (channel) {
      $("main-title").replaceChildren(h("span", { class: "hash" }, "#"), channel.name);
      $("main-subtitle").textContent = channel.bot_is_member
        ? channel.purpose
        : `${channel.purpose ? `${channel.purpose} · ` : ""}pmteam is not in this channel`;
    }
    const placeholder = channel ? (inApp ? "Message pmteam" : `Message #${channel.name}`) : "";
    $("composer-text").placeholder = placeholder;
    renderSuggestions(inApp);
    if (showHome) renderHome(s);
    else renderList($("messages"), s.messages, { channel: currentChannel(), inThread: false });
  }

  function renderSuggestions(inApp) {
    const key = String(inApp);
    if (page.rendered.suggestions === key) return;
    page.rendered.suggestions = key;
    // In the app's DM there is no need to mention it.
    const bare = (text) => (inApp ? text.replace(/^@pmteam /, "") : text);
    $("suggestions").replaceChildren(...SUGGESTIONS.map(([label, text]) => h("button", {
      type: "button",
      class: "suggestion",
      title: bare(text),
      onclick: () => {
        const box = $("composer-text");
        box.value = bare(text);
        box.focus();
      },
    }, bare(label))));
  }

  function renderHome(s) {
    const key = JSON.stringify([s.me, s.home && s.home.hash, s.home && s.home.id, s.connection]);
    if (page.rendered.home === key) return;
    page.rendered.home = key;
    const home = $("home");
    if (!s.home) {
      home.replaceChildren(h("div", { class: "empty" },
        h("p", {}, "pmteam has not published a Home tab for you yet."),
        h("p", { class: "subtitle" }, "Opening this tab sent the app an app_home_opened event; its view appears here when it calls views.publish.")));
      return;
    }
    home.replaceChildren(BlockKit.blocks(s.home.blocks, ctxFor({ view_id: s.home.id })));
  }

  function timeOf(ts) {
    return new Date(Number(ts) * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function initials(author) {
    if (author.id === page.state.bot.id) return "pm";
    return (author.name || "?").slice(0, 1).toUpperCase();
  }

  function renderList(container, messages, where) {
    const key = JSON.stringify([messages, page.state.users, page.state.me]);
    const renderKey = where.inThread ? "thread" : "messages";
    if (page.rendered[renderKey] === key && page.rendered[`${renderKey}-el`] === container) return;
    page.rendered[renderKey] = key;
    page.rendered[`${renderKey}-el`] = container;
    const atBottom = container.scrollHeight - container.scrollTop - container.clientHeight < 60;
    const scrollTop = container.scrollTop;
    const nodes = [];
    let previous = null;
    messages.forEach((message, index) => {
      if (where.inThread && index === 1) {
        nodes.push(h("div", { class: "reply-divider" },
          `${messages.length - 1} ${messages.length === 2 ? "reply" : "replies"}`));
      }
      const compact = previous && !message.ephemeral && !previous.ephemeral
        && previous.author.id === message.author.id && !previous.reply_count
        && Number(message.ts) - Number(previous.ts) < 300 && !(where.inThread && index === 1);
      nodes.push(messageNode(message, where, compact));
      previous = message;
    });
    if (!messages.length) {
      nodes.push(h("div", { class: "empty" }, where.inThread
        ? "This thread is empty."
        : "No messages yet. Mention @pmteam with a backend task to get started."));
    }
    // Few messages sit at the bottom, next to the composer, as in Slack.
    container.replaceChildren(h("div", { class: "list-spacer" }), ...nodes);
    container.scrollTop = atBottom ? container.scrollHeight : scrollTop;
  }

  function messageNode(message, where, compact) {
    const s = page.state;
    const author = message.author;
    const isBot = author.is_bot;
    const classes = ["message"];
    if (isBot) classes.push("from-bot");
    if (message.ephemeral) classes.push("ephemeral");
    if (compact) classes.push("compact");
    if (message.stream === "in_progress") classes.push("streaming");
    if (page.route.thread === message.ts && !where.inThread) classes.push("selected");
    const container = { channel: where.channel, ts: message.ts };
    const ctx = ctxFor(container);
    const content = h("div", { class: "message-content" });
    if (message.subtype === "tombstone") {
      content.append(h("div", { class: "subtitle" }, "This message was deleted."));
    } else if (message.stream) {
      const answer = BlockKit.markdown(message.text, ctx);
      if (message.stream === "in_progress") {
        // The caret sits at the end of the text written so far.
        const tail = answer.lastElementChild;
        let holder = answer;
        if (tail && tail.tagName === "P") holder = tail;
        else if (tail && /^(UL|OL)$/.test(tail.tagName)) holder = tail.lastElementChild || tail;
        holder.append(h("span", { class: "caret", "aria-label": "streaming" }));
      }
      content.append(answer);
      if (message.blocks) content.append(BlockKit.blocks(message.blocks, ctx));
    } else if (message.blocks && message.blocks.length) {
      content.append(BlockKit.blocks(message.blocks, ctx));
    } else {
      content.append(BlockKit.mrkdwn(message.text, ctx));
    }
    for (const attachment of message.attachments || []) {
      const bar = h("div", { class: "attachment", style: attachment.color ? `border-color:${safeColor(attachment.color)}` : null });
      if (attachment.blocks) bar.append(BlockKit.blocks(attachment.blocks, ctx));
      else bar.append(BlockKit.mrkdwn(attachment.text || attachment.fallback || "", ctx));
      content.append(bar);
    }
    const head = compact ? null : h("div", { class: "message-head" },
      h("span", { class: "author" }, author.name),
      isBot ? h("span", { class: "badge" }, "APP") : null,
      h("time", { datetime: new Date(Number(message.ts) * 1000).toISOString() }, timeOf(message.ts)),
      message.edited ? h("span", { class: "subtitle" }, "(edited)") : null);
    const body = h("div", { class: "message-body" }, head,
      message.ephemeral ? h("div", { class: "only-you" }, "👁 Only visible to you") : null,
      content,
      reactionsNode(message.reactions, s.me));
    if (!where.inThread && message.reply_count) {
      body.append(h("button", {
        type: "button",
        class: "thread-link",
        onclick: () => openThread(message.ts),
      }, `${message.reply_count} ${message.reply_count === 1 ? "reply" : "replies"}`,
      h("span", { class: "subtitle" }, ` · last reply ${timeOf(message.latest_reply || message.ts)}`)));
    }
    const row = h("div", { class: classes.join(" "), dataset: { ts: message.ts } },
      h("div", { class: `avatar ${isBot ? "bot" : `person-${(author.id || "x").slice(-2)}`}` }, compact ? "" : initials(author)),
      body);
    if (!where.inThread && !message.ephemeral && message.subtype !== "tombstone") {
      row.append(h("div", { class: "hover-actions" }, h("button", {
        type: "button", class: "icon-button", title: "Reply in thread", onclick: () => openThread(message.ts),
      }, "💬")));
    }
    return row;
  }

  function safeColor(color) {
    const named = { good: "#2eb67d", warning: "#ecb22e", danger: "#e01e5a" };
    if (named[color]) return named[color];
    return /^#?[0-9a-f]{3,8}$/i.test(color) ? (color.startsWith("#") ? color : `#${color}`) : "#ddd";
  }

  function reactionsNode(reactions, me) {
    if (!reactions || !reactions.length) return null;
    return h("div", { class: "reactions" }, reactions.map((r) => h("span", {
      class: r.users.includes(me) ? "reaction mine" : "reaction",
      title: `:${r.name}: by ${r.users.map((id) => (page.state.users[id] || { name: id }).name).join(", ")}`,
      dataset: { reaction: r.name },
    }, BlockKit.emoji(r.name), h("span", { class: "count" }, String(r.count)))));
  }

  function openThread(ts) {
    go({ thread: ts });
    setTimeout(() => $("thread-text").focus(), 50);
  }

  function renderThread(s) {
    const panel = $("thread");
    const thread = s.thread;
    const open = Boolean(page.route.thread && thread);
    panel.hidden = !open;
    document.body.classList.toggle("with-thread", open);
    if (!open) {
      page.rendered.thread = null;
      return;
    }
    const channel = s.channels[thread.channel];
    $("thread-where").textContent = channel ? (channel.is_im ? "pmteam" : `#${channel.name}`) : "";
    renderList($("thread-messages"), thread.messages, { channel: thread.channel, inThread: true });
  }

  // --- modals ------------------------------------------------------------------------------------

  function renderModal(s) {
    const layer = $("modal-layer");
    const view = s.modal;
    const key = view ? JSON.stringify([view.id, view.hash]) : "";
    if (page.rendered.modal === key) return;
    page.rendered.modal = key;
    if (!view) {
      layer.hidden = true;
      layer.replaceChildren();
      return;
    }
    const inputs = [];
    const ctx = { ...ctxFor({ view_id: view.id }), inputs };
    const error = h("div", { class: "modal-error", hidden: true });
    const submit = view.submit ? h("button", { type: "submit", class: "bk-button primary" }, BlockKit.plainText(view.submit)) : null;
    const form = h("form", { class: "modal", role: "dialog", "aria-modal": "true", "aria-label": BlockKit.plainText(view.title) },
      h("div", { class: "modal-header" },
        h("h2", {}, BlockKit.plainText(view.title)),
        h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => closeModal(view) }, "×")),
      h("div", { class: "modal-body" }, BlockKit.blocks(view.blocks, ctx)),
      error,
      h("div", { class: "modal-footer" },
        h("button", { type: "button", class: "bk-button", onclick: () => closeModal(view) }, BlockKit.plainText(view.close) || "Cancel"),
        submit));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const values = {};
      for (const input of inputs) {
        values[input.blockId] = values[input.blockId] || {};
        values[input.blockId][input.actionId] = input.read();
      }
      if (submit) submit.disabled = true;
      try {
        const result = await call("/sandbox/views/submit", { view_id: view.id, values });
        form.querySelectorAll(".bk-error").forEach((node) => node.remove());
        if (result.errors) {
          // Shown under each input, keeping what the person typed.
          for (const [blockId, message] of Object.entries(result.errors)) {
            const block = form.querySelector(`.bk-input-block[data-block-id="${CSS.escape(blockId)}"]`);
            if (block) block.append(h("div", { class: "bk-error" }, String(message)));
          }
        } else if (result.error) {
          error.hidden = false;
          error.textContent = result.error;
        }
      } catch (failure) {
        error.hidden = false;
        error.textContent = failure.message;
      } finally {
        if (submit) submit.disabled = false;
      }
    });
    layer.replaceChildren(form);
    layer.hidden = false;
    const first = form.querySelector("input, textarea, select");
    if (first) first.focus();
  }

  function closeModal(view) {
    call("/sandbox/views/close", { view_id: view.id }).catch((error) => toast(error.message));
  }

  function confirmDialog(confirm) {
    return new Promise((resolve) => {
      const layer = h("div", { class: "modal-layer confirm-layer" });
      const done = (answer) => {
        layer.remove();
        resolve(answer);
      };
      layer.append(h("div", { class: "modal", role: "alertdialog" },
        h("div", { class: "modal-header" }, h("h2", {}, BlockKit.plainText(confirm.title) || "Are you sure?")),
        h("div", { class: "modal-body" }, BlockKit.textObject(confirm.text, ctxFor({}))),
        h("div", { class: "modal-footer" },
          h("button", { type: "button", class: "bk-button", onclick: () => done(false) }, BlockKit.plainText(confirm.deny) || "Cancel"),
          h("button", {
            type: "button",
            class: confirm.style === "danger" ? "bk-button danger" : "bk-button primary",
            onclick: () => done(true),
          }, BlockKit.plainText(confirm.confirm) || "Confirm"))));
      document.body.append(layer);
    });
  }

  // --- composing ---------------------------------------------------------------------------------

  async function send(textarea, threadTs) {
    const text = textarea.value.trim();
    const channel = currentChannel();
    if (!text || !channel) return;
    textarea.value = "";
    try {
      const result = await call("/sandbox/post", { channel, text, thread_ts: threadTs || null });
      if (result.command && !result.acked && result.error !== "unknown_command") {
        toast(`${result.command} got no answer from pmteam`);
      }
    } catch (error) {
      textarea.value = text;
      toast(error.message);
    }
  }

  function wireComposer(form, textarea, threadTs) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(textarea, threadTs());
    });
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send(textarea, threadTs());
      }
    });
  }

  function toast(text) {
    const node = $("toast");
    node.textContent = text;
    node.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { node.hidden = true; }, 5000);
  }

  wireComposer($("composer"), $("composer-text"), () => null);
  wireComposer($("thread-composer"), $("thread-text"), () => page.route.thread);
  $("thread-close").addEventListener("click", () => go({ thread: null }));
  $("nav-app").addEventListener("click", () => go({ view: "app", tab: "home", thread: null }));
  $("tab-home").addEventListener("click", () => go({ view: "app", tab: "home", thread: null }));
  $("tab-messages").addEventListener("click", () => go({ view: "app", tab: "messages", thread: null }));
  $("viewer").addEventListener("change", (event) => {
    page.me = event.target.value;
    localStorage.setItem("pmteam-sandbox-as", page.me);
    page.rendered = {};
    if (page.route.view === "app" && page.route.tab === "home") openHome();
    refresh();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && page.state && page.state.modal) closeModal(page.state.modal);
  });

  refresh().then(() => {
    if (page.route.view === "app" && page.route.tab === "home") openHome();
  });
  startLive();
})();

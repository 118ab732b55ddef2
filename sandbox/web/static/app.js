// The sandbox page: one person's view of the fake Slack workspace, refreshed on every change.
"use strict";

(() => {
  const { h } = BlockKit;
  const $ = (id) => document.getElementById(id);

  // The guided tour: with the offline demo model these three end COMPLETED, IN PROGRESS and
  // BLOCKED (it reads "plan"/"migration" and "waiting for … credentials" in the request).
  const TOUR = [
    {
      text: "Our /v1/invoices list endpoint gets slow past page 50 — how should we paginate it?",
      short: "Paginate /v1/invoices",
      outcome: "completed",
      label: "✅ ends COMPLETED",
    },
    {
      text: "Plan the migration of the orders table from MySQL to PostgreSQL without downtime",
      short: "Plan the orders migration",
      outcome: "in-progress",
      label: "⏳ ends IN PROGRESS",
    },
    {
      text: "Set up the Stripe webhook consumer — we're waiting for the production API credentials from finance",
      short: "Stripe webhook (blocked)",
      outcome: "blocked",
      label: "⛔ ends BLOCKED",
    },
  ];
  const FOLLOW_UP = "What about filters and sorting with keyset pagination?";
  const COMMANDS = ["/pm status", "/pm standup", "/pm list @alice", "/pm help"];
  const TOUR_CHANNEL = "engineering";
  // Slack folds a message's text past about this many characters behind "Show more".
  const LONG_MESSAGE = 4000;

  const page = {
    me: localStorage.getItem("pmteam-sandbox-as") || "",
    route: parseRoute(),
    state: null,
    rendered: {},
    loading: false,
    again: false,
    // The assistant pane: open or not, and its thread ({as, ts, context}) in this tab.
    assistantOpen: sessionStorage.getItem("pmteam-sandbox-assistant-open") === "1",
    assistant: readJson(sessionStorage.getItem("pmteam-sandbox-assistant")),
    expanded: new Set(),
    // The tour stays open (its requests, then its next steps) until the person folds it.
    tourFolded: false,
  };

  function readJson(text) {
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      return null;
    }
  }

  function saveAssistant() {
    sessionStorage.setItem("pmteam-sandbox-assistant-open", page.assistantOpen ? "1" : "0");
    sessionStorage.setItem("pmteam-sandbox-assistant", JSON.stringify(page.assistant));
  }

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
    followWithAssistant();
    refresh();
  }

  window.addEventListener("popstate", () => {
    page.route = parseRoute();
    followWithAssistant();
    refresh();
  });

  // --- talking to the fake -----------------------------------------------------------------------

  function currentChannel() {
    const s = page.state;
    if (page.route.view === "app") return s ? s.dm : null;
    return page.route.channel;
  }

  function assistantThread() {
    const a = page.assistant;
    return page.assistantOpen && a && a.as === page.me ? a.ts : null;
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
        if (assistantThread()) query.set("assistant", assistantThread());
        let response = await fetch(`/sandbox/state?${query}`);
        if (response.status === 400 && query.has("assistant")) {
          // An assistant thread from an earlier sandbox: the pane starts a new one.
          page.assistant = null;
          saveAssistant();
          query.delete("assistant");
          response = await fetch(`/sandbox/state?${query}`);
          if (response.ok && page.assistantOpen) setTimeout(startAssistant, 0);
        }
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
          const first = state.channel_order.find((id) => state.channels[id].name === TOUR_CHANNEL)
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

  // --- the assistant pane: Slack's split view for an AI app ------------------------------------

  // The channel the person is looking at: the context Slack gives the assistant thread.
  function contextChannel() {
    return page.route.view === "channel" ? page.route.channel : null;
  }

  async function openAssistant() {
    page.assistantOpen = true;
    saveAssistant();
    if (!page.assistant || page.assistant.as !== page.me) {
      await startAssistant();
    } else {
      followWithAssistant();
      refresh();
    }
    setTimeout(() => $("assistant-text").focus(), 50);
  }

  function closeAssistant() {
    page.assistantOpen = false;
    saveAssistant();
    refresh();
  }

  // Opening the pane (or "New chat") starts a thread: Slack sends assistant_thread_started.
  async function startAssistant() {
    const context = contextChannel();
    page.assistant = null;
    page.rendered.assistant = null;
    render();
    try {
      const result = await call("/sandbox/assistant/start", { context_channel: context });
      page.assistant = { as: page.me, ts: result.thread_ts, context };
      if (!result.acked) toast("pmteam did not acknowledge assistant_thread_started");
    } catch (error) {
      toast(error.message);
    }
    saveAssistant();
    refresh();
  }

  // Switching channels with the pane open: Slack sends assistant_thread_context_changed.
  function followWithAssistant() {
    const thread = assistantThread();
    const context = contextChannel();
    if (!thread || !context || context === page.assistant.context) return;
    page.assistant.context = context;
    saveAssistant();
    call("/sandbox/assistant/context", { thread_ts: thread, context_channel: context })
      .then((result) => {
        if (!result.acked) toast("pmteam did not acknowledge assistant_thread_context_changed");
      })
      .catch((error) => toast(error.message));
  }

  // --- rendering ---------------------------------------------------------------------------------

  // `fromApp`: text the app wrote, where dollar amounts are costs (simulated when offline).
  function ctxFor(container, fromApp = true) {
    const s = page.state;
    return {
      me: s.me,
      users: Object.fromEntries(Object.entries(s.users).map(([id, u]) => [id, { ...u, name: u.name }])),
      channels: s.channels,
      simulated: Boolean(fromApp && s.model && s.model.offline),
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
    if (!s) return;
    $("team-name").textContent = s.team.name;
    renderBanner(s.model);
    renderViewer(s);
    renderSidebar(s);
    setConnection(s.connection);
    renderMain(s);
    renderThread(s);
    renderAssistant(s);
    renderModal(s);
  }

  function renderBanner(model) {
    const banner = $("banner");
    banner.hidden = !model;
    if (!model) return;
    banner.className = model.offline ? "banner offline" : "banner live";
    banner.textContent = model.text;
    banner.title = model.text;
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
    node.title = text;
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
    renderSuggestions(s, inApp ? null : channel);
    if (showHome) {
      renderHome(s);
      return;
    }
    const where = { channel: currentChannel(), inThread: false, key: "messages" };
    if (!inApp && channel && channel.name === TOUR_CHANNEL) {
      const tour = tourProgress(s.messages);
      where.extraKey = ["tour", page.tourFolded, tour.map((m) => (m ? m.ts : null))];
      where.intro = () => [tourNode(s, channel, tour)];
    }
    // An assistant thread nobody wrote in is not a conversation worth listing.
    const messages = s.messages.filter((m) => m.subtype !== "assistant_app_thread" || m.reply_count);
    renderList($("messages"), messages, where);
  }

  // --- the guided tour ---------------------------------------------------------------------------

  function decodeEntities(text) {
    return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  // What a person typed, without the @pmteam mention: to find the tour's requests.
  function typedText(text) {
    return decodeEntities(String(text || "").replace(/<@[A-Z0-9]+(?:\|[^>]*)?>/g, "")).trim();
  }

  function tourProgress(messages) {
    return TOUR.map((request) => messages.find((m) => !m.author.is_bot && !m.ephemeral
      && typedText(m.text) === request.text) || null);
  }

  function tourNode(s, channel, asked) {
    const count = asked.filter(Boolean).length;
    const empty = !s.messages.length;
    if (!empty && page.tourFolded) {
      return h("div", { class: "tour-bar", id: "tour" },
        h("span", { class: "tour-bar-text" }, `🧭 Sandbox tour · ${count} of ${TOUR.length} requests asked`),
        h("button", { type: "button", class: "tour-link", onclick: () => { page.tourFolded = false; refresh(); } }, "Show the tour"));
    }
    const requests = TOUR.map((request, index) => {
      const message = asked[index];
      const action = message
        ? h("button", { type: "button", class: "bk-button tour-open", onclick: () => openThread(message.ts) }, "✓ Asked · open thread")
        : h("button", {
          type: "button",
          class: "bk-button primary tour-ask",
          onclick: (event) => askPmteam(channel.id, request.text, event.currentTarget),
        }, "Ask pmteam");
      return h("li", { class: `tour-request ${request.outcome}`, dataset: { outcome: request.outcome } },
        h("div", { class: "tour-request-text" },
          h("span", { class: "tour-outcome" }, request.label),
          h("q", {}, request.text)),
        action);
    });
    const link = (label, onclick) => h("button", { type: "button", class: "tour-link", onclick }, label);
    const fill = (text) => () => fillComposer($("composer-text"), text);
    const first = asked[0];
    const steps = [
      h("li", {}, "Open a request's thread (", h("em", {}, "“2 replies”"), ") to watch the answer stream in, and ask a follow-up there: ",
        first ? link(`“${FOLLOW_UP}”`, () => { openThread(first.ts); setTimeout(() => fillComposer($("thread-text"), FOLLOW_UP), 80); })
          : h("q", {}, FOLLOW_UP)),
      h("li", {}, "See each request's card in ", link("#pm-coordination", () => goToChannel("pm-coordination")),
        " with its status and buttons: Acknowledge, Mark blocked (it asks why), Mark done, Reopen."),
      h("li", {}, "Open pmteam's ", link("Home tab", () => go({ view: "app", tab: "home", thread: null })),
        ": the board of blocked tasks, the last reports and this week's usage."),
      h("li", {}, "Run ", link("/pm status", fill("/pm status")), " or ", link("/pm standup", fill("/pm standup")),
        " in any channel (only you see the answer); ", link("/pm list @alice", fill("/pm list @alice")), " lists Alice's tasks."),
      h("li", {}, "Open the ", link("Assistant", () => openAssistant()),
        " for pmteam's side pane: suggested prompts, its status while it works, streamed answers."),
      h("li", {}, "Switch to Bob, the PM, with “Viewing as” at the top right."),
    ];
    return h("div", { class: "tour", id: "tour" },
      h("div", { class: "tour-head" },
        h("span", { class: "app-dot big", "aria-hidden": "true" }, "pm"),
        h("div", {},
          h("h2", {}, "Welcome to the pmteam sandbox"),
          h("p", {}, "pmteam is an AI backend engineer in Slack. Mention it with a backend task: it answers in a thread "
            + "and files a report for the PM in #pm-coordination. These three requests show a task that is completed, "
            + "one in progress and one blocked:")),
        empty ? null : h("button", { type: "button", class: "icon-button", "aria-label": "Fold the tour", title: "Fold the tour", onclick: () => { page.tourFolded = true; refresh(); } }, "–")),
      h("ol", { class: "tour-requests" }, requests),
      h("div", { class: "tour-next" }, h("h3", {}, "Then"), h("ul", {}, steps)));
  }

  async function askPmteam(channel, text, node) {
    if (node) node.disabled = true;
    try {
      await call("/sandbox/post", { channel, text: `@pmteam ${text}`, thread_ts: null });
    } catch (error) {
      toast(error.message);
      if (node) node.disabled = false;
    }
  }

  function goToChannel(name) {
    const s = page.state;
    const id = s.channel_order.find((c) => s.channels[c].name === name);
    if (id) go({ view: "channel", channel: id, thread: null });
  }

  function fillComposer(box, text) {
    box.value = text;
    box.focus();
    box.setSelectionRange(text.length, text.length);
    const frame = box.closest(".composer-box");
    frame.classList.remove("filled");
    void frame.offsetWidth; // restart the highlight
    frame.classList.add("filled");
  }

  // "Try" under the composer: the tour's requests not asked yet, then the /pm commands.
  function renderSuggestions(s, channel) {
    let items;
    if (!channel) {
      // In the app's DM there is no need to mention it.
      items = [...TOUR.map((r) => [r.short, r.text]), ["/pm status", "/pm status"]];
    } else if (channel.name === TOUR_CHANNEL) {
      const asked = tourProgress(s.messages);
      items = TOUR.filter((_, i) => !asked[i]).map((r) => [r.short, `@pmteam ${r.text}`]);
      items.push(...COMMANDS.map((c) => [c, c]));
    } else {
      items = COMMANDS.map((c) => [c, c]);
    }
    const key = JSON.stringify(items);
    if (page.rendered.suggestions === key) return;
    page.rendered.suggestions = key;
    $("suggestions").replaceChildren(...items.map(([label, text]) => h("button", {
      type: "button",
      class: "suggestion",
      title: `${text} (fills the message box; Enter sends it)`,
      onclick: () => fillComposer($("composer-text"), text),
    }, label)));
  }

  function renderHome(s) {
    const key = JSON.stringify([s.me, s.home && s.home.hash, s.home && s.home.id, s.connection, Boolean(s.model && s.model.offline)]);
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
    return BlockKit.formatEpoch(ts);
  }

  function initials(author) {
    if (author.id === page.state.bot.id) return "pm";
    return (author.name || "?").slice(0, 1).toUpperCase();
  }

  // where: {channel, inThread, key, intro?: () => nodes, extraKey?} — `key` names the list.
  function renderList(container, messages, where) {
    const offline = Boolean(page.state.model && page.state.model.offline);
    const key = JSON.stringify([messages, page.state.users, page.state.me, offline, where.extraKey || null]);
    const renderKey = where.key;
    if (page.rendered[renderKey] === key && page.rendered[`${renderKey}-el`] === container) return;
    // Another channel or thread opens at its newest message; the same one keeps its scroll.
    const shown = JSON.stringify([where.channel, messages.length ? messages[0].ts : null, where.inThread]);
    const switched = page.rendered[`${renderKey}-shown`] !== shown;
    page.rendered[renderKey] = key;
    page.rendered[`${renderKey}-el`] = container;
    page.rendered[`${renderKey}-shown`] = shown;
    const atBottom = switched
      || container.scrollHeight - container.scrollTop - container.clientHeight < 60;
    const scrollTop = container.scrollTop;
    const nodes = where.intro ? where.intro() : [];
    let previous = null;
    messages.forEach((message, index) => {
      if (where.inThread && where.key === "thread" && index === 1) {
        nodes.push(h("div", { class: "reply-divider" },
          `${messages.length - 1} ${messages.length === 2 ? "reply" : "replies"}`));
      }
      const compact = previous && !message.ephemeral && !previous.ephemeral
        && previous.author.id === message.author.id && !previous.reply_count
        && Number(message.ts) - Number(previous.ts) < 300 && !(where.inThread && index === 1);
      nodes.push(messageNode(message, where, compact));
      previous = message;
    });
    if (!messages.length && !where.intro) {
      let empty = "No messages yet. Mention @pmteam with a backend task to get started.";
      if (where.inThread) empty = "This thread is empty.";
      else if (page.route.view === "app") empty = "No messages yet. Describe a backend task to pmteam here.";
      nodes.push(h("div", { class: "empty" }, empty));
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
    // A person's dollars are their own; the app's (and Slackbot's) are costs.
    const ctx = ctxFor(container, isBot);
    const content = h("div", { class: "message-content" });
    if (message.subtype === "tombstone") {
      content.append(h("div", { class: "subtitle" }, "This message was deleted."));
    } else if (message.subtype === "assistant_app_thread") {
      content.append(h("div", { class: "subtitle" }, "✨ Assistant chat"));
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
      showMore(message, where, content),
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

  // A long message is folded, as Slack does; "Show more" unfolds it (and it stays unfolded).
  function showMore(message, where, content) {
    if (message.stream === "in_progress" || content.textContent.length <= LONG_MESSAGE) return null;
    const id = `${where.channel}:${message.ts}`;
    const toggle = h("button", { type: "button", class: "show-more" });
    const set = (open) => {
      content.classList.toggle("collapsed", !open);
      toggle.textContent = open ? "Show less" : "Show more";
      toggle.setAttribute("aria-expanded", String(open));
    };
    content.classList.add("collapsible");
    set(page.expanded.has(id));
    toggle.addEventListener("click", () => {
      const open = !page.expanded.has(id);
      if (open) page.expanded.add(id);
      else page.expanded.delete(id);
      set(open);
    });
    return toggle;
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
    renderList($("thread-messages"), thread.messages, { channel: thread.channel, inThread: true, key: "thread" });
    // The tour's first request invites a follow-up in its thread.
    const [root, ...replies] = thread.messages;
    const followUp = root && typedText(root.text) === TOUR[0].text
      && !replies.some((m) => !m.author.is_bot && typedText(m.text) === FOLLOW_UP);
    $("thread-hint").hidden = !followUp;
    if (followUp && !$("thread-suggestions").childElementCount) {
      $("thread-suggestions").replaceChildren(h("button", {
        type: "button",
        class: "suggestion",
        title: "Fills the reply box; Enter sends it",
        onclick: () => fillComposer($("thread-text"), FOLLOW_UP),
      }, FOLLOW_UP));
    }
  }

  function renderAssistant(s) {
    const pane = $("assistant");
    const open = page.assistantOpen;
    pane.hidden = !open;
    document.body.classList.toggle("with-assistant", open);
    $("assistant-toggle").setAttribute("aria-pressed", String(open));
    if (!open) {
      page.rendered.assistant = null;
      return;
    }
    const a = s.assistant;
    const asked = a ? a.messages.filter((m) => !m.author.is_bot && !m.ephemeral) : [];
    const title = $("assistant-title");
    // pmteam may name the thread (assistant.threads.setTitle); until then, the first question.
    title.textContent = a && a.title ? a.title : asked.length ? typedText(asked[0].text) : "New chat";
    title.classList.toggle("untitled", !(a && a.title));
    const context = a && a.context_channel ? s.channels[a.context_channel] : null;
    $("assistant-context").replaceChildren(...(context
      ? ["Context: ", h("span", { class: "mention channel-ref" }, `#${context.name}`), " (the channel you are viewing)"]
      : []));
    const status = $("assistant-status");
    status.hidden = !(a && a.status);
    if (a && a.status) {
      // Slack shows the app's name before its status: "pmteam is thinking…".
      const text = /^[a-z]/.test(a.status) ? `${s.bot.name} ${a.status}` : a.status;
      const loading = a.loading_messages.length ? ` · ${a.loading_messages[0]}` : "";
      status.replaceChildren(h("span", { class: "dots", "aria-hidden": "true" }, h("i"), h("i"), h("i")),
        h("span", { class: "status-text" }, text + loading));
    }
    const container = $("assistant-messages");
    if (!a) {
      page.rendered.assistant = null;
      container.replaceChildren(h("div", { class: "list-spacer" }), h("div", { class: "empty" }, "Starting a new chat…"));
      return;
    }
    const where = { channel: a.channel, inThread: true, key: "assistant" };
    if (!asked.length) {
      // Slack shows the app's suggested prompts until the person asks something.
      where.extraKey = ["prompts", a.prompts, a.prompts_title];
      where.intro = () => [assistantGreeting(s, a)];
    }
    renderList(container, a.messages, where);
  }

  function assistantGreeting(s, a) {
    const prompts = a.prompts.map((prompt) => h("button", {
      type: "button",
      class: "assistant-prompt",
      title: prompt.message,
      onclick: (event) => {
        event.currentTarget.disabled = true;
        postText({ channel: a.channel, thread_ts: a.ts }, prompt.message);
      },
    }, h("strong", {}, prompt.title), h("span", {}, prompt.message)));
    return h("div", { class: "assistant-greeting" },
      h("div", { class: "assistant-hello" }, h("span", { class: "app-dot big", "aria-hidden": "true" }, "pm"),
        h("div", {}, h("strong", {}, a.prompts_title || `Hi, I'm ${s.bot.name}`),
          h("div", { class: "subtitle" }, "Ask for backend work here; the answer streams in below."))),
      prompts.length
        ? h("div", { class: "assistant-prompts", role: "list" }, prompts)
        : h("div", { class: "subtitle" }, "Waiting for pmteam's suggested prompts…"));
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

  async function postText(target, text) {
    if (!text || !target.channel) return false;
    try {
      const result = await call("/sandbox/post", { channel: target.channel, text, thread_ts: target.thread_ts || null });
      if (result.command && !result.acked && result.error !== "unknown_command") {
        toast(`${result.command} got no answer from pmteam`);
      }
      return true;
    } catch (error) {
      toast(error.message);
      return false;
    }
  }

  async function send(textarea, target) {
    const text = textarea.value.trim();
    if (!text || !target || !target.channel) return;
    textarea.value = "";
    if (!(await postText(target, text))) textarea.value = text;
  }

  // `@` in a composer: the workspace's people and the app, picked with arrows and Enter or Tab.
  function wireMentions(textarea) {
    const menu = h("ul", { class: "mention-menu", role: "listbox", "aria-label": "Mention someone", hidden: true });
    textarea.closest(".composer-box").append(menu);
    textarea.setAttribute("aria-autocomplete", "list");
    let items = [];
    let active = 0;
    let start = -1;

    const close = () => {
      menu.hidden = true;
      items = [];
    };
    const candidates = (query) => {
      const s = page.state;
      if (!s) return [];
      const all = [
        { name: s.bot.name, label: s.bot.name, detail: "app · your backend engineer", bot: true },
        ...s.people.map((p) => ({ name: p.name, label: p.real_name, detail: p.title })),
      ];
      const q = query.toLowerCase();
      return all.filter((c) => c.name.toLowerCase().startsWith(q) || c.label.toLowerCase().startsWith(q));
    };
    const draw = () => {
      menu.replaceChildren(...items.map((c, index) => h("li", {
        role: "option",
        class: index === active ? "mention-option active" : "mention-option",
        "aria-selected": String(index === active),
        dataset: { name: c.name },
        onmousedown: (event) => {
          event.preventDefault(); // keep the focus in the textarea
          pick(index);
        },
      }, h("span", { class: c.bot ? "avatar small bot" : "avatar small" }, c.bot ? "pm" : c.label.slice(0, 1).toUpperCase()),
      h("strong", {}, c.label), h("span", { class: "subtitle" }, ` @${c.name}${c.detail ? ` · ${c.detail}` : ""}`))));
      menu.hidden = false;
    };
    const update = () => {
      const before = textarea.value.slice(0, textarea.selectionStart);
      const match = /(^|[\s(])@([\w.-]*)$/.exec(before);
      if (!match) return close();
      start = before.length - match[2].length - 1;
      items = candidates(match[2]);
      if (!items.length) return close();
      active = Math.min(active, items.length - 1);
      draw();
      return null;
    };
    const pick = (index) => {
      const chosen = items[index];
      if (!chosen) return;
      const end = textarea.selectionStart;
      const inserted = `@${chosen.name} `;
      textarea.value = textarea.value.slice(0, start) + inserted + textarea.value.slice(end).replace(/^ /, "");
      const caret = start + inserted.length;
      textarea.setSelectionRange(caret, caret);
      close();
      textarea.focus();
    };
    textarea.addEventListener("input", () => {
      active = 0;
      update();
    });
    textarea.addEventListener("click", update);
    textarea.addEventListener("blur", () => setTimeout(close, 120));
    // Registered before the composer's own keydown, so Enter picks instead of sending.
    textarea.addEventListener("keydown", (event) => {
      if (menu.hidden) return;
      const keys = { ArrowDown: 1, ArrowUp: -1 };
      if (event.key in keys) {
        active = (active + keys[event.key] + items.length) % items.length;
        draw();
      } else if (event.key === "Enter" || event.key === "Tab") {
        pick(active);
      } else if (event.key === "Escape") {
        close();
      } else {
        return;
      }
      event.preventDefault();
      event.stopImmediatePropagation();
    });
  }

  function wireComposer(form, textarea, target) {
    wireMentions(textarea);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      send(textarea, target());
    });
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send(textarea, target());
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

  wireComposer($("composer"), $("composer-text"), () => ({ channel: currentChannel(), thread_ts: null }));
  wireComposer($("thread-composer"), $("thread-text"), () => ({ channel: currentChannel(), thread_ts: page.route.thread }));
  wireComposer($("assistant-composer"), $("assistant-text"), () => {
    const a = page.state && page.state.assistant;
    return a ? { channel: a.channel, thread_ts: a.ts } : null;
  });
  $("thread-close").addEventListener("click", () => go({ thread: null }));
  $("assistant-toggle").addEventListener("click", () => (page.assistantOpen ? closeAssistant() : openAssistant()));
  $("assistant-close").addEventListener("click", closeAssistant);
  $("assistant-new").addEventListener("click", () => startAssistant());
  $("nav-app").addEventListener("click", () => go({ view: "app", tab: "home", thread: null }));
  $("tab-home").addEventListener("click", () => go({ view: "app", tab: "home", thread: null }));
  $("tab-messages").addEventListener("click", () => go({ view: "app", tab: "messages", thread: null }));
  $("viewer").addEventListener("change", (event) => {
    page.me = event.target.value;
    localStorage.setItem("pmteam-sandbox-as", page.me);
    page.rendered = {};
    if (page.route.view === "app" && page.route.tab === "home") openHome();
    // The assistant thread was the other person's: an open pane starts one for this person.
    if (page.assistantOpen) startAssistant();
    else refresh();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && page.state && page.state.modal) closeModal(page.state.modal);
  });

  refresh().then(() => {
    if (page.route.view === "app" && page.route.tab === "home") openHome();
    if (page.assistantOpen && !assistantThread()) startAssistant();
  });
  startLive();
})();

// Block Kit, mrkdwn and markdown rendered to DOM nodes. Text only ever becomes text nodes:
// nothing from a message is parsed as HTML.
"use strict";

const BlockKit = (() => {
  const EMOJI = {
    "+1": "👍", "-1": "👎", "100": "💯", alarm_clock: "⏰", arrow_forward: "▶️",
    arrow_right: "➡️", arrows_counterclockwise: "🔄", ballot_box_with_check: "☑️",
    bar_chart: "📊", bell: "🔔", book: "📖", bookmark: "🔖", books: "📚", boom: "💥",
    brain: "🧠", bug: "🐛", bulb: "💡", bust_in_silhouette: "👤",
    busts_in_silhouette: "👥", calendar: "📆", card_index_dividers: "🗂️",
    chart_with_upwards_trend: "📈", checkered_flag: "🏁", clap: "👏", clipboard: "📋",
    construction: "🚧", dart: "🎯", date: "📅", dollar: "💵", exclamation: "❗",
    eyes: "👀", file_folder: "📁", fire: "🔥", gear: "⚙️", hammer: "🔨",
    hammer_and_wrench: "🛠️", heart: "❤️", heavy_check_mark: "✔️",
    heavy_exclamation_mark: "❗", hourglass: "⌛", hourglass_flowing_sand: "⏳",
    inbox_tray: "📥", information_source: "ℹ️", large_blue_circle: "🔵",
    large_green_circle: "🟢", large_orange_circle: "🟠", large_yellow_circle: "🟡",
    link: "🔗", lock: "🔒", mag: "🔍", mag_right: "🔎", memo: "📝", moneybag: "💰",
    muscle: "💪", no_entry: "⛔", no_entry_sign: "🚫", ok_hand: "👌",
    open_file_folder: "📂", outbox_tray: "📤", package: "📦", page_facing_up: "📄",
    paperclip: "📎", pencil: "📝", pencil2: "✏️", point_right: "👉", pray: "🙏",
    pushpin: "📌", question: "❓", raising_hand: "🙋", recycle: "♻️", red_circle: "🔴",
    repeat: "🔁", robot_face: "🤖", rocket: "🚀", rotating_light: "🚨",
    round_pushpin: "📍", scroll: "📜", shield: "🛡️", sparkles: "✨",
    speech_balloon: "💬", spiral_calendar_pad: "🗓️", star: "⭐", stopwatch: "⏱️",
    sunny: "☀️", tada: "🎉", test_tube: "🧪", thinking_face: "🤔",
    thought_balloon: "💭", thumbsdown: "👎", thumbsup: "👍", traffic_light: "🚥",
    warning: "⚠️", wave: "👋", white_check_mark: "✅", white_circle: "⚪",
    wrench: "🔧", x: "❌", zap: "⚡", calendar_spiral: "🗓️", sos: "🆘",
    heavy_plus_sign: "➕", heavy_minus_sign: "➖", hourglass_done: "⌛",
    arrow_up: "⬆️", arrow_down: "⬇️", small_blue_diamond: "🔹",
    small_orange_diamond: "🔸", black_circle: "⚫", blue_book: "📘", green_book: "📗",
    orange_book: "📙", closed_book: "📕", new: "🆕", sleeping: "😴", smile: "😄",
    slightly_smiling_face: "🙂", grinning: "😀", sweat_smile: "😅", tools: "🛠️",
    leftwards_arrow_with_hook: "↩️", arrow_right_hook: "↪️", white_check_mark_button: "✅",
    hourglass_not_done: "⏳", lock_with_ink_pen: "🔏", no_bell: "🔕", busts: "👥",
    handshake: "🤝", sunrise: "🌅", coffee: "☕", newspaper: "📰", writing_hand: "✍️",
  };

  const SAFE_URL = /^(https?:|mailto:)/i;
  const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  // A dollar amount in the app's text, e.g. "$0.27" or "$1,204.50".
  const DOLLARS = /\$\d[\d,]*(?:\.\d+)?/g;
  const SIMULATED = " (simulated)";

  // The one way the page shows a moment, in the viewer's own time zone: "Tue 1 Dec, 13:02"
  // ("Tue 1 Dec 2025, 13:02" outside the current year).
  function formatTime(date) {
    if (!(date instanceof Date) || Number.isNaN(date.getTime())) return "";
    const pad = (n) => String(n).padStart(2, "0");
    const year = date.getFullYear() === new Date().getFullYear() ? "" : ` ${date.getFullYear()}`;
    return `${DAYS[date.getDay()]} ${date.getDate()} ${MONTHS[date.getMonth()]}${year}, `
      + `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  }

  function formatEpoch(seconds) {
    return formatTime(new Date(Number(seconds) * 1000));
  }

  // With the offline demo model every cost is made up: say so after each amount the app wrote.
  function costs(text, ctx) {
    if (!ctx || !ctx.simulated || !text.includes("$")) return [text];
    const out = [];
    let last = 0;
    for (const match of text.matchAll(DOLLARS)) {
      const end = match.index + match[0].length;
      if (text.startsWith(SIMULATED, end)) continue;
      out.push(text.slice(last, end),
        h("span", { class: "simulated", title: "The offline demo model's costs are not real" }, SIMULATED));
      last = end;
    }
    out.push(text.slice(last));
    return out;
  }

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function decodeEntities(text) {
    return String(text).replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
  }

  function emoji(name) {
    const bare = String(name).replace(/::skin-tone-\d$/, "");
    const glyph = EMOJI[bare];
    return glyph
      ? h("span", { class: "emoji", title: `:${bare}:` }, glyph)
      : h("span", { class: "emoji-unknown" }, `:${bare}:`);
  }

  function emojiText(text) {
    // Plain text with `emoji: true`: only :name: codes are converted.
    const out = [];
    let last = 0;
    const pattern = /:([a-z0-9_+'-]+):/g;
    for (const match of text.matchAll(pattern)) {
      if (!(match[1] in EMOJI)) continue;
      out.push(text.slice(last, match.index), emoji(match[1]));
      last = match.index + match[0].length;
    }
    out.push(text.slice(last));
    return out;
  }

  function link(url, label, ctx) {
    if (!SAFE_URL.test(url)) return document.createTextNode(label || url);
    const anchor = h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label || url);
    if (ctx && ctx.onLink) ctx.onLink(anchor, url);
    return anchor;
  }

  function userName(ctx, id, fallback) {
    const user = ctx && ctx.users ? ctx.users[id] : null;
    return user ? user.name : fallback || id;
  }

  function mentionChip(ctx, id, label) {
    const me = ctx && ctx.me === id;
    return h("span", { class: me ? "mention mention-me" : "mention", title: id }, `@${label}`);
  }

  function channelChip(ctx, id, label) {
    const known = ctx && ctx.channels ? ctx.channels[id] : null;
    const name = known ? known.name : label || id;
    const chip = h("span", { class: "mention channel-ref", title: id }, `#${name}`);
    if (known && ctx.onChannel) chip.addEventListener("click", () => ctx.onChannel(id));
    return chip;
  }

  // Slack's `<...>` control sequences: mentions, channels, specials, dates and links.
  function control(inner, ctx) {
    const [target, ...rest] = inner.split("|");
    const label = rest.length ? decodeEntities(rest.join("|")) : "";
    if (target.startsWith("@")) {
      const id = target.slice(1);
      return mentionChip(ctx, id, label || userName(ctx, id, id));
    }
    if (target.startsWith("#")) return channelChip(ctx, target.slice(1), label);
    if (target.startsWith("!subteam^")) return h("span", { class: "mention" }, label || "@group");
    if (target.startsWith("!date^")) {
      // <!date^epoch^{tokens}^optional_link|fallback>: always our one format, in local time.
      const parts = target.split("^");
      const seconds = Number(parts[1]);
      const shown = Number.isFinite(seconds) && parts[1] !== "" ? formatEpoch(seconds) : label;
      const url = parts[3] ? decodeEntities(parts[3]) : "";
      const node = url && SAFE_URL.test(url) ? link(url, shown, ctx) : h("time", {}, shown);
      if (Number.isFinite(seconds)) node.setAttribute("title", new Date(seconds * 1000).toISOString());
      return node;
    }
    if (target.startsWith("!")) return h("span", { class: "mention mention-me" }, `@${target.slice(1)}`);
    const url = decodeEntities(target);
    if (SAFE_URL.test(url)) return link(url, label || url, ctx);
    return null;
  }

  // --- mrkdwn -----------------------------------------------------------------------------------

  const MRKDWN_INLINE = new RegExp(
    [
      "`(?<code>[^`\\n]+)`",
      "<(?<ctl>[^<>\\n]+)>",
      "(?<![\\w*])\\*(?<bold>\\S(?:[^*\\n]*?\\S)?)\\*(?![\\w*])",
      "(?<![\\w_])_(?<italic>\\S(?:[^\\n]*?\\S)?)_(?![\\w_])",
      "(?<![\\w~])~(?<strike>\\S(?:[^~\\n]*?\\S)?)~(?![\\w~])",
      ":(?<emoji>[a-z0-9_+'-]+(?:::skin-tone-\\d)?):",
    ].join("|"),
    "g",
  );

  function mrkdwnInline(text, ctx) {
    const out = [];
    let last = 0;
    for (const match of text.matchAll(MRKDWN_INLINE)) {
      const g = match.groups;
      let node = null;
      if (g.code !== undefined) node = h("code", {}, decodeEntities(g.code));
      else if (g.ctl !== undefined) node = control(g.ctl, ctx);
      else if (g.bold !== undefined) node = h("strong", {}, mrkdwnInline(g.bold, ctx));
      else if (g.italic !== undefined) node = h("em", {}, mrkdwnInline(g.italic, ctx));
      else if (g.strike !== undefined) node = h("del", {}, mrkdwnInline(g.strike, ctx));
      else if (g.emoji !== undefined) node = EMOJI[g.emoji.replace(/::.*$/, "")] ? emoji(g.emoji) : null;
      if (node === null) continue;
      out.push(...costs(decodeEntities(text.slice(last, match.index)), ctx), node);
      last = match.index + match[0].length;
    }
    out.push(...costs(decodeEntities(text.slice(last)), ctx));
    return out;
  }

  function mrkdwn(text, ctx) {
    const root = h("div", { class: "mrkdwn" });
    const parts = String(text).split(/```/);
    parts.forEach((part, index) => {
      if (index % 2 === 1 && index < parts.length - 1) {
        root.append(h("pre", { class: "code-block" }, decodeEntities(part.replace(/^\n/, ""))));
        return;
      }
      const chunk = index % 2 === 1 ? "```" + part : part;
      let quote = null;
      const lines = chunk.split("\n");
      lines.forEach((line, lineIndex) => {
        const quoted = /^(?:&gt;|>)\s?(.*)$/.exec(line);
        if (quoted) {
          if (!quote) {
            quote = h("blockquote", {});
            root.append(quote);
          } else {
            quote.append(h("br"));
          }
          quote.append(...mrkdwnInline(quoted[1], ctx));
          return;
        }
        quote = null;
        root.append(...mrkdwnInline(line, ctx));
        if (lineIndex < lines.length - 1) root.append(h("br"));
      });
    });
    return root;
  }

  // --- markdown (markdown blocks and streamed answers) -----------------------------------------

  const MD_INLINE = new RegExp(
    [
      "`(?<code>[^`\\n]+)`",
      "\\[(?<ltext>[^\\]\\n]+)\\]\\((?<lurl>[^)\\s]+)\\)",
      "<(?<ctl>[@#!][^<>\\n]*|https?://[^<>\\s]+|mailto:[^<>\\s]+)>",
      "\\*\\*(?<bold>\\S(?:.*?\\S)?)\\*\\*",
      "__(?<bold2>\\S(?:.*?\\S)?)__",
      "~~(?<strike>\\S(?:.*?\\S)?)~~",
      "(?<![\\w*])\\*(?<italic>\\S(?:[^*\\n]*?\\S)?)\\*(?![\\w*])",
      // Underscores inside words (ANTHROPIC_API_KEY) neither open nor close emphasis.
      "(?<![\\w_])_(?<italic2>\\S(?:[^\\n]*?\\S)?)_(?![\\w_])",
      "(?<auto>https?://[^\\s<>()]+[^\\s<>().,;:!?'\"])",
      ":(?<emoji>[a-z0-9_+'-]+):",
    ].join("|"),
    "g",
  );

  function markdownInline(text, ctx) {
    const out = [];
    let last = 0;
    for (const match of text.matchAll(MD_INLINE)) {
      const g = match.groups;
      let node = null;
      if (g.code !== undefined) node = h("code", {}, decodeEntities(g.code));
      else if (g.ltext !== undefined) node = link(decodeEntities(g.lurl), decodeEntities(g.ltext), ctx);
      else if (g.ctl !== undefined) node = control(g.ctl, ctx);
      else if (g.bold !== undefined || g.bold2 !== undefined)
        node = h("strong", {}, markdownInline(g.bold ?? g.bold2, ctx));
      else if (g.strike !== undefined) node = h("del", {}, markdownInline(g.strike, ctx));
      else if (g.italic !== undefined || g.italic2 !== undefined)
        node = h("em", {}, markdownInline(g.italic ?? g.italic2, ctx));
      else if (g.auto !== undefined) node = link(decodeEntities(g.auto), decodeEntities(g.auto), ctx);
      else if (g.emoji !== undefined) node = EMOJI[g.emoji] ? emoji(g.emoji) : null;
      if (node === null) continue;
      out.push(decodeEntities(text.slice(last, match.index)), node);
      last = match.index + match[0].length;
    }
    out.push(decodeEntities(text.slice(last)));
    return out;
  }

  const LIST_ITEM = /^(\s*)([-*+]|\d+[.)])\s+(.*)$/;
  const TABLE_RULE = /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/;

  function tableCells(line) {
    return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
  }

  function markdown(text, ctx) {
    const root = h("div", { class: "markdown" });
    const lines = String(text).split("\n");
    let i = 0;
    let paragraph = [];
    const flush = () => {
      if (!paragraph.length) return;
      const p = h("p", {});
      paragraph.forEach((line, index) => {
        if (index) p.append(h("br"));
        p.append(...markdownInline(line, ctx));
      });
      root.append(p);
      paragraph = [];
    };
    while (i < lines.length) {
      const line = lines[i];
      const fence = /^\s*(```+|~~~+)\s*([\w+-]*)\s*$/.exec(line);
      if (fence) {
        flush();
        const body = [];
        i += 1;
        while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
        i += 1;
        const code = h("code", {}, body.join("\n"));
        if (fence[2]) code.dataset.language = fence[2];
        root.append(h("pre", { class: "code-block" }, code));
        continue;
      }
      const heading = /^(#{1,6})\s+(.*)$/.exec(line);
      if (heading) {
        flush();
        const level = Math.min(6, heading[1].length + 2);
        root.append(h(`h${level}`, { class: "md-heading" }, markdownInline(heading[2], ctx)));
        i += 1;
        continue;
      }
      if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
        flush();
        root.append(h("hr"));
        i += 1;
        continue;
      }
      if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
        flush();
        const head = tableCells(line);
        const table = h("table", { class: "md-table" },
          h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, markdownInline(c, ctx))))));
        const body = h("tbody", {});
        i += 2;
        while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
          body.append(h("tr", {}, tableCells(lines[i]).map((c) => h("td", {}, markdownInline(c, ctx)))));
          i += 1;
        }
        table.append(body);
        root.append(h("div", { class: "table-wrap" }, table));
        continue;
      }
      if (/^\s*>/.test(line)) {
        flush();
        const quoted = [];
        while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
        root.append(h("blockquote", {}, markdown(quoted.join("\n"), ctx)));
        continue;
      }
      if (LIST_ITEM.test(line)) {
        flush();
        root.append(markdownList(lines, i, ctx, (next) => { i = next; }));
        continue;
      }
      if (!line.trim()) {
        flush();
        i += 1;
        continue;
      }
      paragraph.push(line);
      i += 1;
    }
    flush();
    return root;
  }

  function markdownList(lines, start, ctx, done) {
    // Consecutive list items; deeper indentation nests a list in the previous item.
    const first = LIST_ITEM.exec(lines[start]);
    const indent = first[1].length;
    const ordered = /\d/.test(first[2]);
    const list = h(ordered ? "ol" : "ul", {});
    if (ordered && parseInt(first[2], 10) !== 1) list.setAttribute("start", parseInt(first[2], 10));
    let i = start;
    let item = null;
    while (i < lines.length) {
      const match = LIST_ITEM.exec(lines[i]);
      if (match && match[1].length === indent) {
        item = h("li", {}, markdownInline(match[3], ctx));
        list.append(item);
        i += 1;
      } else if (match && match[1].length > indent && item) {
        item.append(markdownList(lines, i, ctx, (next) => { i = next; }));
      } else if (!match && lines[i].trim() && /^\s+/.test(lines[i]) && item) {
        item.append(h("br"), ...markdownInline(lines[i].trim(), ctx));
        i += 1;
      } else {
        break;
      }
    }
    done(i);
    return list;
  }

  // --- text objects and rich text --------------------------------------------------------------

  function textObject(obj, ctx) {
    if (!obj) return document.createTextNode("");
    if (obj.type === "mrkdwn") {
      return obj.verbatim ? h("div", { class: "mrkdwn" }, decodeEntities(obj.text)) : mrkdwn(obj.text, ctx);
    }
    const parts = obj.emoji === false ? [String(obj.text)] : emojiText(String(obj.text));
    return h("span", { class: "plain" },
      parts.map((part) => (typeof part === "string" ? costs(part, ctx) : part)));
  }

  function plainText(obj) {
    if (!obj) return "";
    return typeof obj === "string" ? obj : String(obj.text || "");
  }

  function richInline(element, ctx) {
    let node;
    switch (element.type) {
      case "text":
        node = element.style && element.style.code
          ? document.createTextNode(element.text || "")
          : h("span", {}, costs(element.text || "", ctx));
        break;
      case "link":
        node = link(element.url || "", element.text || element.url, ctx);
        break;
      case "user":
        node = mentionChip(ctx, element.user_id, userName(ctx, element.user_id, element.user_id));
        break;
      case "usergroup":
        node = h("span", { class: "mention" }, `@${element.usergroup_id}`);
        break;
      case "channel":
        node = channelChip(ctx, element.channel_id, "");
        break;
      case "emoji":
        node = element.unicode
          ? h("span", { class: "emoji", title: `:${element.name}:` },
            String.fromCodePoint(...element.unicode.split("-").map((x) => parseInt(x, 16))))
          : emoji(element.name);
        break;
      case "broadcast":
        node = h("span", { class: "mention mention-me" }, `@${element.range}`);
        break;
      case "date":
        node = h("time", {}, Number.isFinite(Number(element.timestamp))
          ? formatEpoch(element.timestamp)
          : element.fallback || "");
        break;
      case "color":
        node = h("code", {}, element.value || "");
        break;
      default:
        node = document.createTextNode(element.text || "");
    }
    const style = element.style || {};
    if (style.code) node = h("code", {}, node);
    if (style.strike) node = h("del", {}, node);
    if (style.italic) node = h("em", {}, node);
    if (style.bold) node = h("strong", {}, node);
    return node;
  }

  function richElements(elements, ctx) {
    return (elements || []).map((e) => richInline(e, ctx));
  }

  function richText(block, ctx) {
    const root = h("div", { class: "rich-text" });
    for (const part of block.elements || []) {
      if (part.type === "rich_text_section") {
        root.append(h("div", { class: "rt-section" }, richElements(part.elements, ctx)));
      } else if (part.type === "rich_text_preformatted") {
        root.append(h("pre", { class: "code-block" }, richElements(part.elements, ctx)));
      } else if (part.type === "rich_text_quote") {
        root.append(h("blockquote", {}, richElements(part.elements, ctx)));
      } else if (part.type === "rich_text_list") {
        const list = h(part.style === "ordered" ? "ol" : "ul", {
          class: `rt-list indent-${part.indent || 0}`,
          start: part.style === "ordered" && part.offset ? part.offset + 1 : null,
        });
        for (const item of part.elements || []) list.append(h("li", {}, richElements(item.elements, ctx)));
        root.append(list);
      }
    }
    return root;
  }

  // --- interactive elements --------------------------------------------------------------------

  function options(element) {
    const flat = [...(element.options || [])];
    for (const group of element.option_groups || []) flat.push(...(group.options || []));
    return flat;
  }

  function selectElement(element, ctx, onChoose) {
    const select = h("select", { class: "bk-select", "aria-label": plainText(element.placeholder) || "Choose" });
    select.append(h("option", { value: "" }, plainText(element.placeholder) || "Choose an option"));
    let choices;
    if (element.type.startsWith("users_select") || element.type.startsWith("multi_users_select")) {
      choices = Object.entries(ctx.users || {})
        .filter(([, user]) => !user.is_bot)
        .map(([id, user]) => ({ value: id, text: { type: "plain_text", text: user.real_name || user.name } }));
    } else if (/conversations_select|channels_select/.test(element.type)) {
      choices = Object.values(ctx.channels || {})
        .filter((c) => !c.is_im)
        .map((c) => ({ value: c.id, text: { type: "plain_text", text: `#${c.name}` } }));
    } else {
      choices = options(element);
    }
    const initial = element.initial_option ? element.initial_option.value
      : element.initial_user || element.initial_conversation || element.initial_channel || "";
    choices.forEach((option, index) => {
      select.append(h("option", { value: String(index), selected: option.value === initial }, plainText(option.text)));
    });
    select.chosen = () => {
      const option = select.value === "" ? null : choices[Number(select.value)];
      return option ? { value: option.value, text: option.text } : null;
    };
    if (onChoose) {
      select.addEventListener("change", () => {
        const chosen = select.chosen();
        if (chosen) onChoose(chosen);
      });
    }
    return select;
  }

  function button(element, ctx, blockId) {
    const classes = ["bk-button"];
    if (element.style === "primary") classes.push("primary");
    if (element.style === "danger") classes.push("danger");
    const node = h("button", { class: classes.join(" "), type: "button", dataset: { actionId: element.action_id || "" } },
      emojiText(plainText(element.text)));
    node.addEventListener("click", async () => {
      if (element.url && SAFE_URL.test(element.url)) window.open(element.url, "_blank", "noopener");
      if (element.confirm && ctx.confirm && !(await ctx.confirm(element.confirm))) return;
      if (ctx.onAction) ctx.onAction({ element, blockId, value: element.value, node });
    });
    return node;
  }

  function feedbackButtons(element, ctx, blockId) {
    // Two small thumbs; a click reports the clicked side's value, like Slack does.
    const side = (key, kind) => {
      const spec = element[key] || {};
      const label = spec.accessibility_label || null;
      const node = h("button", {
        class: `bk-feedback ${kind}`,
        type: "button",
        title: label,
        "aria-label": label,
        dataset: { actionId: element.action_id || "", feedback: kind },
      }, emojiText(plainText(spec.text)));
      node.addEventListener("click", () => {
        if (ctx.onAction) ctx.onAction({ element, blockId, value: spec.value, node });
      });
      return node;
    };
    return h("span", { class: "bk-feedback-buttons" },
      side("positive_button", "positive"), side("negative_button", "negative"));
  }

  function actionElement(element, ctx, blockId) {
    switch (element.type) {
      case "button":
        return button(element, ctx, blockId);
      case "feedback_buttons":
        return feedbackButtons(element, ctx, blockId);
      case "image":
        return image(element.image_url, element.alt_text, "bk-element-image");
      case "static_select":
      case "external_select":
      case "users_select":
      case "conversations_select":
      case "channels_select": {
        const interactive = element.type === "static_select" && ctx.onAction;
        return selectElement(element, ctx, interactive
          ? (chosen) => ctx.onAction({ element, blockId, selectedOption: chosen })
          : null);
      }
      case "overflow": {
        const select = h("select", { class: "bk-overflow", "aria-label": "More actions" },
          h("option", { value: "" }, "⋯"));
        const choices = element.options || [];
        choices.forEach((o, index) => select.append(h("option", { value: String(index) }, plainText(o.text))));
        select.addEventListener("change", () => {
          const option = choices[Number(select.value)];
          select.value = "";
          if (option && ctx.onAction) ctx.onAction({ element, blockId, selectedOption: { value: option.value, text: option.text } });
        });
        return select;
      }
      case "datepicker":
        return h("input", { type: "date", class: "bk-input", value: element.initial_date || "", disabled: !ctx.inputs });
      default:
        return h("span", { class: "bk-unsupported" }, `[${element.type}]`);
    }
  }

  function image(url, alt, className) {
    if (!url || !SAFE_URL.test(url)) return h("span", { class: "bk-unsupported" }, alt || "[image]");
    return h("img", { src: url, alt: alt || "", class: className, loading: "lazy" });
  }

  // --- input blocks (modals) -------------------------------------------------------------------

  function inputElement(element) {
    // Returns [node, read()] where read() gives Slack's state.values entry for the element.
    const type = element.type;
    if (type === "plain_text_input" || type === "email_text_input" || type === "url_text_input" || type === "number_input") {
      const props = {
        class: "bk-input",
        placeholder: plainText(element.placeholder),
        value: element.initial_value || "",
      };
      const node = element.multiline
        ? h("textarea", { ...props, rows: 4 }, element.initial_value || "")
        : h("input", { ...props, type: type === "number_input" ? "number" : "text" });
      return [node, () => ({ type, value: node.value === "" ? null : node.value })];
    }
    if (/select$/.test(type)) {
      const node = selectElement(element, BlockKit.currentCtx || {}, null);
      return [node, () => {
        const chosen = node.chosen();
        if (type === "users_select") return { type, selected_user: chosen ? chosen.value : null };
        if (type === "conversations_select") return { type, selected_conversation: chosen ? chosen.value : null };
        if (type === "channels_select") return { type, selected_channel: chosen ? chosen.value : null };
        return { type, selected_option: chosen };
      }];
    }
    if (type === "datepicker") {
      const node = h("input", { type: "date", class: "bk-input", value: element.initial_date || "" });
      return [node, () => ({ type, selected_date: node.value || null })];
    }
    if (type === "checkboxes" || type === "radio_buttons") {
      const name = `choice-${Math.random().toString(36).slice(2)}`;
      const boxes = (element.options || []).map((option) => {
        const input = h("input", { type: type === "checkboxes" ? "checkbox" : "radio", name });
        return [option, input, h("label", { class: "bk-choice" }, input, " ", textObject(option.text, {}))];
      });
      const node = h("div", { class: "bk-choices" }, boxes.map((b) => b[2]));
      return [node, () => {
        const picked = boxes.filter((b) => b[1].checked).map((b) => ({ value: b[0].value, text: b[0].text }));
        return type === "checkboxes" ? { type, selected_options: picked } : { type, selected_option: picked[0] || null };
      }];
    }
    return [h("span", { class: "bk-unsupported" }, `[${type}]`), () => ({ type })];
  }

  // --- blocks ----------------------------------------------------------------------------------

  function block(b, ctx) {
    const blockId = b.block_id || "";
    switch (b.type) {
      case "header":
        return h("div", { class: "bk-header" }, emojiText(plainText(b.text)));
      case "section": {
        const body = h("div", { class: "bk-section-body" });
        if (b.text) body.append(textObject(b.text, ctx));
        if (b.fields && b.fields.length) {
          body.append(h("div", { class: "bk-fields" }, b.fields.map((f) => h("div", { class: "bk-field" }, textObject(f, ctx)))));
        }
        const section = h("div", { class: "bk-section" }, body);
        if (b.accessory) section.append(h("div", { class: "bk-accessory" }, actionElement(b.accessory, ctx, blockId)));
        return section;
      }
      case "markdown":
        return h("div", { class: "bk-markdown" }, markdown(b.text || "", ctx));
      case "rich_text":
        return richText(b, ctx);
      case "context":
        return h("div", { class: "bk-context" }, (b.elements || []).map((e) =>
          e.type === "image" ? image(e.image_url, e.alt_text, "bk-context-image") : h("span", { class: "bk-context-text" }, textObject(e, ctx))));
      case "divider":
        return h("hr", { class: "bk-divider" });
      case "actions":
      case "context_actions":
        return h("div", { class: "bk-actions" }, (b.elements || []).map((e) => actionElement(e, ctx, blockId)));
      case "image":
        return h("figure", { class: "bk-image" },
          b.title ? h("figcaption", {}, plainText(b.title)) : null,
          image(b.image_url, b.alt_text, "bk-image-img"));
      case "input": {
        const [node, read] = inputElement(b.element || {});
        if (ctx.inputs) {
          const actionId = (b.element && b.element.action_id) || "input";
          ctx.inputs.push({ blockId, actionId, read });
        }
        return h("div", { class: "bk-input-block", dataset: { blockId } },
          h("label", { class: "bk-label" }, plainText(b.label), b.optional ? h("span", { class: "optional" }, " (optional)") : null),
          node,
          b.hint ? h("div", { class: "bk-hint" }, plainText(b.hint)) : null);
      }
      case "table":
        return tableBlock(b, ctx);
      default:
        return h("div", { class: "bk-unsupported" }, `[unsupported block: ${b.type}]`);
    }
  }

  function tableBlock(b, ctx) {
    const rows = b.rows || [];
    const cell = (c) => (c && c.type === "rich_text" ? richText(c, ctx) : String((c && c.text) || ""));
    return h("div", { class: "table-wrap" }, h("table", { class: "md-table" },
      rows.map((row, index) => h("tr", {}, row.map((c) => h(index === 0 ? "th" : "td", {}, cell(c)))))));
  }

  function blocks(list, ctx) {
    BlockKit.currentCtx = ctx;
    return h("div", { class: "blocks" }, (list || []).map((b) => block(b, ctx)));
  }

  return {
    blocks, mrkdwn, markdown, emoji, emojiText, h, textObject, plainText, formatTime, formatEpoch,
    currentCtx: null,
  };
})();

// The exobridge dashboard: a window onto serve's own endpoints, no framework, no build step.
// Every string from the server (model ids, provider errors, key labels) goes into the page as text
// (textContent / text nodes), never as HTML. The client key, when serve needs one, lives in sessionStorage.
"use strict";

(() => {
  const KEY_NAME = "exobridge.clientKey";
  const POLL_MS = 5000; // serve caches its probes, so polling never floods providers
  const $ = (id) => document.getElementById(id);

  class AuthNeeded extends Error {}

  // --- DOM helpers: text only -------------------------------------------------------------------------
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) node.append(child == null ? "" : child); // strings become text nodes
    return node;
  }

  function leftText(seconds) {
    const s = Math.max(1, Math.ceil(seconds));
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.ceil(s / 60)} min`;
    return `${Math.ceil(s / 3600)} h`;
  }

  // --- talking to serve ---------------------------------------------------------------------------------
  async function api(path, init = {}) {
    const headers = new Headers(init.headers || {});
    const key = sessionStorage.getItem(KEY_NAME);
    if (key) headers.set("Authorization", `Bearer ${key}`);
    const response = await fetch(path, { ...init, headers, cache: "no-store", credentials: "omit" });
    if (response.status === 401) {
      if (key) sessionStorage.removeItem(KEY_NAME); // a refused key is not kept
      askForKey(key ? "serve refused that key" : null);
      throw new AuthNeeded("client key needed");
    }
    return response;
  }

  async function errorText(response) {
    const body = await response.text();
    try {
      const message = JSON.parse(body).error.message;
      if (typeof message === "string") return message;
    } catch (_) {
      // not an OpenAI error body: show the raw text
    }
    return `HTTP ${response.status}: ${body.slice(0, 2000)}`;
  }

  // --- the client key ---------------------------------------------------------------------------------
  function askForKey(problem) {
    $("main").hidden = true;
    $("key-form").hidden = false;
    $("key-problem").hidden = !problem;
    $("key-problem").textContent = problem || "";
    $("status-line").textContent = "client key needed";
    $("key-input").focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_NAME, key);
    $("key-input").value = "";
    start();
  });

  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_NAME);
    window.location.reload();
  });

  // --- providers --------------------------------------------------------------------------------------
  let statusTimer = null;
  const cooldownCells = []; // [cell, label, deadline in performance.now() ms]

  function keyText(node) {
    if (node.key_masked) {
      const state = node.key_valid === false ? "refused" : node.key_valid ? "valid" : "not checked";
      return `${node.key_masked} (${node.key_source || "?"}) · ${state}`;
    }
    return node.key_source ? String(node.key_source) : "no key";
  }

  function providerRow(node, age) {
    const name = el("td", "", el("strong", "", node.provider), el("div", "muted mono", node.url));
    const state = el("td", `state-${node.state}`, String(node.state).replace("_", " "));
    const models = el("td");
    if (node.api_line) {
      const list = el("ul");
      for (const id of node.models || []) list.append(el("li", "mono", id));
      models.append(node.models && node.models.length ? list : "none placed");
    } else {
      models.append(node.models_ready == null ? "—" : `${node.models_ready} ready`);
    }
    const key = el("td", "mono", keyText(node));
    if (node.credits_remaining != null) key.append(el("div", "muted", `credits left: ${money(node.credits_remaining)}`));
    const budget = el("td", "budget");
    budget.dataset.provider = node.provider;
    const cooldown = el("td", "cooling");
    if (node.cooldown_left > 0) {
      const label = String(node.cooldown || "cooling down").replace(/, [^,]* left$/, "");
      cooldownCells.push([cooldown, label, performance.now() + (node.cooldown_left - age) * 1000]);
    } else if (node.last_failure) {
      cooldown.className = "muted";
      cooldown.append(`last: ${node.last_failure}`);
    }
    return el(
      "tr",
      "",
      name,
      state,
      el("td", "", node.api_line || "—"),
      el("td", "", node.nodes == null ? "—" : String(node.nodes)),
      models,
      key,
      budget,
      cooldown,
      el("td", "", node.latency_ms == null ? "—" : `${node.latency_ms} ms`),
      el("td", "error", node.problem || ""),
    );
  }

  function tickCooldowns() {
    const now = performance.now();
    for (const [cell, label, deadline] of cooldownCells) {
      const left = (deadline - now) / 1000;
      cell.textContent = left > 0 ? `${label} · ${leftText(left)} left` : "cooldown over";
    }
  }

  function renderProviders(status, age) {
    cooldownCells.length = 0;
    const body = $("providers-body");
    body.replaceChildren(...status.nodes.map((node) => providerRow(node, age)));
    tickCooldowns();
    fillBudgets();
    $("providers-table").hidden = false;
    $("providers-note").textContent = status.nodes.length ? "" : "no provider is enabled";
    const ready = status.can_answer.length ? status.can_answer.join(", ") : "none";
    $("status-line").textContent = `can answer now: ${ready} · probed ${age ? `${age} s` : "just"} ago`;
  }

  let lastStatus = null;
  let modelList = [];
  let loading = false;

  function loadableOn(node) {
    // the Exo provider's own ids (from /v1/models, "provider:id") that are not placed yet
    const prefix = `${node.provider}:`;
    const placed = new Set(node.models || []);
    return modelList
      .filter((m) => m.owned_by === node.provider && m.id.startsWith(prefix))
      .map((m) => m.id.slice(prefix.length))
      .filter((id) => !placed.has(id));
  }

  function loadButton(provider, id) {
    const button = el("button", "load", "Load");
    button.type = "button";
    button.disabled = loading;
    button.addEventListener("click", () => loadModel(`${provider}:${id}`));
    return el("li", "", button, " ", el("span", "mono", id));
  }

  function loadText(event) {
    const nodes = event.nodes || [];
    const total = nodes.reduce((n, node) => n + (node.total_bytes || 0), 0);
    const done = nodes.reduce((n, node) => n + (node.downloaded_bytes || 0), 0);
    const bar = $("exo-progress-bar");
    if (event.layers_total) {
      bar.max = event.layers_total;
      bar.value = event.layers_loaded || 0;
    } else if (total) {
      bar.max = total;
      bar.value = done;
    } else if (event.phase === "ready") {
      bar.max = 1;
      bar.value = 1;
    } else {
      bar.removeAttribute("value"); // indeterminate
    }
    return event.message || `${event.model}: ${event.phase}`; // the same line as `exobridge models load`
  }

  async function loadModel(spec) {
    if (loading) return;
    loading = true;
    for (const button of document.querySelectorAll("#exo-nodes button.load")) button.disabled = true;
    $("exo-progress").hidden = false;
    const text = $("exo-progress-text");
    text.className = "";
    text.textContent = `${spec}: asking Exo where it fits…`;
    try {
      const response = await api("/v1/exobridge/exo/load", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: spec }),
      });
      if (!response.ok) throw new Error(await errorText(response));
      let last = null;
      await readEvents(response, (event) => {
        if (event.error) throw new Error(String(event.error.message));
        last = event;
        text.textContent = loadText(event);
      });
      if (last && last.phase !== "ready") text.className = "error";
    } catch (error) {
      if (error instanceof AuthNeeded) return;
      text.className = "error";
      text.textContent = `${spec}: ${error.message}`;
    } finally {
      loading = false;
      refreshStatus();
    }
  }

  function renderExo(status) {
    lastStatus = status;
    const exo = status.nodes.filter((node) => node.api_line);
    const box = $("exo-nodes");
    if (!exo.length) {
      box.replaceChildren(el("p", "muted", "no Exo node is answering (see Providers)"));
      return;
    }
    box.replaceChildren(
      ...exo.map((node) => {
        const list = el("ul");
        for (const id of node.models || []) list.append(el("li", "mono", id));
        const box = el(
          "div",
          "",
          el("h3", "", `${node.provider} `, el("span", "muted mono", node.url)),
          el("p", "", `API ${node.api_line} · ${node.nodes == null ? "?" : node.nodes} node(s) · placed:`),
          node.models && node.models.length ? list : el("p", "muted", "no model placed"),
        );
        const loadable = features.exo_load ? loadableOn(node) : [];
        if (loadable.length) {
          box.append(el("p", "", "loadable:"), el("ul", "loadable", ...loadable.map((id) => loadButton(node.provider, id))));
        }
        return box;
      }),
    );
  }

  let statusBusy = false; // one status request at a time, and one timer
  let statusAgain = false;

  async function refreshStatus() {
    clearTimeout(statusTimer);
    if (statusBusy) {
      statusAgain = true; // asked again meanwhile (e.g. a reply ended): once more when this one is done
      return;
    }
    if (document.hidden) {
      statusTimer = setTimeout(refreshStatus, POLL_MS);
      return;
    }
    statusBusy = true;
    try {
      const response = await api("/v1/exobridge/status");
      if (!response.ok) throw new Error(await errorText(response));
      const age = Number(response.headers.get("Age")) || 0;
      const status = await response.json();
      renderProviders(status, age);
      renderExo(status);
      if (!performance.getEntriesByName("exobridge-providers").length) performance.mark("exobridge-providers");
      refreshHistory();
      refreshSpend();
    } catch (error) {
      if (error instanceof AuthNeeded) return;
      $("providers-note").textContent = `status failed: ${error.message}`;
    } finally {
      statusBusy = false;
    }
    clearTimeout(statusTimer);
    if (statusAgain) {
      statusAgain = false;
      refreshStatus();
    } else {
      statusTimer = setTimeout(refreshStatus, POLL_MS);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshStatus();
  });

  // --- models -----------------------------------------------------------------------------------------
  async function loadModels() {
    const picker = $("model-picker");
    try {
      const response = await api("/v1/models");
      if (!response.ok) throw new Error(await errorText(response));
      const models = (await response.json()).data || [];
      const logical = el("optgroup");
      logical.label = "Logical names";
      const ids = el("optgroup");
      ids.label = "Provider ids";
      for (const model of models) {
        const option = el("option", "", model.id);
        option.value = model.id;
        (model.owned_by === "exobridge" ? logical : ids).append(option);
      }
      picker.replaceChildren(logical, ids);
      modelList = models;
      if (lastStatus) renderExo(lastStatus);
    } catch (error) {
      if (error instanceof AuthNeeded) throw error;
      picker.replaceChildren(el("option", "", `model list failed: ${error.message}`));
    }
  }

  // --- playground -------------------------------------------------------------------------------------
  const conversation = []; // kept here only: serve is stateless
  const transcript = $("transcript");

  function turn(className, text) {
    const item = el("li", className, text);
    transcript.append(item);
    return item;
  }

  function attemptsNotice(attempts, answered) {
    // "exo=failed:connect, backup=ok" -> "failover: exo failed (connect)": who was tried before the answer
    const tried = [];
    for (const part of (attempts || "").split(",")) {
      const [provider, outcome] = part.trim().split("=");
      if (!provider || !outcome || outcome === "ok") continue;
      const [what, why] = outcome.split(":");
      tried.push(why ? `${provider} ${what} (${why})` : `${provider} ${what}`);
    }
    if (!tried.length) return null;
    return `${answered ? "failover" : "tried"}: ${tried.join(", ")}`;
  }

  async function readEvents(response, onEvent) {
    // every `data:` payload of a server-sent event stream, parsed, until [DONE] or the end
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of block.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") return true;
          onEvent(JSON.parse(data));
        }
      }
      if (done) return false;
    }
  }

  async function readStream(response, onText) {
    const finished = await readEvents(response, (chunk) => {
      if (chunk.error) throw new Error(String(chunk.error.message || "the stream broke"));
      for (const choice of chunk.choices || []) {
        if (choice.delta && choice.delta.content) onText(choice.delta.content);
      }
    });
    if (!finished) throw new Error("the stream ended without [DONE]");
  }

  async function send(text) {
    const model = $("model-picker").value;
    conversation.push({ role: "user", content: text });
    turn("user", text);
    const meta = turn("meta muted", `${model}: waiting for the first token…`);
    let reply = null;
    let answer = "";
    try {
      const response = await api("/v1/chat/completions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model, messages: conversation, stream: true }),
      });
      const notice = attemptsNotice(response.headers.get("X-Exobridge-Attempts"), response.ok);
      if (notice) meta.after(el("li", "meta notice", notice));
      if (!response.ok) throw new Error(await errorText(response));
      const provider = response.headers.get("X-Exobridge-Provider") || "?";
      const served = response.headers.get("X-Exobridge-Model") || model;
      meta.textContent = `answered by ${provider} · ${served}`;
      meta.dataset.provider = provider;
      reply = turn("assistant", "");
      await readStream(response, (piece) => {
        answer += piece;
        reply.textContent = answer;
      });
      conversation.push({ role: "assistant", content: answer });
    } catch (error) {
      if (error instanceof AuthNeeded) {
        conversation.pop();
        return;
      }
      if (!reply) conversation.pop(); // nothing answered: the message can be sent again
      else if (answer) conversation.push({ role: "assistant", content: answer });
      turn("error", error.message);
      if (!reply) meta.textContent = `${model}: no answer`;
    } finally {
      refreshStatus(); // the route may have put a provider into cooldown
      refreshHistory();
      refreshSpend();
    }
  }

  $("chat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = $("chat-input");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    $("chat-send").disabled = true;
    try {
      await send(text);
    } finally {
      $("chat-send").disabled = false;
      input.focus();
    }
  });

  $("chat-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("chat-form").requestSubmit();
  });

  $("new-chat").addEventListener("click", () => {
    conversation.length = 0;
    transcript.replaceChildren();
  });

  // --- history and spend ------------------------------------------------------------------------------
  let features = {};
  let budgets = []; // [budget] standings from /v1/exobridge/spend

  function fillBudgets() {
    // "budget left today and this month" per provider, in the providers table
    const names = { daily: "today", monthly: "this month" };
    for (const cell of document.querySelectorAll("#providers-body td.budget")) {
      let mine = budgets.filter((b) => b.scope === cell.dataset.provider);
      let scope = "";
      if (!mine.length) {
        mine = budgets.filter((b) => b.scope === "overall"); // no limit of its own: the overall one applies
        scope = "overall ";
      }
      cell.textContent = mine.length
        ? mine.map((b) => `${scope}${names[b.period] || b.period}: ${money(b.left)} of ${money(b.limit)}`).join(" · ")
        : "—";
    }
  }

  function money(usd) {
    if (usd == null) return "unknown";
    return usd >= 0.01 || usd === 0 ? `$${usd.toFixed(2)}` : `$${usd.toFixed(4)}`;
  }

  function chainText(attempts) {
    // the failover chain: every provider tried, in order, and what happened there
    return (attempts || [])
      .map((a) => (a.outcome === "ok" ? `${a.provider} ✓` : `${a.provider} ${a.outcome}${a.reason ? `: ${a.reason}` : ""}`))
      .join(" → ");
  }

  function requestRow(entry) {
    const tokens =
      entry.prompt_tokens == null && entry.completion_tokens == null
        ? "—"
        : `${entry.prompt_tokens ?? "?"} → ${entry.completion_tokens ?? "?"}`;
    const row = el(
      "tr",
      "",
      el("td", "", String(entry.time || "").replace("T", " ").slice(0, 19)),
      el("td", "", entry.provider || "—"),
      el("td", "mono", entry.served_model || entry.requested_model || "—"),
      el("td", "", entry.latency_ms == null ? "—" : `${entry.latency_ms} ms`),
      el("td", "", tokens),
      el("td", "", entry.cost_source === "free" ? "free" : money(entry.cost)),
      el("td", `outcome-${entry.outcome}`, entry.outcome || ""),
      el("td", "muted", chainText(entry.attempts)),
    );
    row.addEventListener("click", () => showRequest(entry.id, row));
    return row;
  }

  function messagesText(messages) {
    if (!Array.isArray(messages) || !messages.length) return "";
    return messages
      .map((m) => m || {})
      .map((m) => `${m.role}: ${typeof m.content === "string" ? m.content : JSON.stringify(m.content)}`)
      .join("\n\n");
  }

  async function showRequest(id, row) {
    const box = $("request-detail");
    for (const other of document.querySelectorAll("#requests-body tr.selected")) other.classList.remove("selected");
    row.classList.add("selected");
    try {
      const response = await api(`/v1/exobridge/history/${Number(id)}`);
      if (!response.ok) throw new Error(await errorText(response));
      const entry = await response.json();
      const parts = [el("h3", "", `Request ${entry.id} · ${entry.time} · ${entry.outcome}`)];
      const extra = entry.part_texts || {};
      for (const [label, value] of [
        ["System", entry.system],
        ["Messages sent", messagesText(entry.messages)],
        ["Prompt", entry.prompt],
        ["Reasoning", extra.reasoning],
        ["Reply", entry.reply],
        ["Tool calls", (extra.tool_calls || []).join("\n")],
        ["Refusal", extra.refusal],
        ["Error", entry.error],
        ["Failover chain", chainText(entry.attempts)],
      ]) {
        if (value) parts.push(el("div", "muted", label), el("pre", "", value));
      }
      box.replaceChildren(...parts);
    } catch (error) {
      if (error instanceof AuthNeeded) return;
      box.replaceChildren(el("p", "error", `could not read request ${id}: ${error.message}`));
    }
    box.hidden = false;
  }

  async function refreshHistory() {
    if (!features.history) return;
    try {
      const response = await api("/v1/exobridge/history?limit=50");
      if (!response.ok) throw new Error(await errorText(response));
      const answer = await response.json();
      if (!answer.available) {
        $("requests-note").textContent = `no history to show: ${answer.reason}`;
        return;
      }
      $("requests-body").replaceChildren(...answer.requests.map(requestRow));
      $("requests-table").hidden = !answer.requests.length;
      $("requests-note").textContent = answer.requests.length ? "" : "no request recorded yet";
    } catch (error) {
      if (error instanceof AuthNeeded) return;
      $("requests-note").textContent = `history failed: ${error.message}`;
    }
  }

  function bars(table, rows, label, value, text) {
    const top = Math.max(0, ...rows.map(value));
    table.replaceChildren(
      ...rows.map((row) => {
        const bar = el("progress");
        bar.max = top || 1;
        bar.value = value(row);
        return el("tr", "", el("td", "mono", label(row)), el("td", "", bar), el("td", "", text(row)));
      }),
    );
    if (!rows.length) table.replaceChildren(el("tr", "", el("td", "muted", "nothing yet")));
  }

  function costText(bucket) {
    const unknown = bucket.unknown ? `, ${bucket.unknown} unknown` : "";
    return `${money(bucket.cost)} · ${bucket.requests} req${unknown}`;
  }

  async function refreshSpend() {
    if (!features.spend) return;
    try {
      const response = await api("/v1/exobridge/spend?days=14");
      if (!response.ok) throw new Error(await errorText(response));
      const answer = await response.json();
      if (!answer.available) {
        $("spend-note").textContent = `no spend to show: ${answer.reason}`;
        return;
      }
      $("spend-note").textContent = `known costs over the last ${answer.days} days`;
      bars($("spend-days"), answer.per_day, (d) => d.day, (d) => d.cost, costText);
      bars($("spend-providers"), answer.per_provider, (p) => p.provider, (p) => p.cost, costText);
      budgets = answer.budgets || [];
      fillBudgets();
      const standings = budgets.map((b) => {
        const bar = el("progress");
        bar.max = b.limit || 1;
        bar.value = Math.min(b.spent, b.limit);
        return el("p", "", `${b.scope} ${b.period}: `, bar, ` ${money(b.spent)} of ${money(b.limit)}, ${money(b.left)} left`);
      });
      $("spend-budgets").replaceChildren(...(standings.length ? standings : [el("p", "muted", "no [budget] set")]));
      const saved = answer.saved;
      $("spend-saved").textContent = saved
        ? `${money(saved.usd)} over ${saved.priced_requests} of ${saved.free_requests} free answers, at ${saved.reference}'s prices` +
          (saved.price_date ? ` of ${saved.price_date}` : "")
        : "cannot say: no cloud provider with cached prices to compare with";
      $("spend-charts").hidden = false;
    } catch (error) {
      if (error instanceof AuthNeeded) return;
      $("spend-note").textContent = `spend failed: ${error.message}`;
    }
  }

  // --- start ------------------------------------------------------------------------------------------
  async function start() {
    try {
      const response = await api("/v1/exobridge/dashboard");
      if (!response.ok) throw new Error(await errorText(response));
      features = (await response.json()).features || {};
      $("key-form").hidden = true;
      $("main").hidden = false;
      $("forget-key").hidden = !sessionStorage.getItem(KEY_NAME);
      if (features.exo_load) $("exo-load-note").textContent = "Load a model onto an Exo cluster: its Load button (as exobridge models load).";
      refreshStatus();
      refreshHistory();
      refreshSpend();
      await loadModels();
      document.body.dataset.ready = "yes";
    } catch (error) {
      if (error instanceof AuthNeeded) return;
      $("status-line").textContent = `dashboard failed: ${error.message}`;
    }
  }

  setInterval(tickCooldowns, 1000);
  start();
})();

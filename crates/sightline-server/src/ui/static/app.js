// Sightline dashboard script: small progressive enhancements; every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Times are rendered in UTC on the server; show them in the viewer's time zone.
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  for (const element of document.querySelectorAll("time[datetime]")) {
    const date = new Date(element.dateTime);
    if (!Number.isNaN(date.getTime())) {
      element.textContent = format.format(date);
      element.title = element.dateTime;
    }
  }
  // "Select all" checkboxes for bulk actions.
  for (const toggle of document.querySelectorAll("input[data-select-all]")) {
    toggle.addEventListener("change", () => {
      const form = toggle.closest("form");
      for (const box of form.querySelectorAll(`input[type=checkbox][name="${toggle.dataset.selectAll}"]`)) {
        box.checked = toggle.checked;
      }
    });
  }
  // The project switcher follows a mouse choice at once; keyboard users confirm with the button
  // (changing on every arrow key would leave the page mid-choice).
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    let pointer = false;
    select.addEventListener("pointerdown", () => { pointer = true; });
    select.addEventListener("change", () => { if (pointer) select.form.requestSubmit(); pointer = false; });
  }
  // Lists marked data-keynav (the session timeline): ↑ ↓ / k j / Home End move between entries.
  for (const list of document.querySelectorAll("[data-keynav]")) {
    list.addEventListener("keydown", (event) => {
      const steps = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1, Home: -Infinity, End: Infinity };
      if (!(event.key in steps) || event.altKey || event.ctrlKey || event.metaKey) return;
      const entries = [...list.children];
      const current = entries.findIndex((entry) => entry.contains(document.activeElement));
      if (current < 0) return;
      const target = Math.max(0, Math.min(entries.length - 1, current + steps[event.key]));
      const focus = entries[target].matches("[data-entry-focus]") ? entries[target] : entries[target].querySelector("[data-entry-focus]");
      if (focus) { event.preventDefault(); focus.focus(); }
    });
  }
  // Live tail on the logs page: records arriving over Server-Sent Events are prepended.
  const tail = document.querySelector("section.live-tail[data-tail-url]");
  if (tail && "EventSource" in window) startLiveTail(tail, format);
});

// The logs page's live tail: an EventSource on the section's `data-tail-url`; each `log` event
// becomes a row like the server renders (ui/logs.rs, `log_row`), `lagged` says how many were
// dropped. Pausing keeps what arrives (up to MAX_HELD) and shows it on resume.
function startLiveTail(section, format) {
  const MAX_ROWS = 1000, MAX_HELD = 500;
  const rows = document.getElementById("log-rows");
  const table = rows.closest("table");
  const empty = document.querySelector("[data-logs-empty]");
  const status = section.querySelector(".tail-status");
  const toggle = section.querySelector("[data-tail-toggle]");
  const tracesBase = section.dataset.tracesBase;
  let paused = false, held = [], arrived = 0, missed = 0;
  const say = (text) => { status.textContent = text; };
  const describe = () => {
    const parts = [paused ? `Live tail paused${held.length ? `: ${held.length} new waiting` : ""}` : "Live tail on"];
    if (arrived) parts.push(`${arrived} new ${arrived === 1 ? "log" : "logs"} arrived`);
    if (missed) parts.push(`${missed} skipped (the page fell behind)`);
    say(parts.join(" · "));
  };
  const severityName = (number) =>
    ["UNSET", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"][number >= 1 && number <= 24 ? Math.ceil(number / 4) : 0];
  const cell = (row, child) => { const td = document.createElement("td"); if (child) td.append(child); row.append(td); return td; };
  const text = (value) => (typeof value === "string" ? value : JSON.stringify(value));
  const rowOf = (log) => {
    const row = document.createElement("tr");
    row.className = "log live";
    const when = document.createElement("time");
    const nanos = BigInt(log.time_unix_nano && log.time_unix_nano !== "0" ? log.time_unix_nano : log.observed_time_unix_nano || 0);
    const date = new Date(Number(nanos / 1000000n));
    when.dateTime = date.toISOString();
    when.title = date.toISOString();
    when.textContent = format.format(date);
    cell(row, when);
    const severity = document.createElement("span");
    const name = severityName(log.severity_number || 0);
    severity.className = `severity sev-${name.toLowerCase()}`;
    severity.textContent = log.severity_text || name;
    cell(row, severity);
    cell(row, document.createTextNode(log.service_name || ""));
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = text(log.body);
    const message = cell(row);
    message.className = "message";
    const attributes = Object.entries(log.attributes || {});
    if (attributes.length) {
      const details = document.createElement("details");
      details.className = "log-attributes";
      const summary = document.createElement("summary");
      summary.append(body);
      const list = document.createElement("table");
      list.className = "attributes";
      list.createCaption().textContent = "Attributes";
      const listBody = list.createTBody();
      for (const [key, value] of attributes) {
        const line = listBody.insertRow();
        const th = document.createElement("th");
        th.scope = "row";
        th.textContent = key;
        line.append(th);
        line.insertCell().textContent = text(value);
      }
      details.append(summary, list);
      message.append(details);
    } else {
      message.append(body);
    }
    const trace = cell(row);
    if (log.trace_id) {
      const link = document.createElement("a");
      link.className = "trace-link";
      link.href = `${tracesBase}/${log.trace_id}${log.span_id ? `#span-${log.span_id}` : ""}`;
      link.setAttribute("aria-label", `Trace ${log.trace_id}`);
      const code = document.createElement("code");
      code.textContent = `${log.trace_id.slice(0, 8)}…`;
      link.append(code);
      trace.append(link);
    }
    return row;
  };
  const show = (logs) => {
    for (const log of logs) rows.prepend(rowOf(log));
    while (rows.rows.length > MAX_ROWS) rows.deleteRow(-1);
    table.hidden = false;
    if (empty) empty.hidden = true;
    arrived += logs.length;
  };
  section.hidden = false;
  const source = new EventSource(section.dataset.tailUrl);
  source.addEventListener("open", describe);
  source.addEventListener("log", (event) => {
    const log = JSON.parse(event.data);
    if (paused) {
      held.push(log);
      if (held.length > MAX_HELD) { held.shift(); missed += 1; }
    } else {
      show([log]);
    }
    describe();
  });
  source.addEventListener("lagged", (event) => {
    missed += JSON.parse(event.data).missed || 0;
    describe();
  });
  source.addEventListener("error", () => {
    // EventSource reconnects by itself (after a 503 or a restart); say so meanwhile.
    say(source.readyState === EventSource.CLOSED ? "Live tail stopped; reload the page to restart it" : "Live tail: reconnecting…");
  });
  toggle.addEventListener("click", () => {
    paused = !paused;
    // The label says what a press does; a changing label plus aria-pressed would say it twice.
    toggle.classList.toggle("paused", paused);
    toggle.textContent = paused ? "Resume live tail" : "Pause live tail";
    if (!paused && held.length) { show(held); held = []; }
    describe();
  });
  window.addEventListener("pagehide", () => source.close());
}

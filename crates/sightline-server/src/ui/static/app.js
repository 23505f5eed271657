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
});

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
});

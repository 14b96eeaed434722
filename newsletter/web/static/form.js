// Progressive enhancement of the site's forms; every form works without it.
// - "Add another repository" adds a row in the page instead of posting the form (no round trip).
// - After a reload with errors, the error summary takes the focus so it is read and seen first.
// - A fresh subscribe form chooses the browser's time zone when the list has it (else the
//   language's default, Asia/Shanghai or UTC, stands).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var zone = document.querySelector("select[data-guess-zone]");
  if (zone) {
    var guess = "";
    try { guess = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { guess = ""; }
    for (var i = 0; guess && i < zone.options.length; i++) {
      if (zone.options[i].value === guess) { zone.value = guess; break; }
    }
  }
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
    summary.scrollIntoView({block: "start"});
  }
  document.querySelectorAll("fieldset.repos").forEach(function (fieldset) {
    var button = fieldset.querySelector("button[name=add_row]");
    if (!button) { return; }
    var max = parseInt(fieldset.getAttribute("data-max-rows"), 10) || 50;
    button.addEventListener("click", function (event) {
      var rows = fieldset.querySelectorAll(".repo-row");
      if (rows.length === 0 || rows.length >= max) { return; }  // the server says why
      event.preventDefault();
      var index = rows.length;
      var row = rows[rows.length - 1].cloneNode(true);
      row.classList.remove("invalid");
      row.querySelectorAll(".error").forEach(function (p) { p.remove(); });
      var input = row.querySelector("input");
      var select = row.querySelector("select");
      input.name = input.id = "repos-" + index + "-repo";
      input.value = "";
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
      input.setAttribute("aria-label", input.getAttribute("placeholder") + " " + (index + 1));
      select.name = select.id = "repos-" + index + "-threshold";
      select.value = "medium";
      var label = select.getAttribute("aria-label") || "";
      select.setAttribute("aria-label", label.replace(/\d+$/, String(index + 1)));
      rows[rows.length - 1].after(row);
      input.focus();
      if (index + 1 >= max) { button.hidden = true; }
    });
  });
});

// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  function init(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    root.querySelectorAll("[data-dropzone]").forEach(function (zone) {
      var input = zone.querySelector("input[type=file]");
      var note = zone.querySelector(".files-chosen");
      function show() {
        if (!note) return;
        note.textContent = Array.prototype.map.call(input.files, function (f) { return f.name; }).join(", ");
      }
      ["dragenter", "dragover"].forEach(function (type) {
        zone.addEventListener(type, function (event) { event.preventDefault(); zone.classList.add("over"); });
      });
      ["dragleave", "drop"].forEach(function (type) {
        zone.addEventListener(type, function () { zone.classList.remove("over"); });
      });
      zone.addEventListener("drop", function (event) {
        event.preventDefault();
        if (!event.dataTransfer || !event.dataTransfer.files.length) return;
        var transfer = new DataTransfer();
        Array.prototype.forEach.call(input.multiple ? event.dataTransfer.files : [event.dataTransfer.files[0]],
          function (f) { transfer.items.add(f); });
        input.files = transfer.files;
        show();
      });
      input.addEventListener("change", show);
    });
    root.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var target = document.getElementById(button.getAttribute("data-copy"));
        if (target && navigator.clipboard) {
          navigator.clipboard.writeText(target.textContent.trim());
          button.textContent = button.getAttribute("data-copied") || "✓";
        }
      });
    });
    // On a phone each table row is a card: every cell carries its column's name (see kyoka.css).
    var tables = root.tagName === "TABLE" ? [root] : Array.prototype.slice.call(root.querySelectorAll("table"));
    tables.forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) { return th.textContent.trim(); });
      if (!heads.length) return;
      table.querySelectorAll("tbody tr").forEach(function (row) {
        Array.prototype.forEach.call(row.children, function (cell, index) {
          if (heads[index] && !cell.hasAttribute("data-label")) cell.setAttribute("data-label", heads[index]);
        });
      });
    });
    root.querySelectorAll("[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:load", function (event) { if (event.detail.elt !== document.body) init(event.detail.elt); });
})();

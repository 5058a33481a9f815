// Theme: follows prefers-color-scheme until the visitor picks one with the toggle (kept in
// localStorage). Also binds "/" to the search box. The page works without this file.
(function () {
  "use strict";
  var KEY = "ruleatlas-theme";
  var saved = null;
  try { saved = localStorage.getItem(KEY); } catch (e) { /* storage may be disabled */ }
  if (saved === "dark" || saved === "light") document.documentElement.setAttribute("data-theme", saved);
  document.addEventListener("DOMContentLoaded", function () {
    var btn = document.getElementById("theme-toggle");
    if (btn) {
      btn.hidden = false;
      btn.addEventListener("click", function () {
        var cur = document.documentElement.getAttribute("data-theme") ||
          (window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
        var next = cur === "dark" ? "light" : "dark";
        document.documentElement.setAttribute("data-theme", next);
        try { localStorage.setItem(KEY, next); } catch (e) { /* ignore */ }
      });
    }
    document.addEventListener("keydown", function (ev) {
      if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      var t = ev.target;
      if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
      var box = document.getElementById("q") || document.getElementById("q-top");
      if (box) { ev.preventDefault(); box.focus(); }
    });
  });
})();

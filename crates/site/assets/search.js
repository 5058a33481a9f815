// Client-side search over the prebuilt index (assets/search-index.js sets window.RA_INDEX).
// Every term must occur somewhere in a rule's title, vendor, id, description, operations or
// fields; titles and ids that match rank first. Results are built with DOM calls and
// textContent only, never innerHTML, so indexed text cannot become markup.
(function () {
  "use strict";
  var ROOT = "../";
  var MAX_RULES = 100, MAX_OPS = 30;
  var input = document.getElementById("q");
  var status = document.getElementById("status");
  var out = document.getElementById("results");
  var idx = window.RA_INDEX;
  if (!input || !out || !idx) {
    if (status) status.textContent = "The search index did not load.";
    return;
  }
  // Rule rows: [title, vendor, href, severity, description, id, ops, fields, flags, techniques]
  var rules = idx.r.map(function (r) {
    return {
      r: r,
      title: r[0].toLowerCase(),
      id: r[5].toLowerCase(),
      hay: (r[0] + "\n" + r[1] + "\n" + r[5] + "\n" + r[6] + "\n" + r[7] + "\n" + (r[9] || "") + "\n" + r[4]).toLowerCase()
    };
  });
  // Ties rank by title: a precomputed position, so sorting compares numbers, not strings.
  rules.slice().sort(function (a, b) { return a.title < b.title ? -1 : a.title > b.title ? 1 : 0; })
    .forEach(function (x, i) { x.rank = i; });
  // Groups: [name, source, href]; operation rows: [id, group index, description, rule count],
  // expanded here to [id, group, source, href, description, rule count].
  var ops = idx.o.map(function (r) {
    var g = idx.g[r[1]] || ["", "", ""];
    var o = [r[0], g[0], g[1], g[2] + "#" + r[0], r[2], r[3]];
    return { o: o, id: o[0].toLowerCase(), hay: (o[0] + "\n" + o[1] + "\n" + o[4]).toLowerCase() };
  });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  function matchAll(hay, terms) {
    for (var i = 0; i < terms.length; i++) if (hay.indexOf(terms[i]) < 0) return false;
    return true;
  }

  function score(x, terms, q) {
    var s = 0;
    if (x.id === q) s += 100;
    for (var i = 0; i < terms.length; i++) {
      var t = x.title ? x.title.indexOf(terms[i]) : -1;
      if (t === 0) s += 12; else if (t > 0) s += 8;
      if (x.id.indexOf(terms[i]) >= 0) s += 6;
    }
    if (x.r && x.r[8].indexOf("d") >= 0) s -= 5;
    return s;
  }

  function run() {
    var q = input.value.trim().toLowerCase();
    var terms = q.split(/\s+/).filter(Boolean);
    while (out.firstChild) out.removeChild(out.firstChild);
    if (!terms.length) {
      status.textContent = rules.length + " rules and " + ops.length + " operations indexed. Type to search.";
      return;
    }
    var t0 = performance.now();
    var hits = [];
    for (var i = 0; i < rules.length; i++) if (matchAll(rules[i].hay, terms)) hits.push(rules[i]);
    var opHits = [];
    for (var j = 0; j < ops.length; j++) if (matchAll(ops[j].hay, terms)) opHits.push(ops[j]);
    // Scores once per hit, not per comparison: a one-letter query matches nearly every rule.
    hits = hits.map(function (h) { return { h: h, s: score(h, terms, q) }; });
    hits.sort(function (a, b) { return b.s - a.s || a.h.rank - b.h.rank; });
    hits = hits.map(function (x) { return x.h; });
    opHits = opHits.map(function (h) { return { h: h, s: score(h, terms, q) }; });
    opHits.sort(function (a, b) { return b.s - a.s || b.h.o[5] - a.h.o[5]; });
    opHits = opHits.map(function (x) { return x.h; });
    var ms = Math.max(1, Math.round(performance.now() - t0));
    status.textContent = hits.length + " rule" + (hits.length === 1 ? "" : "s") + " and " + opHits.length +
      " operation" + (opHits.length === 1 ? "" : "s") + " (" + ms + " ms)";

    if (hits.length) {
      var ul = el("ul", "rules results");
      hits.slice(0, MAX_RULES).forEach(function (h) {
        var r = h.r;
        var li = el("li", r[8].indexOf("d") >= 0 ? "dim" : "");
        var a = el("a", "rt", r[0]);
        a.href = ROOT + r[2];
        li.appendChild(a);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(el("span", "v v-" + r[1].toLowerCase(), r[1]));
        if (r[3]) { li.appendChild(document.createTextNode(" ")); li.appendChild(el("span", "sev sev-" + r[3].toLowerCase(), r[3])); }
        if (r[8].indexOf("b") >= 0) { li.appendChild(document.createTextNode(" ")); li.appendChild(el("span", "badge b-info", "building block")); }
        if (r[6]) li.appendChild(el("div", "also", "↳ " + r[6].split(" ").slice(0, 6).join(", ") + (r[6].split(" ").length > 6 ? ", …" : "")));
        if (r[4]) li.appendChild(el("div", "small muted", r[4]));
        ul.appendChild(li);
      });
      out.appendChild(el("h2", null, "Rules"));
      out.appendChild(ul);
      if (hits.length > MAX_RULES) out.appendChild(el("p", "muted", "… and " + (hits.length - MAX_RULES) + " more; add words to narrow."));
    }
    if (opHits.length) {
      var ol = el("ul", "rules results");
      opHits.slice(0, MAX_OPS).forEach(function (h) {
        var o = h.o;
        var li = el("li");
        var a = el("a", "rt");
        a.appendChild(el("code", null, o[0]));
        a.href = ROOT + o[3];
        li.appendChild(a);
        li.appendChild(el("span", "muted", " " + o[1] + " · " + o[2] + " · " + o[5] + " rule" + (o[5] === 1 ? "" : "s")));
        if (o[4]) li.appendChild(el("div", "small muted", o[4]));
        ol.appendChild(li);
      });
      out.appendChild(el("h2", null, "Operations"));
      out.appendChild(ol);
    }
  }

  var pending = 0;
  function schedule() {
    if (pending) return;
    pending = requestAnimationFrame(function () { pending = 0; run(); });
  }
  input.addEventListener("input", function () {
    schedule();
    var u = new URL(window.location.href);
    if (input.value) u.searchParams.set("q", input.value); else u.searchParams.delete("q");
    try { history.replaceState(null, "", u.toString()); } catch (e) { /* file:// may refuse */ }
  });
  var q0 = new URLSearchParams(window.location.search).get("q");
  if (q0) input.value = q0;
  run();
})();

// Live status: one EventSource; the server pushes a snapshot every few seconds.
"use strict";
(function () {
  var root = document.getElementById("live");
  if (!root) { return; }
  var url = root.getAttribute("data-events");

  function el(tag, text, cls) {
    var n = document.createElement(tag);
    if (text !== undefined && text !== null) { n.textContent = String(text); }
    if (cls) { n.className = cls; }
    return n;
  }
  function facts(pairs) {
    var dl = el("dl", null, "facts");
    pairs.forEach(function (p) { dl.appendChild(el("dt", p[0])); dl.appendChild(el("dd", p[1])); });
    return dl;
  }
  function fmtUptime(s) {
    s = Math.floor(s || 0);
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    return (d ? d + "d " : "") + h + "h " + m + "m";
  }
  function render(snap) {
    var app = snap.app || {}, sys = snap.system || {};
    var mem = sys.memory || {};
    var temps = sys.temperatures_c || {};
    var tempText = Object.keys(temps).map(function (k) { return k + " " + temps[k].toFixed(1) + " °C"; }).join(", ") || "not reported";
    var thr = sys.throttled;
    var cards = el("div", null, "grid");
    var unit = el("section", null, "card");
    unit.appendChild(el("h2", "Unit"));
    unit.appendChild(facts([
      ["Role", app.role || "?"], ["State", app.state_text || app.state || "?"],
      ["Uptime", fmtUptime(sys.uptime_s)],
      ["CPU", (sys.cpu_percent === null || sys.cpu_percent === undefined ? "…" : sys.cpu_percent + " %") + " (load " + (sys.load || []).join(" ") + ")"],
      ["Memory", mem.total_kb ? Math.round((mem.total_kb - mem.available_kb) / 1024) + " / " + Math.round(mem.total_kb / 1024) + " MiB" : "?"],
      ["Temperature", tempText],
      ["Throttling", thr === null || thr === undefined ? "not reported" : (thr.length ? thr.join(", ") : "none")]
    ]));
    cards.appendChild(unit);
    var vers = el("section", null, "card");
    vers.appendChild(el("h2", "Versions"));
    var v = sys.versions || {};
    vers.appendChild(facts(Object.keys(v).map(function (k) { return [k, v[k]]; })));
    cards.appendChild(vers);

    var rooms = el("section", null, "card");
    rooms.appendChild(el("h2", "Rooms"));
    var list = app.rooms || [];
    if (!list.length) { rooms.appendChild(el("p", "No rooms are open.", "muted")); }
    list.forEach(function (room) {
      rooms.appendChild(el("h3", room.name || room.sid || "room"));
      var ul = el("ul", null, "items");
      (room.participants || []).forEach(function (p) {
        var li = el("li");
        li.appendChild(el("strong", p.identity || "?"));
        var tr = (p.tracks || []).map(function (t) {
          return (t.kind || "") + " " + (t.name || "") + (t.bitrate_kbps !== undefined ? " " + t.bitrate_kbps + " kbit/s" : "");
        }).join("; ");
        li.appendChild(el("span", tr || "no tracks", "muted"));
        ul.appendChild(li);
      });
      if (!(room.participants || []).length) { ul.appendChild(el("li", "No participants.")); }
      rooms.appendChild(ul);
    });
    var errs = el("section", null, "card");
    errs.appendChild(el("h2", "Last errors"));
    var le = app.last_errors || [];
    if (!le.length) { errs.appendChild(el("p", "None.", "muted")); }
    var eul = el("ul", null, "items");
    le.forEach(function (x) { eul.appendChild(el("li", x)); });
    errs.appendChild(eul);

    root.replaceChildren(cards, rooms, errs);
    root.setAttribute("data-updated", String(snap.time));
  }
  var source = new EventSource(url);
  source.addEventListener("status", function (ev) {
    var snap;
    try { snap = JSON.parse(ev.data); render(snap); } catch (e) { return; /* a bad frame waits for the next */ }
    // Other sections of the page (operator tools) follow the same snapshot.
    document.dispatchEvent(new CustomEvent("edge-status", { detail: snap }));
  });
  source.onerror = function () {
    var s = document.getElementById("live-state");
    if (s) { s.textContent = "Connection lost; retrying…"; }
  };
  source.onopen = function () {
    var s = document.getElementById("live-state");
    if (s) { s.textContent = "Live"; }
  };
})();

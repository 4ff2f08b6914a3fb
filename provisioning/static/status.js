// Live status: one EventSource; the server pushes a snapshot every few seconds.
"use strict";
(function () {
  var root = document.getElementById("live");
  if (!root) { return; }
  var url = root.getAttribute("data-events");

  var el = window.edgeAdmin.el;
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
  // The room monitor: the SFU's figures per track and subscriber (text only, like the rest).
  var MONITOR_COLUMNS = ["Room", "From", "Track", "Kind", "kbit/s", "To", "Layer", "Size", "fps", "Loss %", "Jitter ms", "RTT ms", "Estimate kbit/s", "Priority", "Why"];
  function known(v) { return v === null || v === undefined ? "—" : String(v); }
  function monitorCard(list) {
    var card = el("section", null, "card monitor");
    card.appendChild(el("h2", "Room monitor"));
    var rows = [];
    list.forEach(function (room) {
      (room.participants || []).forEach(function (p) {
        (p.tracks || []).forEach(function (t) {
          var first = [room.name || room.sid, p.identity, t.name, t.kind, known(t.bitrate_kbps)];
          var subs = t.subscribers || [];
          if (!subs.length) { rows.push(first.concat(["—", "—", "—", "—", "—", "—", "—", "—", "—", "—"])); }
          subs.forEach(function (s) {
            // Why this subscriber sees what it sees: switched off, or the layer allowed
            // against the one its render size asks for.
            var layer = s.switched_off ? "off" : known(s.layer);
            var why = s.why === null || s.why === undefined ? "—" : s.why;
            if (!s.switched_off && s.allowed_layer && s.wanted_layer && s.allowed_layer !== s.wanted_layer) {
              why += " (wants " + s.wanted_layer + ", allowed " + s.allowed_layer + ")";
            }
            var estimate = s.estimate_kbps === null || s.estimate_kbps === undefined ? "unlimited" : String(s.estimate_kbps);
            rows.push(first.concat([s.identity, layer, known(s.size), known(s.fps), known(s.loss_pct), known(s.jitter_ms), known(s.rtt_ms),
              t.kind === "video" ? estimate : "—", t.kind === "video" ? known(s.priority) : "—", why]));
          });
        });
      });
    });
    if (!rows.length) { card.appendChild(el("p", "No tracks are published.", "muted")); return card; }
    var table = el("table", null, "monitor-table");
    var head = el("tr");
    MONITOR_COLUMNS.forEach(function (c) { head.appendChild(el("th", c)); });
    table.appendChild(el("thead")).appendChild(head);
    var body = table.appendChild(el("tbody"));
    rows.forEach(function (r) {
      var tr = el("tr");
      r.forEach(function (cell, i) {
        var td = el("td", cell);
        td.setAttribute("data-label", MONITOR_COLUMNS[i]);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    card.appendChild(table);
    return card;
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
      rooms.appendChild(el("p", room.dominant_speaker ? "Speaking: " + room.dominant_speaker : "Nobody has spoken yet.", "speaker"));
      var ul = el("ul", null, "items");
      (room.participants || []).forEach(function (p) {
        var li = el("li");
        li.appendChild(el("strong", p.identity || "?"));
        if (p.network_quality_level !== null && p.network_quality_level !== undefined) {
          li.appendChild(el("span", "network " + p.network_quality_level + "/5", "nq"));
        }
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

    root.replaceChildren(cards, rooms, monitorCard(list), errs);
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

// The status page's operator tools: state in words, room actions, self-check, camera still,
// microphone level, speaker test, recent log lines. Every value is set as text, never markup.
"use strict";
(function () {
  var root = document.getElementById("tools");
  if (!root) { return; }
  var base = root.getAttribute("data-base");
  var csrf = root.getAttribute("data-csrf");

  function $(id) { return document.getElementById(id); }
  var el = window.edgeAdmin.el;
  function getJSON(path) {
    return fetch(base + path, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        return r.json().catch(function () { return { ok: false, message: "HTTP " + r.status }; })
          .then(function (body) { body.httpStatus = r.status; return body; });
      });
  }
  function post(path, fields) {
    var data = new FormData();
    data.append("csrf", csrf);
    Object.keys(fields).forEach(function (k) { data.append(k, fields[k]); });
    return fetch(base + path, {
      method: "POST", body: data, credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (r) {
      return r.json().catch(function () {
        return { ok: false, message: r.status === 403 ? "Refused: reload the page and sign in again." : "HTTP " + r.status };
      });
    });
  }

  // State in words and room actions follow the live status events (see status.js).
  var roomsKey = "";
  function renderRooms(rooms) {
    var key = JSON.stringify(rooms.map(function (r) {
      return [r.sid, r.name, (r.participants || []).map(function (p) { return [p.sid, p.identity]; })];
    }));
    if (key === roomsKey) { return; }
    roomsKey = key;
    var box = $("room-actions-list");
    box.replaceChildren();
    if (!rooms.length) { box.appendChild(el("p", "No rooms are open.", "muted")); return; }
    rooms.forEach(function (room) {
      var h = el("h3");
      h.appendChild(el("span", room.name || room.sid));
      h.appendChild(actionButton("End room", "End the room \u201c" + (room.name || room.sid) +
        "\u201d? Everyone in it is disconnected.", "/status/rooms/end", { room: room.sid }, "end-room"));
      box.appendChild(h);
      var ul = el("ul", null, "items");
      (room.participants || []).forEach(function (p) {
        var li = el("li");
        li.setAttribute("data-participant", p.sid || "");
        li.appendChild(el("span", p.identity || "?"));
        li.appendChild(actionButton("Remove", "Remove \u201c" + (p.identity || "?") + "\u201d from the room?",
          "/status/rooms/remove", { room: room.sid, participant: p.sid }, "remove-participant"));
        ul.appendChild(li);
      });
      if (!(room.participants || []).length) { ul.appendChild(el("li", "No participants.", "muted")); }
      box.appendChild(ul);
    });
  }
  function actionButton(label, question, path, fields, cls) {
    var b = el("button", label, "danger " + cls);
    b.type = "button";
    b.addEventListener("click", function () {
      if (!window.confirm(question)) { return; }
      b.disabled = true;
      post(path, fields).then(function (res) {
        var out = $("room-actions-result");
        out.textContent = res.message || (res.ok ? "Done." : "Failed.");
        out.className = res.ok ? "ok" : "bad";
        b.disabled = false;
      });
    });
    return b;
  }
  document.addEventListener("edge-status", function (ev) {
    var app = (ev.detail && ev.detail.app) || {};
    $("state-words").textContent = app.state_text || app.state || "?";
    renderRooms(app.rooms || []);
  });

  // Self-check.
  function runDoctor() {
    var body = $("doctor-table").tBodies[0];
    $("doctor-run").disabled = true;
    getJSON("/status/doctor").then(function (res) {
      body.replaceChildren();
      (res.rows || []).forEach(function (r) {
        var tr = el("tr");
        tr.appendChild(el("td", r.part, "nowrap"));
        tr.appendChild(el("td", r.ok ? "ok" : "NOT OK", r.ok ? "nowrap" : "nowrap bad"));
        tr.appendChild(el("td", r.backend, "wrap"));
        tr.appendChild(el("td", r.detail, "msg"));
        body.appendChild(tr);
      });
      if (!(res.rows || []).length) {
        var tr = el("tr"); var td = el("td", res.message || "No findings.", "muted");
        td.colSpan = 4; tr.appendChild(td); body.appendChild(tr);
      }
      $("doctor-run").disabled = false;
    });
  }
  $("doctor-run").addEventListener("click", runDoctor);
  runDoctor();

  // Camera still: fetched, then shown as a data: URL (the page's policy allows no blob:).
  $("snapshot-take").addEventListener("click", function () {
    var fmt = $("snapshot-format").value;
    var note = $("snapshot-note"), img = $("snapshot");
    note.textContent = "Taking a picture…";
    fetch(base + "/status/snapshot?format=" + encodeURIComponent(fmt), { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) {
          return r.json().catch(function () { return { message: "HTTP " + r.status }; })
            .then(function (b) { img.hidden = true; note.textContent = b.message; });
        }
        return r.blob().then(function (blob) {
          var reader = new FileReader();
          reader.onload = function () {
            img.src = String(reader.result);
            img.hidden = false;
            note.textContent = "Taken " + new Date().toLocaleTimeString() + ".";
          };
          reader.readAsDataURL(blob);
        });
      });
  });

  // Microphone level: polled while the page is visible.
  function pollLevel() {
    if (document.hidden) { return; }
    getJSON("/status/levels").then(function (res) {
      $("mic-meter").value = res.available ? res.peak : 0;
      $("mic-meter").textContent = String(res.available ? res.peak : 0);
      $("mic-note").textContent = res.available
        ? (res.muted ? "Muted in the call: the others hear nothing." : "Live from the microphone.")
        : res.reason;
    });
  }
  setInterval(pollLevel, 500);
  pollLevel();

  // Speaker test tone (the form works without this script too).
  $("speaker-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    post("/status/speaker-test", {}).then(function (res) { $("speaker-note").textContent = res.message; });
  });

  // Log lines.
  function fmtTime(t) {
    var d = new Date(t * 1000);
    return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }
  function loadLogs() {
    var level = $("log-level").value;
    getJSON("/status/logs?level=" + encodeURIComponent(level) + "&limit=200").then(function (res) {
      var body = $("log-table").tBodies[0];
      body.replaceChildren();
      (res.lines || []).slice().reverse().forEach(function (line) {
        var tr = el("tr", null, "level-" + line.level);
        tr.appendChild(el("td", fmtTime(line.time), "nowrap"));
        tr.appendChild(el("td", line.level, "nowrap"));
        tr.appendChild(el("td", line.logger, "nowrap"));
        tr.appendChild(el("td", line.message, "msg"));
        body.appendChild(tr);
      });
      if (!(res.lines || []).length) {
        var tr = el("tr"); var td = el("td", "No lines at this level.", "muted");
        td.colSpan = 4; tr.appendChild(td); body.appendChild(tr);
      }
      $("log-table").setAttribute("data-level", level);
    });
  }
  $("log-level").addEventListener("change", loadLogs);
  $("log-refresh").addEventListener("click", loadLogs);
  setInterval(function () { if (!document.hidden) { loadLogs(); } }, 5000);
  loadLogs();
})();

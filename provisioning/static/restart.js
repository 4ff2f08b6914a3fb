// While the unit restarts: ask its (possibly new) address whether the restarted unit answers,
// then open the admin pages there. The page still names the address if this cannot work.
"use strict";
(function () {
  var box = document.getElementById("restarting");
  if (!box) { return; }
  var target = box.getAttribute("data-target");
  var health = box.getAttribute("data-health");
  var oldBoot = box.getAttribute("data-boot");
  var state = document.getElementById("restart-state");
  var started = Date.now();
  var told = false;
  var opening = false;

  function say(text) { state.textContent = text; }
  function open() {
    if (opening) { return; }
    opening = true;
    say("Opening " + target + " …");
    window.location.assign(target);
  }

  // An HTTPS page may not fetch from a plain-HTTP address (mixed content; only the machine's
  // own addresses are exempt), so when HTTPS has just been turned off the asking below may
  // never succeed: give the unit time, then go anyway.
  if (window.location.protocol === "https:" && health.indexOf("http:") === 0) {
    say("This page opens the new address in 15 seconds at the latest.");
    told = true;
    window.setTimeout(open, 15000);
  }

  function again() {
    if (!told && Date.now() - started > 30000) {
      told = true;
      // A browser that does not trust the unit's certificate yet cannot ask the new address.
      say("No answer from the new address yet. If your browser does not trust this unit's " +
          "certificate yet, it cannot check: open the address above and accept or install " +
          "the certificate.");
    }
    window.setTimeout(poll, 1000);
  }

  function poll() {
    fetch(health, { cache: "no-store", credentials: "omit" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && body.boot && body.boot !== oldBoot) { open(); } else { again(); }
      })
      .catch(again);
  }

  window.setTimeout(poll, 1000);
})();

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

  function say(text) { state.textContent = text; }
  function open() {
    say("The unit answers again; opening " + target + " …");
    window.location.assign(target);
  }

  // An HTTPS page may not fetch from a plain-HTTP address (mixed content), so the browser
  // cannot ask when HTTPS has just been turned off: give the unit time, then go.
  if (window.location.protocol === "https:" && health.indexOf("http:") === 0) {
    say("This page opens the new address in 15 seconds.");
    window.setTimeout(open, 15000);
    return;
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

// Small progressive enhancements; every page works without this file.
"use strict";
(function () {
  // Ask before destructive actions (revoke, factory reset); the server checks anyway.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { ev.preventDefault(); }
    });
  });
  // Focus the first field with an error, so a refused form shows why at once.
  var bad = document.querySelector(".has-error input, .has-error select, .has-error textarea");
  if (bad) { bad.focus(); }
})();

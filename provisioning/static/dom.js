// What the admin pages' scripts share; the layout loads it before any of them.
"use strict";
window.edgeAdmin = Object.freeze({
  // A new `tag` element holding `text` as text (never markup), with class `cls`.
  el: function (tag, text, cls) {
    var n = document.createElement(tag);
    if (text !== undefined && text !== null) { n.textContent = String(text); }
    if (cls) { n.className = cls; }
    return n;
  },
});

// Widths that depend on the data (progress bars) come as data-width="42.5%":
// the Content-Security-Policy forbids inline style attributes, not styles set here.
"use strict";
document.querySelectorAll("[data-width]").forEach(function (element) {
  element.style.width = element.dataset.width;
});

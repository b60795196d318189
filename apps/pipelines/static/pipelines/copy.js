// "Copy" buttons: <button data-copy-from="id-of-input">. No inline script (CSP-friendly).
"use strict";
(function () {
  function copied(button) {
    var label = button.textContent;
    button.textContent = "Copied";
    setTimeout(function () {
      button.textContent = label;
    }, 2000);
  }
  function init() {
    document.querySelectorAll("[data-copy-from]").forEach(function (button) {
      button.addEventListener("click", function () {
        var input = document.getElementById(button.dataset.copyFrom);
        input.select();
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(input.value).then(function () {
            copied(button);
          });
        } else {
          // Plain http: the Clipboard API is not there; the selected text copies the old way.
          document.execCommand("copy");
          copied(button);
        }
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();

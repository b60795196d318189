// Presets fill the SMTP settings form and show the chosen provider's note.
// The presets come from a json_script element (no inline script, CSP-friendly).
"use strict";
(function () {
  function init() {
    var data = document.getElementById("smtp-presets");
    var select = document.getElementById("id_preset");
    if (!data || !select) {
      return;
    }
    var security = document.getElementById("id_security");
    function showUnencrypted() {
      // The warning and its confirmation, while security is "None".
      document.querySelectorAll(".smtp-unencrypted").forEach(function (block) {
        block.hidden = security.value !== "none";
      });
    }
    security.addEventListener("change", showUnencrypted);
    var presets = {};
    JSON.parse(data.textContent).forEach(function (preset) {
      presets[preset.key] = preset;
    });
    function showNote() {
      document.querySelectorAll(".smtp-preset-note").forEach(function (note) {
        note.hidden = note.dataset.preset !== select.value;
      });
    }
    select.addEventListener("change", function () {
      var preset = presets[select.value];
      // "Other" has no host: the values already typed stay.
      if (preset && preset.host) {
        document.getElementById("id_host").value = preset.host;
        document.getElementById("id_port").value = preset.port;
        security.value = preset.security;
        showUnencrypted();
      }
      showNote();
    });
    showNote();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();

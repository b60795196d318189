// The event page's progress: polls the progress endpoint every 2 s while
// deliveries are queued or being sent, then stops. No inline script (CSP-friendly).
"use strict";
(function () {
  var INTERVAL_MS = 2000;
  var MAX_FAILURES = 5;

  function init() {
    var box = document.getElementById("event-progress");
    if (!box || box.dataset.running !== "true") {
      return;
    }
    var url = box.dataset.progressUrl;
    var failures = 0;

    function show(progress) {
      box.querySelector("[data-progress-summary]").textContent = progress.summary;
      box.querySelectorAll("[data-progress-part]").forEach(function (part) {
        var percent = progress.percent[part.dataset.progressPart] || 0;
        part.style.width = percent + "%";
        part.setAttribute("aria-valuenow", String(percent));
      });
      box.querySelectorAll("[data-progress-count]").forEach(function (count) {
        count.textContent = String(progress[count.dataset.progressCount]);
      });
      box.querySelectorAll("[data-progress-show-if]").forEach(function (element) {
        element.hidden = !progress[element.dataset.progressShowIf];
      });
    }

    function finish() {
      box.dataset.running = "false";
      box.querySelectorAll(".progress-bar-animated").forEach(function (bar) {
        bar.classList.remove("progress-bar-striped", "progress-bar-animated");
      });
      box.querySelector("[data-progress-done]").hidden = false;
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (progress) {
          failures = 0;
          show(progress);
          if (progress.running) {
            setTimeout(poll, INTERVAL_MS);
          } else {
            finish();
          }
        })
        .catch(function () {
          // A blip (a deploy, the network) should not stop the page for good; many in a row do.
          failures += 1;
          if (failures < MAX_FAILURES) {
            setTimeout(poll, INTERVAL_MS);
          }
        });
    }

    setTimeout(poll, INTERVAL_MS);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();

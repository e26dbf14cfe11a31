/* The import wizard (web/import_wizard.py): refuse an over-large file before it is sent, and
   move the progress bar of a running import until it ends, then show its summary. */
(function () {
  "use strict";

  var input = document.querySelector("input[type=file][data-max-bytes]");
  if (input) {
    var limit = parseInt(input.getAttribute("data-max-bytes"), 10) || 0;
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      var tooLarge = limit > 0 && file && file.size > limit;
      input.setCustomValidity(tooLarge ? input.getAttribute("data-too-large") : "");
      if (tooLarge) { input.reportValidity(); }
    });
    input.form.addEventListener("submit", function (event) {
      if (!input.checkValidity()) { event.preventDefault(); input.reportValidity(); }
    });
  }

  var box = document.querySelector("[data-progress-url]");
  if (!box) { return; }
  var bar = box.querySelector("progress");
  var count = box.querySelector(".done");
  var url = box.getAttribute("data-progress-url");

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (state) {
        if (state.total) { bar.max = state.total; bar.value = state.done; }
        if (state.percent !== null) { bar.textContent = state.percent + "%"; }
        count.textContent = state.done;
        if (state.state === box.getAttribute("data-state") &&
            ["queued", "running", "interrupted"].indexOf(state.state) >= 0) {
          window.setTimeout(poll, 500);
        }
        else { window.location.reload(); }
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 300);
}());

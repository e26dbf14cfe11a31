// The Print button of a record's printable document (templates/print.html). A file, not an
// inline handler: the Content-Security-Policy forbids inline script.
(function () {
  "use strict";
  var button = document.getElementById("print-button");
  if (button) {
    button.addEventListener("click", function () { window.print(); });
  }
})();

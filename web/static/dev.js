// `crm serve --dev`: reload the stand-in page as soon as the server has reloaded the
// configuration (a new generation), so a fixed file brings the app back by itself.
(function () {
  "use strict";
  var shown = document.body.getAttribute("data-generation");
  var here = document.body.getAttribute("data-here") || "/";
  function poll() {
    fetch("/_dev/status", {cache: "no-store", credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        // a GET of the page's own address: never a resubmitted form
        if (String(s.generation) !== shown) { window.location.replace(here); return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 2000); });  // the server is restarting
  }
  window.setTimeout(poll, 1000);
})();

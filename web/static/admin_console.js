/* The admin console (web/admin_console.py): show times in the browser's time zone and tell
   the filter forms which zone their dates are in. Without JavaScript the pages show UTC and
   date filters are UTC days. */
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
  var format;
  try {
    format = new Intl.DateTimeFormat(lang, {dateStyle: "medium", timeStyle: "short"});
  } catch (e) {
    format = null;
  }
  function localTimes() {
    if (!format) { return; }
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when.getTime())) { return; }
      el.title = el.textContent;  // the UTC text stays at hand
      el.textContent = format.format(when);
    });
  }
  function zoneFields() {
    document.querySelectorAll("input[data-time-zone]").forEach(function (input) {
      if (!input.value && zone) { input.value = zone; }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(); zoneFields(); });
})();

// Draws each report widget of a dashboard with Chart.js (served locally, static/vendor/).
// The data is the report as the server computed it for this user, embedded as JSON next to
// the canvas; the table under the chart shows the same numbers without JavaScript.
// Clicking a bar, point or slice opens the list of the records it counts.
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }

  var PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2",
                 "#db2777", "#65a30d", "#ea580c", "#475569"];
  var NUMERIC = ["integer", "decimal", "money", "percent", "number", "rollup"];

  function numeric(column) { return NUMERIC.indexOf(column.type) >= 0; }

  function toNumber(value) {
    if (value === null || value === undefined || value === "") { return null; }
    var n = Number(value);
    return isFinite(n) ? n : null;
  }

  function label(value) { return value === null || value === undefined ? "—" : String(value); }

  function build(canvas, spec) {
    var groups = spec.groups || 0;
    var columns = spec.columns;
    var rows = spec.rows;
    var measures = [];
    for (var i = groups; i < columns.length; i++) {
      if (numeric(columns[i]) || rows.some(function (r) { return typeof r[i] === "number"; })) {
        measures.push(i);
      }
    }
    if (!measures.length) { return; }
    var labels = rows.map(function (r) {
      return groups ? r.slice(0, Math.max(groups, 1)).map(label).join(" · ") : "";
    });
    var kind = spec.chart;
    var type = kind === "line" ? "line" : (kind === "pie" ? "pie" : "bar");
    var shown = type === "pie" || kind === "funnel" ? measures.slice(0, 1) : measures;
    var datasets = shown.map(function (index, n) {
      var colour = PALETTE[n % PALETTE.length];
      return {
        label: columns[index].label,
        data: rows.map(function (r) {
          var v = toNumber(r[index]);
          return columns[index].type === "percent" && v !== null && Math.abs(v) <= 1 ? v * 100 : v;
        }),
        backgroundColor: type === "pie" ? rows.map(function (_, k) { return PALETTE[k % PALETTE.length]; }) : colour,
        borderColor: colour,
        fill: false
      };
    });
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { display: type === "pie" || datasets.length > 1 } },
      onClick: function (event, elements) {
        if (!elements.length) { return; }
        var link = spec.links && spec.links[elements[0].index];
        if (link) { window.location.href = link; }
      },
      onHover: function (event, elements) {
        var target = event.native && event.native.target;
        if (target) { target.style.cursor = elements.length && spec.links ? "pointer" : "default"; }
      }
    };
    if (kind === "funnel") { options.indexAxis = "y"; }
    canvas.chart = new Chart(canvas, { type: type, data: { labels: labels, datasets: datasets },
                                       options: options });
  }

  document.querySelectorAll("canvas[data-chart-for]").forEach(function (canvas) {
    var source = document.getElementById(canvas.getAttribute("data-chart-for"));
    if (!source) { return; }
    try {
      build(canvas, JSON.parse(source.textContent));
      canvas.setAttribute("data-drawn", "true");
    } catch (err) {
      canvas.parentNode.hidden = true;  // the table below still shows the numbers
    }
  });
}());

/* The data dictionary's diagrams: Mermaid (vendor/mermaid.min.js) draws every
   <pre class="mermaid"> as an SVG in place, with no network. A diagram that fails is left as its
   source text and marked, and the page says when all are done (data-diagrams on <html>). */
(function () {
  "use strict";
  var root = document.documentElement;
  if (!window.mermaid) { root.dataset.diagrams = "unavailable"; return; }
  window.mermaid.initialize({
    startOnLoad: false,
    securityLevel: "strict",        // labels come from configuration: never HTML, never links
    maxTextSize: 2000000,           // the whole model of a big pack is a long source
    maxEdges: 5000,
    // drawn at their natural size and scrolled inside their box: shrinking a big model to the
    // width of a phone would make it unreadable
    er: { useMaxWidth: false },
    state: { useMaxWidth: false },
    fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, 'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif"
  });
  var failed = 0;
  var nodes = Array.prototype.slice.call(document.querySelectorAll("pre.mermaid"));
  // one at a time, so that one bad diagram cannot stop the others
  nodes.reduce(function (done, node) {
    return done.then(function () {
      return window.mermaid.run({ nodes: [node] }).catch(function (error) {
        failed += 1;
        node.classList.add("diagram-failed");
        node.dataset.error = String((error && error.message) || error);
        if (window.console) { console.error(error); }
      });
    });
  }, Promise.resolve()).then(function () {
    addFitButtons();
    root.dataset.diagrams = failed ? "failed" : "ready";
  });

  // a big diagram is drawn at a readable size and scrolls; this button shrinks it to the
  // width of the page for an overview, and back
  function addFitButtons() {
    document.querySelectorAll(".diagram[data-fit-label]").forEach(function (box) {
      var svg = box.querySelector("svg");
      if (!svg || svg.getBoundingClientRect().width <= box.clientWidth) { return; }
      var button = document.createElement("button");
      button.type = "button";
      button.className = "small diagram-tools";
      button.textContent = box.dataset.fitLabel;
      button.addEventListener("click", function () {
        var fit = box.classList.toggle("fit");
        button.textContent = fit ? box.dataset.naturalLabel : box.dataset.fitLabel;
      });
      box.parentNode.insertBefore(button, box);
    });
  }
})();

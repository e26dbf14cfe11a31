// Dragging cards between the columns of a kanban board (templates/board.html).
//
// Progressive enhancement only: every card carries a plain POST form that moves it without
// JavaScript. A drop fills that form's hidden "to" field with the column's state and submits
// it, so the server finds the transition and answers exactly as for the form.
(function () {
  "use strict";
  var board = document.querySelector(".board");
  if (!board) {
    return;
  }
  var dragged = null;

  function columnOf(node) {
    return node && node.closest ? node.closest(".board-column") : null;
  }

  function acceptsDrop(column) {
    return dragged !== null && column !== null && column.dataset.state !== dragged.dataset.state;
  }

  function clearTargets() {
    board.querySelectorAll(".board-column.drop-target").forEach(function (column) {
      column.classList.remove("drop-target");
    });
  }

  // a form restored by the browser's back button must not carry an earlier drop's target
  window.addEventListener("pageshow", function () {
    board.querySelectorAll("form.move input[name=to]").forEach(function (input) {
      input.value = "";
    });
  });

  board.addEventListener("dragstart", function (event) {
    var card = event.target.closest ? event.target.closest(".kanban-card[draggable=true]") : null;
    if (!card) {
      return;
    }
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.recordId);
  });

  board.addEventListener("dragend", function () {
    if (dragged) {
      dragged.classList.remove("dragging");
    }
    dragged = null;
    clearTargets();
  });

  board.addEventListener("dragover", function (event) {
    var column = columnOf(event.target);
    if (!acceptsDrop(column)) {
      return;
    }
    event.preventDefault();  // allows the drop
    event.dataTransfer.dropEffect = "move";
    if (!column.classList.contains("drop-target")) {
      clearTargets();
      column.classList.add("drop-target");
    }
  });

  board.addEventListener("dragleave", function (event) {
    var column = columnOf(event.target);
    if (column && !column.contains(event.relatedTarget)) {
      column.classList.remove("drop-target");
    }
  });

  board.addEventListener("drop", function (event) {
    var column = columnOf(event.target);
    if (!acceptsDrop(column)) {
      return;
    }
    event.preventDefault();
    var form = dragged.querySelector("form.move");
    if (!form) {
      return;
    }
    form.elements.namedItem("to").value = column.dataset.state;
    column.classList.add("busy");
    form.submit();
  });
})();

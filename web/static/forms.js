/* Forms that follow their rules while a person edits them, and the reference picker.
 *
 * The rules (visible_if, required_if, read_only_if) are never evaluated here: the form's
 * values go to the server (web/forms.py), which answers with the record service's own
 * evaluation, and this file only shows the answer. So the form and the check on save cannot
 * disagree, and without JavaScript the server-rendered form is already right.
 *
 * Lines editors (a parent form's child records) add rows by copying a server-rendered
 * <template> row and remove them by marking the row's "remove" box; without JavaScript the
 * server's empty rows and boxes do the same.
 *
 * Data from the server reaches the page only as text (textContent, value), never as markup.
 */
(function () {
  "use strict";

  var RULES_DELAY_MS = 250;
  var SEARCH_DELAY_MS = 200;

  function ask(url, options, controller) {
    options.credentials = "same-origin";
    options.headers = {"Accept": "application/json"};
    options.signal = controller.signal;
    return fetch(url, options).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    });
  }

  // ------------------------------------------------------------ field states

  function mirrorsOf(row) {
    return row.querySelectorAll("input[data-mirror]");
  }

  function addMirror(row, name, value) {
    var mirror = document.createElement("input");
    mirror.type = "hidden";
    mirror.name = name;
    mirror.value = value;
    mirror.setAttribute("data-mirror", "");
    row.appendChild(mirror);
  }

  // A disabled control is not submitted; its mirrors send the value it shows, so that a
  // locked field is not taken for a cleared one.
  function lockChoice(row, control, locked) {
    if (locked === control.disabled) {
      return;
    }
    Array.prototype.forEach.call(mirrorsOf(row), function (m) { m.remove(); });
    control.disabled = locked;
    if (!locked) {
      return;
    }
    if (control.type === "checkbox") {
      if (control.checked) {
        addMirror(row, control.name, control.value);
      }
    } else if (control.multiple) {
      Array.prototype.forEach.call(control.selectedOptions, function (option) {
        addMirror(row, control.name, option.value);
      });
    } else {
      addMirror(row, control.name, control.value);
    }
  }

  function applyStates(form, states) {
    Object.keys(states).forEach(function (name) {
      var row = form.querySelector("#" + CSS.escape("field-" + name));
      if (!row) {
        return;
      }
      var state = states[name];
      // a row showing the server's message for its field stays in view
      row.hidden = !state.visible && !row.classList.contains("has-error");
      var marker = row.querySelector(".req");
      if (marker) {
        marker.hidden = !state.required;
      }
      row.classList.toggle("is-read-only", !!state.read_only);
      var control = row.querySelector("#" + CSS.escape("f-" + name));
      if (!control) {
        return;
      }
      if (control.type !== "checkbox") {
        control.required = !!state.required;
      }
      if (control.tagName === "SELECT" || control.type === "checkbox") {
        lockChoice(row, control, !!state.read_only);
      } else {
        control.readOnly = !!state.read_only;
      }
    });
    Array.prototype.forEach.call(form.querySelectorAll("fieldset"), function (set) {
      var rows = set.querySelectorAll(".field");
      set.hidden = rows.length > 0 && Array.prototype.every.call(rows, function (row) {
        return row.hidden;
      });
    });
  }

  // A field a lookup fills when left empty (a price from the price list) shows the value it
  // would get as its placeholder; an input no longer in the answer loses its placeholder.
  function applyLookups(form, lookups) {
    Array.prototype.forEach.call(form.querySelectorAll("[data-looked-up]"), function (input) {
      if (!Object.prototype.hasOwnProperty.call(lookups, input.name)) {
        input.placeholder = "";
        input.removeAttribute("data-looked-up");
      }
    });
    Object.keys(lookups).forEach(function (name) {
      var input = form.elements.namedItem(name);
      if (input && input.tagName === "INPUT") {
        input.placeholder = String(lookups[name]);
        input.setAttribute("data-looked-up", "");
      }
    });
  }

  function followRules(form, url, withLines) {
    var timer = null;
    var controller = null;
    function refresh() {
      if (controller) {
        controller.abort();  // only the answer for the latest values counts
      }
      controller = new AbortController();
      var body = new URLSearchParams(new FormData(form));
      ask(url, {method: "POST", body: body}, controller).then(function (answer) {
        applyStates(form, answer.fields || {});
        if (answer.lookups) {
          applyLookups(form, answer.lookups);
        }
      }).catch(function () {
        // offline, signed out or aborted: the form stays as it is; saving still checks
      });
    }
    function schedule(event) {
      if (event.target.classList.contains("picker-search")) {
        return;  // the picker's own typing; its choice arrives as a change of the id
      }
      if (event.target.closest(".lines-editor") && !withLines) {
        return;  // the server reads the rows only for their lookups (forms.py)
      }
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, RULES_DELAY_MS);
    }
    form.addEventListener("input", schedule);
    form.addEventListener("change", schedule);
  }

  // ------------------------------------------------------------ reference picker

  function setUpPicker(box) {
    var idInput = box.querySelector(".picker-id");
    var search = box.querySelector(".picker-search");
    var list = box.querySelector(".picker-list");
    var status = box.querySelector(".picker-status");
    var hint = box.querySelector(".picker-hint");
    var chosenTitle = search.value;
    var matches = [];
    var active = -1;
    var timer = null;
    var controller = null;

    // the field's label now names the search box; the id travels in a hidden input
    var fieldId = idInput.id;
    idInput.id = fieldId + "-id";
    idInput.removeAttribute("aria-describedby");
    search.id = fieldId;
    search.required = idInput.required;
    search.readOnly = idInput.readOnly;
    idInput.required = false;
    idInput.type = "hidden";
    search.hidden = false;
    if (hint) {
      hint.hidden = true;
    }

    function close() {
      list.hidden = true;
      list.textContent = "";
      search.setAttribute("aria-expanded", "false");
      search.removeAttribute("aria-activedescendant");
      matches = [];
      active = -1;
    }

    function choose(item) {
      var before = idInput.value;
      idInput.value = item ? String(item.id) : "";
      chosenTitle = item ? item.title : "";
      search.value = chosenTitle;
      say("", false);
      close();
      if (idInput.value !== before) {
        idInput.dispatchEvent(new Event("change", {bubbles: true}));
      }
    }

    function highlight(index) {
      var options = list.querySelectorAll("[role=option]");
      if (!options.length) {
        return;
      }
      active = (index + options.length) % options.length;
      Array.prototype.forEach.call(options, function (option, i) {
        option.setAttribute("aria-selected", i === active ? "true" : "false");
      });
      search.setAttribute("aria-activedescendant", options[active].id);
      options[active].scrollIntoView({block: "nearest"});
    }

    function show(found) {
      close();
      matches = found;
      if (!found.length) {
        say(box.dataset.empty, true);
        return;
      }
      found.forEach(function (item, i) {
        var option = document.createElement("li");
        option.id = fieldId + "-option-" + i;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        var title = document.createElement("span");
        title.textContent = item.title;
        var number = document.createElement("span");
        number.className = "picker-number";
        number.textContent = "#" + item.id;  // tells records with the same title apart
        option.appendChild(title);
        option.appendChild(number);
        // mousedown would blur the search box first, and blur closes the list
        option.addEventListener("mousedown", function (event) { event.preventDefault(); });
        option.addEventListener("click", function () { choose(item); });
        list.appendChild(option);
      });
      list.hidden = false;
      search.setAttribute("aria-expanded", "true");
      say(box.dataset.count.replace("{n}", String(found.length)), false);
    }

    // what screen readers announce; only "nothing found" and failures need to be seen too
    function say(text, visible) {
      status.textContent = text;
      status.classList.toggle("sr", !visible);
    }

    function find() {
      if (controller) {
        controller.abort();
      }
      controller = new AbortController();
      var url = box.dataset.url + "?q=" + encodeURIComponent(search.value.trim());
      ask(url, {method: "GET"}, controller).then(function (answer) {
        show(answer.data || []);
      }).catch(function (problem) {
        if (problem.name !== "AbortError") {
          close();
          say(box.dataset.failed, true);
        }
      });
    }

    search.addEventListener("input", function () {
      window.clearTimeout(timer);
      if (!search.value.trim()) {
        choose(null);  // emptying the box clears the reference
        return;
      }
      timer = window.setTimeout(find, SEARCH_DELAY_MS);
    });

    search.addEventListener("keydown", function (event) {
      if (search.readOnly) {
        return;
      }
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (list.hidden) {
          find();
        } else {
          highlight(active + (event.key === "ArrowDown" ? 1 : -1));
        }
      } else if (event.key === "Enter" && !list.hidden) {
        event.preventDefault();  // choosing a record does not submit the form
        if (active >= 0 && matches[active]) {
          choose(matches[active]);
        }
      } else if (event.key === "Enter" && search.value.trim() &&
                 search.value !== chosenTitle) {
        event.preventDefault();  // typed text that chose nothing yet: search, not submit
        window.clearTimeout(timer);
        find();
      } else if (event.key === "Escape" && !list.hidden) {
        event.preventDefault();
        search.value = chosenTitle;
        close();
      }
    });

    search.addEventListener("blur", function () {
      window.clearTimeout(timer);
      // text that chose nothing gives way to the record still chosen
      if (search.value.trim() && search.value !== chosenTitle) {
        search.value = chosenTitle;
      }
      close();
    });
  }

  // ------------------------------------------------------------ lines editors

  // The <template> row's inputs are named and numbered with this placeholder
  // (web/lines_editor.py); a copy takes the next free row number instead.
  var ROW_PLACEHOLDER = "__row__";
  var ROW_ATTRIBUTES = ["id", "name", "for", "aria-controls", "aria-describedby",
                        "data-field"];

  function renumber(row, key) {
    row.setAttribute("data-row", key);
    Array.prototype.forEach.call(row.querySelectorAll("*"), function (element) {
      ROW_ATTRIBUTES.forEach(function (name) {
        var value = element.getAttribute(name);
        if (value && value.indexOf(ROW_PLACEHOLDER) >= 0) {
          element.setAttribute(name, value.split(ROW_PLACEHOLDER).join(key));
        }
      });
    });
  }

  function setUpLines(editor) {
    var body = editor.querySelector("tbody");
    var template = editor.querySelector("template.line-template");
    var addButton = editor.querySelector(".lines-add");
    var empty = editor.querySelector(".lines-empty");
    var status = editor.querySelector(".lines-status");
    var hint = editor.querySelector(".lines-hint");
    var next = parseInt(editor.dataset.nextRow, 10) || 0;

    function showEmpty() {
      empty.hidden = Array.prototype.some.call(body.querySelectorAll("tr.line-row"),
        function (row) { return !row.hidden; });
    }

    // "Remove" marks the row's box, which the server reads, and hides the row: the line is
    // left out of the set saved (a new row is then ignored)
    function setUpRow(row) {
      var box = row.querySelector(".line-remove input[type=checkbox]");
      var button = row.querySelector(".line-remove-button");
      if (box) {
        box.closest("label").hidden = true;
        row.hidden = box.checked;  // marked before a save that was refused: still removed
      }
      button.hidden = false;
      button.addEventListener("click", function () {
        if (box) {
          box.checked = true;
          row.hidden = true;
        } else {
          row.remove();
        }
        status.textContent = status.dataset.removed;
        showEmpty();
        addButton.focus();
      });
    }

    // the empty rows serve forms without JavaScript; here "add line" adds rows when wanted
    Array.prototype.forEach.call(body.querySelectorAll("tr[data-pristine]"), function (row) {
      row.remove();
    });
    Array.prototype.forEach.call(body.querySelectorAll("tr.line-row"), setUpRow);
    if (hint) {
      hint.hidden = true;
    }
    addButton.hidden = false;
    addButton.addEventListener("click", function () {
      var row = template.content.firstElementChild.cloneNode(true);
      renumber(row, String(next));
      next += 1;
      body.appendChild(row);
      setUpRow(row);
      Array.prototype.forEach.call(row.querySelectorAll(".picker[data-url]"), setUpPicker);
      showEmpty();
      status.textContent = status.dataset.added;
      var first = row.querySelector("input:not([type=hidden]), select, textarea");
      if (first) {
        first.focus();
      }
    });
    showEmpty();
  }

  Array.prototype.forEach.call(document.querySelectorAll(".form-rules[data-state-url]"),
    function (marker) {
      var form = marker.closest("form");
      if (form) {
        followRules(form, marker.dataset.stateUrl, marker.hasAttribute("data-lines-lookups"));
      }
    });
  Array.prototype.forEach.call(document.querySelectorAll(".picker[data-url]"), setUpPicker);
  Array.prototype.forEach.call(document.querySelectorAll(".lines-editor"), setUpLines);
}());

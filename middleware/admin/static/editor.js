// tailor admin: the editor's script. It hides the form's fieldsets of the
// rule kinds not chosen, and checks JSON as it is typed, by POSTing it to
// the dashboard's validate endpoint and listing the problems at their
// line and column. The pages work without it: saving checks the same way.
(function () {
  "use strict";

  // The rule kinds of the segment form: show the chosen one's arguments.
  var kind = document.getElementById("seg-kind");
  if (kind) {
    var showKind = function () {
      var sets = document.querySelectorAll("fieldset.kind");
      for (var i = 0; i < sets.length; i++) {
        sets[i].hidden = sets[i].getAttribute("data-kind") !== kind.value;
      }
    };
    kind.addEventListener("change", showKind);
    showKind();
  }

  // Position of line, column (from 1, bytes counted as characters) in text.
  function offset(text, line, column) {
    var off = 0;
    for (var l = 1; l < line; l++) {
      var nl = text.indexOf("\n", off);
      if (nl < 0) { return text.length; }
      off = nl + 1;
    }
    return Math.min(off + Math.max(column - 1, 0), text.length);
  }

  function render(list, area, problems) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    list.hidden = problems.length === 0;
    var file = area.getAttribute("data-file");
    var ownFile = file === "segment" ? "segment" : file + ".json";
    problems.forEach(function (p) {
      var li = document.createElement("li");
      var where = document.createElement("span");
      where.className = "where";
      where.textContent = (p.line ? p.file + " line " + p.line + ", column " + p.column : (p.file || "")) + (p.path ? " " + p.path : "");
      li.appendChild(where);
      li.appendChild(document.createTextNode(" " + p.msg));
      if (p.source !== undefined && p.source !== "") {
        var pre = document.createElement("pre");
        pre.className = "caret";
        pre.textContent = p.source + "\n" + (p.caret || "");
        li.appendChild(pre);
      }
      if (p.file === ownFile && p.line) {
        li.className = "jump";
        li.title = "Go to line " + p.line + ", column " + p.column;
        li.addEventListener("click", function () {
          var at = offset(area.value, p.line, p.column);
          area.focus();
          area.setSelectionRange(at, Math.min(at + 1, area.value.length));
        });
      }
      list.appendChild(li);
    });
    area.classList.toggle("has-problems", problems.length > 0);
  }

  var areas = document.querySelectorAll("textarea[data-validate]");
  Array.prototype.forEach.call(areas, function (area) {
    if (area.readOnly) { return; }
    var list = document.getElementById(area.getAttribute("data-problems"));
    if (!list) { return; }
    var timer = null, seq = 0;
    var check = function () {
      var mine = ++seq;
      var body = new URLSearchParams();
      body.set("file", area.getAttribute("data-file"));
      body.set("name", area.getAttribute("data-name") || "");
      body.set("text", area.value);
      fetch(area.getAttribute("data-validate"), { method: "POST", body: body, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(new Error(r.status + " " + r.statusText)); })
        .then(function (problems) { if (mine === seq) { render(list, area, problems); } })
        .catch(function (err) { if (mine === seq) { render(list, area, [{ msg: "could not check: " + err.message }]); } });
    };
    area.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(check, 400);
    });
  });
})();

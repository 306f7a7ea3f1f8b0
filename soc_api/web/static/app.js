// Progressive enhancement only: every page works without this file.
// Queue: j / ArrowDown next row, ArrowUp previous, x toggle selection, Enter open; "select all".
// Alert page: a assign to me, k acknowledge, c focus the close reason, s suppress similar (opens the
// form, focuses the reason); e escalates the alert (queue: the selected alerts) to an incident.
(function () {
  "use strict";
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll('#queue input[name="ids"]').forEach(function (box) { box.checked = all.checked; });
    });
  }
  var rows = Array.prototype.slice.call(document.querySelectorAll("#queue tbody tr[data-href]"));
  var current = -1;
  function move(step) {
    if (!rows.length) { return; }
    if (current >= 0) { rows[current].classList.remove("cursor"); }
    current = Math.max(0, Math.min(rows.length - 1, current + step));
    rows[current].classList.add("cursor");
    var link = rows[current].querySelector("a");
    if (link) { link.focus(); }
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) { return; }
    var key = ev.key;
    if (rows.length) {
      if (key === "j" || key === "ArrowDown") { move(1); ev.preventDefault(); return; }
      if (key === "ArrowUp") { move(-1); ev.preventDefault(); return; }
      if (key === "x" && current >= 0) {
        var box = rows[current].querySelector('input[name="ids"]');
        if (box) { box.checked = !box.checked; }
        ev.preventDefault(); return;
      }
    }
    var target = document.querySelector('[data-key="' + key + '"]');
    if (!target) { return; }
    ev.preventDefault();
    if (target.tagName === "SELECT" || target.tagName === "TEXTAREA") {
      var fold = target.closest("details");  // s: open "suppress similar" and focus its reason
      if (fold) { fold.open = true; }
      target.focus();
    } else { target.click(); }
  });
  document.querySelectorAll("form.close-form").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      var reason = form.querySelector('select[name="reason"]');
      if (reason && !reason.value) { ev.preventDefault(); reason.focus(); }
    });
  });
})();

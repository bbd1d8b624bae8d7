// Auto-refresh for the pages that ask for it (data-refresh on <body>, in
// seconds). Off while the tab is hidden or the box is unticked; the choice
// is kept in this browser only. The pages work without it.
(function () {
  "use strict";
  var secs = Number(document.body.getAttribute("data-refresh"));
  if (!secs) { return; }
  var box = document.getElementById("autorefresh");
  var input = box && box.querySelector("input");
  var key = "pandasync-autorefresh";
  if (input) {
    box.hidden = false;
    input.checked = window.localStorage.getItem(key) !== "off";
    input.addEventListener("change", function () {
      window.localStorage.setItem(key, input.checked ? "on" : "off");
    });
  }
  window.setInterval(function () {
    if (document.hidden || (input && !input.checked)) { return; }
    window.location.reload();
  }, secs * 1000);
})();

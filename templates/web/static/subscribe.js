// Optional: pick the browser's timezone when the link did not name one.
(function () {
  var select = document.getElementById("timezone");
  var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (select.dataset.given === "no" && zone) {
    for (var i = 0; i < select.options.length; i++) { if (select.options[i].value === zone) { select.selectedIndex = i; } }
  }
})();

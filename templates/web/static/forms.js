// Progressive enhancement of the signup and manage forms (issue 17). Without this file every field shows,
// labelled with the cadences that use it, and the browser's zone is simply not preselected.
(function () {
  // The browser's timezone, where the page did not name one and the list has it.
  var zone = window.Intl && Intl.DateTimeFormat().resolvedOptions().timeZone;
  document.querySelectorAll("select[data-given='no']").forEach(function (select) {
    for (var i = 0; zone && i < select.options.length; i++) {
      if (select.options[i].value === zone) { select.selectedIndex = i; }
    }
  });
  // Only the fields the chosen cadence uses: [data-cadences] lists them ("daily weekly").
  document.querySelectorAll("form").forEach(function (form) {
    var parts = form.querySelectorAll("[data-cadences]");
    if (!parts.length) { return; }
    function chosen() {
      var control = form.querySelector("input[name=cadence]:checked") || form.querySelector("select[name=cadence]");
      return control ? control.value : "";
    }
    function update() {
      var cadence = chosen();
      parts.forEach(function (part) { part.hidden = part.dataset.cadences.split(" ").indexOf(cadence) < 0; });
    }
    form.addEventListener("change", function (event) { if (event.target.name === "cadence") { update(); } });
    update();
  });
})();

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
  // Skill autocomplete (issue 17): the <datalist> of an input with data-suggest gets the names that
  // /skills/suggest finds for the part after the last comma, each offered with the earlier parts kept.
  document.querySelectorAll("input[data-suggest]").forEach(function (input) {
    var list = input.list, timer = 0, asked = "";
    if (!list || !window.fetch) { return; }
    function fill(before, names) {
      while (list.firstChild) { list.removeChild(list.firstChild); }
      names.forEach(function (name) {
        var option = document.createElement("option");
        option.value = before + name;
        list.appendChild(option);
      });
    }
    function ask() {
      var value = input.value, cut = value.lastIndexOf(",") + 1;
      var term = value.slice(cut).trim(), before = cut ? value.slice(0, cut) + " " : "";
      if (!term || term === asked) { return; }
      asked = term;
      fetch(input.dataset.suggest + "?q=" + encodeURIComponent(term), { headers: { Accept: "application/json" } })
        .then(function (answer) { return answer.ok ? answer.json() : { skills: [] }; })
        .then(function (found) {
          if (input.value.slice(input.value.lastIndexOf(",") + 1).trim() !== term) { return; }
          fill(before, found.skills.map(function (skill) { return skill.name; }));
        })
        .catch(function () { asked = ""; });
    }
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(ask, 150); });
  });
})();

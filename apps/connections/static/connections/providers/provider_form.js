// Show only the chosen provider's fields; the others stay in the page, hidden.
(function () {
  const select = document.querySelector('#provider-form select[name$="provider"]');
  if (!select) return;
  const groups = document.querySelectorAll('[data-provider-group]');
  function update() {
    groups.forEach(function (group) {
      group.hidden = group.dataset.providerGroup !== select.value;
    });
  }
  select.addEventListener('change', update);
  update();
})();

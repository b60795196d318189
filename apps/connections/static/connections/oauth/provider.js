// Show only the fields and buttons of the chosen provider (everything shows without JS).
(function () {
  const radios = document.querySelectorAll('input[name="provider"]');
  if (!radios.length) return;
  function update() {
    const chosen = document.querySelector('input[name="provider"]:checked');
    document.querySelectorAll('[data-provider]').forEach(function (element) {
      element.hidden = Boolean(chosen) && element.dataset.provider !== chosen.value;
    });
  }
  radios.forEach(function (radio) { radio.addEventListener('change', update); });
  update();
})();

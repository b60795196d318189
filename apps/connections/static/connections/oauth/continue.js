// Follow the "Continue to Google" link at once; the link stays for browsers without JS.
(function () {
  const link = document.querySelector('a[data-auto-follow]');
  if (link) window.location.assign(link.href);
})();

// Refreshes the parts of a page marked data-refresh while their server says the work goes
// on (data-active="true"); stops as soon as a refreshed part says it is done. No framework.
(function () {
  "use strict";
  function watch(el) {
    var interval = parseInt(el.dataset.interval || "2000", 10);
    function tick() {
      if (el.dataset.active !== "true") return;
      fetch(el.dataset.refresh, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.redirected || r.status === 401) { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html === null) { setTimeout(tick, interval * 2); return; }
          var next = new DOMParser().parseFromString(html, "text/html").querySelector("[data-refresh]");
          if (next) {
            if (next.dataset.active !== "true") { window.location.reload(); return; }
            el.innerHTML = next.innerHTML;
          }
          setTimeout(tick, interval);
        })
        .catch(function () { setTimeout(tick, interval * 2); });
    }
    setTimeout(tick, interval);
  }
  document.querySelectorAll("[data-refresh]").forEach(watch);
})();

// Tenantry page behaviour: toasts from HX-Trigger, confirmation before destructive actions,
// copy buttons. Everything here is an enhancement: links and forms work without it.
(function () {
  "use strict";

  function showToast(level, message) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast toast-" + (level || "success");
    el.setAttribute("role", "status");
    el.dataset.fading = "1";
    el.textContent = message;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, 6000);
  }

  // Server-sent toasts: HX-Trigger: {"toast": [{"level": "...", "message": "..."}]}
  document.body.addEventListener("toast", function (evt) {
    var items = evt.detail && evt.detail.value !== undefined ? evt.detail.value : evt.detail;
    (Array.isArray(items) ? items : [items]).forEach(function (t) { showToast(t.level, t.message); });
  });

  // Errors htmx does not swap (403, 404, 409, 429, 5xx): say so instead of doing nothing.
  document.body.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    if (xhr.getResponseHeader("HX-Trigger")) return; // the server sent its own toast
    showToast("error", xhr.status === 429 ? "Too many requests: wait a moment and try again."
      : "That did not work (" + xhr.status + ").");
  });
  document.body.addEventListener("htmx:sendError", function () {
    showToast("error", "The server could not be reached.");
  });

  // Forms with data-confirm ask before submitting (plain and htmx-boosted submits alike).
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (form.dataset && form.dataset.confirm && !form.dataset.confirmed) {
      if (!window.confirm(form.dataset.confirm)) {
        evt.preventDefault();
        evt.stopImmediatePropagation();
      }
    }
  }, true);

  // Copy buttons: <button data-copy="#id">.
  document.addEventListener("click", function (evt) {
    var button = evt.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.dataset.copy);
    if (source && navigator.clipboard) {
      navigator.clipboard.writeText(source.textContent.trim()).then(function () { showToast("success", "Copied."); });
    }
  });

  // Print buttons: <button data-print> (no inline handlers: the CSP forbids them).
  document.addEventListener("click", function (evt) {
    if (evt.target.closest("[data-print]")) window.print();
  });

  // Toasts rendered with the page fade out too, also when htmx swaps a page in (boosted links,
  // HX-Location after a form): those never see a fresh load of this script.
  function fadeRenderedToasts() {
    document.querySelectorAll("#toasts .toast").forEach(function (el) {
      if (el.dataset.fading) return;
      el.dataset.fading = "1";
      setTimeout(function () { el.remove(); }, 6000);
    });
  }
  fadeRenderedToasts();
  document.body.addEventListener("htmx:load", fadeRenderedToasts);

  // A header checkbox with data-check-all="<name>" checks every checkbox of that name in the same table.
  document.addEventListener("change", function (evt) {
    var box = evt.target;
    if (!box.dataset || !box.dataset.checkAll) return;
    var table = box.closest("table") || document;
    table.querySelectorAll('input[type=checkbox][name="' + box.dataset.checkAll + '"]').forEach(function (el) {
      el.checked = box.checked;
    });
  });

  // A range input shows its number in the <output> named by data-output (the rollout slider).
  document.addEventListener("input", function (evt) {
    var el = evt.target;
    if (el.type !== "range" || !el.dataset.output) return;
    var out = document.getElementById(el.dataset.output);
    if (out) out.textContent = el.value;
  });
})();

// Plotly charts: <div class="chart" data-figure='{"data": …, "layout": …}'>, drawn on every htmx load
// (full pages and swapped fragments alike). Plotly (from the plotly package, served by the app) is
// loaded only when a page has a chart.
(function () {
  "use strict";
  var loading = null;
  function withPlotly(then) {
    if (window.Plotly) { then(); return; }
    if (!loading) {
      loading = document.createElement("script");
      loading.src = document.body.dataset.plotlySrc;
      document.head.appendChild(loading);
    }
    loading.addEventListener("load", then);
  }
  function draw(root) {
    var charts = root.querySelectorAll ? root.querySelectorAll(".chart[data-figure]:not([data-drawn])") : [];
    if (!charts.length) return;
    withPlotly(function () {
      charts.forEach(function (el) {
        if (el.dataset.drawn) return;
        var figure = JSON.parse(el.dataset.figure);
        el.dataset.drawn = "1";
        window.Plotly.newPlot(el, figure.data, figure.layout, { displayModeBar: false, responsive: true });
      });
    });
  }
  if (window.htmx) { window.htmx.onLoad(draw); } else { draw(document); }
})();

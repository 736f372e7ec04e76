/* Draws every [data-chart] element with uPlot (vendor/uPlot.iife.min.js).
   Data comes from the <script type="application/json"> the element names:
   {x: [epoch s], unit, series: [{label, values, dash}], band: [lower, upper] | null}. */
(function () {
  "use strict";
  var COLORS = ["#0b6bcb", "#ef6c00", "#00897b", "#9c27b0"];

  function options(spec, width) {
    var series = [{}];
    var colorIndex = 0;
    spec.series.forEach(function (s) {
      var color = s.dash ? "rgba(11,107,203,.45)" : COLORS[colorIndex++ % COLORS.length];
      series.push({ label: s.label, stroke: color, width: s.dash ? 1 : 2, dash: s.dash ? [4, 4] : undefined,
                    points: { show: false } });
    });
    var opts = {
      width: width, height: 260, series: series,
      scales: { x: { time: true } },
      // the API speaks UTC, and so do the tables around the charts
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      axes: [{ label: "UTC" }, { label: spec.unit || "", size: 60 }],
      cursor: { drag: { x: true, y: false } }
    };
    if (spec.band) {
      // uPlot bands are 1-based series indexes: [upper, lower]
      opts.bands = [{ series: [spec.band[1] + 1, spec.band[0] + 1], fill: "rgba(11,107,203,.15)" }];
    }
    return opts;
  }

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source || typeof uPlot === "undefined") { return; }
    var spec = JSON.parse(source.textContent);
    var data = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    var plot = new uPlot(options(spec, el.clientWidth || 600), data, el);
    window.addEventListener("resize", function () {
      plot.setSize({ width: el.clientWidth || 600, height: 260 });
    });
    el.setAttribute("data-drawn", "true");
  }

  document.querySelectorAll("[data-chart]").forEach(draw);
})();

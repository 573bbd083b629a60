/* seqdance report: links the Plotly figures and the 3Dmol.js view of one protein.
 * Data: #report-data (JSON), figures: #report-figures (Plotly JSON). Written for seqdance. */
(function () {
  "use strict";
  var t0 = performance.now();
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var F = JSON.parse(document.getElementById("report-figures").textContent);
  var L = D.sequence.length;
  var first = D.numbers[0];
  var state = { hover: null, selected: null, colour: null, mutant: null, links: 0,
                highlighted: null, ready: false, loadMs: null, errors: [] };
  window.seqdanceReport = state;
  var $ = function (id) { return document.getElementById(id); };
  var CONFIG = { responsive: true, displaylogo: false, scrollZoom: true };
  var PLOTS = [];  // [div, kind] for highlight shapes

  // -- data helpers ---------------------------------------------------------------------
  function decode(enc) {  // uint8 quantised -> Float32Array (NaN kept)
    var bin = atob(enc.b64), n = bin.length, out = new Float32Array(n);
    var perRow = Array.isArray(enc.lo), rows = perRow ? enc.shape[0] : 1, width = n / rows;
    for (var r = 0; r < rows; r++) {
      var lo = perRow ? enc.lo[r] : enc.lo, hi = perRow ? enc.hi[r] : enc.hi;
      var step = (hi - lo) / enc.top;
      for (var i = r * width; i < (r + 1) * width; i++) {
        var q = bin.charCodeAt(i);
        out[i] = (enc.nan && q === 255) ? NaN : lo + q * step;
      }
    }
    return out;
  }
  function matrix(flat, rows, cols, offset) {  // rows of a flat array, for Plotly's z
    var z = [];
    for (var r = 0; r < rows; r++) {
      z.push(Array.from(flat.subarray(offset + r * cols, offset + (r + 1) * cols),
                        function (v) { return isNaN(v) ? null : v; }));
    }
    return z;
  }
  function range(values) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (v !== null && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi <= lo) { hi = lo + 1e-9; }
    return [lo, hi];
  }
  function fmt(v) { return (v === null || v === undefined || isNaN(v)) ? "n/a" : Number(v).toPrecision(3); }
  function label(i) { return D.sequence[i] + D.numbers[i]; }
  function option(select, value, text) {
    var o = document.createElement("option"); o.value = value; o.textContent = text || value;
    select.appendChild(o); return o;
  }

  // -- header ---------------------------------------------------------------------------
  var h = D.header;
  $("title").textContent = h.title + " (" + L + " residues)";
  [["model", h.model], ["weights hash", h.weights_hash], ["command", h.command],
   ["date", h.date], ["seqdance", h.version]].forEach(function (kv) {
    var dt = document.createElement("dt"); dt.textContent = kv[0];
    var dd = document.createElement("dd"); dd.textContent = kv[1];
    $("meta").appendChild(dt); $("meta").appendChild(dd);
  });
  D.notes.forEach(function (n) { var li = document.createElement("li"); li.textContent = n; $("notes").appendChild(li); });

  // -- colour sources (residue values for the 3D view) ------------------------------------
  var sources = {};  // name -> {values, unit, scale}
  Object.keys(D.properties).forEach(function (k) {
    sources[k] = { values: D.properties[k].values, unit: D.properties[k].unit, scale: "seq" };
  });
  function addSource(name, values, unit) {
    var isNew = !(name in sources);
    sources[name] = { values: values, unit: unit, scale: "seq" };
    if (isNew) { option($("colour-select"), name); }
  }
  Object.keys(sources).forEach(function (k) { option($("colour-select"), k); });

  // -- 3D view ----------------------------------------------------------------------------
  var viewer = null, chain = null, indexOfResi = {}, ca = [], hoverShape = null, selectShape = null,
      linkShapes = [];
  function colourOf(i) {
    var s = sources[state.colour];
    if (!s || i === undefined) { return "#cccccc"; }
    var v = s.values[i];
    if (v === null || v === undefined || isNaN(v)) { return "#cccccc"; }
    var r = range(s.values), lut = D.luts[s.scale];
    var k = Math.max(0, Math.min(lut.length - 1, Math.round((v - r[0]) / (r[1] - r[0]) * (lut.length - 1))));
    return lut[k];
  }
  function inChain(atom) { return (atom.chain || "").trim() === chain; }
  function setupViewer() {
    if (!D.structure) { $("view-column").classList.add("hidden"); $("main").classList.add("no-structure"); return; }
    chain = (D.structure.chain || "").trim();  // a blank chain id is "" here, " " in 3Dmol
    D.structure.resi.forEach(function (r, i) { if (r !== null) { indexOfResi[r] = i; } });
    $("structure-note").textContent = D.structure.note;
    viewer = $3Dmol.createViewer($("viewer"), { backgroundColor: "white" });
    var model = viewer.addModel(D.structure.pdb, "pdb");
    model.selectedAtoms({ atom: "CA", predicate: inChain }).forEach(function (a) {
      var i = indexOfResi[a.resi]; if (i !== undefined) { ca[i] = { x: a.x, y: a.y, z: a.z }; }
    });
    var pick = { predicate: inChain };
    viewer.setHoverable(pick, true, function (atom) { hoverResidue(indexOfResi[atom.resi], "3d"); },
                        function () {});
    viewer.setClickable(pick, true, function (atom) { selectResidue(indexOfResi[atom.resi]); });
    state.viewer = viewer;
    paint();
    viewer.zoomTo();
    viewer.render();
  }
  function paint() {
    if (!viewer) { return; }
    viewer.setStyle({}, { cartoon: { colorfunc: function (atom) {
      return inChain(atom) ? colourOf(indexOfResi[atom.resi]) : "#dddddd"; } } });
    viewer.render();
  }
  function sphere(i, colour, radius) {
    if (!viewer || i === null || !ca[i]) { return null; }
    return viewer.addSphere({ center: ca[i], radius: radius, color: colour, opacity: 0.85 });
  }
  function updateLegend() {
    var s = sources[state.colour]; if (!s) { return; }
    var r = range(s.values), lut = D.luts[s.scale], stops = [];
    for (var k = 0; k <= 10; k++) { stops.push(lut[Math.round(k / 10 * (lut.length - 1))]); }
    $("legend-bar").style.background = "linear-gradient(to right," + stops.join(",") + ")";
    $("legend-name").textContent = state.colour + " (" + s.unit + ")";
    $("legend-lo").textContent = fmt(r[0]); $("legend-hi").textContent = fmt(r[1]);
  }
  function setColour(name) {
    state.colour = name; $("colour-select").value = name; updateLegend(); paint(); showValues();
  }
  $("colour-select").addEventListener("change", function (e) { setColour(e.target.value); });

  // -- pair maps and links ----------------------------------------------------------------
  var pairCache = {};
  function pairValues(name) {
    if (!pairCache[name]) { pairCache[name] = decode(D.pairs[name].data); }
    return pairCache[name];
  }
  function drawLinks() {
    if (!viewer) { return; }
    linkShapes.forEach(function (s) { viewer.removeShape(s); }); linkShapes = [];
    var name = $("link-select").value, thr = parseFloat($("link-threshold").value);
    if (name && !isNaN(thr)) {
      var v = pairValues(name), found = [];
      for (var i = 0; i < L; i++) {
        for (var j = i + 3; j < L; j++) {
          var x = v[i * L + j];
          if (x >= thr && ca[i] && ca[j]) { found.push([x, i, j]); }
        }
      }
      found.sort(function (a, b) { return b[0] - a[0]; });
      found = found.slice(0, D.maxLinks);
      var hi = found.length ? found[0][0] : thr;
      found.forEach(function (f) {
        var lut = D.luts.seq, k = Math.round((f[0] - thr) / Math.max(hi - thr, 1e-9) * (lut.length - 1));
        linkShapes.push(viewer.addCylinder({ start: ca[f[1]], end: ca[f[2]], radius: 0.18,
                                             color: lut[k], fromCap: 1, toCap: 1 }));
      });
      state.links = found.length;
      $("link-count").textContent = found.length + " links (|i-j| >= 3, at most " + D.maxLinks + ")";
    } else { state.links = 0; $("link-count").textContent = ""; }
    viewer.render();
  }
  function setupPairs() {
    if (!D.pairs) { $("pair-section").classList.add("hidden"); $("link-controls").classList.add("hidden"); return; }
    option($("link-select"), "", "none");
    Object.keys(D.pairs).forEach(function (k) { option($("pair-select"), k); option($("link-select"), k); });
    var div = $("pair-plot"), fig = F.pair;
    var name = Object.keys(D.pairs)[0];
    fig.data[0].z = matrix(pairValues(name), L, L, 0);
    Plotly.newPlot(div, fig.data, fig.layout, CONFIG);
    PLOTS.push([div, "pair"]);
    div.on("plotly_hover", function (e) { hoverResidue(e.points[0].x - first, "pair"); });
    div.on("plotly_click", function (e) { selectResidue(e.points[0].x - first); });
    $("pair-select").addEventListener("change", function (e) {
      var k = e.target.value, p = D.pairs[k];
      Plotly.restyle(div, { z: [matrix(pairValues(k), L, L, 0)],
        colorscale: [D.colorscales[p.signed ? "div" : "seq"]], zmid: [p.signed ? 0 : null],
        "colorbar.title.text": k + "<br>" + p.unit });
    });
    $("link-select").addEventListener("change", function (e) {
      var k = e.target.value; if (k) { $("link-threshold").value = D.pairs[k].link; } drawLinks();
    });
    $("link-threshold").addEventListener("change", drawLinks);
  }

  // -- tracks -----------------------------------------------------------------------------
  var tracksDiv = $("tracks-plot"), mutantTrace = null, scanMeanTrace = null;
  function setupTracks() {
    var fig = F.tracks;
    Plotly.newPlot(tracksDiv, fig.data, fig.layout, CONFIG);
    PLOTS.push([tracksDiv, "x"]);
    fig.data.forEach(function (t, k) {
      if (t.type === "bar") { scanMeanTrace = k; }
    });
    if (D.scan || D.explain) { mutantTrace = fig.data.length - 1; }
    tracksDiv.on("plotly_hover", function (e) { hoverResidue(e.points[0].x - first, "tracks"); });
    tracksDiv.on("plotly_click", function (e) { selectResidue(e.points[0].x - first); });
  }
  function showMutant(name, values, info) {
    state.mutant = name;
    $("mutant-name").textContent = name; $("mutant-info").textContent = info || "";
    if (values && mutantTrace !== null) {
      Plotly.restyle(tracksDiv, { y: [values], name: ["mutant " + name] }, [mutantTrace]);
    }
    if (values) { addSource("mutant " + name, values, D.changeUnit); setColour("mutant " + name); }
  }

  // -- saturation scan --------------------------------------------------------------------
  var scanRows = {};
  function setupScan() {
    if (!D.scan) { $("scan-section").classList.add("hidden"); return; }
    var div = $("scan-plot"), fig = F.scan, S = D.scan, P = S.positions.length;
    Object.keys(S.columns).forEach(function (c) {
      option($("scan-column"), c);
      var mean = new Array(L).fill(null);
      S.columns[c].mean.forEach(function (v, k) { mean[S.positions[k]] = v; });
      sources["scan mean " + c] = { values: mean, unit: D.changeUnit, scale: "seq" };
      option($("colour-select"), "scan mean " + c);
    });
    if (S.profiles) { S.profiles.mutants.forEach(function (m, r) { scanRows[m] = r; }); }
    Plotly.newPlot(div, fig.data, fig.layout, CONFIG);
    PLOTS.push([div, "x"]);
    div.on("plotly_hover", function (e) { hoverResidue(e.points[0].x - first, "scan"); });
    div.on("plotly_click", function (e) {
      var p = e.points[0], name = p.customdata;
      if (p.z === null || p.z === undefined) { return; }  // the wild type
      selectResidue(p.x - first);
      var info = $("scan-column").value + " = " + fmt(p.z);
      if (S.profiles && name in scanRows) {
        if (!S.profiles.flat) { S.profiles.flat = decode(S.profiles.data); }
        var r = scanRows[name], row = Array.from(S.profiles.flat.subarray(r * L, (r + 1) * L));
        showMutant(name, row, info + "; profile: mean relative change of the residue channels");
      } else if (D.explain && D.explain.mutants.indexOf(name) >= 0 && D.explain.total.length) {
        showMutant(name, D.explain.total[D.explain.mutants.indexOf(name)], info + " (explained)");
      } else {
        showMutant(name, null, info + "; no profile (give the model to seqdance report)");
      }
    });
    $("scan-column").addEventListener("change", function (e) {
      var c = e.target.value, z = decode(S.columns[c].z);
      Plotly.restyle(div, { z: [matrix(z, 20, P, 0)], "colorbar.title.text": c + "<br>" + D.changeUnit });
      Plotly.relayout(div, { "title.text": "Saturation scan: " + c + " (click a cell for its profile)" });
      if (scanMeanTrace !== null) {
        Plotly.restyle(tracksDiv, { y: [sources["scan mean " + c].values], name: ["mean " + c] }, [scanMeanTrace]);
      }
    });
  }

  // -- explanations -----------------------------------------------------------------------
  function setupExplain() {
    var E = D.explain;
    if (!E) { $("explain-section").classList.add("hidden"); return; }
    E.mutants.forEach(function (m, k) {
      option($("explain-mutant"), k, m);
      if (E.total.length) { sources["explain " + m] = { values: E.total[k], unit: D.changeUnit, scale: "seq" };
                            option($("colour-select"), "explain " + m); }
    });
    var div = $("explain-plot"), pdiv = $("explain-pair-plot"), feats = Object.keys(E.features);
    if (F.explain) { Plotly.newPlot(div, F.explain.data, F.explain.layout, CONFIG); PLOTS.push([div, "x"]);
      div.on("plotly_hover", function (e) { hoverResidue(e.points[0].x - first, "explain"); }); }
    var pairs = E.pairs, flat = pairs ? decode(pairs.data) : null;
    function pairZ(m, c) {
      var z = matrix(flat, L, L, (m * pairs.channels.length + c) * L * L), lim = 0;
      z.forEach(function (row) { row.forEach(function (v) { if (v !== null) { lim = Math.max(lim, Math.abs(v)); } }); });
      return [z, lim || 1];
    }
    if (pairs) {
      pairs.channels.forEach(function (c, k) { option($("explain-channel"), k, c); });
      var z0 = pairZ(0, 0), fig = F.explain_pair;
      fig.data[0].z = z0[0]; fig.data[0].zmin = -z0[1]; fig.data[0].zmax = z0[1];
      Plotly.newPlot(pdiv, fig.data, fig.layout, CONFIG); PLOTS.push([pdiv, "pair"]);
      pdiv.on("plotly_hover", function (e) { hoverResidue(e.points[0].x - first, "explain-pair"); });
    } else { $("explain-pair-controls").classList.add("hidden"); pdiv.classList.add("hidden"); }
    function update() {
      var m = parseInt($("explain-mutant").value, 10), name = E.mutants[m];
      if (F.explain) {
        Plotly.restyle(div, { y: feats.map(function (f) { return E.features[f][m]; }) },
                       feats.map(function (f, k) { return k; }));
        Plotly.relayout(div, { "title.text": "Explain " + name + ": change per residue and feature" });
      }
      if (pairs && m < pairs.mutants) {
        var c = parseInt($("explain-channel").value, 10), z = pairZ(m, c);
        Plotly.restyle(pdiv, { z: [z[0]], zmin: [-z[1]], zmax: [z[1]],
          "colorbar.title.text": "Δ " + pairs.channels[c] + "<br>mut - wt" });
        Plotly.relayout(pdiv, { "title.text": "Explain " + name + ": pair difference map" });
      }
    }
    $("explain-mutant").addEventListener("change", function () {
      update();
      var m = parseInt($("explain-mutant").value, 10);
      if (E.total.length) { showMutant(E.mutants[m], E.total[m], "explained: mean relative change"); }
    });
    $("explain-channel").addEventListener("change", update);
  }

  // -- hover and selection ----------------------------------------------------------------
  function lines(i, colour, dash, kind) {
    if (i === null || i === undefined) { return []; }
    var x = D.numbers[i], style = { color: colour, width: 1.5, dash: dash };
    if (kind === "pair") {  // a cross hair inside the map (data coordinates)
      var lo = D.numbers[0] - 0.5, hi = D.numbers[L - 1] + 0.5;
      return [{ type: "line", xref: "x", yref: "y", x0: x, x1: x, y0: lo, y1: hi, line: style, layer: "above" },
              { type: "line", xref: "x", yref: "y", x0: lo, x1: hi, y0: x, y1: x, line: style, layer: "above" }];
    }
    return [{ type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1, line: style, layer: "above" }];
  }
  var pending = false;
  function redrawShapes() {
    if (pending) { return; }
    pending = true;
    requestAnimationFrame(function () {
      pending = false;
      PLOTS.forEach(function (p) {
        var shapes = lines(state.selected, "#D55E00", "solid", p[1]).concat(lines(state.hover, "#000000", "dot", p[1]));
        Plotly.relayout(p[0], { shapes: shapes });
      });
    });
  }
  function valueText(i) {
    var s = sources[state.colour];
    return s ? state.colour + " = " + fmt(s.values[i]) : "";
  }
  function showValues() {
    if (state.hover !== null) { $("hover-value").textContent = valueText(state.hover); }
    if (state.selected !== null) { $("selected-value").textContent = valueText(state.selected); }
  }
  function hoverResidue(i, from) {
    if (i === undefined || i === null || i < 0 || i >= L || i === state.hover) { return; }
    state.hover = i;
    $("hover-residue").textContent = label(i);
    showValues();
    if (viewer) {
      if (hoverShape) { viewer.removeShape(hoverShape); }
      hoverShape = sphere(i, "#000000", 1.6);
      state.highlighted = hoverShape ? label(i) : null;
      viewer.render();
    }
    redrawShapes();
  }
  function selectResidue(i) {
    if (i === undefined || i === null || i < 0 || i >= L) { return; }
    state.selected = i;
    $("selected-residue").textContent = label(i);
    showValues();
    if (viewer) {
      if (selectShape) { viewer.removeShape(selectShape); }
      selectShape = sphere(i, "#D55E00", 2.0);
      viewer.render();
    }
    redrawShapes();
  }
  state.hoverResidue = hoverResidue;
  state.selectResidue = selectResidue;

  // -- start ------------------------------------------------------------------------------
  setupTracks();
  setupScan();
  setupExplain();
  setupViewer();
  setupPairs();
  setColour("rmsf_nor");
  if (D.explain && D.explain.total.length && mutantTrace !== null) {  // first explained mutant
    state.mutant = D.explain.mutants[0];
    $("mutant-name").textContent = state.mutant;
    $("mutant-info").textContent = "explained: mean relative change (pick another above)";
    Plotly.restyle(tracksDiv, { y: [D.explain.total[0]], name: ["mutant " + state.mutant] }, [mutantTrace]);
  }
  state.ready = true;
  state.loadMs = performance.now() - t0;
  document.body.dataset.ready = "1";
})();

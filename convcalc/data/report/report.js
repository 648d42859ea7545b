"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const int = (n) => n.toLocaleString("en-US");
  const si = (n) => {
    for (const [unit, size] of [["G", 1e9], ["M", 1e6], ["K", 1e3]])
      if (Math.abs(n) >= size) return (n / size).toPrecision(3) + unit;
    return String(n);
  };
  const bytes = (n) => {
    for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]])
      if (n >= size) return (n / size).toFixed(2) + " " + unit;
    return n + " B";
  };

  // -- summary ---------------------------------------------------------------------------
  const s = data.summary;
  document.getElementById("title").textContent = s.name + " \u2014 " + s.file;
  const facts = [["input", s.input], ["output", s.output], ["layers", int(s.layers)],
    ["params", int(s.params) + " (" + bytes(s.paramBytes) + ")"],
    ["MACs", int(s.macs) + " (" + si(s.macs) + ")"], ["FLOPs", si(s.flops)],
    ["activations", bytes(s.activationBytes) + ", peak " + bytes(s.peakBytes) + " (" + s.dtype + ", batch " + s.batch + ")"],
    ["diagnostics", s.errors + " errors, " + s.warnings + " warnings"]];
  if (s.training) {  // check --training's totals: one step of the optimizer
    const t = s.training;
    facts.splice(7, 0, ["training step", si(t.backward_macs) + " backward MACs; peak " + bytes(t.peak_bytes) +
      " (" + t.optimizer + ", batch " + t.batch + ": saved " + bytes(t.saved_bytes) + ", gradients " +
      bytes(t.gradient_bytes) + ", optimizer " + bytes(t.optimizer_bytes) + ")"]);
  }
  for (const [key, value] of facts) {
    const item = el("span", {}, key + " ");
    const b = el("b", { class: key === "diagnostics" && s.errors ? "bad" : "" }, value);
    item.appendChild(b);
    $("#summary").appendChild(item);
  }

  // -- layer table -------------------------------------------------------------------------
  const severity = {};
  const rank = { info: 1, warning: 2, error: 3 };
  for (const d of data.diagnostics)
    if (d.layer && (rank[d.severity] || 0) > (rank[severity[d.layer]] || 0)) severity[d.layer] = d.severity;
  const columns = [["i", "#", "num"], ["name", "name"], ["type", "type"], ["shape", "output"],
    ["params", "params", "num"], ["macs", "MACs", "num"], ["bytes", "memory", "num"], ["rf", "RF", "num"]];
  const maxima = { params: 1, macs: 1, bytes: 1 };
  for (const row of data.layers) for (const key in maxima) maxima[key] = Math.max(maxima[key], row[key]);
  const blockTotals = {};  // folded blocks' bars share the scale of their layers'
  for (const row of data.layers) {
    if (!row.block) continue;
    const t = blockTotals[row.block] = blockTotals[row.block] || { params: 0, macs: 0, bytes: 0 };
    for (const key in maxima) { t[key] += row[key]; maxima[key] = Math.max(maxima[key], t[key]); }
  }
  const thead = $("#layers thead"), tbody = $("#layers tbody");
  const headRow = el("tr");
  columns.forEach(([key, label]) => headRow.appendChild(el("th", { "data-key": key }, label)));
  thead.appendChild(headRow);

  function cell(row, key, cls) {
    const td = el("td", cls ? { class: cls } : {});
    if (key in maxima) {
      const bar = el("div", { class: "bar " + key });
      bar.style.width = (100 * row[key] / maxima[key]).toFixed(1) + "%";
      td.appendChild(bar);
      td.appendChild(el("span", {}, key === "bytes" ? bytes(row[key]) : int(row[key])));
      td.title = key + ": " + int(row[key]);
    } else if (key === "rf") {
      td.textContent = row.rf ? row.rf.join("x") : "";
    } else {
      td.textContent = row[key];
    }
    return td;
  }
  const rowOf = {};
  const blocks = {};
  for (const row of data.layers) {
    if (row.block) (blocks[row.block] = blocks[row.block] || []).push(row);
  }
  const blockRows = {};
  for (const row of data.layers) {
    if (row.block && blocks[row.block].length > 1 && !blockRows[row.block]) {
      const members = blocks[row.block];
      const sum = (key) => members.reduce((total, m) => total + m[key], 0);
      const summaryRow = { i: row.i, name: "\u25B8 " + row.block, type: "block of " + members.length,
        shape: members[members.length - 1].shape, params: sum("params"), macs: sum("macs"),
        bytes: sum("bytes"), rf: members[members.length - 1].rf };
      const tr = el("tr", { class: "block", "data-block": row.block });
      columns.forEach(([key, , cls]) => tr.appendChild(cell(summaryRow, key, cls)));
      tr.addEventListener("click", () => setFolded(row.block, !tr.classList.contains("open")));
      blockRows[row.block] = tr;
      tbody.appendChild(tr);
    }
    const tr = el("tr", { id: "row-" + row.name, "data-name": row.name });
    if (severity[row.name]) tr.classList.add(severity[row.name]);
    if (row.block && blocks[row.block].length > 1) tr.classList.add("member", "hidden");
    columns.forEach(([key, , cls]) => tr.appendChild(cell(row, key, cls)));
    tr.addEventListener("click", () => select(row.name, "table"));
    rowOf[row.name] = tr;
    tbody.appendChild(tr);
  }
  function setFolded(block, open) {
    const tr = blockRows[block];
    if (!tr) return;
    tr.classList.toggle("open", open);
    tr.cells[1].textContent = (open ? "\u25BE " : "\u25B8 ") + block;
    for (const m of blocks[block]) rowOf[m.name].classList.toggle("hidden", !open && !sorted);
  }
  let sorted = null;
  function restoreOrder() {
    sorted = null;
    $$("th", thead).forEach((th) => th.classList.remove("sorted-asc", "sorted-desc"));
    for (const row of data.layers) {
      if (blockRows[row.block] && blocks[row.block][0] === row) tbody.appendChild(blockRows[row.block]);
      tbody.appendChild(rowOf[row.name]);
    }
    for (const block in blockRows) {
      blockRows[block].classList.remove("hidden");
      setFolded(block, blockRows[block].classList.contains("open"));
    }
  }
  function sortBy(key) {
    const th = $("th[data-key='" + key + "']", thead);
    const descending = !th.classList.contains("sorted-desc");
    $$("th", thead).forEach((h) => h.classList.remove("sorted-asc", "sorted-desc"));
    th.classList.add(descending ? "sorted-desc" : "sorted-asc");
    sorted = key;
    const value = (row) => key === "rf" ? (row.rf ? row.rf[0] : -1) : row[key];
    const rows = data.layers.slice().sort((a, b) => {
      const x = value(a), y = value(b);
      const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      return descending ? -order : order;
    });
    for (const block in blockRows) blockRows[block].classList.add("hidden");
    for (const row of rows) { rowOf[row.name].classList.remove("hidden"); tbody.appendChild(rowOf[row.name]); }
  }
  $$("th", thead).forEach((th) => th.addEventListener("click", () =>
    th.dataset.key === "i" ? restoreOrder() : sortBy(th.dataset.key)));
  $("#table-order").addEventListener("click", restoreOrder);
  $("#expand-all").addEventListener("click", () => Object.keys(blockRows).forEach((b) => setFolded(b, true)));
  $("#fold-all").addEventListener("click", () => Object.keys(blockRows).forEach((b) => setFolded(b, false)));

  // -- graph: pan, zoom, select --------------------------------------------------------------
  const holder = $("#graph"), svg = $("svg", holder);
  const full = { w: +svg.getAttribute("width"), h: +svg.getAttribute("height") };
  svg.removeAttribute("width"); svg.removeAttribute("height");
  let view = { x: 0, y: 0, w: full.w, h: full.h };
  const apply = () => svg.setAttribute("viewBox", [view.x, view.y, view.w, view.h].map((v) => v.toFixed(1)).join(" "));
  const aspect = () => holder.clientHeight / Math.max(1, holder.clientWidth);
  function top() {  // the input end, the graph's whole width at 85% (or more when it is wide)
    const w = Math.max(full.w, holder.clientWidth / 0.85);
    view = { x: (full.w - w) / 2, y: 0, w: w, h: w * aspect() };
    apply();
  }
  function fit() {
    const w = Math.max(full.w, full.h / aspect());
    view = { x: (full.w - w) / 2, y: 0, w: w, h: w * aspect() };
    apply();
  }
  function zoom(factor, cx, cy) {
    cx = cx === undefined ? view.x + view.w / 2 : cx;
    cy = cy === undefined ? view.y + view.h / 2 : cy;
    view = { x: cx - (cx - view.x) * factor, y: cy - (cy - view.y) * factor, w: view.w * factor, h: view.h * factor };
    apply();
  }
  function toSvg(event) {
    const box = svg.getBoundingClientRect();
    return [view.x + (event.clientX - box.left) / box.width * view.w, view.y + (event.clientY - box.top) / box.height * view.h];
  }
  holder.addEventListener("wheel", (event) => {
    event.preventDefault();
    if (event.ctrlKey || event.metaKey) {  // pinch or ctrl+wheel: zoom about the pointer
      const [x, y] = toSvg(event);
      zoom(event.deltaY > 0 ? 1.15 : 1 / 1.15, x, y);
      return;
    }
    const box = svg.getBoundingClientRect();  // the wheel scrolls the tall graph
    view.x += event.deltaX / box.width * view.w;
    view.y += event.deltaY / box.height * view.h;
    apply();
  }, { passive: false });
  let drag = null;
  holder.addEventListener("pointerdown", (event) => { drag = { x: event.clientX, y: event.clientY, view: { ...view }, moved: false }; });
  window.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const box = svg.getBoundingClientRect();
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    view.x = drag.view.x - dx / box.width * view.w;
    view.y = drag.view.y - dy / box.height * view.h;
    apply();
  });
  window.addEventListener("pointerup", () => { setTimeout(() => { drag = null; }, 0); });
  $$("[data-zoom]").forEach((button) => button.addEventListener("click", () => {
    const how = button.dataset.zoom;
    if (how === "in") zoom(1 / 1.4); else if (how === "out") zoom(1.4); else if (how === "fit") fit(); else top();
  }));
  const nodeOf = {};
  for (const node of $$(".node", svg)) {
    for (const member of (node.dataset.members || "").split(" ")) if (member) nodeOf[member] = node;
    node.addEventListener("click", (event) => {
      if (drag && drag.moved) return;
      event.stopPropagation();
      const members = (node.dataset.members || "").split(" ").filter(Boolean);
      select(members.length ? members[members.length - 1] : null, "graph", node);
    });
  }
  function centreOn(node) {
    const r = $("rect", node);
    const cx = +r.getAttribute("x") + +r.getAttribute("width") / 2, cy = +r.getAttribute("y") + +r.getAttribute("height") / 2;
    view.x = cx - view.w / 2; view.y = cy - view.h / 2;
    apply();
  }
  function select(name, from, node) {
    $$(".selected").forEach((x) => x.classList.remove("selected"));
    node = node || nodeOf[name];
    if (node) { node.classList.add("selected"); if (from !== "graph") centreOn(node); }
    const tr = name && rowOf[name];
    if (!tr) return;
    const row = data.layers.find((r) => r.name === name);
    if (row && row.block && blockRows[row.block] && !sorted) setFolded(row.block, true);
    tr.classList.remove("hidden");
    tr.classList.add("selected");
    if (from !== "table") tr.scrollIntoView({ block: "center" });
  }
  window.convcalcSelect = select;

  // -- diagnostics -----------------------------------------------------------------------------
  const list = $("#diagnostic-list");
  if (!data.diagnostics.length) list.appendChild(el("li", {}, "none"));
  for (const d of data.diagnostics) {
    const li = el("li", { class: "diagnostic" });
    li.appendChild(el("span", { class: "sev " + d.severity }, d.severity));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("code", {}, d.where));
    li.appendChild(document.createTextNode(" [" + d.code + "] "));
    if (d.layer && !rowOf[d.layer]) {
      li.appendChild(el("strong", {}, d.layer));
      li.appendChild(document.createTextNode(": "));
    } else if (d.layer) {
      const a = el("a", { href: "#row-" + d.layer, class: "layer-link" }, d.layer);
      a.addEventListener("click", (event) => { event.preventDefault(); select(d.layer, "diagnostic"); $("#table-panel").scrollIntoView(); });
      li.appendChild(a);
      li.appendChild(document.createTextNode(": "));
    }
    li.appendChild(document.createTextNode(d.message + (d.hint ? " (hint: " + d.hint + ")" : "")));
    list.appendChild(li);
  }

  // -- receptive fields ------------------------------------------------------------------------
  const colours = ["#ffd400", "#ff7b00", "#ff2e63", "#b05cff", "#2ec4ff", "#3ddc84"];
  const NS = "http://www.w3.org/2000/svg";
  const svgEl = (tag, attrs) => { const n = document.createElementNS(NS, tag); for (const k in attrs) n.setAttribute(k, attrs[k]); return n; };
  if (!data.rf.length || !data.backdrop) {
    $("#rf").style.display = "none";
  } else {
    const [, H, W] = [0].concat(s.input.split("x").slice(1).map(Number));
    const m = Math.round(Math.max(H, W) * 0.25);
    const pic = svgEl("svg", { viewBox: [-m, -m, W + 2 * m, H + 2 * m].join(" "), id: "rf-svg" });
    pic.appendChild(svgEl("image", { href: data.backdrop, x: 0, y: 0, width: W, height: H }));
    const rects = data.rf.map((layer, k) => {
      const r = svgEl("rect", { fill: "none", stroke: colours[k % colours.length], "stroke-width": Math.max(W, H) / 160 });
      pic.appendChild(r); return r;
    });
    const mark = svgEl("circle", { r: Math.max(W, H) / 90, fill: "#fff", stroke: "#000", "stroke-width": Math.max(W, H) / 400 });
    pic.appendChild(mark);
    $("#rf-picture").appendChild(pic);
    $("#rf-help").textContent = "The input region seen by one unit of each layer, on " + data.backdropName +
      " resized to the input. Click the picture to choose the unit under the pointer (default: the centre unit). The grey margin is the zero padding.";
    const table = $("#rf-table");
    const head = el("tr"); ["layer", "unit", "region (rows, columns)", "RF", "stride"].forEach((h) => head.appendChild(el("th", {}, h)));
    table.appendChild(head);
    const cells = data.rf.map((layer, k) => {
      const tr = el("tr"); const name = el("td");
      const sw = el("span", { class: "swatch" }); sw.style.background = colours[k % colours.length];
      name.appendChild(sw); name.appendChild(document.createTextNode(layer.name));
      tr.appendChild(name); const unit = el("td"), region = el("td");
      tr.appendChild(unit); tr.appendChild(region);
      tr.appendChild(el("td", {}, layer.size.join("x"))); tr.appendChild(el("td", {}, layer.stride.join("x")));
      table.appendChild(tr); return [unit, region];
    });
    function choose(y, x) {  // the unit of each layer whose centre is nearest to pixel (y, x)
      data.rf.forEach((layer, k) => {
        const at = [y, x].map((p, a) => {
          const u = Math.round((p + layer.padding[a] - (layer.size[a] - 1) / 2) / layer.stride[a]);
          return Math.min(layer.grid[a] - 1, Math.max(0, u));
        });
        const start = at.map((u, a) => -layer.padding[a] + u * layer.stride[a]);
        const end = start.map((v, a) => v + layer.size[a] - 1);
        rects[k].setAttribute("x", start[1]); rects[k].setAttribute("y", start[0]);
        rects[k].setAttribute("width", end[1] - start[1] + 1); rects[k].setAttribute("height", end[0] - start[0] + 1);
        cells[k][0].textContent = at.join(", ");
        cells[k][1].textContent = "[" + start[0] + ", " + end[0] + "] x [" + start[1] + ", " + end[1] + "]";
      });
      mark.setAttribute("cx", x + 0.5); mark.setAttribute("cy", y + 0.5);
    }
    pic.addEventListener("click", (event) => {
      const box = pic.getBoundingClientRect();
      const x = -m + (event.clientX - box.left) / box.width * (W + 2 * m);
      const y = -m + (event.clientY - box.top) / box.height * (H + 2 * m);
      choose(Math.min(H - 1, Math.max(0, Math.floor(y))), Math.min(W - 1, Math.max(0, Math.floor(x))));
    });
    choose(Math.floor((H - 1) / 2), Math.floor((W - 1) / 2));
  }

  // -- feature maps ----------------------------------------------------------------------------
  if (!data.features.length) $("#features").style.display = "none";
  for (const f of data.features) {
    const figure = el("figure");
    figure.appendChild(el("img", { src: f.uri, alt: "feature maps of " + f.name }));
    figure.appendChild(el("figcaption", {}, f.name + " " + f.shape + " (first " + f.shown + " channels)"));
    $("#feature-grid").appendChild(figure);
  }
  top();
  window.addEventListener("resize", () => { view.h = view.w * aspect(); apply(); });
})();

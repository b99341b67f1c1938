// GridScout pages: each page's shell names what it shows (data-* on <main id="page">); this script
// fills it from the JSON API and keeps it live from the session's event stream. No build step.
"use strict";

const main = document.getElementById("page");
const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
const canControl = main && main.dataset.canControl === "true";
const SVG = "http://www.w3.org/2000/svg";
const ENDED = ["stopped", "finished"];

// ------------------------------------------------------------------ helpers
async function api(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${response.status} ${(await response.json().catch(() => ({}))).detail || ""}`);
  return response.json();
}

async function act(sessionId, action) {
  const response = await fetch(`/api/sessions/${sessionId}/actions`, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(action),
  });
  const body = await response.json().catch(() => ({}));
  flash(response.ok ? `${action.kind} sent (event #${body.seq})` : `${action.kind} refused: ${JSON.stringify(body.detail)}`,
    !response.ok);
  return response.ok;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function flash(text, error = false) {
  let box = document.getElementById("flash");
  if (!box) { box = el("p", { id: "flash", role: "status" }); document.body.append(box); }
  box.textContent = text;
  box.className = error ? "error" : "";
}

const fmt = (value, digits = 1) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
const clock = (seconds) => {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  return `${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
};
const button = (label, onclick, attrs = {}) => el("button", { type: "button", onclick, ...attrs }, label);
// score in [0, 1] -> red (0) through yellow to green (1)
const scoreColour = (score) => `hsl(${Math.round(120 * Math.max(0, Math.min(1, score)))}, 85%, 50%)`;

// Calls `refresh` once per burst of events (after `delay` ms), so a busy session does not flood the API.
function debounced(refresh, delay = 300) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(refresh, delay); };
}

// The session's live events: `onEvent(event)` for each new one after `afterSeq` (default: from now on).
async function live(sessionId, afterSeq, onEvent) {
  if (afterSeq === undefined) {
    const latest = await api(`/api/sessions/${sessionId}/events?latest=true&limit=1`);
    afterSeq = latest.data.length ? latest.data[0].seq : 0;
  }
  const source = new EventSource(`/api/sessions/${sessionId}/stream?after_seq=${afterSeq}`);
  source.onmessage = (message) => onEvent(JSON.parse(message.data));
  return source;
}

// An image with an SVG overlay in the image's own pixel coordinates ((x, y) = column, row).
function overlaid(src, shape, alt) {
  const [rows, cols] = shape;
  const box = el("div", { class: "overlaid" });
  const img = el("img", { src, alt, draggable: "false" });
  const layer = svg("svg", { viewBox: `-0.5 -0.5 ${cols} ${rows}`, preserveAspectRatio: "none" });
  box.append(img, layer);
  return { box, layer };
}

function pointerPx(layer, event) {
  const point = layer.createSVGPoint();
  point.x = event.clientX; point.y = event.clientY;
  return point.matrixTransform(layer.getScreenCTM().inverse());
}

// ------------------------------------------------------------------ pages
const pages = {
  async sessions() {
    const render = async () => {
      const list = await api("/api/sessions");
      const rows = list.data.map((s) => el("tr", {},
        el("td", {}, el("a", { href: `/sessions/${s.id}` }, s.name)), el("td", { class: `state ${s.state}` }, s.state),
        el("td", {}, s.groups.join(", ")), el("td", {}, s.grids), el("td", {}, `${s.good_exposures} / ${s.exposures}`),
        el("td", {}, clock(s.microscope_time_s)), el("td", {}, new Date(s.created_at).toLocaleString())));
      main.replaceChildren(el("h1", {}, "Sessions"), list.count ? el("table", {},
        el("thead", {}, el("tr", {}, ["Session", "State", "Groups", "Grids", "Good / exposures", "Microscope time", "Started"]
          .map((h) => el("th", {}, h)))), el("tbody", {}, rows)) : el("p", {}, "No session in your groups yet."));
    };
    await render();
    setInterval(render, 5000);
  },

  async session() {
    const sid = main.dataset.session;
    const log = el("ol", { id: "events", reversed: "" });
    const summary = el("section", { id: "summary" });
    const refresh = async () => {
      const s = await api(`/api/sessions/${sid}`);
      document.title = `${s.name} · GridScout`;
      const ended = ENDED.includes(s.state);
      const controls = canControl && !ended ? el("div", { class: "controls" },
        button("Pause", () => act(sid, { kind: "pause" }), { disabled: s.state === "paused" || null }),
        button("Resume", () => act(sid, { kind: "resume" }), { disabled: s.state !== "paused" || null }),
        button("Stop", () => confirm("Stop the session?") && act(sid, { kind: "stop" }))) : "";
      const slots = s.cassette.map((g) => el("tr", { "data-grid": g.id },
        el("td", {}, g.slot), el("td", {}, el("a", { href: `/sessions/${sid}/grids/${g.id}` }, g.name || `grid ${g.slot}`)),
        el("td", { class: `state ${g.state}` }, g.state), el("td", {}, g.verdict ? g.verdict.replaceAll("_", " ") : "–"),
        el("td", {}, `${g.squares.visited || 0} / ${g.squares.selected || 0} / ${g.squares.total}`),
        el("td", {}, `${g.good_exposures} / ${g.exposures}`), el("td", {}, clock(g.scope_time_used_s)),
        el("td", {}, canControl && g.state === "screening" && !ended
          ? button("Skip grid", () => act(sid, { kind: "skip_grid", grid_id: g.id })) : "")));
      summary.replaceChildren(
        el("h1", {}, s.name, " ", el("span", { class: `state ${s.state}`, id: "session-state" }, s.state)),
        el("p", {}, `Microscope time ${clock(s.microscope_time_s)} · ${s.grids} grids · `,
          `${s.good_exposures} good of ${s.exposures} exposures · groups: ${s.groups.join(", ") || "none"} · `,
          el("a", { href: `/sessions/${sid}/quality` }, "quality over time")),
        controls,
        el("table", { class: "cassette" }, el("thead", {}, el("tr", {},
          ["Slot", "Grid", "State", "Verdict", "Squares visited / selected / found", "Good / exposures",
            "Microscope time", ""].map((h) => el("th", {}, h)))), el("tbody", {}, slots)));
      return s;
    };
    const s = await refresh();
    const recent = await api(`/api/sessions/${sid}/events?latest=true&limit=200`);
    const add = (e) => log.prepend(el("li", { "data-seq": e.seq, class: e.kind },
      el("span", { class: "seq" }, `#${e.seq}`), " ", el("span", { class: "time" }, clock(e.scope_time_s)), " ",
      el("b", {}, e.kind), " ", el("span", { class: "payload" }, JSON.stringify(e.payload))));
    recent.data.forEach(add);
    main.replaceChildren(summary, el("h2", {}, "Events"), log);
    const later = debounced(refresh);
    const last = recent.data.length ? recent.data[recent.data.length - 1].seq : 0;
    live(sid, Math.max(last, s.last_seq), (e) => { add(e); later(); });
  },

  async grid() {
    const sid = main.dataset.session, gid = main.dataset.grid;
    const grid = await api(`/api/sessions/${sid}/grids/${gid}`);
    document.title = `Grid ${grid.slot} · GridScout`;
    const head = el("div", {},
      el("p", { class: "crumbs" }, el("a", { href: `/sessions/${sid}` }, "session"), " › grid ", grid.slot),
      el("h1", {}, `Grid ${grid.slot} `, el("small", {}, grid.name), " ", el("span", { class: `state ${grid.state}` }, grid.state)));
    if (!grid.atlas_image_id) {
      main.replaceChildren(head, el("p", {}, "No atlas yet."));
      live(sid, undefined, (e) => e.kind === "squares_found" && location.reload());
      return;
    }
    const atlas = await api(`/api/sessions/${sid}/images/${grid.atlas_image_id}`);
    const { box, layer } = overlaid(`/api/sessions/${sid}/images/${atlas.id}/thumbnail.png`, atlas.shape_px, "atlas");
    layer.id = "atlas-overlay";
    const side = el("section", { class: "side" });
    const draw = async () => {
      const squares = await api(`/api/sessions/${sid}/grids/${gid}/squares`);
      const half = 0.35 * gridPitch(squares.map((q) => q.centre_px), Math.max(...atlas.shape_px) / 30);
      layer.replaceChildren(...squares.map((q) => {
        const shape = svg("rect", { x: q.centre_px[0] - half, y: q.centre_px[1] - half, width: 2 * half, height: 2 * half,
          class: `square ${q.state} ${q.requested.join(" ")}`, stroke: scoreColour(q.score), "data-id": q.id,
          "data-label": q.label, tabindex: "0" });
        shape.append(svg("title"));
        shape.firstChild.textContent = `${q.label}: score ${q.score.toFixed(2)}, ${q.state}`;
        shape.addEventListener("click", () => { location.href = `/sessions/${sid}/squares/${q.id}`; });
        return shape;
      }));
      layer.dataset.rendered = String(squares.length);
      const targets = squares.filter((q) => ["selected", "visited"].includes(q.state));
      const order = targets.map((q) => q.id);
      const move = (i, step) => {
        const ids = order.slice();
        [ids[i], ids[i + step]] = [ids[i + step], ids[i]];
        act(sid, { kind: "reorder_targets", grid_id: gid, order: ids });
      };
      side.replaceChildren(el("h2", {}, `Targets (${targets.length} of ${squares.length} squares)`),
        el("ol", { class: "targets" }, targets.map((q, i) => el("li", { "data-id": q.id },
          el("a", { href: `/sessions/${sid}/squares/${q.id}` }, q.label), ` ${q.score.toFixed(2)} ${q.state} `,
          q.requested.length ? el("em", {}, q.requested.join(", ").replaceAll("_", " ") + " asked ") : "",
          canControl && q.state === "selected" ? [
            button("↑", () => move(i, -1), { disabled: i === 0 || null, title: "earlier" }),
            button("↓", () => move(i, 1), { disabled: i === targets.length - 1 || null, title: "later" }),
            button("Remove", () => act(sid, { kind: "remove_target", square_id: q.id })),
            button("Bad", () => act(sid, { kind: "mark_square_bad", square_id: q.id }))] : ""))),
        el("p", { class: "legend" }, "Outline colour: score (red 0 → green 1). Thick: selected; filled: visited; ",
          "dashed: removed or bad."));
    };
    main.replaceChildren(head, el("div", { class: "columns" }, box, side));
    await draw();
    live(sid, undefined, debounced(draw));
  },

  async square() {
    const sid = main.dataset.session, qid = main.dataset.square;
    const holePanel = el("section", { id: "hole" });
    const view = el("div", {});
    let adding = true;
    const draw = async () => {
      const q = await api(`/api/sessions/${sid}/squares/${qid}`);
      document.title = `${q.label} · GridScout`;
      const head = el("div", {},
        el("p", { class: "crumbs" }, el("a", { href: `/sessions/${sid}` }, "session"), " › ",
          el("a", { href: `/sessions/${sid}/grids/${q.grid_id}` }, "grid"), " › ", q.label),
        el("h1", {}, q.label, " ", el("span", { class: `state ${q.state}`, id: "square-state" }, q.state),
          " ", el("small", {}, `score ${q.score.toFixed(2)}`)),
        q.requested.length ? el("p", { class: "requested" }, `asked: ${q.requested.join(", ")}`) : "",
        canControl && !["visited", "removed", "bad"].includes(q.state) ? el("div", { class: "controls" },
          button("Remove square", () => act(sid, { kind: "remove_target", square_id: qid }).then(draw), { id: "remove-square" }),
          button("Mark square bad", () => act(sid, { kind: "mark_square_bad", square_id: qid }).then(draw))) : "");
      if (!q.image || !q.image.shape_px) {
        view.replaceChildren(head, el("p", { id: "no-image" }, "This square has not been imaged yet."));
        return;
      }
      const { box, layer } = overlaid(`/api/sessions/${sid}/images/${q.image.id}/thumbnail.png`, q.image.shape_px,
        `square ${q.label}`);
      layer.id = "square-overlay";
      for (const h of q.holes) {
        const circle = svg("circle", { cx: h.centre_px[0], cy: h.centre_px[1], r: Math.max(h.radius_px, 2),
          class: `hole ${h.state} ${h.requested.join(" ")}`, stroke: scoreColour(h.score), "data-id": h.id,
          "data-label": h.label });
        circle.addEventListener("click", (event) => { event.stopPropagation(); showHole(h); });
        layer.append(circle);
      }
      for (const t of q.added_targets) {
        layer.append(svg("path", { d: `M${t.x_px - 8},${t.y_px}h16M${t.x_px},${t.y_px - 8}v16`, class: "added" }));
      }
      layer.dataset.rendered = String(q.holes.length);
      layer.addEventListener("click", (event) => {
        if (!canControl || !adding) return;
        const p = pointerPx(layer, event);
        act(sid, { kind: "add_target", square_id: qid, x_px: Math.max(0, p.x), y_px: Math.max(0, p.y) }).then(draw);
      });
      const selected = q.holes.filter((h) => ["selected", "exposed"].includes(h.state));
      const order = (q.order || []).length ? q.order : selected.map((h) => h.label);
      const byLabel = Object.fromEntries(q.holes.map((h) => [h.label, h]));
      const targets = order.map((label) => byLabel[label]).filter(Boolean);
      const move = (i, step) => {
        const ids = targets.map((h) => h.id);
        [ids[i], ids[i + step]] = [ids[i + step], ids[i]];
        act(sid, { kind: "reorder_targets", square_id: qid, order: ids }).then(draw);
      };
      view.replaceChildren(head, el("div", { class: "columns" }, box, el("section", { class: "side" },
        canControl ? el("label", {}, el("input", { type: "checkbox", id: "add-mode", checked: adding || null,
          onchange: (event) => { adding = event.target.checked; } }), " click the image to add a target") : "",
        el("h2", {}, `Targets (${targets.length} of ${q.holes.length} holes)`),
        el("ol", { class: "targets" }, targets.map((h, i) => el("li", {}, `${h.label} ${h.score.toFixed(2)} ${h.state} `,
          canControl && h.state === "selected" ? [
            button("↑", () => move(i, -1), { disabled: i === 0 || null }),
            button("↓", () => move(i, 1), { disabled: i === targets.length - 1 || null })] : ""))),
        holePanel)));
    };
    const showHole = async (h) => {
      const exposures = (await api(`/api/sessions/${sid}/exposures?limit=5000`)).data
        .filter((e) => e.square_id === qid && e.hole === h.label);
      holePanel.replaceChildren(el("h2", {}, `Hole ${h.label}`),
        el("p", {}, `score ${h.score.toFixed(2)} · ${h.state} · radius ${fmt(h.radius_px)} px`),
        h.requested.length ? el("p", {}, `asked: ${h.requested.join(", ")}`) : "",
        el("ul", {}, exposures.map((e) => el("li", {}, el("a", { href: `/sessions/${sid}/exposures/${e.id}` }, e.key),
          ` ${e.verdict || "not assessed"}`))),
        canControl && h.state === "selected"
          ? button("Remove hole", () => act(sid, { kind: "remove_target", square_id: qid, hole_id: h.id }).then(draw)) : "");
    };
    main.replaceChildren(view);
    await draw();
    live(sid, undefined, debounced(draw, 500));
  },

  async exposure() {
    const sid = main.dataset.session, eid = main.dataset.exposure;
    const draw = async () => {
      const x = await api(`/api/sessions/${sid}/exposures/${eid}`);
      const a = x.assessment || {};
      const metrics = [["Verdict", x.verdict || "not assessed"], ["Defocus (µm)", fmt(x.defocus_um, 2)],
        ["CTF fit resolution (Å)", fmt(x.fit_resolution_angstrom)], ["Ice thickness (nm)", fmt(x.ice_thickness_nm, 0)],
        ["Total drift (Å)", fmt(x.total_drift_angstrom)], ["Particles per µm²", fmt(x.particles_per_um2, 0)],
        ["Crystalline-ice score", fmt(a.crystalline_ice_score, 2)], ["Dose (e⁻/Å²)", fmt(x.dose_e_per_angstrom2)],
        ["Microscope time", clock(x.scope_time_s)]];
      main.replaceChildren(
        el("p", { class: "crumbs" }, el("a", { href: `/sessions/${sid}` }, "session"), " › ",
          el("a", { href: `/sessions/${sid}/squares/${x.square_id}` }, x.square), " › ", x.key),
        el("h1", {}, `Exposure ${x.key} `, el("span", { class: `verdict ${x.verdict}` }, x.verdict || "pending")),
        x.reasons.length ? el("ul", { class: "reasons" }, x.reasons.map((r) => el("li", {}, r))) : "",
        el("div", { class: "figures" },
          el("figure", {}, el("img", { src: `/api/sessions/${sid}/images/${x.image_id}/thumbnail.png`, alt: "micrograph" }),
            el("figcaption", {}, "micrograph")),
          el("figure", {}, el("img", { src: `/api/sessions/${sid}/exposures/${eid}/spectrum.png`, alt: "power spectrum",
            class: "spectrum" }), el("figcaption", {}, x.fit_resolution_angstrom ? "power spectrum; right: the fitted CTF's zeros"
            : "power spectrum (no CTF fit)")),
          el("figure", {}, driftPlot(a.motion), el("figcaption", {}, "drift (Å), frame by frame"))),
        el("table", { class: "metrics" }, metrics.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v)))),
        review(x, draw));
    };
    await draw();
  },

  async quality() {
    const sid = main.dataset.session;
    const plots = [["fit_resolution_angstrom", "CTF fit resolution (Å)"], ["ice_thickness_nm", "Ice thickness (nm)"],
      ["total_drift_angstrom", "Total drift (Å)"], ["particles_per_um2", "Particles per µm²"]];
    const draw = async () => {
      const list = await api(`/api/sessions/${sid}/exposures?limit=5000`);
      main.replaceChildren(el("p", { class: "crumbs" }, el("a", { href: `/sessions/${sid}` }, "session"), " › quality"),
        el("h1", {}, `Quality over time (${list.count} exposures)`),
        el("p", { class: "legend" }, "green good · orange bad · grey unusable or pending; click a point"),
        el("div", { class: "plots" }, plots.map(([key, label]) => scatter(list.data, key, label, sid))));
    };
    await draw();
    live(sid, undefined, debounced(draw, 1000));
  },
};

// The grid's square pitch in atlas pixels: the median distance from a sample of squares to their nearest neighbour.
function gridPitch(centres, fallback) {
  if (centres.length < 2) return fallback;
  const sample = centres.filter((_, i) => i % Math.ceil(centres.length / 100) === 0);
  const nearest = sample.map(([x, y]) => Math.min(...centres.map(([u, v]) => Math.hypot(u - x, v - y) || Infinity)));
  nearest.sort((a, b) => a - b);
  return nearest[Math.floor(nearest.length / 2)];
}

function review(x, redraw) {
  const sid = main.dataset.session;
  const notes = el("ul", { class: "notes" },
    x.ratings.map((r) => el("li", {}, `${"★".repeat(r.stars)}${"☆".repeat(5 - r.stars)} by ${r.user}`)),
    x.annotations.map((n) => el("li", {}, `${n.user}: ${n.text}`)));
  if (!canControl) return el("section", {}, el("h2", {}, "Review"), notes);
  const text = el("textarea", { id: "note", rows: "2", maxlength: "2000", placeholder: "a note on this exposure" });
  return el("section", {}, el("h2", {}, "Review"),
    el("div", { class: "stars" }, [1, 2, 3, 4, 5].map((n) =>
      button("★".repeat(n), () => act(sid, { kind: "rate", exposure_id: x.id, stars: n }).then(redraw), { title: `${n} of 5` }))),
    text, button("Add note", () => text.value.trim() &&
      act(sid, { kind: "annotate", exposure_id: x.id, text: text.value.trim() }).then(redraw)), notes);
}

function driftPlot(motion) {
  const plot = svg("svg", { viewBox: "-60 -60 120 120", class: "drift" });
  if (!motion || !motion.shifts_angstrom || !motion.shifts_angstrom.length) {
    const text = svg("text", { x: 0, y: 0, "text-anchor": "middle" });
    text.textContent = "no movie";
    plot.append(text);
    return plot;
  }
  const shifts = motion.shifts_angstrom;
  const extent = Math.max(1, ...shifts.flat().map(Math.abs));
  const points = shifts.map(([x, y]) => `${(50 * x) / extent},${(50 * y) / extent}`).join(" ");
  plot.append(svg("polyline", { points, class: "path" }));
  shifts.forEach(([x, y], i) => plot.append(svg("circle", { cx: (50 * x) / extent, cy: (50 * y) / extent, r: i ? 1.5 : 3 })));
  const scale = svg("text", { x: -58, y: 58 });
  scale.textContent = `±${extent.toFixed(1)} Å`;
  plot.append(scale);
  return plot;
}

function scatter(items, key, label, sid) {
  const w = 460, h = 200, pad = 36;
  const points = items.filter((e) => e[key] !== null);
  const plot = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "scatter", "data-metric": key });
  const title = svg("text", { x: pad, y: 14 });
  title.textContent = label;
  plot.append(title, svg("line", { x1: pad, y1: h - pad, x2: w - 8, y2: h - pad, class: "axis" }),
    svg("line", { x1: pad, y1: 20, x2: pad, y2: h - pad, class: "axis" }));
  if (!points.length) return plot;
  const t = points.map((e) => e.scope_time_s), v = points.map((e) => e[key]);
  const [t0, t1, v0, v1] = [Math.min(...t), Math.max(...t), Math.min(...v), Math.max(...v)];
  const sx = (x) => pad + ((x - t0) / Math.max(t1 - t0, 1)) * (w - pad - 12);
  const sy = (y) => h - pad - ((y - v0) / Math.max(v1 - v0, 1e-9)) * (h - pad - 24);
  for (const [text, x, y] of [[fmt(v1), 2, 24], [fmt(v0), 2, h - pad], [clock(t0), pad, h - 20], [clock(t1), w - 60, h - 20]]) {
    const tick = svg("text", { x, y, class: "tick" });
    tick.textContent = text;
    plot.append(tick);
  }
  for (const e of points) {
    const dot = svg("circle", { cx: sx(e.scope_time_s), cy: sy(e[key]), r: 4, class: `dot ${e.verdict || "pending"}` });
    dot.append(svg("title"));
    dot.firstChild.textContent = `${e.key}: ${fmt(e[key])} (${e.verdict || "pending"})`;
    dot.addEventListener("click", () => { location.href = `/sessions/${sid}/exposures/${e.id}`; });
    plot.append(dot);
  }
  return plot;
}

// ------------------------------------------------------------------ start
const logout = document.getElementById("logout");
if (logout) {
  logout.addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf } });
    location.href = "/login";
  });
}
if (main && pages[main.dataset.page]) {
  pages[main.dataset.page]().catch((error) => {
    main.replaceChildren(el("p", { class: "error", role: "alert" }, `Could not load this page: ${error.message}`));
  });
}

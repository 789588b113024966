// The explorer page: calls the service's public API from the browser and draws into the Bokeh figures the page
// embeds (service/rendering/explorer_plots.py names their data sources and the window event). Plain JavaScript,
// no build step. The page's state (TCE, sector, window) lives in the URL.
"use strict";

(() => {
  const root = document.getElementById("explorer");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const state = JSON.parse(root.dataset.state);
  const config = JSON.parse(root.dataset.config);
  const FPS = 20;
  const FIGURES = { time: "lc_time", phase: "lc_phase" };
  let mode = state.tic !== null ? "dv" : "ffi"; // "dv": a TCE's DV light curve; "ffi": the FFI light curve
  let lightcurveSector = state.sector; // the sector the FFI light curve came from
  let shown = { start: null, end: null }; // the first and last frame times of the movie shown
  let windowToken = 0; // a newer window cancels what an older one still waits for

  // ---- talking to the API -------------------------------------------------------------------------------------

  class Problem extends Error {
    constructor(doc) {
      super(doc.detail || doc.title || "The request failed.");
      this.doc = doc;
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function formatBytes(n) {
    if (!n) return "0 B";
    const units = ["B", "kB", "MB", "GB"];
    const i = Math.min(units.length - 1, Math.floor(Math.log10(n) / 3));
    return `${(n / 10 ** (3 * i)).toFixed(i ? 1 : 0)} ${units[i]}`;
  }

  async function problemOf(response) {
    try {
      return new Problem(await response.json());
    } catch {
      return new Problem({ detail: `${response.status} ${response.statusText}`.trim() });
    }
  }

  // A query string from the defined values of ``params``.
  function query(params) {
    const q = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== null && value !== undefined) q.set(key, value);
    }
    const text = q.toString();
    return text ? `?${text}` : "";
  }

  // The URL of a target product: /tic/{tic}/{path} for a TIC, /{path}?ra=&dec= for a position.
  function targetUrl(path, params = {}) {
    if (state.tic !== null) return `/tic/${state.tic}/${path}${query(params)}`;
    return `/${path}${query({ ra: state.ra, dec: state.dec, ...params })}`;
  }

  // Follow a job (a cold cutout being fetched from MAST, or a render) until it is done, showing its progress.
  async function follow(job, status, what, token) {
    let current = job;
    while (current.status !== "done") {
      if (current.status === "failed") throw new Problem(current.problem || { detail: `${what} failed.` });
      if (token !== undefined && token !== windowToken) throw new Error("superseded");
      status.textContent = `${what}: job ${current.status}, ${formatBytes(current.bytes_received)} received from MAST…`;
      status.className = "status busy";
      await sleep(1000);
      const response = await fetch(`/jobs/${current.id}`);
      if (!response.ok) throw await problemOf(response);
      current = await response.json();
    }
  }

  // The answer of ``url`` once it is ready: cutout-backed products answer 202 with a job while MAST works.
  // ``head`` only learns that it is ready (and its headers), for what the browser then loads itself.
  async function ready(url, status, what, { head = false, token } = {}) {
    const sep = url.includes("?") ? "&" : "?";
    for (;;) {
      const response = await fetch(`${url}${sep}wait=0`, { method: head ? "HEAD" : "GET" });
      if (response.status === 202) {
        const job = head ? await (await fetch(response.headers.get("Location"))).json() : await response.json();
        await follow(job, status, what, token);
        continue;
      }
      if (!response.ok) throw await problemOf(head ? await fetch(`${url}${sep}wait=0`) : response);
      return response;
    }
  }

  async function getJson(url) {
    const response = await fetch(url);
    if (!response.ok) throw await problemOf(response);
    return response.json();
  }

  function say(status, text, kind = "") {
    status.textContent = text;
    status.className = `status ${kind}`.trim();
  }

  function fail(status, error) {
    if (error.message === "superseded") return;
    say(status, error instanceof Problem ? error.message : `Something went wrong: ${error.message}`, "error");
  }

  // ---- the URL ------------------------------------------------------------------------------------------------

  function syncUrl() {
    const params = {};
    if (state.tic === null) Object.assign(params, { ra: state.ra, dec: state.dec });
    if (state.tce) params.tce = state.tce;
    if (state.sector) params.sector = state.sector;
    if (state.start !== null && state.end !== null) Object.assign(params, { start: state.start, end: state.end });
    const path = state.tic !== null ? `/explore/${state.tic}` : "/explore";
    history.replaceState(null, "", `${path}${query(params)}`);
  }

  // ---- the plots ----------------------------------------------------------------------------------------------

  // A model of the embedded Bokeh documents by type and name (the names are explorer_plots.py's).
  // Not ``get_model_by_name``: it reads every model's name, and some models' names are "unset" and throw.
  function find(type, name) {
    for (const doc of Bokeh.documents) {
      for (const model of doc.all_models) {
        if (model.type === type && model.name === name) return model;
      }
    }
    return null;
  }

  const source = (name) => find("ColumnDataSource", name);

  function extent(values) {
    let low = Infinity;
    let high = -Infinity;
    for (const v of values) {
      if (v < low) low = v;
      if (v > high) high = v;
    }
    return [low, high];
  }

  function percentile(sorted, p) {
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((p / 100) * (sorted.length - 1))))];
  }

  // Robust limits: one outlier must not flatten the curve; the dips stay in view.
  function setRanges(view, xs, ys) {
    const plot = find("Figure", FIGURES[view]);
    if (!plot || xs.length === 0) return;
    // The robust core (0.5–99.5th percentiles) widened by its own span, but never past the data: deep dips stay
    // whole, a lone outlier far beyond them does not flatten the curve.
    const sorted = Float64Array.from(ys).sort();
    const core = [percentile(sorted, 0.5), percentile(sorted, 99.5)];
    const span = core[1] - core[0] || 1;
    const low = Math.max(sorted[0], core[0] - span);
    const high = Math.min(sorted[sorted.length - 1], core[1] + span);
    const pad = 0.05 * (high - low || 1);
    const [xmin, xmax] = extent(xs);
    const ranges = [
      [plot.x_range, xmin, xmax],
      [plot.y_range, low - pad, high + pad],
    ];
    for (const [range, start, end] of ranges) {
      range.setv({ start, end, reset_start: start, reset_end: end });
    }
  }

  // Finite (x, y) pairs of two columns (JSON null is a missing value), y scaled by ``scale``.
  function pairs(xs, ys, scale = 1, keep = () => true) {
    const x = [];
    const y = [];
    for (let i = 0; i < xs.length; i++) {
      const a = xs[i];
      const b = ys[i];
      if (a !== null && b !== null && Number.isFinite(a) && Number.isFinite(b) && keep(i)) {
        x.push(a);
        y.push(b * scale);
      }
    }
    return [Float64Array.from(x), Float64Array.from(y)];
  }

  // The points of a line where it bends: a transit model is flat between transits, and drawing its ~20k points
  // costs as much as the light curve itself (a software-rendered frame took twice as long with them).
  function corners(xs, ys) {
    const keep = [];
    for (let i = 0; i < xs.length; i++) {
      if (i === 0 || i === xs.length - 1 || ys[i] !== ys[i - 1] || ys[i] !== ys[i + 1]) keep.push(i);
    }
    return { x: Float64Array.from(keep, (i) => xs[i]), y: Float64Array.from(keep, (i) => ys[i]) };
  }

  function fill(name, data) {
    const model = source(name);
    if (model) model.data = data;
  }

  async function embedPlots() {
    const items = JSON.parse($("plots").textContent);
    await Bokeh.embed.embed_item(items.time, "lightcurve");
    if (mode === "dv") await Bokeh.embed.embed_item(items.phase, "lightcurve-phase");
    window.addEventListener(config.window_event, (event) => openWindow(event.detail.start, event.detail.end));
  }

  function showView(which) {
    $("lightcurve").hidden = which !== "time";
    $("lightcurve-phase").hidden = which !== "phase";
    $("view-time").setAttribute("aria-pressed", String(which === "time"));
    $("view-phase").setAttribute("aria-pressed", String(which === "phase"));
  }

  // ---- TCEs and the DV light curve ----------------------------------------------------------------------------

  function describeTce(summary) {
    const rows = [
      ["Period", summary.period_days, (v) => `${v.toFixed(4)} d`],
      ["Epoch", summary.epoch_btjd, (v) => `BTJD ${v.toFixed(4)}`],
      ["Depth", summary.depth_ppm, (v) => `${Math.round(v).toLocaleString("en")} ppm`],
      ["Duration", summary.duration_hours, (v) => `${v.toFixed(2)} h`],
      ["SNR", summary.snr, (v) => v.toFixed(1)],
      ["Transits", summary.n_transits, (v) => String(v)],
      ["Planet radius", summary.planet_radius_earth, (v) => `${v.toFixed(2)} R⊕`],
      ["Tmag", summary.tessmag, (v) => v.toFixed(2)],
      ["Teff", summary.teff_k, (v) => `${Math.round(v)} K`],
    ];
    const list = $("tce-summary");
    list.replaceChildren();
    for (const [label, value, show] of rows) {
      if (value === null || value === undefined) continue;
      const term = document.createElement("dt");
      term.textContent = label;
      const detail = document.createElement("dd");
      detail.textContent = show(value);
      list.append(term, detail);
    }
  }

  function listTces(tces) {
    const list = $("tce-list");
    list.replaceChildren();
    for (const tce of tces) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = tce.id;
      button.setAttribute("aria-pressed", String(tce.id === state.tce));
      button.addEventListener("click", () => {
        if (tce.id === state.tce) return;
        state.tce = tce.id;
        syncUrl();
        listTces(tces);
        loadTce();
      });
      item.append(button);
      list.append(item);
    }
  }

  async function loadDv() {
    const status = $("tces-status");
    let tces;
    try {
      tces = (await getJson(`/tic/${state.tic}/tces`)).tces;
    } catch (error) {
      if (error instanceof Problem && error.doc.status === 404) {
        say(status, "No TESS Data Validation results (TCEs) for this star: showing its FFI light curve instead.");
      } else {
        fail(status, error);
      }
      return false;
    }
    const short = (id) => id.replace(/^.*:/, "").replace(/^TCE_/i, "");
    const wanted = state.tce && tces.find((t) => t.id === state.tce || short(t.id) === short(state.tce));
    state.tce = (wanted || tces[0]).id;
    say(status, `${tces.length} TCE${tces.length === 1 ? "" : "s"} at ExoMAST.`);
    listTces(tces);
    await loadTce();
    return true;
  }

  async function loadTce() {
    const tce = encodeURIComponent(state.tce);
    const base = `/tic/${state.tic}/tces/${tce}`;
    downloads();
    getJson(base)
      .then((answer) => describeTce(answer.summary))
      .catch((error) => fail($("tces-status"), error));
    const status = $("lightcurve-status");
    say(status, "Loading the DV light curve…", "busy");
    try {
      const lc = await getJson(`${base}/lightcurve?columns=TIME,LC_DETREND,PHASE,MODEL_INIT`);
      const c = lc.columns;
      const [t, flux] = pairs(c.TIME, c.LC_DETREND, 1e6);
      const [tm, model] = pairs(c.TIME, c.MODEL_INIT, 1e6);
      fill("lc", { x: t, y: flux });
      fill("model", corners(tm, model));
      setRanges("time", t, flux);
      const [phase, phased] = pairs(c.PHASE, c.LC_DETREND, 1e6);
      fill("phase_lc", { x: phase, y: phased });
      const order = Array.from(c.PHASE.keys()).filter((i) => c.PHASE[i] !== null && c.MODEL_INIT[i] !== null);
      order.sort((a, b) => c.PHASE[a] - c.PHASE[b]);
      fill("phase_model", corners(Float64Array.from(order, (i) => c.PHASE[i]), Float64Array.from(order, (i) => c.MODEL_INIT[i] * 1e6)));
      setRanges("phase", phase, phased);
      performance.mark("explorer:lightcurve-drawn"); // benchmarks/bench_explorer.py reads it
      const [first, last] = extent(t);
      say(status, `${t.length.toLocaleString("en")} points, sectors ${lc.sectors}, BTJD ${first.toFixed(2)}–${last.toFixed(2)}.`);
    } catch (error) {
      fail(status, error);
    }
    await loadEvents(`${base}/events`);
  }

  // ---- the FFI light curve (stars without TCEs, positions) ----------------------------------------------------

  async function loadFfi() {
    mode = "ffi";
    $("view-phase").disabled = true;
    $("tces").hidden = state.tic === null;
    const status = $("lightcurve-status");
    say(status, "Making the light curve from the full-frame images…", "busy");
    try {
      const url = targetUrl("ffi-lightcurve", { format: "json", sector: state.sector });
      const lc = await (await ready(url, status, "FFI cutout from MAST")).json();
      lightcurveSector = lc.sector;
      const c = lc.columns;
      const good = c.FLUX.filter((v, i) => v !== null && c.QUALITY[i] === 0).sort((a, b) => a - b);
      const median = percentile(good, 50);
      const [t, flux] = pairs(c.TIME, c.FLUX.map((v) => (v === null ? null : v / median - 1)), 1e6, (i) => c.QUALITY[i] === 0);
      fill("lc", { x: t, y: flux });
      setRanges("time", t, flux);
      performance.mark("explorer:lightcurve-drawn");
      say(status, `${t.length.toLocaleString("en")} good frames of sector ${lc.sector} (aperture photometry of a ${lc.size_px}×${lc.size_px} cutout).`);
      downloads();
      await loadEvents(targetUrl("ffi-lightcurve/events", { sector: lc.sector }));
    } catch (error) {
      fail(status, error);
      say($("events-status"), "No events without a light curve.");
    }
  }

  // ---- events -------------------------------------------------------------------------------------------------

  function eventLabel(event) {
    const depth = `${Math.round(event.depth_ppm).toLocaleString("en")} ppm`;
    const notes = [event.in_model_transit ? "in a predicted transit" : "", event.near_gap ? "near a gap" : ""];
    const extra = notes.filter(Boolean).join(", ");
    return `BTJD ${event.t0_btjd.toFixed(3)} · ${event.kind} · ${depth} · SNR ${event.snr.toFixed(1)} · ${event.duration_hours.toFixed(1)} h${extra ? ` (${extra})` : ""}`;
  }

  async function loadEvents(url) {
    const status = $("events-status");
    say(status, "Looking for events…", "busy");
    try {
      const answer = await getJson(url);
      const list = $("event-list");
      list.replaceChildren();
      for (const event of answer.events) {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "event";
        button.dataset.t0 = String(event.t0_btjd);
        button.textContent = eventLabel(event);
        // The event's window padded by its own duration either side: the movie shows before, during and after.
        const pad = Math.max(event.end_btjd - event.start_btjd, 0.1);
        button.addEventListener("click", () => openWindow(event.start_btjd - pad, event.end_btjd + pad));
        item.append(button);
        list.append(item);
      }
      fill("events", {
        x0: answer.events.map((e) => e.start_btjd),
        x1: answer.events.map((e) => e.end_btjd),
      });
      const transits = answer.predicted_transits;
      if (transits) {
        fill("transits", { x: transits.transits.map((t) => t.t_btjd) });
        $("transit-summary").textContent =
          `${transits.n_with_signal} of ${transits.n_observed} observed predicted transits show the signal` +
          (transits.single_event ? ": a single event, not a repeating transit." : ".");
      }
      const n = answer.events.length;
      say(status, n ? `${n} event${n === 1 ? "" : "s"} above SNR ${answer.min_snr}; choose one to watch it.` : `No event above SNR ${answer.min_snr}.`);
    } catch (error) {
      fail(status, error);
    }
  }

  // ---- a window: its movie and its diagnosis ------------------------------------------------------------------

  function openWindow(start, end) {
    if (!(Number.isFinite(start) && Number.isFinite(end)) || end <= start) return;
    state.start = Number(start.toFixed(5));
    state.end = Number(end.toFixed(5));
    syncUrl();
    windowToken += 1;
    const token = windowToken;
    $("window-start").value = state.start;
    $("window-end").value = state.end;
    fill("window", { x0: [state.start], x1: [state.end] });
    const section = $("window");
    section.hidden = false;
    $("window-heading").textContent =
      `Window BTJD ${state.start.toFixed(3)}–${state.end.toFixed(3)} (${(state.end - state.start).toFixed(2)} d)`;
    downloads();
    showMovie(token);
    showDiagnosis(token);
  }

  function windowParams(extra = {}) {
    const sector = mode === "ffi" ? lightcurveSector : state.sector;
    return { start: state.start, end: state.end, sector, ...extra };
  }

  async function showMovie(token) {
    const status = $("movie-status");
    const frame = $("movie-frame");
    const slider = $("frame-slider");
    frame.replaceChildren();
    slider.disabled = true;
    $("frame-label").textContent = "";
    $("movie-window").textContent = "";
    const gif = targetUrl("movie", windowParams({ format: "gif", fps: FPS }));
    const mp4 = config.mp4 ? targetUrl("movie", windowParams({ format: "mp4", fps: FPS })) : null;
    say(status, "Making the movie…", "busy");
    try {
      const head = await ready(mp4 || gif, status, "FFI cutout from MAST", { head: true, token });
      if (token !== windowToken) return;
      // TESS-Window: the frames the movie shows (a window past the sector's edge is cut to its frames).
      const served = head.headers.get("TESS-Window");
      const fields = Object.fromEntries((served || "").split(";").map((part) => part.trim().split("=")));
      shown = { start: Number(fields.start ?? state.start), end: Number(fields.end ?? state.end) };
      const cut = fields.clamped && fields.clamped !== "none" ? ` (cut to the sector's frames at the ${fields.clamped})` : "";
      if (served) $("movie-window").textContent = `${fields.frames} frames, BTJD ${shown.start.toFixed(4)}–${shown.end.toFixed(4)}${cut}.`;
      if (mp4) {
        playVideo(frame, mp4, gif, token);
      } else {
        showGif(frame, gif);
      }
      say(status, "");
    } catch (error) {
      if (token === windowToken) fail(status, error);
    }
  }

  function showGif(frame, gif) {
    const image = document.createElement("img");
    image.id = "movie-gif";
    image.alt = "Movie of the cutout frames in the window (GIF)";
    image.src = gif;
    frame.replaceChildren(image);
  }

  function playVideo(frame, mp4, gif, token) {
    const video = document.createElement("video");
    video.id = "movie-video";
    Object.assign(video, { muted: true, autoplay: true, loop: true, controls: true, playsInline: true });
    video.setAttribute("muted", "");
    const fallback = document.createElement("img"); // for browsers without <video>
    fallback.src = gif;
    fallback.alt = "Movie of the cutout frames in the window (GIF)";
    video.append(fallback);
    video.src = mp4;
    video.addEventListener("error", () => token === windowToken && showGif(frame, gif));
    const slider = $("frame-slider");
    const frames = () => Math.max(1, Math.round(video.duration * FPS));
    const label = (i) => {
      const n = frames();
      const t = shown.start + (n > 1 ? (i / (n - 1)) * (shown.end - shown.start) : 0);
      $("frame-label").textContent = `${i + 1} of ${n} · BTJD ≈ ${t.toFixed(3)}`;
    };
    video.addEventListener("loadedmetadata", () => {
      slider.max = String(frames() - 1);
      slider.disabled = false;
      label(0);
    });
    video.addEventListener("timeupdate", () => {
      const i = Math.min(frames() - 1, Math.floor(video.currentTime * FPS));
      slider.value = String(i);
      label(i);
    });
    slider.oninput = () => {
      video.pause();
      const i = Number(slider.value);
      video.currentTime = (i + 0.5) / FPS;
      label(i);
    };
    frame.replaceChildren(video);
    video.play().catch(() => {}); // autoplay may be refused; the controls remain
  }

  async function showDiagnosis(token) {
    const status = $("diagnosis-status");
    const verdict = $("verdict");
    const link = $("diagnosis-picture-link");
    verdict.textContent = "";
    verdict.dataset.verdict = "";
    $("explanation").textContent = "";
    $("diagnosis-links").replaceChildren();
    link.hidden = true;
    if (state.end - state.start > config.max_window_days) {
      say(status, `The diagnosis looks at windows of at most ${config.max_window_days} days: select a shorter one.`);
      return;
    }
    say(status, "Diagnosing the window…", "busy");
    try {
      const url = targetUrl("diagnosis", windowParams());
      const answer = await (await ready(url, status, "FFI cutout from MAST", { token })).json();
      if (token !== windowToken) return;
      verdict.textContent = `${answer.verdict.replaceAll("_", " ")} (confidence ${answer.confidence.toFixed(2)})`;
      verdict.dataset.verdict = answer.verdict;
      $("explanation").textContent = answer.explanation;
      const picture = targetUrl("diagnosis.png", windowParams());
      $("diagnosis-picture").src = picture;
      link.href = picture;
      link.hidden = false;
      const links = [
        ["JSON", url],
        ["difference image", picture],
        ["pixel light curves", targetUrl("pixels.png", windowParams())],
      ];
      $("diagnosis-links").replaceChildren(...links.map(([text, href]) => anchor(text, href)));
      say(status, "");
    } catch (error) {
      if (token === windowToken) fail(status, error);
    }
  }

  // ---- downloads ----------------------------------------------------------------------------------------------

  function anchor(text, href) {
    const a = document.createElement("a");
    a.textContent = text;
    a.href = href;
    return a;
  }

  function downloads() {
    const items = [];
    if (mode === "dv" && state.tce) {
      const base = `/tic/${state.tic}/tces/${encodeURIComponent(state.tce)}/lightcurve`;
      items.push(["DV light curve (FITS)", `${base}?format=fits`], ["DV light curve (CSV)", `${base}?format=csv`]);
    }
    const sector = mode === "ffi" ? lightcurveSector : state.sector;
    items.push(
      ["Cutout target pixel file (FITS)", targetUrl("cutout", { sector })],
      ["FFI light curve (FITS)", targetUrl("ffi-lightcurve", { format: "fits", sector })],
      ["FFI light curve (CSV)", targetUrl("ffi-lightcurve", { format: "csv", sector })],
    );
    if (state.start !== null && state.end !== null) {
      items.push(
        ["This window's movie (GIF)", targetUrl("movie", windowParams({ format: "gif" }))],
        ["This window's movie (MP4)", targetUrl("movie", windowParams({ format: "mp4" }))],
      );
    }
    $("download-list").replaceChildren(
      ...items.map(([text, href]) => {
        const item = document.createElement("li");
        item.append(anchor(text, href));
        return item;
      }),
    );
  }

  // ---- start --------------------------------------------------------------------------------------------------

  async function start() {
    $("view-time").addEventListener("click", () => showView("time"));
    $("view-phase").addEventListener("click", () => showView("phase"));
    $("window-form").addEventListener("submit", (event) => {
      event.preventDefault();
      openWindow(Number($("window-start").value), Number($("window-end").value));
    });
    try {
      await embedPlots();
    } catch (error) {
      fail($("lightcurve-status"), error);
    }
    if (state.start !== null && state.end !== null) openWindow(state.start, state.end);
    const dv = mode === "dv" && (await loadDv());
    if (!dv) await loadFfi();
  }

  start();
})();

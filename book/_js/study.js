// The naturalness study of chapter 7 (the paper's section 4.3, Figure 5) in the reader's browser,
// with no kernel. A plain classic script that the chapter loads with
// <script src="../_static/study.js">; it fills the element with data-colorlib="study", whose
// data-study holds what the chapter's Python session uses (colorlib.study): the stimuli's folder,
// image ids and files, the question, the conditions and their labels, the CSV columns, the seed
// and the trials per condition. The build copies those images to _static/study/<folder>/
// (book/tools/study_web.py).
//
// The rules are colorlib/study/session.py's, function for function: the participant id as
// Study checks it, the plan of Study._plan (the same few lines: an order by SHA-256, which the
// browser computes with Web Crypto, so a participant gets the very order Study would give them),
// answers as Study.answer writes them, rates as Study.rates; and StudyApp's guard
// against answers within 0.3 s of an image appearing. Every answer is kept in the browser's
// localStorage at once, so a reload or a closed tab loses nothing and the page resumes where
// the participant was; two tabs of the page answering for the same participant share those
// answers (each re-reads them before recording and on the storage event, so none is lost or
// given twice); at the end the page offers <participant>.csv, the file Study writes and
// `colorlib study FOLDER` merges. Images load as <img>, so the page works opened from disk
// (file://) too; Web Crypto exists only on secure pages (https, localhost, file://), and on
// another http page the box says so. window.colorlibStudy exposes the plan for tests.
(function () {
  "use strict";
  var SCRIPT = document.currentScript && document.currentScript.src;
  var STATIC = SCRIPT ? new URL("./", SCRIPT).href : "";
  var ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;  // session._ID
  var MIN_SECONDS = 0.3;  // StudyApp's min_seconds: a double click or a held key answers nothing
  var STORE = "colorlib-study/";  // localStorage keys: STORE + session key (see sessionKey)

  // ---- colorlib/study/session.py ------------------------------------------------------------
  // Study._plan's rule, the same lines: the photos ranked by the SHA-256 (hex) of
  // "seed:participant:image_id", the first per_condition of them shown in the first condition,
  // the next in the second...; those trials ordered by the SHA-256 of "...:image_id:condition".
  // Resolves to [{number, image_id, condition, file}].
  async function plan(settings, participant) {
    var conds = settings.conditions, per = settings.trials_per_condition, need = per * conds.length;
    if (per < 1 || need > settings.image_ids.length) {
      throw new Error(per + " trials per condition x " + conds.length + " conditions needs " + need +
                      " distinct photos; the stimuli have " + settings.image_ids.length);
    }
    async function sortedBy(items, parts) {  // items by the hex of "seed:participant:parts(item)"
      var keys = await Promise.all(items.map(async function (x) {
        var text = [settings.seed, participant].concat(parts(x)).join(":");
        var digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
        return Array.from(new Uint8Array(digest), function (v) { return v.toString(16).padStart(2, "0"); }).join("");
      }));
      return items.map(function (x, i) { return [keys[i], x]; })
        .sort(function (u, v) { return u[0] < v[0] ? -1 : u[0] > v[0] ? 1 : 0; })
        .map(function (u) { return u[1]; });
    }
    var photos = (await sortedBy(settings.image_ids.map(function (id, i) { return i; }), function (i) {
      return [settings.image_ids[i]];
    })).slice(0, need);
    var pairs = photos.map(function (i, k) {
      var c = conds[Math.floor(k / per)];
      return { image_id: settings.image_ids[i], condition: c, file: settings.files[c][i] };
    });
    return (await sortedBy(pairs, function (t) { return [t.image_id, t.condition]; })).map(function (t, n) {
      return { number: n + 1, image_id: t.image_id, condition: t.condition, file: t.file };
    });
  }

  // Study.rates: % of yes per condition over the trials answered (NaN for none)
  function rates(settings, trials, answers) {
    var out = {};
    settings.conditions.forEach(function (c) {
      var got = trials.filter(function (t) { return t.condition === c && answers[t.number]; });
      var yes = got.filter(function (t) { return answers[t.number].answer === "yes"; }).length;
      out[c] = got.length ? 100 * yes / got.length : NaN;
    });
    return out;
  }

  // A CSV cell as Python's csv.writer writes it (QUOTE_MINIMAL)
  function csvCell(v) {
    v = String(v);
    return /[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
  }

  // The rows Study.answer appends (answers.COLUMNS, UTF-8, "\n" line ends), header first
  function csvText(settings, session) {
    var lines = [settings.columns.join(",")];
    session.trials.forEach(function (t) {
      var a = session.answers[t.number];
      if (!a) return;
      var row = { participant: session.participant, trial: t.number, image_id: t.image_id,
                  condition: t.condition, answer: a.answer, timestamp: a.timestamp, seed: settings.seed };
      lines.push(settings.columns.map(function (c) { return csvCell(row[c]); }).join(","));
    });
    return lines.join("\n") + "\n";
  }

  // datetime.now(timezone.utc).isoformat(timespec="seconds")
  function timestamp() { return new Date().toISOString().slice(0, 19) + "+00:00"; }

  // ---- storage: one entry per stimulus set, settings and participant ------------------------
  // "sha256-order": answers stored under the order of numpy's generators (before the SHA-256 rule)
  // number other images, and are never taken for this order's
  function sessionKey(settings, participant) {
    return STORE + ["sha256-order", settings.stimuli, settings.seed, settings.trials_per_condition,
                    participant].join("/");
  }
  function currentKey(settings) { return STORE + settings.stimuli + "/current"; }

  function storage() {
    try {  // absent or refused (some private modes, cookies blocked): the session lives in memory only
      var s = window.localStorage, probe = STORE + "probe";
      s.setItem(probe, "1");
      s.removeItem(probe);
      return s;
    } catch (e) {
      return null;
    }
  }

  function load(store, key) {
    try {
      return store ? JSON.parse(store.getItem(key) || "null") : null;
    } catch (e) {
      return null;  // a damaged entry: start that participant again
    }
  }

  // ---- the box ------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) e.textContent = text;
    return e;
  }

  var STYLE = [
    "[data-colorlib=study] { border: 1px solid #ccc; border-radius: 6px; padding: 0.6em 0.8em; margin: 1em 0; }",
    "[data-colorlib=study] .colorlib-question { font-size: 1.2em; font-weight: bold; margin: 0.3em 0; }",
    "[data-colorlib=study] .colorlib-stimulus { display: block; margin: 0.5em 0; background: #eee; }",
    "[data-colorlib=study] button { margin-right: 0.5em; padding: 0.3em 1.2em; }",
    "[data-colorlib=study] .colorlib-yes { background: #2e7d32; color: #fff; border: 0; border-radius: 4px; }",
    "[data-colorlib=study] .colorlib-no { background: #c62828; color: #fff; border: 0; border-radius: 4px; }",
    "[data-colorlib=study] [hidden] { display: none; }",
  ].join("\n");

  function mount(root) {
    var settings = JSON.parse(root.dataset.study);
    var store = storage();
    var session = null;  // {participant, trials, answers: {number: {answer, timestamp}}}
    var shownAt = 0;
    root.textContent = "";

    var status = el("p", { "class": "colorlib-status" });
    var form = el("form", { "class": "colorlib-start" });
    var idInput = el("input", { type: "text", name: "participant", required: "", autocomplete: "off",
                                placeholder: "e.g. student07", "aria-label": "participant id" });
    form.append(el("label", {}, "Your participant id (letters, digits, '.', '_' or '-'): "), idInput, " ",
                el("button", { type: "submit" }, "Start"));
    var trialView = el("div", { "class": "colorlib-trial", hidden: "" });
    var question = el("p", { "class": "colorlib-question" }, settings.question);
    var image = el("img", { "class": "colorlib-stimulus", width: settings.size, height: settings.size,
                            alt: "the image to judge" });
    var yes = el("button", { type: "button", "class": "colorlib-yes" }, "Yes (y)");
    var no = el("button", { type: "button", "class": "colorlib-no" }, "No (n)");
    var progress = el("p", { "class": "colorlib-progress" });
    trialView.append(question, yes, no, progress);  // the image goes in with the first trial (no empty <img>)
    var thanks = el("div", { "class": "colorlib-thanks", hidden: "" });
    var download = el("button", { type: "button", "class": "colorlib-download" });
    var another = el("button", { type: "button", "class": "colorlib-another" }, "Another participant");
    var actions = el("p", { hidden: "" });
    actions.append(download, another);
    root.append(status, form, trialView, thanks, actions);

    function setState(state, text) {
      root.dataset.state = state;
      status.textContent = text || "";
    }

    // Another tab of this page may have answered for the same participant since this one last
    // looked (both resume the same session): the stored answers are the truth, and every
    // answer of either tab is kept. Adopts the stored answers into the session (an answer kept
    // there wins over this tab's for the same trial) and says whether any was new to this tab.
    function adopt() {
      var kept = store && load(store, sessionKey(settings, session.participant));
      var stored = (kept && kept.answers) || {}, added = false;
      Object.keys(stored).forEach(function (k) {
        if (!session.answers[k] || session.answers[k].answer !== stored[k].answer ||
            session.answers[k].timestamp !== stored[k].timestamp) added = true;
        session.answers[k] = stored[k];
      });
      return added;
    }

    function save() {  // read, merge, write: never over answers another tab stored
      if (!store) return;
      adopt();
      store.setItem(sessionKey(settings, session.participant), JSON.stringify(
        { participant: session.participant, answers: session.answers }));
      store.setItem(currentKey(settings), session.participant);
    }

    function answered() { return Object.keys(session.answers).length; }

    function current() {
      return session.trials.find(function (t) { return !session.answers[t.number]; }) || null;
    }

    var starting = 0;  // the start under way (a newer one, or "Another participant", cancels it)
    function start(participant) {
      var token = ++starting;
      setState("starting", "");
      if (!(window.crypto && crypto.subtle)) {  // Web Crypto: https, localhost and file:// pages only
        setState("error", "The study needs this page on https, on localhost or opened from disk: this " +
                 "browser computes the order of the images (SHA-256) only there.");
        return Promise.resolve();
      }
      return plan(settings, participant).then(function (trials) {
        if (token !== starting) return;
        var kept = load(store, sessionKey(settings, participant));
        session = { participant: participant, trials: trials, answers: (kept && kept.answers) || {} };
        save();
        var n = answered();
        setState("asking", n ? "Welcome back, " + participant + ": your " + n + " answers are kept in this " +
                 "browser, and the study continues where you stopped." :
                 "Answering as " + participant + ". Go with your first impression.");
        if (!store) status.textContent += " This browser does not keep answers: do not reload before the end.";
        form.hidden = true;
        actions.hidden = false;
        show();
      }, function (e) {
        if (token === starting) setState("error", "The study could not start: " + e.message);
      });
    }

    function show() {
      var t = current(), n = answered(), total = session.trials.length;
      root.dataset.answered = String(n);
      download.textContent = "Download my answers (" + session.participant + ".csv, " + n + " rows)";
      if (t) {
        trialView.hidden = false;
        thanks.hidden = true;
        progress.textContent = "trial " + (n + 1) + " of " + total;
        root.dataset.loaded = "";
        if (!image.parentNode) trialView.insertBefore(image, yes);
        image.src = STATIC + "study/" + settings.stimuli + "/" + t.file;
        var next = session.trials.find(function (u) { return u.number > t.number && !session.answers[u.number]; });
        if (next) new Image().src = STATIC + "study/" + settings.stimuli + "/" + next.file;  // preload
        return;
      }
      trialView.hidden = true;
      progress.textContent = "done: " + total + " of " + total;
      setState("done", "");
      var r = rates(settings, session.trials, session.answers);
      thanks.textContent = "";
      thanks.append(el("p", { "class": "colorlib-question" }, "Thank you, " + session.participant + "!"),
                    el("p", {}, "You answered all " + total + " images. Some were real photos, some were " +
                       "colorized from gray by a network. How often you found each kind natural:"));
      var table = el("table", { "class": "colorlib-rates" });
      settings.conditions.forEach(function (c) {
        var row = el("tr");
        row.append(el("td", {}, settings.labels[c] || c),
                   el("td", { style: "text-align:right" }, r[c] === r[c] ? r[c].toFixed(0) + "%" : "-"));
        table.append(row);
      });
      thanks.append(table, el("p", {}, "Download your answers below and send the file to your instructor."));
      thanks.hidden = false;
    }

    // The stored answers, re-read (another tab may have answered): when the trial shown here
    // has been answered meanwhile, the next unanswered one is shown instead
    function refresh() {
      var before = current();
      if (!adopt()) return false;
      if (current() !== before) {
        setState("asking", "Answers given in another tab of this page were taken in: the study continues " +
                 "at the next unanswered image.");
        show();
      } else {
        root.dataset.answered = String(answered());
        download.textContent = "Download my answers (" + session.participant + ".csv, " + answered() + " rows)";
        progress.textContent = "trial " + (answered() + 1) + " of " + session.trials.length;
      }
      return true;
    }

    function answer(natural) {  // Study.answer, with StudyApp's guard
      var t = current();
      if (!t || root.dataset.loaded !== "1" || (performance.now() - shownAt) / 1000 < MIN_SECONDS) return false;
      // a stale tab never answers a trial again, nor writes over answers it has not seen
      if (refresh() && current() !== t) return false;
      session.answers[t.number] = { answer: natural ? "yes" : "no", timestamp: timestamp() };
      save();
      show();
      return true;
    }

    image.addEventListener("load", function () {
      shownAt = performance.now();
      root.dataset.loaded = "1";
    });
    image.addEventListener("error", function () {
      setState("error", "The image " + image.getAttribute("src") + " could not be loaded: this copy of the " +
               "book lacks its study images.");
    });
    window.addEventListener("storage", function (e) {  // another tab stored answers
      if (session && e.key === sessionKey(settings, session.participant)) refresh();
    });
    yes.addEventListener("click", function () { answer(true); });
    no.addEventListener("click", function () { answer(false); });
    document.addEventListener("keydown", function (e) {
      var k = e.key && e.key.toLowerCase();
      if (!session || e.repeat || e.ctrlKey || e.metaKey || e.altKey || (k !== "y" && k !== "n")) return;
      if (/^(input|textarea|select)$/i.test(e.target.tagName || "") || e.target.isContentEditable) return;
      if (answer(k === "y")) e.preventDefault();
    });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var id = idInput.value.trim();
      if (!ID.test(id)) {
        setState("ready", "participant id " + JSON.stringify(id) + ": use letters, digits, '.', '_' or '-'");
        return;
      }
      start(id);
    });
    download.addEventListener("click", function () {
      var url = URL.createObjectURL(new Blob([csvText(settings, session)], { type: "text/csv" }));
      var a = el("a", { href: url, download: session.participant + ".csv" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 0);
    });
    another.addEventListener("click", function () {
      if (store) store.removeItem(currentKey(settings));  // this participant's answers stay kept
      starting++;
      session = null;
      delete root.dataset.answered;
      trialView.hidden = thanks.hidden = actions.hidden = true;
      form.hidden = false;
      idInput.value = "";
      setState("ready", "");
    });

    var resume = store && store.getItem(currentKey(settings));
    if (resume && ID.test(resume)) start(resume);
    else setState("ready", "");
  }

  function mountAll() {
    if (!document.getElementById("colorlib-study-style")) {
      var style = el("style", { id: "colorlib-study-style" });
      style.textContent = STYLE;
      document.head.appendChild(style);
    }
    document.querySelectorAll("[data-colorlib=study]").forEach(function (root) {
      if (root.dataset.mounted) return;
      root.dataset.mounted = "1";
      try {
        mount(root);
      } catch (e) {
        root.dataset.state = "error";
        root.append(el("p", { "class": "colorlib-status" }, "The study could not start: " + e.message));
      }
    });
  }

  window.colorlibStudy = { plan: plan, csvText: csvText, mountAll: mountAll };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();

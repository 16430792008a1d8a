// The naturalness study of chapter 7 (the paper's section 4.3, Figure 5) in the reader's browser,
// with no kernel. A plain classic script that the chapter loads with
// <script src="../_static/study.js">; it fills the element with data-colorlib="study", whose
// data-study holds what the chapter's Python session uses (colorlib.study): the stimuli's folder,
// image ids and files, the question, the conditions and their labels, the CSV columns, the seed
// and the trials per condition. The build copies those images to _static/study/<folder>/
// (book/tools/study_web.py).
//
// The rules are colorlib/study/session.py's, function for function: the participant id as
// Study checks it, the plan of Study._plan (numpy's default_rng([seed, id hash]) and its
// permutations, written out below so that a participant gets the very order Study would give
// them), answers as Study.answer writes them, rates as Study.rates; and StudyApp's guard
// against answers within 0.3 s of an image appearing. Every answer is kept in the browser's
// localStorage at once, so a reload or a closed tab loses nothing and the page resumes where
// the participant was; two tabs of the page answering for the same participant share those
// answers (each re-reads them before recording and on the storage event, so none is lost or
// given twice); at the end the page offers <participant>.csv, the file Study writes and
// `colorlib study FOLDER` merges. Images load as <img>, so the page works opened from disk
// (file://) too. window.colorlibStudy exposes the plan for tests.
(function () {
  "use strict";
  var SCRIPT = document.currentScript && document.currentScript.src;
  var STATIC = SCRIPT ? new URL("./", SCRIPT).href : "";
  var ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;  // session._ID
  var MIN_SECONDS = 0.3;  // StudyApp's min_seconds: a double click or a held key answers nothing
  var STORE = "colorlib-study/";  // localStorage keys: STORE + session key (see sessionKey)

  // ---- hashlib.sha256(text.encode()).hexdigest() ------------------------------------------
  var K = [0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
           0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
           0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
           0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
           0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
           0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
           0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
           0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2];

  function sha256Hex(text) {  // FIPS 180-4; crypto.subtle exists only on https and localhost pages
    var bytes = new TextEncoder().encode(text);
    var n = ((bytes.length + 9 + 63) >> 6) << 6;
    var m = new Uint8Array(n);
    m.set(bytes);
    m[bytes.length] = 0x80;
    var view = new DataView(m.buffer);
    view.setUint32(n - 8, Math.floor(bytes.length / 0x20000000));
    view.setUint32(n - 4, (bytes.length * 8) >>> 0);
    var h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    var w = new Array(64);
    function rotr(x, r) { return (x >>> r) | (x << (32 - r)); }
    for (var off = 0; off < n; off += 64) {
      for (var t = 0; t < 64; t++) {
        if (t < 16) { w[t] = view.getUint32(off + 4 * t); continue; }
        var s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >>> 3);
        var s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (t = 0; t < 64; t++) {
        var t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t]) | 0;
        var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
        k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h = [h[0] + a, h[1] + b, h[2] + c, h[3] + d, h[4] + e, h[5] + f, h[6] + g, h[7] + k].map(function (x) {
        return x | 0;
      });
    }
    return h.map(function (x) { return ("0000000" + (x >>> 0).toString(16)).slice(-8); }).join("");
  }

  // ---- numpy.random.SeedSequence (numpy/random/bit_generator.pyx) ---------------------------
  var INIT_A = 0x43b0d7e5, MULT_A = 0x931e8875, INIT_B = 0x8b51f9dd, MULT_B = 0x58f38ded;
  var MIX_MULT_L = 0xca01f9dd, MIX_MULT_R = 0x4973f715, XSHIFT = 16, POOL_SIZE = 4;

  function uint32Words(n) {  // _int_to_uint32_array: a whole number >= 0 (BigInt), low word first
    var out = n === 0n ? [0] : [];
    for (; n > 0n; n >>= 32n) out.push(Number(n & 0xffffffffn));
    return out;
  }

  // SeedSequence(entropy).generate_state(nWords, np.uint64), as BigInts
  function seedSequenceState(entropy, nWords) {
    var words = [];
    entropy.forEach(function (v) { words = words.concat(uint32Words(BigInt(v))); });
    var hashConst = INIT_A;
    function hashmix(value) {
      value = (value ^ hashConst) >>> 0;
      hashConst = Math.imul(hashConst, MULT_A) >>> 0;
      value = Math.imul(value, hashConst) >>> 0;
      return (value ^ (value >>> XSHIFT)) >>> 0;
    }
    function mix(x, y) {
      var r = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
      return (r ^ (r >>> XSHIFT)) >>> 0;
    }
    var pool = [];  // mix_entropy
    for (var i = 0; i < POOL_SIZE; i++) pool.push(hashmix(i < words.length ? words[i] : 0));
    for (var src = 0; src < POOL_SIZE; src++) {
      for (var dst = 0; dst < POOL_SIZE; dst++) {
        if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
      }
    }
    for (src = POOL_SIZE; src < words.length; src++) {
      for (dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst], hashmix(words[src]));
    }
    var state = [];  // generate_state: 2 uint32 words per uint64, little-endian
    hashConst = INIT_B;
    for (i = 0; i < 2 * nWords; i++) {
      var v = (pool[i % POOL_SIZE] ^ hashConst) >>> 0;
      hashConst = Math.imul(hashConst, MULT_B) >>> 0;
      v = Math.imul(v, hashConst) >>> 0;
      state.push((v ^ (v >>> XSHIFT)) >>> 0);
    }
    var out = [];
    for (i = 0; i < nWords; i++) out.push(BigInt(state[2 * i]) | (BigInt(state[2 * i + 1]) << 32n));
    return out;
  }

  // ---- numpy.random.PCG64 (numpy/random/src/pcg64): PCG XSL-RR 128/64 ---------------------
  var MASK64 = (1n << 64n) - 1n, MASK128 = (1n << 128n) - 1n;
  var PCG_MULTIPLIER = (2549297995355413924n << 64n) + 4865540595714422341n;

  function Pcg64(seed) {  // PCG64(SeedSequence(seed)): pcg64_set_seed, pcg_setseq_128_srandom_r
    var s = seedSequenceState(seed, 4);
    this.inc = (((s[2] << 64n) | s[3]) << 1n | 1n) & MASK128;
    this.state = 0n;
    this.step();
    this.state = (this.state + ((s[0] << 64n) | s[1])) & MASK128;
    this.step();
    this.uinteger = null;  // the high half of the last 64-bit draw, not yet used (has_uint32)
  }
  Pcg64.prototype.step = function () { this.state = (this.state * PCG_MULTIPLIER + this.inc) & MASK128; };
  Pcg64.prototype.next64 = function () {
    this.step();
    var v = ((this.state >> 64n) ^ this.state) & MASK64, rot = this.state >> 122n;
    return ((v >> rot) | (v << ((64n - rot) & 63n))) & MASK64;
  };
  Pcg64.prototype.next32 = function () {
    if (this.uinteger !== null) {
      var u = this.uinteger;
      this.uinteger = null;
      return u;
    }
    var next = this.next64();
    this.uinteger = Number(next >> 32n);
    return Number(next & 0xffffffffn);
  };
  // random_interval(max) of numpy's distributions.c: uniform in [0, max] by masked rejection
  // (max < 2^32 here: a stimulus set is far smaller)
  Pcg64.prototype.interval = function (max) {
    if (max === 0) return 0;
    var mask = max;
    for (var s = 1; s < 32; s *= 2) mask = (mask | (mask >>> s)) >>> 0;
    var value;
    while ((value = (this.next32() & mask) >>> 0) > max);
    return value;
  };
  // Generator.permutation(n): arange(n) shuffled by Fisher-Yates from the end
  Pcg64.prototype.permutation = function (n) {
    var x = [];
    for (var i = 0; i < n; i++) x.push(i);
    for (i = n - 1; i > 0; i--) {
      var j = this.interval(i), tmp = x[i];
      x[i] = x[j];
      x[j] = tmp;
    }
    return x;
  };

  // ---- colorlib/study/session.py ------------------------------------------------------------
  // Study._plan: per_condition photos of each condition, no photo twice, in an order drawn from
  // the seed and the participant id. Returns [{number, image_id, condition, file}].
  function plan(settings, participant) {
    var conds = settings.conditions, per = settings.trials_per_condition, need = per * conds.length;
    if (per < 1 || need > settings.image_ids.length) {
      throw new Error(per + " trials per condition x " + conds.length + " conditions needs " + need +
                      " distinct photos; the stimuli have " + settings.image_ids.length);
    }
    var pid = BigInt("0x" + sha256Hex(participant).slice(0, 16));
    var rng = new Pcg64([settings.seed, pid]);
    var photos = rng.permutation(settings.image_ids.length).slice(0, need);
    var pairs = photos.map(function (i, k) {
      var c = Math.floor(k / per);
      return { image_id: settings.image_ids[i], condition: conds[c], file: settings.files[conds[c]][i] };
    });
    return rng.permutation(need).map(function (i, n) {
      return { number: n + 1, image_id: pairs[i].image_id, condition: pairs[i].condition, file: pairs[i].file };
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
  function sessionKey(settings, participant) {
    return STORE + [settings.stimuli, settings.seed, settings.trials_per_condition, participant].join("/");
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

    function start(participant) {
      var trials = plan(settings, participant);
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

  window.colorlibStudy = { sha256Hex: sha256Hex, seedSequenceState: seedSequenceState, Pcg64: Pcg64,
                           plan: plan, csvText: csvText, mountAll: mountAll };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();

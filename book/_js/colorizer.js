// The trained network in the reader's browser: colorlib's ONNX export (colorlib/export.py) run by
// the vendored ONNX Runtime Web (WebAssembly, one thread). A plain classic script that chapters
// load with <script src="../_static/colorizer.js">; it fills every element with a
// data-colorlib attribute ("colorize" or "mix") and exposes window.colorlib for tests.
//
// The colour maths mirrors colorlib/lab.py function for function (same names in camelCase, same
// constants), and colorize() mirrors colorlib.infer.colorize: sRGB -> L* at full resolution, the
// network on L*/100 (a downscaled copy above maxPixels), a*b* upsampled x2 and cropped, times
// the model's output gain, joined with the photo's own L*, -> sRGB in gamut at constant L*.
//
// Opened from disk (file://) the browser refuses to fetch the models, so the page says instead
// the one command that serves the book.
(function () {
  "use strict";
  var SCRIPT = document.currentScript && document.currentScript.src;
  var STATIC = SCRIPT ? new URL("./", SCRIPT).href : "";
  var SERVE = "python3 -m http.server --directory _build/html 8000";

  // ---- colorlib/lab.py ------------------------------------------------------------------
  var XYZ_FROM_RGB = [[0.412453, 0.357580, 0.180423],
                      [0.212671, 0.715160, 0.072169],
                      [0.019334, 0.119193, 0.950227]];
  var D65_WHITE = [0.95047, 1.0, 1.08883];
  var EPSILON = 0.008856;
  var KAPPA = 7.787;
  var AB_SHIFT = 128.0;
  var AB_SCALE = 255.0;
  var GAMUT_SLACK = 1e-5;
  var RGB_FROM_XYZ = inverse3(XYZ_FROM_RGB);

  function inverse3(m) {  // lab._inverse
    var a = m[0][0], b = m[0][1], c = m[0][2], d = m[1][0], e = m[1][1], f = m[1][2],
        g = m[2][0], h = m[2][1], i = m[2][2];
    var A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
    var det = a * A + b * B + c * C;
    return [[A / det, -(b * i - c * h) / det, (b * f - c * e) / det],
            [B / det, (a * i - c * g) / det, -(a * f - c * d) / det],
            [C / det, -(a * h - b * g) / det, (a * e - b * d) / det]];
  }

  // lab.srgb8_to_L: L* in [0, 100] of 8-bit RGBA pixels (canvas ImageData order) -> Float32Array
  function srgb8ToL(rgba, n) {
    var lut = [new Float32Array(256), new Float32Array(256), new Float32Array(256)];
    for (var v = 0; v < 256; v++) {
      var c = v / 255;
      var lin = c > 0.04045 ? Math.pow((c + 0.055) / 1.055, 2.4) : c / 12.92;
      for (var k = 0; k < 3; k++) lut[k][v] = lin * XYZ_FROM_RGB[1][k];
    }
    var L = new Float32Array(n);
    for (var p = 0; p < n; p++) {
      var Y = lut[0][rgba[4 * p]] + lut[1][rgba[4 * p + 1]] + lut[2][rgba[4 * p + 2]];
      var f = Y > EPSILON ? Math.cbrt(Y) : KAPPA * Y + 16 / 116;
      L[p] = 116 * f - 16;
    }
    return L;
  }

  function finv(t) { return t > 0.2068966 ? t * t * t : (t - 16 / 116) / KAPPA; }

  // lab._lab_to_linear for one pixel -> [r, g, b] linear light, not clipped
  function labToLinear(L, a, b) {
    var fy = (L + 16) / 116, fx = fy + a / 500, fz = Math.max(fy - b / 200, 0);
    var X = finv(fx) * D65_WHITE[0], Y = finv(fy) * D65_WHITE[1], Z = finv(fz) * D65_WHITE[2];
    return RGB_FROM_XYZ.map(function (r) { return r[0] * X + r[1] * Y + r[2] * Z; });
  }

  function encode(c) {  // lab._encode
    return c > 0.0031308 ? 1.055 * Math.pow(c, 1 / 2.4) - 0.055 : 12.92 * c;
  }

  function inGamut(lin) {  // lab._in_gamut
    return lin.every(function (c) { return c >= -GAMUT_SLACK && c <= 1 + GAMUT_SLACK; });
  }

  // lab._chroma_factor: the largest s in [0, 1) (bisection) with L*, s a*, s b* in sRGB
  function chromaFactor(L, a, b, iterations) {
    var lo = 0, hi = 1;
    for (var i = 0; i < iterations; i++) {
      var mid = (lo + hi) / 2;
      if (inGamut(labToLinear(L, mid * a, mid * b))) lo = mid; else hi = mid;
    }
    return lo;
  }

  // lab.lab_to_rgb_in_gamut for one pixel -> sRGB [r, g, b] in [0, 1]
  function labToRgbInGamut(L, a, b, iterations) {
    L = Math.min(Math.max(L, 0), 100);
    var lin = labToLinear(L, a, b);
    if (!inGamut(lin)) {
      var s = chromaFactor(L, a, b, iterations || 16);
      lin = labToLinear(L, s * a, s * b);
    }
    return lin.map(function (c) { return Math.min(Math.max(encode(c), 0), 1); });
  }

  function denormalizeAb(ab01) { return ab01 * AB_SCALE - AB_SHIFT; }  // lab.denormalize_ab

  // ---- resampling, as torch.nn.functional.interpolate (align_corners=False) -----------
  // bilinear: source coordinate (i + 0.5) * in / out - 0.5, clamped to the image
  function axisBilinear(inSize, outSize) {
    var i0 = new Int32Array(outSize), i1 = new Int32Array(outSize), w = new Float32Array(outSize);
    var scale = inSize / outSize;
    for (var o = 0; o < outSize; o++) {
      var x = Math.max((o + 0.5) * scale - 0.5, 0);
      var lo = Math.min(Math.floor(x), inSize - 1);
      i0[o] = lo; i1[o] = Math.min(lo + 1, inSize - 1); w[o] = x - lo;
    }
    return { i0: i0, i1: i1, w: w };
  }

  // (planes, h, w) Float32Array -> (planes, H, W), bilinear
  function resizeBilinear(src, planes, h, w, H, W) {
    var ys = axisBilinear(h, H), xs = axisBilinear(w, W), out = new Float32Array(planes * H * W);
    for (var c = 0; c < planes; c++) {
      var s = c * h * w, d = c * H * W;
      for (var y = 0; y < H; y++) {
        var r0 = s + ys.i0[y] * w, r1 = s + ys.i1[y] * w, wy = ys.w[y];
        for (var x = 0; x < W; x++) {
          var x0 = xs.i0[x], x1 = xs.i1[x], wx = xs.w[x];
          var top = src[r0 + x0] + (src[r0 + x1] - src[r0 + x0]) * wx;
          var bot = src[r1 + x0] + (src[r1 + x1] - src[r1 + x0]) * wx;
          out[d + y * W + x] = top + (bot - top) * wy;
        }
      }
    }
    return out;
  }

  // antialiased bilinear (torch's antialias=True, a triangle filter widened by the scale)
  function axisAntialias(inSize, outSize) {
    var scale = inSize / outSize, support = scale >= 1 ? scale : 1, inv = scale >= 1 ? 1 / scale : 1;
    var rows = [];
    for (var o = 0; o < outSize; o++) {
      var center = scale * (o + 0.5);
      var lo = Math.max(Math.trunc(center - support + 0.5), 0);
      var hi = Math.min(Math.trunc(center + support + 0.5), inSize);
      var ws = [], total = 0;
      for (var j = lo; j < hi; j++) {
        var t = Math.abs((j - center + 0.5) * inv);
        var wt = t < 1 ? 1 - t : 0;
        ws.push(wt); total += wt;
      }
      rows.push({ lo: lo, w: ws.map(function (v) { return total ? v / total : 0; }) });
    }
    return rows;
  }

  function resizeAntialias(src, h, w, H, W) {  // one plane
    var xs = axisAntialias(w, W), ys = axisAntialias(h, H), tmp = new Float32Array(h * W);
    for (var y = 0; y < h; y++) {
      for (var x = 0; x < W; x++) {
        var acc = 0, r = xs[x];
        for (var k = 0; k < r.w.length; k++) acc += src[y * w + r.lo + k] * r.w[k];
        tmp[y * W + x] = acc;
      }
    }
    var out = new Float32Array(H * W);
    for (var oy = 0; oy < H; oy++) {
      var q = ys[oy];
      for (var ox = 0; ox < W; ox++) {
        var sum = 0;
        for (var m = 0; m < q.w.length; m++) sum += tmp[(q.lo + m) * W + ox] * q.w[m];
        out[oy * W + ox] = sum;
      }
    }
    return out;
  }

  // area resize (torch's mode="area", adaptive average pooling) of one plane
  function resizeArea(src, h, w, H, W) {
    var out = new Float32Array(H * W);
    for (var y = 0; y < H; y++) {
      var y0 = Math.floor(y * h / H), y1 = Math.ceil((y + 1) * h / H);
      for (var x = 0; x < W; x++) {
        var x0 = Math.floor(x * w / W), x1 = Math.ceil((x + 1) * w / W), acc = 0;
        for (var j = y0; j < y1; j++) for (var i = x0; i < x1; i++) acc += src[j * w + i];
        out[y * W + x] = acc / ((y1 - y0) * (x1 - x0));
      }
    }
    return out;
  }

  // infer.network_size
  var DEFAULT_MAX_PIXELS = 2048 * 2048;
  function networkSize(H, W, maxPixels) {
    if (!maxPixels || H * W <= maxPixels) return [H, W];
    var scale = Math.sqrt(maxPixels / (H * W));
    var h = Math.max(1, Math.trunc(H * scale)), w = Math.max(1, Math.trunc(W * scale));
    while (h * w > maxPixels) { if (h >= w) h--; else w--; }
    return [h, w];
  }

  // ---- the models (loaded when first needed) -----------------------------------------
  var ortReady = null, models = {};

  function loadOrt() {
    if (!ortReady) {
      ortReady = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = STATIC + "onnxruntime-web/dist/ort.wasm.min.js";
        s.onload = function () {
          var ort = window.ort;
          ort.env.wasm.wasmPaths = STATIC + "onnxruntime-web/dist/";
          ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which a plain server lacks
          ort.env.logLevel = "error";
          resolve(ort);
        };
        s.onerror = function () { reject(new Error("could not load " + s.src)); };
        document.head.appendChild(s);
      });
    }
    return ortReady;
  }

  function fetchBytes(url) {
    return fetch(url).then(function (r) {
      if (!r.ok) throw new Error(url + ": HTTP " + r.status);
      return r.arrayBuffer();
    });
  }

  function loadModel(name) {
    if (!models[name]) {
      var base = STATIC + "onnx/" + name + "/";
      models[name] = Promise.all([loadOrt(), fetch(base + "manifest.json").then(function (r) {
        if (!r.ok) throw new Error(base + "manifest.json: HTTP " + r.status);
        return r.json();
      })]).then(function (got) {
        var ort = got[0], manifest = got[1], graphs = manifest.graphs;
        var opts = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
        var open = function (g) {
          return fetchBytes(base + g.file).then(function (b) { return ort.InferenceSession.create(b, opts); });
        };
        return Promise.all([open(graphs.colorizer), graphs.global ? open(graphs.global) : null])
          .then(function (s) { return { ort: ort, manifest: manifest, colorizer: s[0], global: s[1] }; });
      });
      models[name].catch(function () { delete models[name]; });
    }
    return models[name];
  }

  // ---- the pipeline (colorlib.infer / colorlib.engine) --------------------------------
  // The global branch of L* (Float32Array h*w in [0, 100]) -> {features, probabilities}
  function globalBranch(model, L, h, w) {
    var s = model.manifest.config.global_size, x = new Float32Array(h * w);
    for (var i = 0; i < x.length; i++) x[i] = L[i] / 100;
    if (h !== s || w !== s) {
      x = (h > s || w > s) ? resizeAntialias(x, h, w, s, s) : resizeBilinear(x, 1, h, w, s, s);
    }
    var feeds = { L: new model.ort.Tensor("float32", x, [1, 1, s, s]) };
    return model.global.run(feeds).then(function (out) {
      return { features: out.global_features.data, probabilities: out.probabilities.data };
    });
  }

  // a*b* (Float32Array 2*h*w, about [-128, 127], before the gain) of L* h x w; features given
  function predictAb(model, L, h, w, features) {
    var x = new Float32Array(h * w);
    for (var i = 0; i < x.length; i++) x[i] = L[i] / 100;
    var feeds = { L: new model.ort.Tensor("float32", x, [1, 1, h, w]) };
    if (model.global) feeds.global_features = new model.ort.Tensor("float32", features, [1, features.length]);
    return model.colorizer.run(feeds).then(function (out) {
      var ab = out.ab, h2 = ab.dims[2], w2 = ab.dims[3];
      var up = resizeBilinear(ab.data, 2, h2, w2, 2 * h2, 2 * w2), res = new Float32Array(2 * h * w);
      for (var c = 0; c < 2; c++) {  // crop to h x w (infer.upsample_ab)
        for (var y = 0; y < h; y++) {
          for (var xx = 0; xx < w; xx++) res[(c * h + y) * w + xx] = denormalizeAb(up[(c * 2 * h2 + y) * 2 * w2 + xx]);
        }
      }
      return res;
    });
  }

  // infer._to_rgb8: L* (H*W) and a*b* (2*h*w, gain applied) -> RGBA bytes, in gamut at constant L*
  function toRgb8(L, H, W, ab, h, w) {
    if (h !== H || w !== W) ab = resizeBilinear(ab, 2, h, w, H, W);
    var out = new Uint8ClampedArray(4 * H * W), n = H * W;
    for (var p = 0; p < n; p++) {
      var rgb = labToRgbInGamut(L[p], ab[p], ab[n + p]);
      out[4 * p] = Math.round(rgb[0] * 255);
      out[4 * p + 1] = Math.round(rgb[1] * 255);
      out[4 * p + 2] = Math.round(rgb[2] * 255);
      out[4 * p + 3] = 255;
    }
    return out;
  }

  // A photo's L* at full size and at the network's size: {L, H, W, seen, h, w}
  function luminance(image, maxPixels) {
    var H = image.height, W = image.width, L = srgb8ToL(image.data, H * W);
    var hw = networkSize(H, W, maxPixels || DEFAULT_MAX_PIXELS), h = hw[0], w = hw[1];
    var seen = (h === H && w === W) ? L : resizeArea(L, H, W, h, w);
    return { L: L, H: H, W: W, seen: seen, h: h, w: w };
  }

  // infer.colorize of ImageData -> {image: ImageData, probabilities, features, seconds}.
  // opts.features: a given global vector (a mix, section 4.5); opts.gain: the a*b* gain.
  function colorize(modelName, image, opts) {
    opts = opts || {};
    var t0 = performance.now();
    return loadModel(modelName).then(function (model) {
      var lum = image.L ? image : luminance(image, opts.maxPixels);
      var g = (opts.features || !model.global) ? Promise.resolve({ features: opts.features, probabilities: null })
        : globalBranch(model, lum.seen, lum.h, lum.w);
      return g.then(function (gb) {
        return predictAb(model, lum.seen, lum.h, lum.w, gb.features).then(function (ab) {
          var gain = opts.gain === undefined ? model.manifest.output_gain : opts.gain;
          for (var i = 0; i < ab.length; i++) ab[i] *= gain;
          var rgba = toRgb8(lum.L, lum.H, lum.W, ab, lum.h, lum.w);
          return { image: new ImageData(rgba, lum.W, lum.H), probabilities: gb.probabilities,
                   features: gb.features, classes: model.manifest.classes,
                   seconds: (performance.now() - t0) / 1000 };
        });
      });
    });
  }

  // The gray the network sees: L* with a*b* = 0, as sRGB
  function grayImage(lum) {
    var n = lum.H * lum.W, out = new Uint8ClampedArray(4 * n);
    for (var p = 0; p < n; p++) {
      var v = Math.round(labToRgbInGamut(lum.L[p], 0, 0)[0] * 255);
      out[4 * p] = out[4 * p + 1] = out[4 * p + 2] = v; out[4 * p + 3] = 255;
    }
    return new ImageData(out, lum.W, lum.H);
  }

  function topK(probabilities, classes, k) {
    var idx = Array.from(probabilities.keys()).sort(function (a, b) { return probabilities[b] - probabilities[a]; });
    return idx.slice(0, k).map(function (i) { return [classes ? classes[i] : String(i), probabilities[i]]; });
  }

  // A picked or dropped file -> ImageData of its pixels as stored (no colour management)
  function readImage(file) {
    return createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" })
      .then(function (bmp) {
        var c = document.createElement("canvas");
        c.width = bmp.width; c.height = bmp.height;
        var ctx = c.getContext("2d");
        ctx.fillStyle = "#fff";  // transparent photos as seen over white, as colorlib does
        ctx.fillRect(0, 0, c.width, c.height);
        ctx.drawImage(bmp, 0, 0);
        return ctx.getImageData(0, 0, c.width, c.height);
      }, function () { throw new Error(file.name + ": not an image this browser can read"); });
  }

  // ---- the controls ------------------------------------------------------------------
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) e.textContent = text;
    return e;
  }

  function show(canvas, image) {
    canvas.width = image.width; canvas.height = image.height;
    canvas.getContext("2d").putImageData(image, 0, 0);
  }

  function picker(label, onFile) {
    var box = el("label", { "class": "colorlib-drop" }, label + " ");
    var input = el("input", { type: "file", accept: "image/*" });
    box.appendChild(input);
    input.addEventListener("change", function () { if (input.files[0]) onFile(input.files[0]); });
    box.addEventListener("dragover", function (e) { e.preventDefault(); });
    box.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer.files[0]) onFile(e.dataTransfer.files[0]);
    });
    return box;
  }

  function figure(caption) {
    var f = el("figure", { "class": "colorlib-figure" }), c = el("canvas");
    f.appendChild(c); f.appendChild(el("figcaption", {}, caption));
    return { figure: f, canvas: c };
  }

  function setStatus(root, state, text) {
    root.dataset.state = state;
    root.querySelector(".colorlib-status").textContent = text;
  }

  function fail(root, err) {
    setStatus(root, "error", "Could not colorize: " + (err && err.message ? err.message : err));
  }

  // data-colorlib="colorize": pick or drop a photo -> gray input, result, top-5 classes, download
  function mountColorize(root) {
    var name = root.dataset.model;
    var gray = figure("input: its L* only"), result = figure("colorized in your browser");
    var top = el("ol", { "class": "colorlib-top5" });
    var link = el("a", { "class": "colorlib-download", download: "colorized.png", href: "#" },
                  "Download the result (PNG)");
    link.hidden = true;
    var pair = el("div", { "class": "colorlib-pair" });
    pair.appendChild(gray.figure); pair.appendChild(result.figure);
    root.appendChild(picker("Pick or drop a photo (it stays on your computer):", run));
    root.appendChild(el("p", { "class": "colorlib-status", role: "status" }, "No photo yet."));
    root.appendChild(pair); root.appendChild(top); root.appendChild(link);
    root.dataset.state = "idle";

    function run(file) {
      setStatus(root, "busy", "Loading the model (first time only) and colorizing " + file.name + "...");
      readImage(file).then(function (image) {
        var lum = luminance(image);
        show(gray.canvas, grayImage(lum));
        return colorize(name, lum).then(function (r) {
          show(result.canvas, r.image);
          top.textContent = "";
          if (r.probabilities) {
            topK(r.probabilities, r.classes, 5).forEach(function (c) {
              top.appendChild(el("li", {}, c[0] + " (" + (100 * c[1]).toFixed(1) + "%)"));
            });
          }
          link.download = file.name.replace(/\.[^.]*$/, "") + "-color.png";
          result.canvas.toBlob(function (blob) {
            if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
            link.href = URL.createObjectURL(blob);
            link.hidden = false;
            root.dataset.seconds = r.seconds.toFixed(3);
            setStatus(root, "done", image.width + "x" + image.height + " colorized in " + r.seconds.toFixed(2) +
                      " s (" + name + ", ONNX Runtime Web).");
          }, "image/png");
        });
      }).catch(function (e) { fail(root, e); });
    }
  }

  // data-colorlib="mix": photo A colorized with (1 - t) x A's global features + t x B's (section 4.5)
  function mountMix(root) {
    var name = root.dataset.model, photos = { a: null, b: null };
    var result = figure("A colorized with the mixed global features");
    var slider = el("input", { type: "range", min: "0", max: "1", step: "0.05", value: "0",
                               "class": "colorlib-t", "aria-label": "mixing t" });
    var tText = el("span", { "class": "colorlib-t-value" }, "t = 0.00");
    var busy = false, again = false;
    root.appendChild(picker("Photo A (colorized):", function (f) { pick("a", f); }));
    root.appendChild(picker("Photo B (global features):", function (f) { pick("b", f); }));
    var row = el("p", {}, "");
    row.appendChild(slider); row.appendChild(tText);
    root.appendChild(row);
    root.appendChild(el("p", { "class": "colorlib-status", role: "status" }, "Pick photos A and B."));
    root.appendChild(result.figure);
    root.dataset.state = "idle";
    slider.addEventListener("input", function () {
      tText.textContent = "t = " + Number(slider.value).toFixed(2);
      update();
    });

    function pick(which, file) {
      setStatus(root, "busy", "Reading " + file.name + "...");
      readImage(file).then(function (image) {
        var lum = luminance(image);
        return loadModel(name).then(function (model) {
          return globalBranch(model, lum.seen, lum.h, lum.w);
        }).then(function (g) { photos[which] = { lum: lum, features: g.features }; update(); });
      }).catch(function (e) { fail(root, e); });
    }

    function update() {
      if (!photos.a || !photos.b) {
        setStatus(root, "idle", photos.a || photos.b ? "Now pick the other photo." : "Pick photos A and B.");
        return;
      }
      if (busy) { again = true; return; }
      busy = true;
      var t = Number(slider.value), ga = photos.a.features, gb = photos.b.features;
      var g = new Float32Array(ga.length);
      for (var i = 0; i < g.length; i++) g[i] = ga[i] + t * (gb[i] - ga[i]);  // torch.lerp (model.mix_global)
      setStatus(root, "busy", "Colorizing at t = " + t.toFixed(2) + "...");
      colorize(name, photos.a.lum, { features: g }).then(function (r) {
        show(result.canvas, r.image);
        root.dataset.t = String(t);
        busy = false;
        if (again) { again = false; update(); return; }
        setStatus(root, "done", "t = " + t.toFixed(2) + ": colorized in " + r.seconds.toFixed(2) + " s.");
      }).catch(function (e) { busy = false; fail(root, e); });
    }
  }

  var MOUNT = { colorize: mountColorize, mix: mountMix };

  function mountAll() {
    document.querySelectorAll("[data-colorlib]").forEach(function (root) {
      if (root.dataset.mounted) return;
      root.dataset.mounted = "1";
      root.textContent = "";
      if (location.protocol === "file:") {
        root.dataset.state = "needs-server";
        var p = el("p", { "class": "colorlib-status colorlib-serve" },
                   "This page was opened from disk, where the browser does not let it load the model. " +
                   "Serve the book and open it from there (http://127.0.0.1:8000/), from the repository: ");
        p.appendChild(el("code", {}, SERVE));
        root.appendChild(p);
        return;
      }
      MOUNT[root.dataset.colorlib](root);
    });
  }

  window.colorlib = {
    srgb8ToL: srgb8ToL, labToRgbInGamut: labToRgbInGamut, labToLinear: labToLinear, encode: encode,
    chromaFactor: chromaFactor, denormalizeAb: denormalizeAb, resizeBilinear: resizeBilinear,
    resizeAntialias: resizeAntialias, resizeArea: resizeArea, networkSize: networkSize,
    luminance: luminance, colorize: colorize, loadModel: loadModel, topK: topK, mountAll: mountAll,
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();

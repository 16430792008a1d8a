// The trained network in the reader's browser: colorlib's ONNX export (colorlib/export.py) run by
// the vendored ONNX Runtime Web (WebAssembly, one thread). A plain classic script that chapters
// load with <script src="../_static/colorizer.js">; it fills every element with a
// data-colorlib attribute ("colorize", "mix" or "compare") and exposes window.colorlib for tests.
//
// The colour maths mirrors colorlib/lab.py function for function (same names in camelCase, same
// constants), and colorize() mirrors colorlib.infer.colorize: sRGB -> L* at full resolution, the
// network on L*/100 (a downscaled copy above maxPixels), a*b* upsampled x2 and cropped, times
// the model's saturation, joined with the photo's own L*, -> sRGB in gamut at constant L*.
//
// Opened from disk (file://) the browser refuses to fetch the models, so the page says instead
// the one command that serves the book (with this copy's folder, read from the page's address).
(function () {
  "use strict";
  var SCRIPT = document.currentScript && document.currentScript.src;
  var STATIC = SCRIPT ? new URL("./", SCRIPT).href : "";

  // ---- colorlib/lab.py ------------------------------------------------------------------
  var XYZ_FROM_RGB = [[0.412453, 0.357580, 0.180423],
                      [0.212671, 0.715160, 0.072169],
                      [0.019334, 0.119193, 0.950227]];
  var D65_WHITE = [0.95047, 1.0, 1.08883];
  // CIE 15:2004 (section 8.2.1), the L*a*b* function f(t) = t^(1/3) above EPSILON, else a line:
  var DELTA = 6 / 29;  // where the cube root meets the line, in f's output
  var EPSILON = DELTA * DELTA * DELTA;  // the same point in f's input
  var KAPPA = 24389 / 27;  // L* = KAPPA * Y/Yn below EPSILON
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

  // lab._f: the cube root above EPSILON, the line (KAPPA t + 16) / 116 below
  function f(t) { return t > EPSILON ? Math.cbrt(t) : (KAPPA * t + 16) / 116; }

  // lab._f_inverse: cubed above DELTA, the line below
  function fInverse(v) { return v > DELTA ? v * v * v : (116 * v - 16) / KAPPA; }

  // lab.rgb_to_L of 8-bit input: L* in [0, 100] of RGBA pixels (canvas ImageData order) -> Float32Array
  function rgbToL(rgba, n) {
    var lut = [new Float32Array(256), new Float32Array(256), new Float32Array(256)];
    for (var v = 0; v < 256; v++) {
      var c = v / 255;
      var lin = c > 0.04045 ? Math.pow((c + 0.055) / 1.055, 2.4) : c / 12.92;
      for (var k = 0; k < 3; k++) lut[k][v] = lin * XYZ_FROM_RGB[1][k];
    }
    var L = new Float32Array(n);
    for (var p = 0; p < n; p++) {
      var Y = lut[0][rgba[4 * p]] + lut[1][rgba[4 * p + 1]] + lut[2][rgba[4 * p + 2]];
      L[p] = 116 * f(Y) - 16;
    }
    return L;
  }

  // lab._lab_to_linear for one pixel -> linear-light [r, g, b] (into `out`), not clipped
  function labToLinear(L, a, b, out) {
    out = out || new Float64Array(3);
    var fy = (L + 16) / 116, fx = fy + a / 500, fz = Math.max(fy - b / 200, 0);
    var X = fInverse(fx) * D65_WHITE[0], Y = fInverse(fy) * D65_WHITE[1], Z = fInverse(fz) * D65_WHITE[2];
    for (var k = 0; k < 3; k++) out[k] = RGB_FROM_XYZ[k][0] * X + RGB_FROM_XYZ[k][1] * Y + RGB_FROM_XYZ[k][2] * Z;
    return out;
  }

  function encode(c) {  // lab._encode
    return c > 0.0031308 ? 1.055 * Math.pow(c, 1 / 2.4) - 0.055 : 12.92 * c;
  }

  function inGamut(lin) {  // lab._in_gamut
    return lin[0] >= -GAMUT_SLACK && lin[0] <= 1 + GAMUT_SLACK && lin[1] >= -GAMUT_SLACK &&
      lin[1] <= 1 + GAMUT_SLACK && lin[2] >= -GAMUT_SLACK && lin[2] <= 1 + GAMUT_SLACK;
  }

  var LIN = new Float64Array(3);  // one pixel's linear RGB (a photo's pixels reuse it)

  // lab._chroma_factor: the largest s in [0, 1) (bisection) with L*, s a*, s b* in sRGB
  function chromaFactor(L, a, b, iterations) {
    var lo = 0, hi = 1;
    for (var i = 0; i < iterations; i++) {
      var mid = (lo + hi) / 2;
      if (inGamut(labToLinear(L, mid * a, mid * b, LIN))) lo = mid; else hi = mid;
    }
    return lo;
  }

  // lab.lab_to_rgb_in_gamut for one pixel -> sRGB [r, g, b] in [0, 1] (into `out`)
  function labToRgbInGamut(L, a, b, iterations, out) {
    out = out || [0, 0, 0];
    L = Math.min(Math.max(L, 0), 100);
    var lin = labToLinear(L, a, b, LIN);
    if (!inGamut(lin)) {
      var s = chromaFactor(L, a, b, iterations || 16);
      lin = labToLinear(L, s * a, s * b, LIN);
    }
    for (var k = 0; k < 3; k++) out[k] = Math.min(Math.max(encode(lin[k]), 0), 1);
    return out;
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

  // The model's a*b* factor from its manifest ("saturation"; exports before the rename wrote
  // "output_gain"); 1 when it has none, as infer.default_saturation
  function modelSaturation(manifest) {
    if (typeof manifest.saturation === "number") return manifest.saturation;
    if (typeof manifest.output_gain === "number") return manifest.output_gain;
    return 1;
  }

  // ---- the pipeline (colorlib.infer / colorlib.engine) --------------------------------
  // The global branch of L* (Float32Array h*w in [0, 100]), rescaled as model.resize_for_global
  // -> {features, probabilities}
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

  // a*b* (Float32Array 2*h*w, about [-128, 127], before the saturation) of L* h x w; features given
  function predictAb(model, L, h, w, features) {
    var x = new Float32Array(h * w);
    for (var i = 0; i < x.length; i++) x[i] = L[i] / 100;
    var feeds = { L: new model.ort.Tensor("float32", x, [1, 1, h, w]) };
    if (model.global) feeds.global_features = new model.ort.Tensor("float32", features, [1, features.length]);
    return model.colorizer.run(feeds).then(function (out) {
      var ab = out.ab, h2 = ab.dims[2], w2 = ab.dims[3];
      var up = resizeBilinear(ab.data, 2, h2, w2, 2 * h2, 2 * w2), res = new Float32Array(2 * h * w);
      for (var c = 0; c < 2; c++) {  // crop to h x w (model.upsample_ab)
        for (var y = 0; y < h; y++) {
          for (var xx = 0; xx < w; xx++) res[(c * h + y) * w + xx] = denormalizeAb(up[(c * 2 * h2 + y) * 2 * w2 + xx]);
        }
      }
      return res;
    });
  }

  // infer._to_rgb8: L* (H*W) and a*b* (2*h*w, saturation applied) -> RGBA bytes, in gamut at constant L*
  function toRgb8(L, H, W, ab, h, w) {
    if (h !== H || w !== W) ab = resizeBilinear(ab, 2, h, w, H, W);
    var out = new Uint8ClampedArray(4 * H * W), n = H * W, rgb = [0, 0, 0];
    for (var p = 0; p < n; p++) {
      labToRgbInGamut(L[p], ab[p], ab[n + p], 16, rgb);
      out[4 * p] = Math.round(rgb[0] * 255);
      out[4 * p + 1] = Math.round(rgb[1] * 255);
      out[4 * p + 2] = Math.round(rgb[2] * 255);
      out[4 * p + 3] = 255;
    }
    return out;
  }

  // infer.lightness of a photo, at full size and at the network's size (infer.network_size):
  // {L, H, W, seen, h, w}
  function lightness(image, maxPixels) {
    var H = image.height, W = image.width, L = rgbToL(image.data, H * W);
    var hw = networkSize(H, W, maxPixels || DEFAULT_MAX_PIXELS), h = hw[0], w = hw[1];
    var seen = (h === H && w === W) ? L : resizeArea(L, H, W, h, w);
    return { L: L, H: H, W: W, seen: seen, h: h, w: w };
  }

  // infer.colorize of ImageData -> {image: ImageData, probabilities, features, seconds}.
  // opts.features: a given global vector (a mix, section 4.5); opts.saturation: the factor on
  // a*b* (default: the model's own, infer.default_saturation).
  function colorize(modelName, image, opts) {
    opts = opts || {};
    var t0 = performance.now();
    return loadModel(modelName).then(function (model) {
      var lum = image.L ? image : lightness(image, opts.maxPixels);
      var g = (opts.features || !model.global) ? Promise.resolve({ features: opts.features, probabilities: null })
        : globalBranch(model, lum.seen, lum.h, lum.w);
      return g.then(function (gb) {
        return predictAb(model, lum.seen, lum.h, lum.w, gb.features).then(function (ab) {
          var saturation = opts.saturation === undefined ? modelSaturation(model.manifest) : opts.saturation;
          for (var i = 0; i < ab.length; i++) ab[i] *= saturation;
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
    var n = lum.H * lum.W, out = new Uint8ClampedArray(4 * n), rgb = [0, 0, 0];
    for (var p = 0; p < n; p++) {
      var v = Math.round(labToRgbInGamut(lum.L[p], 0, 0, 16, rgb)[0] * 255);
      out[4 * p] = out[4 * p + 1] = out[4 * p + 2] = v; out[4 * p + 3] = 255;
    }
    return new ImageData(out, lum.W, lum.H);
  }

  function topK(probabilities, classes, k) {
    var idx = Array.from(probabilities.keys()).sort(function (a, b) { return probabilities[b] - probabilities[a]; });
    return idx.slice(0, k).map(function (i) { return [classes ? classes[i] : String(i), probabilities[i]]; });
  }

  // A picked or dropped file, or an <img> of the page -> ImageData of its pixels as stored (no
  // colour management, as PIL reads them). Transparent pixels are seen over white, as the
  // network sees them in colorlib (which also keeps the alpha; this page shows opaque results).
  function readImage(source) {
    var name = source.name || source.alt || "the photo";
    var ready = source.decode ? source.decode() : Promise.resolve();
    return ready.then(function () {
      return createImageBitmap(source, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    }).then(function (bmp) {
      var c = document.createElement("canvas");
      c.width = bmp.width; c.height = bmp.height;
      var ctx = c.getContext("2d");
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, c.width, c.height);
      ctx.drawImage(bmp, 0, 0);
      return ctx.getImageData(0, 0, c.width, c.height);
    }, function () { throw new Error(name + ": not an image this browser can read"); });
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
    input.addEventListener("change", function () {
      var file = input.files[0];
      // emptied once read (the File stays valid), so that choosing the same file again, say after
      // a gallery photo, is a change too
      input.value = "";
      if (file) onFile(file);
    });
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

  // the five most likely scene classes of a result into the list `ol` (emptied first)
  function showTop5(ol, r) {
    ol.textContent = "";
    if (!r.probabilities) return;
    topK(r.probabilities, r.classes, 5).forEach(function (c) {
      ol.appendChild(el("li", {}, c[0] + " (" + (100 * c[1]).toFixed(1) + "%)"));
    });
  }

  // one button per gallery photo (<img class="colorlib-gallery" alt="name">) into `parent`;
  // a click calls onPick(img)
  function thumbs(gallery, parent, onPick) {
    return gallery.map(function (img) {
      var b = el("button", { type: "button", "class": "colorlib-thumb", title: img.alt,
                             "aria-pressed": "false", "data-name": img.alt });
      b.appendChild(img.cloneNode());
      b.addEventListener("click", function () { onPick(img); });
      parent.appendChild(b);
      return b;
    });
  }

  function press(buttons, name) {
    buttons.forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.name === name)); });
  }

  // Resolves once the browser has had the chance to handle input and paint (a status just set
  // shows): after the next animation frame, or a short timeout where frames are not drawn (a
  // hidden tab)
  function yieldToBrowser() {
    return new Promise(function (resolve) {
      var done = false;
      function go() { if (!done) { done = true; setTimeout(resolve, 0); } }
      if (window.requestAnimationFrame) requestAnimationFrame(go);
      setTimeout(go, 50);
    });
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
    root.textContent = "";
    var pair = el("div", { "class": "colorlib-pair" });
    pair.appendChild(gray.figure); pair.appendChild(result.figure);
    root.appendChild(picker("Pick or drop a photo (it stays on your computer):", run));
    root.appendChild(el("p", { "class": "colorlib-status", role: "status" },
                        "No photo yet. The network (" + name + ") is downloaded when you pick the first one."));
    root.appendChild(pair); root.appendChild(top); root.appendChild(link);
    root.dataset.state = "idle";

    function run(file) {
      setStatus(root, "busy", "Loading the model (first time only) and colorizing " + file.name + "...");
      readImage(file).then(function (image) {
        var lum = lightness(image);
        show(gray.canvas, grayImage(lum));
        return colorize(name, lum).then(function (r) {
          show(result.canvas, r.image);
          showTop5(top, r);
          link.download = file.name.replace(/\.[^.]*$/, "") + "-color.png";
          result.canvas.toBlob(function (blob) {
            if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
            link.href = URL.createObjectURL(blob);
            link.hidden = false;
            root.dataset.seconds = r.seconds.toFixed(3);
            setStatus(root, "done", image.width + "x" + image.height + " colorized in " + r.seconds.toFixed(2) +
                      " s (" + name + ", ONNX Runtime Web, in this browser). Top-5 scene classes:");
          }, "image/png");
        });
      }).catch(function (e) { fail(root, e); });
    }
  }

  // data-colorlib="mix": photo A colorized with (1 - t) x A's global features + t x B's (section
  // 4.5). Each photo is the reader's (picked or dropped) or one of the gallery's: the
  // <img class="colorlib-gallery" alt="name"> the page put inside the element; data-a and
  // data-b name the gallery photos chosen at first. Nothing is computed before the reader acts.
  function mountMix(root) {
    var name = root.dataset.model;
    var gallery = Array.prototype.slice.call(root.querySelectorAll("img.colorlib-gallery"));
    var photos = { a: null, b: null }, rows = {};
    root.textContent = "";
    var result = figure("A colorized with the mixed global features");
    var slider = el("input", { type: "range", min: "0", max: "1", step: "0.05", value: "0",
                               "class": "colorlib-t", "aria-label": "mixing t" });
    var tText = el("span", { "class": "colorlib-t-value" }, " t = 0.00");
    var busy = false, again = false;
    rows.a = choices("a", "Photo A (colorized):");
    rows.b = choices("b", "Photo B (lends its global features):");
    var row = el("p", { "class": "colorlib-slider" }, "");
    row.appendChild(slider); row.appendChild(tText);
    root.appendChild(row);
    root.appendChild(el("p", { "class": "colorlib-status", role: "status" }, ""));
    root.appendChild(result.figure);
    select("a", root.dataset.a, true);
    select("b", root.dataset.b, true);
    setStatus(root, "idle", photos.a && photos.b
      ? "Move t, or choose other photos: the network (" + name + ") is downloaded when first needed."
      : "Choose photos A and B.");
    slider.addEventListener("input", function () {
      tText.textContent = " t = " + Number(slider.value).toFixed(2);
      update();
    });

    function choices(which, label) {
      var p = el("div", { "class": "colorlib-choices" });
      p.appendChild(el("span", { "class": "colorlib-choice-label" }, label));
      var buttons = thumbs(gallery, p, function (img) { select(which, img.alt, false); });
      p.appendChild(picker("or your own:", function (f) { use(which, f.name, f); }));
      root.appendChild(p);
      return buttons;
    }

    function select(which, galleryName, quietly) {
      var img = gallery.filter(function (g) { return g.alt === galleryName; })[0];
      if (!img) return;
      use(which, img.alt, img, quietly);
    }

    // photo `which` is now `source`; its L* and global features are computed when first needed
    function use(which, label, source, quietly) {
      var features = null;
      press(rows[which], label);
      photos[which] = {
        label: label,
        ready: function () {
          if (!features) {
            features = readImage(source).then(function (image) {
              var lum = lightness(image);
              return loadModel(name).then(function (model) { return globalBranch(model, lum.seen, lum.h, lum.w); })
                .then(function (g) { return { lum: lum, features: g.features }; });
            });
          }
          return features;
        },
      };
      if (!quietly) update();
    }

    function update() {
      if (!photos.a || !photos.b) {
        setStatus(root, "idle", photos.a || photos.b ? "Now choose the other photo." : "Choose photos A and B.");
        return;
      }
      if (busy) { again = true; return; }
      busy = true;
      var t = Number(slider.value), a = photos.a, b = photos.b;
      setStatus(root, "busy", "Colorizing " + a.label + " at t = " + t.toFixed(2) + " (the first time also " +
                "downloads the network)...");
      Promise.all([a.ready(), b.ready()]).then(function (got) {
        var ga = got[0].features, gb = got[1].features, g = new Float32Array(ga.length);
        for (var i = 0; i < g.length; i++) g[i] = ga[i] + t * (gb[i] - ga[i]);  // torch.lerp (model.mix_global)
        return colorize(name, got[0].lum, { features: g });
      }).then(function (r) {
        show(result.canvas, r.image);
        root.dataset.t = String(t); root.dataset.a = a.label; root.dataset.b = b.label;
        root.dataset.seconds = r.seconds.toFixed(3);
        busy = false;
        if (again) { again = false; update(); return; }
        setStatus(root, "done", a.label + " with the global features of " + b.label + " at t = " + t.toFixed(2) +
                  ": colorized in " + r.seconds.toFixed(2) + " s in this browser.");
      }).catch(function (e) {
        busy = false; again = false;
        if (photos.a === a) photos.a = null;
        if (photos.b === b) photos.b = null;
        fail(root, e);
      });
    }
  }

  // data-colorlib="compare": one photo (picked, dropped or from the gallery) colorized by several
  // models side by side, each with its top-5 scene classes. The page names the models, in order,
  // as <span class="colorlib-model" data-model="name" data-label="caption">note</span> inside the
  // element (a note, when there is one, is shown under that model's classes) and may add a
  // gallery (<img class="colorlib-gallery" alt="name">). The models are downloaded with the first
  // photo and run one after the other, the status naming the one running ("colorizing with
  // sweep-alpha-1-300 (3 of 4)"), the page yielding to the browser before each; the network
  // sees at most DEFAULT_MAX_PIXELS of a large photo (lightness(), as the colorize box).
  function mountCompare(root) {
    var gallery = Array.prototype.slice.call(root.querySelectorAll("img.colorlib-gallery"));
    var specs = Array.prototype.slice.call(root.querySelectorAll(".colorlib-model")).map(function (s) {
      return { name: s.dataset.model, label: s.dataset.label || s.dataset.model, note: s.textContent.trim() };
    });
    root.textContent = "";
    root.appendChild(picker("Pick or drop a photo (it stays on your computer):", function (f) { run(f.name, f); }));
    var row = el("div", { "class": "colorlib-choices" });
    if (gallery.length) {
      row.appendChild(el("span", { "class": "colorlib-choice-label" }, "or choose one of these:"));
      root.appendChild(row);
    }
    var buttons = thumbs(gallery, row, function (img) { run(img.alt, img); });
    root.appendChild(el("p", { "class": "colorlib-status", role: "status" },
                        "No photo yet. The " + specs.length + " networks are downloaded when you choose the first one."));
    var gray = figure("input: its L* only"), grid = el("div", { "class": "colorlib-grid" });
    gray.figure.hidden = grid.hidden = true;  // until the first photo
    var panels = specs.map(function (spec) {
      var f = figure(spec.label), top = el("ol", { "class": "colorlib-top5" });
      f.figure.classList.add("colorlib-panel");
      f.figure.dataset.model = spec.name;
      f.figure.appendChild(top);
      if (spec.note) f.figure.appendChild(el("p", { "class": "colorlib-note" }, spec.note));
      grid.appendChild(f.figure);
      return { spec: spec, canvas: f.canvas, top: top, figure: f.figure };
    });
    root.appendChild(gray.figure); root.appendChild(grid);
    root.dataset.state = "idle";
    var busy = false, next = null;

    function run(label, source) {
      press(buttons, label);
      if (busy) { next = [label, source]; return; }
      busy = true;
      var t0 = performance.now();
      setStatus(root, "busy", "Reading " + label + " (the " + specs.length + " networks are downloaded the first time)...");
      var image, lum;
      yieldToBrowser().then(function () { return readImage(source); }).then(function (got) {
        image = got;
        specs.forEach(function (s) { loadModel(s.name).catch(function () {}); });  // download all at once
        // the same path as the colorize box: L* at full size, the network on at most
        // DEFAULT_MAX_PIXELS (an area-averaged copy, as infer.network_size), a*b* upsampled
        lum = lightness(image);
        show(gray.canvas, grayImage(lum));
        gray.figure.hidden = grid.hidden = false;
        panels.forEach(function (p) { p.figure.dataset.state = "waiting"; });
        // one model after the other, the status naming the one running and the page given back
        // to the browser before each (a large photo takes seconds per model)
        return panels.reduce(function (done, p, i) {
          return done.then(function () {
            p.figure.dataset.state = "busy";
            root.dataset.running = p.spec.name;
            setStatus(root, "busy", label + " (" + image.width + "x" + image.height + "): colorizing with " +
                      p.spec.name + " (" + (i + 1) + " of " + panels.length + ")" +
                      (lum.h !== lum.H ? ", the network at " + lum.w + "x" + lum.h : "") + "...");
            return yieldToBrowser();
          }).then(function () {
            return colorize(p.spec.name, lum).then(function (r) {
              show(p.canvas, r.image);
              showTop5(p.top, r);
              p.figure.dataset.state = "done";
            });
          });
        }, Promise.resolve()).then(function () {
          delete root.dataset.running;
          var seconds = (performance.now() - t0) / 1000;
          root.dataset.photo = label;
          root.dataset.seconds = seconds.toFixed(3);
          setStatus(root, "done", label + " (" + image.width + "x" + image.height + ") colorized by the " + specs.length +
                    " networks in " + seconds.toFixed(2) + " s (ONNX Runtime Web, in this browser), each with its top-5 scene classes:");
        });
      }).catch(function (e) { delete root.dataset.running; fail(root, e); }).then(function () {
        busy = false;
        if (next) { var n = next; next = null; run(n[0], n[1]); }
      });
    }
  }

  var MOUNT = { colorize: mountColorize, mix: mountMix, compare: mountCompare };

  // The one command that serves this copy of the book: its folder comes from the page's own
  // file:// address, so it is right wherever the reader keeps the book.
  function serveCommand() {
    var folder = decodeURIComponent(new URL("../", STATIC).pathname).replace(/\/$/, "");
    if (/^\/[A-Za-z]:/.test(folder)) folder = folder.slice(1);  // file:///C:/... on Windows
    return 'python3 -m http.server 8000 --bind 127.0.0.1 --directory "' + folder + '"';
  }

  var STYLE = [
    "[data-colorlib] { border: 1px solid #ccc; border-radius: 6px; padding: 0.6em 0.8em; margin: 1em 0; }",
    ".colorlib-drop { display: block; margin: 0.3em 0; }",
    ".colorlib-pair { display: flex; flex-wrap: wrap; gap: 1em; }",
    ".colorlib-figure { margin: 0.5em 0; }",
    // small photos (the gallery's 128x128) shown at least 256 px wide, large ones within the page
    ".colorlib-figure canvas { min-width: min(256px, 100%); max-width: 100%; max-height: 24em; object-fit: contain; }",
    ".colorlib-figure canvas[width='0'], .colorlib-figure canvas:not([width]) { display: none; }",
    ".colorlib-choices { margin: 0.4em 0; }",
    ".colorlib-choice-label { display: block; font-weight: bold; }",
    ".colorlib-thumb { padding: 2px; margin: 2px; border: 2px solid transparent; background: none; }",
    ".colorlib-thumb[aria-pressed='true'] { border-color: #2a7ae2; }",
    ".colorlib-thumb img { width: 64px; height: 64px; object-fit: cover; display: block; }",
    ".colorlib-slider input { width: 16em; vertical-align: middle; }",
    // several results side by side (data-colorlib="compare"), as many columns as fit
    ".colorlib-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(9em, 1fr)); gap: 0.8em; }",
    ".colorlib-grid .colorlib-figure canvas { min-width: 0; width: 100%; height: auto; }",
    ".colorlib-grid[hidden], .colorlib-figure[hidden] { display: none; }",
    ".colorlib-grid .colorlib-top5 { font-size: 0.85em; padding-left: 1.5em; margin: 0.2em 0; overflow-wrap: anywhere; }",
    ".colorlib-note { font-size: 0.85em; font-style: italic; margin: 0.2em 0; }",
  ].join("\n");

  function mountAll() {
    if (!document.getElementById("colorlib-style")) {
      var style = el("style", { id: "colorlib-style" });
      style.textContent = STYLE;
      document.head.appendChild(style);
    }
    document.querySelectorAll("[data-colorlib]").forEach(function (root) {
      if (root.dataset.mounted) return;
      root.dataset.mounted = "1";
      if (location.protocol === "file:") {
        root.textContent = "";
        root.dataset.state = "needs-server";
        var page = location.href.slice(new URL("../", STATIC).href.length).split("#")[0];
        var p = el("p", { "class": "colorlib-status colorlib-serve" },
                   "This page was opened from disk, where the browser does not let it load the network. " +
                   "Serve the book with this one command (Python 3, in a terminal): ");
        p.appendChild(el("code", {}, serveCommand()));
        p.appendChild(document.createTextNode(" and open "));
        var url = "http://127.0.0.1:8000/" + page;
        p.appendChild(el("a", { href: url }, url));
        p.appendChild(document.createTextNode(" instead."));
        root.appendChild(p);
        return;
      }
      MOUNT[root.dataset.colorlib](root);
    });
  }

  window.colorlib = {
    rgbToL: rgbToL, labToRgbInGamut: labToRgbInGamut, labToLinear: labToLinear, encode: encode,
    chromaFactor: chromaFactor, denormalizeAb: denormalizeAb, resizeBilinear: resizeBilinear,
    resizeAntialias: resizeAntialias, resizeArea: resizeArea, networkSize: networkSize,
    lightness: lightness, colorize: colorize, loadModel: loadModel, topK: topK, mountAll: mountAll,
    readImage: readImage, modelSaturation: modelSaturation, serveCommand: serveCommand,
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();

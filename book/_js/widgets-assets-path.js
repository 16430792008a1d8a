// Loaded just before the vendored require.js and widget manager (nb_ipywidgets_js in
// _config.yml). The widget manager's modules find their icon fonts relative to their AMD
// module paths; this maps every module it defines into the folder where the fonts are, the
// copy in the book's own _static folder (a global `require` object is read by require.js as
// its configuration). Nothing is fetched from these paths: embed-amd.js defines the modules.
(function () {
  var here = document.currentScript && document.currentScript.src;
  if (!here) return;
  var dist = new URL("html-manager/dist/", here).href;
  var paths = { "@jupyter-widgets/html-manager/dist/libembed-amd": dist + "libembed-amd" };
  ["html-manager", "base", "base7", "controls", "controls7", "output"].forEach(function (name) {
    paths["@jupyter-widgets/" + name] = dist + name;
  });
  window.__jupyter_widgets_assets_path__ = dist;
  window.require = { paths: paths };
})();

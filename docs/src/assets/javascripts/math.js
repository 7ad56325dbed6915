// Render every formula of the page with KaTeX, which is served with the site (assets/katex/).
// pymdownx.arithmatex (generic mode) leaves display math as <div class="arithmatex">\[…\]</div>
// and inline math as <span class="arithmatex">\(…\)</span>; each becomes KaTeX's HTML + MathML.
// A formula KaTeX cannot parse is shown as an element of class `katex-error` (the docs' browser
// test fails on it) instead of stopping the others.
(function () {
  "use strict";

  function strip(tex) {
    tex = tex.trim();
    var open = tex.slice(0, 2);
    if (open === "\\(" || open === "\\[") tex = tex.slice(2, -2);
    else if (tex.slice(0, 2) === "$$") tex = tex.slice(2, -2);
    else if (tex.charAt(0) === "$") tex = tex.slice(1, -1);
    return tex.trim();
  }

  function render(root) {
    if (typeof katex === "undefined") return;
    var nodes = root.querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      if (node.getAttribute("data-katex") === "done") continue;
      katex.render(strip(node.textContent), node, {
        displayMode: node.tagName === "DIV",
        throwOnError: false,
        strict: "ignore",
        output: "htmlAndMathml",
      });
      node.setAttribute("data-katex", "done");
    }
  }

  if (typeof document$ !== "undefined" && document$.subscribe) {
    // Material for MkDocs: called for the first page and after every instant navigation
    document$.subscribe(function () { render(document.body); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { render(document.body); });
  } else {
    render(document.body);
  }
})();

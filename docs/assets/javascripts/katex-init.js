// Typeset every formula on the page with the KaTeX copy the site ships (docs/assets/katex).
// Markdown math ($...$, $$...$$) reaches the page as \(...\) and \[...\] (pymdownx.arithmatex,
// generic mode); notebook cells keep their $$...$$. A formula KaTeX cannot parse is an error
// on the console, which the browser test (tests/test_browser.py) reports.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
    ],
    throwOnError: true,
    strict: "error", // LaTeX only: a Unicode letter in \text{} is an error, not a silent fallback
    errorCallback: (message, error) => console.error(message, error),
  });
});

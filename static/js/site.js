// The site's few behaviours, as data attributes instead of inline handlers, so the Content-Security-Policy can
// forbid inline script (script-src 'self').
//   data-confirm="text"   on a form: ask before submitting
//   data-autosubmit       on a select: submit its form when it changes
//   data-select-on-click  on an input: select its text when clicked
//   data-copy-from="id"   on a button: copy that field's value, then show data-done
//   data-print            on a button: print the page (the certificate)
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute && e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) { e.preventDefault(); }
}, true);
document.addEventListener("change", function (e) {
  if (e.target.hasAttribute && e.target.hasAttribute("data-autosubmit") && e.target.form) { e.target.form.submit(); }
});
document.addEventListener("click", function (e) {
  var t = e.target;
  if (!t.hasAttribute) { return; }
  if (t.hasAttribute("data-select-on-click")) { t.select(); }
  if (t.hasAttribute("data-print")) { window.print(); }
  var src = t.getAttribute("data-copy-from");
  if (src && navigator.clipboard) {
    navigator.clipboard.writeText(document.getElementById(src).value).then(function () {
      t.textContent = t.dataset.done;
    });
  }
});

/* Progressive enhancement on every page; without it the pages work the same.
   - A page that answers a POST (an error page, e.g. an expired form; forms redirect) becomes a GET
     in the history, so a reload does not send the form again: it reloads the page itself.
   - The error summary's links focus their field and bring its label or legend into view
     (a plain link would scroll the label off the top), as the GOV.UK design system does.
   Focus itself needs no script: the error summary and a new state's heading carry autofocus. */
(function () {
  "use strict";
  if (document.body.hasAttribute("data-answer-to-post") && window.history.replaceState) {
    window.history.replaceState(null, "", window.location.href);
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest(".error-summary a[href^='#']");
    if (!link) {
      return;
    }
    var field = document.getElementById(link.getAttribute("href").slice(1));
    if (!field) {
      return;
    }
    event.preventDefault();
    var legend = field.closest("fieldset") && field.closest("fieldset").querySelector("legend");
    var label = document.querySelector("label[for='" + field.id + "']");
    (legend || label || field).scrollIntoView();
    field.focus({ preventScroll: true });
  });
})();

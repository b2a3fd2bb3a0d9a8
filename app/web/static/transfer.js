/* The wait timer of /transfer/{id}, as progressive enhancement.
   It counts down to the deadline the server computed, on the server's clock: the page carries
   the server's "now", so a wrong clock on the adviser's computer does not matter. Once the
   deadline has passed it shows the call back form that the server already put in the page and
   announces it to screen readers. Whether the caller may still be connected, or a call back is
   due, is decided again by the server when either form is sent. Without this script the page
   reloads itself just after the deadline (a <noscript> refresh) and the server shows the form. */
(function () {
  "use strict";
  var timer = document.getElementById("countdown");
  if (!timer) {
    return;
  }
  var deadline = Date.parse(timer.getAttribute("data-deadline"));
  var offset = Date.parse(timer.getAttribute("data-server-now")) - Date.now();
  var seconds = document.getElementById("countdown-seconds");
  var handle = null;

  function showCallbackForm() {
    document.getElementById("waiting").hidden = true;
    document.getElementById("callback").hidden = false;
    var alert = document.getElementById("threshold-alert");
    alert.textContent = alert.getAttribute("data-message");
    document.getElementById("callback-title").focus();
  }

  function tick() {
    var left = deadline - (Date.now() + offset);
    if (left < 0) {  // past the deadline: at the deadline itself the call may still connect
      window.clearInterval(handle);
      seconds.textContent = "0";
      showCallbackForm();
      return;
    }
    seconds.textContent = String(Math.ceil(left / 1000));
  }

  handle = window.setInterval(tick, 250);
  tick();
})();

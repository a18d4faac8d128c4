/* Lesson player: resume at the remembered position and ping what was played (members.learning.views.lesson_position).
   `watched` counts only seconds actually played (timeupdate steps under 2 s), so seeking is not "watching". */
(function () {
  "use strict";
  var player = document.getElementById("lesson-player");
  if (!player) return;
  var resumeAt = parseFloat(player.dataset.resumeAt || "0") || 0;
  var resumed = false;
  function resume() {
    if (resumed) return;
    resumed = true;
    // Finished last time: start from the beginning rather than at the last frame.
    if (!resumeAt || (isFinite(player.duration) && resumeAt >= player.duration - 1)) return;
    try { player.currentTime = resumeAt; } catch (e) { /* not seekable yet */ }
  }
  if (player.readyState >= 1) resume(); else player.addEventListener("loadedmetadata", resume);

  var url = player.dataset.positionUrl;
  if (!url) return;
  var csrf = "";
  try { csrf = JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || ""; } catch (e) { csrf = ""; }
  var watched = 0, last = null, lastSent = -1;
  player.addEventListener("timeupdate", function () {
    var t = player.currentTime;
    if (last !== null && !player.seeking) {
      var step = t - last;
      if (step > 0 && step < 2) watched += step;
    }
    last = t;
  });
  player.addEventListener("seeking", function () { last = null; });
  function send(beacon) {
    var position = Math.floor(player.currentTime);
    var played = Math.floor(watched);
    if (position === lastSent && played === 0) return;
    watched -= played;
    lastSent = position;
    var body = new FormData();
    body.append("position", String(position));
    body.append("watched", String(played));
    body.append("csrfmiddlewaretoken", csrf);
    if (beacon && navigator.sendBeacon) { navigator.sendBeacon(url, body); return; }
    fetch(url, {method: "POST", body: body, credentials: "same-origin", headers: {"X-CSRFToken": csrf}})
      .then(function (r) { player.dataset.saved = r.ok ? String(position) : "error"; })
      .catch(function () { player.dataset.saved = "error"; });
  }
  setInterval(function () { if (!player.paused) send(false); }, 15000);
  player.addEventListener("pause", function () { send(false); });
  player.addEventListener("ended", function () { send(false); });
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") send(true); });
})();

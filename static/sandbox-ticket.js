// The sandbox helpdesk's side of the ZAF conversation: answers the app's get/metadata/invoke.
(function () {
  "use strict";
  var side = document.getElementById("sb-side");
  var frame = document.getElementById("sb-app");
  var data = JSON.parse(side.dataset.zaf);
  // Back or Forward to this ticket would replay the sidebar's launch POST (refused: a launch
  // is used once). Zendesk opens the app afresh each time; so does this page.
  var launchUrl = frame.getAttribute("src");
  window.addEventListener("pageshow", function (event) {
    var nav = window.performance && performance.getEntriesByType &&
      performance.getEntriesByType("navigation")[0];
    if (event.persisted || (nav && nav.type === "back_forward")) {
      frame.src = launchUrl + (launchUrl.indexOf("?") < 0 ? "?" : "&") + "fresh=" + Date.now();
    }
  });
  var settings = { order_id_field_id: Number(side.dataset.fieldId) };
  window.addEventListener("message", function (event) {
    if (event.source !== frame.contentWindow || event.origin !== window.location.origin) { return; }
    var msg = event.data || {};
    if (msg.zafSandbox !== true) { return; }
    var result = null;
    if (msg.method === "get") {
      result = {};
      msg.args.forEach(function (key) { result[key] = data.hasOwnProperty(key) ? data[key] : null; });
    } else if (msg.method === "metadata") {
      result = { appId: 1000001, installationId: 1, settings: settings };
    } else if (msg.method === "invoke" && msg.args[0] === "resize" && msg.args[1] && msg.args[1].height) {
      frame.style.height = msg.args[1].height;
    } else if (msg.method === "invoke" && msg.args[0] === "ticket.editor.insert") {
      // As Zendesk's editor does: the app's text goes in where the agent is typing (as
      // markup; the sandbox's plain editor shows its text).
      var editor = document.getElementById("sb-reply");
      var holder = document.createElement("div");
      holder.innerHTML = String(msg.args[1] || "");
      var text = holder.textContent;
      var at = editor.selectionStart || editor.value.length;
      editor.value = editor.value.slice(0, at) + text + editor.value.slice(at);
    }
    frame.contentWindow.postMessage({ zafSandbox: true, id: msg.id, result: result }, window.location.origin);
  });
})();

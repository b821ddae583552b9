// Sandbox stand-in for Zendesk's ZAF client SDK: the same calls, answered by the parent page.
(function () {
  "use strict";
  var pending = {};
  var seq = 0;
  window.addEventListener("message", function (event) {
    if (event.source !== window.parent || !event.data || event.data.zafSandbox !== true) { return; }
    var resolve = pending[event.data.id];
    if (resolve) { delete pending[event.data.id]; resolve(event.data.result); }
  });
  function ask(method, args) {
    return new Promise(function (resolve) {
      var id = ++seq;
      pending[id] = resolve;
      window.parent.postMessage({ zafSandbox: true, id: id, method: method, args: args }, window.location.origin);
    });
  }
  var client = {
    get: function (keys) { return ask("get", [].concat(keys)); },
    metadata: function () { return ask("metadata", []); },
    invoke: function (name, args) { return ask("invoke", [name, args]); }
  };
  window.ZAFClient = { init: function () { return client; } };
})();

// Zendesk adapter for the Order Truth sidebar: reads the ticket and talks to the agent's
// editor through ZAF (Zendesk's app framework SDK, loaded just before this file).
(function () {
  "use strict";
  var client = window.ZAFClient ? window.ZAFClient.init() : null;

  window.OrderTruthHost = {
    // The ticket's id, Order ID field (the app setting order_id_field_id), subject and text.
    ticketContext: function () {
      if (!client) { return Promise.reject(new Error("Open Order Truth from a Zendesk ticket.")); }
      return client.metadata().then(function (meta) {
        var settings = (meta && meta.settings) || {};
        var fieldKey = settings.order_id_field_id ? "ticket.customField:custom_field_" + settings.order_id_field_id : null;
        var keys = ["ticket.id", "ticket.subject", "ticket.description"];
        if (fieldKey) { keys.push(fieldKey); }
        return client.get(keys).then(function (data) {
          return { ticketId: String(data["ticket.id"]), field: fieldKey ? (data[fieldKey] || null) : null,
                   subject: data["ticket.subject"] || "", description: data["ticket.description"] || "" };
        });
      });
    },
    resize: function (height) {
      if (client) { client.invoke("resize", { width: "100%", height: height + "px" }); }
    },
    // Put text into the agent's reply editor; the agent reviews and sends it.
    insertReply: function (text) {
      if (!client) { return Promise.reject(new Error("No helpdesk editor here.")); }
      return client.invoke("ticket.editor.insert", text);
    }
  };
})();

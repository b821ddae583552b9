// Order Truth sidebar, for any helpdesk: the host adapter (window.OrderTruthHost, e.g.
// static/hosts/zendesk.js) reads the ticket; this finds the order, renders it and writes back.
(function () {
  "use strict";
  var body = document.body;
  var session = body.dataset.session;
  var csrf = body.dataset.csrf;
  var recordUrl = body.dataset.recordUrl;
  var streamUrl = body.dataset.streamUrl;
  var actionsUrl = body.dataset.actionsUrl;
  var resolveUrl = body.dataset.resolveUrl;
  var contextEl = document.getElementById("ot-context");
  var recordEl = document.getElementById("ot-record");
  var statusEl = document.getElementById("ot-status");
  var lookupForm = document.getElementById("ot-lookup");
  var orderInput = document.getElementById("ot-order");
  var host = window.OrderTruthHost;
  var ticketId = null;
  var orderId = null;
  var agentEl = document.getElementById("ot-agent");
  var agentName = body.dataset.agentName || "";
  var rememberKey = "ordertruth.agent." + body.dataset.installation;

  function say(text) { contextEl.textContent = text; }

  function resize() {
    if (host) { host.resize(Math.min(document.body.scrollHeight + 16, 2000)); }
  }

  function ticketContext() {
    if (!host) { return Promise.reject(new Error("Open Order Truth from a helpdesk ticket.")); }
    return host.ticketContext().then(function (ticket) {
      // The server picks the order: the field first, then order numbers in the subject and
      // description (it re-reads the ticket itself when it can), trying each in turn.
      return api(resolveUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ ticket_id: ticket.ticketId, field: ticket.field,
                               subject: ticket.subject, description: ticket.description })
      }).then(function (resp) { return resp.json(); }).then(function (found) {
        return { ticketId: ticket.ticketId, orderId: found.order_id, from: found.source, tried: found.tried || [], found: found.found };
      });
    });
  }

  function api(url, options) {
    options = options || {};
    options.headers = Object.assign({ "Authorization": "Bearer " + session }, options.headers || {});
    return fetch(url, options);
  }

  // One polite announcement per lookup; the record itself is not a live region.
  function announce(text) { statusEl.textContent = text; }

  var loading = 0;  // which load() is current: an older stream must not overwrite a newer one

  function load(id, refresh) {
    var mine = ++loading;
    orderId = id;
    orderInput.value = id;
    recordEl.setAttribute("aria-busy", "true");
    announce("Looking up order " + id + "…");
    var query = "?ticket_id=" + encodeURIComponent(ticketId) + "&order_id=" + encodeURIComponent(id) + (refresh ? "&refresh=1" : "");
    var streaming = streamUrl && window.ReadableStream && window.TextDecoder;
    var current = function () { return mine === loading; };
    var done = streaming ? api(streamUrl + query).then(function (resp) { return readStream(resp, current); })
                         : api(recordUrl + query).then(function (resp) { return readWhole(resp, current); });
    return done.catch(function () {
      if (current()) { recordEl.textContent = "Couldn't reach Order Truth. Check your connection and refresh."; }
    }).then(function () {
      if (!current()) { return; }
      recordEl.removeAttribute("aria-busy");
      announce("");
      resize();
    });
  }

  function ended(resp) {
    if (resp.status !== 401) { return false; }
    recordEl.innerHTML = "";
    say("Session ended: reopen the ticket.");
    return true;
  }

  function problem(text) {
    var p = document.createElement("p");
    p.className = "ot-error";
    p.setAttribute("role", "alert");
    p.textContent = text;
    recordEl.replaceChildren(p);
  }

  function readWhole(resp, current) {
    var type = resp.headers.get("Content-Type") || "";
    if (!resp.ok && type.indexOf("json") >= 0) {
      // Errors come as JSON: {"error": {"code", "message"}}; say the message in words.
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (!current() || ended(resp)) { return; }
        problem((data.error && data.error.message) || ("Order Truth answered HTTP " + resp.status + "."));
      });
    }
    return resp.text().then(function (html) {
      if (!current() || ended(resp)) { return; }
      recordEl.innerHTML = html;  // server-rendered, every upstream string escaped
      wire();
    });
  }

  // The streamed record: one JSON object per line (start, one per source, then record).
  function readStream(resp, current) {
    var type = resp.headers.get("Content-Type") || "";
    if (!resp.ok || type.indexOf("ndjson") < 0 || !resp.body) { return readWhole(resp, current); }
    var reader = resp.body.getReader();
    var decoder = new TextDecoder();
    var buffered = "";
    function part(line) {
      if (!line || !current()) { return; }
      var msg = JSON.parse(line);
      if (msg.type === "start") {
        recordEl.innerHTML = msg.html;
      } else if (msg.type === "source") {
        var slot = document.getElementById("source-" + msg.source);
        if (slot) { slot.outerHTML = msg.html; }
      } else if (msg.type === "record") {
        recordEl.innerHTML = msg.html;
        wire();
      } else if (msg.type === "error") {
        recordEl.insertAdjacentHTML("afterbegin", msg.html);
      }
      resize();
    }
    function pump() {
      return reader.read().then(function (chunk) {
        if (!current()) { reader.cancel(); return; }
        if (chunk.done) { part(buffered.trim()); return; }
        buffered += decoder.decode(chunk.value, { stream: true });
        var lines = buffered.split("\n");
        buffered = lines.pop();
        lines.forEach(part);
        return pump();
      });
    }
    return pump();
  }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) { return window.crypto.randomUUID(); }
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2, 10);
  }

  // Money typed by the agent ("25", "25.5", "25.50") to integer minor units, or null.
  function toMinor(text, exponent) {
    var m = /^\s*(\d{1,9})(?:[.,](\d+))?\s*$/.exec(text || "");
    if (!m || (m[2] || "").length > exponent) { return null; }
    var fraction = ((m[2] || "") + "000").slice(0, exponent);
    return Number(m[1]) * Math.pow(10, exponent) + (exponent ? Number(fraction) : 0);
  }

  function answer(resp) {
    return resp.json().catch(function () { return {}; }).then(function (data) {
      return { ok: resp.ok, status: resp.status, data: data,
               message: data.message || (data.error && data.error.message) || ("HTTP " + resp.status) };
    });
  }

  // Refund: the form, then a confirm step saying exactly what will happen, then the refund.
  function wireRefund() {
    var box = recordEl.querySelector(".ot-refund");
    if (!box) { return; }
    var form = box.querySelector(".ot-refund-form");
    var confirmBox = box.querySelector(".ot-refund-confirm");
    var summary = box.querySelector(".ot-refund-summary");
    var go = box.querySelector("[data-ot-refund-go]");
    var status = box.querySelector(".ot-refund-status");
    var asked = null;
    function url(kind) {
      return body.dataset[kind].replace("TICKET", encodeURIComponent(ticketId));
    }
    function refused(r) {
      status.className = "ot-refund-status fail";
      status.textContent = r.message;
      if (r.data.error && r.data.error.code === "agent_sign_in_required") {
        agentName = "";
        forgetRemembered();
        showAgent(r.message);
      }
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var option = form.elements.payment_id.selectedOptions[0];
      var minor = toMinor(form.elements.amount.value, Number(option.dataset.exponent));
      if (minor === null || minor <= 0) {
        status.className = "ot-refund-status fail";
        status.textContent = "Type an amount such as 25.00.";
        return;
      }
      var request = { order_id: orderId, payment_id: option.value, amount_minor: minor,
                      currency: option.dataset.currency, reason: form.elements.reason.value };
      status.className = "ot-refund-status";
      status.textContent = "Checking…";
      post(url("refundPreviewUrl"), request).then(answer).then(function (r) {
        if (!r.ok) { refused(r); return; }
        asked = request;
        summary.textContent = r.data.summary + " Up to " + r.data.refundable + " can be refunded to it.";
        go.textContent = "Refund " + r.data.amount;
        go.disabled = false;
        form.hidden = true;
        confirmBox.hidden = false;
        status.textContent = "";
        resize();
      });
    });
    box.querySelector("[data-ot-refund-cancel]").addEventListener("click", function () {
      asked = null;
      confirmBox.hidden = true;
      form.hidden = false;
    });
    go.addEventListener("click", function () {
      if (!asked || go.disabled) { return; }
      go.disabled = true;  // the server makes it once anyway: same request, same key
      status.className = "ot-refund-status";
      status.textContent = "Refunding…";
      post(url("refundUrl"), asked).then(answer).then(function (r) {
        if (r.data.status === "done") {
          say(r.message);
          load(orderId, true);  // the record afresh: what's left to refund, the flags
          return;
        }
        if (r.data.status === "in_progress" || r.data.status === "unknown") {
          status.className = "ot-refund-status fail";
          status.textContent = r.message;
          setTimeout(function () { go.disabled = false; }, 5000);
          return;
        }
        refused(r);
      }).catch(function () {
        status.className = "ot-refund-status fail";
        status.textContent = "Network error: the refund may or may not have been made. Click again to check; it won't be made twice.";
        go.disabled = false;
      }).then(resize);
    });
  }

  // One of a list of fixes the record offers (cancel a flagged refund, make a missing ERP
  // document): the server says exactly what will happen, the agent confirms, it is done once.
  function wirePicked(o) {
    var box = recordEl.querySelector("." + o.box);
    if (!box) { return; }
    var confirmBox = box.querySelector("." + o.box + "-confirm");
    var go = box.querySelector("[data-" + o.box + "-go]");
    var status = box.querySelector("." + o.box + "-status");
    if (!confirmBox || !go || !status) { return; }
    var asked = null;
    function url(kind) {
      return body.dataset[kind].replace("TICKET", encodeURIComponent(ticketId));
    }
    function fail(message) {
      status.className = o.box + "-status fail";
      status.textContent = message;
    }
    box.querySelectorAll("[data-" + o.pick + "]").forEach(function (button) {
      button.addEventListener("click", function () {
        var request = o.request(button);
        status.className = o.box + "-status";
        status.textContent = "Checking…";
        post(url(o.previewUrl), request).then(answer).then(function (r) {
          if (!r.ok) { fail(r.message); return; }
          asked = request;
          o.show(box, r.data);
          confirmBox.hidden = false;
          go.disabled = false;
          status.textContent = "";
          resize();
        });
      });
    });
    box.querySelector("[data-" + o.box + "-back]").addEventListener("click", function () {
      asked = null;
      confirmBox.hidden = true;
    });
    go.addEventListener("click", function () {
      if (!asked || go.disabled) { return; }
      go.disabled = true;  // the server does it once anyway: same request, same key
      status.className = o.box + "-status";
      status.textContent = o.working;
      post(url(o.doUrl), asked).then(answer).then(function (r) {
        if (r.data.status === "done") {
          say(r.message);
          load(orderId, true);  // the record afresh: the flags recomputed
          return;
        }
        fail(r.message);
        if (r.data.status === "in_progress" || r.data.status === "unknown") {
          setTimeout(function () { go.disabled = false; }, 5000);
        }
      }).catch(function () {
        fail(o.lost);
        go.disabled = false;
      }).then(resize);
    });
  }

  function wireCancel() {
    wirePicked({
      box: "ot-cancel", pick: "ot-cancel", previewUrl: "cancelPreviewUrl", doUrl: "cancelUrl",
      working: "Cancelling…",
      lost: "Network error: the refund may or may not have been cancelled. Click again to check.",
      request: function (button) { return { order_id: orderId, refund_id: button.dataset.otCancel }; },
      show: function (box, data) { box.querySelector(".ot-cancel-summary").textContent = data.summary; }
    });
  }

  function wireErpFixes() {
    wirePicked({
      box: "ot-erpfix", pick: "ot-erp", previewUrl: "erpPreviewUrl", doUrl: "erpUrl",
      working: "Making the documents…",
      lost: "Network error: the documents may or may not have been made. Click again to check; nothing is made twice.",
      request: function (button) {
        return { order_id: orderId, action: button.dataset.otErp, subject: button.dataset.otErpSubject };
      },
      show: function (box, data) {
        var list = box.querySelector(".ot-erpfix-steps");
        list.textContent = "";
        data.steps.forEach(function (step) {
          var li = document.createElement("li");
          li.textContent = step;
          list.appendChild(li);
        });
      }
    });
  }

  // Resolve: the record's outcome and the admin's ticket changes for it, confirmed, applied.
  function wireResolve() {
    var box = recordEl.querySelector(".ot-resolve");
    if (!box) { return; }
    var review = box.querySelector("[data-ot-resolve-review]");
    var confirmBox = box.querySelector(".ot-resolve-confirm");
    var go = box.querySelector("[data-ot-resolve-go]");
    var status = box.querySelector(".ot-resolve-status");
    var key = null;
    function url(kind) {
      return body.dataset[kind].replace("TICKET", encodeURIComponent(ticketId));
    }
    function fail(r) {
      status.className = "ot-resolve-status fail";
      status.textContent = r.message;
      if (r.data.error && r.data.error.code === "agent_sign_in_required") {
        agentName = "";
        forgetRemembered();
        showAgent(r.message);
      }
    }
    function show(data) {
      key = data.key;
      box.querySelector(".ot-resolve-outcome").textContent = "The record says: " + data.outcome_label + ". Resolving will:";
      var list = box.querySelector(".ot-resolve-changes");
      list.textContent = "";
      (data.changes || []).forEach(function (line) {
        var item = document.createElement("li");
        item.textContent = line;
        list.appendChild(item);
      });
      confirmBox.hidden = false;
      review.hidden = true;
      go.disabled = false;
      status.textContent = "";
      resize();
    }
    review.addEventListener("click", function () {
      status.className = "ot-resolve-status";
      status.textContent = "Checking…";
      post(url("resolvePreviewUrl"), { order_id: orderId }).then(answer).then(function (r) {
        if (!r.ok) { fail(r); return; }
        show(r.data);
      });
    });
    box.querySelector("[data-ot-resolve-cancel]").addEventListener("click", function () {
      key = null;
      confirmBox.hidden = true;
      review.hidden = false;
    });
    go.addEventListener("click", function () {
      if (!key || go.disabled) { return; }
      go.disabled = true;
      status.className = "ot-resolve-status";
      status.textContent = "Applying…";
      post(url("resolveTicketUrl"), { order_id: orderId, key: key }).then(answer).then(function (r) {
        if (r.data.status === "done") {
          say(r.message);
          load(orderId, true);
          return;
        }
        if (r.status === 409 && r.data.error && r.data.error.code === "changed") {
          status.className = "ot-resolve-status fail";
          status.textContent = r.message;
          return;
        }
        if (r.data.status === "in_progress" || r.data.status === "unknown") {
          status.className = "ot-resolve-status fail";
          status.textContent = r.message;
          setTimeout(function () { go.disabled = false; }, 5000);
          return;
        }
        fail(r);
      }).catch(function () {
        status.className = "ot-resolve-status fail";
        status.textContent = "Network error: the changes may or may not have been made. Click again to check; they won't be made twice.";
        go.disabled = false;
      }).then(resize);
    });
  }

  // The customer sentence into the agent's own reply editor: a confirm step, then the
  // helpdesk inserts it; the agent reviews and sends it (the app never sends anything).
  function wireDraft() {
    var button = recordEl.querySelector("[data-ot-reply]");
    if (!button) { return; }
    var status = recordEl.querySelector(".ot-draft-status");
    button.addEventListener("click", function () {
      var text = button.dataset.otReply;
      if (!button.dataset.confirmed) {
        button.dataset.confirmed = "1";
        status.textContent = "Adds to your reply: \u201c" + text + "\u201d Click again to add it.";
        button.textContent = "Add to my reply";
        return;
      }
      if (!host || !host.insertReply) { status.textContent = "No reply editor here."; return; }
      var escaped = document.createElement("div");
      escaped.textContent = text;  // the editor takes markup: the sentence goes in as text
      host.insertReply(escaped.innerHTML).then(function () {
        status.textContent = "Added to your reply. Review it and send it yourself.";
        button.textContent = "Draft reply to the customer";
        delete button.dataset.confirmed;
      }, function () { status.textContent = "The reply editor didn't take it; copy it instead."; });
    });
  }

  function wire() {
    wireRefund();
    wireCancel();
    wireErpFixes();
    wireResolve();
    wireDraft();
    var refresh = recordEl.querySelector("[data-ot-refresh]");
    if (refresh) { refresh.addEventListener("click", function () { load(orderId, true); }); }
    var status = recordEl.querySelector(".ot-action-status");
    recordEl.querySelectorAll("[data-ot-action]").forEach(function (button) {
      // One key per button per render: a double click or a retry reuses it, so it writes once.
      button.dataset.key = newKey();
      button.addEventListener("click", function () {
        if (button.disabled) { return; }
        if (button.dataset.confirm && !button.dataset.confirmed) {
          // This ticket already has that summary: a second click confirms, the first asks.
          button.dataset.confirmed = "1";
          status.className = "ot-action-status";
          status.textContent = button.dataset.confirm + " Click again to post.";
          button.textContent = "Post again";
          return;
        }
        button.disabled = true;
        status.className = "ot-action-status";
        status.textContent = "Sending…";
        api(actionsUrl.replace("TICKET", encodeURIComponent(ticketId)), {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
          body: JSON.stringify({ kind: button.dataset.otAction, key: button.dataset.key, order_id: orderId })
        }).then(function (resp) {
          return resp.json().catch(function () { return {}; }).then(function (data) {
            var message = data.message || (data.error && data.error.message) || ("HTTP " + resp.status);
            if (data.error && data.error.code === "agent_sign_in_required") {
              // Nothing was written: the agent signs in (as themselves) and clicks again.
              agentName = "";
              forgetRemembered();
              showAgent(message);
              status.className = "ot-action-status fail";
              status.textContent = message;
              button.disabled = false;
              return;
            }
            if (data.status === "done") {
              status.className = "ot-action-status ok";
              status.textContent = message;
              button.textContent = button.textContent.replace(/^(Post|Add)/, "Done:");
              return;
            }
            status.className = "ot-action-status fail";
            status.textContent = message + (data.status === "failed" ? " Click again to retry." : "");
            button.disabled = data.status === "in_progress";
            if (data.status === "in_progress") { setTimeout(function () { button.disabled = false; }, 3000); }
          });
        }).catch(function () {
          status.className = "ot-action-status fail";
          status.textContent = "Network error. Click again to retry.";
          button.disabled = false;
        }).then(resize);
      });
    });
  }

  // -- who writes: the agent signs in to the helpdesk once, so notes and tags go out as them.

  function remembered() {
    try { return window.localStorage.getItem(rememberKey); } catch (e) { return null; }
  }
  function remember(token) {
    try { window.localStorage.setItem(rememberKey, token); } catch (e) { /* storage off: ask again next time */ }
  }
  function forgetRemembered() {
    try { window.localStorage.removeItem(rememberKey); } catch (e) { /* nothing stored */ }
  }

  function adopt(data) {
    session = data.session;
    csrf = data.csrf;
    agentName = data.agent ? data.agent.name : "";
    if (data.remember) { remember(data.remember); }
    showAgent();
  }

  function post(url, payload) {
    return api(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
                      body: JSON.stringify(payload || {}) });
  }

  function showAgent(why) {
    if (!agentEl) { return; }
    agentEl.replaceChildren();
    var text = document.createElement("span");
    var button = document.createElement("button");
    button.type = "button";
    if (agentName) {
      text.textContent = "Notes and tags are posted as " + agentName + ". ";
      button.textContent = "Sign out";
      button.addEventListener("click", signOut);
    } else {
      text.textContent = (why ? why + " " : "To post notes and tags, sign in as yourself. ");
      button.textContent = "Sign in to " + (body.dataset.hostTitle || "the helpdesk");
      button.addEventListener("click", signIn);
    }
    agentEl.append(text, button);
    agentEl.hidden = false;
    resize();
  }

  function signOut() {
    post(body.dataset.signOutUrl).then(function (resp) { return resp.json(); }).then(function (data) {
      forgetRemembered();
      if (data.session) { adopt(data); }
    });
  }

  function signIn() {
    // Opened now, inside the click, so no pop-up blocker stops it; pointed at the start URL next.
    var popup = window.open("", "ot-sign-in", "width=520,height=680");
    post(body.dataset.signInUrl).then(function (resp) {
      return resp.json().then(function (data) {
        if (!resp.ok) { throw new Error((data.error && data.error.message) || ("HTTP " + resp.status)); }
        return data;
      });
    }).then(function (data) {
      if (popup) { popup.location.href = data.start_url; } else { window.open(data.start_url, "ot-sign-in"); }
      showAgent("Finish signing in in the window that opened.");
      waitForClaim(data.claim, Date.now() + 10 * 60 * 1000);
    }).catch(function (err) {
      if (popup) { popup.close(); }
      showAgent(err.message);
    });
  }

  function waitForClaim(claim, until) {
    setTimeout(function () {
      post(body.dataset.claimUrl, { claim: claim }).then(function (resp) {
        return resp.json().catch(function () { return {}; }).then(function (data) {
          if (resp.status === 202 && Date.now() < until) { return waitForClaim(claim, until); }
          if (data.status === "done") { adopt(data); return; }
          showAgent((data.error && data.error.message) || "The sign-in didn't finish.");
        });
      }).catch(function () {
        if (Date.now() < until) { waitForClaim(claim, until); }
      });
    }, 1500);
  }

  function resume() {
    var token = remembered();
    if (agentName || !token) { showAgent(); return Promise.resolve(); }
    return post(body.dataset.resumeUrl, { remember: token }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (data) {
        if (data.status === "done") { adopt(data); } else { forgetRemembered(); showAgent(); }
      });
    }).catch(function () { showAgent(); });
  }

  lookupForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var typed = orderInput.value.trim();
    if (!typed || !ticketId) { return; }
    say("Order ID typed by you.");
    load(typed, false);
  });

  resume().then(ticketContext).then(function (ctx) {
    ticketId = ctx.ticketId;
    lookupForm.hidden = false;
    if (ctx.orderId) {
      var others = ctx.tried.filter(function (t) { return t.order_id !== ctx.orderId; })
        .map(function (t) { return t.order_id + " (" + t.result + ")"; });
      say("Order ID " + ctx.orderId + " from " + ctx.from + "." + (others.length ? " Also tried: " + others.join(", ") + "." : ""));
      load(ctx.orderId, false);
    } else {
      say("No order ID on this ticket: type it below.");
      orderInput.focus();
      resize();
    }
  }).catch(function (err) { say(err.message); });
})();

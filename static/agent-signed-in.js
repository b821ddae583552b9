// The sign-in pop-up is done: the sidebar picks the sign-in up by itself, so close this window.
setTimeout(function () { window.close(); }, 1200);

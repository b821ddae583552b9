// Zendesk posts the signed launch token to the app; the sandbox does the same on load.
document.addEventListener("DOMContentLoaded", function () { document.getElementById("launch").submit(); });

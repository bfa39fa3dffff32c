// The offline page: "Try again" reloads the page that failed (the service worker showed this
// page in its place, so the address is still that page's), and so does the connection coming
// back. Without this script the button is a link home.
"use strict";

(() => {
  const retry = document.getElementById("retry");
  const status = document.getElementById("offline-status");
  const again = () => {
    if (status) status.textContent = "Trying again…";
    window.location.reload();
  };
  if (retry) {
    retry.addEventListener("click", (event) => {
      event.preventDefault();
      again();
    });
  }
  window.addEventListener("online", again);
})();

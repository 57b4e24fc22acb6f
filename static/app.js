// Shows that scripts load with the right Content-Type (and nosniff lets them run).
document.getElementById("clock").textContent =
  "Script loaded at " + new Date().toLocaleTimeString() + ".";

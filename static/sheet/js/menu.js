// The account menu (templates/base.html) closes like any menu: on a press anywhere else on the page,
// or on Escape. A file of its own: the pages' Content-Security-Policy allows no inline script.
document.addEventListener("pointerdown", (event) => {
  const menu = document.querySelector("details.account[open]");
  if (menu && !menu.contains(event.target)) menu.open = false;
}, true);
document.addEventListener("keydown", (event) => {
  const menu = document.querySelector("details.account[open]");
  if (!menu || event.key !== "Escape") return;
  menu.open = false;
  if (menu.contains(document.activeElement)) menu.querySelector("summary").focus();
}, true);

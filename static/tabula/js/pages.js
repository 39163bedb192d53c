// Small behaviours of the server-rendered pages (templates/base.html), in a file: the pages'
// Content-Security-Policy allows no inline script or handler.

// A form with data-confirm asks before it is sent. (An inline onsubmit is refused by the policy, and
// a refused handler lets the form go unasked.)
document.addEventListener("submit", (event) => {
  const question = event.target.dataset?.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
}, true);

// The account menu closes like any menu: on a press anywhere else on the page, or on Escape.
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

// A classic script, apart from the modules: if app.js has not started 12 s after the page was
// parsed (a module cut off by a network change or a dropped connection), say so and offer to load
// the page again, instead of leaving a Join button that never works.
// @ts-check
setTimeout(() => {
  if (/** @type {any} */ (window).confab !== undefined) return;
  const notice = document.getElementById('notice');
  if (!notice) return;
  notice.textContent = 'The page did not finish loading (the network may have changed while it loaded). ';
  const again = document.createElement('button');
  again.type = 'button';
  again.textContent = 'Load it again';
  again.addEventListener('click', () => location.reload());
  notice.append(again);
  notice.dataset.level = 'error';
  notice.hidden = false;
}, 12_000);

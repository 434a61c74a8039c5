// @ts-check
// Where the tiles of a call go. Without a screen share, every tile in one grid, sized so that
// all of them fit, 16:9, as large as possible. With one, a spotlight: the newest shared screen
// takes the main area and the other tiles go in a strip beside it (a wide window) or below it
// (a tall one), sized the same way within the strip. In speaker view, without a share, the
// active speaker's tile takes the spotlight the same way.

/**
 * The elements of the call's tile area: `tiles` holds `spotlight` (the main area, hidden
 * without a share) and `grid` (every other tile).
 * @typedef {object} TileArea
 * @property {HTMLElement} tiles
 * @property {HTMLElement} spotlight
 * @property {HTMLElement} grid
 */

/** The strip beside the spotlight: a share of the area's width, within these bounds (px). */
const SIDE_STRIP = { share: 0.22, min: 150, max: 320 };
/** The strip below it, on a window taller than wide: a share of the height. */
const BELOW_STRIP = { share: 0.26, min: 96, max: 220 };

let shares = 0;

/**
 * Mark a screen tile as shared just now: the newest share is the one in the spotlight.
 * @param {HTMLElement} tile
 */
export function markShared(tile) {
  tile.dataset.sharedAt = String(++shares);
}

/**
 * Put the newest screen tile in the spotlight, or else `focus` (the active speaker's tile, in
 * speaker view), any other back in the grid, and size the tiles. Idempotent: call it whenever
 * tiles come or go or the area changes size.
 * @param {TileArea} area
 * @param {HTMLElement | null} [focus]
 */
export function arrange({ tiles, spotlight, grid }, focus = null) {
  /** @type {HTMLElement | null} */
  let chosen = null;
  for (const el of tiles.querySelectorAll('.tile.screen')) {
    if (!(el instanceof HTMLElement)) continue;
    if (!chosen || Number(el.dataset.sharedAt ?? 0) > Number(chosen.dataset.sharedAt ?? 0)) chosen = el;
  }
  if (!chosen && focus && tiles.contains(focus)) chosen = focus;
  for (const el of [...spotlight.children]) if (el !== chosen) grid.append(el);
  if (chosen && chosen.parentElement !== spotlight) spotlight.append(chosen);
  spotlight.hidden = !chosen;
  tiles.dataset.layout = chosen ? 'spotlight' : 'grid';
  if (chosen) {
    const W = tiles.clientWidth;
    const H = tiles.clientHeight;
    const side = W >= H * 1.2;
    const s = side ? SIDE_STRIP : BELOW_STRIP;
    const strip = Math.min(s.max, Math.max(s.min, (side ? W : H) * s.share));
    tiles.dataset.strip = side ? 'side' : 'below';
    tiles.style.setProperty('--strip', `${Math.round(strip)}px`);
  } else {
    delete tiles.dataset.strip;
  }
  fit(grid);
}

/**
 * Size the tiles of `grid` so that all of them fit it, 16:9, as large as possible.
 * @param {HTMLElement} grid
 */
function fit(grid) {
  const n = grid.querySelectorAll(':scope > .tile').length;
  const gap = parseFloat(getComputedStyle(grid).columnGap) || 10;
  const W = grid.clientWidth - 2 * gap;
  const H = grid.clientHeight - gap;
  if (n === 0 || W <= 0 || H <= 0) return;
  let best = 0;
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    let w = (W - gap * (cols - 1)) / cols;
    if ((w * 9) / 16 * rows + gap * (rows - 1) > H) w = ((H - gap * (rows - 1)) / rows) * 16 / 9;
    best = Math.max(best, Math.floor(w));
  }
  grid.style.setProperty('--tile-w', `${Math.max(best, 96)}px`);
}

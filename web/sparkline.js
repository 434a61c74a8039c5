// @ts-check
// A sparkline: a small inline SVG line of one value over time, no axes, scaled to its own
// range, with the window's start at the left edge and its end at the right.

const SVG_NS = 'http://www.w3.org/2000/svg';
/** The drawing's own units; the element is stretched to its box (preserveAspectRatio none). */
const WIDTH = 120;
const HEIGHT = 24;

/**
 * @typedef {object} SparklineOptions
 * @property {number} from the time at the left edge
 * @property {number} to the time at the right edge
 * @property {number} floor the least top of the scale (e.g. 30 for a frame rate), so that small
 *   wiggles do not fill the height
 * @property {string} label what it shows, for screen readers (`aria-label`)
 */

/**
 * An `<svg>` drawing `points` (null values leave a gap), with `data-points` the number of
 * points drawn.
 * @param {readonly {t: number, v: number | null}[]} points oldest first
 * @param {SparklineOptions} options
 * @returns {SVGSVGElement}
 */
export function sparkline(points, { from, to, floor, label }) {
  const svg = /** @type {SVGSVGElement} */ (document.createElementNS(SVG_NS, 'svg'));
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const values = points.flatMap((p) => (p.v === null || !Number.isFinite(p.v) ? [] : [p.v]));
  const top = Math.max(floor, ...values) * 1.1;
  const span = Math.max(1, to - from);
  const x = (/** @type {number} */ t) => Math.min(WIDTH, Math.max(0, ((t - from) / span) * WIDTH));
  const y = (/** @type {number} */ v) => HEIGHT - 1 - (Math.max(0, v) / top) * (HEIGHT - 2);
  /** @type {string[][]} runs of consecutive points with a value */
  const runs = [];
  let run = null;
  for (const p of points) {
    if (p.v === null || !Number.isFinite(p.v) || p.t < from) {
      run = null;
      continue;
    }
    if (!run) runs.push((run = []));
    run.push(`${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`);
  }
  for (const r of runs) {
    // A lone point is drawn as a dot: a line from it to itself, with round caps.
    const line = document.createElementNS(SVG_NS, 'polyline');
    line.setAttribute('points', (r.length === 1 ? [r[0], r[0]] : r).join(' '));
    svg.append(line);
  }
  svg.dataset.points = String(runs.reduce((n, r) => n + r.length, 0));
  return svg;
}

// @ts-check
// confab meeting page: the stats panel's view. Renders what stats.js summarises; user data only
// ever goes into text nodes and attributes, never into HTML.

import { sparkline } from './sparkline.js';
import { formatAddress, formatBitrate, formatCandidateType, formatFps, formatLevel, formatMs, formatPercent, formatResolution } from './stats.js';
import { TREND_WINDOW_MS, inboundKey, outboundKey } from './trends.js';

/** @typedef {import('./stats.js').StatsSummary} StatsSummary */
/** @typedef {import('./stats.js').OutboundTrack} OutboundTrack */
/** @typedef {import('./stats.js').InboundTrack} InboundTrack */
/** @typedef {import('./trends.js').Trends} Trends */
/** @typedef {import('./trends.js').Metric} Metric */

/**
 * A new element with attributes `attrs`; string children become text nodes (user data is
 * only ever text), null ones are skipped.
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {...(Node | string | null)} children
 * @returns {HTMLElement}
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) if (c !== null) el.append(c);
  return el;
}

/**
 * Make `el`'s children equal `next`, changing only what differs, so that a refresh keeps the
 * reader's text selection and scroll position.
 * @param {Element} el
 * @param {Node[]} next
 */
function morphChildren(el, next) {
  next.forEach((n, i) => {
    const have = el.childNodes[i];
    if (!have) {
      el.append(n);
    } else if (have.nodeName !== n.nodeName) {
      el.replaceChild(n, have);
    } else if (have instanceof Element && n instanceof Element) {
      for (const a of [...have.attributes]) if (!n.hasAttribute(a.name)) have.removeAttribute(a.name);
      for (const a of n.attributes) if (have.getAttribute(a.name) !== a.value) have.setAttribute(a.name, a.value);
      morphChildren(have, [...n.childNodes]);
    } else if (have.nodeValue !== n.nodeValue) {
      have.nodeValue = n.nodeValue;
    }
  });
  while (el.childNodes.length > next.length) el.lastChild?.remove();
}

/**
 * A definition list of `[label, field, value]` rows; `data-field` names each value for tests.
 * @param {Record<string, string>} attrs
 * @param {[string, string, string][]} rows
 */
function fields(attrs, rows) {
  return h('dl', { class: 'stats-fields', ...attrs },
    ...rows.flatMap(([label, field, value]) => [h('dt', {}, label), h('dd', { 'data-field': field }, value)]));
}

/** @type {Record<string, string>} */
const SOURCE_NAMES = { camera: 'Camera', microphone: 'Microphone', screen: 'Screen share', screen_audio: 'Screen audio' };

/** @type {Record<string, string>} */
const REASON_TEXT = {
  start: 'started',
  bandwidth: 'your downlink estimate changed',
  size: 'the size you show it at changed',
  hidden: 'not shown on your screen',
  publisher: 'the sender changed what it sends',
  muted: 'the sender muted it',
};

/** @type {Record<string, string>} */
const LAYER_STATUS_TEXT = { sending: 'sending', stopped: 'stopped by server', idle: 'not sending' };

/**
 * Show `text` alone in the panel's body `body`.
 * @param {Element} body
 * @param {string} text
 */
export function showStatsNote(body, text) {
  morphChildren(body, [h('p', { class: 'stats-note' }, text)]);
}

/**
 * Show `summary` in the panel's body `body`, changing only what differs from what it shows;
 * with `trends`, each video track with its graphs of the last minute.
 * @param {Element} body
 * @param {StatsSummary | null} summary null: no media connection yet
 * @param {Trends | null} [trends]
 */
export function renderStats(body, summary, trends = null) {
  if (!summary) {
    showStatsNote(body, 'No media connection yet.');
    return;
  }
  const c = summary.connection;
  // Each end unbroken (no-break spaces), so that a narrow panel wraps at the arrow only.
  const end = (/** @type {import('./stats.js').CandidateSummary | null} */ x) =>
    `${formatCandidateType(x)} ${formatAddress(x)}`.replaceAll(' ', '\u00a0');
  const route = c.local || c.remote ? `${end(c.local)} ↔ ${end(c.remote)}` : 'no candidate pair selected yet';
  const connection = h('section', { class: 'stats-section' },
    h('h3', {}, 'Connection'),
    fields({ 'data-stats': 'connection' }, [
      ['Candidate pair', 'route', route],
      ['Round trip', 'rtt', formatMs(c.rttMs)],
      ['Signaling round trip', 'signaling-rtt', formatMs(c.signalingRttMs)],
      ['Uplink estimate (browser)', 'available-outgoing', formatBitrate(c.availableOutgoingBps)],
      ['Sending', 'send', formatBitrate(c.sendBps)],
      ['Receiving', 'receive', formatBitrate(c.receiveBps)],
    ]));
  const sending = h('section', { class: 'stats-section' },
    h('h3', {}, 'What you send'),
    ...(summary.outbound.length ? summary.outbound.map((t) => renderOutbound(t, trends)) : [h('p', { class: 'stats-note' }, 'Nothing.')]));
  const receiving = h('section', { class: 'stats-section' },
    h('h3', {}, 'What you receive'),
    ...(summary.inbound.length
      ? summary.inbound.map((p) => h('section', { class: 'stats-block', 'data-stats': 'inbound', 'data-participant': p.participant },
        h('h4', {}, p.name),
        ...p.tracks.map((t) => renderInbound(t, trends && { trends, key: inboundKey(p.participant, t), who: p.name }))))
      : [h('p', { class: 'stats-note' }, 'Nothing yet.')]));
  morphChildren(body, [connection, sending, receiving]);
}

/**
 * @param {OutboundTrack} t
 * @param {Trends | null} trends
 */
function renderOutbound(t, trends) {
  const title = `${SOURCE_NAMES[t.source] ?? t.source}${t.muted ? ' (muted)' : ''}`;
  const attrs = { class: 'stats-block', 'data-stats': 'outbound', 'data-source': t.source, 'data-kind': t.kind };
  if (t.kind === 'audio') {
    return h('section', attrs, h('h4', {}, title), fields({}, [
      ['Codec', 'codec', t.codec ?? '—'],
      ['Bitrate', 'bitrate', formatBitrate(t.bps)],
      ['Level', 'level', formatLevel(t.audioLevel)],
    ]));
  }
  const capture = t.capture ? `${formatResolution(t.capture.width, t.capture.height)}, ${formatFps(t.capture.fps)}` : '—';
  const head = ['Layer', 'State', 'Resolution', 'Frame rate', 'Bitrate', 'Limited by'];
  const rows = t.layers.map((l) => h('tr', { 'data-rid': l.rid ?? '', 'data-status': l.status },
    h('th', { scope: 'row' }, l.rid ?? '—'),
    h('td', { 'data-field': 'state' }, LAYER_STATUS_TEXT[l.status]),
    h('td', { 'data-field': 'resolution' }, formatResolution(l.width, l.height)),
    h('td', { 'data-field': 'fps' }, formatFps(l.fps)),
    h('td', { 'data-field': 'bitrate' }, formatBitrate(l.bps)),
    h('td', { 'data-field': 'limitation' }, l.qualityLimitation ?? '—')));
  return h('section', attrs,
    h('h4', {}, title),
    fields({}, [
      ['Captured', 'capture', capture],
      ['Codec', 'codec', t.codec ?? '—'],
      ['Bitrate', 'bitrate', formatBitrate(t.bps)],
      ['Loss to the server', 'loss', formatPercent(t.lossPercent)],
    ]),
    trends && renderTrends(trends, outboundKey(t), `Your ${title.toLowerCase()}`),
    h('div', { class: 'stats-table' },
      h('table', {},
        h('caption', {}, `${title}: layers`),
        h('thead', {}, h('tr', {}, ...head.map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, ...rows))));
}

/**
 * How long ago, as ", 12 s ago" ('' when not known).
 * @param {number | null} ms
 */
function formatAge(ms) {
  if (ms === null) return '';
  const sec = Math.round(ms / 1000);
  return sec < 90 ? `, ${sec} s ago` : `, ${Math.round(sec / 60)} min ago`;
}

/**
 * @param {InboundTrack} t
 * @param {{trends: Trends, key: string, who: string} | null} trends its series, and whose it is
 */
function renderInbound(t, trends) {
  const title = t.source ? SOURCE_NAMES[t.source] ?? t.source : t.kind;
  const lost = `${t.packetsLost} (last second: ${formatPercent(t.lossPercent)})`;
  /** @type {[string, string, string][]} */
  const rows = [['Codec', 'codec', t.codec ?? '—']];
  if (t.kind === 'video') {
    rows.push(
      ['Resolution', 'resolution', formatResolution(t.width, t.height)],
      ['Frame rate', 'fps', formatFps(t.fps)],
      ['Bitrate', 'bitrate', formatBitrate(t.bps)],
      ['Packets lost', 'lost', lost],
      ['Jitter', 'jitter', formatMs(t.jitterMs)],
      ['Freezes', 'freezes', t.freezes === null ? '—' : `${t.freezes} (${(t.freezeSeconds ?? 0).toFixed(1)} s)`],
      ['NACKs sent', 'nacks', t.nacks === null ? '—' : String(t.nacks)],
      ['PLIs sent', 'plis', t.plis === null ? '—' : String(t.plis)],
    );
    const s = t.server;
    rows.push(
      ['Server sends', 'server-state', s ? s.state : 'nothing said yet'],
      ['Forwarded layer', 'layer', s?.layer ?? '—'],
      ['Last change', 'reason', s ? REASON_TEXT[s.reason] ?? s.reason : '—'],
      ['Your downlink (server\'s estimate at that change)', 'estimate', s ? (s.estimate === null ? 'not known yet' : `${formatBitrate(s.estimate)}${formatAge(s.age)}`) : '—'],
    );
  } else {
    rows.push(
      ['Bitrate', 'bitrate', formatBitrate(t.bps)],
      ['Packets lost', 'lost', lost],
      ['Jitter', 'jitter', formatMs(t.jitterMs)],
      ['Level', 'level', formatLevel(t.audioLevel)],
    );
  }
  return h('div', { class: 'stats-track', 'data-track': t.track, 'data-kind': t.kind, 'data-source': t.source ?? '' },
    h('h5', {}, title),
    fields({}, rows),
    t.kind === 'video' && trends ? renderTrends(trends.trends, trends.key, `${trends.who}'s ${title.toLowerCase()}`) : null);
}

/**
 * What the graphs show: their label, the least top of their scale and their unit.
 * @type {{metric: Metric, label: string, floor: number, format: (v: number | null) => string}[]}
 */
const TREND_METRICS = [
  { metric: 'bitrate', label: 'Bitrate', floor: 100_000, format: formatBitrate },
  { metric: 'fps', label: 'Frame rate', floor: 30, format: formatFps },
  { metric: 'loss', label: 'Packet loss', floor: 5, format: formatPercent },
];

/**
 * A video track's graphs of the last minute: bitrate, frame rate and packet loss, each with
 * its peak.
 * @param {Trends} trends
 * @param {string} key the track's series
 * @param {string} what whose track, for screen readers
 */
function renderTrends(trends, key, what) {
  const points = trends.series(key);
  const from = trends.now - TREND_WINDOW_MS;
  return h('div', { class: 'stats-trends', 'data-trends': key },
    ...TREND_METRICS.map(({ metric, label, floor, format }) => {
      const series = points.map((p) => ({ t: p.t, v: p[metric] }));
      const values = series.flatMap((p) => (p.v === null ? [] : [p.v]));
      const peak = values.length ? Math.max(...values) : null;
      return h('div', { class: 'trend', 'data-metric': metric },
        h('span', { class: 'trend-label' }, label),
        sparkline(series, { from, to: trends.now, floor, label: `${what}: ${label.toLowerCase()} over the last minute, at most ${format(peak)}` }),
        h('span', { class: 'trend-peak', title: 'The highest in the last minute' }, `max ${format(peak)}`));
    }));
}

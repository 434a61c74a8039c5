// @ts-check
// What the stats panel's small graphs show: per video track sent or received, its bitrate,
// frame rate and packet loss over the last minute, one point per stats summary (once a second
// while the panel is open). No DOM code: sparkline.js draws, statsview.js places.

/** @typedef {import('./stats.js').StatsSummary} StatsSummary */
/** @typedef {import('./stats.js').OutboundTrack} OutboundTrack */
/** @typedef {import('./stats.js').InboundTrack} InboundTrack */

/** @typedef {'bitrate' | 'fps' | 'loss'} Metric */

/**
 * One summary's values of a track; null where the summary had none (its first, or no report).
 * @typedef {object} TrendPoint
 * @property {number} t when (the summary's `at`, milliseconds)
 * @property {number | null} bitrate bit/s
 * @property {number | null} fps
 * @property {number | null} loss percent
 */

/** How far back the graphs go, in milliseconds. */
export const TREND_WINDOW_MS = 60_000;

/**
 * The key of a sent track's series.
 * @param {OutboundTrack} t
 */
export const outboundKey = (t) => `out:${t.mid ?? t.source}`;

/**
 * The key of a received track's series (by publisher and track: a mid may be re-used).
 * @param {string} participant
 * @param {InboundTrack} t
 */
export const inboundKey = (participant, t) => `in:${participant}\u0000${t.track}`;

export class Trends {
  /** @type {Map<string, TrendPoint[]>} */
  #series = new Map();
  /** The newest summary's time. */
  now = 0;

  /**
   * Add the video tracks of `summary`; drop what is older than the window, and the series of
   * tracks no longer in the summaries.
   * @param {StatsSummary} summary
   */
  add(summary) {
    const t = summary.at;
    this.now = t;
    /** @type {Set<string>} */
    const seen = new Set();
    /**
     * @param {string} key
     * @param {Omit<TrendPoint, 't'>} values
     */
    const push = (key, values) => {
      seen.add(key);
      const points = this.#series.get(key) ?? [];
      points.push({ t, ...values });
      while (points.length && points[0].t < t - TREND_WINDOW_MS) points.shift();
      this.#series.set(key, points);
    };
    for (const o of summary.outbound) {
      if (o.kind !== 'video') continue;
      const fps = o.layers.reduce((best, l) => Math.max(best, l.fps ?? 0), 0);
      const sending = o.layers.some((l) => l.fps !== null);
      push(outboundKey(o), { bitrate: o.bps, fps: sending ? fps : null, loss: o.lossPercent });
    }
    for (const p of summary.inbound) {
      for (const i of p.tracks) {
        if (i.kind !== 'video') continue;
        push(inboundKey(p.participant, i), { bitrate: i.bps, fps: i.fps, loss: i.lossPercent });
      }
    }
    for (const key of [...this.#series.keys()]) if (!seen.has(key)) this.#series.delete(key);
  }

  /**
   * The points of a track's series, oldest first (empty if none).
   * @param {string} key
   * @returns {readonly TrendPoint[]}
   */
  series(key) {
    return this.#series.get(key) ?? [];
  }

  /** Forget everything (the panel closed: the next opening starts afresh). */
  clear() {
    this.#series.clear();
    this.now = 0;
  }
}

// @ts-check
// Connection stats for the meeting page's stats panel: the peer connection's getStats, read
// once a second while the panel is open, turned into typed summaries (two consecutive
// RTCStatsReports give the rates), and the units they are shown in. No DOM code here: app.js
// renders what this returns.

/** @typedef {import('./protocol.js').ConfabClient} ConfabClient */
/** @typedef {import('./messages.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./messages.js').TrackRef} TrackRef */
/** @typedef {import('./messages.js').TrackSource} TrackSource */
/** @typedef {import('./messages.js').StreamStateMessage} StreamStateMessage */

/**
 * The members of getStats entries this module reads. All but the first three are optional:
 * which ones a browser fills in differs by entry type, browser and version.
 * @typedef {object} Stat
 * @property {string} id
 * @property {string} type
 * @property {number} timestamp milliseconds
 * @property {string} [kind]
 * @property {string} [mid]
 * @property {string} [rid]
 * @property {string} [trackIdentifier]
 * @property {string} [codecId]
 * @property {string} [mediaSourceId]
 * @property {string} [mimeType]
 * @property {string} [sdpFmtpLine]
 * @property {string} [scalabilityMode]
 * @property {boolean} [active]
 * @property {number} [bytesSent]
 * @property {number} [bytesReceived]
 * @property {number} [packetsSent]
 * @property {number} [packetsReceived]
 * @property {number} [packetsLost]
 * @property {number} [frameWidth]
 * @property {number} [frameHeight]
 * @property {number} [width] media-source: the captured size
 * @property {number} [height]
 * @property {number} [framesPerSecond]
 * @property {number} [framesEncoded]
 * @property {number} [framesDecoded]
 * @property {string} [qualityLimitationReason]
 * @property {number} [jitter] seconds
 * @property {number} [freezeCount]
 * @property {number} [totalFreezesDuration] seconds
 * @property {number} [nackCount]
 * @property {number} [pliCount]
 * @property {number} [audioLevel] 0..1
 * @property {string} [localId] remote-inbound-rtp: the outbound-rtp it reports on
 * @property {number} [fractionLost] remote-inbound-rtp: of the last receiver report, 0..1
 * @property {number} [lastPacketReceivedTimestamp]
 * @property {string} [selectedCandidatePairId]
 * @property {boolean} [selected] candidate-pair, in browsers without selectedCandidatePairId
 * @property {boolean} [nominated]
 * @property {string} [state]
 * @property {string} [localCandidateId]
 * @property {string} [remoteCandidateId]
 * @property {number} [currentRoundTripTime] seconds
 * @property {number} [availableOutgoingBitrate] bit/s
 * @property {string} [candidateType]
 * @property {string} [protocol]
 * @property {string} [relayProtocol]
 * @property {string} [address]
 * @property {number} [port]
 */

// ---------------------------------------------------------------------------
// Summaries

/**
 * One end of the ICE candidate pair in use.
 * @typedef {object} CandidateSummary
 * @property {string} type `host`, `srflx`, `prflx` or `relay`
 * @property {string} protocol `udp` or `tcp`
 * @property {string | null} relayProtocol how a `relay` candidate reaches its TURN server
 * @property {string | null} address
 * @property {number | null} port
 */

/**
 * The connection as a whole.
 * @typedef {object} ConnectionSummary
 * @property {CandidateSummary | null} local the selected pair's local candidate
 * @property {CandidateSummary | null} remote and its remote one
 * @property {number | null} rttMs the pair's current round-trip time (ICE consent checks)
 * @property {number | null} signalingRttMs round-trip time of the last signaling ping
 * @property {number | null} availableOutgoingBps the browser's estimate of its uplink
 * @property {number | null} sendBps everything sent over the interval, bit/s
 * @property {number | null} receiveBps everything received over the interval, bit/s
 */

/**
 * `sending`: packets went out over the interval; `stopped`: the server asked for this layer
 * not to be encoded (dynacast, the `layers` message; nothing else in this client stops a
 * layer); `idle`: enabled, yet the browser sends nothing (e.g. the camera is too small for
 * this layer, or it has only just started).
 * @typedef {'sending' | 'stopped' | 'idle'} LayerStatus
 */

/**
 * One encoding of a sender: a simulcast layer, or the only encoding of a plain sender.
 * Size and frame rate are null unless it is sending.
 * @typedef {object} OutboundLayer
 * @property {string | null} rid
 * @property {LayerStatus} status
 * @property {number | null} width
 * @property {number | null} height
 * @property {number | null} fps
 * @property {number | null} bps
 * @property {string | null} qualityLimitation `none`, `cpu`, `bandwidth` or `other`
 * @property {string | null} codec e.g. `VP8 L1T3`, `opus`
 */

/**
 * A track this page publishes.
 * @typedef {object} OutboundTrack
 * @property {string | null} mid
 * @property {TrackSource} source
 * @property {'audio' | 'video'} kind
 * @property {boolean} muted
 * @property {number | null} bps all its layers together
 * @property {string | null} codec of the layers it sends (else of any), distinct ones joined
 *   by commas
 * @property {{width: number, height: number, fps: number | null} | null} capture what the
 *   camera or screen gives the encoder (video only)
 * @property {number | null} audioLevel the microphone's level, 0..1 (audio only)
 * @property {number | null} lossPercent packets lost on the way to the server, in percent, as
 *   its last receiver report says (the worst layer); null before one
 * @property {OutboundLayer[]} layers lowest first
 */

/**
 * What the server said last about a remote video track (`stream_state`).
 * @typedef {object} ServerView
 * @property {'active' | 'paused'} state
 * @property {string | null} layer the simulcast layer forwarded
 * @property {string} reason why it last changed
 * @property {number | null} estimate the server's estimate of this page's downlink, bit/s, when
 *   it last changed what it sends of the track
 * @property {number | null} age how long ago that was, ms
 */

/**
 * A remote track this page receives. Video-only members are null for audio and the reverse.
 * @typedef {object} InboundTrack
 * @property {string} mid
 * @property {string} track the publisher's track id
 * @property {'audio' | 'video'} kind
 * @property {TrackSource | null} source
 * @property {string | null} codec
 * @property {number | null} bps
 * @property {number} packetsLost since the start
 * @property {number | null} lossPercent of the packets due over the interval
 * @property {number | null} jitterMs
 * @property {number | null} width
 * @property {number | null} height
 * @property {number | null} fps
 * @property {number | null} freezes since the start
 * @property {number | null} freezeSeconds their total duration
 * @property {number | null} nacks NACKs this page sent (retransmissions asked for)
 * @property {number | null} plis PLIs this page sent (keyframes asked for)
 * @property {number | null} audioLevel 0..1
 * @property {ServerView | null} server
 */

/**
 * The tracks received from one participant.
 * @typedef {object} InboundParticipant
 * @property {string} participant id
 * @property {string} name
 * @property {InboundTrack[]} tracks audio first
 */

/**
 * Everything the stats panel shows, from one report and the one before it. Rates are null on
 * the first report.
 * @typedef {object} StatsSummary
 * @property {number} at when the report was taken (performance.now() clock)
 * @property {number | null} intervalMs since the previous report
 * @property {ConnectionSummary} connection
 * @property {OutboundTrack[]} outbound in the order they were published
 * @property {InboundParticipant[]} inbound in the order of the roster
 */

/**
 * What the summary needs from the client besides the report (see `contextOf`).
 * @typedef {object} StatsContext
 * @property {SenderInfo[]} senders
 * @property {ReadonlyMap<string, TrackRef>} mids mid -> remote track, as the server said
 * @property {ReadonlyMap<string, ParticipantInfo>} participants
 * @property {(participant: string, track: string) => StreamStateMessage | null} streamState
 * @property {(participant: string, track: string) => number | null} streamStateTime when it arrived (Date.now())
 * @property {number | null} signalingRttMs
 */

/**
 * @typedef {object} SenderInfo
 * @property {string | null} mid
 * @property {TrackSource} source
 * @property {'audio' | 'video'} kind
 * @property {boolean} muted
 * @property {{rid: string | null, active: boolean}[]} encodings lowest first
 */

/**
 * The client's state that `summarize` needs, read now.
 * @param {ConfabClient} client
 * @returns {StatsContext}
 */
export function contextOf(client) {
  // The tracks sent to the server (in a peer-to-peer room they may go on direct connections only).
  const senders = client.localTracks
    .flatMap((lt) => (lt.transceiver && lt.transceiver.direction !== 'stopped' ? [{ lt, transceiver: lt.transceiver }] : []))
    .map(({ lt, transceiver }) => ({
      mid: transceiver.mid,
      source: lt.source,
      kind: lt.track.kind === 'audio' ? /** @type {const} */ ('audio') : /** @type {const} */ ('video'),
      muted: lt.muted,
      encodings: transceiver.sender.getParameters().encodings
        .map((e) => ({ rid: e.rid ?? null, active: e.active !== false })),
    }));
  return {
    senders,
    mids: client.mids,
    participants: client.participants,
    streamState: (p, t) => client.streamState(p, t),
    streamStateTime: (p, t) => client.streamStateTime(p, t),
    signalingRttMs: client.rttMs,
  };
}

/**
 * Summarize `report`, with rates over the time since `previous` (null: none yet).
 * @param {RTCStatsReport} report
 * @param {RTCStatsReport | null} previous
 * @param {StatsContext} context
 * @returns {StatsSummary}
 */
export function summarize(report, previous, context) {
  let at = 0;
  /** @type {number | null} */
  let before = null;
  for (const s of entries(report)) at = Math.max(at, s.timestamp);
  if (previous) for (const s of entries(previous)) before = Math.max(before ?? 0, s.timestamp);
  return {
    at,
    intervalMs: before === null ? null : at - before,
    connection: connectionSummary(report, previous, context),
    outbound: outboundSummary(report, previous, context),
    inbound: inboundSummary(report, previous, context),
  };
}

// ---------------------------------------------------------------------------
// The connection

/**
 * @param {RTCStatsReport} report
 * @param {RTCStatsReport | null} previous
 * @param {StatsContext} context
 * @returns {ConnectionSummary}
 */
export function connectionSummary(report, previous, context) {
  const transport = entries(report, 'transport').find((t) => t.selectedCandidatePairId) ?? entries(report, 'transport')[0];
  const pair = selectedPair(report, transport);
  const local = candidate(stat(report, pair?.localCandidateId));
  const remote = candidate(stat(report, pair?.remoteCandidateId));
  // Byte counts of the transport (all media and RTCP, with headers), else of the pair.
  const totals = transport?.bytesSent !== undefined ? transport : pair;
  const prior = totals ? stat(previous, totals.id) : undefined;
  return {
    local,
    remote,
    rttMs: pair?.currentRoundTripTime === undefined ? null : pair.currentRoundTripTime * 1000,
    signalingRttMs: context.signalingRttMs,
    availableOutgoingBps: pair?.availableOutgoingBitrate ?? null,
    sendBps: rate(totals, prior, 'bytesSent', 8),
    receiveBps: rate(totals, prior, 'bytesReceived', 8),
  };
}

/**
 * The candidate pair in use: the transport's selected one, else one marked selected (Firefox),
 * else a nominated pair that succeeded.
 * @param {RTCStatsReport} report
 * @param {Stat | undefined} transport
 * @returns {Stat | undefined}
 */
function selectedPair(report, transport) {
  const byTransport = stat(report, transport?.selectedCandidatePairId);
  if (byTransport) return byTransport;
  const pairs = entries(report, 'candidate-pair');
  return pairs.find((p) => p.selected) ?? pairs.find((p) => p.nominated && p.state === 'succeeded');
}

/**
 * @param {Stat | undefined} c a local-candidate or remote-candidate entry
 * @returns {CandidateSummary | null}
 */
function candidate(c) {
  if (!c) return null;
  return {
    type: c.candidateType ?? '?',
    protocol: c.protocol ?? '?',
    relayProtocol: c.relayProtocol ?? null,
    address: c.address ?? null,
    port: c.port ?? null,
  };
}

// ---------------------------------------------------------------------------
// What this page sends

/**
 * @param {RTCStatsReport} report
 * @param {RTCStatsReport | null} previous
 * @param {StatsContext} context
 * @returns {OutboundTrack[]}
 */
export function outboundSummary(report, previous, context) {
  const outbound = entries(report, 'outbound-rtp');
  return context.senders.map((sender) => {
    const mine = outbound.filter((s) => sender.mid !== null && s.mid === sender.mid);
    const layers = sender.encodings.map((e) => {
      const s = mine.find((o) => (o.rid ?? null) === e.rid) ?? (sender.encodings.length === 1 ? mine[0] : undefined);
      return outboundLayer(report, previous, s, e.rid, e.active);
    });
    const source = stat(report, mine[0]?.mediaSourceId);
    const reports = entries(report, 'remote-inbound-rtp').filter((r) => mine.some((o) => o.id === r.localId));
    const losses = reports.flatMap((r) => (r.fractionLost === undefined ? [] : [r.fractionLost * 100]));
    const rates = layers.map((l) => l.bps).filter((b) => b !== null);
    const sending = layers.filter((l) => l.status === 'sending');
    const codecs = new Set((sending.length ? sending : layers).flatMap((l) => (l.codec ? [l.codec] : [])));
    return {
      mid: sender.mid,
      source: sender.source,
      kind: sender.kind,
      muted: sender.muted,
      bps: rates.length ? rates.reduce((a, b) => a + b, 0) : null,
      codec: codecs.size ? [...codecs].join(', ') : null,
      capture: sender.kind === 'video' && source?.width && source.height
        ? { width: source.width, height: source.height, fps: source.framesPerSecond ?? null }
        : null,
      audioLevel: sender.kind === 'audio' ? source?.audioLevel ?? null : null,
      lossPercent: losses.length ? Math.max(...losses) : null,
      layers,
    };
  });
}

/**
 * @param {RTCStatsReport} report
 * @param {RTCStatsReport | null} previous
 * @param {Stat | undefined} s its outbound-rtp entry, if there is one yet
 * @param {string | null} rid
 * @param {boolean} active whether the sender's encoding is enabled
 * @returns {OutboundLayer}
 */
function outboundLayer(report, previous, s, rid, active) {
  const prior = s ? stat(previous, s.id) : undefined;
  const sent = s && prior ? (s.packetsSent ?? 0) - (prior.packetsSent ?? 0) : s?.packetsSent ?? 0;
  /** @type {LayerStatus} */
  const status = !active || s?.active === false ? 'stopped' : sent > 0 ? 'sending' : 'idle';
  const sending = status === 'sending';
  return {
    rid,
    status,
    width: sending && s?.frameWidth ? s.frameWidth : null,
    height: sending && s?.frameHeight ? s.frameHeight : null,
    fps: sending ? s?.framesPerSecond ?? rate(s, prior, 'framesEncoded') : null,
    bps: rate(s, prior, 'bytesSent', 8),
    qualityLimitation: s?.qualityLimitationReason ?? null,
    codec: codecName(report, s),
  };
}

// ---------------------------------------------------------------------------
// What this page receives

/**
 * @param {RTCStatsReport} report
 * @param {RTCStatsReport | null} previous
 * @param {StatsContext} context
 * @returns {InboundParticipant[]}
 */
export function inboundSummary(report, previous, context) {
  // The newest inbound-rtp of each mid the server says carries a remote track (a mid re-used
  // for another track, or an SSRC changed, leaves older entries behind).
  /** @type {Map<string, Stat>} */
  const byMid = new Map();
  for (const s of entries(report, 'inbound-rtp')) {
    if (s.mid === undefined || !context.mids.has(s.mid)) continue;
    const seen = byMid.get(s.mid);
    if (!seen || (s.lastPacketReceivedTimestamp ?? 0) > (seen.lastPacketReceivedTimestamp ?? 0)) byMid.set(s.mid, s);
  }
  /** @type {InboundParticipant[]} */
  const out = [];
  for (const p of context.participants.values()) {
    /** @type {InboundTrack[]} */
    const tracks = [];
    for (const [mid, s] of byMid) {
      const ref = /** @type {TrackRef} */ (context.mids.get(mid));
      if (ref.participant !== p.id) continue;
      const info = p.tracks.find((t) => t.id === ref.track);
      tracks.push(inboundTrack(report, previous, s, ref, info?.source ?? null, context));
    }
    if (tracks.length === 0) continue;
    tracks.sort((a, b) => (a.kind === b.kind ? a.mid.localeCompare(b.mid, 'en', { numeric: true }) : a.kind === 'audio' ? -1 : 1));
    out.push({ participant: p.id, name: p.name, tracks });
  }
  return out;
}

/**
 * @param {RTCStatsReport} report
 * @param {RTCStatsReport | null} previous
 * @param {Stat} s its inbound-rtp entry
 * @param {TrackRef} ref
 * @param {TrackSource | null} source
 * @param {StatsContext} context
 * @returns {InboundTrack}
 */
function inboundTrack(report, previous, s, ref, source, context) {
  const prior = stat(previous, s.id);
  const video = s.kind === 'video';
  const state = video ? context.streamState(ref.participant, ref.track) : null;
  const stateAt = video ? context.streamStateTime(ref.participant, ref.track) : null;
  return {
    mid: /** @type {string} */ (s.mid),
    track: ref.track,
    kind: video ? 'video' : 'audio',
    source,
    codec: codecName(report, s),
    bps: rate(s, prior, 'bytesReceived', 8),
    packetsLost: Math.max(0, s.packetsLost ?? 0),
    lossPercent: lossPercent(s, prior),
    jitterMs: s.jitter === undefined ? null : s.jitter * 1000,
    width: video && s.frameWidth ? s.frameWidth : null,
    height: video && s.frameHeight ? s.frameHeight : null,
    fps: video ? s.framesPerSecond ?? rate(s, prior, 'framesDecoded') : null,
    freezes: video ? s.freezeCount ?? null : null,
    freezeSeconds: video ? s.totalFreezesDuration ?? null : null,
    nacks: s.nackCount ?? null,
    plis: video ? s.pliCount ?? null : null,
    audioLevel: video ? null : s.audioLevel ?? null,
    server: state && {
      state: state.state,
      layer: state.layer,
      reason: state.reason,
      estimate: state.estimate,
      age: stateAt === null ? null : Math.max(0, Date.now() - stateAt),
    },
  };
}

/**
 * Packets lost as a share of those due over the interval, in percent; null without a
 * previous report or when nothing was due.
 * @param {Stat} s
 * @param {Stat | undefined} prior
 * @returns {number | null}
 */
function lossPercent(s, prior) {
  if (!prior) return null;
  const lost = Math.max(0, (s.packetsLost ?? 0) - (prior.packetsLost ?? 0));
  const received = Math.max(0, (s.packetsReceived ?? 0) - (prior.packetsReceived ?? 0));
  return lost + received > 0 ? (100 * lost) / (lost + received) : null;
}

// ---------------------------------------------------------------------------
// Reading reports

/**
 * The entries of a report, all of them or those of one type.
 * @param {RTCStatsReport} report
 * @param {string} [type]
 * @returns {Stat[]}
 */
function entries(report, type) {
  /** @type {Stat[]} */
  const out = [];
  report.forEach((s) => {
    if (type === undefined || s.type === type) out.push(s);
  });
  return out;
}

/**
 * @param {RTCStatsReport | null} report
 * @param {string | undefined} id
 * @returns {Stat | undefined}
 */
function stat(report, id) {
  return report && id ? report.get(id) : undefined;
}

/**
 * How fast the counter `key` of one entry grew between two reports, per second, times
 * `scale` (8: bytes to bits); null without both, or if the counter went back (a new stream).
 * @param {Stat | undefined} now
 * @param {Stat | undefined} before
 * @param {'bytesSent' | 'bytesReceived' | 'framesEncoded' | 'framesDecoded'} key
 * @param {number} [scale]
 * @returns {number | null}
 */
export function rate(now, before, key, scale = 1) {
  const a = before?.[key];
  const b = now?.[key];
  if (!now || !before || a === undefined || b === undefined) return null;
  const seconds = (now.timestamp - before.timestamp) / 1000;
  if (!(seconds > 0) || b < a) return null;
  return ((b - a) * scale) / seconds;
}

/**
 * An entry's codec as people name it: `VP8`, `H264`, `opus`, with the scalability mode of an
 * outbound video stream when it has one (`VP8 L1T3`).
 * @param {RTCStatsReport} report
 * @param {Stat | undefined} s
 * @returns {string | null}
 */
function codecName(report, s) {
  const mime = stat(report, s?.codecId)?.mimeType;
  if (!mime) return null;
  const name = mime.slice(mime.indexOf('/') + 1);
  return s?.scalabilityMode ? `${name} ${s.scalabilityMode}` : name;
}

// ---------------------------------------------------------------------------
// Polling

/**
 * Polls the current client's getStats every `intervalMs` while started, and hands each summary
 * (null while there is no connection) to `onSummary`. Stopped, it calls nothing at all. Each
 * poll is scheduled when the previous one has finished, so a slow getStats never piles up.
 */
export class StatsPoller {
  /** getStats calls made so far (for tests: it stays put while stopped). */
  calls = 0;
  /** @type {StatsSummary | null} the last summary handed out */
  latest = null;
  /** @type {RTCStatsReport | null} */
  #previous = null;
  /** @type {RTCPeerConnection | null} the connection `#previous` is of */
  #pc = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer;
  /** Bumped by start() and stop(): a poll of an older run hands nothing out. */
  #run = 0;
  #running = false;

  /**
   * @param {() => ConfabClient | null} client the client to read, looked up at each poll
   * @param {(summary: StatsSummary | null) => void} onSummary
   * @param {number} [intervalMs]
   */
  constructor(client, onSummary, intervalMs = 1000) {
    this.client = client;
    this.onSummary = onSummary;
    this.intervalMs = intervalMs;
  }

  /** Whether it is polling. */
  get running() {
    return this.#running;
  }

  /** Start polling now (nothing if started already). */
  start() {
    if (this.#running) return;
    this.#running = true;
    this.#poll(++this.#run);
  }

  /** Stop polling; the next start begins without rates for its first poll. */
  stop() {
    this.#running = false;
    this.#run++;
    clearTimeout(this.#timer);
    this.#previous = null;
    this.#pc = null;
    this.latest = null;
  }

  /** @param {number} run */
  async #poll(run) {
    const client = this.client();
    const pc = client?.pc ?? null;
    /** @type {StatsSummary | null} */
    let summary = null;
    if (client && pc && pc.connectionState !== 'closed') {
      if (pc !== this.#pc) {
        this.#pc = pc;
        this.#previous = null;
      }
      this.calls++;
      try {
        const report = await pc.getStats();
        if (run !== this.#run) return;
        summary = summarize(report, this.#previous, contextOf(client));
        this.#previous = report;
      } catch (e) {
        if (run !== this.#run) return;
        console.warn('confab: getStats failed:', e);
      }
    }
    this.latest = summary;
    this.onSummary(summary);
    // A first report gives no rates: the second comes soon, so that they show at once.
    const soon = summary !== null && summary.intervalMs === null;
    this.#timer = setTimeout(() => this.#poll(run), soon ? Math.min(300, this.intervalMs) : this.intervalMs);
  }
}

// ---------------------------------------------------------------------------
// Units

const DASH = '—';

/**
 * @param {number | null} bps bit/s
 * @returns {string} `850 kbit/s`, `2.40 Mbit/s`, `4.2 kbit/s` below 10 kbit/s
 */
export function formatBitrate(bps) {
  if (bps === null || !Number.isFinite(bps)) return DASH;
  if (bps >= 1e6) return `${(bps / 1e6).toFixed(2)} Mbit/s`;
  const k = bps / 1000;
  return `${k < 10 ? k.toFixed(1) : Math.round(k)} kbit/s`;
}

/**
 * @param {number | null} ms
 * @returns {string} `0.4 ms`, `23 ms`
 */
export function formatMs(ms) {
  if (ms === null || !Number.isFinite(ms)) return DASH;
  return `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

/**
 * @param {number | null} width
 * @param {number | null} height
 * @returns {string} `640×360`
 */
export function formatResolution(width, height) {
  return width && height ? `${width}×${height}` : DASH;
}

/**
 * @param {number | null} fps
 * @returns {string} `30 fps`, `7.5 fps` below 10
 */
export function formatFps(fps) {
  if (fps === null || !Number.isFinite(fps)) return DASH;
  return `${fps < 10 ? fps.toFixed(1) : Math.round(fps)} fps`;
}

/**
 * @param {number | null} percent
 * @returns {string} `0.3%`
 */
export function formatPercent(percent) {
  return percent === null || !Number.isFinite(percent) ? DASH : `${percent.toFixed(1)}%`;
}

/**
 * An audio level (0..1, linear) in decibels below full scale.
 * @param {number | null} level
 * @returns {string} `-18 dB`, `silent`
 */
export function formatLevel(level) {
  if (level === null || !Number.isFinite(level)) return DASH;
  if (level <= 0) return 'silent';
  return `${Math.round(20 * Math.log10(level))} dB`;
}

/**
 * @param {CandidateSummary | null} c
 * @returns {string} `host udp`, `relay udp (tls to TURN)`
 */
export function formatCandidateType(c) {
  if (!c) return DASH;
  const relay = c.relayProtocol ? ` (${c.relayProtocol} to TURN)` : '';
  return `${c.type} ${c.protocol}${relay}`;
}

/**
 * @param {CandidateSummary | null} c
 * @returns {string} `127.0.0.1:7881`, `[::1]:7881`
 */
export function formatAddress(c) {
  if (!c?.address) return DASH;
  const host = c.address.includes(':') ? `[${c.address}]` : c.address;
  return c.port === null ? host : `${host}:${c.port}`;
}

// @ts-check
// Whether media of remote tracks flows, for the switch of paths of an `auto` room (mesh.js): a
// picture arrives twice for a while, through the server and directly, and the one shown must be
// one that is decoding now. No DOM code.

/** How often video receivers are polled (getStats). */
const POLL_MS = 100;
/** A video whose last decoded frame is older than this has stalled. */
const STALL_MS = 400;
/** While a switch is under way, a video flows once it has decoded without a stall this long. */
const STEADY_MS = 400;

/**
 * What is known of one watched track.
 * @typedef {object} Watched
 * @property {RTCRtpReceiver} receiver
 * @property {(flowing: boolean) => void} onChange
 * @property {boolean} flowing
 * @property {number} decoded frames decoded at the last poll
 * @property {number | null} last when the count last rose (performance.now())
 * @property {number | null} run since when it has risen without a stall
 * @property {boolean} baseline the next poll only reads the count (it was not polled for a while)
 */

/**
 * Which remote tracks carry media. An audio track flows once it has packets (it is unmuted). A
 * video track flows once a frame of it is decoded (polled from its first packet on: a picture
 * switched to before then stays black until a keyframe comes); it stops flowing when the
 * server pauses it (`reset`) until frames come again. While a switch of paths is under way
 * (`setSwitching`), every video is polled: one flows only while it decodes steadily.
 */
export class FlowWatch {
  /** @type {Map<MediaStreamTrack, Watched>} */
  #tracks = new Map();
  #switching = false;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #timer;
  #polling = false;
  #closed = false;

  /** @param {MediaStreamTrack} track whether its media flows */
  has(track) {
    return this.#tracks.get(track)?.flowing ?? false;
  }

  /**
   * Watch the receiver's track: `onChange` is called when it starts or stops flowing.
   * @param {RTCRtpReceiver} receiver
   * @param {(flowing: boolean) => void} onChange
   */
  watch(receiver, onChange) {
    const track = receiver.track;
    if (this.#closed || this.#tracks.has(track)) return;
    this.#tracks.set(track, { receiver, onChange, flowing: false, decoded: 0, last: null, run: null, baseline: false });
    track.addEventListener('ended', () => this.#tracks.delete(track), { once: true });
    if (track.kind === 'audio') {
      const flows = () => this.#set(track, true);
      if (track.muted) track.addEventListener('unmute', flows, { once: true });
      else flows();
      return;
    }
    this.#schedule();
  }

  /**
   * The server paused the video of `track`: it flows again once new frames are decoded.
   * @param {MediaStreamTrack} track
   */
  reset(track) {
    const w = this.#tracks.get(track);
    if (!w || track.kind !== 'video') return;
    w.baseline = true;
    this.#set(track, false);
    this.#schedule();
  }

  /** @param {boolean} on whether a switch of paths is under way (every video is polled) */
  setSwitching(on) {
    if (on && !this.#switching) {
      for (const w of this.#tracks.values()) w.baseline = true;
    }
    this.#switching = on;
    this.#schedule();
  }

  /** Stop watching (the session ends). */
  close() {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#tracks.clear();
  }

  /**
   * @param {MediaStreamTrack} track
   * @param {boolean} flowing
   */
  #set(track, flowing) {
    const w = this.#tracks.get(track);
    if (!w || w.flowing === flowing) return;
    w.flowing = flowing;
    w.onChange(flowing);
  }

  /** The videos to poll: those not flowing yet, and every one during a switch. */
  #due() {
    return [...this.#tracks].filter(([t, w]) => t.kind === 'video' && (this.#switching || !w.flowing));
  }

  #schedule() {
    if (this.#closed || this.#polling || this.#timer !== undefined || this.#due().length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#poll();
    }, POLL_MS);
  }

  async #poll() {
    this.#polling = true;
    try {
      await Promise.all(this.#due().map(async ([track, w]) => {
        let decoded = 0;
        try {
          (await w.receiver.getStats()).forEach((s) => {
            if (s.type === 'inbound-rtp') decoded += s.framesDecoded ?? 0;
          });
        } catch {
          return;
        }
        const now = performance.now();
        if (w.baseline) {
          // Not polled for a while: a track that flowed counts as steady since, one that did not
          // starts afresh.
          w.baseline = false;
          w.decoded = decoded;
          w.last = w.flowing ? now : null;
          w.run = w.flowing ? now - STEADY_MS : null;
          return;
        }
        if (decoded > w.decoded) {
          if (w.last === null || w.run === null || now - w.last > STALL_MS) w.run = now;
          w.last = now;
        }
        w.decoded = decoded;
        const fresh = w.last !== null && w.run !== null && now - w.last < STALL_MS;
        // Outside a switch the first frame is enough; during one, a steady run of them.
        this.#set(track, fresh && (!this.#switching || now - /** @type {number} */ (w.run) >= STEADY_MS));
      }));
    } finally {
      this.#polling = false;
    }
    if (!this.#closed) this.#schedule();
  }
}

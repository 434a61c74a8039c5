// @ts-check
// A microphone level meter: the peak of the signal (WebAudio AnalyserNode), held and let fall
// slowly so that the eye can follow it, handed to a callback about 20 times a second. The caller
// shows the level; the only DOM code here waits for a first click or key where the browser
// will not start audio without one.

/** How often the level is read, in milliseconds. */
const INTERVAL_MS = 50;
/** How much of the held level is kept at each reading (it falls by half in about 0.2 s). */
const DECAY = 0.85;

export class LevelMeter {
  /** @type {AudioContext | null} */
  #ctx = null;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #timer;
  /** @type {(() => void) | null} removes the listeners waiting for a user gesture */
  #unlisten = null;
  /** The level shown: 0 (silence) to 1 (full scale). */
  level = 0;

  /** @param {(level: number) => void} onLevel */
  constructor(onLevel) {
    this.onLevel = onLevel;
  }

  /**
   * Measure `track` (an audio track), instead of what was measured before.
   * @param {MediaStreamTrack} track
   */
  start(track) {
    this.stop();
    /** @type {AudioContext} */
    let ctx;
    try {
      ctx = new AudioContext();
    } catch (e) {
      console.warn('confab: no level meter:', e);
      return;
    }
    this.#ctx = ctx;
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    this.#timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let peak = 0;
      for (const x of samples) peak = Math.max(peak, Math.abs(x));
      this.level = Math.min(1, Math.max(peak, this.level * DECAY));
      if (this.level < 0.001) this.level = 0;
      this.onLevel(this.level);
    }, INTERVAL_MS);
    // A page may not start sound before the user has done something on it: a context created
    // too early waits, suspended, for the first click or key.
    if (ctx.state === 'suspended') {
      const resume = () => {
        ctx.resume().catch(() => {});
        this.#unlisten?.();
      };
      const opts = { capture: true, once: true };
      document.addEventListener('pointerdown', resume, opts);
      document.addEventListener('keydown', resume, opts);
      this.#unlisten = () => {
        document.removeEventListener('pointerdown', resume, opts);
        document.removeEventListener('keydown', resume, opts);
        this.#unlisten = null;
      };
      ctx.resume().catch(() => {});
    }
  }

  /** Stop measuring and release the audio context; the level drops to 0. */
  stop() {
    clearInterval(this.#timer);
    this.#unlisten?.();
    this.#ctx?.close().catch(() => {});
    this.#ctx = null;
    if (this.level !== 0) {
      this.level = 0;
      this.onLevel(0);
    }
  }
}

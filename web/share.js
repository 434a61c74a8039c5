// @ts-check
// Sharing a screen: asks the browser for one (media.js), publishes its picture and sound as
// tracks of their own (sources `screen` and `screen_audio`) and unpublishes them when the user
// stops, from the page or from the browser's own "Stop sharing" control. No DOM code: app.js
// shows the state.

import { getScreen } from './media.js';

/** @typedef {import('./protocol.js').ConfabClient} ConfabClient */
/** @typedef {{text: string, level: 'info' | 'error'}} ShareNotice */

/**
 * One screen share at a time, for the current client.
 *
 * `start()` must be called from a click. `onChange` is called whenever `state` changes,
 * including when the browser ends the capture by itself.
 */
export class ScreenShare {
  /** @type {'idle' | 'starting' | 'sharing'} */
  state = 'idle';
  /** @type {MediaStream | null} the shared stream while sharing */
  stream = null;
  /** @type {ConfabClient | null} the client it is published on */
  #client = null;
  /** Bumped by stop(): a start() still waiting for the picker then discards what it gets. */
  #run = 0;

  /**
   * @param {() => ConfabClient | null} client the client to publish on, looked up when the
   *   user has picked what to share
   * @param {() => void} onChange
   */
  constructor(client, onChange) {
    this.client = client;
    this.onChange = onChange;
  }

  /**
   * Ask the user what to share and publish it. Resolves with a notice for the user when
   * nothing is shared (picker closed, permission refused...), or null. Never rejects.
   * @returns {Promise<ShareNotice | null>}
   */
  async start() {
    if (this.state !== 'idle') return null;
    const run = ++this.#run;
    this.#set('starting');
    const { stream, notice } = await getScreen();
    const client = this.client();
    if (run !== this.#run || !stream || !client || client.state !== 'joined') {
      // Stopped, or left the call, while the picker was open.
      stream?.getTracks().forEach((t) => t.stop());
      if (run === this.#run) this.#set('idle');
      return run === this.#run && !stream ? notice : null;
    }
    const video = stream.getVideoTracks()[0];
    try {
      client.publish(video, stream, { source: 'screen' });
      for (const audio of stream.getAudioTracks()) client.publish(audio, stream, { source: 'screen_audio' });
    } catch (e) {
      this.#unpublish(client, stream);
      this.#set('idle');
      return { text: `The screen could not be shared (${e instanceof Error ? e.message : e}).`, level: 'error' };
    }
    // The browser's own "Stop sharing" button, or the shared window closing.
    video.addEventListener('ended', () => { if (this.stream === stream) this.stop(); });
    this.stream = stream;
    this.#client = client;
    this.#set('sharing');
    return null;
  }

  /** Stop sharing (nothing if not sharing): unpublish and stop the tracks. */
  stop() {
    this.#run++;
    const { stream } = this;
    const client = this.#client;
    this.stream = null;
    this.#client = null;
    if (stream) this.#unpublish(client, stream);
    if (this.state !== 'idle') this.#set('idle');
  }

  /**
   * @param {ConfabClient | null} client
   * @param {MediaStream} stream
   */
  #unpublish(client, stream) {
    for (const t of stream.getTracks()) {
      try {
        client?.unpublish(t);
      } catch {
        // The connection is closed already (left the call): nothing to tell the server.
      }
      t.stop();
    }
  }

  /** @param {'idle' | 'starting' | 'sharing'} state */
  #set(state) {
    this.state = state;
    this.onChange();
  }
}

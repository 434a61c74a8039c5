// The media half of confab-mock: runs inside a chromium page (page.evaluate(installSfu)).
// One RTCPeerConnection per participant; the page is the polite peer; every published track
// is relayed to the other participants of the room on sendonly transceivers.

export function installSfu() {
  /**
   * @typedef {object} Peer
   * @property {string} id
   * @property {string} room
   * @property {RTCPeerConnection} pc
   * @property {number} offerId
   * @property {number | null} outstanding
   * @property {Map<string, {track: MediaStreamTrack, muted: boolean}>} published by track id (mid)
   * @property {Map<string, {tr: RTCRtpTransceiver, participant: string, track: string}>} subs by "pub/track"
   * @property {MediaStream} stream msid of what this peer publishes, as seen by the others
   * @property {Promise<unknown>} chain serializes every negotiation step of this peer
   */
  /** @type {Map<string, Peer>} */
  const peers = new Map();
  // @ts-ignore
  const toNode = window.toNode;

  /** @type {AudioContext | null} */
  let audioContext = null;

  /**
   * Chromium sends silence for a remote audio track re-sent on another connection unless
   * something pulls it: pull it through WebAudio (and a muted element, which Chromium needs)
   * and relay the WebAudio output instead.
   * @param {MediaStreamTrack} track
   */
  function relayableAudio(track) {
    audioContext ??= new AudioContext();
    const stream = new MediaStream([track]);
    const el = new Audio();
    el.muted = true;
    el.srcObject = stream;
    el.play().catch(() => {});
    const dest = audioContext.createMediaStreamDestination();
    audioContext.createMediaStreamSource(stream).connect(dest);
    return dest.stream.getAudioTracks()[0];
  }

  /** @param {RTCPeerConnection} pc */
  function gathered(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, 2000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(undefined); }
      });
    });
  }

  /**
   * Run `fn` after every earlier negotiation step of `peer`.
   * @template T
   * @param {Peer} peer
   * @param {() => Promise<T>} fn
   * @returns {Promise<T>}
   */
  function serial(peer, fn) {
    const run = peer.chain.then(fn);
    peer.chain = run.catch(() => {});
    return run;
  }

  /** @param {Peer} peer */
  async function offer(peer) {
    const pc = peer.pc;
    if (pc.signalingState !== 'stable' || pc.connectionState === 'closed') return;
    await pc.setLocalDescription();
    await gathered(pc);
    if (pc.signalingState !== 'have-local-offer') return;
    const id = ++peer.offerId;
    peer.outstanding = id;
    /** @type {Record<string, {participant: string, track: string}>} */
    const tracks = {};
    for (const s of peer.subs.values()) {
      if (s.tr.mid !== null && s.tr.currentDirection !== 'stopped') tracks[s.tr.mid] = { participant: s.participant, track: s.track };
    }
    toNode(peer.id, { type: 'offer', id, sdp: pc.localDescription?.sdp, tracks });
  }

  /**
   * @param {Peer} sub
   * @param {Peer} pub
   * @param {string} trackId
   */
  function subscribe(sub, pub, trackId) {
    const p = pub.published.get(trackId);
    if (!p) return;
    const tr = sub.pc.addTransceiver(p.track, { direction: 'sendonly', streams: [pub.stream] });
    if (p.muted) tr.sender.replaceTrack(null);
    sub.subs.set(`${pub.id}/${trackId}`, { tr, participant: pub.id, track: trackId });
  }

  const sfu = {
    /** @param {string} id @param {string} room */
    addPeer(id, room) {
      const pc = new RTCPeerConnection();
      /** @type {Peer} */
      const peer = { id, room, pc, offerId: 0, outstanding: null, published: new Map(), subs: new Map(), stream: new MediaStream(), chain: Promise.resolve() };
      peers.set(id, peer);
      pc.onnegotiationneeded = () => serial(peer, () => offer(peer)).catch((e) => console.error('offer', e));
      for (const other of peers.values()) {
        if (other === peer || other.room !== room) continue;
        for (const trackId of other.published.keys()) subscribe(peer, other, trackId);
      }
    },

    /** @param {string} id @param {string} sdp */
    clientOffer(id, sdp) {
      const peer = peers.get(id);
      if (!peer) return;
      return serial(peer, () => this.applyOffer(peer, sdp));
    },

    /** @param {Peer} peer @param {string} sdp */
    async applyOffer(peer, sdp) {
      const id = peer.id;
      const pc = peer.pc;
      // Polite: a client offer rolls back ours (implicitly) and is answered.
      peer.outstanding = null;
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription();
      await gathered(pc);
      toNode(id, { type: 'answer', sdp: pc.localDescription?.sdp });
      const subTransceivers = new Set([...peer.subs.values()].map((s) => s.tr));
      for (const t of pc.getTransceivers()) {
        if (t.mid === null || subTransceivers.has(t) || peer.published.has(t.mid)) continue;
        if (t.currentDirection !== 'recvonly') continue;
        const track = t.receiver.track.kind === 'audio' ? relayableAudio(t.receiver.track) : t.receiver.track;
        const meta = await toNode(id, { type: '_published', track: { id: t.mid, kind: track.kind } });
        peer.published.set(t.mid, { track, muted: !!meta?.muted });
        for (const other of peers.values()) {
          if (other !== peer && other.room === peer.room) subscribe(other, peer, t.mid);
        }
      }
      // Changes wanted while we were answering: negotiationneeded may not fire again.
      const pending = [...peer.subs.values()].some((s) => s.tr.mid === null)
        || pc.getTransceivers().some((t) => t.direction === 'stopped' && t.currentDirection !== 'stopped');
      if (pending) serial(peer, () => offer(peer)).catch(() => {});
    },

    /** @param {string} id @param {number} offerId @param {string} sdp */
    clientAnswer(id, offerId, sdp) {
      const peer = peers.get(id);
      if (!peer) return null;
      return serial(peer, async () => {
      if (peer.outstanding !== offerId || peer.pc.signalingState !== 'have-local-offer') return 'stale';
      peer.outstanding = null;
      await peer.pc.setRemoteDescription({ type: 'answer', sdp });
      return null;
      });
    },

    /** @param {string} id @param {RTCIceCandidateInit} c */
    async clientCandidate(id, c) {
      const peer = peers.get(id);
      if (!peer) return true;
      try {
        await peer.pc.addIceCandidate(c);
        return true;
      } catch {
        return !/^candidate:/.test(c.candidate ?? '') || /typ/.test(c.candidate ?? '');
      }
    },

    /** @param {string} id @param {string} trackId @param {boolean} muted */
    async mute(id, trackId, muted) {
      const peer = peers.get(id);
      const p = peer?.published.get(trackId);
      if (!peer || !p) return;
      p.muted = muted;
      for (const other of peers.values()) {
        const s = other.subs.get(`${id}/${trackId}`);
        if (s) await s.tr.sender.replaceTrack(muted ? null : p.track);
      }
    },

    /** @param {string} id */
    removePeer(id) {
      const peer = peers.get(id);
      if (!peer) return;
      peers.delete(id);
      peer.pc.close();
      for (const other of peers.values()) {
        for (const [key, s] of other.subs) {
          if (s.participant !== id) continue;
          other.subs.delete(key);
          try { s.tr.stop(); } catch { /* closed */ }
        }
      }
    },
  };
  // @ts-ignore
  window.sfu = sfu;
}

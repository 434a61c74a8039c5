#!/usr/bin/python3
"""A WHIP (RFC 9725) publisher made of GStreamer's webrtcbin: a moving test pattern in VP8 and a
tone in Opus, offered sendonly with every host candidate in the offer (no trickle).

    /usr/bin/python3 tests/e2e/gst/whip_publish.py --url 'http://127.0.0.1:PORT/whip/ROOM?name=Gst' --seconds 20

Runs for --seconds after the answer (or until SIGTERM/SIGINT), DELETEs its session, and prints
one JSON line on stdout: {"status": 201, "location": "/sessions/...", "seconds": ...,
"connection_state": "connected", "packets_sent": n, "streams": [...], "delete_status": 200,
"error": null, ...}. Progress (including both SDPs) goes to stderr as JSON lines. Exit status 0
when the POST got 201 and nothing failed.
"""

import json
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

from whipclient import AUDIO_CAPS, VIDEO_CAPS, Gst, GstWebRTC, Session, parse_args, stats


def main():
    p = parse_args(__doc__.splitlines()[0])
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    args = p.parse_args()

    pipeline = Gst.parse_launch(
        "webrtcbin name=webrtc bundle-policy=max-bundle "
        f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={args.width},height={args.height},framerate=30/1 "
        "! videoconvert ! queue ! vp8enc deadline=1 keyframe-max-dist=30 target-bitrate=400000 cpu-used=8 "
        f"! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit ! {VIDEO_CAPS} ! webrtc. "
        "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 ! audioconvert ! audioresample "
        f"! queue ! opusenc ! rtpopuspay pt=111 mtu=1200 ! {AUDIO_CAPS} ! webrtc. "
    )
    webrtc = pipeline.get_by_name("webrtc")
    session = Session(args.url, pipeline, webrtc, args.seconds, args.dtls_cert)

    def on_negotiation_needed(_webrtc):
        # The transceivers made for the linked pads are sendrecv: this end only sends.
        for pad in webrtc.sinkpads:
            pad.get_property("transceiver").set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        session.negotiate()

    webrtc.connect("on-negotiation-needed", on_negotiation_needed)

    def sent():
        # (webrtcbin 1.22 says "audio" for the kind of every stream: by SSRC, then.)
        streams = [
            {k: s.get(k, 0) for k in ("ssrc", "packets-sent", "bytes-sent", "pli-count", "nack-count")}
            for s in stats(webrtc, "outbound-rtp")
        ]
        session.result["streams"] = streams
        session.result["packets_sent"] = sum(s["packets-sent"] for s in streams)

    result = session.run(before_delete=sent)
    print(json.dumps(result), flush=True)
    return 0 if result["status"] == 201 and result["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main())

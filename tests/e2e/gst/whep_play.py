#!/usr/bin/python3
"""A WHEP player made of GStreamer's webrtcbin: recvonly VP8 video and Opus audio, every host
candidate in the offer (no trickle); decodes what it receives and counts it.

    /usr/bin/python3 tests/e2e/gst/whep_play.py --url http://127.0.0.1:PORT/whep/ROOM[/PARTICIPANT] --seconds 10

Runs for --seconds after the answer (or until SIGTERM/SIGINT), DELETEs its session, and prints
one JSON line on stdout: {"frames": n, "width": w, "height": h, "first_frame_after": s,
"audio_buffers": n, "status": 201, "location": ..., "seconds": ..., "delete_status": 200,
"error": null, ...}. Progress goes to stderr as JSON lines. Exit status 0 when the POST got 201
and nothing failed (frames may still be 0: the caller judges).
"""

import json
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

from whipclient import AUDIO_CAPS, VIDEO_CAPS, Gst, GstWebRTC, Session, log, parse_args, stats


def main():
    args = parse_args(__doc__.splitlines()[0]).parse_args()

    pipeline = Gst.Pipeline.new("whep")
    webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
    webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
    pipeline.add(webrtc)
    session = Session(args.url, pipeline, webrtc, args.seconds, args.dtls_cert)
    r = session.result
    r.update({"frames": 0, "width": 0, "height": 0, "first_frame_after": None, "audio_buffers": 0, "keyframe_requests": 0})

    recvonly = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
    webrtc.emit("add-transceiver", recvonly, Gst.Caps.from_string(VIDEO_CAPS))
    webrtc.emit("add-transceiver", recvonly, Gst.Caps.from_string(AUDIO_CAPS))

    def on_video_frame(pad, _info):
        r["frames"] += 1
        if r["frames"] == 1:
            r["first_frame_after"] = round(time.monotonic() - (session.started_at or time.monotonic()), 3)
            caps = pad.get_current_caps()
            if caps is not None:
                s = caps.get_structure(0)
                r["width"] = s.get_value("width")
                r["height"] = s.get_value("height")
            log("first_frame", width=r["width"], height=r["height"])
        return Gst.PadProbeReturn.OK

    def on_audio(_pad, _info):
        r["audio_buffers"] += 1
        return Gst.PadProbeReturn.OK

    def on_caps(pad, info):
        # A later size change (another simulcast layer) is the size we report.
        event = info.get_event()
        if event.type == Gst.EventType.CAPS:
            s = event.parse_caps().get_structure(0)
            if s.has_field("width"):
                r["width"], r["height"] = s.get_value("width"), s.get_value("height")
        return Gst.PadProbeReturn.OK

    def on_upstream(_pad, info):
        event = info.get_event()
        if event and event.type == Gst.EventType.CUSTOM_UPSTREAM and event.get_structure().get_name() == "GstForceKeyUnit":
            r["keyframe_requests"] += 1
        return Gst.PadProbeReturn.OK

    def chain(*names):
        elements = [Gst.ElementFactory.make(n) for n in names]
        for e in elements:
            pipeline.add(e)
        for a, b in zip(elements, elements[1:]):
            a.link(b)
        for e in elements:
            e.sync_state_with_parent()
        return elements

    def on_pad_added(_webrtc, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        media, encoding = s.get_value("media"), s.get_value("encoding-name")
        log("pad_added", media=media, encoding=encoding)
        if media == "video" and encoding == "VP8":
            depay, dec, sink = chain("rtpvp8depay", "vp8dec", "fakesink")
            for prop in ("request-keyframe", "wait-for-keyframe"):
                if depay.find_property(prop):
                    depay.set_property(prop, True)
            src = dec.get_static_pad("src")
            src.add_probe(Gst.PadProbeType.BUFFER, on_video_frame)
            src.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, on_caps)
            depay.get_static_pad("sink").add_probe(Gst.PadProbeType.EVENT_UPSTREAM, on_upstream)
        elif media == "audio" and encoding == "OPUS":
            depay, dec, sink = chain("rtpopusdepay", "opusdec", "fakesink")
            dec.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_audio)
        else:
            (sink,) = chain("fakesink")
            depay = sink
        sink.set_property("sync", False)
        sink.set_property("async", False)
        pad.link(depay.get_static_pad("sink"))

    webrtc.connect("pad-added", on_pad_added)
    webrtc.connect("on-negotiation-needed", lambda _w: session.negotiate())

    def received():
        r["packets_received"] = sum(int(s.get("packets-received", 0)) for s in stats(webrtc, "inbound-rtp"))

    result = session.run(before_delete=received)
    print(json.dumps(result), flush=True)
    return 0 if result["status"] == 201 and result["error"] is None else 1


if __name__ == "__main__":
    sys.exit(main())

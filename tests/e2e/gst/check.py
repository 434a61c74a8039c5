#!/usr/bin/python3
"""Exit 0 when this machine can run the GStreamer WHIP/WHEP clients of tests/e2e/gst, else print
what is missing (one line) and exit 1. Run with Debian's /usr/bin/python3 (PyGObject comes from the
python3-gi package, not from pip). scripts/test installs the Debian packages when this fails."""

import shutil
import sys

ELEMENTS = [
    "webrtcbin", "nicesrc", "dtlssrtpenc", "srtpenc",  # plugins-bad, nice
    "videotestsrc", "audiotestsrc", "videoconvert", "audioconvert", "audioresample",  # base
    "opusenc", "opusdec", "rtpopuspay", "rtpopusdepay",  # base, good
    "vp8enc", "vp8dec", "rtpvp8pay", "rtpvp8depay", "rtpbin",  # good
]


def main() -> int:
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstSdp", "1.0")
        gi.require_version("GstWebRTC", "1.0")
        from gi.repository import Gst, GstSdp, GstWebRTC  # noqa: F401
    except (ImportError, ValueError) as e:
        print(f"PyGObject with GStreamer's WebRTC typelibs is missing: {e}")
        return 1
    Gst.init(None)
    missing = [e for e in ELEMENTS if Gst.ElementFactory.find(e) is None]
    try:
        gi.require_version("Nice", "0.1")
        from gi.repository import Nice  # noqa: F401
    except (ImportError, ValueError) as e:
        missing.append(f"libnice typelib ({e})")
    if shutil.which("openssl") is None:
        missing.append("the openssl command")
    if missing:
        print(f"missing: {', '.join(missing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

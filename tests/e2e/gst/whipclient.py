"""What the GStreamer WHIP publisher and WHEP player of the e2e suite share: a webrtcbin that
offers, gathers all its host candidates into the offer (no trickle), POSTs it to a WHIP/WHEP
endpoint, takes the answer, runs for a while and DELETEs its session.

Run the scripts with Debian's /usr/bin/python3 (PyGObject is the python3-gi package).
Progress goes to stderr, one JSON object a line ({"event": ...}); the result is one JSON line on
stdout, printed by the script.
"""

import json
import re
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("Nice", "0.1")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC, Nice  # noqa: E402

Gst.init(None)

#: How long to wait for ICE gathering to complete before offering what was gathered.
GATHER_TIMEOUT_S = 10
#: How long to wait for the HTTP answer.
HTTP_TIMEOUT_S = 15


# The RTP formats both clients use: VP8 with NACK, PLI and FIR feedback, and Opus.
VIDEO_CAPS = (
    "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000,"
    "rtcp-fb-nack=(boolean)true,rtcp-fb-nack-pli=(boolean)true,rtcp-fb-ccm-fir=(boolean)true"
)
AUDIO_CAPS = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,encoding-params=(string)2"


LOG_LOCK = threading.Lock()


def log(event, **fields):
    """One progress line on stderr: whole, one write under a lock (GStreamer calls back from its
    own threads, and two print()s at once once interleaved two lines into one)."""
    fields = {"event": event, "t": round(time.monotonic() - START, 3), **fields}
    line = json.dumps(fields) + "\n"
    with LOG_LOCK:
        sys.stderr.write(line)
        sys.stderr.flush()


START = time.monotonic()


def http(method, url, body=None, content_type=None):
    """(status, headers, text) of one request; HTTP errors are answers too, not exceptions."""
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as r:
            return r.status, dict(r.headers), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode("utf-8", "replace")


def add_candidates(sdp, candidates):
    """`sdp` with `candidates` ([(mline, "candidate:...")]) written into their m-sections, for
    a webrtcbin whose local description does not carry them."""
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    out, mline = [], -1

    def flush(index):
        for m, c in candidates:
            if m == index:
                out.append("a=" + c)
        if index >= 0:
            out.append("a=end-of-candidates")

    for line in lines:
        if line.startswith("m="):
            flush(mline)
            mline += 1
        out.append(line)
    flush(mline)
    return "\r\n".join(out) + "\r\n"


_KEEP = []


def ecdsa_pem():
    """A fresh self-signed ECDSA P-256 certificate and its key, in PEM (openssl's command line).
    GStreamer's DTLS elements make an RSA one of their own unless given one."""
    import subprocess

    out = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", "-", "-out", "-", "-days", "30", "-subj", "/CN=confab-e2e-gst"],
        check=True, capture_output=True, text=True,
    ).stdout
    return out


def fingerprint(pem):
    """The SHA-256 fingerprint of the certificate in `pem`, as SDP writes it."""
    import hashlib
    import ssl

    start = pem.index("-----BEGIN CERTIFICATE-----")
    end = pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem[start:end])).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def use_certificate(pipeline, pem):
    """Make every DTLS endpoint that webrtcbin creates in `pipeline` use the certificate and key
    in `pem`, set on each dtlssrtpdec as webrtcbin adds it (when it makes the offer). The offer
    still carries the fingerprint of the certificate the element made first (GStreamer 1.22):
    `Session` writes the right one into the SDP it POSTs."""
    done = set()

    def visit(element):
        factory = element.get_factory()
        if factory is not None and factory.get_name() == "dtlssrtpdec" and element.get_name() not in done:
            done.add(element.get_name())
            element.set_property("pem", pem)
            # 1.22 takes the new certificate but keeps the connection made with the old one:
            # setting the connection id again makes the connection anew, with the new one.
            element.set_property("connection-id", element.get_property("connection-id"))
            log("dtls_certificate", element=element.get_name(), fingerprint=fingerprint(pem))
        if isinstance(element, Gst.Bin):
            it = element.iterate_recurse()
            while True:
                ok, child = it.next()
                if ok != Gst.IteratorResult.OK:
                    break
                visit(child)

    pipeline.connect("deep-element-added", lambda _bin, _sub, element: visit(element))


def gather_on(webrtc, ip):
    """Make `webrtc` gather its host candidate on `ip` only. libnice never gathers on loopback
    interfaces by itself, and a server on 127.0.0.1 (or the e2e suite's network namespace, which
    holds nothing but loopback) is reachable only there."""
    ice = webrtc.get_property("ice-agent")
    agent = ice.get_property("agent")
    # PyGObject takes webrtcbin's floating reference of the ICE object as its own: let go of
    # the wrappers and the object is freed under webrtcbin. Kept for the life of the process.
    _KEEP.extend([ice, agent])
    address = Nice.Address.new()
    if not address.set_from_string(ip):
        raise ValueError(f"not an IP address: {ip}")
    agent.add_local_address(address)


class Session:
    """One WHIP or WHEP session around the webrtcbin `webrtc` of `pipeline`.

    `result` is the dict the script prints at the end; `negotiate()` is called when the pipeline
    is ready to offer (after its transceivers exist).
    """

    def __init__(self, url, pipeline, webrtc, seconds, dtls_cert="default"):
        self.url = url
        self.pem = ecdsa_pem() if dtls_cert == "ecdsa" else None
        if self.pem:
            use_certificate(pipeline, self.pem)
        self.pipeline = pipeline
        self.webrtc = webrtc
        self.seconds = seconds
        self.loop = GLib.MainLoop()
        self.candidates = []
        self.offered = False
        self.started_at = None
        self.result = {
            "status": None,
            "location": None,
            "seconds": 0.0,
            "connection_state": None,
            "ice_connection_state": None,
            "connected_after": None,
            "delete_status": None,
            "error": None,
        }
        host = urllib.parse.urlsplit(url).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            gather_on(webrtc, "::1" if host == "::1" else "127.0.0.1")
        webrtc.connect("on-ice-candidate", self._on_candidate)
        webrtc.connect("notify::ice-gathering-state", self._on_gathering)
        webrtc.connect("notify::connection-state", self._on_connection_state)
        webrtc.connect("notify::ice-connection-state", self._on_ice_state)
        bus = pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._on_error)
        for sig in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, self._on_signal, sig)

    # ------------------------------------------------------------------------------ offer

    def negotiate(self):
        """Create the offer and set it as local description; the rest follows on signals."""
        promise = Gst.Promise.new_with_change_func(self._on_offer_created, None)
        self.webrtc.emit("create-offer", None, promise)

    def _on_offer_created(self, promise, _data):
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None else None
        if offer is None:
            GLib.idle_add(self.fail, f"create-offer gave no offer: {reply.to_string() if reply else None}")
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        log("offer_created")
        # Gathering may be complete before we connect to it, or never say so: offer anyway.
        GLib.timeout_add_seconds(GATHER_TIMEOUT_S, self._gather_timeout)

    def _on_candidate(self, _webrtc, mline, candidate):
        self.candidates.append((mline, candidate))

    def _on_gathering(self, webrtc, _pspec):
        state = webrtc.get_property("ice-gathering-state")
        log("ice_gathering_state", state=state.value_nick)
        if state == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(self._post_offer)

    def _gather_timeout(self):
        if not self.offered:
            log("gather_timeout", candidates=len(self.candidates))
            self._post_offer()
        return False

    def _post_offer(self):
        if self.offered:
            return False
        self.offered = True
        desc = self.webrtc.get_property("local-description")
        sdp = desc.sdp.as_text()
        if "a=candidate:" not in sdp:
            sdp = add_candidates(sdp, self.candidates)
        if self.pem:
            # webrtcbin wrote the fingerprint of the certificate made before ours (see
            # use_certificate); the DTLS connection uses ours.
            sdp = re.sub(r"(?m)^a=fingerprint:.*$", "a=fingerprint:sha-256 " + fingerprint(self.pem), sdp.replace("\r\n", "\n")).replace("\n", "\r\n")
        log("offer", candidates=sdp.count("a=candidate:"), sdp=sdp)
        try:
            status, headers, body = http("POST", self.url, sdp.encode(), "application/sdp")
        except OSError as e:
            return self.fail(f"POST {self.url}: {e}")
        self.result["status"] = status
        if status != 201:
            self.result["body"] = body
            return self.fail(f"POST {self.url}: {status} {body.strip()}")
        location = headers.get("Location") or headers.get("location")
        if not location:
            return self.fail("201 without a Location header")
        self.result["location"] = location
        self.result["etag"] = headers.get("ETag") or headers.get("etag")
        log("answer", location=location, sdp=body)
        ok, msg = GstSdp.SDPMessage.new_from_text(body)
        if ok != GstSdp.SDPResult.OK:
            return self.fail(f"the answer is not SDP: {body[:200]!r}")
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, msg)
        promise = Gst.Promise.new_with_change_func(self._on_remote_set, None)
        self.webrtc.emit("set-remote-description", answer, promise)
        self.started_at = time.monotonic()
        GLib.timeout_add(int(self.seconds * 1000), self.stop)
        log("session", location=location, etag=self.result["etag"])
        return False

    def _on_remote_set(self, promise, _data):
        reply = promise.get_reply()
        if reply is not None and reply.has_field("error"):
            GLib.idle_add(self.fail, f"set-remote-description: {reply.get_value('error')}")

    # ------------------------------------------------------------------------------ state

    def _on_connection_state(self, webrtc, _pspec):
        state = webrtc.get_property("connection-state").value_nick
        if not self.loop.is_running() and self.started_at is not None:
            # webrtcbin says "connected" while it shuts down, even when DTLS never was.
            log("connection_state_ignored", state=state)
            return
        self.result["connection_state"] = state
        if state == "connected" and self.result["connected_after"] is None and self.started_at:
            self.result["connected_after"] = round(time.monotonic() - self.started_at, 3)
        log("connection_state", state=state)

    def _on_ice_state(self, webrtc, _pspec):
        state = webrtc.get_property("ice-connection-state").value_nick
        if not self.loop.is_running() and self.started_at is not None:
            return
        self.result["ice_connection_state"] = state
        log("ice_connection_state", state=state)

    def _on_error(self, _bus, message):
        err, debug = message.parse_error()
        self.fail(f"{message.src.get_name()}: {err.message} ({debug})")

    def _on_signal(self, sig):
        log("signal", signal=int(sig))
        self.stop()
        return False

    def fail(self, reason):
        """End with `reason` as the result's error (the first one is kept)."""
        if self.result["error"] is None:
            self.result["error"] = reason
        log("error", reason=reason)
        self.stop()
        return False

    def stop(self):
        if self.loop.is_running():
            self.loop.quit()
        return False

    # ------------------------------------------------------------------------------ run

    def run(self, before_delete=None):
        """Play, negotiate, run until the time is up or a signal; DELETE; return the result."""
        self.pipeline.set_state(Gst.State.PLAYING)
        self.loop.run()
        if self.started_at is not None:
            self.result["seconds"] = round(time.monotonic() - self.started_at, 3)
        if before_delete:
            try:
                before_delete()
            except Exception as e:  # noqa: BLE001 (a report, not a crash)
                log("before_delete_failed", reason=repr(e))
        if self.result["location"]:
            target = urllib.parse.urljoin(self.url, self.result["location"])
            try:
                self.result["delete_status"] = http("DELETE", target)[0]
            except OSError as e:
                self.result["delete_error"] = str(e)
        self.pipeline.set_state(Gst.State.NULL)
        return self.result


def stats(webrtc, kind):
    """The webrtcbin stats of `kind` ("outbound-rtp", "inbound-rtp", ...) as a list of dicts."""
    promise = Gst.Promise.new()
    webrtc.emit("get-stats", None, promise)
    promise.wait()
    reply = promise.get_reply()
    out = []
    if reply is None:
        return out

    def field(_id, value, _data=None):
        if isinstance(value, Gst.Structure):
            t = value.get_value("type")
            nick = getattr(t, "value_nick", str(t))
            if nick == kind:
                entry = {}
                for i in range(value.n_fields()):
                    name = value.nth_field_name(i)
                    v = value.get_value(name)
                    if isinstance(v, (int, float, str, bool)):
                        entry[name] = v
                out.append(entry)
        return True

    reply.foreach(field, None)
    return out


def parse_args(description):
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--url", required=True, help="the endpoint, e.g. http://127.0.0.1:PORT/whip/ROOM?name=NAME")
    p.add_argument("--seconds", type=float, default=10, help="how long to run after the answer (or until SIGTERM)")
    p.add_argument(
        "--dtls-cert", choices=["default", "ecdsa"], default="default",
        help="default: the RSA certificate GStreamer makes; ecdsa: a fresh ECDSA P-256 one (what browsers use)",
    )
    return p

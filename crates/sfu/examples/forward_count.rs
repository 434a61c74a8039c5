//! The forwarding benchmark's call (one video publisher, N subscribers, on testkit's virtual
//! network) for a fixed stretch of virtual time, for instruction counting: wall-clock time on a
//! busy machine varies by ±30 % from run to run, instruction counts do not.
//!
//! ```sh
//! cargo build --release -p confab-sfu --example forward_count
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!   --toggle-collect='sfu::engine::Sfu::handle_*' \
//!   target/release/examples/forward_count 50 5
//! callgrind_annotate /tmp/cg.out | head -30     # Ir = instructions inside the core
//! ```
//!
//! It prints the packets the core received and forwarded while measuring; the instructions
//! per forwarded packet are the collected total over that count (the setup's are in the total
//! too, and are subtracted by running it with 0 seconds). A third argument `off` runs the SFU
//! with congestion control off (no estimator, pacer or probes); a fourth is the publisher's
//! video bitrate in kbit/s (default 288, testkit's; 1500 is a camera at about 160 packets/s).

use std::time::Duration;

use testkit::Scenario;

fn main() {
    if let Ok(filter) = std::env::var("FORWARD_COUNT_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let congestion_control = args.next().as_deref() != Some("off");
    let kbps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(288);
    // 20 fps: a delta frame of kbps * 1000 / 8 / 20 bytes.
    let mut call = Scenario::broadcast_video(subscribers, congestion_control, kbps * 1000 / 160);
    let before = call.sfu.stats().clone();
    call.run_for(Duration::from_secs(seconds));
    let after = call.sfu.stats();
    // Where each subscriber's video stands: a paused stream forwards nothing.
    let mut paused = 0;
    let mut estimates = Vec::new();
    for peer in &call.peers[1..] {
        let last = peer.signals.iter().rev().find_map(|s| match s {
            sfu::Signal::StreamState { active, estimate, .. } => Some((*active, *estimate)),
            _ => None,
        });
        if let Some((active, estimate)) = last {
            paused += usize::from(!active);
            estimates.extend(estimate.map(|e| e / 1000));
        }
    }
    if std::env::var_os("FORWARD_COUNT_DEBUG").is_some() {
        println!("{after:#?}");
        let frames: Vec<usize> = (1..=subscribers).map(|s| call.video_frames(s, 0)).collect();
        println!("frames received {frames:?}");
    }
    println!("paused {paused} of {subscribers}; last estimates (kbit/s) {estimates:?}");
    println!(
        "subscribers {subscribers}, {seconds} s, {kbps} kbit/s: received {} RTP packets ({} datagrams), forwarded {}, sent {} datagrams",
        after.rtp_in - before.rtp_in,
        after.datagrams_in - before.datagrams_in,
        after.rtp_forwarded - before.rtp_forwarded,
        after.datagrams_out - before.datagrams_out,
    );
}

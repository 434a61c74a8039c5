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
//! with congestion control off (no estimator, pacer or probes).

use std::time::Duration;

use testkit::Scenario;

fn main() {
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let congestion_control = args.next().as_deref() != Some("off");
    let mut call = Scenario::broadcast_with(subscribers, congestion_control);
    let before = call.sfu.stats().clone();
    call.run_for(Duration::from_secs(seconds));
    let after = call.sfu.stats();
    println!(
        "subscribers {subscribers}, {seconds} s: received {} RTP packets ({} datagrams), forwarded {}, sent {} datagrams",
        after.rtp_in - before.rtp_in,
        after.datagrams_in - before.datagrams_in,
        after.rtp_forwarded - before.rtp_forwarded,
        after.datagrams_out - before.datagrams_out,
    );
}

//! Criterion benchmarks of the SFU core's hot paths, on testkit's virtual network (no sockets):
//!
//! - `forward/video_packet_to/N`: one incoming SRTP video packet from a publisher, decrypted,
//!   routed, rewritten and encrypted once for each of N subscribers. The time is what the core
//!   spends in its own calls (datagrams, timeouts, commands, polls: RTCP, TWCC, keepalives and
//!   padding included), per packet the publisher sends; the peers' work is not counted.
//!   Throughput is in forwarded packets, so criterion's elem/s is forwarded packets per second
//!   of core time, and its inverse the CPU time per forwarded packet.
//! - `route/N`: which of N connected participants a datagram belongs to, by its source address
//!   (SRTP, SRTCP, DTLS) or for an unknown address.
//!
//! `cargo bench -p confab-sfu` runs them; `-- forward/video_packet_to/50` one of them.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use testkit::{NetemConfig, Scenario};

fn forwarding(c: &mut Criterion) {
    let mut group = c.benchmark_group("forward");
    group.sample_size(20).measurement_time(Duration::from_secs(4));
    for n in [1usize, 10, 50] {
        // Set up on first use, so that a filtered run (or a profile) builds only its own.
        let mut call_n: Option<Scenario> = None;
        group.throughput(Throughput::Elements(n as u64));
        {
            group.bench_function(BenchmarkId::new("video_packet_to", n), |b| {
                let call = call_n.get_or_insert_with(|| Scenario::broadcast(n));
                b.iter_custom(|iters| {
                    let (rtp_in, forwarded, spent) = (call.sfu.stats().rtp_in, call.sfu.stats().rtp_forwarded, call.sfu_time);
                    while call.sfu.stats().rtp_in - rtp_in < iters {
                        call.run_for(Duration::from_millis(50));
                    }
                    let got = call.sfu.stats().rtp_in - rtp_in;
                    let out = call.sfu.stats().rtp_forwarded - forwarded;
                    assert_eq!(out, got * n as u64, "every packet to every subscriber");
                    (call.sfu_time - spent).mul_f64(iters as f64 / got as f64)
                });
            });
        }
    }
    group.finish();
}

fn routing(c: &mut Criterion) {
    let mut group = c.benchmark_group("route");
    // A minimal RTP header: routed by source address like any SRTP packet.
    let rtp = [0x80u8, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
    for n in [10usize, 200] {
        let mut setup: Option<(Scenario, Vec<SocketAddr>)> = None;
        let mut make = move || {
            let mut call = Scenario::new(NetemConfig::new());
            let mut addrs: Vec<SocketAddr> = Vec::new();
            for i in 0..n {
                let p = call.join(&format!("p{i}"), &format!("room{}", i / 2));
                call.publish(p, true, false);
                addrs.push(call.peers[p].addr);
            }
            call.run_for(Duration::from_secs(3));
            assert!(addrs.iter().all(|a| call.sfu.route(*a, &rtp).is_some()), "every participant routed");
            (call, addrs)
        };
        let mut next = 0;
        group.bench_function(BenchmarkId::new("known_address", n), |b| {
            let (call, addrs) = setup.get_or_insert_with(&mut make);
            b.iter(|| {
                next = (next + 7) % n;
                black_box(call.sfu.route(black_box(addrs[next]), black_box(&rtp)))
            });
        });
        let stranger: SocketAddr = "192.0.2.1:9".parse().unwrap_or_else(|_| unreachable!());
        group.bench_function(BenchmarkId::new("unknown_address", n), |b| {
            let (call, _) = setup.get_or_insert_with(&mut make);
            b.iter(|| black_box(call.sfu.route(black_box(stranger), black_box(&rtp))));
        });
    }
    group.finish();
}

criterion_group!(benches, forwarding, routing);
criterion_main!(benches);

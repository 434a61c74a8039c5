//! Joins per client address (`--join-rate`): a token bucket per IP, so one address cannot flood
//! the server with joins (or guess at tokens) while others join freely. Loopback addresses are
//! not limited: they are this machine (a local reverse proxy, the load tester, the tests).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses remembered before full buckets are forgotten.
const FORGET_OVER: usize = 10_000;

/// The limiter.
#[derive(Debug)]
pub(crate) struct JoinRate {
    /// Joins per minute per address; 0: no limit.
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl JoinRate {
    pub(crate) fn new(per_minute: u32) -> JoinRate {
        JoinRate { per_minute, buckets: Mutex::default() }
    }

    /// Take a join for `ip` at `now`: `Err(wait)` when its address is over the rate.
    pub(crate) fn take(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 || ip.is_loopback() || ip.to_canonical().is_loopback() {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > FORGET_OVER {
            buckets.retain(|_, (tokens, at)| *tokens + now.saturating_duration_since(*at).as_secs_f64() * per_second < capacity);
        }
        let (tokens, at) = buckets.entry(ip).or_insert((capacity, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * per_second).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(((1.0 - *tokens) / per_second).max(0.001)).max(Duration::from_secs(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_rate_and_others_are_not_held_up() {
        let limit = JoinRate::new(6);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..6 {
            assert!(limit.take(a, t0).is_ok());
        }
        let wait = limit.take(a, t0).unwrap_err();
        assert!(wait >= Duration::from_secs(9) && wait <= Duration::from_secs(11), "{wait:?}");
        assert!(limit.take(b, t0).is_ok(), "another address is not limited");
        // One join back every 10 s.
        assert!(limit.take(a, t0 + Duration::from_secs(10)).is_ok());
        assert!(limit.take(a, t0 + Duration::from_secs(11)).is_err());
        assert!(JoinRate::new(0).take(a, t0).is_ok());
        // This machine is never limited.
        let one = JoinRate::new(1);
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!((0..5).all(|_| one.take(ip, t0).is_ok()), "{ip}");
        }
    }
}

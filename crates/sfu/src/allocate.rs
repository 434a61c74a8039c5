//! Splitting one subscriber's downlink among the video tracks it receives, and deciding when to
//! switch layers so that a steady link never oscillates.
//!
//! [`allocate`] is the split for one budget: every track's lowest layer first (in priority
//! order: screen shares, the active speaker, other cameras), a track that does not fit even that
//! is paused, and what is left raises tracks one at a time in priority order. [`Downlink`] turns
//! the subscriber's bandwidth estimate into targets over time, with hysteresis:
//!
//! - a layer is kept while the estimate covers it; going down waits [`DOWN_SUSTAIN`] unless the
//!   estimate is far below, and [`QUIET_DOWN_SUSTAIN`] for any dip on a link that shows no
//!   congestion (str0m's estimator is noisy on a busy receiver), during which str0m is asked to
//!   probe, and after [`QUIET_RESET_AFTER`] its estimator is restarted from what the layers
//!   need: a link that stays quiet keeps its layers; a full queue (the round trip far above its
//!   base, and loss) moves them at once, before the estimate falls;
//! - going up needs the estimate to cover the higher layer with [`UP_HEADROOM`] to spare, and not
//!   within a hold time of a bandwidth downgrade; the hold doubles each time an up-switch is
//!   followed by a downgrade soon after (a link that cannot carry the layer), up to
//!   [`MAX_HOLD`], and falls back when the link has been steady;
//! - when a higher layer is wanted, the subscriber's link is probed in bounded windows, backing
//!   off (up to [`MAX_PROBE_BACKOFF`]) while probes fail: str0m pads up to the rate of the next
//!   step, and the desired rate rises every other half second of the window so that str0m also
//!   sends probe clusters; after congestion, an up-switch needs the estimate to hold while the window pads
//!   (a cluster alone overshoots on a token-bucket link), and a dip in the estimate a probe
//!   caused does not cost the current layers at once;
//! - a paused track is probed with clusters only (no padding beside the audio), every 2 s, from
//!   a restarted estimator when the estimate has sunk below what the audio gets through, so its
//!   video comes back by itself within a few seconds of the link;
//! - a climb that fails falls back one layer, not to the bottom;
//! - a screen share keeps its layer through a dip for up to [`SCREEN_SHIELD`] while the tracks
//!   after it give way.
//!
//! Everything here is a value computation from its inputs and `now`; the caller applies it.

use std::time::{Duration, Instant};

/// Upgrades need the estimate to exceed the new total by this factor.
pub const UP_HEADROOM: f64 = 1.15;
/// A track is paused only when the estimate is below its lowest layer's rate divided by this.
pub const PAUSE_SLACK: f64 = 2.0;
/// The first hold after a bandwidth downgrade.
pub const BASE_HOLD: Duration = Duration::from_secs(4);
/// The longest hold.
pub const MAX_HOLD: Duration = Duration::from_secs(16);
/// A downgrade this soon after an up-switch counts as a failed climb (the hold doubles).
const FAILED_CLIMB: Duration = Duration::from_secs(12);
/// How long one probe window lasts.
const PROBE_WINDOW: Duration = Duration::from_secs(4);
/// First pause between failed probes; doubles up to [`MAX_PROBE_BACKOFF`].
const PROBE_BACKOFF: Duration = Duration::from_secs(2);
/// The longest pause between probe windows: they pad toward the step and an up-switch needs the
/// estimate to hold under that padding, so probing often costs little even on a link that
/// cannot carry the step.
const MAX_PROBE_BACKOFF: Duration = Duration::from_secs(8);
/// After a downgrade, an up-switch needs the estimate to allow it this long without a break
/// (a probe's estimate overshoots for a moment).
const UP_SUSTAIN: Duration = Duration::from_millis(1000);
/// A downgrade needs the estimate below the current layers this long, unless it is far below
/// ([`DOWN_AT_ONCE`]): one low sample is noise.
const DOWN_SUSTAIN: Duration = Duration::from_millis(500);
/// An estimate below this share of what the current layers need downgrades at once.
const DOWN_AT_ONCE: f64 = 0.75;
/// A dip of the estimate (mild or steep) while the link shows no sign of congestion (see
/// [`Downlink::quiet`]) downgrades only if it lasts this long. str0m's estimator answers any
/// overuse it detects by dropping to 0.85 of the rate that got through, and a busy receiver's
/// delay noise triggers that on an idle link; the estimate then recovers within a second or two.
/// A link that really shrank queues (its round-trip time grows) or drops within that time.
const QUIET_DOWN_SUSTAIN: Duration = Duration::from_millis(2500);
/// In a probe window, the desired rate rises this often, in ms.
const PROBE_RISE_EVERY: u128 = 500;
/// During a dip, the desired rate rises (so str0m probes) this often, in ms.
const CHECK_PROBE_EVERY: u128 = 250;
/// The round-trip time may exceed its recent minimum by this much on a quiet link.
const QUIET_RTT_RISE: Duration = Duration::from_millis(30);
/// The loss (share of packets over the last second) above which a link is not quiet: a link
/// that drops this much for lack of room queues first, or drops far more.
const QUIET_LOSS: f32 = 0.10;
/// Loss from this share up (below [`QUIET_LOSS`]) on a link whose round trip stays at its base
/// is random loss, not congestion; str0m's loss-based estimate then stays below what the link
/// carries for as long as the loss lasts (retransmissions repair it), so a dip must last
/// [`LOSSY_QUIET_DOWN_SUSTAIN`].
const LOSSY: f32 = 0.01;
/// See [`LOSSY`].
const LOSSY_QUIET_DOWN_SUSTAIN: Duration = Duration::from_secs(8);
/// How long round-trip samples are kept: the minimum over this is the link's base.
const RTT_MEMORY: Duration = Duration::from_secs(10);
/// The estimate assumed before the first one arrives.
pub const INITIAL_ESTIMATE: u64 = 1_000_000;
/// How long the best estimate seen stays usable for a tile that grew: while a subscriber gets
/// only a small layer its estimate sinks to what it gets (str0m cannot measure what it does not
/// send), which says nothing about the link; a congestion downgrade forgets it at once.
const PEAK_MEMORY: Duration = Duration::from_secs(30);
/// While a track is paused for bandwidth, probes repeat at least this often (no longer
/// backoff), so that its video comes back soon after the link does.
const PAUSED_PROBE_EVERY: Duration = Duration::from_millis(1500);
/// How long one probe window lasts while a track is paused.
const PAUSED_PROBE_WINDOW: Duration = Duration::from_millis(500);
/// An up-switch after congestion needs a probe window to have padded toward it this long.
const PADDED: Duration = Duration::from_secs(1);
/// How long after a probe window a dip in the estimate is taken as the probe's doing.
const PROBE_GRACE: Duration = Duration::from_secs(2);
/// A flat estimate (see [`Downlink::plan`]) is restarted at most this often.
const FLAT_RESET_EVERY: Duration = Duration::from_secs(4);
/// The lowest rate str0m's estimator is restarted from (see [`Plan::reset_to`]), bit/s.
const MIN_RESET: u64 = 50_000;
/// A dip on a quiet link without loss restarts str0m's estimator from what the current layers
/// need after this long (see [`Downlink::plan`]).
const QUIET_RESET_AFTER: Duration = Duration::from_millis(1500);
/// At most one such restart this often.
const QUIET_RESET_EVERY: Duration = Duration::from_secs(2);
/// A round trip this far above its base, with [`CONGESTED_LOSS`], is a full queue.
const CONGESTED_RTT_RISE: Duration = Duration::from_millis(60);
/// See [`CONGESTED_RTT_RISE`].
const CONGESTED_LOSS: f32 = 0.05;
/// After a downgrade, a full queue is the old layers' still draining for this long.
const CONGESTION_SETTLE: Duration = Duration::from_secs(3);
/// After the media path comes back from an outage (ICE lost, or restarted), how long str0m's
/// estimate, the loss and the round trip are not read: the first feedback after it reports
/// every packet sent into the outage as lost (str0m's estimator falls to its floor), and that
/// says nothing of the link's rate. The grace ends with the estimator restarted from the
/// estimate before the outage.
const OUTAGE_GRACE: Duration = Duration::from_millis(1500);
/// How long a screen share keeps its layer through a dip while the tracks after it give way
/// (when that layer alone is within [`PAUSE_SLACK`] of the budget).
const SCREEN_SHIELD: Duration = Duration::from_secs(4);

/// Allocation order between tracks (lower first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    /// A screen share.
    Screen,
    /// The active speaker's camera.
    Speaker,
    /// Any other camera.
    Camera,
}

/// One video track as the allocator sees it.
#[derive(Debug, Clone)]
pub struct TrackNeed {
    /// Allocation order.
    pub priority: Priority,
    /// The layers the publisher sends now, lowest first: (layer, bit/s).
    pub layers: Vec<(u8, u64)>,
    /// The highest layer worth sending (the tile's size); `None`: the track is not shown.
    pub max_layer: Option<u8>,
    /// The tile's size changed lately: an up-switch it allows happens at once, in one step, on
    /// the best estimate seen since the last congestion (see [`Downlink::plan`]).
    pub resized: bool,
    /// What the track may cost at the best layer the tile can use: each layer at the larger of
    /// its measured and nominal rates, counting layers the publisher does not send now (dynacast
    /// stopped them), bit/s. Part of what the estimator is asked to look for, ahead of encoders
    /// that are still ramping up and of layers that are to come back.
    pub potential: u64,
}

impl TrackNeed {
    fn usable(&self) -> impl Iterator<Item = &(u8, u64)> {
        let max = self.max_layer;
        let mut first = true;
        self.layers.iter().filter(move |(l, _)| {
            // The lowest layer is usable even when the tile is smaller still.
            let ok = max.is_some_and(|m| *l <= m || first);
            first = false;
            ok
        })
    }

    fn rate(&self, layer: Option<u8>) -> u64 {
        layer.and_then(|l| self.layers.iter().find(|(x, _)| *x == l)).map_or(0, |(_, r)| *r)
    }
}

/// Target layer per track (`None`: paused) for `budget` bit/s. See the module docs.
pub fn allocate(budget: u64, tracks: &[TrackNeed]) -> Vec<Option<u8>> {
    let mut order: Vec<usize> = (0..tracks.len()).collect();
    order.sort_by_key(|&i| tracks[i].priority);
    let mut targets = vec![None; tracks.len()];
    let mut left = budget;
    for &i in &order {
        if let Some(&(layer, rate)) = tracks[i].usable().next() {
            if rate <= left {
                left -= rate;
                targets[i] = Some(layer);
            }
        }
    }
    for &i in &order {
        let Some(lowest) = targets[i] else { continue };
        let mut current = lowest;
        for &(layer, rate) in tracks[i].usable().filter(|(l, _)| *l > lowest) {
            let extra = rate.saturating_sub(tracks[i].rate(Some(current)));
            if extra > left {
                break;
            }
            left -= extra;
            current = layer;
        }
        targets[i] = Some(current);
    }
    targets
}

/// [`allocate`] with the `held` tracks kept at their `current` layer whatever it costs: what
/// they use comes off the budget first, and the other tracks share the rest.
fn allocate_holding(budget: u64, tracks: &[TrackNeed], current: &[Option<u8>], held: &[bool]) -> Vec<Option<u8>> {
    if !held.contains(&true) {
        return allocate(budget, tracks);
    }
    let used: u64 = (0..tracks.len()).filter(|&i| held[i]).map(|i| tracks[i].rate(current[i])).sum();
    let others: Vec<TrackNeed> = (0..tracks.len())
        .map(|i| if held[i] { TrackNeed { max_layer: None, ..tracks[i].clone() } } else { tracks[i].clone() })
        .collect();
    let mut targets = allocate(budget.saturating_sub(used), &others);
    for i in (0..tracks.len()).filter(|&i| held[i]) {
        targets[i] = current[i];
    }
    targets
}

/// The split an up-switch may follow: [`allocate`], except that a track it would put below its
/// current layer keeps that layer (going down is the dip timers' business, not an up-switch's),
/// and the others share what is left. Without this, a camera could climb into the room a
/// screen share above it needs, and be taken down again.
fn allocate_up(budget: u64, tracks: &[TrackNeed], current: &[Option<u8>]) -> Vec<Option<u8>> {
    let split = allocate(budget, tracks);
    let held: Vec<bool> = (0..tracks.len())
        .map(|i| {
            split[i] < current[i] && tracks[i].max_layer.is_some() && tracks[i].layers.iter().any(|(l, _)| Some(*l) == current[i])
        })
        .collect();
    allocate_holding(budget, tracks, current, &held)
}

/// Why a track's target changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The bandwidth estimate moved.
    Bandwidth,
    /// The subscriber's tile size changed.
    Size,
    /// The subscriber does not show the track.
    Hidden,
    /// The layer forwarded is no longer sent by the publisher, or a new one appeared.
    Publisher,
}

impl Reason {
    /// The name used in the protocol's `stream_state`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Bandwidth => "bandwidth",
            Reason::Size => "size",
            Reason::Hidden => "hidden",
            Reason::Publisher => "publisher",
        }
    }
}

/// The outcome of one [`Downlink::plan`].
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Per track: the new target and why it changed (`None` when unchanged).
    pub changes: Vec<Option<(Option<u8>, Reason)>>,
    /// The rate str0m should sustain with padding (probing), bit/s.
    pub pad_to: u64,
    /// A probe window is open (a higher layer, or a paused track's lowest, is being looked for).
    pub probing: bool,
    /// Restart str0m's estimator from this rate (bit/s): its estimate has sunk below what audio
    /// alone gets through, and probes, which go to at most twice the estimate, could no longer
    /// find the link's capacity when it comes back.
    pub reset_to: Option<u64>,
    /// The rate str0m's estimator is asked to find, bit/s: str0m probes when it rises above the
    /// estimate.
    pub desired: u64,
    /// The link's queue is full (see [`Downlink::plan`]): a downgrade in `changes` should stop
    /// the old layer at once rather than at the new layer's keyframe, so that the queue drains
    /// and that keyframe gets through.
    pub congested: bool,
}

/// Layer-switching state of one subscriber's downlink.
#[derive(Debug, Clone)]
pub struct Downlink {
    /// The latest estimate from str0m, bit/s.
    pub estimate: Option<u64>,
    /// The share of packets sent in the last second that the subscriber did not receive (from
    /// TWCC feedback).
    loss: Option<f32>,
    /// Round-trip times from TWCC feedback, oldest first, over [`RTT_MEMORY`].
    rtts: std::collections::VecDeque<(Instant, Duration)>,
    /// No bandwidth up-switch before then.
    up_at: Option<Instant>,
    hold: Duration,
    last_up: Option<Instant>,
    last_down: Option<Instant>,
    probing_until: Option<Instant>,
    /// When the last probe window opened, and the estimate then.
    window_start: Option<(Instant, u64)>,
    /// When the last probe window closed.
    window_end: Option<Instant>,
    next_probe: Option<Instant>,
    probe_backoff: Duration,
    /// Since when an up-switch has been allowed by the estimate without a break.
    up_since: Option<Instant>,
    /// Since when the estimate has been below what the current layers need.
    down_since: Option<Instant>,
    /// The best estimate since the last congestion downgrade, and when it was seen.
    peak: Option<(u64, Instant)>,
    /// When str0m's estimator was last restarted.
    last_reset: Option<Instant>,
    /// Since when the estimate has been below what a screen share's current layer needs.
    screen_dip_since: Option<Instant>,
    /// The media path is down, or came back less than [`OUTAGE_GRACE`] ago.
    outage: Option<Outage>,
}

/// A media path outage (see [`Downlink::path_down`]).
#[derive(Debug, Clone, Copy)]
struct Outage {
    /// str0m's estimate when the path went down.
    before: Option<u64>,
    /// When the path came back.
    back: Option<Instant>,
}

impl Default for Downlink {
    fn default() -> Self {
        Downlink {
            estimate: None,
            loss: None,
            rtts: std::collections::VecDeque::new(),
            up_at: None,
            hold: BASE_HOLD,
            last_up: None,
            last_down: None,
            probing_until: None,
            window_start: None,
            window_end: None,
            next_probe: None,
            probe_backoff: PROBE_BACKOFF,
            up_since: None,
            down_since: None,
            peak: None,
            last_reset: None,
            screen_dip_since: None,
            outage: None,
        }
    }
}

impl Downlink {
    /// Record the downlink's loss over the last second and its latest round-trip time, both from
    /// TWCC feedback.
    pub fn observe(&mut self, now: Instant, loss: Option<f32>, rtt: Option<Duration>) {
        if self.outage.is_some() {
            // The outage's, not the link's (see [`OUTAGE_GRACE`]).
            return;
        }
        self.loss = loss;
        if let Some(rtt) = rtt {
            self.rtts.push_back((now, rtt));
        }
        while self.rtts.front().is_some_and(|(t, _)| now.saturating_duration_since(*t) > RTT_MEMORY) {
            self.rtts.pop_front();
        }
    }

    /// str0m's estimate is `bps`; not taken through an outage and its grace.
    pub fn estimated(&mut self, bps: u64) {
        if self.outage.is_none() {
            self.estimate = Some(bps);
        }
    }

    /// The media path is down (ICE lost or restarting): until [`OUTAGE_GRACE`] after
    /// [`Downlink::path_up`], plans use the estimate from before.
    pub fn path_down(&mut self) {
        match &mut self.outage {
            None => self.outage = Some(Outage { before: self.estimate, back: None }),
            // Down again within the grace: the same outage.
            Some(o) => o.back = None,
        }
    }

    /// The media path is back (ICE connected).
    pub fn path_up(&mut self, now: Instant) {
        if let Some(o) = &mut self.outage {
            o.back.get_or_insert(now);
        }
    }

    /// The link shows no sign of congestion: little loss, and the round-trip time of the last
    /// second close to its recent minimum (a queue that builds shows there first). Unknown
    /// (no samples yet) is not quiet.
    pub fn quiet(&self, now: Instant) -> bool {
        let Some(base) = self.rtts.iter().map(|(_, r)| *r).min() else { return false };
        // The lower median of the last second's samples: one late feedback report is not a
        // queue, a queue shows in every sample.
        let mut recent: Vec<Duration> =
            self.rtts.iter().filter(|(t, _)| now.saturating_duration_since(*t) <= Duration::from_secs(1)).map(|(_, r)| *r).collect();
        recent.sort_unstable();
        let median = recent.get(recent.len().saturating_sub(1) / 2);
        self.loss.is_none_or(|l| l < QUIET_LOSS) && median.is_some_and(|r| *r <= base + QUIET_RTT_RISE)
    }

    /// The link's queue is full: the round trip's last two samples (of the last 600 ms) are
    /// [`CONGESTED_RTT_RISE`] above its base and loss is at least [`CONGESTED_LOSS`]; the loss.
    fn congested(&self, now: Instant) -> Option<f32> {
        let base = self.rtts.iter().map(|(_, r)| *r).min()?;
        let loss = self.loss.filter(|l| *l >= CONGESTED_LOSS)?;
        let recent: Vec<Duration> = self
            .rtts
            .iter()
            .rev()
            .take(2)
            .filter(|(t, _)| now.saturating_duration_since(*t) <= Duration::from_millis(600))
            .map(|(_, r)| *r)
            .collect();
        (recent.len() == 2 && recent.iter().all(|r| *r >= base + CONGESTED_RTT_RISE)).then_some(loss)
    }

    /// The plan with congestion control off ([`SfuConfig::congestion_control`]): every track on
    /// the best layer its tile can use and the publisher sends, whatever the link; no probing.
    ///
    /// [`SfuConfig::congestion_control`]: crate::SfuConfig::congestion_control
    pub fn plan_unlimited(tracks: &[TrackNeed], current: &[Option<u8>]) -> Plan {
        let ideal = allocate(u64::MAX, tracks);
        let changes = tracks
            .iter()
            .enumerate()
            .map(|(i, track)| {
                let cur = current[i];
                let live = cur.is_none_or(|l| track.layers.iter().any(|(x, _)| *x == l));
                let reason = if track.max_layer.is_none() {
                    Reason::Hidden
                } else if !live {
                    Reason::Publisher
                } else {
                    Reason::Size
                };
                (ideal[i] != cur).then_some((ideal[i], reason))
            })
            .collect();
        Plan { changes, pad_to: 0, probing: false, reset_to: None, desired: 0, congested: false }
    }

    /// New targets for `tracks`, whose targets are now `current`; `reserved` bit/s of the
    /// estimate are taken (audio).
    pub fn plan(&mut self, now: Instant, tracks: &[TrackNeed], current: &[Option<u8>], reserved: u64) -> Plan {
        // Through an outage and its grace, plan on the estimate from before it (see
        // [`Downlink::estimated`]); at its end, restart str0m's estimator from there and forget
        // what the outage looked like.
        let mut outage_over = None;
        if let Some(o) = self.outage {
            if o.back.is_some_and(|t| now.saturating_duration_since(t) >= OUTAGE_GRACE) {
                self.outage = None;
                self.rtts.clear();
                self.loss = None;
                self.down_since = None;
                outage_over = o.before;
            }
        }
        let current_need: u64 = tracks.iter().zip(current).map(|(t, l)| t.rate(*l)).sum();
        // A full queue (the round trip far above its base, and loss) is known from the TWCC
        // feedback a second or more before str0m's estimate falls: the link carries at most
        // what got through, less a margin for the queue to drain.
        let congestion_cap = self
            .congested(now)
            .filter(|_| current_need > 0 && self.last_down.is_none_or(|t| now.saturating_duration_since(t) >= CONGESTION_SETTLE))
            .map(|loss| ((current_need + reserved) as f64 * f64::from(1.0 - loss) * 0.85) as u64);
        let estimate = self.estimate.unwrap_or(INITIAL_ESTIMATE).min(congestion_cap.unwrap_or(u64::MAX));
        let budget = estimate.saturating_sub(reserved);
        let raw_keep = allocate(budget, tracks);
        // A screen share keeps its layer through a dip for a while, the tracks after it giving
        // way first: cutting them is often enough to end the congestion (a screen share's first
        // seconds cost several times its steady rate), and the estimate, probed meanwhile, comes
        // back. A dip that outlasts the shield, or one far below the screen share's layer,
        // takes it down as any other.
        let screen_dip = (0..tracks.len())
            .any(|i| tracks[i].priority == Priority::Screen && tracks[i].max_layer.is_some() && raw_keep[i] < current[i]);
        self.screen_dip_since = if screen_dip { Some(self.screen_dip_since.unwrap_or(now)) } else { None };
        let shield = self.screen_dip_since.is_some_and(|t| now.saturating_duration_since(t) < SCREEN_SHIELD);
        let ideal = allocate(u64::MAX, tracks);
        let held: Vec<bool> = (0..tracks.len())
            .map(|i| {
                shield
                    && tracks[i].priority == Priority::Screen
                    && raw_keep[i] < current[i]
                    && ideal[i] >= current[i]
                    && tracks[i].layers.iter().any(|(l, _)| Some(*l) == current[i])
                    && tracks[i].rate(current[i]) as f64 <= budget as f64 * PAUSE_SLACK
            })
            .collect();
        let keep = allocate_holding(budget, tracks, current, &held);
        // A track keeps its lowest layer rather than pause until the estimate is well below
        // what it needs: pausing is the last resort, and early estimates wander.
        let lenient = allocate_holding((budget as f64 * PAUSE_SLACK) as u64, tracks, current, &held);
        let up = allocate_up((budget as f64 / UP_HEADROOM) as u64, tracks, current);
        if self.peak.is_none_or(|(rate, at)| estimate >= rate || now.saturating_duration_since(at) > PEAK_MEMORY) {
            self.peak = Some((estimate, now));
        }
        let peak_budget = self.peak.map_or(0, |(rate, _)| rate).max(estimate).saturating_sub(reserved);
        let up_resized = allocate_up((peak_budget as f64 / UP_HEADROOM) as u64, tracks, current);
        let up_allowed = self.up_at.is_none_or(|t| now >= t);
        if self.last_down.is_some_and(|t| now.saturating_duration_since(t) > MAX_HOLD * 2) {
            self.hold = BASE_HOLD;
        }

        // Sustained conditions: what the estimate allows must hold for a while before it moves
        // layers (except a steep fall, which moves them at once).
        // A held screen share still counts as a dip: str0m is asked to probe, and the timer runs.
        let wants_down = (0..tracks.len()).any(|i| raw_keep[i] < current[i] && tracks[i].max_layer.is_some());
        let steep = (budget as f64) < current_need as f64 * DOWN_AT_ONCE || congestion_cap.is_some();
        self.down_since = if wants_down { Some(self.down_since.unwrap_or(now)) } else { None };
        let failed_climb = self.last_up.is_some_and(|t| now.saturating_duration_since(t) < FAILED_CLIMB);
        // A dip during a probe window or just after it, not below half the estimate before it,
        // is the probe's own doing: the layers that were fine before it must not pay for it at
        // once.
        let probe_dip = (self.probing_until.is_some() || self.window_end.is_some_and(|t| now.saturating_duration_since(t) < PROBE_GRACE))
            && self.window_start.is_some_and(|(_, e)| estimate * 2 >= e);
        // After a failed climb has fallen back one layer, the estimate's dip must last before it
        // goes further.
        let fell_back = failed_climb && self.last_down.is_some_and(|d| self.last_up.is_some_and(|u| d >= u));
        let patient = fell_back || probe_dip;
        // A dip on a quiet link is most likely the estimator's noise, or an estimate that sank
        // while little was sent (str0m cannot measure what it does not send; a tile that just
        // grew meets one): give it time, and a link that really shrank shows it meanwhile.
        let quiet = self.quiet(now) && congestion_cap.is_none();
        let sustain = if quiet && self.loss.is_some_and(|l| l >= LOSSY) {
            LOSSY_QUIET_DOWN_SUSTAIN
        } else if quiet {
            QUIET_DOWN_SUSTAIN
        } else if patient {
            DOWN_SUSTAIN * 2
        } else {
            DOWN_SUSTAIN
        };
        let down_ok = wants_down
            && (steep && !patient && !quiet || self.down_since.is_some_and(|t| now.saturating_duration_since(t) >= sustain));
        let up_to = |i: usize| if tracks[i].resized { up_resized[i] } else { up[i] };
        let wants_up = (0..tracks.len()).any(|i| up_to(i) > current[i]);
        self.up_since = if wants_up { Some(self.up_since.unwrap_or(now)) } else { None };
        // After congestion, an up-switch needs the estimate to have allowed it for a while with
        // the link carrying what the step will cost (a probe window's padding): a probe
        // cluster's estimate alone overshoots on a link with a token bucket.
        let padded = self.probing_until.is_some()
            && self.window_start.is_some_and(|(t, _)| now.saturating_duration_since(t) >= PADDED);
        let sustained_up = self.last_down.is_none()
            || padded && self.up_since.is_some_and(|t| now.saturating_duration_since(t) >= UP_SUSTAIN);
        // Resuming a paused track at its lowest layer risks little: a shorter wait.
        let sustained_resume = self.last_down.is_none()
            || self.up_since.is_some_and(|t| now.saturating_duration_since(t) >= UP_SUSTAIN / 2);

        let mut changes = vec![None; tracks.len()];
        let mut downgraded = false;
        let mut upgraded = false;
        for (i, track) in tracks.iter().enumerate() {
            let cur = current[i];
            let live = cur.is_none_or(|l| track.layers.iter().any(|(x, _)| *x == l));
            let change = if track.max_layer.is_none() {
                (cur.is_some()).then_some((None, Reason::Hidden))
            } else if !live {
                Some((keep[i], Reason::Publisher))
            } else if ideal[i] < cur {
                // The tile shrank (or the top layers went away): follow at once.
                Some((ideal[i].min(keep[i]), Reason::Size))
            } else if keep[i] < cur {
                if !down_ok {
                    None
                } else {
                    let mut target = match keep[i] {
                        None if lenient[i].is_some() => track.usable().next().map(|(l, _)| *l),
                        other => other,
                    };
                    // A climb that just failed goes back one layer, not further, unless even
                    // that is far beyond the estimate: the estimate overshoots downwards for a
                    // moment after the losses the failed layer caused, and falling lower would
                    // only mean another climb.
                    if failed_climb && !fell_back {
                        let one_down = track.usable().map(|(l, _)| *l).filter(|l| Some(*l) < cur).last();
                        target = target.max(one_down.min(lenient[i]));
                    }
                    downgraded |= target < cur;
                    Some((target, Reason::Bandwidth))
                }
            } else if cur.is_none() && self.last_down.is_none() && up_to(i).is_none() && lenient[i].is_some() {
                // Before any congestion, a track that has not started yet starts at its lowest
                // layer unless the estimate is far below it (as a running one is kept, see
                // PAUSE_SLACK): the first estimate is a guess, and a stream of one layer above it
                // must not wait paused until probes raise it.
                upgraded = true;
                Some((track.usable().next().map(|(l, _)| *l), Reason::Bandwidth))
            } else if up_to(i) > cur
                && (track.resized || sustained_up || cur.is_none() && sustained_resume)
                && (up_allowed || cur.is_none() && self.resume_allowed(now))
            {
                upgraded = true;
                let reason = if track.resized { Reason::Size } else { Reason::Bandwidth };
                // One layer at a time when the estimate says so (it may overshoot); as far as the
                // tile wants when the tile grew.
                let target = match (cur, track.resized) {
                    (Some(c), false) => track.usable().map(|(l, _)| *l).find(|l| *l > c).min(up[i]),
                    _ => up_to(i),
                };
                Some((target, reason))
            } else {
                None
            };
            changes[i] = change.filter(|(t, _)| *t != cur);
        }

        if downgraded {
            self.down_since = None;
            self.hold = match (failed_climb, fell_back) {
                (true, false) => (self.hold * 2).min(MAX_HOLD),
                (true, true) => self.hold,
                (false, _) => BASE_HOLD,
            };
            self.up_at = Some(now + self.hold);
            self.last_down = Some(now);
            self.end_window(now);
            self.next_probe = Some(now + self.hold);
            // A congestion forgets the best estimate seen; a dip on a quiet link does not.
            if !quiet {
                self.peak = Some((estimate, now));
            }
        }
        if upgraded {
            self.last_up = Some(now);
            self.up_since = None;
            self.end_window(now);
            self.probe_backoff = PROBE_BACKOFF;
            // Before the first congestion the link is unknown and likely ample: look further at
            // once (the next plan opens a window, and its rise makes str0m probe).
            self.next_probe = Some(now + if self.last_down.is_none() { Duration::ZERO } else { PROBE_BACKOFF });
        }

        // What the targets will cost, and what the next step up would.
        let after: Vec<Option<u8>> =
            (0..tracks.len()).map(|i| changes[i].map_or(current[i], |(t, _)| t)).collect();
        let total = |targets: &[Option<u8>]| -> u64 {
            tracks.iter().zip(targets).map(|(t, l)| t.rate(*l)).sum::<u64>() + reserved
        };
        // Ask the estimator to look for enough to climb to the preferred quality with headroom.
        let potential: u64 = tracks.iter().zip(&ideal).map(|(t, l)| t.rate(*l).max(t.potential)).sum::<u64>() + reserved;
        let wanted = (potential as f64 * UP_HEADROOM * 1.1) as u64;
        let next_step = next_step(tracks, &after).map(|targets| total(&targets));
        let paused = (0..tracks.len()).any(|i| after[i].is_none() && tracks[i].max_layer.is_some());
        if paused {
            self.probe_backoff = self.probe_backoff.min(PAUSED_PROBE_EVERY);
            if let Some(t) = self.next_probe {
                self.next_probe = Some(t.min(now + PAUSED_PROBE_EVERY));
            }
        }
        let window_was_open = self.probing_until.is_some();
        let last_window_estimate = self.window_start.map(|(_, e)| e);
        let pad = match next_step {
            Some(rate) if (up_allowed || paused && self.resume_allowed(now)) && !upgraded => self.probe(now, rate, paused),
            _ => {
                self.end_window(now);
                0
            }
        };
        let probing = pad > 0;
        // While a track is paused the link may carry little more than audio: probe clusters
        // only, no padding on top of the audio.
        let pad_to = if paused { 0 } else { pad };
        // str0m's estimator can stall: after a probe fails with loss it waits for its estimate
        // to change before it probes again, and an estimate held by its loss controller does
        // not change. An estimate that has not moved at all since the last window, below the
        // step being looked for, is restarted from where it is (its start-up probes at three
        // and six times that find the link again).
        let opened = probing && !window_was_open;
        let flat = last_window_estimate.is_some_and(|e| e.abs_diff(estimate) * 100 <= e)
            && next_step.is_some_and(|rate| estimate < rate);
        let reset_due = self.last_reset.is_none_or(|t| now.saturating_duration_since(t) >= FLAT_RESET_EVERY);
        // A dip that has lasted on a link with no queue and little loss: the link carries what
        // the current layers send, so the estimate below it is the estimator's error (an
        // overuse it read into a busy receiver's timing, or its loss controller holding it
        // under random loss; from either it climbs back slowly or not at all). Restart it from
        // what the layers need; its start-up probes look further. So a quiet link does not lose
        // layers to the estimate: a link that really shrank shows a queue or heavy loss first.
        let quiet_dip = quiet
            && !downgraded
            && current_need > 0
            && self.down_since.is_some_and(|t| now.saturating_duration_since(t) >= QUIET_RESET_AFTER);
        let dip_since = self.down_since;
        // Restarts from where the estimate is, when a probe window opens (the restart's own
        // probes reach three and six times the estimate at once):
        // - paused, the estimate below the lowest layer: every window (str0m's own probes after a
        //   loss wait for an estimate that moves; below the audio, from what the audio needs);
        // - start-up, the link unknown: str0m's estimate sinks to about what the lowest layers
        //   send (it cannot measure what it does not send), and its probes after that go to at
        //   most twice the estimate, a few hundred kbit/s a window. After the first congestion
        //   the link is known, and windows probe step by step;
        // - a flat estimate (above).
        let below_step = next_step.is_some_and(|rate| estimate < rate);
        let from_here = opened && (paused && below_step || reset_due && (self.last_down.is_none() && below_step || flat));
        let reset_to = if from_here {
            Some(estimate.max(reserved * 3 / 2).max(MIN_RESET))
        } else if quiet_dip && self.last_reset.is_none_or(|t| now.saturating_duration_since(t) >= QUIET_RESET_EVERY) {
            // The dip is over: what follows the restart is a new one.
            self.down_since = None;
            Some(((current_need + reserved) as f64 * 1.05) as u64)
        } else {
            None
        };
        let reset_to = outage_over.or(reset_to);
        if reset_to.is_some() {
            self.last_reset = Some(now);
        }
        // str0m sends a probe cluster (a short burst at up to twice the estimate, continued
        // exponentially while it succeeds) when the desired rate rises above the estimate. Each
        // probe window asks for the preferred quality, rising again every other half second, and
        // between windows the targets' rate is asked for, so that each window starts with a
        // rise, and so a probe: padding (which goes only to the next step) alone is
        // capped at the estimate and raises it by a few percent a second, far too slowly to
        // bring a paused video back or to find the link at start-up, where str0m's first
        // estimate sinks to about what the lowest layers send.
        // During a dip that has not moved layers yet, ask for what the current layers need with
        // headroom: the rise makes str0m probe, so a noisy estimate recovers at once, and a
        // link that really shrank shows it sooner.
        let checking = dip_since.is_some() && !downgraded;
        let desired = if probing && paused {
            wanted
        } else if probing {
            // str0m sizes each probe from its estimate (at most twice it) and probes again on a
            // rise of the desired rate, so a rise every other half second doubles the estimate
            // each time until it finds the link or the preferred quality. (After a congestion
            // the up-switch still waits for the estimate to hold under the window's padding,
            // which goes only to the next step.)
            let since = self.window_start.map_or(Duration::ZERO, |(t, _)| now.saturating_duration_since(t));
            let odd = since.as_millis() / PROBE_RISE_EVERY % 2 == 1;
            if odd { wanted * 11 / 10 } else { wanted }
        } else if checking {
            // str0m drops a rise that comes while it sees overuse (as it does right when the
            // estimate dips): rise again every other plan, so that one lands once that clears.
            let odd = now.saturating_duration_since(dip_since.unwrap_or(now)).as_millis() / CHECK_PROBE_EVERY % 2 == 1;
            ((current_need + reserved) as f64 * if odd { UP_HEADROOM } else { UP_HEADROOM * 1.1 }) as u64
        } else {
            total(&after)
        };
        Plan { changes, pad_to, probing, reset_to, desired, congested: congestion_cap.is_some() }
    }

    /// A paused track comes back as soon as the hold after the downgrade that paused it ends,
    /// without the longer holds of failed climbs.
    fn resume_allowed(&self, now: Instant) -> bool {
        self.last_down.is_none_or(|t| now.saturating_duration_since(t) >= BASE_HOLD)
    }

    /// End the probe window if one is open.
    fn end_window(&mut self, now: Instant) {
        if self.probing_until.take().is_some() {
            self.window_end = Some(now);
        }
    }

    /// End the open probe window without an up-switch, and back off.
    fn close_window(&mut self, now: Instant) {
        self.end_window(now);
        self.next_probe = Some(now + self.probe_backoff);
        self.probe_backoff = (self.probe_backoff * 2).min(MAX_PROBE_BACKOFF);
    }

    /// Probe toward `rate` in windows: returns the padding target now.
    fn probe(&mut self, now: Instant, rate: u64, paused: bool) -> u64 {
        let padded = (rate as f64 * UP_HEADROOM) as u64;
        match self.probing_until {
            // A window stays open while the estimate allows the step and the up-switch waits for
            // it to last.
            Some(until) if now < until || self.up_since.is_some() => padded,
            Some(_) => {
                // The window ended without an up-switch: back off.
                self.close_window(now);
                0
            }
            None if self.next_probe.is_none_or(|t| now >= t) => {
                // Short windows while paused: the link may be far below the probe's rate, and
                // audio shares it.
                self.probing_until = Some(now + if paused { PAUSED_PROBE_WINDOW } else { PROBE_WINDOW });
                self.window_start = Some((now, self.estimate.unwrap_or(INITIAL_ESTIMATE)));
                padded
            }
            None => 0,
        }
    }
}

/// The targets one step above `targets`: the first track in priority order that can go up (a
/// paused one resumes at its lowest layer).
fn next_step(tracks: &[TrackNeed], targets: &[Option<u8>]) -> Option<Vec<Option<u8>>> {
    let mut order: Vec<usize> = (0..tracks.len()).collect();
    order.sort_by_key(|&i| (targets[i].is_some(), tracks[i].priority));
    for i in order {
        let next = tracks[i].usable().map(|(l, _)| *l).find(|l| targets[i].is_none_or(|c| *l > c));
        if let Some(next) = next {
            let mut up = targets.to_vec();
            up[i] = Some(next);
            return Some(up);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(max: Option<u8>) -> TrackNeed {
        TrackNeed {
            priority: Priority::Camera,
            layers: vec![(0, 150_000), (1, 500_000), (2, 1_500_000)],
            max_layer: max,
            resized: false,
            potential: 0,
        }
    }

    fn screen() -> TrackNeed {
        TrackNeed { priority: Priority::Screen, layers: vec![(1, 300_000), (2, 800_000)], max_layer: Some(2), resized: false, potential: 0 }
    }

    #[test]
    fn lowest_layers_first_then_upgrades_by_priority() {
        let tracks = [camera(Some(2)), screen(), camera(Some(2))];
        assert_eq!(allocate(10_000_000, &tracks), [Some(2), Some(2), Some(2)]);
        // 1.2 Mbit/s: both cameras get their lowest; the screen share goes to its top first.
        assert_eq!(allocate(1_200_000, &tracks), [Some(0), Some(2), Some(0)]);
        // 1 Mbit/s: the screen share's top does not fit; what is left raises a camera.
        assert_eq!(allocate(1_000_000, &tracks), [Some(1), Some(1), Some(0)]);
        // 400 kbit/s: the screen share first, one camera fits, the other is paused.
        assert_eq!(allocate(460_000, &tracks), [Some(0), Some(1), None]);
        assert_eq!(allocate(100_000, &tracks), [None, None, None]);
    }

    #[test]
    fn without_congestion_control_every_track_gets_what_its_tile_can_use() {
        let mut hidden = camera(None);
        hidden.max_layer = None;
        let tracks = [camera(Some(2)), camera(Some(0)), hidden, screen()];
        let plan = Downlink::plan_unlimited(&tracks, &[None, Some(2), Some(1), Some(2)]);
        assert_eq!(plan.changes, [Some((Some(2), Reason::Size)), Some((Some(0), Reason::Size)), Some((None, Reason::Hidden)), None]);
        assert_eq!((plan.pad_to, plan.desired, plan.probing, plan.reset_to), (0, 0, false, None));
        // A layer the publisher stopped sending is left for the best one it sends.
        let mut two = camera(Some(2));
        two.layers.retain(|(l, _)| *l < 2);
        let plan = Downlink::plan_unlimited(&[two], &[Some(2)]);
        assert_eq!(plan.changes, [Some((Some(1), Reason::Publisher))]);
    }

    /// Camera (at its middle layer) and screen share (at its top) on `estimate` for `ms`,
    /// without TWCC stats; returns the targets after and the switches of each.
    fn camera_and_screen(d: &mut Downlink, t0: Instant, ms: u64, estimate: u64, cur: &mut [Option<u8>; 2]) -> [usize; 2] {
        let tracks = [camera(Some(1)), screen()];
        let mut switches = [0, 0];
        for step in 0..ms / 250 {
            let now = t0 + Duration::from_millis(250 * step);
            d.estimate = Some(estimate);
            for (i, change) in d.plan(now, &tracks, &cur[..], 40_000).changes.into_iter().enumerate() {
                if let Some((t, _)) = change {
                    cur[i] = t;
                    switches[i] += 1;
                }
            }
        }
        switches
    }

    #[test]
    fn a_screen_share_keeps_its_layer_while_the_camera_gives_way() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = [Some(1), Some(2)];
        assert_eq!(camera_and_screen(&mut d, t0, 5_000, 2_000_000, &mut cur), [0, 0]);
        // 640 kbit/s: the screen share's top alone (800k) is within twice the budget; the camera
        // drops to its lowest at once, the screen share stays.
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(camera_and_screen(&mut d, t1, 3_000, 640_000, &mut cur), [1, 0]);
        assert_eq!(cur, [Some(0), Some(2)]);
        // The estimate recovers (the camera's cut ended the congestion): the screen share never
        // moved.
        let t2 = t1 + Duration::from_secs(3);
        assert_eq!(camera_and_screen(&mut d, t2, 3_000, 1_100_000, &mut cur), [0, 0]);
        assert_eq!(cur, [Some(0), Some(2)]);
    }

    #[test]
    fn a_dip_that_outlasts_the_shield_takes_the_screen_share_down() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = [Some(1), Some(2)];
        camera_and_screen(&mut d, t0, 5_000, 2_000_000, &mut cur);
        let t1 = t0 + Duration::from_secs(5);
        camera_and_screen(&mut d, t1, 3_500, 640_000, &mut cur);
        assert_eq!(cur, [Some(0), Some(2)], "held for the first 3.5 s");
        camera_and_screen(&mut d, t1 + Duration::from_millis(3_500), 1_500, 640_000, &mut cur);
        assert_eq!(cur[1], Some(1), "down after the shield");
        // A dip far below the screen share's layer is not shielded at all.
        let mut d = Downlink::default();
        let mut cur = [Some(1), Some(2)];
        camera_and_screen(&mut d, t0, 5_000, 2_000_000, &mut cur);
        camera_and_screen(&mut d, t1, 750, 350_000, &mut cur);
        assert_eq!(cur[1], Some(1));
    }

    #[test]
    fn tile_size_caps_the_layer_and_hidden_gets_nothing() {
        let tracks = [camera(Some(0)), camera(None), camera(Some(1))];
        assert_eq!(allocate(10_000_000, &tracks), [Some(0), None, Some(1)]);
    }

    /// Feed `estimate` for `secs` seconds in 250 ms steps, without TWCC stats; returns the
    /// switches.
    fn steady(d: &mut Downlink, t0: Instant, secs: u64, estimate: u64, cur: &mut Option<u8>) -> usize {
        feed(d, t0, secs * 1000, estimate, None, cur)
    }

    /// Feed `estimate` for `ms` milliseconds in 250 ms steps, with TWCC stats (no loss, `rtt_ms`)
    /// every step; returns the switches.
    fn with_rtt(d: &mut Downlink, t0: Instant, ms: u64, estimate: u64, rtt_ms: u64, cur: &mut Option<u8>) -> usize {
        feed(d, t0, ms, estimate, Some((0.0, rtt_ms)), cur)
    }

    /// Feed `estimate` for `ms` milliseconds in 250 ms steps, each with TWCC stats `(loss,
    /// rtt_ms)` when given, the one camera following the plan; returns the switches.
    fn feed(d: &mut Downlink, t0: Instant, ms: u64, estimate: u64, stats: Option<(f32, u64)>, cur: &mut Option<u8>) -> usize {
        feed_plans(d, t0, ms, estimate, stats, cur).len()
    }

    /// [`feed`], with whether each switch's plan said the queue was full.
    fn feed_plans(d: &mut Downlink, t0: Instant, ms: u64, estimate: u64, stats: Option<(f32, u64)>, cur: &mut Option<u8>) -> Vec<bool> {
        let tracks = [camera(Some(2))];
        let mut switches = Vec::new();
        for step in 0..ms / 250 {
            let now = t0 + Duration::from_millis(250 * step);
            d.estimated(estimate);
            if let Some((loss, rtt)) = stats {
                d.observe(now, Some(loss), Some(Duration::from_millis(rtt)));
            }
            let plan = d.plan(now, &tracks, &[*cur], 40_000);
            if let Some((t, _)) = plan.changes[0] {
                *cur = t;
                switches.push(plan.congested);
            }
        }
        switches
    }

    #[test]
    fn an_outage_of_the_media_path_is_not_read_as_a_narrow_link() {
        let run = |mark: bool| {
            let mut d = Downlink::default();
            let t0 = Instant::now();
            let mut cur = Some(2);
            assert_eq!(feed_plans(&mut d, t0, 3000, 3_000_000, Some((0.0, 20)), &mut cur), [] as [bool; 0]);
            // The path goes down for 4 s: no feedback, then ICE restarts.
            let down = t0 + Duration::from_secs(3);
            if mark {
                d.path_down();
            }
            let mut switches = feed_plans(&mut d, down, 4000, 3_000_000, None, &mut cur);
            // Back: the first feedback reports what was sent into the outage as lost, and
            // str0m's estimate falls to its floor.
            let back = down + Duration::from_secs(4);
            if mark {
                d.path_up(back);
            }
            switches.extend(feed_plans(&mut d, back, 1500, 40_000, Some((0.9, 400)), &mut cur));
            (d, cur, switches, back + Duration::from_millis(1500))
        };
        let (_, cur, switches, _) = run(false);
        assert!(!switches.is_empty() && cur < Some(2), "unmarked, the outage reads as a narrow link: {cur:?}");
        let (mut d, cur, switches, end) = run(true);
        assert_eq!((cur, switches), (Some(2), vec![]), "the layer is kept through the outage and its grace");
        let plan = d.plan(end, &[camera(Some(2))], &[cur], 40_000);
        assert_eq!(plan.reset_to, Some(3_000_000), "the estimator restarts from before the outage: {plan:?}");
        assert_eq!(plan.changes[0], None);
        // From here the estimate and the feedback count again.
        d.estimated(2_000_000);
        assert_eq!(d.estimate, Some(2_000_000));
    }

    #[test]
    fn a_mild_dip_on_a_quiet_link_waits_for_the_estimate_to_recover() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        // A congestion first (so that the desired rate follows the layers, not the preferred
        // quality), then back on the top layer.
        with_rtt(&mut d, t0, 1000, 3_000_000, 5, &mut cur);
        with_rtt(&mut d, t0 + Duration::from_secs(1), 1000, 500_000, 80, &mut cur);
        assert!(cur < Some(2));
        with_rtt(&mut d, t0 + Duration::from_secs(2), 18_000, 3_000_000, 5, &mut cur);
        assert_eq!(cur, Some(2));
        // The estimator's overuse answer: 0.85 of what got through, for 1.5 s, round trips as
        // before. Nothing moves, and str0m is asked to probe above what the layers need.
        let t1 = t0 + Duration::from_millis(20_000);
        assert_eq!(with_rtt(&mut d, t1, 1500, 1_300_000, 6, &mut cur), 0);
        d.estimate = Some(1_300_000);
        let plan = d.plan(t1 + Duration::from_millis(1500), &[camera(Some(2))], &[cur], 40_000);
        assert!(plan.desired > 1_540_000, "asks for more than the layers need: {}", plan.desired);
        // At 1.5 s the estimator is restarted from what the layers need (1.54 Mbit/s with audio).
        assert_eq!(plan.reset_to, Some(1_617_000));
        // Had it lasted, the layer would have stayed as long as the link stays quiet (the
        // estimator restarted every 2 s); a queue that builds takes it down soon.
        let mut d2 = d.clone();
        let mut cur2 = cur;
        assert_eq!(with_rtt(&mut d2, t1 + Duration::from_millis(1500), 6000, 1_300_000, 6, &mut cur2), 0);
        assert_eq!(with_rtt(&mut d2, t1 + Duration::from_millis(7500), 1500, 1_300_000, 90, &mut cur2), 1);
        assert_eq!(cur2, Some(1));
        // It recovers: still on the top layer.
        assert_eq!(with_rtt(&mut d, t1 + Duration::from_millis(1500), 3000, 2_000_000, 5, &mut cur), 0);
        assert_eq!(cur, Some(2));
    }

    #[test]
    fn before_any_congestion_an_up_switch_is_followed_by_a_probe_at_once() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let tracks = [camera(Some(2))];
        d.estimate = Some(800_000);
        let p = d.plan(t0, &tracks, &[Some(0)], 40_000);
        assert_eq!(p.changes[0], Some((Some(1), Reason::Bandwidth)));
        let p = d.plan(t0 + Duration::from_millis(250), &tracks, &[Some(1)], 40_000);
        assert!(p.probing && p.desired > 1_500_000, "{p:?}");
        assert_eq!(p.reset_to, Some(800_000), "the window restarts the estimator from where it is: {p:?}");
        // Through the window the desired rate rises again every other half second (str0m
        // probes on each rise, from its latest estimate).
        let mut rises = 0;
        let mut last = p.desired;
        for step in 2..16 {
            let p = d.plan(t0 + Duration::from_millis(250 * step), &tracks, &[Some(1)], 40_000);
            assert!(p.probing, "{p:?}");
            rises += usize::from(p.desired > last);
            last = p.desired;
        }
        assert!(rises >= 3, "{rises} rises in 3.5 s");
    }

    #[test]
    fn a_full_queue_downgrades_before_the_estimate_falls_and_only_once() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        with_rtt(&mut d, t0, 3000, 3_000_000, 5, &mut cur);
        // The queue fills: round trips of 120 ms and 8 % loss, str0m's estimate still high.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(feed_plans(&mut d, t1, 500, 3_000_000, Some((0.08, 120)), &mut cur), [true], "one switch, said congested");
        assert_eq!(cur, Some(1), "what got through (1.54M x 0.92 x 0.85) carries the middle layer");
        // The old layer's packets drain for a while: that is not a new congestion.
        assert_eq!(feed(&mut d, t1 + Duration::from_millis(500), 2000, 3_000_000, Some((0.08, 120)), &mut cur), 0);
        // Loss without a queue, or a queue without loss, is not a full queue.
        let mut d = Downlink::default();
        let mut cur = Some(2);
        with_rtt(&mut d, t0, 3000, 3_000_000, 5, &mut cur);
        assert_eq!(feed(&mut d, t1, 1000, 3_000_000, Some((0.08, 6)), &mut cur), 0);
        assert_eq!(feed(&mut d, t1 + Duration::from_secs(1), 1000, 3_000_000, Some((0.0, 120)), &mut cur), 0);
    }

    #[test]
    fn a_steep_fall_on_a_quiet_link_waits_for_the_link_to_say_so() {
        // A tile that grew meets an estimate that sank while little was sent.
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        with_rtt(&mut d, t0, 3000, 3_000_000, 5, &mut cur);
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(with_rtt(&mut d, t1, 6000, 500_000, 5, &mut cur), 0, "waits for the link to say so");
        assert_eq!(with_rtt(&mut d, t1 + Duration::from_secs(6), 1000, 500_000, 100, &mut cur), 1, "a queue says so");
        assert!(cur < Some(2));
    }

    #[test]
    fn random_loss_without_a_queue_keeps_the_layer_through_a_loss_limited_estimate() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        with_rtt(&mut d, t0, 3000, 3_000_000, 5, &mut cur);
        // 3 % loss, round trips at their base, the estimate held at 800 kbit/s by its loss
        // controller: kept for 6 s.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(feed(&mut d, t1, 6000, 800_000, Some((0.03, 6)), &mut cur), 0);
        assert_eq!(cur, Some(2));
        // The same with the round trip grown by a queue: down within 1.75 s.
        let t2 = t1 + Duration::from_secs(6);
        assert!(feed(&mut d, t2, 1750, 800_000, Some((0.03, 80)), &mut cur) >= 1);
        assert!(cur < Some(2));
    }

    #[test]
    fn the_same_dip_with_a_growing_queue_downgrades_soon() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        with_rtt(&mut d, t0, 3000, 3_000_000, 5, &mut cur);
        // The round trip grows by 60 ms: a queue.
        let t1 = t0 + Duration::from_millis(3000);
        assert_eq!(with_rtt(&mut d, t1, 1000, 1_300_000, 65, &mut cur), 1);
        assert_eq!(cur, Some(1));
    }

    #[test]
    fn a_single_layer_stream_above_the_first_estimate_starts_at_once() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let single = TrackNeed { layers: vec![(0, 1_600_000)], ..camera(Some(0)) };
        // No estimate yet (1 Mbit/s assumed): started, not paused.
        let p = d.plan(t0, std::slice::from_ref(&single), &[None], 40_000);
        assert_eq!(p.changes[0], Some((Some(0), Reason::Bandwidth)), "{p:?}");
        // Far below it (under half), it waits.
        let mut d = Downlink { estimate: Some(600_000), ..Downlink::default() };
        assert_eq!(d.plan(t0, std::slice::from_ref(&single), &[None], 40_000).changes[0], None);
        // After a congestion, a track paused for bandwidth resumes by the usual rules, not this.
        let mut d = Downlink::default();
        let mut cur = Some(0);
        d.estimate = Some(300_000);
        for step in 0..8 {
            if let Some((t, _)) = d.plan(t0 + Duration::from_millis(250 * step), std::slice::from_ref(&single), &[cur], 40_000).changes[0] {
                cur = t;
            }
        }
        assert_eq!(cur, None, "paused at 300 kbit/s");
        d.estimate = Some(1_000_000);
        assert_eq!(d.plan(t0 + Duration::from_secs(2), std::slice::from_ref(&single), &[None], 40_000).changes[0], None);
    }

    #[test]
    fn a_steady_link_between_layers_never_oscillates() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        // 0.95 of what the top layer needs.
        let switches = steady(&mut d, t0, 90, 1_500_000 * 95 / 100, &mut cur);
        assert_eq!(cur, Some(1));
        assert_eq!(switches, 1);
    }

    #[test]
    fn comes_back_up_after_the_hold() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        steady(&mut d, t0, 2, 600_000, &mut cur);
        assert_eq!(cur, Some(1));
        let t1 = t0 + Duration::from_secs(2);
        steady(&mut d, t1, 5, 3_000_000, &mut cur);
        assert_eq!(cur, Some(2), "back to the top within the hold");
    }

    #[test]
    fn a_sawtooth_link_backs_off() {
        let mut d = Downlink::default();
        let mut now = Instant::now();
        let mut cur = Some(2);
        let mut switches = 0;
        for i in 0..15 {
            let estimate = if i % 2 == 0 { 700_000 } else { 3_000_000 };
            switches += steady(&mut d, now, 4, estimate, &mut cur);
            now += Duration::from_secs(4);
        }
        assert!(switches <= 8, "{switches} switches");
    }

    #[test]
    fn a_failed_climb_falls_back_one_layer_not_to_the_bottom() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        steady(&mut d, t0, 2, 800_000, &mut cur);
        assert_eq!(cur, Some(1));
        // An overshooting estimate takes it up; the losses the top layer causes then make the
        // estimate dip below even the middle layer: back to the middle layer, not the lowest.
        let t1 = t0 + Duration::from_secs(10);
        steady(&mut d, t1, 3, 3_000_000, &mut cur);
        assert_eq!(cur, Some(2));
        steady(&mut d, t1 + Duration::from_secs(3), 1, 400_000, &mut cur);
        assert_eq!(cur, Some(1));
        // Far below even that, it goes on down once the dip lasts.
        steady(&mut d, t1 + Duration::from_secs(4), 2, 200_000, &mut cur);
        assert_eq!(cur, Some(0));
    }

    #[test]
    fn each_probe_window_after_congestion_raises_the_desired_rate_so_str0m_probes() {
        let (mut d, t0, cur) = paused_at_60k();
        let tracks = [camera(Some(2))];
        let mut rises = 0;
        let mut last = None;
        for step in 0..80 {
            d.estimate = Some(60_000);
            let plan = d.plan(t0 + BASE_HOLD + Duration::from_millis(250 * step), &tracks, &[cur], 40_000);
            if plan.probing {
                assert_eq!(plan.pad_to, 0, "no padding beside the audio while paused: {plan:?}");
                assert!(plan.desired > 1_500_000, "the preferred quality while probing: {plan:?}");
            } else {
                assert_eq!(plan.desired, 40_000, "what the targets use between probes: {plan:?}");
            }
            if last.is_some_and(|l| plan.desired > l) {
                rises += 1;
            }
            last = Some(plan.desired);
        }
        // 20 s paused: a rise (so a probe cluster) every PAUSED_PROBE_EVERY or so.
        assert!(rises >= 6, "{rises} rises");
    }

    #[test]
    fn an_estimate_sunk_below_the_audio_is_restarted_once_per_probe_window_while_paused() {
        let (mut d, t0, cur) = paused_at_60k();
        let tracks = [camera(Some(2))];
        let (mut resets, mut windows, mut was_probing) = (0, 0, false);
        for step in 0..80 {
            d.estimate = Some(15_000);
            let plan = d.plan(t0 + BASE_HOLD + Duration::from_millis(250 * step), &tracks, &[cur], 40_000);
            if plan.probing && !was_probing {
                windows += 1;
                assert_eq!(plan.reset_to, Some(60_000), "{plan:?}");
            }
            resets += usize::from(plan.reset_to.is_some());
            was_probing = plan.probing;
        }
        assert!(windows >= 6, "{windows} probe windows in 20 s");
        assert_eq!(resets, windows);
    }

    #[test]
    fn after_congestion_an_up_switch_waits_for_padding_at_the_step() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        steady(&mut d, t0, 2, 800_000, &mut cur);
        assert_eq!(cur, Some(1));
        // A probe cluster's estimate jumps far above the top layer's need: no up-switch before a
        // probe window has padded toward the step for PADDED.
        let tracks = [camera(Some(2))];
        let t1 = t0 + Duration::from_secs(2);
        let mut up_at = None;
        let mut window_at = None;
        for step in 0..60 {
            let now = t1 + Duration::from_millis(250 * step);
            d.estimate = Some(3_000_000);
            let plan = d.plan(now, &tracks, &[cur], 40_000);
            if plan.probing && window_at.is_none() {
                window_at = Some(now);
                assert!(plan.pad_to > 1_500_000, "pads toward the top layer: {plan:?}");
            }
            if let Some((t, _)) = plan.changes[0] {
                cur = t;
                up_at.get_or_insert(now);
            }
        }
        let (window_at, up_at) = (window_at.expect("a probe window"), up_at.expect("an up-switch"));
        assert!(up_at >= window_at + PADDED, "up {:?} after the window opened", up_at - window_at);
        assert_eq!(cur, Some(2));
    }

    /// A downlink whose camera was paused by 2 s at 60 kbit/s: (downlink, start, target).
    fn paused_at_60k() -> (Downlink, Instant, Option<u8>) {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        steady(&mut d, t0, 2, 60_000, &mut cur);
        assert_eq!(cur, None);
        (d, t0, cur)
    }

    #[test]
    fn a_paused_track_is_probed_and_resumes() {
        let (mut d, t0, mut cur) = paused_at_60k();
        let tracks = [camera(Some(2))];
        let now = t0 + Duration::from_secs(10);
        d.estimate = Some(60_000);
        let plan = d.plan(now, &tracks, &[cur], 40_000);
        assert!(plan.probing && plan.desired > 150_000, "probes toward the lowest layer: {plan:?}");
        steady(&mut d, now, 5, 3_000_000, &mut cur);
        assert!(cur.is_some());
    }

    #[test]
    fn a_grown_tile_gets_its_layer_at_once_on_the_estimate_seen_before_it_shrank() {
        let mut d = Downlink::default();
        let t0 = Instant::now();
        let mut cur = Some(2);
        steady(&mut d, t0, 5, 3_000_000, &mut cur);
        assert_eq!(cur, Some(2));
        // The tile shrinks: the low layer; the estimate sinks to what that layer sends.
        let small = [camera(Some(0))];
        let t1 = t0 + Duration::from_secs(5);
        d.estimate = Some(3_000_000);
        let plan = d.plan(t1, &small, &[cur], 40_000);
        assert_eq!(plan.changes[0], Some((Some(0), Reason::Size)));
        cur = Some(0);
        d.estimate = Some(250_000);
        for step in 1..20 {
            let plan = d.plan(t1 + Duration::from_millis(250 * step), &small, &[cur], 40_000);
            assert_eq!(plan.changes[0], None);
        }
        // It grows again: the top layer in one step, without waiting for a probe.
        let mut grown = camera(Some(2));
        grown.resized = true;
        let plan = d.plan(t1 + Duration::from_secs(5), &[grown.clone()], &[cur], 40_000);
        assert_eq!(plan.changes[0], Some((Some(2), Reason::Size)));
        // Not so after congestion: a bandwidth downgrade forgets the better estimate.
        let mut d = Downlink::default();
        let mut cur = Some(2);
        steady(&mut d, t0, 5, 3_000_000, &mut cur);
        steady(&mut d, t0 + Duration::from_secs(5), 2, 300_000, &mut cur);
        assert_eq!(cur, Some(0));
        d.estimate = Some(300_000);
        let plan = d.plan(t0 + Duration::from_secs(20), &[grown], &[cur], 40_000);
        assert_eq!(plan.changes[0], None, "{plan:?}");
    }

    #[test]
    fn a_paused_track_is_probed_every_few_seconds_however_long_it_was_paused() {
        let (mut d, t0, cur) = paused_at_60k();
        let tracks = [camera(Some(2))];
        // A minute at 60 kbit/s: no probe window ever more than PAUSED_PROBE_EVERY after the
        // last one ended (probing starts once the hold after the pause is over).
        let mut last_probe = t0 + BASE_HOLD;
        let mut longest = Duration::ZERO;
        let mut resets = 0;
        for step in 0..240 {
            let now = t0 + BASE_HOLD + Duration::from_millis(250 * step);
            d.estimate = Some(60_000);
            let plan = d.plan(now, &tracks, &[cur], 40_000);
            assert_eq!(plan.changes[0], None);
            // The estimate covers the audio but not the lowest layer: restarted at each window.
            if plan.reset_to.is_some() {
                resets += 1;
            }
            if plan.probing {
                longest = longest.max(now - last_probe);
                last_probe = now;
            }
        }
        assert!(longest <= PAUSED_PROBE_EVERY + Duration::from_millis(500), "{longest:?} without a probe");
        assert!((20..=32).contains(&resets), "{resets} restarts of a low estimate in a minute");
        assert!(last_probe > t0 + Duration::from_secs(55));
    }
}

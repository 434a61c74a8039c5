//! Test support for confab: several str0m peers and one SFU core in one process, on a virtual
//! clock, through an emulated network with latency, jitter, loss and reordering.
//!
//! ```no_run
//! use std::time::Duration;
//! use testkit::{NetemConfig, Scenario};
//!
//! let mut call = Scenario::new(NetemConfig::new());
//! let ada = call.join("ada", "standup");
//! let bob = call.join("bob", "standup");
//! call.publish(ada, true, true);
//! call.run_for(Duration::from_secs(2));
//! assert!(call.video_frames(bob, ada) > 0);
//! ```

pub mod frames;
mod peer;
mod scenario;

pub use peer::{Peer, Received, RtpSeen, ToSfu, AUDIO_INTERVAL, KEYFRAME_INTERVAL, LAYERS, VIDEO_FRAME_BYTES, VIDEO_INTERVAL};
pub use scenario::{SFU_ADDR, Scenario};
pub use str0m_netem::{LossModel, NetemConfig, Probability, RandomLoss};

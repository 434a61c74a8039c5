//! A participant whose signaling connection was lost keeps its place while it reconnects
//! ([`crate::Command::Suspend`], [`crate::Command::Resume`]); its media goes on meanwhile.

use crate::Sfu;
use crate::api::{Role, Signal};
use crate::slots::Pix;

impl Sfu {
    /// Mark `pix` as reconnecting (or back), and tell its room when that changes.
    pub(crate) fn suspend(&mut self, pix: Pix, suspended: bool) {
        let Some(p) = self.participants.get_mut(pix) else { return };
        if p.suspended == suspended || p.role != Role::Member {
            return;
        }
        p.suspended = suspended;
        tracing::info!(participant = %p.id, suspended, "signaling connection lost or back");
        let (id, room) = (p.id.clone(), p.room.clone());
        for other in self.members(&room, Some(pix)) {
            self.signal(other, Signal::Reconnecting { participant: id.clone(), reconnecting: suspended });
        }
    }

    /// `pix` is back on a new signaling connection: a fresh `Joined`, and a new offer of
    /// whatever it should receive (an offer outstanding when the connection was lost may never
    /// have arrived, or its answer may have been lost: it is dropped and made again).
    pub(crate) fn resume(&mut self, pix: Pix) {
        self.suspend(pix, false);
        let Some(p) = self.participants.get_mut(pix) else { return };
        p.void_offer();
        let (you, room) = (p.info(), p.room.clone());
        let others = self.roster(&room, pix);
        let mode = self.room_mode(&room);
        let path = self.paths.get(&room).map_or(crate::api::Path::Sfu, |r| r.path);
        self.signal(pix, Signal::Joined { room, mode, path, you, others });
        self.negotiate(pix);
        self.mark_dirty(pix);
    }
}

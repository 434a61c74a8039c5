//! Room modes (docs/protocol.md, "Peer-to-peer rooms"): which path media takes in each room, and
//! the relay of signaling between two participants of one room.

use crate::api::{Path, ParticipantId, Role, RoomMode, Signal};
use crate::error::Error;
use crate::slots::Pix;
use crate::Sfu;

/// A room's mode and the path last announced in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoomPath {
    pub(crate) mode: RoomMode,
    pub(crate) path: Path,
}

impl Sfu {
    /// The mode of `room` (an SFU room if it is not open).
    pub(crate) fn room_mode(&self, room: &str) -> RoomMode {
        self.paths.get(room).map_or(RoomMode::Sfu, |r| r.mode)
    }

    /// The path media should take in `room` as it is now: in an auto room, peer-to-peer while it
    /// holds at most two participants, all of them members of the WebSocket protocol (a WHIP
    /// publisher or WHEP player needs the SFU).
    fn wanted_path(&self, room: &str, mode: RoomMode) -> Path {
        match mode {
            RoomMode::Sfu => Path::Sfu,
            RoomMode::P2p => Path::P2p,
            RoomMode::Auto => {
                let members = self.rooms.get(room).map(Vec::as_slice).unwrap_or_default();
                let all_members = members.iter().all(|&m| self.participants.get(m).is_some_and(|p| p.role == Role::Member));
                if members.len() <= 2 && all_members { Path::P2p } else { Path::Sfu }
            }
        }
    }

    /// Record the path of `room` after a join or a leave, and tell its members (but `except`,
    /// who learns it otherwise) when it changed. Returns the path.
    pub(crate) fn update_path(&mut self, room: &str, opening: RoomMode, except: Option<Pix>) -> Path {
        let mode = self.paths.get(room).map_or(opening, |r| r.mode);
        let path = self.wanted_path(room, mode);
        let before = self.paths.insert(room.to_owned(), RoomPath { mode, path }).map(|r| r.path);
        if before.is_some_and(|b| b != path) {
            tracing::info!(room, ?path, "room path changed");
            for m in self.members(room, except) {
                if self.participants.get(m).is_some_and(|p| p.role == Role::Member) {
                    self.signal(m, Signal::Path(path));
                }
            }
        }
        path
    }

    /// Hand `payload` from `from` to `to`, a member of the same room.
    pub(crate) fn relay(&mut self, from: Pix, to: &ParticipantId, payload: String) -> Result<(), Error> {
        let not_in_room = || Error::NotInRoom(to.to_string());
        let sender = self.participants.get(from).ok_or(Error::UnknownParticipant)?;
        let &target = self.by_id.get(to).ok_or_else(not_in_room)?;
        let recipient = self.participants.get(target).ok_or_else(not_in_room)?;
        if target == from || recipient.room != sender.room || recipient.role != Role::Member || !recipient.announced {
            return Err(not_in_room());
        }
        let from_id = sender.id.clone();
        self.signal(target, Signal::Relayed { from: from_id, payload });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use crate::api::{Command, Event, Grants, Path, ParticipantId, Role, RoomMode, Signal};
    use crate::error::Error;
    use crate::{Sfu, SfuConfig};

    fn sfu() -> Sfu {
        Sfu::new(SfuConfig::new(vec!["127.0.0.1:7881".parse().unwrap()])).unwrap()
    }

    fn join(sfu: &mut Sfu, id: &str, room: &str, mode: RoomMode) -> Result<(), Error> {
        let command = Command::Join {
            participant: ParticipantId::new(id),
            room: room.into(),
            name: id.into(),
            role: Role::Member,
            grants: Grants::default(),
            mode,
        };
        sfu.handle_command(Instant::now(), command)
    }

    /// The signals each participant got since the last call, in order.
    fn signals(sfu: &mut Sfu) -> Vec<(String, Signal)> {
        std::iter::from_fn(|| sfu.poll_event())
            .filter_map(|e| match e {
                Event::Signal { to, signal } => Some((to.to_string(), signal)),
                _ => None,
            })
            .collect()
    }

    fn paths(signals: &[(String, Signal)]) -> Vec<(String, Path)> {
        signals
            .iter()
            .filter_map(|(to, s)| match s {
                Signal::Path(p) => Some((to.clone(), *p)),
                Signal::Joined { path, .. } => Some((format!("{to} joined"), *path)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_auto_room_is_p2p_for_two_and_sfu_from_three() {
        let mut sfu = sfu();
        join(&mut sfu, "a", "r", RoomMode::Auto).unwrap();
        join(&mut sfu, "b", "r", RoomMode::Sfu).unwrap();
        assert_eq!(paths(&signals(&mut sfu)), [("a joined".into(), Path::P2p), ("b joined".into(), Path::P2p)]);
        join(&mut sfu, "c", "r", RoomMode::Sfu).unwrap();
        let got = paths(&signals(&mut sfu));
        assert_eq!(got, [("a".into(), Path::Sfu), ("b".into(), Path::Sfu), ("c joined".into(), Path::Sfu)]);
        let leave = Command::Leave { participant: ParticipantId::new("b"), reason: crate::LeaveReason::Left };
        sfu.handle_command(Instant::now(), leave).unwrap();
        assert_eq!(paths(&signals(&mut sfu)), [("a".into(), Path::P2p), ("c".into(), Path::P2p)]);
        assert_eq!(sfu.rooms()[0].mode, RoomMode::Auto);
    }

    #[test]
    fn relay_stays_within_a_room() {
        let mut sfu = sfu();
        join(&mut sfu, "a", "r", RoomMode::P2p).unwrap();
        join(&mut sfu, "b", "r", RoomMode::P2p).unwrap();
        join(&mut sfu, "x", "other", RoomMode::P2p).unwrap();
        signals(&mut sfu);
        let relay = |to: &str| Command::Relay { participant: ParticipantId::new("a"), to: ParticipantId::new(to), payload: "{\"bye\":true}".into() };
        sfu.handle_command(Instant::now(), relay("b")).unwrap();
        let got = signals(&mut sfu);
        assert_eq!(got, [("b".into(), Signal::Relayed { from: ParticipantId::new("a"), payload: "{\"bye\":true}".into() })]);
        for to in ["x", "a", "nobody"] {
            assert_eq!(sfu.handle_command(Instant::now(), relay(to)), Err(Error::NotInRoom(to.into())));
        }
        assert!(signals(&mut sfu).is_empty());
    }

    #[test]
    fn a_p2p_room_takes_no_whip_or_whep_and_a_room_keeps_its_first_mode() {
        let mut sfu = sfu();
        join(&mut sfu, "a", "r", RoomMode::P2p).unwrap();
        let whip = Command::Join {
            participant: ParticipantId::new("w"),
            room: "r".into(),
            name: "w".into(),
            role: Role::Publisher,
            grants: Grants::default(),
            mode: RoomMode::Sfu,
        };
        assert_eq!(sfu.handle_command(Instant::now(), whip), Err(Error::PeerToPeerRoom));
        join(&mut sfu, "b", "r", RoomMode::Sfu).unwrap();
        let joined = signals(&mut sfu).into_iter().find_map(|(to, s)| match s {
            Signal::Joined { mode, path, .. } if to == "b" => Some((mode, path)),
            _ => None,
        });
        assert_eq!(joined, Some((RoomMode::P2p, Path::P2p)));
    }
}

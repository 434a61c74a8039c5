//! Validation of room ids and display names.

use crate::error::Error;

/// Longest room id, in characters.
pub const MAX_ROOM_CHARS: usize = 64;

/// Longest display name, in characters (after trimming).
pub const MAX_NAME_CHARS: usize = 64;

/// Check a room id: 1–64 characters from `A–Z a–z 0–9 - _ .`.
pub fn validate_room(room: &str) -> Result<&str, Error> {
    if room.is_empty() {
        return Err(Error::InvalidRoom("room must not be empty"));
    }
    if room.len() > MAX_ROOM_CHARS {
        return Err(Error::InvalidRoom("room must be at most 64 characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !room.chars().all(allowed) {
        return Err(Error::InvalidRoom(
            "room may only hold the characters A-Z a-z 0-9 - _ .",
        ));
    }
    Ok(room)
}

/// Check a display name and return it trimmed: 1–64 characters, no control characters.
pub fn validate_name(name: &str) -> Result<&str, Error> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::InvalidName("name must not be empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::InvalidName("name must be at most 64 characters"));
    }
    // Control characters, plus the Unicode direction overrides that can disguise a name.
    let forbidden = |c: char| c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if name.chars().any(forbidden) {
        return Err(Error::InvalidName("name must not contain control characters"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms() {
        for ok in ["a", "standup", "Team-42_room.v2", &"x".repeat(64)] {
            assert_eq!(validate_room(ok), Ok(ok));
        }
        for bad in ["", " ", "a b", "ü", "room/1", "<script>", "a\0", &"x".repeat(65)] {
            assert!(matches!(validate_room(bad), Err(Error::InvalidRoom(_))), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(validate_name("  Ada Lovelace "), Ok("Ada Lovelace"));
        assert_eq!(validate_name("Zoë 🎧"), Ok("Zoë 🎧"));
        assert_eq!(validate_name(&"é".repeat(64)).map(|n| n.chars().count()), Ok(64));
        for bad in ["", "   ", "a\nb", "tab\there", "bell\u{7}", "evil\u{202e}txt", &"é".repeat(65)] {
            assert!(matches!(validate_name(bad), Err(Error::InvalidName(_))), "{bad:?}");
        }
    }
}

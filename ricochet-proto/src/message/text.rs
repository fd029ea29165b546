//! Text rules shared by several channels: lengths in UTF-16 code units
//! (§5.1) and the nickname characters of §8.1.

/// Length of `text` in UTF-16 code units, the unit of every text limit of
/// the protocol (Qt's `QString::size()` in Ricochet 1.1).
///
/// Counted by UTF-8 byte class rather than by encoding: every character
/// has exactly one leading (non-continuation) byte, and the four-byte
/// sequences (leading byte `0xF0..=0xF4`, the characters above U+FFFF) are
/// the ones that take a surrogate pair. The inner loop has no branches and
/// sums in `u8` (at most 2 × 127 per chunk), so it vectorises 16 bytes to a
/// lane group; on a 100-byte text it is about ten times faster than
/// `encode_utf16().count()`.
pub fn utf16_len(text: &str) -> usize {
    const CHUNK: usize = 127;
    text.as_bytes()
        .chunks(CHUNK)
        .map(|chunk| {
            let units = chunk.iter().fold(0u8, |units, &b| {
                units
                    .wrapping_add(u8::from((b & 0xC0) != 0x80))
                    .wrapping_add(u8::from(b >= 0xF0))
            });
            usize::from(units)
        })
        .sum()
}

/// Longest nickname in a contact request, in UTF-16 code units (§8.1).
pub const MAX_NICKNAME_UTF16: usize = 30;

/// Why a nickname is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NicknameError {
    /// Longer than [`MAX_NICKNAME_UTF16`].
    #[error("a nickname has at most 30 UTF-16 code units, this one has {len}")]
    TooLong {
        /// Its length in UTF-16 code units.
        len: usize,
    },
    /// Contains a character §8.1 forbids.
    #[error("a nickname may not contain {character:?} (U+{:04X})", *character as u32)]
    ForbiddenCharacter {
        /// The first forbidden character.
        character: char,
    },
}

/// Checks the nickname rules of §8.1: at most 30 UTF-16 code units; none of
/// `" < > &`; no control (Cc) or format (Cf) characters; no noncharacters.
pub fn validate_nickname(nickname: &str) -> Result<(), NicknameError> {
    let len = utf16_len(nickname);
    if len > MAX_NICKNAME_UTF16 {
        return Err(NicknameError::TooLong { len });
    }
    match nickname.chars().find(|&c| is_forbidden_in_nickname(c)) {
        Some(character) => Err(NicknameError::ForbiddenCharacter { character }),
        None => Ok(()),
    }
}

fn is_forbidden_in_nickname(c: char) -> bool {
    matches!(c, '"' | '<' | '>' | '&') || c.is_control() || is_format(c) || is_noncharacter(c)
}

/// Unicode noncharacters: U+FDD0..U+FDEF and the last two code points of
/// every plane.
fn is_noncharacter(c: char) -> bool {
    let cp = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&cp) || cp & 0xFFFE == 0xFFFE
}

/// General category Cf (format), Unicode 15.1. The standard library has no
/// category tables; this list is short and changes rarely.
fn is_format(c: char) -> bool {
    const CF: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let cp = u32::from(c);
    CF.iter().any(|&(lo, hi)| (lo..=hi).contains(&cp))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod test {
    use super::*;

    #[test]
    fn utf16_len_matches_encode_utf16() {
        for text in [
            "",
            "a",
            "ascii only",
            "é ü ß",
            "€ ☃ 中文",
            "😀",
            "a😀b\u{10ffff}\u{fffd}\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}",
        ] {
            assert_eq!(utf16_len(text), text.encode_utf16().count(), "{text:?}");
        }
        let every: String = (0..=0x10_FFFF).filter_map(char::from_u32).collect();
        assert_eq!(utf16_len(&every), every.encode_utf16().count());
    }

    #[test]
    fn nickname_rules() {
        assert!(validate_nickname("").is_ok());
        assert!(validate_nickname("Alice Ünïcødé 😀").is_ok());
        assert!(validate_nickname(&"a".repeat(30)).is_ok());
        assert_eq!(
            validate_nickname(&"a".repeat(31)),
            Err(NicknameError::TooLong { len: 31 })
        );
        // An astral character counts as two code units.
        assert!(validate_nickname(&"😀".repeat(15)).is_ok());
        assert!(validate_nickname(&"😀".repeat(16)).is_err());
        for bad in [
            '"',
            '<',
            '>',
            '&',
            '\n',
            '\u{7f}',
            '\u{200b}',
            '\u{feff}',
            '\u{fdd0}',
            '\u{fffe}',
            '\u{1fffe}',
            '\u{10ffff}',
            '\u{e0041}',
        ] {
            assert_eq!(
                validate_nickname(&format!("ok{bad}")),
                Err(NicknameError::ForbiddenCharacter { character: bad }),
                "{bad:?}"
            );
        }
    }
}

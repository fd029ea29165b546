//! Introduction and version negotiation (spec §3).
//!
//! The client sends `49 4D N v1 … vN`; the server answers with one byte: the
//! chosen version, or `FF` for none.

use crate::DecodeError;

/// The two magic bytes `"IM"` that open every connection.
pub const INTRO_MAGIC: [u8; 2] = [0x49, 0x4D];
/// The server's answer when no offered version is acceptable.
pub const NO_COMMON_VERSION: u8 = 0xFF;
/// Longest possible introduction: magic, count, 255 versions.
pub const MAX_INTRO_LEN: usize = 3 + 255;

/// A client's introduction: the versions it offers, in its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introduction {
    versions: Vec<u8>,
}

impl Introduction {
    /// An introduction offering exactly `version` (§12.1: offer only the one
    /// version the contact's id calls for).
    pub fn offering(version: u8) -> Self {
        Self {
            versions: vec![version],
        }
    }

    /// The offered versions.
    pub fn versions(&self) -> &[u8] {
        &self.versions
    }

    /// Whether `version` is among the offered ones (R1 and Refresh pick only
    /// their own version, wherever it appears, §3.2).
    pub fn offers(&self, version: u8) -> bool {
        self.versions.contains(&version)
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + self.versions.len());
        out.extend_from_slice(&INTRO_MAGIC);
        // At most 255 versions by construction (`offering`, `parse`).
        out.push(u8::try_from(self.versions.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(&self.versions);
        out
    }

    /// Parses an introduction from the start of `input`.
    ///
    /// Returns `Ok(None)` if more bytes are needed, or the introduction and
    /// the number of bytes it took. Bad magic or a zero count is an error
    /// (§3.2: abort with no reply) as soon as the first three bytes show it.
    pub fn parse(input: &[u8]) -> Result<Option<(Self, usize)>, DecodeError> {
        match input {
            [a, ..] if *a != INTRO_MAGIC[0] => Err(DecodeError::BadIntroMagic),
            [_, b, ..] if *b != INTRO_MAGIC[1] => Err(DecodeError::BadIntroMagic),
            [_, _, 0, ..] => Err(DecodeError::NoVersionsOffered),
            [_, _, count, rest @ ..] => {
                let count = usize::from(*count);
                Ok(rest.get(..count).map(|versions| {
                    (
                        Self {
                            versions: versions.to_vec(),
                        },
                        3 + count,
                    )
                }))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod test {
    use super::*;

    #[test]
    fn ricochet_1_1_intro() {
        let (intro, used) = Introduction::parse(&[0x49, 0x4D, 0x02, 0x01, 0x00, 0xAA])
            .unwrap()
            .unwrap();
        assert_eq!(used, 5);
        assert!(intro.offers(1));
        assert!(!intro.offers(3));
        assert_eq!(intro.encode(), [0x49, 0x4D, 0x02, 0x01, 0x00]);
    }

    #[test]
    fn incomplete_and_bad() {
        assert_eq!(Introduction::parse(&[]), Ok(None));
        assert_eq!(Introduction::parse(&[0x49, 0x4D]), Ok(None));
        assert_eq!(Introduction::parse(&[0x49, 0x4D, 2, 3]), Ok(None));
        assert_eq!(
            Introduction::parse(&[0x48]),
            Err(DecodeError::BadIntroMagic)
        );
        assert_eq!(
            Introduction::parse(&[0x49, 0x4E]),
            Err(DecodeError::BadIntroMagic)
        );
        assert_eq!(
            Introduction::parse(&[0x49, 0x4D, 0]),
            Err(DecodeError::NoVersionsOffered)
        );
        assert_eq!(Introduction::offering(3).encode(), [0x49, 0x4D, 1, 3]);
    }
}

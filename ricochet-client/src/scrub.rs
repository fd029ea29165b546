//! Ids in logs. Which ids a client talks to is exactly what Ricochet hides
//! from the network, and a log file outlives the session and may be read by
//! others (a backup, a bug report, another local user). So lines at `info`
//! and above show ids as `[scrubbed]`; with `debug` logging on (a user
//! chasing a problem, who asked for detail) they show in full, in the
//! manner of arti's `safelog`.

use std::fmt;

/// What an id shows as in a scrubbed line.
const SCRUBBED: &str = "[scrubbed]";

/// Whether ids are shown: debug logging is on.
fn ids_shown() -> bool {
    tracing::enabled!(tracing::Level::DEBUG)
}

/// An id (or anything that names a peer) for a log line: shown only with
/// debug logging on.
pub(crate) struct Id<T>(pub(crate) T);

impl<T: fmt::Display> fmt::Display for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if ids_shown() {
            self.0.fmt(f)
        } else {
            f.write_str(SCRUBBED)
        }
    }
}

/// A text for a log line (an error's chain) whose onion ids are scrubbed
/// unless debug logging is on: v3 ids (56 base32 characters) wherever they
/// stand, v2 ids (16) where they are written as one (`ricochet:…` or
/// `….onion`).
pub(crate) struct Text<T>(pub(crate) T);

impl<T: fmt::Display> fmt::Display for Text<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if ids_shown() {
            self.0.fmt(f)
        } else {
            f.write_str(&scrub(&self.0.to_string()))
        }
    }
}

fn is_base32(byte: u8) -> bool {
    byte.is_ascii_lowercase() || (b'2'..=b'7').contains(&byte)
}

/// `text` with its onion ids replaced by [`SCRUBBED`].
fn scrub(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        if !is_base32(bytes[at]) {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && is_base32(bytes[at]) {
            at += 1;
        }
        let run = at - start;
        let id = run == 56
            || (run == 16
                && (text[..start].ends_with("ricochet:") || text[at..].starts_with(".onion")));
        if id {
            out.push_str(&text[copied..start]);
            out.push_str(SCRUBBED);
            copied = at;
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onion_ids_are_scrubbed_and_words_are_not() {
        let v3 = "vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd";
        let text = format!(
            "connecting to {v3}.onion failed; ricochet:abcdefghijklmnop and \
             qrstuvwxyzabcdef.onion; internationalization stays; {v3}"
        );
        assert_eq!(
            scrub(&text),
            "connecting to [scrubbed].onion failed; ricochet:[scrubbed] and \
             [scrubbed].onion; internationalization stays; [scrubbed]"
        );
        assert_eq!(scrub("nothing here"), "nothing here");
        assert_eq!(scrub(""), "");
    }
}

//! Error types of this crate.
//!
//! Each operation has its own error enum so that callers can match on what
//! actually can go wrong: parsing an id ([`ServiceIdError`]), handling a key
//! ([`KeyError`]) or checking an authentication proof ([`ProofError`]).
//!
//! The convention of every crate of this workspace: an error's message says
//! its own step only, and its cause is `source()`, never repeated in the
//! message. [`ErrorChain`] (or `anyhow`'s `{:#}`) prints the whole chain.

use std::path::PathBuf;

use crate::Generation;

/// A boxed error from a dependency, kept as a `source` without making the
/// dependency's error type part of our public API.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a string is not a valid Ricochet / onion service id (spec §11.1, §11.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceIdError {
    /// Nothing left after removing white space, prefix and `.onion`.
    #[error("the id is empty")]
    Empty,
    /// The id part has neither 16 (v2) nor 56 (v3) characters.
    #[error(
        "a Ricochet id has 16 characters (original Ricochet, v2) or 56 characters \
         (Ricochet Refresh, v3) after `ricochet:`, but this one has {len}"
    )]
    BadLength {
        /// Number of characters found in the id part.
        len: usize,
    },
    /// A character outside the base32 alphabet `a`–`z`, `2`–`7`.
    #[error(
        "character {character:?} at position {position} of the id is not allowed: \
         only the letters a-z and the digits 2-7 occur in onion ids"
    )]
    BadCharacter {
        /// The offending character.
        character: char,
        /// Its 1-based position in the id part (after any prefix).
        position: usize,
    },
    /// The v3 id's version byte is not 3.
    #[error("the v3 id has version byte {version}, but only version 3 exists; check for a typo")]
    BadVersion {
        /// The version byte that was found.
        version: u8,
    },
    /// The v3 id's two-byte SHA3-256 checksum does not match its key.
    #[error("the v3 id's checksum does not match: the id is mistyped or damaged")]
    BadChecksum,
    /// The v3 id has a valid checksum but does not encode an ed25519 point.
    #[error("the v3 id does not encode a valid ed25519 public key")]
    InvalidPublicKey,
    /// `torsion:` is the pre-2014 prefix of 16-character ids and never had v3 ids.
    #[error("the legacy `torsion:` prefix only exists for 16-character (v2) ids; use `ricochet:`")]
    TorsionPrefixOnV3,
    /// A valid id of the other generation where one generation was required.
    #[error("expected a {expected} id, but this is a {found} id")]
    WrongGeneration {
        /// The generation that was required.
        expected: Generation,
        /// The generation of the id that was given.
        found: Generation,
    },
    /// A web address (`http://…`, `…/path`) where an id was expected.
    #[error(
        "this looks like a web address; a Ricochet id is `ricochet:` followed by \
         56 letters and digits (16 for original Ricochet), with no `/`"
    )]
    LooksLikeUrl,
    /// A strict (wire) parse got something other than the bare lowercase id.
    #[error(
        "the id is not in canonical form: expected exactly the lowercase id, \
         without white space, prefix or `.onion`"
    )]
    NotCanonical,
}

/// Why an identity key could not be created, read, converted or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Randomness(#[source] BoxError),
    /// The input is none of the formats this crate reads.
    #[error(
        "unrecognised key format: expected a Tor key blob (`ED25519-V3:…` or `RSA1024:…`), \
         a PEM `RSA PRIVATE KEY`, or a raw 32-byte ed25519 seed"
    )]
    UnrecognizedFormat,
    /// The base64 part of a Tor key blob does not decode.
    #[error("the Tor key blob's base64 part is invalid")]
    Base64(#[source] BoxError),
    /// An `ED25519-V3:` blob must hold exactly the 64-byte expanded secret key.
    #[error("an `ED25519-V3:` key blob holds 64 bytes, this one holds {len}")]
    ExpandedKeyLength {
        /// Number of bytes found.
        len: usize,
    },
    /// The scalar half of an expanded ed25519 key is not clamped, so Tor and
    /// Ricochet would derive a different public key from it than we would.
    #[error(
        "the ed25519 expanded secret key is not clamped; it was not produced by Tor or Ricochet"
    )]
    UnclampedScalar,
    /// The RSA private key does not parse as PKCS#1.
    #[error("the RSA private key is not a valid PKCS#1 `RSA PRIVATE KEY`")]
    MalformedRsaKey(#[source] BoxError),
    /// Ricochet v2 identities are RSA-1024 keys with public exponent 65537.
    #[error("v2 identities are 1024-bit RSA keys with exponent 65537; this key has {bits} bits")]
    UnsupportedRsaKey {
        /// Modulus size of the rejected key.
        bits: usize,
    },
    /// The key generation cannot be stored in the requested format.
    #[error("the {format} format cannot hold a {generation} identity key")]
    FormatMismatch {
        /// The requested format.
        format: crate::KeyFormat,
        /// The generation of the key.
        generation: Generation,
    },
    /// The key was loaded in expanded form (from Tor or Ricochet Refresh), so
    /// its seed was never known.
    #[error(
        "this ed25519 key was loaded in expanded form and its seed is unknown; \
         save it as a Tor key blob instead"
    )]
    SeedUnavailable,
    /// Encoding the key failed (should not happen for a valid key).
    #[error("could not encode the key")]
    Encoding(#[source] BoxError),
    /// [`crate::IdentityKey::save_new`] found a file where it would write.
    #[error("{} exists already; not replacing it", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// Reading or writing a key file failed.
    #[error("could not access key file {}", path.display())]
    Io {
        /// The file that was being read or written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// Why an authentication proof (spec §7) was not produced or not accepted.
///
/// Every variant means "reject the peer"; the variants say which check of
/// §7.1 / §7.2 failed so that it can be logged and tested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Client and server ids (or key and ids) are of different generations.
    #[error("a {client} client cannot authenticate to a {server} server")]
    GenerationMismatch {
        /// Generation of the proving (client) side.
        client: Generation,
        /// Generation of the verifying (server) side.
        server: Generation,
    },
    /// The signature does not have the exact size of its scheme.
    #[error("the proof signature must be exactly {expected} bytes, got {actual}")]
    SignatureLength {
        /// Required size (128 for RSA-1024, 64 for ed25519).
        expected: usize,
        /// Size received.
        actual: usize,
    },
    /// Protocol 1: the public key field exceeds 150 bytes (§7.1 step 3).
    #[error("the proof's public key is {len} bytes, more than the 150 allowed")]
    PublicKeyTooLong {
        /// Size received.
        len: usize,
    },
    /// Protocol 1: the public key is not DER PKCS#1 `RSAPublicKey`.
    #[error("the proof's public key is not a DER PKCS#1 RSA public key")]
    MalformedPublicKey,
    /// Protocol 1: the RSA key is not exactly 1024 bits (§7.1 step 5).
    #[error("the proof's RSA key has {bits} bits; protocol 1 requires exactly 1024")]
    KeyNotRsa1024 {
        /// Modulus size received.
        bits: usize,
    },
    /// Protocol 3: the claimed service id is not a valid, canonical v3 id.
    #[error("the proof's service id is invalid")]
    InvalidServiceId(#[source] ServiceIdError),
    /// Our own key failed to sign (cannot happen with a valid key).
    #[error("could not sign the authentication proof")]
    SigningFailed,
    /// The signature does not verify for the claimed identity.
    #[error("the proof's signature does not verify")]
    BadSignature,
}

/// Shows an error with all of its causes on one line, `: `-separated, the
/// way `anyhow` shows `{:#}`. Every error of these crates keeps its cause
/// out of its own message and returns it as `source()`, so printing only
/// `{}` shows the outermost step; logs and user interfaces print this.
///
/// ```
/// use ricochet_identity::ErrorChain;
///
/// let error = std::io::Error::other("the cause");
/// assert_eq!(ErrorChain(&error).to_string(), "the cause");
/// ```
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl std::fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

//! Client-authorization keys of v3 onion services (x25519; "restricted
//! discovery" in arti): a service encrypts its descriptor to the public
//! keys of the clients it authorises, and only a client holding one of the
//! matching secret keys can find it. To everyone else the service looks
//! offline.
//!
//! Tor writes these keys in three encodings, all of the same 32 bytes:
//!
//! | where | form |
//! |---|---|
//! | a service's authorised clients (`ADD_ONION … ClientAuthV3=`, `.auth` files) | public key, unpadded base32 (52 characters), optionally after `descriptor:x25519:` |
//! | a client's credential on the control port (`ONION_CLIENT_AUTH_ADD`) | `x25519:` and the secret key in base64 |
//! | a client's `.auth_private` file | `<onion>:descriptor:x25519:` and the secret key in base32 |
//!
//! Any 32 random bytes are a secret key: Tor and arti clamp it when they
//! use it, and so does [`ClientAuthSecretKey::public_key`].

use std::fmt;

use base64::Engine as _;
use curve25519_dalek::montgomery::MontgomeryPoint;
use rand::TryRng as _;
use zeroize::Zeroizing;

use crate::KeyError;

/// Length of both halves of a client-authorization key.
pub const CLIENT_AUTH_KEY_LEN: usize = 32;

/// The prefix of a public key in an `.auth` file or arti's configuration.
pub const DESCRIPTOR_X25519_PREFIX: &str = "descriptor:x25519:";

const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648Lower { padding: false };

/// The secret half of a client-authorization key: what a client holds to
/// reach one service. Wiped from memory when dropped; its `Debug` never
/// shows it.
#[derive(Clone)]
pub struct ClientAuthSecretKey(Zeroizing<[u8; CLIENT_AUTH_KEY_LEN]>);

impl ClientAuthSecretKey {
    /// A new key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0; CLIENT_AUTH_KEY_LEN]);
        rand::rngs::SysRng
            .try_fill_bytes(bytes.as_mut())
            .map_err(|e| KeyError::Randomness(Box::new(e)))?;
        Ok(Self(bytes))
    }

    /// The key of these 32 bytes (any 32 bytes are a key).
    pub fn from_bytes(bytes: [u8; CLIENT_AUTH_KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The 32 bytes, for a transport that hands them to Tor.
    pub fn as_bytes(&self) -> &[u8; CLIENT_AUTH_KEY_LEN] {
        &self.0
    }

    /// The public half, which the service authorises.
    pub fn public_key(&self) -> ClientAuthPublicKey {
        ClientAuthPublicKey(MontgomeryPoint::mul_base_clamped(*self.0).to_bytes())
    }

    /// `x25519:` and the key in base64, as tor's `ONION_CLIENT_AUTH_ADD`
    /// takes it.
    pub fn to_control_port_form(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::from("x25519:"));
        base64::engine::general_purpose::STANDARD.encode_string(self.0.as_ref(), &mut text);
        text
    }
}

impl fmt::Debug for ClientAuthSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ClientAuthSecretKey")
            .field(&"<redacted>")
            .finish()
    }
}

/// The public half of a client-authorization key: what a service lists to
/// authorise a client. Its `Display` is the bare base32 form that tor's
/// `ADD_ONION … ClientAuthV3=` takes; it parses from that or from
/// `descriptor:x25519:<base32>`, in either case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientAuthPublicKey([u8; CLIENT_AUTH_KEY_LEN]);

impl ClientAuthPublicKey {
    /// The key of these 32 bytes.
    pub fn from_bytes(bytes: [u8; CLIENT_AUTH_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; CLIENT_AUTH_KEY_LEN] {
        &self.0
    }
}

impl fmt::Display for ClientAuthPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32::encode(BASE32, &self.0))
    }
}

impl fmt::Debug for ClientAuthPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientAuthPublicKey({self})")
    }
}

/// Why a string is not a client-authorization public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a client-authorization key: expected 52 base32 characters, \
     optionally after `descriptor:x25519:`"
)]
#[non_exhaustive]
pub struct ClientAuthKeyError;

impl std::str::FromStr for ClientAuthPublicKey {
    type Err = ClientAuthKeyError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let trimmed = input.trim();
        let bare = trimmed
            .get(..DESCRIPTOR_X25519_PREFIX.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(DESCRIPTOR_X25519_PREFIX))
            .and_then(|_| trimmed.get(DESCRIPTOR_X25519_PREFIX.len()..))
            .unwrap_or(trimmed)
            .to_ascii_lowercase();
        if bare.len() != 52 {
            return Err(ClientAuthKeyError);
        }
        let bytes = base32::decode(BASE32, &bare).ok_or(ClientAuthKeyError)?;
        let bytes: [u8; CLIENT_AUTH_KEY_LEN] = bytes.try_into().map_err(|_| ClientAuthKeyError)?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod test {
    use super::*;

    /// RFC 7748 §6.1: Alice's secret key and public key.
    #[test]
    fn the_public_key_is_rfc_7748_x25519() {
        let secret: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let public = ClientAuthSecretKey::from_bytes(secret).public_key();
        assert_eq!(
            hex::encode(public.as_bytes()),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn encodings_round_trip() {
        let key = ClientAuthSecretKey::from_bytes([7; 32]);
        let public = key.public_key();
        let text = public.to_string();
        assert_eq!(text.len(), 52);
        assert_eq!(text, text.to_lowercase());
        assert_eq!(text.parse::<ClientAuthPublicKey>().unwrap(), public);
        let upper = format!("descriptor:x25519:{}", text.to_uppercase());
        assert_eq!(upper.parse::<ClientAuthPublicKey>().unwrap(), public);
        assert!(
            "descriptor:x25519:abc"
                .parse::<ClientAuthPublicKey>()
                .is_err()
        );
        assert!(format!("{text}=").parse::<ClientAuthPublicKey>().is_err());
        assert_eq!(
            key.to_control_port_form().as_str(),
            "x25519:BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="
        );
        assert!(!format!("{key:?}").contains("Bwc"));
    }
}

//! Identity keys of both generations, their file formats, and signing.
//!
//! Secret material lives only in types that zeroize it on drop
//! ([`zeroize::Zeroizing`], `ed25519_dalek::hazmat::ExpandedSecretKey`,
//! `rsa::PrivateKey`), and no `Debug` output contains it.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::VerifyingKey;
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use rand::TryRng as _;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _, EncodeRsaPublicKey as _};
use rsa::traits::PublicKeyParts as _;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest as _, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::{
    Generation, KeyError, RicochetId, ServiceId, V2ServiceId, V3ServiceId, write_new_secret_file,
    write_secret_file,
};

/// Prefix of Tor's `ADD_ONION` blob for v3 keys.
pub const ED25519_V3_BLOB_PREFIX: &str = "ED25519-V3:";
/// Prefix of Tor's `ADD_ONION` blob for v2 keys.
pub const RSA1024_BLOB_PREFIX: &str = "RSA1024:";
/// Modulus size of every v2 identity key.
pub const RSA_IDENTITY_BITS: usize = 1024;

/// 65537, big-endian without leading zeros.
const RSA_IDENTITY_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];
const PEM_RSA_PRIVATE_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----";
const SEED_LEN: usize = 32;
const EXPANDED_LEN: usize = 64;

/// How an identity key is written to a file (or read from one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyFormat {
    /// Tor's `ADD_ONION` key blob, one line of text: `ED25519-V3:` + base64 of
    /// the 64-byte expanded secret key, or `RSA1024:` + base64 of the PKCS#1
    /// DER private key. What Ricochet Refresh stores; works for both
    /// generations.
    TorKeyBlob,
    /// PEM `RSA PRIVATE KEY` (PKCS#1), what Ricochet 1.1 stored. v2 only.
    Pkcs1Pem,
    /// The raw 32-byte ed25519 seed. v3 only, and only for keys whose seed is
    /// known (generated here or loaded from a seed).
    Ed25519Seed,
}

impl fmt::Display for KeyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TorKeyBlob => "Tor key blob",
            Self::Pkcs1Pem => "PEM PKCS#1",
            Self::Ed25519Seed => "ed25519 seed",
        })
    }
}

/// Fills `buf` from the operating system's random number generator.
fn os_random(buf: &mut [u8]) -> Result<(), KeyError> {
    rand::rngs::SysRng
        .try_fill_bytes(buf)
        .map_err(|e| KeyError::Randomness(Box::new(e)))
}

/// `prefix` followed by the base64 of `secret`, plus room for one more
/// character (a newline when written to a file). The capacity is reserved up
/// front so that the string never reallocates and leaves copies of the secret
/// behind in freed memory.
fn tor_key_blob(prefix: &str, secret: &[u8]) -> Zeroizing<String> {
    let encoded_len = secret.len().div_ceil(3) * 4;
    let mut blob = Zeroizing::new(String::with_capacity(prefix.len() + encoded_len + 1));
    blob.push_str(prefix);
    BASE64.encode_string(secret, &mut blob);
    blob
}

fn decode_base64(text: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    BASE64
        .decode(text.trim())
        .map(Zeroizing::new)
        .map_err(|e| KeyError::Base64(Box::new(e)))
}

/// A v3 identity: an ed25519 key (protocol 3, Ricochet Refresh).
///
/// It can be created from a 32-byte seed (what we generate) or from the
/// 64-byte *expanded* secret key alone (what Tor and Ricochet Refresh store,
/// spec §7.2); both sign identically.
pub struct V3IdentityKey {
    /// Clamped SHA-512(seed), exactly as in Tor's key blob.
    expanded_bytes: Zeroizing<[u8; EXPANDED_LEN]>,
    /// The same key, ready for signing; zeroized on drop by ed25519-dalek.
    expanded: ExpandedSecretKey,
    seed: Option<Zeroizing<[u8; SEED_LEN]>>,
    public_key: VerifyingKey,
}

impl V3IdentityKey {
    /// Generates a new key from the operating system's randomness.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0; SEED_LEN]);
        os_random(seed.as_mut())?;
        Ok(Self::from_seed(&seed))
    }

    /// The key for a 32-byte ed25519 seed (RFC 8032 secret key).
    pub fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let mut expanded_bytes = Zeroizing::new([0; EXPANDED_LEN]);
        let mut hash = Sha512::digest(seed);
        for (dst, src) in expanded_bytes.iter_mut().zip(hash.iter()) {
            *dst = *src;
        }
        zeroize::Zeroize::zeroize(hash.as_mut_slice());
        clamp(&mut expanded_bytes);
        let mut key = Self::from_clamped_expanded(expanded_bytes);
        key.seed = Some(Zeroizing::new(*seed));
        key
    }

    /// The key for a 64-byte expanded secret key (clamped scalar ‖ hash
    /// prefix), as Tor keeps it.
    pub fn from_expanded(expanded: &[u8; EXPANDED_LEN]) -> Result<Self, KeyError> {
        let bytes = Zeroizing::new(*expanded);
        let mut clamped = bytes.clone();
        clamp(&mut clamped);
        if clamped != bytes {
            return Err(KeyError::UnclampedScalar);
        }
        Ok(Self::from_clamped_expanded(bytes))
    }

    fn from_clamped_expanded(expanded_bytes: Zeroizing<[u8; EXPANDED_LEN]>) -> Self {
        let expanded = ExpandedSecretKey::from_bytes(&expanded_bytes);
        let public_key = VerifyingKey::from(&expanded);
        Self {
            expanded_bytes,
            expanded,
            seed: None,
            public_key,
        }
    }

    /// Reads Tor's `ED25519-V3:<base64>` key blob.
    pub fn from_tor_key_blob(blob: &str) -> Result<Self, KeyError> {
        let encoded = blob
            .trim()
            .strip_prefix(ED25519_V3_BLOB_PREFIX)
            .ok_or(KeyError::UnrecognizedFormat)?;
        let raw = decode_base64(encoded)?;
        let expanded: &[u8; EXPANDED_LEN] = raw
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::ExpandedKeyLength { len: raw.len() })?;
        Self::from_expanded(expanded)
    }

    /// Tor's `ED25519-V3:<base64>` key blob for `ADD_ONION`.
    pub fn to_tor_key_blob(&self) -> Zeroizing<String> {
        tor_key_blob(ED25519_V3_BLOB_PREFIX, self.expanded_bytes.as_ref())
    }

    /// The 32-byte seed, if this key was generated here or loaded from a seed.
    pub fn seed(&self) -> Option<&[u8; SEED_LEN]> {
        self.seed.as_deref()
    }

    /// The 64-byte expanded secret key (clamped scalar ‖ hash prefix).
    pub fn expanded_secret_key(&self) -> &[u8; EXPANDED_LEN] {
        &self.expanded_bytes
    }

    /// The public key.
    pub const fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }

    /// The v3 onion service id of this key.
    pub fn service_id(&self) -> V3ServiceId {
        V3ServiceId::from_public_key(&self.public_key)
    }

    /// A plain RFC 8032 ed25519 signature over `message` (no prehash, no
    /// context), as the §7.2 proof requires.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        raw_sign::<Sha512>(&self.expanded, message, &self.public_key).to_bytes()
    }
}

/// Clamps the scalar half of an expanded ed25519 key (RFC 8032 §5.1.5).
fn clamp(expanded: &mut [u8; EXPANDED_LEN]) {
    expanded[0] &= 0b1111_1000;
    expanded[31] &= 0b0111_1111;
    expanded[31] |= 0b0100_0000;
}

impl fmt::Debug for V3IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V3IdentityKey")
            .field("service_id", &self.service_id())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A v2 identity: an RSA-1024 key with exponent 65537 (protocol 1, original
/// Ricochet).
pub struct V2IdentityKey {
    private_key: PrivateKey,
    public_key_der: Vec<u8>,
    service_id: V2ServiceId,
}

impl V2IdentityKey {
    /// Generates a new RSA-1024 key from the operating system's randomness.
    pub fn generate() -> Result<Self, KeyError> {
        let private_key = PrivateKey::new(&mut rand::rngs::SysRng, RSA_IDENTITY_BITS)
            .map_err(|e| KeyError::Randomness(Box::new(e)))?;
        Self::from_private_key(private_key)
    }

    fn from_private_key(private_key: PrivateKey) -> Result<Self, KeyError> {
        let bits = rsa_modulus_bits(&private_key.n_bytes());
        let exponent_ok = *private_key.e_bytes() == RSA_IDENTITY_EXPONENT;
        if bits != RSA_IDENTITY_BITS || !exponent_ok {
            return Err(KeyError::UnsupportedRsaKey { bits });
        }
        let public_key_der = private_key
            .to_public_key()
            .to_pkcs1_der()
            .map_err(|e| KeyError::Encoding(Box::new(e)))?
            .into_vec();
        let service_id = V2ServiceId::from_public_key_der(&public_key_der);
        Ok(Self {
            private_key,
            public_key_der,
            service_id,
        })
    }

    /// Reads a PKCS#1 DER `RSAPrivateKey`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let key =
            PrivateKey::from_pkcs1_der(der).map_err(|e| KeyError::MalformedRsaKey(Box::new(e)))?;
        Self::from_private_key(key)
    }

    /// Reads a PEM `-----BEGIN RSA PRIVATE KEY-----` (what Ricochet 1.1 stored).
    pub fn from_pkcs1_pem(pem: &str) -> Result<Self, KeyError> {
        let key = PrivateKey::from_pkcs1_pem(pem.trim())
            .map_err(|e| KeyError::MalformedRsaKey(Box::new(e)))?;
        Self::from_private_key(key)
    }

    /// Reads Tor's `RSA1024:<base64 of PKCS#1 DER>` key blob.
    pub fn from_tor_key_blob(blob: &str) -> Result<Self, KeyError> {
        let encoded = blob
            .trim()
            .strip_prefix(RSA1024_BLOB_PREFIX)
            .ok_or(KeyError::UnrecognizedFormat)?;
        Self::from_pkcs1_der(&decode_base64(encoded)?)
    }

    /// The private key as PKCS#1 DER.
    pub fn to_pkcs1_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = self
            .private_key
            .to_pkcs1_der()
            .map_err(|e| KeyError::Encoding(Box::new(e)))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The private key as PEM `RSA PRIVATE KEY` (LF line endings).
    pub fn to_pkcs1_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        self.private_key
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .map_err(|e| KeyError::Encoding(Box::new(e)))
    }

    /// Tor's `RSA1024:<base64>` key blob for `ADD_ONION` (tor < 0.4.6 only).
    pub fn to_tor_key_blob(&self) -> Result<Zeroizing<String>, KeyError> {
        Ok(tor_key_blob(RSA1024_BLOB_PREFIX, &self.to_pkcs1_der()?))
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER (140 bytes), the form
    /// sent in protocol 1 proofs (§7.1) and hashed into the service id.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_key_der
    }

    /// The v2 onion service id of this key.
    pub const fn service_id(&self) -> V2ServiceId {
        self.service_id
    }

    /// Signs a 32-byte SHA-256-sized value as OpenSSL's
    /// `RSA_sign(NID_sha256, value, 32)` does: PKCS#1 v1.5 with the SHA-256
    /// DigestInfo around `value` itself, not around a hash of it (§7.1).
    pub fn sign_digest(&self, value: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
        self.private_key
            .sign(Pkcs1v15Sign::new::<Sha256>(), value)
            .map_err(|e| KeyError::Encoding(Box::new(e)))
    }
}

impl fmt::Debug for V2IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("V2IdentityKey")
            .field("service_id", &self.service_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Bit length of a big-endian unsigned integer.
pub(crate) fn rsa_modulus_bits(be: &[u8]) -> usize {
    let mut significant = be.iter().skip_while(|&&byte| byte == 0);
    match significant.next() {
        None => 0,
        Some(&top) => significant.count() * 8 + (8 - top.leading_zeros() as usize),
    }
}

/// An identity key of either generation.
///
/// ```
/// use ricochet_identity::{Generation, IdentityKey};
///
/// let key = IdentityKey::generate(Generation::V3)?;
/// let blob = key.to_tor_key_blob()?;
/// let again = IdentityKey::from_tor_key_blob(&blob)?;
/// assert_eq!(again.service_id(), key.service_id());
/// println!("our id: {}", key.ricochet_id());
/// # Ok::<(), ricochet_identity::KeyError>(())
/// ```
#[derive(Debug)]
pub enum IdentityKey {
    /// An RSA-1024 key (protocol 1).
    V2(V2IdentityKey),
    /// An ed25519 key (protocol 3).
    V3(V3IdentityKey),
}

impl IdentityKey {
    /// Generates a new key of the given generation from OS randomness.
    /// New identities should be [`Generation::V3`]: today's Tor serves only v3.
    pub fn generate(generation: Generation) -> Result<Self, KeyError> {
        match generation {
            Generation::V2 => V2IdentityKey::generate().map(Self::V2),
            Generation::V3 => V3IdentityKey::generate().map(Self::V3),
        }
    }

    /// The generation of this key.
    pub const fn generation(&self) -> Generation {
        match self {
            Self::V2(_) => Generation::V2,
            Self::V3(_) => Generation::V3,
        }
    }

    /// Our onion service id.
    pub fn service_id(&self) -> ServiceId {
        match self {
            Self::V2(key) => ServiceId::V2(key.service_id()),
            Self::V3(key) => ServiceId::V3(key.service_id()),
        }
    }

    /// Our `ricochet:` contact id.
    pub fn ricochet_id(&self) -> RicochetId {
        RicochetId(self.service_id())
    }

    /// Reads a Tor `ADD_ONION` key blob of either generation.
    pub fn from_tor_key_blob(blob: &str) -> Result<Self, KeyError> {
        let blob = blob.trim();
        if blob.starts_with(ED25519_V3_BLOB_PREFIX) {
            V3IdentityKey::from_tor_key_blob(blob).map(Self::V3)
        } else if blob.starts_with(RSA1024_BLOB_PREFIX) {
            V2IdentityKey::from_tor_key_blob(blob).map(Self::V2)
        } else {
            Err(KeyError::UnrecognizedFormat)
        }
    }

    /// The Tor `ADD_ONION` key blob of this key.
    pub fn to_tor_key_blob(&self) -> Result<Zeroizing<String>, KeyError> {
        match self {
            Self::V2(key) => key.to_tor_key_blob(),
            Self::V3(key) => Ok(key.to_tor_key_blob()),
        }
    }

    /// Reads a key in any [`KeyFormat`], recognising the format from the
    /// content: a Tor key blob, a PEM `RSA PRIVATE KEY`, or exactly 32 bytes
    /// of ed25519 seed.
    pub fn decode(bytes: &[u8]) -> Result<Self, KeyError> {
        if let Ok(seed) = <&[u8; SEED_LEN]>::try_from(bytes) {
            return Ok(Self::V3(V3IdentityKey::from_seed(seed)));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| KeyError::UnrecognizedFormat)?;
        if text.trim_start().starts_with(PEM_RSA_PRIVATE_KEY) {
            V2IdentityKey::from_pkcs1_pem(text).map(Self::V2)
        } else {
            Self::from_tor_key_blob(text)
        }
    }

    /// Encodes the key in `format` (what [`IdentityKey::decode`] reads back).
    pub fn encode(&self, format: KeyFormat) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let mismatch = || KeyError::FormatMismatch {
            format,
            generation: self.generation(),
        };
        match (format, self) {
            (KeyFormat::TorKeyBlob, _) => {
                let mut blob = self.to_tor_key_blob()?;
                blob.push('\n'); // within the capacity reserved by `tor_key_blob`
                Ok(Zeroizing::new(blob.as_bytes().to_vec()))
            }
            (KeyFormat::Pkcs1Pem, Self::V2(key)) => {
                Ok(Zeroizing::new(key.to_pkcs1_pem()?.as_bytes().to_vec()))
            }
            (KeyFormat::Ed25519Seed, Self::V3(key)) => key
                .seed()
                .map(|seed| Zeroizing::new(seed.to_vec()))
                .ok_or(KeyError::SeedUnavailable),
            (KeyFormat::Pkcs1Pem, Self::V3(_)) | (KeyFormat::Ed25519Seed, Self::V2(_)) => {
                Err(mismatch())
            }
        }
    }

    /// Reads a key file in any [`KeyFormat`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map(Zeroizing::new)
            .map_err(|source| KeyError::Io {
                path: path.to_owned(),
                source,
            })?;
        Self::decode(&bytes)
    }

    /// Writes the key to `path` in `format`, atomically and with mode 0600
    /// (see [`write_secret_file`]). An existing file is replaced.
    pub fn save(&self, path: impl AsRef<Path>, format: KeyFormat) -> Result<(), KeyError> {
        let path = path.as_ref();
        let bytes = self.encode(format)?;
        write_secret_file(path, &bytes).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Like [`IdentityKey::save`], but never replaces a file: if `path`
    /// exists, it fails with [`KeyError::Exists`] and the file stays as it
    /// was. Checking and writing are one step (see
    /// [`crate::write_new_secret_file`]), so there is no window in which
    /// another process's key could be overwritten.
    pub fn save_new(&self, path: impl AsRef<Path>, format: KeyFormat) -> Result<(), KeyError> {
        let path = path.as_ref();
        let bytes = self.encode(format)?;
        write_new_secret_file(path, &bytes).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::Exists {
                    path: path.to_owned(),
                }
            } else {
                KeyError::Io {
                    path: path.to_owned(),
                    source,
                }
            }
        })
    }
}

impl From<V2IdentityKey> for IdentityKey {
    fn from(key: V2IdentityKey) -> Self {
        Self::V2(key)
    }
}

impl From<V3IdentityKey> for IdentityKey {
    fn from(key: V3IdentityKey) -> Self {
        Self::V3(key)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn modulus_bits() {
        assert_eq!(rsa_modulus_bits(&[]), 0);
        assert_eq!(rsa_modulus_bits(&[0, 0]), 0);
        assert_eq!(rsa_modulus_bits(&[1]), 1);
        assert_eq!(rsa_modulus_bits(&[0, 0x80, 0]), 16);
        assert_eq!(rsa_modulus_bits(&[0xff; 128]), 1024);
    }

    #[test]
    fn blob_capacity_fits_the_newline() {
        let key = V3IdentityKey::from_seed(&[3; 32]);
        let blob = key.to_tor_key_blob();
        assert_eq!(blob.len(), ED25519_V3_BLOB_PREFIX.len() + 88);
        assert!(
            blob.capacity() > blob.len(),
            "room for the newline without reallocating"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let key = V3IdentityKey::from_seed(&[7; 32]);
        let debug = format!("{:?}", IdentityKey::V3(key));
        assert!(debug.contains("<redacted>"));
        assert!(!debug.contains("0707"));
        assert!(!debug.contains("[7, 7"));
    }

    #[test]
    fn unclamped_expanded_key_is_rejected() {
        let mut expanded = *V3IdentityKey::from_seed(&[1; 32]).expanded_secret_key();
        expanded[0] |= 1;
        assert!(matches!(
            V3IdentityKey::from_expanded(&expanded),
            Err(KeyError::UnclampedScalar)
        ));
    }
}

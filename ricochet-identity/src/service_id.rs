//! Onion service ids of both generations and the `ricochet:` contact id.
//!
//! * v2 (spec §11.1): `base32(SHA-1(PKCS#1 DER public key)[0..10])`, 16 characters.
//! * v3 (spec §11.2): `base32(pub ‖ SHA3-256(".onion checksum" ‖ pub ‖ 03)[0..2] ‖ 03)`,
//!   56 characters.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::VerifyingKey;
use sha1::{Digest as _, Sha1};
use sha3::Sha3_256;

use crate::ServiceIdError;

/// Length of a v2 service id in characters.
pub const V2_SERVICE_ID_LEN: usize = 16;
/// Length of a v3 service id in characters.
pub const V3_SERVICE_ID_LEN: usize = 56;

/// The prefix of a Ricochet contact id.
pub const RICOCHET_PREFIX: &str = "ricochet:";
/// The pre-2014 prefix of v2 contact ids, still accepted when parsing (§11.1).
pub const TORSION_PREFIX: &str = "torsion:";

const ONION_SUFFIX: &str = ".onion";
const V3_CHECKSUM_PREFIX: &[u8] = b".onion checksum";
const V3_VERSION: u8 = 3;
const V2_DIGEST_LEN: usize = 10;
const V3_RAW_LEN: usize = 35;

const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648Lower { padding: false };

/// The two identity generations. A contact's id decides which one is spoken.
///
/// The set is closed: these are the two generations Ricochet has had (version
/// 0 of the protocol used v2 ids too and is obsolete, spec §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Generation {
    /// RSA-1024 keys, 16-character v2 onion ids, wire protocol version 1
    /// (original Ricochet 1.1).
    V2,
    /// ed25519 keys, 56-character v3 onion ids, wire protocol version 3
    /// (Ricochet Refresh). The default for new identities.
    V3,
}

impl Generation {
    /// The protocol version byte spoken by this generation (§1): 1 for v2, 3 for v3.
    pub const fn protocol_version(self) -> u8 {
        match self {
            Self::V2 => 1,
            Self::V3 => 3,
        }
    }

    /// The generation that speaks the given protocol version byte, if any.
    pub const fn from_protocol_version(version: u8) -> Option<Self> {
        match version {
            1 => Some(Self::V2),
            3 => Some(Self::V3),
            _ => None,
        }
    }

    /// Length of this generation's service ids in characters.
    pub const fn service_id_len(self) -> usize {
        match self {
            Self::V2 => V2_SERVICE_ID_LEN,
            Self::V3 => V3_SERVICE_ID_LEN,
        }
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V2 => "v2 (RSA-1024, protocol 1)",
            Self::V3 => "v3 (ed25519, protocol 3)",
        })
    }
}

/// A v2 onion service id: the first 10 bytes of the SHA-1 of the PKCS#1 DER
/// encoding of an RSA-1024 public key (spec §11.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct V2ServiceId {
    digest_prefix: [u8; V2_DIGEST_LEN],
}

impl V2ServiceId {
    /// The id of a public key given as PKCS#1 `RSAPublicKey` DER.
    ///
    /// This does not check the key; see [`crate::verify_v1_proof`] for the
    /// checks applied to a peer's key.
    pub fn from_public_key_der(der: &[u8]) -> Self {
        let digest = Sha1::digest(der);
        let mut digest_prefix = [0; V2_DIGEST_LEN];
        for (dst, src) in digest_prefix.iter_mut().zip(digest.iter()) {
            *dst = *src;
        }
        Self { digest_prefix }
    }

    /// The id from its 10 raw bytes (the decoded base32).
    pub const fn from_bytes(digest_prefix: [u8; V2_DIGEST_LEN]) -> Self {
        Self { digest_prefix }
    }

    /// The 10 raw bytes of the id.
    pub const fn as_bytes(&self) -> &[u8; V2_DIGEST_LEN] {
        &self.digest_prefix
    }

    /// Strict parse of the bare, lowercase 16-character id, as it appears in
    /// protocol messages: no white space, prefix, suffix or upper case.
    pub fn from_canonical(id: &str) -> Result<Self, ServiceIdError> {
        match ServiceId::from_canonical(id)? {
            ServiceId::V2(id) => Ok(id),
            other => Err(wrong_generation(Generation::V2, &other)),
        }
    }

    fn decode(id: &str) -> Result<Self, ServiceIdError> {
        let raw = base32::decode(BASE32, id).ok_or(ServiceIdError::BadLength { len: id.len() })?;
        let digest_prefix = raw
            .try_into()
            .map_err(|_| ServiceIdError::BadLength { len: id.len() })?;
        Ok(Self { digest_prefix })
    }
}

/// A v3 onion service id: an ed25519 public key with checksum and version
/// (spec §11.2). Holding one means the key is a valid curve point: that is
/// checked when the id is made.
///
/// Only the key's 32 bytes are kept, not the decompressed point (192 more
/// bytes): ids travel by value through every message's bookkeeping, and the
/// point is needed only to verify an authentication proof.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct V3ServiceId {
    public_key: [u8; 32],
}

impl V3ServiceId {
    /// The id of an ed25519 public key.
    pub fn from_public_key(public_key: &VerifyingKey) -> Self {
        Self {
            public_key: public_key.to_bytes(),
        }
    }

    /// The ed25519 public key this id names, compressed (RFC 8032 §5.1.2).
    /// It is a valid curve point: `VerifyingKey::from_bytes` accepts it.
    pub const fn public_key_bytes(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// [`V3ServiceId::from_canonical`], also giving the decompressed key
    /// that checking the id produced, so that verifying a proof does not
    /// decompress it again.
    pub(crate) fn from_canonical_with_key(
        id: &str,
    ) -> Result<(Self, VerifyingKey), ServiceIdError> {
        if id.len() != V3_SERVICE_ID_LEN || !is_canonical(id) {
            // The same error as `from_canonical` gives.
            return Err(match ServiceId::from_canonical(id) {
                Ok(other) => wrong_generation(Generation::V3, &other),
                Err(error) => error,
            });
        }
        let key = Self::decode_key(id)?;
        Ok((Self::from_public_key(&key), key))
    }

    /// Strict parse of the bare, lowercase 56-character id, as it appears in
    /// protocol messages (§7.2: "be strict: require exactly 56 characters").
    pub fn from_canonical(id: &str) -> Result<Self, ServiceIdError> {
        match ServiceId::from_canonical(id)? {
            ServiceId::V3(id) => Ok(id),
            other => Err(wrong_generation(Generation::V3, &other)),
        }
    }

    fn checksum(public_key: &[u8; 32]) -> [u8; 2] {
        let digest = Sha3_256::new()
            .chain_update(V3_CHECKSUM_PREFIX)
            .chain_update(public_key)
            .chain_update([V3_VERSION])
            .finalize();
        let mut checksum = [0; 2];
        for (dst, src) in checksum.iter_mut().zip(digest.iter()) {
            *dst = *src;
        }
        checksum
    }

    fn raw(&self) -> [u8; V3_RAW_LEN] {
        let key = &self.public_key;
        let checksum = Self::checksum(key);
        let mut raw = [0; V3_RAW_LEN];
        for (dst, src) in raw
            .iter_mut()
            .zip(key.iter().chain(checksum.iter()).chain([V3_VERSION].iter()))
        {
            *dst = *src;
        }
        raw
    }

    fn decode(id: &str) -> Result<Self, ServiceIdError> {
        Self::decode_key(id).map(|key| Self::from_public_key(&key))
    }

    fn decode_key(id: &str) -> Result<VerifyingKey, ServiceIdError> {
        let raw: [u8; V3_RAW_LEN] = base32::decode(BASE32, id)
            .and_then(|raw| raw.try_into().ok())
            .ok_or(ServiceIdError::BadLength { len: id.len() })?;
        let [key @ .., c0, c1, version] = raw;
        if version != V3_VERSION {
            return Err(ServiceIdError::BadVersion { version });
        }
        if Self::checksum(&key) != [c0, c1] {
            return Err(ServiceIdError::BadChecksum);
        }
        VerifyingKey::from_bytes(&key).map_err(|_| ServiceIdError::InvalidPublicKey)
    }
}

/// An onion service id of either generation; the identity of a Ricochet user.
///
/// Parsing (`str::parse`) is lenient in the way users paste ids: it accepts
/// surrounding white space, upper case, a `ricochet:` prefix (or the legacy
/// `torsion:` for v2) and a `.onion` suffix. Printing gives the bare
/// lowercase id, as used in protocol messages; [`RicochetId`] prints the
/// `ricochet:` form.
///
/// ```
/// use ricochet_identity::{Generation, ServiceId};
///
/// let id: ServiceId = " RICOCHET:25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid\n"
///     .parse()?;
/// assert_eq!(id.generation(), Generation::V3);
/// assert_eq!(id.to_string(), "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkenl5sid");
/// assert_eq!(id.onion_hostname(), format!("{id}.onion"));
/// # Ok::<(), ricochet_identity::ServiceIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceId {
    /// A 16-character v2 id (RSA-1024, protocol 1).
    V2(V2ServiceId),
    /// A 56-character v3 id (ed25519, protocol 3).
    V3(V3ServiceId),
}

impl ServiceId {
    /// The generation of this id, which decides the protocol version.
    pub const fn generation(&self) -> Generation {
        match self {
            Self::V2(_) => Generation::V2,
            Self::V3(_) => Generation::V3,
        }
    }

    /// The onion hostname: the id followed by `.onion`.
    pub fn onion_hostname(&self) -> String {
        format!("{self}{ONION_SUFFIX}")
    }

    /// The `ricochet:` contact id of this service id.
    pub const fn ricochet_id(&self) -> RicochetId {
        RicochetId(*self)
    }

    /// Strict parse of a bare, lowercase id of either generation, as it
    /// appears in protocol messages.
    pub fn from_canonical(id: &str) -> Result<Self, ServiceIdError> {
        if !is_canonical(id) {
            return Err(ServiceIdError::NotCanonical);
        }
        Self::parse_bare(id)
    }

    /// Parses the id part (no prefix, no suffix, already lowercase).
    fn parse_bare(id: &str) -> Result<Self, ServiceIdError> {
        let len = id.chars().count();
        if len == 0 {
            return Err(ServiceIdError::Empty);
        }
        // Characters first: a stray character says more than the length it
        // leads to.
        if let Some((index, character)) = id
            .chars()
            .enumerate()
            .find(|(_, c)| !matches!(c, 'a'..='z' | '2'..='7'))
        {
            return Err(ServiceIdError::BadCharacter {
                character,
                position: index + 1,
            });
        }
        if len != V2_SERVICE_ID_LEN && len != V3_SERVICE_ID_LEN {
            return Err(ServiceIdError::BadLength { len });
        }
        if len == V2_SERVICE_ID_LEN {
            V2ServiceId::decode(id).map(Self::V2)
        } else {
            V3ServiceId::decode(id).map(Self::V3)
        }
    }
}

/// Only the characters of a bare lowercase id (§7.2: "be strict").
fn is_canonical(id: &str) -> bool {
    id.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'))
}

fn wrong_generation(expected: Generation, found: &ServiceId) -> ServiceIdError {
    ServiceIdError::WrongGeneration {
        expected,
        found: found.generation(),
    }
}

impl FromStr for ServiceId {
    type Err = ServiceIdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let lower = input.trim().to_ascii_lowercase();
        if lower.contains("://") || lower.contains('/') {
            return Err(ServiceIdError::LooksLikeUrl);
        }
        let (torsion, rest) = if let Some(rest) = lower.strip_prefix(RICOCHET_PREFIX) {
            (false, rest.trim_start())
        } else if let Some(rest) = lower.strip_prefix(TORSION_PREFIX) {
            (true, rest.trim_start())
        } else {
            (false, lower.as_str())
        };
        let bare = rest.strip_suffix(ONION_SUFFIX).unwrap_or(rest);
        let id = Self::parse_bare(bare)?;
        if torsion && id.generation() != Generation::V2 {
            return Err(ServiceIdError::TorsionPrefixOnV3);
        }
        Ok(id)
    }
}

impl FromStr for V2ServiceId {
    type Err = ServiceIdError;

    /// Lenient parse, as for [`ServiceId`], that also requires a v2 id.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input.parse()? {
            ServiceId::V2(id) => Ok(id),
            other => Err(wrong_generation(Generation::V2, &other)),
        }
    }
}

impl FromStr for V3ServiceId {
    type Err = ServiceIdError;

    /// Lenient parse, as for [`ServiceId`], that also requires a v3 id.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        match input.parse()? {
            ServiceId::V3(id) => Ok(id),
            other => Err(wrong_generation(Generation::V3, &other)),
        }
    }
}

impl fmt::Display for V2ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32::encode(BASE32, &self.digest_prefix))
    }
}

impl fmt::Display for V3ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base32::encode(BASE32, &self.raw()))
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V2(id) => id.fmt(f),
            Self::V3(id) => id.fmt(f),
        }
    }
}

impl fmt::Debug for V2ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "V2ServiceId({self})")
    }
}

impl fmt::Debug for V3ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "V3ServiceId({self})")
    }
}

impl fmt::Debug for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V2(id) => id.fmt(f),
            Self::V3(id) => id.fmt(f),
        }
    }
}

impl From<V2ServiceId> for ServiceId {
    fn from(id: V2ServiceId) -> Self {
        Self::V2(id)
    }
}

impl From<V3ServiceId> for ServiceId {
    fn from(id: V3ServiceId) -> Self {
        Self::V3(id)
    }
}

/// A Ricochet contact id: a [`ServiceId`] that prints as `ricochet:<id>`.
///
/// It parses exactly like [`ServiceId`] (the prefix is optional on input).
///
/// ```
/// use ricochet_identity::RicochetId;
///
/// let id: RicochetId = "torsion:MI5B77EU3D4O3TK6.onion".parse()?;
/// assert_eq!(id.to_string(), "ricochet:mi5b77eu3d4o3tk6");
/// # Ok::<(), ricochet_identity::ServiceIdError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RicochetId(pub ServiceId);

impl RicochetId {
    /// The service id inside.
    pub const fn service_id(&self) -> &ServiceId {
        &self.0
    }

    /// The generation of this id, which decides the protocol version.
    pub const fn generation(&self) -> Generation {
        self.0.generation()
    }
}

impl FromStr for RicochetId {
    type Err = ServiceIdError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        input.parse().map(Self)
    }
}

impl fmt::Display for RicochetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{RICOCHET_PREFIX}{}", self.0)
    }
}

impl fmt::Debug for RicochetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RicochetId({self})")
    }
}

impl From<ServiceId> for RicochetId {
    fn from(id: ServiceId) -> Self {
        Self(id)
    }
}

impl From<RicochetId> for ServiceId {
    fn from(id: RicochetId) -> Self {
        id.0
    }
}

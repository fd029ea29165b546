#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(clippy::indexing_slicing)]

mod client_auth;
mod error;
mod keys;
mod proof;
mod secret_file;
mod service_id;

pub use client_auth::{
    CLIENT_AUTH_KEY_LEN, ClientAuthKeyError, ClientAuthPublicKey, ClientAuthSecretKey,
    DESCRIPTOR_X25519_PREFIX,
};
pub use error::{ErrorChain, KeyError, ProofError, ServiceIdError};
pub use keys::{
    ED25519_V3_BLOB_PREFIX, IdentityKey, KeyFormat, RSA_IDENTITY_BITS, RSA1024_BLOB_PREFIX,
    V2IdentityKey, V3IdentityKey,
};
pub use proof::{
    AUTH_COOKIE_LEN, AuthCookies, AuthProof, V1_MAX_PUBLIC_KEY_LEN, V1_SIGNATURE_LEN,
    V3_SIGNATURE_LEN, proof_hmac, verify_v1_proof, verify_v3_proof,
};
pub use secret_file::{write_new_secret_file, write_secret_file};
pub use service_id::{
    Generation, RICOCHET_PREFIX, RicochetId, ServiceId, TORSION_PREFIX, V2_SERVICE_ID_LEN,
    V2ServiceId, V3_SERVICE_ID_LEN, V3ServiceId,
};

/// The ed25519 public key type used by v3 identities (re-exported from
/// `ed25519-dalek`).
pub use ed25519_dalek::VerifyingKey as Ed25519PublicKey;

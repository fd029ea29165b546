//! The authentication proof of channel `im.ricochet.auth.hidden-service`
//! (spec §7), for both generations, as pure functions.
//!
//! ```text
//! key   = client_cookie(16) ‖ server_cookie(16)
//! msg   = client_service_id ‖ server_service_id        (bare lowercase ASCII)
//! proof = HMAC-SHA256(key, msg)
//! v1: RSASSA-PKCS1-v1_5 with SHA-256 DigestInfo around `proof` itself (§7.1)
//! v3: plain ed25519 over `proof` (§7.2)
//! ```
//!
//! The client proves; the server verifies against its *own* service id, so a
//! proof made for another server never verifies.

use ed25519_dalek::Signature;
use hmac::{Hmac, KeyInit, Mac as _};
use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs1::der::Decode as _;
use rsa::{Pkcs1v15Sign, PublicKey};
use sha2::Sha256;

use crate::keys::{RSA_IDENTITY_BITS, rsa_modulus_bits};
use crate::{
    Generation, IdentityKey, ProofError, ServiceId, V2IdentityKey, V2ServiceId, V3IdentityKey,
    V3ServiceId,
};

/// Size of each authentication cookie (§7: "16 random bytes").
pub const AUTH_COOKIE_LEN: usize = 16;
/// Exact size of a protocol 1 (RSA-1024) proof signature (§7.1).
pub const V1_SIGNATURE_LEN: usize = 128;
/// Largest protocol 1 public key accepted (§7.1 step 3).
pub const V1_MAX_PUBLIC_KEY_LEN: usize = 150;
/// Exact size of a protocol 3 (ed25519) proof signature (§7.2).
pub const V3_SIGNATURE_LEN: usize = 64;

/// The two cookies of one authentication: the client's, sent in
/// `OpenChannel`, and the server's, returned in `ChannelResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthCookies {
    /// The client's 16 random bytes.
    pub client: [u8; AUTH_COOKIE_LEN],
    /// The server's 16 random bytes.
    pub server: [u8; AUTH_COOKIE_LEN],
}

/// The value both sides sign or check: `HMAC-SHA256(client_cookie ‖
/// server_cookie, client_id ‖ server_id)`.
///
/// Both ids must be of the same generation.
pub fn proof_hmac(
    cookies: &AuthCookies,
    client: &ServiceId,
    server: &ServiceId,
) -> Result<[u8; 32], ProofError> {
    if client.generation() != server.generation() {
        return Err(ProofError::GenerationMismatch {
            client: client.generation(),
            server: server.generation(),
        });
    }
    Ok(hmac_ids(
        cookies,
        client.to_string().as_bytes(),
        server.to_string().as_bytes(),
    ))
}

fn hmac_ids(cookies: &AuthCookies, client: &[u8], server: &[u8]) -> [u8; 32] {
    // HMAC pads keys shorter than the hash's 64-byte block with zeros, so the
    // 32-byte cookie key zero-extended to a full block is the same key; that
    // lets us use the infallible fixed-size constructor.
    let mut block_key = [0; 64];
    for (dst, src) in block_key
        .iter_mut()
        .zip(cookies.client.iter().chain(cookies.server.iter()))
    {
        *dst = *src;
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block_key.into());
    mac.update(client);
    mac.update(server);
    mac.finalize().into_bytes().into()
}

/// The contents of a `Proof` message, in the shape of its generation.
///
/// Received proofs are built from the wire fields as they are, unchecked;
/// [`AuthProof::verify`] applies every check of §7.1 / §7.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthProof {
    /// Protocol 1 (§7.1).
    V1 {
        /// Field 1: the client's PKCS#1 DER RSA public key.
        public_key: Vec<u8>,
        /// Field 2: the RSA signature.
        signature: Vec<u8>,
    },
    /// Protocol 3 (§7.2).
    V3 {
        /// Field 1: the ed25519 signature.
        signature: Vec<u8>,
        /// Field 2: the client's 56-character service id.
        service_id: String,
    },
}

impl AuthProof {
    /// The generation this proof belongs to.
    pub const fn generation(&self) -> Generation {
        match self {
            Self::V1 { .. } => Generation::V2,
            Self::V3 { .. } => Generation::V3,
        }
    }

    /// Checks the proof as the server `server`, returning the client's
    /// authenticated service id.
    pub fn verify(
        &self,
        cookies: &AuthCookies,
        server: &ServiceId,
    ) -> Result<ServiceId, ProofError> {
        match (self, server) {
            (
                Self::V1 {
                    public_key,
                    signature,
                },
                ServiceId::V2(server),
            ) => verify_v1_proof(public_key, signature, cookies, server).map(ServiceId::V2),
            (
                Self::V3 {
                    signature,
                    service_id,
                },
                ServiceId::V3(server),
            ) => verify_v3_proof(signature, service_id, cookies, server).map(ServiceId::V3),
            _ => Err(ProofError::GenerationMismatch {
                client: self.generation(),
                server: server.generation(),
            }),
        }
    }
}

impl IdentityKey {
    /// Builds our proof as the client of `server` (which must be of our
    /// generation).
    pub fn auth_proof(
        &self,
        cookies: &AuthCookies,
        server: &ServiceId,
    ) -> Result<AuthProof, ProofError> {
        match (self, server) {
            (Self::V2(key), ServiceId::V2(server)) => key.auth_proof(cookies, server),
            (Self::V3(key), ServiceId::V3(server)) => Ok(key.auth_proof(cookies, server)),
            _ => Err(ProofError::GenerationMismatch {
                client: self.generation(),
                server: server.generation(),
            }),
        }
    }
}

impl V2IdentityKey {
    /// Builds our protocol 1 proof as the client of `server` (§7.1).
    pub fn auth_proof(
        &self,
        cookies: &AuthCookies,
        server: &V2ServiceId,
    ) -> Result<AuthProof, ProofError> {
        let proof = hmac_ids(
            cookies,
            self.service_id().to_string().as_bytes(),
            server.to_string().as_bytes(),
        );
        let signature = self
            .sign_digest(&proof)
            .map_err(|_| ProofError::SigningFailed)?;
        Ok(AuthProof::V1 {
            public_key: self.public_key_der().to_vec(),
            signature,
        })
    }
}

impl V3IdentityKey {
    /// Builds our protocol 3 proof as the client of `server` (§7.2).
    pub fn auth_proof(&self, cookies: &AuthCookies, server: &V3ServiceId) -> AuthProof {
        let client = self.service_id().to_string();
        let proof = hmac_ids(cookies, client.as_bytes(), server.to_string().as_bytes());
        AuthProof::V3 {
            signature: self.sign(&proof).to_vec(),
            service_id: client,
        }
    }
}

/// Verifies a protocol 1 proof received by `server` (§7.1, steps 2–7),
/// returning the client's service id, derived from its public key.
pub fn verify_v1_proof(
    public_key: &[u8],
    signature: &[u8],
    cookies: &AuthCookies,
    server: &V2ServiceId,
) -> Result<V2ServiceId, ProofError> {
    if signature.len() != V1_SIGNATURE_LEN {
        return Err(ProofError::SignatureLength {
            expected: V1_SIGNATURE_LEN,
            actual: signature.len(),
        });
    }
    if public_key.len() > V1_MAX_PUBLIC_KEY_LEN {
        return Err(ProofError::PublicKeyTooLong {
            len: public_key.len(),
        });
    }
    let parsed = rsa::pkcs1::RsaPublicKeyRef::from_der(public_key)
        .map_err(|_| ProofError::MalformedPublicKey)?;
    let bits = rsa_modulus_bits(parsed.modulus.as_bytes());
    if bits != RSA_IDENTITY_BITS {
        return Err(ProofError::KeyNotRsa1024 { bits });
    }
    let key = PublicKey::try_from(parsed).map_err(|_| ProofError::MalformedPublicKey)?;
    // Like Ricochet 1.1, name the client by the re-encoded key it proved
    // possession of, not by whatever bytes it sent.
    let der = key
        .to_pkcs1_der()
        .map_err(|_| ProofError::MalformedPublicKey)?;
    let client = V2ServiceId::from_public_key_der(der.as_bytes());
    let proof = hmac_ids(
        cookies,
        client.to_string().as_bytes(),
        server.to_string().as_bytes(),
    );
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &proof, signature)
        .map_err(|_| ProofError::BadSignature)?;
    Ok(client)
}

/// Verifies a protocol 3 proof received by `server` (§7.2), returning the
/// client's service id. The claimed id must be exactly the canonical
/// 56-character form.
pub fn verify_v3_proof(
    signature: &[u8],
    service_id: &str,
    cookies: &AuthCookies,
    server: &V3ServiceId,
) -> Result<V3ServiceId, ProofError> {
    let signature: &[u8; V3_SIGNATURE_LEN] =
        signature
            .try_into()
            .map_err(|_| ProofError::SignatureLength {
                expected: V3_SIGNATURE_LEN,
                actual: signature.len(),
            })?;
    let (client, client_key) =
        V3ServiceId::from_canonical_with_key(service_id).map_err(ProofError::InvalidServiceId)?;
    let proof = hmac_ids(
        cookies,
        service_id.as_bytes(),
        server.to_string().as_bytes(),
    );
    client_key
        .verify_strict(&proof, &Signature::from_bytes(signature))
        .map_err(|_| ProofError::BadSignature)?;
    Ok(client)
}

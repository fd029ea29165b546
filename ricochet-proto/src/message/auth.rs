//! Channel `im.ricochet.auth.hidden-service` (spec §7). The proof's
//! cryptography lives in `ricochet-identity`; this is its wire form, which
//! differs between protocol 1 and 3 (§7.2: "field 1 changed meaning").

use bytes::Bytes;
use ricochet_identity::{AuthProof, Generation};

use super::{decode_pb, exactly_one, required};
use crate::{DecodeError, pb};

/// A packet on the auth channel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthMessage {
    /// Client → server: the proof, fields as received (checked by
    /// [`AuthProof::verify`]; missing fields are empty).
    Proof(AuthProof),
    /// Server → client: the verdict.
    Result(AuthResult),
}

/// `AuthHiddenService.Result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthResult {
    /// Whether the proof was accepted.
    pub accepted: bool,
    /// Whether the server already has the client as a contact; absent
    /// counts as false (§7).
    pub is_known_contact: Option<bool>,
}

impl AuthMessage {
    /// Decodes an auth-channel payload of the given generation.
    pub fn decode(payload: Bytes, generation: Generation) -> Result<Self, DecodeError> {
        let (proof, result) = match generation {
            Generation::V2 => {
                let packet: pb::AuthPacketV1 = decode_pb("AuthHiddenService.Packet", payload)?;
                exactly_one(
                    "AuthHiddenService.Packet",
                    &[packet.proof.is_some(), packet.result.is_some()],
                )?;
                let proof = packet.proof.map(|p| AuthProof::V1 {
                    public_key: p.public_key.unwrap_or_default(),
                    signature: p.signature.unwrap_or_default(),
                });
                (proof, packet.result)
            }
            Generation::V3 => {
                let packet: pb::AuthPacketV3 = decode_pb("AuthHiddenService.Packet", payload)?;
                exactly_one(
                    "AuthHiddenService.Packet",
                    &[packet.proof.is_some(), packet.result.is_some()],
                )?;
                let proof = packet.proof.map(|p| AuthProof::V3 {
                    signature: p.signature.unwrap_or_default(),
                    service_id: p.service_id.unwrap_or_default(),
                });
                (proof, packet.result)
            }
        };
        if let Some(proof) = proof {
            return Ok(Self::Proof(proof));
        }
        let result = required(result, "AuthHiddenService.Packet", "result")?;
        Ok(Self::Result(AuthResult {
            accepted: required(result.accepted, "Result", "accepted")?,
            is_known_contact: result.is_known_contact,
        }))
    }

    /// Encodes the packet; a proof is encoded in its own generation's form.
    pub fn encode(&self) -> Bytes {
        let result = |r: &AuthResult| pb::AuthResult {
            accepted: Some(r.accepted),
            is_known_contact: r.is_known_contact,
        };
        match self {
            Self::Proof(AuthProof::V1 {
                public_key,
                signature,
            }) => pb::encode(&pb::AuthPacketV1 {
                proof: Some(pb::AuthProofV1 {
                    public_key: Some(public_key.clone()),
                    signature: Some(signature.clone()),
                }),
                result: None,
            }),
            Self::Proof(AuthProof::V3 {
                signature,
                service_id,
            }) => pb::encode(&pb::AuthPacketV3 {
                proof: Some(pb::AuthProofV3 {
                    signature: Some(signature.clone()),
                    service_id: Some(service_id.clone()),
                }),
                result: None,
            }),
            Self::Result(r) => pb::encode(&pb::AuthPacketV3 {
                proof: None,
                result: Some(result(r)),
            }),
        }
    }
}

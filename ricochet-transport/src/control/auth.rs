//! Control-port authentication (control-spec §3.5, §3.24): the pure parts.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::reply::{Reply, keywords};

/// Size of tor's authentication cookie file.
pub(super) const COOKIE_LEN: usize = 32;

const SERVER_TO_CONTROLLER: &[u8] = b"Tor safe cookie authentication server-to-controller hash";
const CONTROLLER_TO_SERVER: &[u8] = b"Tor safe cookie authentication controller-to-server hash";

/// What `PROTOCOLINFO` says about authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct AuthInfo {
    /// `NULL`, `HASHEDPASSWORD`, `COOKIE`, `SAFECOOKIE`.
    pub(super) methods: Vec<String>,
    /// Where the cookie is, for the cookie methods.
    pub(super) cookie_file: Option<String>,
}

impl AuthInfo {
    /// Reads the `AUTH` line of a `PROTOCOLINFO` reply.
    pub(super) fn from_reply(reply: &Reply) -> Self {
        let mut info = Self::default();
        for line in &reply.lines {
            let Some(rest) = line.text.strip_prefix("AUTH ") else {
                continue;
            };
            for (key, value) in keywords(rest) {
                match key.as_str() {
                    "METHODS" => info.methods = value.split(',').map(str::to_owned).collect(),
                    "COOKIEFILE" => info.cookie_file = Some(value),
                    _ => {}
                }
            }
        }
        info
    }

    /// Whether tor offers `method`.
    pub(super) fn offers(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 32]> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
    for part in parts {
        mac.update(part);
    }
    Some(mac.finalize().into_bytes().into())
}

/// SAFECOOKIE: checks tor's `SERVERHASH` (proving it knows the cookie) and
/// returns the hash to send in `AUTHENTICATE`. `None` if tor's hash is wrong.
pub(super) fn safecookie_response(
    cookie: &[u8],
    client_nonce: &[u8],
    server_nonce: &[u8],
    server_hash: &[u8],
) -> Option<[u8; 32]> {
    let expected = hmac(SERVER_TO_CONTROLLER, &[cookie, client_nonce, server_nonce])?;
    let mut diff = u8::from(expected.len() != server_hash.len());
    for (a, b) in expected.iter().zip(server_hash) {
        diff |= a ^ b;
    }
    if diff != 0 {
        return None;
    }
    hmac(CONTROLLER_TO_SERVER, &[cookie, client_nonce, server_nonce])
}

/// `SERVERHASH` and `SERVERNONCE` of an `AUTHCHALLENGE` reply.
pub(super) fn auth_challenge(reply: &Reply) -> Option<(Vec<u8>, Vec<u8>)> {
    let text = reply.first_text().strip_prefix("AUTHCHALLENGE ")?;
    let words = keywords(text);
    let get = |name: &str| {
        words
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| hex::decode(v).ok())
    };
    Some((get("SERVERHASH")?, get("SERVERNONCE")?))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod test {
    use super::*;
    use crate::control::reply::ReplyParser;

    #[test]
    fn safecookie_round_trip() {
        let cookie = [7; COOKIE_LEN];
        let (client, server) = ([1; 32], [2; 32]);
        let server_hash = hmac(SERVER_TO_CONTROLLER, &[&cookie, &client, &server]).unwrap();
        let response = safecookie_response(&cookie, &client, &server, &server_hash).unwrap();
        assert_eq!(
            response,
            hmac(CONTROLLER_TO_SERVER, &[&cookie, &client, &server]).unwrap()
        );
        let mut wrong = server_hash;
        wrong[0] ^= 1;
        assert_eq!(safecookie_response(&cookie, &client, &server, &wrong), None);
    }

    #[test]
    fn challenge_and_protocolinfo() {
        let mut parser = ReplyParser::new();
        parser.push(b"250 AUTHCHALLENGE SERVERHASH=0A0B SERVERNONCE=0C0D\r\n250-PROTOCOLINFO 1\r\n250-AUTH METHODS=NULL\r\n250 OK\r\n");
        let challenge = parser.next_reply().unwrap().unwrap();
        assert_eq!(
            auth_challenge(&challenge),
            Some((vec![10, 11], vec![12, 13]))
        );
        let info = AuthInfo::from_reply(&parser.next_reply().unwrap().unwrap());
        assert!(info.offers("NULL"));
        assert_eq!(info.cookie_file, None);
    }
}

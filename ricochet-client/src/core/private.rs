//! Private mode (docs/private-mode.md): our contacts-only onion service,
//! the private services of our contacts, and the setting "not accepting
//! contact requests". It decides who is authorised on our private
//! service, what we tell each contact, where a dial goes, and which of
//! our services run. It knows nothing of connections; the core asks.

use std::collections::HashMap;

use ricochet_identity::{ClientAuthPublicKey, ClientAuthSecretKey, Generation, ServiceId};
use ricochet_proto::message::private_endpoint::PrivateEndpoint;
use sha3::{Digest as _, Sha3_256};
use zeroize::Zeroizing;

use super::book::Book;
use super::io::{Output, Route};

/// What private mode starts with.
#[derive(Clone)]
pub(crate) struct PrivateConfig {
    /// Our private service's address.
    pub(crate) address: ServiceId,
    /// What our client-authorization key for each contact is made from.
    pub(crate) client_auth_seed: Zeroizing<[u8; 32]>,
    /// Whether our public service runs.
    pub(crate) accepting_requests: bool,
}

impl std::fmt::Debug for PrivateConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateConfig")
            .field("address", &self.address)
            .field("accepting_requests", &self.accepting_requests)
            .finish_non_exhaustive()
    }
}

/// The state of private mode.
#[derive(Debug)]
pub(crate) struct Private {
    /// `None`: a profile without a v3 identity has no private mode.
    config: Option<PrivateConfig>,
    /// What each contact told us of its private service.
    endpoints: HashMap<ServiceId, PrivateEndpoint>,
    /// The services last asked of the driver.
    announced: Option<(bool, Vec<ClientAuthPublicKey>)>,
}

impl Private {
    pub(crate) fn new(
        config: Option<PrivateConfig>,
        endpoints: Vec<(ServiceId, PrivateEndpoint)>,
    ) -> Self {
        Self {
            config,
            endpoints: endpoints.into_iter().collect(),
            announced: None,
        }
    }

    /// Whether our public service runs (contact requests reach us).
    pub(crate) fn accepting_requests(&self) -> bool {
        self.config.as_ref().is_none_or(|c| c.accepting_requests)
    }

    pub(crate) fn set_accepting_requests(&mut self, accepting: bool) {
        if let Some(config) = &mut self.config {
            config.accepting_requests = accepting;
        }
    }

    /// Whether `contact` told us of its private service (and so holds a
    /// key to ours).
    pub(crate) fn knows(&self, contact: &ServiceId) -> bool {
        self.endpoints.contains_key(contact)
    }

    /// Keeps what `contact` told us; true if it is new or changed (to be
    /// stored).
    pub(crate) fn learn(&mut self, contact: ServiceId, endpoint: &PrivateEndpoint) -> bool {
        if self.endpoints.get(&contact) == Some(endpoint) {
            return false;
        }
        self.endpoints.insert(contact, endpoint.clone());
        true
    }

    /// Forgets `contact`'s private service (removed or blocked): its key
    /// leaves our authorised set.
    pub(crate) fn forget(&mut self, contact: &ServiceId) {
        self.endpoints.remove(contact);
    }

    /// Our private service's address.
    pub(crate) fn address(&self) -> Option<ServiceId> {
        self.config.as_ref().map(|c| c.address)
    }

    /// Whether `address` is our own private service.
    pub(crate) fn is_ours(&self, address: &ServiceId) -> bool {
        self.config.as_ref().is_some_and(|c| &c.address == address)
    }

    /// What we tell `contact`: our private address, and the public half of
    /// the key we reach its private service with.
    pub(crate) fn endpoint_for(&self, contact: &ServiceId) -> Option<PrivateEndpoint> {
        let config = self.config.as_ref()?;
        if contact.generation() != Generation::V3 {
            return None;
        }
        Some(PrivateEndpoint {
            private_address: config.address,
            client_auth_key: client_auth_key(&config.client_auth_seed, contact).public_key(),
            accepts_contact_requests: config.accepting_requests,
        })
    }

    /// Where a dial to `peer` goes: its private service first (with our
    /// key for it), then its public one while that may be published.
    pub(crate) fn route(&self, peer: &ServiceId) -> Route {
        let (Some(config), Some(endpoint)) = (&self.config, self.endpoints.get(peer)) else {
            return Route::public();
        };
        Route {
            private: Some((
                endpoint.private_address,
                client_auth_key(&config.client_auth_seed, peer),
            )),
            public: endpoint.accepts_contact_requests,
        }
    }

    /// The keys our private service admits: those of our contacts (not
    /// blocked, not asking) that told us theirs. Sorted, so that the same
    /// set compares equal.
    pub(crate) fn authorized(&self, book: &Book) -> Vec<ClientAuthPublicKey> {
        let mut keys: Vec<ClientAuthPublicKey> = self
            .endpoints
            .iter()
            .filter(|(id, _)| book.is_contact(id) && !book.is_blocked(id))
            .map(|(_, endpoint)| endpoint.client_auth_key)
            .collect();
        keys.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        keys.dedup();
        keys
    }

    /// The services we want, if that changed since we last said.
    pub(crate) fn services(&mut self, book: &Book) -> Option<Output> {
        let authorized = if self.config.is_some() {
            self.authorized(book)
        } else {
            Vec::new()
        };
        let wanted = (self.accepting_requests(), authorized);
        if self.announced.as_ref() == Some(&wanted) {
            return None;
        }
        self.announced = Some(wanted.clone());
        Some(Output::Services {
            public: wanted.0,
            authorized: wanted.1,
        })
    }
}

/// Our client-authorization key for `contact`'s private service, made
/// from the profile's seed: one key per contact (so contacts cannot link
/// us across their services), and nothing more to store or lose.
fn client_auth_key(seed: &[u8; 32], contact: &ServiceId) -> ClientAuthSecretKey {
    let mut hash = Sha3_256::new();
    hash.update(b"ricochet-rs private-endpoint client-auth v1\0");
    hash.update(seed);
    hash.update(contact.to_string().as_bytes());
    let mut bytes = Zeroizing::new([0; 32]);
    bytes.copy_from_slice(&hash.finalize());
    ClientAuthSecretKey::from_bytes(*bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::io::{ContactRow, ContactState, Snapshot};

    fn id(byte: u8) -> ServiceId {
        ricochet_identity::IdentityKey::V3(ricochet_identity::V3IdentityKey::from_seed(&[byte; 32]))
            .service_id()
    }

    fn config(accepting_requests: bool) -> PrivateConfig {
        PrivateConfig {
            address: id(100),
            client_auth_seed: Zeroizing::new([9; 32]),
            accepting_requests,
        }
    }

    fn endpoint(byte: u8, accepts_contact_requests: bool) -> PrivateEndpoint {
        PrivateEndpoint {
            private_address: id(byte + 50),
            client_auth_key: ClientAuthSecretKey::from_bytes([byte; 32]).public_key(),
            accepts_contact_requests,
        }
    }

    fn book(contacts: &[(ServiceId, ContactState)]) -> Book {
        let snapshot = Snapshot {
            contacts: contacts
                .iter()
                .map(|&(id, state)| ContactRow {
                    id,
                    nickname: id.to_string(),
                    state,
                    request_nickname: String::new(),
                    request_message: String::new(),
                    unanswered_requests: 0,
                })
                .collect(),
            ..Snapshot::default()
        };
        Book::new(vec![id(99)], snapshot)
    }

    #[test]
    fn routes_go_private_first_and_public_only_while_published() {
        let (a, b, c) = (id(1), id(2), id(3));
        let private = Private::new(
            Some(config(true)),
            vec![(a, endpoint(1, true)), (b, endpoint(2, false))],
        );
        let route = private.route(&a);
        assert_eq!(route.private.as_ref().map(|(at, _)| *at), Some(id(51)));
        assert!(route.public);
        let route = private.route(&b);
        assert!(route.private.is_some() && !route.public);
        let route = private.route(&c);
        assert!(route.private.is_none() && route.public);
        // The key of a route is the one whose public half we tell the
        // contact.
        let told = private.endpoint_for(&a).unwrap().client_auth_key;
        let (_, key) = private.route(&a).private.unwrap();
        assert_eq!(key.public_key(), told);
        assert!(private.endpoint_for(&a).unwrap().accepts_contact_requests);
    }

    #[test]
    fn only_contacts_are_authorised_and_changes_are_announced_once() {
        let (a, b, c) = (id(1), id(2), id(3));
        let mut private = Private::new(
            Some(config(true)),
            vec![
                (a, endpoint(1, true)),
                (b, endpoint(2, true)),
                (c, endpoint(3, true)),
            ],
        );
        let mut book = book(&[
            (a, ContactState::Contact),
            (b, ContactState::Rejected),
            (c, ContactState::Contact),
        ]);
        book.block(c);
        assert_eq!(
            private.authorized(&book),
            [endpoint(1, true).client_auth_key]
        );
        assert!(matches!(
            private.services(&book),
            Some(Output::Services { public: true, ref authorized }) if authorized.len() == 1
        ));
        assert!(private.services(&book).is_none(), "said already");
        private.set_accepting_requests(false);
        assert!(matches!(
            private.services(&book),
            Some(Output::Services { public: false, .. })
        ));
        private.forget(&a);
        assert!(matches!(
            private.services(&book),
            Some(Output::Services { ref authorized, .. }) if authorized.is_empty()
        ));
    }

    #[test]
    fn a_profile_without_private_mode_runs_the_public_service_only() {
        let a = id(1);
        let mut private = Private::new(None, vec![(a, endpoint(1, false))]);
        let book = book(&[(a, ContactState::Contact)]);
        assert!(private.endpoint_for(&a).is_none());
        assert!(private.route(&a).private.is_none() && private.route(&a).public);
        assert!(matches!(
            private.services(&book),
            Some(Output::Services { public: true, ref authorized }) if authorized.is_empty()
        ));
    }

    #[test]
    fn each_contact_gets_its_own_key_and_the_same_one_every_time() {
        let seed = [7; 32];
        let a = client_auth_key(&seed, &id(1)).public_key();
        let b = client_auth_key(&seed, &id(2)).public_key();
        assert_ne!(a, b);
        assert_eq!(a, client_auth_key(&seed, &id(1)).public_key());
        assert_ne!(a, client_auth_key(&[8; 32], &id(1)).public_key());
    }
}

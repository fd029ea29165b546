//! File transfers: which connection and contact each live transfer
//! belongs to, so that the user's answers and cancels reach it and its
//! progress reaches the user. The bytes themselves stay in the connection.

use std::collections::HashMap;

use ricochet_identity::ServiceId;

use super::io::ConnId;
use crate::model::TransferId;

#[derive(Debug, Default)]
pub(crate) struct Transfers {
    live: HashMap<TransferId, (ConnId, ServiceId)>,
}

impl Transfers {
    pub(crate) fn start(&mut self, transfer: TransferId, conn: ConnId, contact: ServiceId) {
        self.live.insert(transfer, (conn, contact));
    }

    /// The connection carrying `transfer`.
    pub(crate) fn conn(&self, transfer: TransferId) -> Option<ConnId> {
        self.live.get(&transfer).map(|&(conn, _)| conn)
    }

    /// The contact of `transfer`.
    pub(crate) fn contact(&self, transfer: TransferId) -> Option<ServiceId> {
        self.live.get(&transfer).map(|&(_, contact)| contact)
    }

    /// The transfer is over; its contact.
    pub(crate) fn end(&mut self, transfer: TransferId) -> Option<ServiceId> {
        self.live.remove(&transfer).map(|(_, contact)| contact)
    }
}

//! The statuses of the messages that one send call queued, shared by the
//! driver, which writes them, and the call's [`crate::MessageHandle`]s,
//! which read them and wait on them.
//!
//! One board per call rather than a `tokio::sync::watch` per message: a bot
//! queues a thousand messages per call, and a watch is an allocation of its
//! own plus eight wake-up lists to lock on every change and again when it
//! closes (a tenth of the sender's CPU time per message, issue 16).

use std::ops::Range;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::model::MessageStatus;

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct StatusBoard {
    state: Mutex<BoardState>,
    /// Woken when a message's status becomes final, and when the client
    /// is gone.
    changed: Notify,
}

#[derive(Debug)]
struct BoardState {
    /// Per message of the call, in the order queued.
    statuses: Vec<MessageStatus>,
    /// The client shut down: no status changes any more.
    client_gone: bool,
}

impl StatusBoard {
    /// A board of `len` messages, all queued.
    pub(crate) fn new(len: usize) -> Self {
        Self {
            state: Mutex::new(BoardState {
                statuses: vec![MessageStatus::Queued; len],
                client_gone: false,
            }),
            changed: Notify::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, BoardState> {
        // Nothing panics while holding the lock; if something did, the
        // statuses are still whole values.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Message `index` of the call has a new status.
    pub(crate) fn set(&self, index: usize, status: MessageStatus) {
        // Waiters wait for final statuses only: a message is queued, sent
        // and acknowledged, and only the last of the three wakes them.
        let wake = status.is_final();
        if let Some(slot) = self.state().statuses.get_mut(index) {
            *slot = status;
        }
        if wake {
            self.changed.notify_waiters();
        }
    }

    /// The client shut down: waiting ends with the statuses as they are.
    pub(crate) fn client_gone(&self) {
        self.state().client_gone = true;
        self.changed.notify_waiters();
    }

    /// The status of messages `parts` taken together: failed if any
    /// failed, else the least advanced one's.
    pub(crate) fn status(&self, parts: Range<usize>) -> MessageStatus {
        let state = self.state();
        let mut overall = MessageStatus::Acknowledged;
        for status in state.statuses.get(parts).unwrap_or_default() {
            match (&overall, status) {
                (MessageStatus::Failed(_), _) => {}
                (_, MessageStatus::Failed(_)) => overall = status.clone(),
                (_, MessageStatus::Queued) => overall = MessageStatus::Queued,
                (MessageStatus::Acknowledged, MessageStatus::Sent) => overall = MessageStatus::Sent,
                _ => {}
            }
        }
        overall
    }

    /// Waits until every message of `parts` has a final status, or the
    /// client is gone.
    pub(crate) async fn wait_final(&self, parts: Range<usize>) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so that no change is missed.
            changed.as_mut().enable();
            {
                let state = self.state();
                let statuses = state.statuses.get(parts.clone()).unwrap_or_default();
                if state.client_gone || statuses.iter().all(MessageStatus::is_final) {
                    return;
                }
            }
            changed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::FailureReason;

    #[tokio::test]
    async fn waits_for_its_own_parts_only() {
        let board = Arc::new(StatusBoard::new(3));
        assert_eq!(board.status(0..2), MessageStatus::Queued);
        board.set(0, MessageStatus::Acknowledged);
        board.set(1, MessageStatus::Sent);
        assert_eq!(board.status(0..2), MessageStatus::Sent);

        let waiting = tokio::spawn({
            let board = board.clone();
            async move {
                board.wait_final(0..2).await;
                board.status(0..2)
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        board.set(1, MessageStatus::Failed(FailureReason::RefusedByPeer));
        assert_eq!(
            waiting.await.unwrap(),
            MessageStatus::Failed(FailureReason::RefusedByPeer)
        );
        // The third message is another text's, still queued.
        assert_eq!(board.status(2..3), MessageStatus::Queued);
    }

    #[tokio::test]
    async fn waiting_ends_when_the_client_is_gone() {
        let board = Arc::new(StatusBoard::new(1));
        let waiting = tokio::spawn({
            let board = board.clone();
            async move { board.wait_final(0..1).await }
        });
        tokio::task::yield_now().await;
        board.client_gone();
        waiting.await.unwrap();
        assert_eq!(board.status(0..1), MessageStatus::Queued);
    }
}

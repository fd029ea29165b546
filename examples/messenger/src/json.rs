//! The line mode's output: one JSON object per line.

use std::time::SystemTime;

use ricochet_client::{ErrorChain, Event, FileDirection, MessageStatus, TransferOutcome};
use serde_json::{Value, json};

use crate::app::status_word;

/// Seconds since the Unix epoch.
pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A word for a message status.
pub fn message_status(status: &MessageStatus) -> String {
    match status {
        MessageStatus::Queued => "queued".to_owned(),
        MessageStatus::Sent => "sent".to_owned(),
        MessageStatus::Acknowledged => "acknowledged".to_owned(),
        MessageStatus::Failed(_) => "failed".to_owned(),
        _ => "unknown".to_owned(),
    }
}

fn direction(direction: FileDirection) -> &'static str {
    match direction {
        FileDirection::Upload => "upload",
        FileDirection::Download => "download",
    }
}

/// The JSON line of a client event (`None` for events the line mode
/// does not report).
pub fn event(event: &Event) -> Option<Value> {
    let value = match event {
        Event::ContactStatusChanged { contact, status } => json!({
            "event": "contact_status",
            "contact": contact.to_string(),
            "status": status_word(*status),
        }),
        Event::ContactRequestReceived(request) => json!({
            "event": "contact_request",
            "from": request.sender().to_string(),
            "nickname": request.request().nickname,
            "message": request.request().message,
        }),
        Event::ContactRequestDelivered { contact } => json!({
            "event": "request_delivered",
            "contact": contact.to_string(),
        }),
        Event::DialFailed {
            contact,
            error,
            retry_in,
        } => json!({
            "event": "dial_failed",
            "contact": contact.to_string(),
            "error": ErrorChain(&**error).to_string(),
            "retry_in_secs": retry_in.map(|d| d.as_secs()),
        }),
        Event::ServiceStatusChanged { id, status } => json!({
            "event": "service_status",
            "id": id.to_string(),
            "status": status.to_string(),
            "published": status.is_published(),
        }),
        Event::PrivateServiceStatusChanged { status } => json!({
            "event": "private_service_status",
            "status": status.to_string(),
            "published": status.is_published(),
        }),
        Event::ContactRequestAnswered { contact, answer } => json!({
            "event": "request_answered",
            "contact": contact.to_string(),
            "answer": answer.to_string(),
        }),
        Event::ContactRequestFailed { contact, reason } => json!({
            "event": "request_failed",
            "contact": contact.to_string(),
            "reason": reason.to_string(),
        }),
        Event::ContactRemovedUs { contact } => json!({
            "event": "contact_removed_us",
            "contact": contact.to_string(),
        }),
        Event::MessageReceived(message) => json!({
            "event": "message",
            "from": message.contact.to_string(),
            "id": message.id.get(),
            "text": message.text,
            "time": unix_seconds(message.time),
        }),
        Event::MessageStatusChanged {
            contact,
            message,
            status,
        } => json!({
            "event": "message_status",
            "contact": contact.to_string(),
            "id": message.get(),
            "status": message_status(status),
            "reason": match status {
                MessageStatus::Failed(reason) => Some(reason.to_string()),
                _ => None,
            },
        }),
        Event::FileOffered(offer) => json!({
            "event": "file_offer",
            "transfer": offer.transfer().get(),
            "from": offer.contact().to_string(),
            "name": offer.name(),
            "size": offer.size(),
        }),
        Event::FileProgress {
            transfer,
            contact,
            direction: d,
            bytes,
            total,
        } => json!({
            "event": "file_progress",
            "transfer": transfer.get(),
            "contact": contact.to_string(),
            "direction": direction(*d),
            "bytes": bytes,
            "total": total,
        }),
        Event::FileTransferFinished {
            transfer,
            contact,
            direction: d,
            outcome,
        } => {
            let (result, path) = match outcome {
                TransferOutcome::Completed { path } => {
                    ("completed".to_owned(), Some(path.display().to_string()))
                }
                TransferOutcome::Rejected => ("rejected".to_owned(), None),
                TransferOutcome::Cancelled { by_peer } => (
                    if *by_peer {
                        "cancelled by peer"
                    } else {
                        "cancelled"
                    }
                    .to_owned(),
                    None,
                ),
                TransferOutcome::Failed(failure) => (format!("failed: {failure}"), None),
                _ => ("ended".to_owned(), None),
            };
            json!({
                "event": "file_finished",
                "transfer": transfer.get(),
                "contact": contact.to_string(),
                "direction": direction(*d),
                "result": result,
                "path": path,
            })
        }
        Event::DiskFull(full) => json!({
            "event": "disk_full",
            "path": full.path.display().to_string(),
            "needed": full.needed,
            "available": full.available,
            "message": full.to_string(),
        }),
        Event::DiskSpaceFreed { path } => json!({
            "event": "disk_space_freed",
            "path": path.display().to_string(),
        }),
        Event::Error { contact, error } => json!({
            "event": "error",
            "contact": contact.map(|c| c.to_string()),
            "message": ErrorChain(&**error).to_string(),
        }),
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use ricochet_client::{Generation, IdentityKey, RequestFailure};

    use super::*;

    #[test]
    fn failures_have_lines_with_reasons() {
        let contact = IdentityKey::generate(Generation::V3).unwrap().ricochet_id();
        let line = event(&Event::ContactRequestFailed {
            contact,
            reason: RequestFailure::BadAnswer,
        })
        .unwrap();
        assert_eq!(line["event"], "request_failed");
        assert_eq!(line["contact"], contact.to_string());
        assert!(
            line["reason"]
                .as_str()
                .unwrap()
                .contains("not a valid answer")
        );
        let line = event(&Event::ContactRemovedUs { contact }).unwrap();
        assert_eq!(line["event"], "contact_removed_us");
        assert_eq!(line["contact"], contact.to_string());
    }
}

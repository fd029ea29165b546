//! tor control-port replies (ricochet-transport's sans-IO parser): never
//! panics; feeding the same bytes in two pieces gives the same replies;
//! every reply has a 3-digit status and at least one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ricochet_transport::control::reply::{Reply, ReplyParser, bootstrap_phase, keywords};

fn parse(pieces: &[&[u8]]) -> (Vec<Reply>, bool) {
    let mut parser = ReplyParser::new();
    let mut replies = Vec::new();
    let mut failed = false;
    for piece in pieces {
        parser.push(piece);
        loop {
            match parser.next_reply() {
                Ok(Some(reply)) => replies.push(reply),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
    }
    (replies, failed)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(split).min(rest.len());
    let (whole, whole_failed) = parse(&[rest]);
    let (split_replies, split_failed) = parse(&[&rest[..at], &rest[at..]]);
    assert_eq!(whole_failed, split_failed);
    if !whole_failed {
        assert_eq!(whole, split_replies);
    }
    for reply in &whole {
        assert!(reply.status < 1000);
        assert!(!reply.lines.is_empty());
        for line in &reply.lines {
            let _ = keywords(&line.text);
            let _ = bootstrap_phase(&line.text);
        }
    }
});

//! A stream through tor's SOCKS port (RFC 1928), with arti's sans-IO SOCKS
//! client (`tor-socksproto`), which keeps tor's extended reply codes
//! (`0xF0`–`0xF7`, tor's `socks-extensions.txt`): they say why an onion
//! service could not be reached ([`OnionFailure`]).

use std::net::SocketAddr;

use ricochet_identity::ServiceId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tor_socksproto::{
    Buffer, Handshake, NextStep, SocksAddr, SocksAuth, SocksClientHandshake, SocksCmd,
    SocksRequest, SocksStatus, SocksVersion,
};

use crate::{OnionFailure, TransportError};

/// Opens a stream to `id`'s onion service, port `port`, through the SOCKS
/// port at `proxy`.
pub(super) async fn connect(
    proxy: SocketAddr,
    id: &ServiceId,
    port: u16,
) -> Result<TcpStream, TransportError> {
    let mut stream = TcpStream::connect(proxy)
        .await
        .map_err(|e| TransportError::io("connecting to tor's SOCKS port", e))?;
    let hostname = id
        .onion_hostname()
        .try_into()
        .map_err(|_| TransportError::tor("an onion hostname too long for SOCKS"))?;
    let request = SocksRequest::new(
        SocksVersion::V5,
        SocksCmd::CONNECT,
        SocksAddr::Hostname(hostname),
        port,
        SocksAuth::NoAuth,
    )
    .map_err(|e| TransportError::tor(format!("a SOCKS request tor would refuse: {e}")))?;
    let mut handshake = SocksClientHandshake::new(request);
    // Precise reads: nothing of the stream after the reply is read here.
    let mut buffer = Buffer::new_precise();
    let bad_reply = |e: tor_socksproto::Error| {
        TransportError::tor(format!(
            "tor's SOCKS port answered something unexpected: {e}"
        ))
    };
    let reply = loop {
        match handshake.step(&mut buffer).map_err(bad_reply)? {
            NextStep::Send(data) => stream
                .write_all(&data)
                .await
                .map_err(|e| TransportError::io("talking to tor's SOCKS port", e))?,
            NextStep::Recv(mut recv) => {
                let read = stream
                    .read(recv.buf())
                    .await
                    .map_err(|e| TransportError::io("talking to tor's SOCKS port", e))?;
                if read == 0 {
                    return Err(TransportError::io(
                        "talking to tor's SOCKS port",
                        std::io::ErrorKind::UnexpectedEof.into(),
                    ));
                }
                recv.note_received(read).map_err(bad_reply)?;
            }
            NextStep::Finished(done) => {
                break done
                    .into_output()
                    .map_err(|e| TransportError::tor(format!("the SOCKS client: {e}")))?;
            }
        }
    };
    match reply.status() {
        SocksStatus::SUCCEEDED => Ok(stream),
        status => Err(refusal(*id, status.into())),
    }
}

/// A failed SOCKS reply (RFC 1928 §6; tor's extended codes).
fn refusal(id: ServiceId, code: u8) -> TransportError {
    if let Some(why) = OnionFailure::from_socks_reply(code) {
        return TransportError::unreachable(id, Some(why), None);
    }
    let what = match code {
        // tor: the service did not accept the stream on that port.
        0x05 => {
            return TransportError::Refused {
                id: Box::new(id),
                source: None,
            };
        }
        0x06 => {
            return TransportError::TimedOut {
                what: "tor's circuit to the onion service",
                after: std::time::Duration::ZERO,
            };
        }
        0x01 => "general failure",
        0x02 => "not allowed by tor's rules",
        0x03 => "network unreachable",
        0x04 => "host unreachable",
        0x07 => "command not supported",
        0x08 => "address type not supported",
        _ => "an unknown reply code",
    };
    // Without `ExtendedErrors` on its SocksPort, tor says one of these for
    // every onion failure.
    TransportError::unreachable(
        id,
        None,
        Some(format!("tor's SOCKS reply {code:#04x}: {what}").into()),
    )
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::ErrorKind;

    fn id() -> ServiceId {
        "vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd"
            .parse()
            .unwrap()
    }

    /// A SOCKS port that answers every CONNECT with `code`.
    async fn proxy_answering(code: u8) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut greeting = [0u8; 3];
            stream.read_exact(&mut greeting).await.unwrap();
            stream.write_all(&[5, 0]).await.unwrap();
            // VER CMD RSV ATYP=3 LEN host PORT
            let mut head = [0u8; 5];
            stream.read_exact(&mut head).await.unwrap();
            let mut rest = vec![0u8; usize::from(head[4]) + 2];
            stream.read_exact(&mut rest).await.unwrap();
            stream
                .write_all(&[5, code, 0, 1, 0, 0, 0, 0, 0, 0])
                .await
                .unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn every_extended_reply_says_why() {
        for (code, why) in [
            (0xF0, OnionFailure::NotFound),
            (0xF1, OnionFailure::DescriptorInvalid),
            (0xF2, OnionFailure::IntroductionFailed),
            (0xF3, OnionFailure::RendezvousFailed),
            (0xF4, OnionFailure::ClientAuthMissing),
            (0xF5, OnionFailure::ClientAuthWrong),
            (0xF6, OnionFailure::BadAddress),
            (0xF7, OnionFailure::IntroductionTimedOut),
        ] {
            let proxy = proxy_answering(code).await;
            let error = connect(proxy, &id(), 9878).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Unreachable, "{code:#x}");
            assert_eq!(error.onion_failure(), Some(why), "{code:#x}");
            assert!(error.to_string().contains(&why.to_string()), "{error}");
        }
        let error = connect(proxy_answering(0x05).await, &id(), 9878)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Refused);
        let error = connect(proxy_answering(0x01).await, &id(), 9878)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unreachable);
        assert_eq!(error.onion_failure(), None);
        assert!(
            crate::ErrorChain(&error)
                .to_string()
                .contains("general failure"),
            "{error}"
        );
    }
}

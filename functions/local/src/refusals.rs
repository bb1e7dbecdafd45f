//! Requests hyper refuses itself, answered in Stream's error shape.
//!
//! hyper's HTTP/1 server answers a request head it cannot parse on its own, before any service
//! runs: 400 for a malformed request line, header or framing (a bad `Content-Length`, a
//! `Transfer-Encoding` that does not end in `chunked`, or one in HTTP/1.0), 414 for a URI over
//! 65534 bytes, 431 for more than 100 headers or a head over its read buffer (~408 KiB). The
//! answer has an empty body, and hyper 1 has no hook to change it: `http1::Builder` has no
//! option for it, hyper_util none either, and the service is never called (hyper 1.x,
//! `proto::h1::role::Server::on_error`). So [`Refusals`] wraps the connection's IO, recognises
//! that answer in what hyper writes, and writes Stream's error shape in its place.
//!
//! Recognised exactly, not guessed: with `writev(false)` hyper hands every write the whole rest
//! of its output buffer, and its own answer is the last thing it writes before closing. So the
//! answer is the end of one write, and it is a status line followed by nothing but
//! `connection: close`, `content-length: 0` and `date`. None of Callbridge's own responses ends
//! like that: each carries `access-control-allow-origin`, and a JSON body holds no raw CR or
//! LF.
//!
//! Cases hyper closes the connection in without answering, so nothing can be reshaped: the
//! headers not arriving within the header timeout, and an HTTP/2 preface (`PRI * HTTP/2.0`).

use http::{Method, StatusCode};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// hyper's bound on the request target (`MAX_URI_LEN` in hyper 1.x).
pub const HYPER_MAX_URI_BYTES: usize = 65534;

/// The method logged for a request whose request line could not be read.
pub static UNREAD_METHOD: LazyLock<Method> =
    LazyLock::new(|| Method::from_bytes(b"-").expect("- is an HTTP token"));

/// Renders the full response (head and body) replacing hyper's answer with this status;
/// gets hyper's `date` value to keep it.
pub type Render = Arc<dyn Fn(StatusCode, Option<&[u8]>) -> Vec<u8> + Send + Sync>;

/// The connection's IO as hyper sees it; see the module documentation.
pub struct Refusals<T> {
    io: T,
    render: Render,
    /// The replacement being written, and how much of it is written.
    replacing: Option<(Vec<u8>, usize)>,
}

impl<T> Refusals<T> {
    pub fn new(io: T, render: Render) -> Self {
        Refusals {
            io,
            render,
            replacing: None,
        }
    }
}

/// hyper's own answer at the end of `buf`: where it starts, its status and its date.
fn hyper_answer(buf: &[u8]) -> Option<(usize, StatusCode, Option<&[u8]>)> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    let start = buf
        .windows(9)
        .rposition(|w| w == b"HTTP/1.1 " || w == b"HTTP/1.0 ")?;
    let head = &buf[start..buf.len() - 2];
    let mut lines = head.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let status_line = lines.next()?.strip_suffix(b"\r")?;
    let status = StatusCode::from_bytes(status_line.get(9..12)?).ok()?;
    if ![
        StatusCode::BAD_REQUEST,
        StatusCode::URI_TOO_LONG,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    ]
    .contains(&status)
    {
        return None;
    }
    let (mut empty, mut date) = (false, None);
    for line in lines {
        let line = line.strip_suffix(b"\r")?;
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") && value == b"0" {
            empty = true;
        } else if name.eq_ignore_ascii_case(b"date") {
            date = Some(value);
        } else if !(name.eq_ignore_ascii_case(b"connection") && value == b"close") {
            return None;
        }
    }
    empty.then_some((start, status, date))
}

impl<T: AsyncRead + Unpin> AsyncRead for Refusals<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Refusals<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            match hyper_answer(buf) {
                None => return Pin::new(&mut this.io).poll_write(cx, buf),
                // What precedes it (the end of an earlier response) goes out first.
                Some((start, ..)) if start > 0 => {
                    return Pin::new(&mut this.io).poll_write(cx, &buf[..start]);
                }
                Some((_, status, date)) => this.replacing = Some(((this.render)(status, date), 0)),
            }
        }
        // hyper retries with the same `buf` while this is pending; it is told its answer went
        // out once the replacement has.
        if let Some((bytes, written)) = this.replacing.as_mut() {
            while *written < bytes.len() {
                let n = ready!(Pin::new(&mut this.io).poll_write(cx, &bytes[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
        }
        this.replacing = None;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "date: Tue, 01 Dec 2026 21:03:26 GMT\r\n";

    #[test]
    fn finds_hypers_answers_and_nothing_else() {
        for (status, reason) in [
            (400, "Bad Request"),
            (414, "URI Too Long"),
            (431, "Request Header Fields Too Large"),
        ] {
            let answer = format!(
                "HTTP/1.1 {status} {reason}\r\nconnection: close\r\ncontent-length: 0\r\n{DATE}\r\n"
            );
            let (start, s, date) = hyper_answer(answer.as_bytes()).expect(reason);
            assert_eq!((start, s.as_u16()), (0, status));
            assert_eq!(date, Some(&b"Tue, 01 Dec 2026 21:03:26 GMT"[..]));
            // After the end of an earlier response in the same buffer.
            let earlier = "HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}";
            let both = format!("{earlier}{answer}");
            assert_eq!(hyper_answer(both.as_bytes()).unwrap().0, earlier.len());
        }
        for not_hypers in [
            // Callbridge's own answers.
            format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\naccess-control-allow-origin: *\r\ncontent-length: 2\r\n{DATE}\r\n{{}}"
            ),
            format!("HTTP/1.1 204 No Content\r\naccess-control-allow-origin: *\r\n{DATE}\r\n"),
            format!(
                "HTTP/1.1 405 Method Not Allowed\r\naccess-control-allow-origin: *\r\ncontent-length: 0\r\n{DATE}\r\n"
            ),
            // Interim answers, other statuses, a body.
            "HTTP/1.1 100 Continue\r\n\r\n".to_string(),
            format!("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n{DATE}\r\n"),
            format!("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n{DATE}\r\nxx"),
            // A head split over writes.
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\n".to_string(),
        ] {
            assert_eq!(hyper_answer(not_hypers.as_bytes()), None, "{not_hypers:?}");
        }
    }

    #[test]
    fn the_unread_method_is_a_token() {
        assert_eq!(UNREAD_METHOD.as_str(), "-");
    }
}

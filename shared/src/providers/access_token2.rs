//! Agora AccessToken2 ("007"): building and parsing, as Agora's official builders.
//!
//! `token = "007" + base64(zlib(bytes(signature) || signing_info))`, all integers little-endian;
//! see the module tests for the official vectors. The payload and the signature are byte for
//! byte the official builders'; the zlib stream around them is not: Agora's parsers inflate any
//! valid zlib stream and check the signature over the inflated payload, so the payload is
//! written in stored (uncompressed) deflate blocks instead of being compressed. That costs 16
//! base64 characters (211 instead of 195 for a video publisher's token) and saves a deflate
//! (Huffman trees, and a 128 KiB hash table reset per token) on every join.

use crate::crypto;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

pub const VERSION: &str = "007";
pub const SERVICE_RTC: u16 = 1;
/// RTM (signalling) services: only the official vectors carry them (no function issues one).
#[cfg(any(test, feature = "test-support"))]
pub const SERVICE_RTM: u16 = 2;
pub const PRIV_JOIN_CHANNEL: u16 = 1;
pub const PRIV_PUBLISH_AUDIO: u16 = 2;
pub const PRIV_PUBLISH_VIDEO: u16 = 3;
pub const PRIV_PUBLISH_DATA: u16 = 4;
#[cfg(any(test, feature = "test-support"))]
pub const PRIV_RTM_LOGIN: u16 = 1;

/// One service inside a token. Privileges are `(id, relative seconds)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Service {
    Rtc {
        channel: String,
        /// Decimal uid or user account; numeric uid 0 is written as "".
        account: String,
        privileges: Vec<(u16, u32)>,
    },
    #[cfg(any(test, feature = "test-support"))]
    Rtm {
        user_id: String,
        privileges: Vec<(u16, u32)>,
    },
}

impl Service {
    pub fn kind(&self) -> u16 {
        match self {
            Service::Rtc { .. } => SERVICE_RTC,
            #[cfg(any(test, feature = "test-support"))]
            Service::Rtm { .. } => SERVICE_RTM,
        }
    }
    fn privileges(&self) -> &[(u16, u32)] {
        match self {
            Service::Rtc { privileges, .. } => privileges,
            #[cfg(any(test, feature = "test-support"))]
            Service::Rtm { privileges, .. } => privileges,
        }
    }
}

/// Everything a token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenContent {
    pub app_id: String,
    pub issue_ts: u32,
    /// Lifetime in seconds after `issue_ts`.
    pub expire: u32,
    pub salt: u32,
    pub services: Vec<Service>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("app id and app certificate must each be 32 hexadecimal characters")]
    Credentials,
    #[error("a token needs at least one service")]
    NoServices,
    #[error("token does not start with 007")]
    Prefix,
    #[error("token is not valid base64")]
    Base64,
    #[error("token payload is not a valid zlib stream")]
    Zlib,
    #[error("token payload is truncated or malformed")]
    Truncated,
    #[error("field too long for a u16 length")]
    TooLong,
}

pub fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Builds a token. `certificate` is the 32-hex app certificate.
pub fn build(content: &TokenContent, certificate: &str) -> Result<String, TokenError> {
    if !is_hex32(&content.app_id) || !is_hex32(certificate) {
        return Err(TokenError::Credentials);
    }
    if content.services.is_empty() {
        return Err(TokenError::NoServices);
    }
    // payload = bytes(signature) || signing_info, written after room for the zlib framing;
    // the signature is filled in once the signing info is written after its place.
    let mut buf = Vec::with_capacity(STORED_PREFIX + 2 + 32 + 192 + 4);
    buf.extend_from_slice(&[0; STORED_PREFIX]);
    buf.extend_from_slice(&32u16.to_le_bytes());
    buf.extend_from_slice(&[0; 32]);
    let info = &mut buf;
    put_bytes(info, content.app_id.as_bytes())?;
    info.extend_from_slice(&content.issue_ts.to_le_bytes());
    info.extend_from_slice(&content.expire.to_le_bytes());
    info.extend_from_slice(&content.salt.to_le_bytes());
    info.extend_from_slice(&(content.services.len() as u16).to_le_bytes());
    // Services sorted by type, stable (agora-token 2.0.6): RTC ones, then RTM ones.
    let of_kind = |kind| content.services.iter().filter(move |s| s.kind() == kind);
    #[cfg(any(test, feature = "test-support"))]
    let services = of_kind(SERVICE_RTC).chain(of_kind(SERVICE_RTM));
    #[cfg(not(any(test, feature = "test-support")))]
    let services = of_kind(SERVICE_RTC);
    for s in services {
        info.extend_from_slice(&s.kind().to_le_bytes());
        put_privileges(info, s.privileges());
        match s {
            Service::Rtc {
                channel, account, ..
            } => {
                put_bytes(info, channel.as_bytes())?;
                put_bytes(info, account.as_bytes())?;
            }
            #[cfg(any(test, feature = "test-support"))]
            Service::Rtm { user_id, .. } => put_bytes(info, user_id.as_bytes())?,
        }
    }
    let signed = STORED_PREFIX + 34;
    let signature = sign(certificate, content.issue_ts, content.salt, &buf[signed..]);
    buf[signed - 32..signed].copy_from_slice(&signature);

    let stream = stored_in_place(buf);
    let mut token = String::with_capacity(VERSION.len() + stream.len().div_ceil(3) * 4);
    token.push_str(VERSION);
    STANDARD.encode_string(&stream, &mut token);
    Ok(token)
}

/// The most a stored deflate block holds (its length is a u16).
const STORED_BLOCK_MAX: usize = u16::MAX as usize;
/// The zlib header and one stored block's header: what comes before the input in
/// [`zlib_stored`]'s stream of a one-block input.
const STORED_PREFIX: usize = 2 + 5;

/// `buf` is [`STORED_PREFIX`] bytes of room, then the input: [`zlib_stored`] of the input,
/// framed in place when it is one block (a token's payload, about 150 bytes, is).
fn stored_in_place(mut buf: Vec<u8>) -> Vec<u8> {
    let input = &buf[STORED_PREFIX..];
    if input.len() > STORED_BLOCK_MAX {
        return zlib_stored(input);
    }
    let adler = zlib_rs::adler32::adler32(1, input);
    let len = (input.len() as u16).to_le_bytes();
    let nlen = (!(input.len() as u16)).to_le_bytes();
    buf[..STORED_PREFIX].copy_from_slice(&[0x78, 0x01, 0x01, len[0], len[1], nlen[0], nlen[1]]);
    buf.extend_from_slice(&adler.to_be_bytes());
    buf
}

/// `input` as a zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 section 3.2.4,
/// `BTYPE` 00): the header zlib writes at level 0 (`78 01`: deflate, 32 KiB window, fastest),
/// then each block's header byte (`BFINAL` on the last), `LEN` and `NLEN` (little-endian) and
/// up to 65,535 bytes of `input` as they are, then Adler-32 of `input` (big-endian, from
/// zlib-rs, the backend flate2 already uses). Any inflater reads it back as `input`; a
/// token's payload (about 150 bytes) is one block: 11 bytes of framing.
fn zlib_stored(input: &[u8]) -> Vec<u8> {
    let blocks = input.len().div_ceil(STORED_BLOCK_MAX).max(1);
    let mut out = Vec::with_capacity(2 + 5 * blocks + input.len() + 4);
    out.extend_from_slice(&[0x78, 0x01]);
    let mut chunks = input.chunks(STORED_BLOCK_MAX).peekable();
    if chunks.peek().is_none() {
        // An empty input is one empty final block.
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&zlib_rs::adler32::adler32(1, input).to_be_bytes());
    out
}

/// `signature = HMAC(HMAC(HMAC(u32le(ts), cert), key=u32le(salt)), signing_info)`; the
/// timestamp and salt bytes are the HMAC keys.
fn sign(certificate: &str, issue_ts: u32, salt: u32, info: &[u8]) -> [u8; 32] {
    let k1 = crypto::hmac_sha256(&issue_ts.to_le_bytes(), certificate.as_bytes());
    let signing = crypto::hmac_sha256(&salt.to_le_bytes(), &k1);
    crypto::hmac_sha256(&signing, info)
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) -> Result<(), TokenError> {
    let len = u16::try_from(b.len()).map_err(|_| TokenError::TooLong)?;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(b);
    Ok(())
}

fn put_privileges(buf: &mut Vec<u8>, privileges: &[(u16, u32)]) {
    buf.extend_from_slice(&(privileges.len() as u16).to_le_bytes());
    // Sorted by id, stable; without allocating for the usual few privileges.
    let mut small = [(0u16, 0u32); 8];
    let mut large = Vec::new();
    let sorted: &mut [(u16, u32)] = if privileges.len() <= small.len() {
        let small = &mut small[..privileges.len()];
        small.copy_from_slice(privileges);
        small
    } else {
        large.extend_from_slice(privileges);
        &mut large
    };
    // Callers usually list them in order already (agora::rtc_token does).
    if !sorted.is_sorted_by_key(|p| p.0) {
        sorted.sort_by_key(|p| p.0);
    }
    for &(id, value) in sorted.iter() {
        buf.extend_from_slice(&id.to_le_bytes());
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

#[cfg(any(test, feature = "test-support"))]
pub use reading::{ParsedToken, parse};

/// Reading tokens back, for tests and tools only (feature `test-support`): no function parses
/// a token.
#[cfg(any(test, feature = "test-support"))]
mod reading {
    use super::*;
    use flate2::{Decompress, FlushDecompress, Status};

    /// A parsed token: its content plus the signature it carries.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ParsedToken {
        pub content: TokenContent,
        pub signature: Vec<u8>,
        /// The signed bytes, to verify the signature.
        signing_info: Vec<u8>,
        /// The inflated payload, for byte comparisons in tests.
        pub payload: Vec<u8>,
    }

    /// Parses a 007 token (any valid zlib stream, as Agora's servers do).
    pub fn parse(token: &str) -> Result<ParsedToken, TokenError> {
        let body = token.strip_prefix(VERSION).ok_or(TokenError::Prefix)?;
        let compressed = STANDARD.decode(body).map_err(|_| TokenError::Base64)?;
        let payload = inflate(&compressed)?;
        let mut r = Reader(&payload);
        let signature = r.bytes()?.to_vec();
        let info_start = payload.len() - r.0.len();
        let app_id = r.string()?;
        let issue_ts = r.u32()?;
        let expire = r.u32()?;
        let salt = r.u32()?;
        let count = r.u16()?;
        let mut services = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let kind = r.u16()?;
            let privileges = r.privileges()?;
            services.push(match kind {
                SERVICE_RTC => Service::Rtc {
                    channel: r.string()?,
                    account: r.string()?,
                    privileges,
                },
                SERVICE_RTM => Service::Rtm {
                    user_id: r.string()?,
                    privileges,
                },
                _ => return Err(TokenError::Truncated),
            });
        }
        if !r.0.is_empty() {
            return Err(TokenError::Truncated);
        }
        Ok(ParsedToken {
            content: TokenContent {
                app_id,
                issue_ts,
                expire,
                salt,
                services,
            },
            signature,
            signing_info: payload[info_start..].to_vec(),
            payload,
        })
    }

    impl ParsedToken {
        /// Whether the signature was made with `certificate`.
        pub fn verify(&self, certificate: &str) -> bool {
            let expected = sign(
                certificate,
                self.content.issue_ts,
                self.content.salt,
                &self.signing_info,
            );
            expected.as_slice() == self.signature.as_slice()
        }
    }

    fn inflate(data: &[u8]) -> Result<Vec<u8>, TokenError> {
        const LIMIT: usize = 64 * 1024;
        let mut d = Decompress::new(true);
        let mut out = Vec::with_capacity(512);
        loop {
            let (in_before, out_before) = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(
                    &data[in_before as usize..],
                    &mut out,
                    FlushDecompress::Finish,
                )
                .map_err(|_| TokenError::Zlib)?;
            if status == Status::StreamEnd {
                return Ok(out);
            }
            if out.len() >= LIMIT {
                return Err(TokenError::Zlib);
            }
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            } else if d.total_in() == in_before && d.total_out() == out_before {
                // No progress with room to spare: the stream ends early.
                return Err(TokenError::Zlib);
            }
        }
    }

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], TokenError> {
            if self.0.len() < n {
                return Err(TokenError::Truncated);
            }
            let (a, b) = self.0.split_at(n);
            self.0 = b;
            Ok(a)
        }
        fn u16(&mut self) -> Result<u16, TokenError> {
            Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
        }
        fn u32(&mut self) -> Result<u32, TokenError> {
            Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
        }
        fn bytes(&mut self) -> Result<&'a [u8], TokenError> {
            let n = self.u16()? as usize;
            self.take(n)
        }
        fn string(&mut self) -> Result<String, TokenError> {
            String::from_utf8(self.bytes()?.to_vec()).map_err(|_| TokenError::Truncated)
        }
        fn privileges(&mut self) -> Result<Vec<(u16, u32)>, TokenError> {
            let n = self.u16()?;
            (0..n).map(|_| Ok((self.u16()?, self.u32()?))).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress, Status};

    const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
    const CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";
    const CHANNEL: &str = "7d72365eb983485397e3e3f9d460bdda";
    const V1: &str = "007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj";
    const V2: &str = "007eJxTYLhzZP08Lxa1Pg57+TcXb/3cZ3wi4V6kbpbOog0G2dOYk20UGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiQwMADacImo=";
    /// As in AgoraIO/Tools nodejs/test/AccessToken2Test.js (AccessToken_Test4). The copy in
    /// providers.md section A.8 lost two characters in transcription (it is not valid base64).
    const V3: &str = "007eJxTYOAQsrQ5s3TfH+1tvy8zZZ46EpCc0V43JXdGd2jS8porKo4KDJbmBs6OxqYpqWYGySYmZiamSUmJqRaJRoamBmaGScbG7l8EGCKYGBgYGRgYmBgYGVgYGMF8JjDJDCZZwKQCg3mKuZGxmWlqkqWFsYmFqbGleapxqnGaZYqJmUFSSkoiF4ORhYWRsYmhkbkxyCyISZwMJanFJfGlxalFACKnKng=";
    /// V1's content as this module builds it: the same payload in a stored zlib stream
    /// (framed with Python's zlib.adler32 and struct, apart from this module).
    const V1_STORED: &str = "007eAEBigB1/yAAFqC4TFpegsv3T7gT0J9ZxUvaycBhIFgFOayXV46VixogADk3MENBMzVkZTYwYzQ0NjQ1YmJhZThhMjE1MDYxYjMzR/QQAFgCAAABAAAAAQABAAEAAQBYAgAAIAA3ZDcyMzY1ZWI5ODM0ODUzOTdlM2UzZjlkNDYwYmRkYQoAMjg4MjM0MTI3M8JqJOM=";
    const PUBLISHER: &str = "007eJxTYDhuGCT90E3Yo2+N3efJV5hX1K1MZAqae/Sa8UP9VXvOhfArMFiaGzg7GpumpJoZJJuYmJmYJiUlplokGhmaGpgZJhkbu38RYIhgYmBgZABhRgYWBkYwnwlMMoNJFjCpwGCeYm5kbGaammRpYWxiYWpsaZ5qnGqcZpliYmaQlJKSyMVgZGFhZGxiaGRuDACosyXL";

    fn rtc(account: &str, privileges: Vec<(u16, u32)>) -> Service {
        Service::Rtc {
            channel: CHANNEL.into(),
            account: account.into(),
            privileges,
        }
    }

    fn content(services: Vec<Service>) -> TokenContent {
        TokenContent {
            app_id: APP_ID.into(),
            issue_ts: 1111111,
            expire: 600,
            salt: 1,
            services,
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Our token carries the official one's payload: the same signature and signed bytes
    /// once inflated (the compressed bytes differ: ours are stored, theirs deflated).
    fn assert_official_payload(ours: &str, official: &str) -> ParsedToken {
        let (p, o) = (parse(ours).unwrap(), parse(official).unwrap());
        assert_eq!(hex(&p.payload), hex(&o.payload));
        assert_eq!(p.signature, o.signature);
        assert_eq!(p.content, o.content);
        assert!(p.verify(CERT) && o.verify(CERT));
        assert_ne!(ours, official);
        p
    }

    #[test]
    fn vector_v1_uid_2882341273() {
        let c = content(vec![rtc("2882341273", vec![(1, 600)])]);
        let t = build(&c, CERT).unwrap();
        let p = assert_official_payload(&t, V1);
        assert_eq!(p.content, c);
        assert_eq!(p.payload.len(), 138);
        assert_eq!(
            hex(&p.signature),
            "16a0b84c5a5e82cbf74fb813d09f59c54bdac9c06120580539ac97578e958b1a"
        );
        // The stored stream: 138 bytes + 11 of framing, in base64.
        assert_eq!(t.len(), 3 + (138 + 11usize).div_ceil(3) * 4);
        assert_eq!(t, V1_STORED);
    }

    #[test]
    fn vector_v2_uid_0_is_empty_account() {
        let c = content(vec![rtc("", vec![(1, 600)])]);
        let p = assert_official_payload(&build(&c, CERT).unwrap(), V2);
        assert_eq!(p.content, c);
        assert_eq!(
            hex(&p.signature),
            "dcc4af9e4a04268e083f1fecd1daf9be33c860de592d6a2ca2b0306b9603633c"
        );
    }

    #[test]
    fn vector_v3_rtc_and_rtm() {
        let c = content(vec![
            Service::Rtm {
                user_id: "test_user".into(),
                privileges: vec![(1, 600)],
            },
            rtc("2882341273", vec![(4, 600), (3, 600), (2, 600), (1, 600)]),
        ]);
        let p = assert_official_payload(&build(&c, CERT).unwrap(), V3);
        assert_eq!(p.content.services[0].kind(), SERVICE_RTC);
        assert_eq!(p.content.services[1].kind(), SERVICE_RTM);
    }

    #[test]
    fn node_builder_publisher_vector() {
        let c = content(vec![rtc(
            "2882341273",
            vec![(1, 600), (2, 600), (3, 600), (4, 600)],
        )]);
        let p = assert_official_payload(&build(&c, CERT).unwrap(), PUBLISHER);
        assert_eq!(p.content, c);
    }

    #[test]
    fn stored_streams_inflate_to_their_input() {
        let mut rng = fastrand::Rng::with_seed(11);
        // Empty, one byte, a token's size, one full block, one past it, several blocks.
        for n in [0usize, 1, 150, 65_535, 65_536, 3 * 65_535 + 7] {
            let input: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
            let z = zlib_stored(&input);
            assert_eq!(&z[..2], &[0x78, 0x01]);
            assert_eq!(u16::from_be_bytes([z[0], z[1]]) % 31, 0, "FCHECK");
            assert_eq!(z.len(), 2 + 5 * n.div_ceil(65_535).max(1) + n + 4);
            let mut d = Decompress::new(true);
            let mut out = Vec::with_capacity(n + 1);
            let status = d
                .decompress_vec(&z, &mut out, FlushDecompress::Finish)
                .unwrap();
            assert_eq!(status, Status::StreamEnd, "{n} bytes");
            assert_eq!(d.total_in() as usize, z.len());
            assert!(out == input, "{n} bytes");
        }
        // Framed in place: the same stream.
        for n in [0usize, 1, 150, 65_535, 65_536, 2 * 65_535 + 3] {
            let input: Vec<u8> = (0..n).map(|_| rng.u8(..)).collect();
            let mut buf = vec![0xAA; STORED_PREFIX];
            buf.extend_from_slice(&input);
            assert!(stored_in_place(buf) == zlib_stored(&input), "{n} bytes");
        }
        // A flipped payload byte fails the Adler-32 check.
        let mut z = zlib_stored(b"payload");
        z[8] ^= 1;
        let mut out = Vec::with_capacity(16);
        assert!(
            Decompress::new(true)
                .decompress_vec(&z, &mut out, FlushDecompress::Finish)
                .is_err()
        );
    }

    /// Every field of tokens built here, as read by another inflater (CPython's `zlib`, the C
    /// zlib) and a parser written apart from this module's, in Python.
    #[test]
    fn an_independent_zlib_and_parser_read_every_field() {
        const PARSER: &str = r#"
import base64, json, struct, sys, zlib
for line in sys.stdin:
    t = line.strip()
    assert t[:3] == "007", t
    p = zlib.decompress(base64.b64decode(t[3:], validate=True))
    o = 0
    def take(n):
        global o
        o += n
        assert o <= len(p), "truncated"
        return p[o - n:o]
    u16 = lambda: struct.unpack("<H", take(2))[0]
    u32 = lambda: struct.unpack("<I", take(4))[0]
    text = lambda: take(u16()).decode()
    sig = take(u16()).hex()
    out = {"signature": sig, "app_id": text(), "issue_ts": u32(), "expire": u32(),
           "salt": u32(), "services": []}
    for _ in range(u16()):
        kind = u16()
        privileges = [[u16(), u32()] for _ in range(u16())]
        names = [text(), text()] if kind == 1 else [text()]
        out["services"].append({"kind": kind, "privileges": privileges, "names": names})
    assert o == len(p), "trailing bytes"
    print(json.dumps(out))
"#;
        let mut rng = fastrand::Rng::with_seed(5);
        let contents: Vec<TokenContent> = (0..40)
            .map(|i| {
                let channel: String = (0..rng.usize(1..64)).map(|_| rng.alphanumeric()).collect();
                let account = if i % 5 == 0 {
                    String::new()
                } else {
                    rng.u32(1..).to_string()
                };
                let mut services = vec![Service::Rtc {
                    channel,
                    account,
                    privileges: vec![(4, rng.u32(..)), (1, rng.u32(..)), (2, rng.u32(..))],
                }];
                if i % 4 == 0 {
                    services.insert(
                        0,
                        Service::Rtm {
                            user_id: format!("user-{i}"),
                            privileges: vec![(1, 600)],
                        },
                    );
                }
                TokenContent {
                    app_id: APP_ID.into(),
                    issue_ts: rng.u32(..),
                    expire: rng.u32(..),
                    salt: rng.u32(1..=99_999_999),
                    services,
                }
            })
            .collect();
        let tokens: Vec<String> = contents.iter().map(|c| build(c, CERT).unwrap()).collect();
        let mut child = std::process::Command::new("python3")
            .args(["-c", PARSER])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 (the test suite's scripts need it too)");
        std::io::Write::write_all(
            &mut child.stdin.take().unwrap(),
            (tokens.join("\n") + "\n").as_bytes(),
        )
        .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "python3 failed");
        let lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), contents.len());
        for ((c, t), got) in contents.iter().zip(&tokens).zip(&lines) {
            let mut payload = parse(t).unwrap().payload;
            let sig = hex(&payload[2..34]);
            // The signature is the one over the signing info, computed afresh.
            let info = payload.split_off(34);
            assert_eq!(sig, hex(&sign(CERT, c.issue_ts, c.salt, &info)));
            let services: Vec<serde_json::Value> = [SERVICE_RTC, SERVICE_RTM]
                .iter()
                .flat_map(|&k| c.services.iter().filter(move |s| s.kind() == k))
                .map(|s| {
                    let mut privileges = s.privileges().to_vec();
                    privileges.sort_by_key(|p| p.0);
                    let names = match s {
                        Service::Rtc {
                            channel, account, ..
                        } => vec![channel.clone(), account.clone()],
                        Service::Rtm { user_id, .. } => vec![user_id.clone()],
                    };
                    serde_json::json!({"kind": s.kind(), "privileges": privileges, "names": names})
                })
                .collect();
            let want = serde_json::json!({
                "signature": sig, "app_id": c.app_id, "issue_ts": c.issue_ts,
                "expire": c.expire, "salt": c.salt, "services": services,
            });
            assert_eq!(got, &want, "{t}");
        }
    }

    #[test]
    fn intermediate_keys_match_the_reference() {
        let k1 = crypto::hmac_sha256(&1111111u32.to_le_bytes(), CERT.as_bytes());
        assert_eq!(
            hex(&k1),
            "e0f6141e54329d72102500478ec18e0020a5eeef53bbcccc442c6c2f7f178251"
        );
        let signing = crypto::hmac_sha256(&1u32.to_le_bytes(), &k1);
        assert_eq!(
            hex(&signing),
            "cee2fa8dcbe868c30ca8c959d97fad4a5049c634da48449f1b8f59c14fa61073"
        );
    }

    #[test]
    fn round_trip_many_random_tokens() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..500 {
            let channel: String = (0..rng.usize(1..64)).map(|_| rng.alphanumeric()).collect();
            let account = rng.u32(..).to_string();
            let mut privileges = vec![(1u16, rng.u32(..))];
            if rng.bool() {
                privileges.extend([(2, rng.u32(..)), (4, rng.u32(..))]);
            }
            let c = TokenContent {
                app_id: APP_ID.into(),
                issue_ts: rng.u32(..),
                expire: rng.u32(..),
                salt: rng.u32(1..=99_999_999),
                services: vec![Service::Rtc {
                    channel,
                    account,
                    privileges: privileges.clone(),
                }],
            };
            let t = build(&c, CERT).unwrap();
            let p = parse(&t).unwrap();
            assert!(p.verify(CERT));
            assert!(!p.verify("5CFd2fd1755d40ecb72977518be15d3c"));
            assert_eq!(p.content, c);
        }
    }

    #[test]
    fn refuses_bad_credentials_and_empty_services() {
        let c = content(vec![rtc("1", vec![(1, 1)])]);
        assert_eq!(build(&c, "short"), Err(TokenError::Credentials));
        assert_eq!(build(&c, &"g".repeat(32)), Err(TokenError::Credentials));
        let mut bad = c.clone();
        bad.app_id = "x".into();
        assert_eq!(build(&bad, CERT), Err(TokenError::Credentials));
        assert_eq!(build(&content(vec![]), CERT), Err(TokenError::NoServices));
    }

    #[test]
    fn parser_rejects_malformed_tokens() {
        assert_eq!(parse("006abc"), Err(TokenError::Prefix));
        assert_eq!(parse("007!!!"), Err(TokenError::Base64));
        assert_eq!(parse("007aGVsbG8="), Err(TokenError::Zlib));
        // A valid zlib stream of a truncated payload.
        let p = parse(V1).unwrap().payload;
        for cut in [0, 1, 10, 40, 100, p.len() - 1] {
            let z = zlib_stored(&p[..cut]);
            let t = format!("007{}", STANDARD.encode(z));
            assert_eq!(parse(&t), Err(TokenError::Truncated), "cut at {cut}");
        }
        // Truncated base64 of a valid token.
        assert!(parse(&V1[..V1.len() - 8]).is_err());
    }
}

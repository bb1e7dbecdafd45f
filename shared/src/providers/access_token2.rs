//! Agora AccessToken2 ("007"): building and parsing, byte for byte as Agora's official builders.
//!
//! `token = "007" + base64(zlib(bytes(signature) || signing_info))`, all integers little-endian;
//! see the module tests for the official vectors.

use crate::crypto;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;

pub const VERSION: &str = "007";
pub const SERVICE_RTC: u16 = 1;
pub const SERVICE_RTM: u16 = 2;
pub const PRIV_JOIN_CHANNEL: u16 = 1;
pub const PRIV_PUBLISH_AUDIO: u16 = 2;
pub const PRIV_PUBLISH_VIDEO: u16 = 3;
pub const PRIV_PUBLISH_DATA: u16 = 4;
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
    Rtm {
        user_id: String,
        privileges: Vec<(u16, u32)>,
    },
}

impl Service {
    pub fn kind(&self) -> u16 {
        match self {
            Service::Rtc { .. } => SERVICE_RTC,
            Service::Rtm { .. } => SERVICE_RTM,
        }
    }
    fn privileges(&self) -> &[(u16, u32)] {
        match self {
            Service::Rtc { privileges, .. } | Service::Rtm { privileges, .. } => privileges,
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

thread_local! {
    /// One zlib compressor per thread, reset between tokens: same bytes as a fresh one,
    /// without allocating and zeroing its ~270 KiB of state per token.
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), true));
}

/// Builds a token. `certificate` is the 32-hex app certificate.
pub fn build(content: &TokenContent, certificate: &str) -> Result<String, TokenError> {
    if !is_hex32(&content.app_id) || !is_hex32(certificate) {
        return Err(TokenError::Credentials);
    }
    if content.services.is_empty() {
        return Err(TokenError::NoServices);
    }
    // payload = bytes(signature) || signing_info; the signature is filled in once the signing
    // info is written after its place.
    let mut payload = Vec::with_capacity(2 + 32 + 192);
    payload.extend_from_slice(&32u16.to_le_bytes());
    payload.extend_from_slice(&[0; 32]);
    let info = &mut payload;
    put_bytes(info, content.app_id.as_bytes())?;
    info.extend_from_slice(&content.issue_ts.to_le_bytes());
    info.extend_from_slice(&content.expire.to_le_bytes());
    info.extend_from_slice(&content.salt.to_le_bytes());
    info.extend_from_slice(&(content.services.len() as u16).to_le_bytes());
    // Services sorted by type, stable (agora-token 2.0.6): RTC ones, then RTM ones.
    let of_kind = |kind| content.services.iter().filter(move |s| s.kind() == kind);
    for s in of_kind(SERVICE_RTC).chain(of_kind(SERVICE_RTM)) {
        info.extend_from_slice(&s.kind().to_le_bytes());
        put_privileges(info, s.privileges());
        match s {
            Service::Rtc {
                channel, account, ..
            } => {
                put_bytes(info, channel.as_bytes())?;
                put_bytes(info, account.as_bytes())?;
            }
            Service::Rtm { user_id, .. } => put_bytes(info, user_id.as_bytes())?,
        }
    }
    let signature = sign(certificate, content.issue_ts, content.salt, &payload[34..]);
    payload[2..34].copy_from_slice(&signature);

    // zlib at level 6, as Agora's official builders compress (their tokens are byte-identical).
    let compressed = COMPRESSOR.with(|c| deflate(&mut c.borrow_mut(), &payload));
    let mut token = String::with_capacity(3 + compressed.len().div_ceil(3) * 4);
    token.push_str(VERSION);
    STANDARD.encode_string(&compressed, &mut token);
    Ok(token)
}

/// zlib's output for `input`, on the reset compressor `c`.
fn deflate(c: &mut Compress, input: &[u8]) -> Vec<u8> {
    c.reset();
    let mut out = Vec::with_capacity(input.len() + 64);
    loop {
        let consumed = c.total_in() as usize;
        let status = c
            .compress_vec(&input[consumed..], &mut out, FlushCompress::Finish)
            .expect("deflate of an in-memory buffer cannot fail");
        if status == Status::StreamEnd {
            return out;
        }
        out.reserve(out.capacity().max(64));
    }
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
    sorted.sort_by_key(|p| p.0);
    for &(id, value) in sorted.iter() {
        buf.extend_from_slice(&id.to_le_bytes());
        buf.extend_from_slice(&value.to_le_bytes());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const APP_ID: &str = "970CA35de60c44645bbae8a215061b33";
    const CERT: &str = "5CFd2fd1755d40ecb72977518be15d3b";
    const CHANNEL: &str = "7d72365eb983485397e3e3f9d460bdda";
    const V1: &str = "007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj";
    const V2: &str = "007eJxTYLhzZP08Lxa1Pg57+TcXb/3cZ3wi4V6kbpbOog0G2dOYk20UGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiQwMADacImo=";
    /// As in AgoraIO/Tools nodejs/test/AccessToken2Test.js (AccessToken_Test4). The copy in
    /// providers.md section A.8 lost two characters in transcription (it is not valid base64).
    const V3: &str = "007eJxTYOAQsrQ5s3TfH+1tvy8zZZ46EpCc0V43JXdGd2jS8porKo4KDJbmBs6OxqYpqWYGySYmZiamSUmJqRaJRoamBmaGScbG7l8EGCKYGBgYGRgYmBgYGVgYGMF8JjDJDCZZwKQCg3mKuZGxmWlqkqWFsYmFqbGleapxqnGaZYqJmUFSSkoiF4ORhYWRsYmhkbkxyCyISZwMJanFJfGlxalFACKnKng=";
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

    #[test]
    fn vector_v1_uid_2882341273() {
        let c = content(vec![rtc("2882341273", vec![(1, 600)])]);
        assert_eq!(build(&c, CERT).unwrap(), V1);
        let p = parse(V1).unwrap();
        assert_eq!(p.content, c);
        assert_eq!(p.payload.len(), 138);
        assert_eq!(
            hex(&p.signature),
            "16a0b84c5a5e82cbf74fb813d09f59c54bdac9c06120580539ac97578e958b1a"
        );
        assert!(p.verify(CERT));
    }

    #[test]
    fn vector_v2_uid_0_is_empty_account() {
        let c = content(vec![rtc("", vec![(1, 600)])]);
        assert_eq!(build(&c, CERT).unwrap(), V2);
        let p = parse(V2).unwrap();
        assert_eq!(
            hex(&p.signature),
            "dcc4af9e4a04268e083f1fecd1daf9be33c860de592d6a2ca2b0306b9603633c"
        );
        assert!(p.verify(CERT));
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
        assert_eq!(build(&c, CERT).unwrap(), V3);
        let p = parse(V3).unwrap();
        assert!(p.verify(CERT));
        assert_eq!(p.content.services[0].kind(), SERVICE_RTC);
        assert_eq!(p.content.services[1].kind(), SERVICE_RTM);
    }

    #[test]
    fn node_builder_publisher_vector() {
        let c = content(vec![rtc(
            "2882341273",
            vec![(1, 600), (2, 600), (3, 600), (4, 600)],
        )]);
        assert_eq!(build(&c, CERT).unwrap(), PUBLISHER);
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
    fn reused_compressor_gives_identical_bytes() {
        let c1 = content(vec![rtc("2882341273", vec![(1, 600)])]);
        let other = content(vec![rtc("42", vec![(1, 9), (2, 9)])]);
        for _ in 0..3 {
            assert_eq!(build(&c1, CERT).unwrap(), V1);
            build(&other, CERT).unwrap();
        }
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
            let mut c = Compress::new(Compression::default(), true);
            let z = deflate(&mut c, &p[..cut]);
            let t = format!("007{}", STANDARD.encode(z));
            assert_eq!(parse(&t), Err(TokenError::Truncated), "cut at {cut}");
        }
        // Truncated base64 of a valid token.
        assert!(parse(&V1[..V1.len() - 8]).is_err());
    }
}

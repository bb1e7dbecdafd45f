//! The few cryptographic primitives Callbridge needs, from the aws-lc-rs library the AWS SDK
//! already links (one crypto library in the binary).

use aws_lc_rs::{digest, hmac};

/// HMAC-SHA256 of `msg` keyed with `key`.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// Constant-time check that `tag` is HMAC-SHA256(key, msg).
pub fn hmac_sha256_verify(key: &[u8], msg: &[u8], tag: &[u8]) -> bool {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&key, msg, tag).is_ok()
}

/// Whether `a` and `b` are equal, in time that does not depend on where they differ.
pub fn equal_constant_time(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// SHA-256 digest of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let tag = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(hmac_sha256_verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &tag
        ));
        let mut bad = tag;
        bad[0] ^= 1;
        assert!(!hmac_sha256_verify(
            b"Jefe",
            b"what do ya want for nothing?",
            &bad
        ));
    }

    #[test]
    fn constant_time_equality() {
        assert!(equal_constant_time(b"secret", b"secret"));
        assert!(!equal_constant_time(b"secret", b"secreT"));
        assert!(!equal_constant_time(b"secret", b"secret2"));
        assert!(!equal_constant_time(b"", b"x"));
    }

    #[test]
    fn sha256_of_abc() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}

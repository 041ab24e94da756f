//! SHA-256 crypt (`$5$salt$hash`, Ulrich Drepper's SHA-crypt, 5000 rounds),
//! what pve-common `PVE::Tools::encrypt_pw` produces with its default
//! prefix '5' for `cipassword`. The plaintext is never stored or logged.

use sha2::{Digest, Sha256};

const B64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `bytes` repeated/cut to `len` bytes.
fn stretch(bytes: &[u8], len: usize) -> Vec<u8> {
    bytes.iter().copied().cycle().take(len).collect()
}

/// crypt(pw, "$5$salt$") with the default 5000 rounds.
pub fn sha256_crypt_with_salt(pw: &str, salt: &str) -> String {
    let pw = pw.as_bytes();
    let salt: Vec<u8> = salt.bytes().take(16).collect();
    let b = Sha256::new()
        .chain_update(pw)
        .chain_update(&salt)
        .chain_update(pw)
        .finalize();
    let mut a = Sha256::new();
    a.update(pw);
    a.update(&salt);
    a.update(stretch(&b, pw.len()));
    let mut n = pw.len();
    while n > 0 {
        if n & 1 != 0 {
            a.update(b);
        } else {
            a.update(pw);
        }
        n >>= 1;
    }
    let mut a = a.finalize();
    let mut dp = Sha256::new();
    for _ in 0..pw.len() {
        dp.update(pw);
    }
    let p = stretch(&dp.finalize(), pw.len());
    let mut ds = Sha256::new();
    for _ in 0..(16 + usize::from(a[0])) {
        ds.update(&salt);
    }
    let s = stretch(&ds.finalize(), salt.len());
    for i in 0..5000 {
        let mut c = Sha256::new();
        if i & 1 != 0 {
            c.update(&p);
        } else {
            c.update(a);
        }
        if i % 3 != 0 {
            c.update(&s);
        }
        if i % 7 != 0 {
            c.update(&p);
        }
        if i & 1 != 0 {
            c.update(a);
        } else {
            c.update(&p);
        }
        a = c.finalize();
    }
    let mut out = format!("$5${}$", String::from_utf8_lossy(&salt));
    let mut put = |b2: u8, b1: u8, b0: u8, n: usize| {
        let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
        for _ in 0..n {
            out.push(char::from(B64[(w & 0x3f) as usize]));
            w >>= 6;
        }
    };
    for (x, y, z) in [
        (0, 10, 20),
        (21, 1, 11),
        (12, 22, 2),
        (3, 13, 23),
        (24, 4, 14),
        (15, 25, 5),
        (6, 16, 26),
        (27, 7, 17),
        (18, 28, 8),
        (9, 19, 29),
    ] {
        put(a[x], a[y], a[z], 4);
    }
    put(0, a[31], a[30], 3);
    out
}

/// encrypt_pw: a random 8-character salt from the base64 alphabet ('+' -> 'X').
pub fn sha256_crypt(pw: &str) -> String {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789X/";
    let u = uuid::Uuid::new_v4();
    let salt: String = u.as_bytes()[..8]
        .iter()
        .map(|b| char::from(ALPHA[usize::from(b & 0x3f)]))
        .collect();
    sha256_crypt_with_salt(pw, &salt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_openssl_passwd_5() {
        // `openssl passwd -5 -salt saltstring 'Hello world!'`
        assert_eq!(
            sha256_crypt_with_salt("Hello world!", "saltstring"),
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
        );
        assert_eq!(
            sha256_crypt_with_salt("secret", "ab/cdXef"),
            "$5$ab/cdXef$FXdtchdO6D3ypjt8Fv8ux/oOtjdvG8pCtFlHr/g2034"
        );
        let h = sha256_crypt("pw");
        assert!(h.starts_with("$5$") && h.len() == 3 + 8 + 1 + 43, "{h}");
    }
}

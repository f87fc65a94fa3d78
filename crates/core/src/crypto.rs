//! Account numbers encrypted at rest with AES-256-GCM, so that a copy of the database or a backup
//! is not a list of bank accounts.
//!
//! A sealed value is `v1:` followed by base64 (standard alphabet, padded) of the 12-byte nonce, the
//! ciphertext and the 16-byte tag. The version prefix lets a later scheme (another cipher, key
//! rotation) sit next to old rows and be told apart. Nonces are random, which is safe for well over
//! a billion encryptions under one key; rotate the key long before that.
//!
//! Nothing here ever formats a key or a plaintext: errors say what is wrong, not what was given.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const V1: &str = "v1:";

/// Why a key or a sealed account number was refused. No variant carries key material, sealed text
/// or plaintext, so errors can be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("account key must be 64 hex characters (32 bytes), got {0} characters")]
    KeyWrongLength(usize),
    #[error("account key must be hex: only 0-9 and a-f")]
    KeyNotHex,
    #[error("sealed account number does not start with a known version (expected \"v1:\")")]
    UnknownVersion,
    #[error("sealed account number is not valid base64 after its version prefix")]
    BadBase64,
    #[error(
        "sealed account number is too short: {0} bytes, a nonce and a tag alone take \
         {min}",
        min = NONCE_LEN + TAG_LEN
    )]
    TooShort(usize),
    #[error(
        "sealed account number does not authenticate: it was sealed with another key, or it was \
         altered"
    )]
    AuthenticationFailed,
    #[error("decrypted account number is not UTF-8 text")]
    NotUtf8,
}

/// The AES-256 key that seals account numbers. It has no `Display` and its `Debug` is redacted, so
/// it cannot end up in a log by accident; [`AccountKey::to_hex`] is the one deliberate way out.
#[derive(Clone)]
pub struct AccountKey([u8; KEY_LEN]);

impl AccountKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> AccountKey {
        let mut key = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut key);
        AccountKey(key)
    }

    /// Reads 64 hex characters in either case. Surrounding whitespace is trimmed, because keys come
    /// from files and environment variables that often end in a newline.
    pub fn from_hex(text: &str) -> Result<AccountKey, CryptoError> {
        let text = text.trim();
        let len = text.chars().count();
        if len != 2 * KEY_LEN {
            return Err(CryptoError::KeyWrongLength(len));
        }
        let mut key = [0u8; KEY_LEN];
        hex::decode_to_slice(text, &mut key).map_err(|_| CryptoError::KeyNotHex)?;
        Ok(AccountKey(key))
    }

    /// Lower-case hex, the form [`AccountKey::from_hex`] reads: for writing a newly generated key
    /// to the operator's secret store, and nowhere else.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&self.0))
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountKey(<redacted>)")
    }
}

/// The key the audit chain is hashed with (HMAC-SHA256). It is never stored in the database, so
/// someone who can write SQL but does not hold it cannot append an event, or rewrite one, that
/// `audit verify` accepts. Like [`AccountKey`] it has no `Display` and a redacted `Debug`.
#[derive(Clone)]
pub struct ChainKey([u8; KEY_LEN]);

impl ChainKey {
    pub fn generate() -> ChainKey {
        let mut key = [0u8; KEY_LEN];
        OsRng.fill_bytes(&mut key);
        ChainKey(key)
    }

    /// 64 hex characters, surrounding whitespace trimmed (same form as [`AccountKey::from_hex`]).
    pub fn from_hex(text: &str) -> Result<ChainKey, CryptoError> {
        AccountKey::from_hex(text).map(|k| ChainKey(k.0))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The chain key of a deployment that configures none of its own: HMAC-SHA256 of a fixed
    /// label under the account key. One secret to keep, and still nothing in the database; a
    /// separate chain key lets an auditor verify without being able to open account numbers.
    pub fn derived_from(account: &AccountKey) -> ChainKey {
        ChainKey(hmac_sha256(&account.0, &[b"disburse audit chain key v1"]))
    }

    /// HMAC-SHA256 under this key of the parts, each followed by a newline.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        hmac_sha256(&self.0, parts)
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
        mac.update(b"\n");
    }
    mac.finalize().into_bytes().into()
}

/// Which chain key is configured, without revealing it (first 8 hex characters of its SHA-256).
pub fn chain_fingerprint(key: &ChainKey) -> String {
    hex::encode(&Sha256::digest(key.0)[..4])
}

/// Which key is configured, without revealing it: the first 8 hex characters of its SHA-256, to
/// compare between machines or to record next to the rows a key sealed.
pub fn fingerprint(key: &AccountKey) -> String {
    let digest = Sha256::digest(key.0);
    hex::encode(&digest[..4])
}

/// Seals an account number (see [`crate::account::AccountNumber::plain`]). Each call draws a new
/// nonce, so the same number sealed twice gives different text and equal rows cannot be spotted.
pub fn encrypt_account(key: &AccountKey, plain: &str) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    seal(key, &nonce, plain)
}

fn seal(key: &AccountKey, nonce: &[u8; NONCE_LEN], plain: &str) -> String {
    let sealed = key
        .cipher()
        .encrypt(Nonce::from_slice(nonce), plain.as_bytes())
        .expect("AES-GCM seals any text shorter than 64 GiB");
    let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
    bytes.extend_from_slice(nonce);
    bytes.extend_from_slice(&sealed);
    format!("{V1}{}", BASE64.encode(bytes))
}

/// Opens what [`encrypt_account`] sealed. A wrong key and a tampered value are the same error:
/// GCM cannot tell them apart, and either way the stored number must not be used.
pub fn decrypt_account(key: &AccountKey, sealed: &str) -> Result<String, CryptoError> {
    let body = sealed.strip_prefix(V1).ok_or(CryptoError::UnknownVersion)?;
    let bytes = BASE64.decode(body).map_err(|_| CryptoError::BadBase64)?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::TooShort(bytes.len()));
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let plain = key
        .cipher()
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .map_err(|_| CryptoError::AuthenticationFailed)?;
    String::from_utf8(plain).map_err(|_| CryptoError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const PLAIN: &str = "DE89370400440532013000";

    fn key() -> AccountKey {
        AccountKey::from_hex(KEY_HEX).unwrap()
    }

    fn check_key_err(text: &str, want: CryptoError) {
        let err = AccountKey::from_hex(text).expect_err(text);
        assert_eq!(err, want, "{text:?}");
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains(text.trim()) || text.trim().is_empty(),
            "{shown}"
        );
    }

    fn check_decrypt_err(key: &AccountKey, sealed: &str, want: CryptoError) {
        let err = decrypt_account(key, sealed).expect_err(sealed);
        assert_eq!(err, want, "{sealed:?}");
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains(PLAIN) && !shown.contains(KEY_HEX),
            "{shown}"
        );
    }

    #[test]
    fn round_trips() {
        let key = key();
        for plain in [PLAIN, "US:021000021:123456789", "", "Zoë"] {
            let sealed = encrypt_account(&key, plain);
            assert!(sealed.starts_with("v1:"), "{sealed}");
            assert!(!sealed.contains(plain) || plain.is_empty());
            assert_eq!(decrypt_account(&key, &sealed).as_deref(), Ok(plain));
        }
    }

    #[test]
    fn same_text_seals_differently_each_time() {
        let key = key();
        let a = encrypt_account(&key, PLAIN);
        let b = encrypt_account(&key, PLAIN);
        assert_ne!(a, b, "a fresh nonce per encryption");
        assert_eq!(decrypt_account(&key, &a), decrypt_account(&key, &b));
    }

    #[test]
    fn values_sealed_by_v1_stay_readable() {
        // KEY_HEX, nonce 00..0b, checked against an independent AES-GCM (Python `cryptography`).
        // If this breaks, rows already stored would no longer open.
        let sealed = "v1:AAECAwQFBgcICQoLA0fuIvbS8i+9caO/gdxLX7PntATAS1bp3N2XgYGWIINbXNNqALc=";
        assert_eq!(
            seal(&key(), &std::array::from_fn(|i| i as u8), PLAIN),
            sealed
        );
        assert_eq!(decrypt_account(&key(), sealed).as_deref(), Ok(PLAIN));
    }

    #[test]
    fn wrong_key_does_not_authenticate() {
        let sealed = encrypt_account(&key(), PLAIN);
        check_decrypt_err(
            &AccountKey::generate(),
            &sealed,
            CryptoError::AuthenticationFailed,
        );
    }

    #[test]
    fn any_altered_byte_does_not_authenticate() {
        let key = key();
        let sealed = encrypt_account(&key, PLAIN);
        let bytes = BASE64.decode(&sealed[3..]).unwrap();
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x01;
            let altered = format!("v1:{}", BASE64.encode(altered));
            check_decrypt_err(&key, &altered, CryptoError::AuthenticationFailed);
        }
        let truncated = format!("v1:{}", BASE64.encode(&bytes[..bytes.len() - 1]));
        check_decrypt_err(&key, &truncated, CryptoError::AuthenticationFailed);
    }

    #[test]
    fn malformed_sealed_values_say_why() {
        let key = key();
        let sealed = encrypt_account(&key, PLAIN);
        check_decrypt_err(&key, PLAIN, CryptoError::UnknownVersion);
        check_decrypt_err(
            &key,
            &sealed.replacen("v1:", "v2:", 1),
            CryptoError::UnknownVersion,
        );
        check_decrypt_err(
            &key,
            &sealed.replacen("v1:", "V1:", 1),
            CryptoError::UnknownVersion,
        );
        check_decrypt_err(&key, "", CryptoError::UnknownVersion);
        check_decrypt_err(&key, "v1:not base64!", CryptoError::BadBase64);
        check_decrypt_err(&key, &format!("{sealed}\n"), CryptoError::BadBase64);
        check_decrypt_err(&key, "v1:", CryptoError::TooShort(0));
        check_decrypt_err(
            &key,
            &format!("v1:{}", BASE64.encode([0u8; 27])),
            CryptoError::TooShort(27),
        );
        let err = CryptoError::TooShort(27).to_string();
        assert!(err.contains("27 bytes") && err.contains("take 28"), "{err}");
    }

    #[test]
    fn keys_read_from_hex_and_say_what_is_wrong() {
        assert_eq!(key().to_hex(), KEY_HEX);
        assert_eq!(
            AccountKey::from_hex(&KEY_HEX.to_uppercase())
                .unwrap()
                .to_hex(),
            KEY_HEX
        );
        assert_eq!(
            AccountKey::from_hex(&format!("{KEY_HEX}\n"))
                .unwrap()
                .to_hex(),
            KEY_HEX
        );
        let fresh = AccountKey::generate();
        assert_eq!(
            AccountKey::from_hex(&fresh.to_hex()).unwrap().to_hex(),
            fresh.to_hex()
        );
        assert_ne!(fresh.to_hex(), AccountKey::generate().to_hex());

        check_key_err("", CryptoError::KeyWrongLength(0));
        check_key_err(&KEY_HEX[..62], CryptoError::KeyWrongLength(62));
        check_key_err(&format!("{KEY_HEX}00"), CryptoError::KeyWrongLength(66));
        check_key_err(&KEY_HEX.replace('f', "g"), CryptoError::KeyNotHex);
        check_key_err(&format!("{}é", &KEY_HEX[..63]), CryptoError::KeyNotHex);
        check_key_err(&format!("{}0x", &KEY_HEX[..62]), CryptoError::KeyNotHex);
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = key();
        let shown = format!("{key:?} {key:#?} {:?}", Some(&key));
        assert!(shown.contains("AccountKey(<redacted>)"), "{shown}");
        assert!(
            !shown.contains(KEY_HEX) && !shown.contains("0001020304"),
            "{shown}"
        );
    }

    #[test]
    fn fingerprint_names_the_key_without_revealing_it() {
        // SHA-256 of 32 zero bytes is 66687aad…
        let zero = AccountKey::from_hex(&"0".repeat(64)).unwrap();
        assert_eq!(fingerprint(&zero), "66687aad");
        let print = fingerprint(&key());
        assert_eq!(print.len(), 8);
        assert!(print.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(!KEY_HEX.contains(&print));
        assert_eq!(print, fingerprint(&key()), "stable");
        assert_ne!(print, fingerprint(&zero));
    }

    #[test]
    fn chain_key_reads_hex_hides_itself_and_derives_stably() {
        let chain = ChainKey::from_hex(KEY_HEX).unwrap();
        assert_eq!(chain.to_hex(), KEY_HEX);
        assert_eq!(format!("{chain:?}"), "ChainKey(<redacted>)");
        assert_eq!(
            ChainKey::from_hex("zz").unwrap_err(),
            CryptoError::KeyWrongLength(2)
        );
        // Pinned against Python's hmac: chains already stored must keep verifying.
        assert_eq!(
            hex::encode(chain.mac(&[b"prev", b"event"])),
            "7b515aad45c8c79a32c924551aff76d365c597f673325e3357b856a3208f6d2b"
        );
        assert_eq!(
            ChainKey::derived_from(&key()).to_hex(),
            "b7d2cdcc5fec55b2fa7f2160c73387ead28abde423bc7e740ec0248bf86d75d5"
        );
        // Derived: stable for one account key, different for another, never the account key.
        let derived = ChainKey::derived_from(&key());
        assert_eq!(derived.to_hex(), ChainKey::derived_from(&key()).to_hex());
        assert_ne!(derived.to_hex(), KEY_HEX);
        assert_ne!(
            derived.to_hex(),
            ChainKey::derived_from(&AccountKey::generate()).to_hex()
        );
        // Parts are separated: ("ab", "c") and ("a", "bc") differ.
        assert_ne!(chain.mac(&[b"ab", b"c"]), chain.mac(&[b"a", b"bc"]));
        assert_eq!(chain_fingerprint(&chain).len(), 8);
    }

    proptest! {
        #[test]
        fn any_text_round_trips(plain in ".{0,64}") {
            let key = key();
            prop_assert_eq!(decrypt_account(&key, &encrypt_account(&key, &plain)), Ok(plain));
        }
    }
}

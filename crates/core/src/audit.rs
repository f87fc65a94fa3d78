//! The audit trail as a hash chain. Each event's hash covers the previous hash and the event's
//! canonical text, so changing or removing any event breaks every hash after it. Each event also
//! carries a digest of every row it wrote, so a row changed, removed or added behind the
//! system's back no longer matches the last digest the system recorded for it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::ChainKey;

/// The hash before the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The digest of one stored row as the system wrote it: table, key, and a SHA-256 of its columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowDigest {
    pub table: String,
    pub key: String,
    pub sha256: String,
}

/// Canonical text of a row: each column as `name=value` with value JSON-escaped, one per line,
/// in a fixed order. `None` is written as `null`, distinct from the text "null".
pub fn row_digest(table: &str, key: &str, columns: &[(&str, Option<String>)]) -> RowDigest {
    let mut hasher = Sha256::new();
    hasher.update(table.as_bytes());
    hasher.update(b"\n");
    for (name, value) in columns {
        hasher.update(name.as_bytes());
        hasher.update(b"=");
        match value {
            Some(v) => hasher.update(
                serde_json::to_string(v)
                    .expect("string serializes")
                    .as_bytes(),
            ),
            None => hasher.update(b"null"),
        }
        hasher.update(b"\n");
    }
    RowDigest {
        table: table.to_string(),
        key: key.to_string(),
        sha256: hex::encode(hasher.finalize()),
    }
}

/// The next link of a keyed chain: HMAC-SHA256 under the chain key over the previous hash and the
/// event's canonical text. Without the key nobody can make a link that verifies, so an event
/// inserted, changed or re-hashed with SQL alone is found.
pub fn chain_hmac(key: &ChainKey, prev_hash: &str, canonical_event: &str) -> String {
    hex::encode(key.mac(&[prev_hash.as_bytes(), canonical_event.as_bytes()]))
}

/// The row digest that records a deletion: the row must be absent from then on.
pub const DELETED: &str = "deleted";

/// A checkpoint of the chain kept outside the database: the head (sequence and hash) at a time,
/// signed with the chain key. Whoever can rewrite the database cannot move it; `audit verify
/// --anchor` then proves the chain still holds that event with that hash, and has not shrunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// Format of this file; 1.
    pub version: u32,
    pub seq: i64,
    pub hash: String,
    /// The first keyed event of the chain when the anchor was cut.
    pub keyed_from: i64,
    pub cut_at: String,
    /// Which chain key signed it ([`crate::crypto::chain_fingerprint`]), to tell keys apart.
    pub key_fingerprint: String,
    /// HMAC-SHA256 under the chain key of everything above.
    pub mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorError {
    #[error("anchor file is not an anchor: {0}")]
    Unreadable(String),
    #[error("anchor file has version {0}; this build reads version 1")]
    UnknownVersion(u32),
    #[error(
        "anchor signature does not verify: it was signed with another chain key (anchor key \
         {anchor}, configured key {configured}), or it was altered"
    )]
    BadSignature { anchor: String, configured: String },
}

impl Anchor {
    pub fn cut(key: &ChainKey, seq: i64, hash: &str, keyed_from: i64, cut_at: &str) -> Anchor {
        let mut anchor = Anchor {
            version: 1,
            seq,
            hash: hash.to_string(),
            keyed_from,
            cut_at: cut_at.to_string(),
            key_fingerprint: crate::crypto::chain_fingerprint(key),
            mac: String::new(),
        };
        anchor.mac = anchor.expected_mac(key);
        anchor
    }

    fn expected_mac(&self, key: &ChainKey) -> String {
        let text = serde_json::json!([
            "disburse audit anchor",
            self.version,
            self.seq,
            self.hash,
            self.keyed_from,
            self.cut_at,
            self.key_fingerprint
        ])
        .to_string();
        hex::encode(key.mac(&[text.as_bytes()]))
    }

    /// The file's text: one JSON object.
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).expect("anchor serializes") + "\n"
    }

    /// Reads an anchor file and checks its signature.
    pub fn read(text: &str, key: &ChainKey) -> Result<Anchor, AnchorError> {
        let anchor: Anchor =
            serde_json::from_str(text).map_err(|e| AnchorError::Unreadable(e.to_string()))?;
        if anchor.version != 1 {
            return Err(AnchorError::UnknownVersion(anchor.version));
        }
        if anchor.mac != anchor.expected_mac(key) {
            return Err(AnchorError::BadSignature {
                anchor: anchor.key_fingerprint.clone(),
                configured: crate::crypto::chain_fingerprint(key),
            });
        }
        Ok(anchor)
    }
}

/// The next link of the unkeyed chain that databases older than migration 0008 hold up to their
/// switch point: SHA-256 over the previous hash and the event's canonical text. Anyone can compute
/// it, so it proves nothing against someone with SQL access; it is only read, never written.
pub fn chain_hash(prev_hash: &str, canonical_event: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical_event.as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_distinguishes_null_from_text_and_column_order() {
        let a = row_digest("t", "1", &[("x", None)]);
        let b = row_digest("t", "1", &[("x", Some("null".into()))]);
        assert_ne!(a.sha256, b.sha256);
        let c = row_digest(
            "t",
            "1",
            &[("x", Some("1".into())), ("y", Some("2".into()))],
        );
        let d = row_digest(
            "t",
            "1",
            &[("y", Some("2".into())), ("x", Some("1".into()))],
        );
        assert_ne!(c.sha256, d.sha256);
        // A value cannot smuggle a fake column: it is JSON-escaped.
        let e = row_digest("t", "1", &[("x", Some("1\ny=2".into()))]);
        assert_ne!(c.sha256, e.sha256);
    }

    #[test]
    fn keyed_links_need_the_key() {
        let key = ChainKey::from_hex(&"11".repeat(32)).unwrap();
        let other = ChainKey::generate();
        let link = chain_hmac(&key, GENESIS_HASH, "e");
        assert_eq!(link.len(), 64);
        assert_eq!(link, chain_hmac(&key, GENESIS_HASH, "e"));
        assert_ne!(link, chain_hmac(&other, GENESIS_HASH, "e"));
        assert_ne!(link, chain_hash(GENESIS_HASH, "e"), "not the unkeyed hash");
        assert_ne!(link, chain_hmac(&key, &chain_hash(GENESIS_HASH, "x"), "e"));
    }

    #[test]
    fn anchors_verify_only_unaltered_and_under_their_key() {
        let key = ChainKey::from_hex(&"22".repeat(32)).unwrap();
        let anchor = Anchor::cut(&key, 42, &"ab".repeat(32), 1, "2026-12-02T18:00:00.000000Z");
        let text = anchor.to_text();
        assert_eq!(Anchor::read(&text, &key), Ok(anchor.clone()));
        assert!(!text.contains(&key.to_hex()), "the key is not in the file");
        assert!(matches!(
            Anchor::read(&text, &ChainKey::generate()),
            Err(AnchorError::BadSignature { .. })
        ));
        for (from, to) in [
            ("\"seq\": 42", "\"seq\": 41"),
            ("abab", "abac"),
            ("18:00", "17:00"),
        ] {
            let altered = text.replacen(from, to, 1);
            assert_ne!(altered, text, "{from}");
            assert!(
                matches!(
                    Anchor::read(&altered, &key),
                    Err(AnchorError::BadSignature { .. })
                ),
                "{from} -> {to}"
            );
        }
        assert!(matches!(
            Anchor::read("not json", &key),
            Err(AnchorError::Unreadable(_))
        ));
        assert!(matches!(
            Anchor::read(&text.replacen("\"version\": 1", "\"version\": 2", 1), &key),
            Err(AnchorError::UnknownVersion(2))
        ));
    }

    #[test]
    fn chain_depends_on_previous_hash() {
        assert_ne!(
            chain_hash(GENESIS_HASH, "e"),
            chain_hash(&chain_hash(GENESIS_HASH, "x"), "e")
        );
        assert_eq!(chain_hash(GENESIS_HASH, "e").len(), 64);
    }
}

//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::io::BufReader;
use std::path::PathBuf;

use disburse_core::{Currency, Money};
use disburse_formats::{read_xml_results, ReadError, ResultRecord};

pub fn bankfiles(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../bankfiles")
        .join(rel)
}

pub fn sample_bytes(name: &str) -> Vec<u8> {
    let path = bankfiles(&format!("samples/{name}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn read_all(bytes: &[u8]) -> Vec<Result<ResultRecord, ReadError>> {
    read_xml_results(BufReader::new(bytes)).collect()
}

pub fn money(text: &str, currency: Currency) -> Money {
    Money::parse(text, currency).unwrap()
}

//! Bank accounts: IBANs, BICs and the local account numbers of countries without IBAN.
//!
//! An account number is the one piece of personal data here that can move money, so no type in
//! this module prints it: `Debug` and `Display` show only the last four characters, errors never
//! repeat the text they refused, and nothing that holds a full number implements `Serialize`.
//! The full number leaves only through [`AccountNumber::plain`] (to be encrypted, see
//! [`crate::crypto`]) and [`Iban::as_str`] / [`LocalAccount::number`] (to write a bank file).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an account, or a part of one, was refused. No variant carries the refused number itself,
/// so errors can be logged and shown freely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("country code {0}; it must be two upper-case letters A-Z (ISO 3166-1), like DE or US")]
    BadCountryCode(&'static str),
    #[error("IBAN is empty")]
    Empty,
    #[error(
        "IBAN has {found:?} as character {position} (not counting spaces) where {expected} \
         belongs"
    )]
    InvalidCharacter {
        position: usize,
        found: char,
        expected: &'static str,
    },
    #[error("IBAN spaces are accepted only singly, between groups of four characters")]
    BadSpacing,
    #[error(
        "IBAN starts with {0:?}, which is not a country in the IBAN registry (countries without \
         IBAN take a local account number)"
    )]
    UnknownCountry(String),
    #[error("{country} IBANs have {expected} characters, this one has {got}")]
    WrongLength {
        country: CountryCode,
        expected: usize,
        got: usize,
    },
    #[error(
        "IBAN check digits do not match (ISO 7064 mod-97): a character is mistyped, missing or \
         swapped"
    )]
    BadCheckDigits,
    #[error("BIC must have 8 or 11 characters, got {0}")]
    BicWrongLength(usize),
    #[error("BIC {0}")]
    BadBic(&'static str),
    #[error("{0} has IBAN: give the IBAN instead of a local account number")]
    CountryUsesIban(CountryCode),
    #[error("{country} bank code {why}")]
    BadBankCode {
        country: CountryCode,
        why: &'static str,
    },
    #[error("{country} account number {why}")]
    BadLocalNumber {
        country: CountryCode,
        why: &'static str,
    },
    #[error("account holder name {0}")]
    BadHolderName(&'static str),
    #[error("stored account number is not in the plain format: {0}")]
    BadPlain(&'static str),
}

/// A country as ISO 3166-1 alpha-2: exactly two upper-case ASCII letters. Whether the country
/// exists is not checked here; [`CountryCode::uses_iban`] knows the ones that matter for IBAN.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// Strict: `de`, ` DE` and `DEU` are refused rather than guessed at.
    pub fn parse(text: &str) -> Result<CountryCode, AccountError> {
        match text.as_bytes() {
            [] => Err(AccountError::BadCountryCode("is empty")),
            &[a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(CountryCode([a, b])),
            &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Err(AccountError::BadCountryCode("is not upper case"))
            }
            [_, _] => Err(AccountError::BadCountryCode(
                "has a character that is not a letter",
            )),
            _ => Err(AccountError::BadCountryCode(
                "does not have exactly two letters",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("checked ASCII letters in parse")
    }

    /// Whether accounts in this country are written as IBANs (it is in the IBAN registry), and so
    /// must not be entered as a [`LocalAccount`].
    pub fn uses_iban(self) -> bool {
        iban_length(self).is_some()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

impl FromStr for CountryCode {
    type Err = AccountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CountryCode::parse(s)
    }
}

impl TryFrom<String> for CountryCode {
    type Error = AccountError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        CountryCode::parse(&s)
    }
}

impl From<CountryCode> for String {
    fn from(c: CountryCode) -> String {
        c.as_str().to_string()
    }
}

/// IBAN length per country from the SWIFT IBAN registry (ISO 13616), sorted by country code.
/// Dependent territories (Åland, the French overseas departments, Jersey, Guernsey, Isle of Man)
/// are not listed on their own: their IBANs carry the parent code (FI, FR, GB).
const IBAN_LENGTHS: [(&str, u8); 89] = [
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HN", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

fn iban_length(country: CountryCode) -> Option<usize> {
    IBAN_LENGTHS
        .binary_search_by_key(&country.as_str(), |(code, _)| code)
        .ok()
        .map(|i| usize::from(IBAN_LENGTHS[i].1))
}

/// ISO 7064 MOD 97-10 over an upper-case alphanumeric IBAN: the first four characters move to the
/// end and each letter counts as two digits (A = 10 … Z = 35). Folding one digit at a time keeps the
/// remainder below 97, so no big integer is needed for a 34-character IBAN. A valid IBAN gives 1.
fn mod97(iban: &str) -> u32 {
    let bytes = iban.as_bytes();
    let (head, tail) = bytes.split_at(4.min(bytes.len()));
    tail.iter().chain(head).fold(0, |rest, &b| match b {
        b'0'..=b'9' => (rest * 10 + u32::from(b - b'0')) % 97,
        _ => (rest * 100 + u32::from(b - b'A') + 10) % 97,
    })
}

/// Removes the spaces of the printed form (`DE89 3704 0044 …`), refusing spaces anywhere else: a
/// space in the wrong place more likely means a character went missing than a style choice.
fn strip_group_spaces(text: &str) -> Result<String, AccountError> {
    if !text.contains(' ') {
        return Ok(text.to_string());
    }
    let groups: Vec<&str> = text.split(' ').collect();
    let (last, full) = groups
        .split_last()
        .expect("split yields at least one group");
    let last_len = last.chars().count();
    if full.iter().any(|g| g.chars().count() != 4) || !(1..=4).contains(&last_len) {
        return Err(AccountError::BadSpacing);
    }
    Ok(groups.concat())
}

/// An IBAN that has passed its country's length and the mod-97 check, held upper case without
/// spaces.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Iban(String);

impl Iban {
    /// Accepts the electronic form (`DE89370400440532013000`) and the printed one in groups of four
    /// (`DE89 3704 0044 0532 0130 00`), in either case, with surrounding whitespace trimmed. The
    /// check digits 00, 01 and 99 are refused although mod-97 alone would pass them: ISO 13616 never
    /// issues them.
    pub fn parse(text: &str) -> Result<Iban, AccountError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AccountError::Empty);
        }
        let compact = strip_group_spaces(text)?;
        let mut iban = String::with_capacity(compact.len());
        for (i, c) in compact.chars().enumerate() {
            let (ok, expected) = match i {
                0 | 1 => (c.is_ascii_alphabetic(), "a country-code letter A-Z"),
                2 | 3 => (c.is_ascii_digit(), "a check digit 0-9"),
                _ => (c.is_ascii_alphanumeric(), "a letter A-Z or a digit 0-9"),
            };
            if !ok {
                return Err(AccountError::InvalidCharacter {
                    position: i + 1,
                    found: c,
                    expected,
                });
            }
            iban.push(c.to_ascii_uppercase());
        }
        let country = iban
            .get(..2)
            .and_then(|code| CountryCode::parse(code).ok())
            .ok_or_else(|| AccountError::UnknownCountry(iban.clone()))?;
        let expected =
            iban_length(country).ok_or_else(|| AccountError::UnknownCountry(iban[..2].into()))?;
        if iban.len() != expected {
            return Err(AccountError::WrongLength {
                country,
                expected,
                got: iban.len(),
            });
        }
        if matches!(&iban[2..4], "00" | "01" | "99") || mod97(&iban) != 1 {
            return Err(AccountError::BadCheckDigits);
        }
        Ok(Iban(iban))
    }

    pub fn country(&self) -> CountryCode {
        CountryCode::parse(&self.0[..2]).expect("validated in parse")
    }

    /// The full IBAN. Only for encrypting it and for writing it into a bank file; anywhere else
    /// use [`Iban::last4`] or the `Display` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a person needs to recognise their own account, and no more.
    pub fn last4(&self) -> &str {
        &self.0[self.0.len() - 4..]
    }
}

impl fmt::Display for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "****{}", self.last4())
    }
}

impl fmt::Debug for Iban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Iban({} ****{})", self.country(), self.last4())
    }
}

impl FromStr for Iban {
    type Err = AccountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Iban::parse(s)
    }
}

/// A SWIFT/BIC code (ISO 9362), upper case: bank (4 letters), country (2 letters), location
/// (2 letters or digits) and an optional branch (3 letters or digits). A BIC is public, so unlike an
/// account number it prints and serializes in full.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Bic(String);

impl Bic {
    /// Accepts either case, with surrounding whitespace trimmed; spaces inside are refused.
    pub fn parse(text: &str) -> Result<Bic, AccountError> {
        let text = text.trim();
        let len = text.chars().count();
        if len != 8 && len != 11 {
            return Err(AccountError::BicWrongLength(len));
        }
        // Non-ASCII text has more bytes than characters; the first non-ASCII byte falls inside
        // the checked ranges and fails every test below.
        let bytes = text.as_bytes();
        let all = |range: std::ops::Range<usize>, ok: fn(&u8) -> bool| bytes[range].iter().all(ok);
        if !all(0..4, u8::is_ascii_alphabetic) {
            return Err(AccountError::BadBic(
                "bank code (characters 1-4) must be letters A-Z",
            ));
        }
        if !all(4..6, u8::is_ascii_alphabetic) {
            return Err(AccountError::BadBic(
                "country code (characters 5-6) must be letters A-Z",
            ));
        }
        if !all(6..8, u8::is_ascii_alphanumeric) {
            return Err(AccountError::BadBic(
                "location (characters 7-8) must be letters or digits",
            ));
        }
        if !all(8..len, u8::is_ascii_alphanumeric) {
            return Err(AccountError::BadBic(
                "branch (characters 9-11) must be letters or digits",
            ));
        }
        Ok(Bic(text.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn country(&self) -> CountryCode {
        CountryCode::parse(&self.0[4..6]).expect("validated in parse")
    }
}

impl fmt::Display for Bic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Bic {
    type Err = AccountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bic::parse(s)
    }
}

impl TryFrom<String> for Bic {
    type Error = AccountError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Bic::parse(&s)
    }
}

impl From<Bic> for String {
    fn from(b: Bic) -> String {
        b.0
    }
}

/// Trims, drops the spaces and dashes people write as separators, upper-cases letters, and refuses
/// any other character (dots, slashes, non-ASCII digits) instead of dropping it.
fn normalize_local(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars() {
        match c {
            ' ' | '-' => {}
            c if c.is_ascii_alphanumeric() => out.push(c.to_ascii_uppercase()),
            _ => return None,
        }
    }
    Some(out)
}

/// The ABA routing-number rules: a Federal Reserve prefix (00-12, 21-32, 61-72, 80) and the
/// 3-7-1 weighted checksum, which catches every single-digit typo.
fn aba_routing_ok(code: &str) -> Result<(), &'static str> {
    let digits: Vec<u32> = code.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 9 || code.len() != 9 {
        return Err("(ABA routing number) must be exactly 9 digits");
    }
    if digits.iter().all(|&d| d == 0) {
        return Err("(ABA routing number) cannot be all zeros");
    }
    let prefix = digits[0] * 10 + digits[1];
    if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) {
        return Err("(ABA routing number) does not start with a Federal Reserve prefix");
    }
    let weighted: u32 = digits
        .iter()
        .zip([3, 7, 1].iter().cycle())
        .map(|(d, w)| d * w)
        .sum();
    match weighted % 10 {
        0 => Ok(()),
        _ => Err("(ABA routing number) fails its checksum: a digit is mistyped"),
    }
}

/// An account in a country without IBAN (US, CN, JP, SG, HK, MM, …): the routing or bank code that
/// finds the bank, and the number of the account there, both upper case without separators.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LocalAccount {
    country: CountryCode,
    bank_code: String,
    number: String,
}

impl LocalAccount {
    /// Checks little, because formats differ by bank, but refuses what no bank could accept:
    /// - the country must not have IBAN (those accounts are entered as [`Iban`]);
    /// - bank code: 1-12 (China's CNAPS codes have 12) letters or digits; in the US a 9-digit ABA routing number with a valid
    ///   checksum;
    /// - number: 4-34 letters or digits; at most 17 in the US (the NACHA field), 10-30 digits in CN.
    ///
    /// Spaces and dashes in either are taken as separators and dropped.
    pub fn new(
        country: CountryCode,
        bank_code: &str,
        number: &str,
    ) -> Result<LocalAccount, AccountError> {
        if country.uses_iban() {
            return Err(AccountError::CountryUsesIban(country));
        }
        let bad_code = |why| AccountError::BadBankCode { country, why };
        let bad_number = |why| AccountError::BadLocalNumber { country, why };

        let bank_code = normalize_local(bank_code)
            .ok_or(bad_code("may only have letters, digits, spaces and dashes"))?;
        if bank_code.is_empty() || bank_code.len() > 12 {
            return Err(bad_code("must have 1 to 12 letters or digits"));
        }
        let number = normalize_local(number).ok_or(bad_number(
            "may only have letters, digits, spaces and dashes",
        ))?;
        if !(4..=34).contains(&number.len()) {
            return Err(bad_number("must have 4 to 34 letters or digits"));
        }
        match country.as_str() {
            "US" => {
                aba_routing_ok(&bank_code).map_err(bad_code)?;
                if number.len() > 17 {
                    return Err(bad_number("must have at most 17 characters"));
                }
            }
            "CN" if !(10..=30).contains(&number.len())
                || !number.bytes().all(|b| b.is_ascii_digit()) =>
            {
                return Err(bad_number("must have 10 to 30 digits"));
            }
            _ => {}
        }
        Ok(LocalAccount {
            country,
            bank_code,
            number,
        })
    }

    pub fn country(&self) -> CountryCode {
        self.country
    }

    /// The routing or bank code. Public information (it names a bank, not a person), so it may be
    /// shown.
    pub fn bank_code(&self) -> &str {
        &self.bank_code
    }

    /// The full account number. Only for encrypting it and for writing it into a bank file.
    pub fn number(&self) -> &str {
        &self.number
    }

    pub fn last4(&self) -> &str {
        &self.number[self.number.len() - 4..]
    }
}

impl fmt::Display for LocalAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "****{}", self.last4())
    }
}

impl fmt::Debug for LocalAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LocalAccount({} {} ****{})",
            self.country,
            self.bank_code,
            self.last4()
        )
    }
}

/// Where the money goes: an IBAN, or a local account where there is no IBAN.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum AccountNumber {
    Iban(Iban),
    Local(LocalAccount),
}

impl AccountNumber {
    pub fn country(&self) -> CountryCode {
        match self {
            AccountNumber::Iban(iban) => iban.country(),
            AccountNumber::Local(local) => local.country(),
        }
    }

    pub fn last4(&self) -> &str {
        match self {
            AccountNumber::Iban(iban) => iban.last4(),
            AccountNumber::Local(local) => local.last4(),
        }
    }

    /// `****1234`: safe for screens, logs, e-mails and support tickets.
    pub fn masked(&self) -> String {
        format!("****{}", self.last4())
    }

    /// `"iban"` or `"local"`, for the masked view and for storage next to the encrypted number.
    pub fn kind(&self) -> &'static str {
        match self {
            AccountNumber::Iban(_) => "iban",
            AccountNumber::Local(_) => "local",
        }
    }

    /// The full number as one string, to be encrypted at rest:
    /// - an IBAN as itself: `DE89370400440532013000`;
    /// - a local account as `COUNTRY:BANK_CODE:NUMBER`: `US:021000021:123456789`.
    ///
    /// An IBAN never contains `:`, so the two cannot be confused. [`AccountNumber::parse_plain`]
    /// reads it back.
    pub fn plain(&self) -> String {
        match self {
            AccountNumber::Iban(iban) => iban.as_str().to_string(),
            AccountNumber::Local(local) => {
                format!("{}:{}:{}", local.country, local.bank_code, local.number)
            }
        }
    }

    /// The inverse of [`AccountNumber::plain`]. It validates again, so a stored value written
    /// under older, looser rules is reported rather than trusted.
    pub fn parse_plain(plain: &str) -> Result<AccountNumber, AccountError> {
        if !plain.contains(':') {
            return Iban::parse(plain).map(AccountNumber::Iban);
        }
        let mut parts = plain.split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(country), Some(bank_code), Some(number), None) => {
                let country = CountryCode::parse(country)?;
                LocalAccount::new(country, bank_code, number).map(AccountNumber::Local)
            }
            _ => Err(AccountError::BadPlain(
                "a local account has three parts, COUNTRY:BANK_CODE:NUMBER",
            )),
        }
    }
}

impl From<Iban> for AccountNumber {
    fn from(iban: Iban) -> AccountNumber {
        AccountNumber::Iban(iban)
    }
}

impl From<LocalAccount> for AccountNumber {
    fn from(local: LocalAccount) -> AccountNumber {
        AccountNumber::Local(local)
    }
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountNumber::Iban(iban) => fmt::Debug::fmt(iban, f),
            AccountNumber::Local(local) => fmt::Debug::fmt(local, f),
        }
    }
}

/// The account holder's name as the bank should see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct HolderName(String);

impl HolderName {
    /// At most 140 characters, the SEPA and ISO 20022 name field. Control characters are refused,
    /// and so are invisible ones (zero-width, bidi overrides) that would make a name read
    /// differently on screen than in the bank file.
    pub fn parse(text: &str) -> Result<HolderName, AccountError> {
        let name = text.trim();
        if name.is_empty() {
            return Err(AccountError::BadHolderName("is empty"));
        }
        if name.chars().count() > 140 {
            return Err(AccountError::BadHolderName("is longer than 140 characters"));
        }
        let invisible = |c: char| matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}');
        if name.chars().any(|c| c.is_control() || invisible(c)) {
            return Err(AccountError::BadHolderName(
                "contains a control or invisible formatting character",
            ));
        }
        Ok(HolderName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HolderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for HolderName {
    type Err = AccountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        HolderName::parse(s)
    }
}

impl TryFrom<String> for HolderName {
    type Error = AccountError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        HolderName::parse(&s)
    }
}

impl From<HolderName> for String {
    fn from(n: HolderName) -> String {
        n.0
    }
}

/// A payee's bank account. Not `Serialize` on purpose: what leaves the process is either
/// [`BankAccount::masked_view`] or the encrypted [`AccountNumber::plain`].
#[derive(Clone, PartialEq, Eq)]
pub struct BankAccount {
    holder: HolderName,
    number: AccountNumber,
    bic: Option<Bic>,
}

impl BankAccount {
    /// Each part is validated on its own; no cross-check of BIC and account country, since
    /// territories and foreign branches legitimately differ.
    pub fn new(holder: HolderName, number: AccountNumber, bic: Option<Bic>) -> BankAccount {
        BankAccount {
            holder,
            number,
            bic,
        }
    }

    pub fn holder(&self) -> &HolderName {
        &self.holder
    }

    pub fn number(&self) -> &AccountNumber {
        &self.number
    }

    pub fn bic(&self) -> Option<&Bic> {
        self.bic.as_ref()
    }

    /// `Jane Doe, DE ****3000` — a one-line description safe for logs and notifications.
    pub fn masked(&self) -> String {
        format!(
            "{}, {} {}",
            self.holder,
            self.number.country(),
            self.number.masked()
        )
    }

    /// Everything about the account that may be shown or sent to a client, as one serializable
    /// value.
    pub fn masked_view(&self) -> MaskedAccount {
        MaskedAccount {
            holder: self.holder.clone(),
            kind: self.number.kind().to_string(),
            country: self.number.country(),
            last4: self.number.last4().to_string(),
            bic: self.bic.clone(),
        }
    }
}

impl fmt::Display for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BankAccount")
            .field("holder", &self.holder)
            .field("number", &self.number)
            .field("bic", &self.bic)
            .finish()
    }
}

/// The shareable view of a [`BankAccount`]: enough to recognise it, not enough to pay into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedAccount {
    pub holder: HolderName,
    /// `"iban"` or `"local"`.
    pub kind: String,
    pub country: CountryCode,
    pub last4: String,
    pub bic: Option<Bic>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_iban_ok(text: &str, normalized: &str, country: &str) {
        let iban = Iban::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(iban.as_str(), normalized, "{text:?}");
        assert_eq!(iban.country().as_str(), country, "{text:?}");
        assert_eq!(iban.last4(), &normalized[normalized.len() - 4..]);
    }

    fn check_iban_err(text: &str, needle: &str) {
        let err = Iban::parse(text).expect_err(text).to_string();
        assert!(
            err.contains(needle),
            "{text:?}: {err:?} should say {needle:?}"
        );
    }

    fn check_bic(text: &str, expected: Result<&str, &str>) {
        match (Bic::parse(text), expected) {
            (Ok(bic), Ok(normalized)) => assert_eq!(bic.as_str(), normalized, "{text:?}"),
            (Err(err), Err(needle)) => {
                let err = err.to_string();
                assert!(
                    err.contains(needle),
                    "{text:?}: {err:?} should say {needle:?}"
                );
            }
            (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
        }
    }

    fn check_local(country: &str, code: &str, number: &str, expected: Result<(&str, &str), &str>) {
        let country = CountryCode::parse(country).unwrap();
        match (LocalAccount::new(country, code, number), expected) {
            (Ok(local), Ok((want_code, want_number))) => {
                assert_eq!(
                    (local.bank_code(), local.number()),
                    (want_code, want_number)
                );
            }
            (Err(err), Err(needle)) => {
                let err = err.to_string();
                assert!(
                    err.contains(needle),
                    "{code}/{number}: {err:?} should say {needle:?}"
                );
            }
            (got, want) => panic!("{country} {code} {number}: got {got:?}, want {want:?}"),
        }
    }

    fn local(country: &str, code: &str, number: &str) -> LocalAccount {
        LocalAccount::new(CountryCode::parse(country).unwrap(), code, number).unwrap()
    }

    /// A valid IBAN for `country` and `bban`, check digits computed the ISO 7064 way.
    fn with_check_digits(country: &str, bban: &str) -> String {
        let check = 98 - mod97(&format!("{country}00{bban}"));
        format!("{country}{check:02}{bban}")
    }

    #[test]
    fn parses_registry_examples_from_many_countries() {
        check_iban_ok("DE89370400440532013000", "DE89370400440532013000", "DE");
        check_iban_ok("GB82WEST12345698765432", "GB82WEST12345698765432", "GB");
        check_iban_ok("CH9300762011623852957", "CH9300762011623852957", "CH");
        check_iban_ok(
            "FR1420041010050500013M02606",
            "FR1420041010050500013M02606",
            "FR",
        );
        check_iban_ok("NL91ABNA0417164300", "NL91ABNA0417164300", "NL");
        check_iban_ok("LT121000011101001000", "LT121000011101001000", "LT");
        check_iban_ok("FI2112345600000785", "FI2112345600000785", "FI");
        check_iban_ok("NO9386011117947", "NO9386011117947", "NO");
        check_iban_ok(
            "LC55HEMM000100010012001200023015",
            "LC55HEMM000100010012001200023015",
            "LC",
        );
    }

    #[test]
    fn accepts_printed_form_and_lower_case() {
        let want = "DE89370400440532013000";
        check_iban_ok("DE89 3704 0044 0532 0130 00", want, "DE");
        check_iban_ok("de89 3704 0044 0532 0130 00", want, "DE");
        check_iban_ok("  de89370400440532013000\n", want, "DE");
        check_iban_ok("nl91 abna 0417 1643 00", "NL91ABNA0417164300", "NL");
    }

    #[test]
    fn refuses_with_the_reason() {
        check_iban_err("DE88370400440532013000", "check digits");
        check_iban_err("DE89370400440532013001", "check digits");
        check_iban_err("GB82WEST12345698765423", "check digits");
        check_iban_err(
            "DE8937040044053201300",
            "DE IBANs have 22 characters, this one has 21",
        );
        check_iban_err(
            "DE893704004405320130000",
            "DE IBANs have 22 characters, this one has 23",
        );
        check_iban_err(
            "CH93007620116238529570",
            "CH IBANs have 21 characters, this one has 22",
        );
        check_iban_err("DE", "DE IBANs have 22 characters, this one has 2");
        check_iban_err(
            "US12345678901234567890",
            "\"US\", which is not a country in the IBAN",
        );
        check_iban_err("XX89370400440532013000", "\"XX\"");
        check_iban_err("D", "not a country");
        check_iban_err("12345678", "'1' as character 1");
        check_iban_err(
            "DEAB370400440532013000",
            "'A' as character 3 (not counting spaces) where a check digit",
        );
        check_iban_err("DE89-3704-0044-0532-0130-00", "'-' as character 5");
        check_iban_err("DE89370400440532013ä00", "'ä' as character 20");
        check_iban_err("DE89 370 4004 4053 2013 000", "groups of four");
        check_iban_err("DE89  3704 0044 0532 0130 00", "groups of four");
        check_iban_err("", "empty");
        check_iban_err("   ", "empty");
    }

    #[test]
    fn refuses_check_digits_iso_13616_never_issues() {
        // 00 ≡ 97, 01 ≡ 98 and 99 ≡ 02 (mod 97), so mod-97 alone would accept each in place of
        // the real check digits.
        for (never, real) in [("00", "97"), ("01", "98"), ("99", "02")] {
            let bban = (0..10_000u32)
                .map(|n| format!("3704004405320{n:05}"))
                .find(|b| with_check_digits("DE", b)[2..4] == *real)
                .expect("some BBAN has these check digits");
            let iban = format!("DE{never}{bban}");
            assert_eq!(mod97(&iban), 1, "{iban}: mod-97 alone would pass it");
            check_iban_err(&iban, "check digits");
        }
    }

    #[test]
    fn registry_table_is_sorted_and_plausible() {
        assert!(
            IBAN_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no duplicates"
        );
        for (code, len) in IBAN_LENGTHS {
            let country = CountryCode::parse(code).unwrap();
            assert!((15..=34).contains(&len), "{code} {len}");
            assert_eq!(iban_length(country), Some(usize::from(len)));
        }
        for (code, len) in [
            ("DE", 22),
            ("FR", 27),
            ("GB", 22),
            ("CH", 21),
            ("NL", 18),
            ("LT", 20),
            ("FI", 18),
            ("NO", 15),
            ("LC", 32),
            ("RU", 33),
        ] {
            assert_eq!(
                iban_length(CountryCode::parse(code).unwrap()),
                Some(len),
                "{code}"
            );
        }
        for code in ["US", "CN", "JP", "SG", "HK", "MM", "CA", "AU"] {
            assert!(!CountryCode::parse(code).unwrap().uses_iban(), "{code}");
        }
    }

    #[test]
    fn country_codes_are_strict() {
        assert_eq!(CountryCode::parse("DE").unwrap().to_string(), "DE");
        for (text, needle) in [
            ("", "empty"),
            ("de", "upper case"),
            ("D1", "not a letter"),
            ("DEU", "exactly two"),
            (" DE", "exactly two"),
            ("Ä", "not a letter"),
        ] {
            let err = CountryCode::parse(text).expect_err(text).to_string();
            assert!(
                err.contains(needle),
                "{text:?}: {err:?} should say {needle:?}"
            );
        }
        let json = serde_json::to_string(&CountryCode::parse("FR").unwrap()).unwrap();
        assert_eq!(json, "\"FR\"");
        assert!(serde_json::from_str::<CountryCode>("\"fr\"").is_err());
    }

    #[test]
    fn bics_have_eight_or_eleven_characters() {
        check_bic("DEUTDEFF", Ok("DEUTDEFF"));
        check_bic("DEUTDEFF500", Ok("DEUTDEFF500"));
        check_bic("cobadeffxxx", Ok("COBADEFFXXX"));
        check_bic(" NWBKGB2L ", Ok("NWBKGB2L"));
        check_bic("DEUTDEF", Err("8 or 11 characters, got 7"));
        check_bic("DEUTDEFF50", Err("8 or 11 characters, got 10"));
        check_bic("DEUTDEFF5000", Err("got 12"));
        check_bic("", Err("got 0"));
        check_bic("DEU1DEFF", Err("bank code (characters 1-4)"));
        check_bic("DEUTD3FF", Err("country code (characters 5-6)"));
        check_bic("DEUTDEF-", Err("location (characters 7-8)"));
        check_bic("DEUTDEFF5_0", Err("branch (characters 9-11)"));
        check_bic("DEUT DEFF", Err("got 9"));
        check_bic("DEUTDEFÄ", Err("location"));
        assert_eq!(Bic::parse("DEUTDEFF").unwrap().country().as_str(), "DE");
    }

    #[test]
    fn us_routing_numbers_need_the_aba_checksum() {
        check_local(
            "US",
            "021000021",
            "123456789",
            Ok(("021000021", "123456789")),
        );
        check_local("US", "011000015", "0001234", Ok(("011000015", "0001234")));
        check_local(
            "US",
            "121000358",
            "9876-5432-10",
            Ok(("121000358", "9876543210")),
        );
        check_local("US", "021000022", "123456789", Err("checksum"));
        check_local("US", "012000021", "123456789", Err("checksum"));
        check_local("US", "02100002", "123456789", Err("9 digits"));
        check_local("US", "0210000210", "123456789", Err("9 digits"));
        check_local("US", "02100002A", "123456789", Err("9 digits"));
        check_local("US", "000000000", "123456789", Err("all zeros"));
        check_local(
            "US",
            "500000005",
            "123456789",
            Err("Federal Reserve prefix"),
        );
        check_local("US", "021000021", "123456789012345678", Err("at most 17"));
    }

    #[test]
    fn local_accounts_are_checked_minimally_but_strictly() {
        check_local(
            "CN",
            "BKCHCNBJ",
            "6222 0212 3456 7890",
            Ok(("BKCHCNBJ", "6222021234567890")),
        );
        check_local("SG", "7171", "123-456789-0", Ok(("7171", "1234567890")));
        check_local("JP", "0001", "1234567", Ok(("0001", "1234567")));
        check_local("HK", "004", "123-456789-001", Ok(("004", "123456789001")));
        check_local("MM", "kbz", "abc12345", Ok(("KBZ", "ABC12345")));
        check_local("CN", "BKCHCNBJ", "123456789", Err("10 to 30 digits"));
        check_local("CN", "BKCHCNBJ", "62220212345678AB", Err("10 to 30 digits"));
        check_local("SG", "7171", "123", Err("4 to 34"));
        check_local("SG", "7171", "1 2-3", Err("4 to 34"));
        check_local("SG", "7171", &"1".repeat(35), Err("4 to 34"));
        check_local("SG", "7171", "1234.5678", Err("only have letters, digits"));
        check_local("SG", "7171", "1234\t5678", Err("only have letters, digits"));
        check_local("SG", "7171", "１２３４５", Err("only have letters, digits"));
        check_local("SG", "", "12345678", Err("1 to 12"));
        check_local("SG", " - ", "12345678", Err("1 to 12"));
        check_local("SG", "ABCDEFGHIJKLM", "12345678", Err("1 to 12"));
        check_local("SG", "71/71", "12345678", Err("bank code may only"));
        check_local("DE", "37040044", "0532013000", Err("DE has IBAN"));
    }

    #[test]
    fn plain_round_trips_and_is_documented() {
        let iban = AccountNumber::from(Iban::parse("GB82 WEST 1234 5698 7654 32").unwrap());
        assert_eq!(iban.plain(), "GB82WEST12345698765432");
        assert_eq!(iban.kind(), "iban");
        let us = AccountNumber::from(local("US", "021000021", "1234-5678-9"));
        assert_eq!(us.plain(), "US:021000021:123456789");
        assert_eq!(us.kind(), "local");
        for number in [iban, us] {
            assert_eq!(AccountNumber::parse_plain(&number.plain()), Ok(number));
        }
        for (bad, needle) in [
            ("US:021000021", "three parts"),
            ("US:021000021:123:4", "three parts"),
            ("us:021000021:123456789", "upper case"),
            ("US:021000022:123456789", "checksum"),
            ("DE:37040044:0532013000", "DE has IBAN"),
            ("DE88370400440532013000", "check digits"),
        ] {
            let err = AccountNumber::parse_plain(bad).expect_err(bad).to_string();
            assert!(
                err.contains(needle),
                "{bad:?}: {err:?} should say {needle:?}"
            );
        }
    }

    #[test]
    fn holder_names_are_trimmed_and_printable() {
        assert_eq!(
            HolderName::parse("  Zhang Wei ").unwrap().as_str(),
            "Zhang Wei"
        );
        assert_eq!(
            HolderName::parse("Zoë Ñúñez-Çelik").unwrap().as_str(),
            "Zoë Ñúñez-Çelik"
        );
        assert!(
            HolderName::parse(&"é".repeat(140)).is_ok(),
            "140 characters, not bytes"
        );
        for (text, needle) in [
            ("", "empty"),
            (" \t ", "empty"),
            (&*"a".repeat(141), "longer than 140"),
            ("Jane\nDoe", "control"),
            ("Jane\u{0}Doe", "control"),
            ("Jane\u{202E}eoD", "invisible"),
            ("Jane\u{200B}Doe", "invisible"),
        ] {
            let err = HolderName::parse(text).expect_err(text).to_string();
            assert!(
                err.contains(needle),
                "{text:?}: {err:?} should say {needle:?}"
            );
        }
    }

    #[test]
    fn masking_never_leaks_the_number() {
        let accounts = [
            BankAccount::new(
                HolderName::parse("Jane Doe").unwrap(),
                Iban::parse("DE89370400440532013000").unwrap().into(),
                Some(Bic::parse("COBADEFFXXX").unwrap()),
            ),
            BankAccount::new(
                HolderName::parse("John Roe").unwrap(),
                local("US", "021000021", "987654321").into(),
                None,
            ),
        ];
        for account in &accounts {
            let plain = account.number().plain();
            let secret = match account.number() {
                AccountNumber::Iban(iban) => iban.as_str().to_string(),
                AccountNumber::Local(local) => local.number().to_string(),
            };
            let hidden = &secret[..secret.len() - 4];
            let shown = [
                format!("{account}"),
                format!("{account:?}"),
                format!("{account:#?}"),
                format!("{}", account.number()),
                format!("{:?}", account.number()),
                account.masked(),
                account.number().masked(),
                serde_json::to_string(&account.masked_view()).unwrap(),
                format!("{:?}", account.masked_view()),
                match account.number() {
                    AccountNumber::Iban(iban) => format!("{iban} {iban:?}"),
                    AccountNumber::Local(local) => format!("{local} {local:?}"),
                },
            ];
            for text in shown {
                assert!(!text.contains(&plain), "{text}");
                assert!(!text.contains(hidden), "{text} shows {hidden}");
                assert!(text.contains(account.number().last4()), "{text}");
            }
        }
        assert_eq!(accounts[0].masked(), "Jane Doe, DE ****3000");
        assert_eq!(accounts[0].number().masked(), "****3000");
        assert_eq!(
            format!("{:?}", accounts[1].number()),
            "LocalAccount(US 021000021 ****4321)"
        );
        let view = serde_json::to_value(accounts[0].masked_view()).unwrap();
        assert_eq!(
            view,
            serde_json::json!({
                "holder": "Jane Doe", "kind": "iban", "country": "DE", "last4": "3000",
                "bic": "COBADEFFXXX"
            })
        );
        let back: MaskedAccount = serde_json::from_value(view).unwrap();
        assert_eq!(back, accounts[0].masked_view());
    }

    #[test]
    fn errors_do_not_repeat_the_number() {
        let cases = [
            Iban::parse("DE88370400440532013000").unwrap_err(),
            Iban::parse("DE8937040044053201300").unwrap_err(),
            Iban::parse("DE89 370 4004 4053 2013 000").unwrap_err(),
            LocalAccount::new(CountryCode::parse("CN").unwrap(), "X", "987654321").unwrap_err(),
            AccountNumber::parse_plain("US:021000021:98765432:1").unwrap_err(),
        ];
        for err in cases {
            let text = format!("{err} {err:?}");
            for fragment in ["370400440532", "98765432"] {
                assert!(!text.contains(fragment), "{text}");
            }
        }
    }

    fn valid_iban() -> impl Strategy<Value = String> {
        (0..IBAN_LENGTHS.len()).prop_flat_map(|i| {
            let (country, len) = IBAN_LENGTHS[i];
            proptest::collection::vec(0u8..10, usize::from(len) - 4).prop_map(move |digits| {
                let bban: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
                with_check_digits(country, &bban)
            })
        })
    }

    proptest! {
        #[test]
        fn generated_ibans_parse_in_any_printed_form(iban in valid_iban()) {
            let printed: Vec<String> = iban
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .collect();
            prop_assert_eq!(Iban::parse(&iban).map(|i| i.as_str().to_string()), Ok(iban.clone()));
            let spaced = printed.join(" ").to_lowercase();
            prop_assert_eq!(Iban::parse(&spaced).map(|i| i.as_str().to_string()), Ok(iban));
        }

        /// Mod-97 catches every swap of two adjacent different digits, the commonest typing error
        /// after a single wrong digit, including swaps involving the check digits.
        #[test]
        fn swapping_adjacent_digits_is_caught(iban in valid_iban(), at in any::<proptest::sample::Index>()) {
            let mut bytes = iban.into_bytes();
            let i = 2 + at.index(bytes.len() - 3);
            prop_assume!(bytes[i] != bytes[i + 1]);
            bytes.swap(i, i + 1);
            let swapped = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(Iban::parse(&swapped), Err(AccountError::BadCheckDigits));
        }

        #[test]
        fn changing_one_digit_is_caught(iban in valid_iban(), at in any::<proptest::sample::Index>(), by in 1u8..10) {
            let mut bytes = iban.into_bytes();
            let i = 2 + at.index(bytes.len() - 2);
            bytes[i] = b'0' + (bytes[i] - b'0' + by) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(Iban::parse(&changed), Err(AccountError::BadCheckDigits));
        }
    }
}

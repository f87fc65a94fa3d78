//! Reading any bank CSV file record by record: the encoding decoded as it streams, physical line
//! numbers for every record, header lines skipped and the column names given once, blank lines
//! passed over, and the bounds that keep a hostile file from holding memory (a record longer
//! than [`RECORD_BYTES_MAX`], a field longer than [`FIELD_CHARS_MAX`], a quote never closed).
//! The result reader ([`super::results`]) and the statement reader ([`super::statement`]) read
//! their files through it and differ only in what a record means.

use std::io::{BufRead, Read};

use csv::ByteRecord;
use encoding_rs::GBK;
use encoding_rs_io::{DecodeReaderBytes, DecodeReaderBytesBuilder};

use super::profile::{ColumnRef, CsvEncoding};
use crate::error::{FormatError, FormatErrorKind, LineError};

/// Bytes of the file as UTF-8: passed through, or decoded from GBK as they stream.
enum Decoded<R: Read> {
    Utf8(R),
    Gbk(DecodeReaderBytes<R, Vec<u8>>),
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Decoded::Utf8(r) => r.read(buf),
            Decoded::Gbk(r) => r.read(buf),
        }
    }
}

/// Longest record read, in bytes (after decoding): real result lines are a few hundred bytes.
/// Like the XML reader's bound on one element, it keeps memory bounded by one record.
pub const RECORD_BYTES_MAX: u64 = 1 << 20;
/// Longest field read, in characters; as long as the reason text the XML readers keep.
pub const FIELD_CHARS_MAX: usize = 1000;

/// Where the CSV parser is inside a record, as far as quotes go: the same rules as the `csv`
/// crate's (a quote opens a quoted field only at the start of a field; `""` inside is a quote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the end of the field, or the first of `""`.
    QuoteInQuoted,
}

/// Passes bytes through to the CSV parser and remembers where the newlines are, so a record's
/// byte offset gives its physical line. The parser reports a record at the end of the previous
/// one, before the line break and any blank lines it skips; each newline is kept with the start
/// of the run of line breaks it belongs to, so those are counted too. Holds only the newlines the
/// parser has read ahead: bounded by its buffer.
///
/// It also follows quotes as the parser will, so that a record longer than
/// [`RECORD_BYTES_MAX`] is refused before the parser holds it (a read error the reader turns into
/// a clear one), and a quote that is never closed is reported with the line it opened on.
struct LineIndex<R: Read> {
    inner: Decoded<R>,
    offset: u64,
    /// (offset of a `\n`, offset where its run of `\r`/`\n` bytes starts)
    newlines: std::collections::VecDeque<(u64, u64)>,
    run_start: Option<u64>,
    lines_before: u64,
    delimiter: u8,
    quote: QuoteState,
    /// Newlines read so far: the line of the byte being read is this plus one.
    newlines_read: u64,
    /// Bytes of the record being read, and the line it started on.
    record_bytes: u64,
    record_line: u64,
    /// Offset and line of the quote that opened the quoted field being read.
    quote_opened: Option<(u64, u64)>,
    /// Set when the record being read grew past the bound: the line it started on.
    too_long: Option<u64>,
    /// Set at the end of the file when a quoted field is still open: its offset and line.
    unclosed: Option<(u64, u64)>,
}

impl<R: Read> LineIndex<R> {
    fn new(inner: Decoded<R>, delimiter: u8) -> Self {
        LineIndex {
            inner,
            offset: 0,
            newlines: std::collections::VecDeque::new(),
            run_start: None,
            lines_before: 0,
            delimiter,
            quote: QuoteState::FieldStart,
            newlines_read: 0,
            record_bytes: 0,
            record_line: 1,
            quote_opened: None,
            too_long: None,
            unclosed: None,
        }
    }

    /// The 1-based line of the record the parser reports at byte `offset`; records must be asked
    /// in order.
    fn line_of(&mut self, offset: u64) -> u64 {
        while self
            .newlines
            .front()
            .is_some_and(|&(nl, run)| nl < offset || run <= offset)
        {
            self.newlines.pop_front();
            self.lines_before += 1;
        }
        self.lines_before + 1
    }

    /// Follows one byte through the quoting rules.
    fn follow(&mut self, b: u8, at: u64) {
        let line = self.newlines_read + 1;
        let line_break = b == b'\n' || b == b'\r';
        let state = match self.quote {
            QuoteState::QuoteInQuoted if b == b'"' => QuoteState::Quoted,
            QuoteState::Quoted if b == b'"' => QuoteState::QuoteInQuoted,
            QuoteState::Quoted => QuoteState::Quoted,
            QuoteState::FieldStart if b == b'"' => {
                self.quote_opened = Some((at, line));
                QuoteState::Quoted
            }
            _ if line_break => {
                self.record_bytes = 0;
                self.record_line = line + u64::from(b == b'\n');
                QuoteState::FieldStart
            }
            _ if b == self.delimiter => QuoteState::FieldStart,
            _ => QuoteState::Unquoted,
        };
        if state != QuoteState::Quoted && state != QuoteState::QuoteInQuoted {
            self.quote_opened = None;
        }
        self.quote = state;
        if !(line_break && state == QuoteState::FieldStart) {
            self.record_bytes += 1;
        }
    }
}

impl<R: Read> Read for LineIndex<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.too_long.is_some() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "record too long",
            ));
        }
        let n = self.inner.read(buf)?;
        if n == 0 && matches!(self.quote, QuoteState::Quoted) {
            self.unclosed = self.quote_opened;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            let at = self.offset + i as u64;
            self.follow(b, at);
            if b == b'\n' || b == b'\r' {
                let run = *self.run_start.get_or_insert(at);
                if b == b'\n' {
                    self.newlines.push_back((at, run));
                    self.newlines_read += 1;
                }
            } else {
                self.run_start = None;
            }
            if self.record_bytes > RECORD_BYTES_MAX {
                self.too_long = Some(self.record_line);
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "record too long",
                ));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

/// What the next record of a CSV file is.
pub(crate) enum CsvEvent {
    /// The column names are known: the last header line (`None` when the file has none). Comes
    /// once, before the first data record.
    Header {
        line: u64,
        names: Option<ByteRecord>,
    },
    /// A data record, held in [`CsvLines::record`].
    Row { line: u64 },
}

/// A bank CSV file as records with their physical lines; see the module documentation.
pub(crate) struct CsvLines<R: Read> {
    /// The profile's name, for messages.
    profile: String,
    encoding: CsvEncoding,
    header_lines: usize,
    /// What a record of this file is, for the too-long message ("bank result line").
    record_kind: &'static str,
    // Boxed: the parser and its line index are large, and callers keep this beside XML readers.
    reader: Box<csv::Reader<LineIndex<R>>>,
    pub(crate) record: ByteRecord,
    records_read: usize,
    header_given: bool,
    /// A data record read while the header was still to be given (a file without header lines).
    row_waiting: Option<u64>,
    done: bool,
    /// A file refused before its first record (UTF-16): the first and only item.
    refused: Option<FormatError>,
}

impl<R: BufRead> CsvLines<R> {
    pub(crate) fn open(
        mut reader: R,
        profile: &str,
        encoding: CsvEncoding,
        delimiter: u8,
        header_lines: usize,
        record_kind: &'static str,
    ) -> CsvLines<R> {
        let refused = crate::xml::utf16_refusal(&mut reader);
        let decoded = match encoding {
            CsvEncoding::Utf8 => Decoded::Utf8(reader),
            CsvEncoding::Gbk => Decoded::Gbk(
                DecodeReaderBytesBuilder::new()
                    .encoding(Some(GBK))
                    .build(reader),
            ),
        };
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(LineIndex::new(decoded, delimiter));
        CsvLines {
            profile: profile.to_string(),
            encoding,
            header_lines,
            record_kind,
            reader: Box::new(reader),
            record: ByteRecord::new(),
            records_read: 0,
            header_given: false,
            row_waiting: None,
            done: false,
            refused,
        }
    }
}

impl<R: Read> CsvLines<R> {
    fn too_long(&self, line: u64) -> FormatError {
        let mut message = format!(
            "the record starting on line {line} is longer than {} MiB; no {} is that long, so \
             the file is refused",
            RECORD_BYTES_MAX >> 20,
            self.record_kind
        );
        if let Some((_, opened)) = self.reader.get_ref().quote_opened {
            message.push_str(&format!(
                " (a quoted field opened on line {opened} is still open: an unbalanced quote?)"
            ));
        }
        FormatError::new(line, FormatErrorKind::TooLarge(message))
    }

    /// The next record; `None` at the end of the file. An `Err` is fatal and ends the file.
    pub(crate) fn next_event(&mut self) -> Option<Result<CsvEvent, FormatError>> {
        if let Some(e) = self.refused.take() {
            self.done = true;
            return Some(Err(e));
        }
        if let Some(line) = self.row_waiting.take() {
            return Some(Ok(CsvEvent::Row { line }));
        }
        loop {
            if self.done {
                return None;
            }
            let more = match self.reader.read_byte_record(&mut self.record) {
                Ok(more) => more,
                Err(e) => {
                    self.done = true;
                    if let Some(line) = self.reader.get_ref().too_long {
                        return Some(Err(self.too_long(line)));
                    }
                    let line = e.position().map_or(0, |p| p.line());
                    return Some(Err(FormatError::new(
                        line,
                        FormatErrorKind::Io(e.to_string()),
                    )));
                }
            };
            if let Some((opened_at, opened_line)) = self.reader.get_ref().unclosed {
                if more && self.reader.position().byte() > opened_at {
                    self.done = true;
                    return Some(Err(FormatError::new(
                        opened_line,
                        FormatErrorKind::Layout(format!(
                            "a quoted field opened on line {opened_line} is never closed: \
                             the quote is unbalanced, so every line after it would be read \
                             as part of that field"
                        )),
                    )));
                }
            }
            if !more {
                self.done = true;
                if self.records_read < self.header_lines {
                    let kind = if self.records_read == 0 {
                        FormatErrorKind::Empty
                    } else {
                        FormatErrorKind::Layout(format!(
                            "the file ends before its {} header line(s)",
                            self.header_lines
                        ))
                    };
                    return Some(Err(FormatError::new(1, kind)));
                }
                return None;
            }
            let start = self.record.position().map_or(0, |p| p.byte());
            let line = self.reader.get_mut().line_of(start);
            self.records_read += 1;
            if self.records_read < self.header_lines {
                continue;
            }
            if self.records_read == self.header_lines {
                self.header_given = true;
                return Some(Ok(CsvEvent::Header {
                    line,
                    names: Some(self.record.clone()),
                }));
            }
            if self
                .record
                .iter()
                .all(|f| f.iter().all(u8::is_ascii_whitespace))
            {
                continue;
            }
            if !self.header_given {
                self.header_given = true;
                self.row_waiting = Some(line);
                return Some(Ok(CsvEvent::Header { line, names: None }));
            }
            return Some(Ok(CsvEvent::Row { line }));
        }
    }

    /// Ends the file: nothing more is read (after a fatal error of the caller's own).
    pub(crate) fn stop(&mut self) {
        self.done = true;
        self.row_waiting = None;
    }

    /// A field's bytes as trimmed text, checked against the encoding and the length bound.
    pub(crate) fn decode<'r>(
        &self,
        bytes: &'r [u8],
        line: u64,
        field: &str,
    ) -> Result<&'r str, LineError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            LineError::new(
                line,
                field,
                format!(
                    "not valid UTF-8 (byte {} of the field); profile {:?} declares utf-8 — is the file in another encoding, such as GBK?",
                    e.valid_up_to() + 1,
                    self.profile
                ),
            )
        })?;
        if self.encoding == CsvEncoding::Gbk && text.contains('\u{FFFD}') {
            return Err(LineError::new(
                line,
                field,
                format!(
                    "contains bytes that are not valid GBK (profile {:?})",
                    self.profile
                ),
            ));
        }
        let text = text.trim_start_matches('\u{FEFF}').trim();
        // Counting stops past the bound: a huge field costs no more than the record it is in.
        if text.chars().nth(FIELD_CHARS_MAX).is_some() {
            return Err(LineError::new(
                line,
                field,
                format!(
                    "is longer than {FIELD_CHARS_MAX} characters ({} bytes); refused, not cut",
                    text.len()
                ),
            ));
        }
        Ok(text)
    }

    /// The field at `index` of the current record: `None` when the column is absent or empty.
    pub(crate) fn field(
        &self,
        index: Option<usize>,
        line: u64,
        name: &str,
    ) -> Result<Option<String>, LineError> {
        let Some(bytes) = index.and_then(|i| self.record.get(i)) else {
            return Ok(None);
        };
        let text = self.decode(bytes, line, name)?;
        Ok(if text.is_empty() {
            None
        } else {
            Some(text.to_string())
        })
    }

    /// The header's column names, decoded.
    pub(crate) fn header_names(
        &self,
        line: u64,
        header: Option<&ByteRecord>,
    ) -> Result<Columns, FormatError> {
        let mut names = Vec::new();
        if let Some(header) = header {
            for (i, cell) in header.iter().enumerate() {
                let name = self.decode(cell, line, "header").map_err(|e| {
                    FormatError::new(
                        line,
                        FormatErrorKind::Encoding(format!(
                            "header column {}: {}",
                            i + 1,
                            e.message
                        )),
                    )
                })?;
                names.push(name.to_string());
            }
        }
        Ok(Columns {
            profile: self.profile.clone(),
            line,
            names,
        })
    }
}

/// A file's column names, to find the profile's columns in.
pub(crate) struct Columns {
    profile: String,
    line: u64,
    names: Vec<String>,
}

impl Columns {
    /// The 0-based position of a column the profile names (by header text, exactly or ignoring
    /// case, or by 1-based position); the header must have it.
    pub(crate) fn find(&self, field: &str, column: &ColumnRef) -> Result<usize, FormatError> {
        match column {
            ColumnRef::Index(i) => Ok(i - 1),
            ColumnRef::Name(name) => self
                .names
                .iter()
                .position(|n| n == name.trim())
                .or_else(|| {
                    self.names
                        .iter()
                        .position(|n| n.to_lowercase() == name.trim().to_lowercase())
                })
                .ok_or_else(|| {
                    FormatError::new(
                        self.line,
                        FormatErrorKind::Layout(format!(
                            "column {name:?} (for {field}) is not in the header; profile {:?} expects it, the header has {:?}",
                            self.profile, self.names
                        )),
                    )
                }),
        }
    }

    pub(crate) fn find_opt(
        &self,
        field: &str,
        column: &Option<ColumnRef>,
    ) -> Result<Option<usize>, FormatError> {
        column.as_ref().map(|c| self.find(field, c)).transpose()
    }
}

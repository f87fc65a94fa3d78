//! The streaming XML cursor every ISO 20022 reader in this crate is built on.
//!
//! It wraps `quick_xml::Reader` over any `BufRead` with one reused buffer, keeps the path of open
//! elements (local names, namespace prefixes dropped) in one `String`, counts newlines in the bytes
//! it consumes so every element knows the line it starts on, and turns every way a file can be
//! broken into a [`FormatError`]. Memory is bounded: by the nesting depth ([`MAX_DEPTH`]) and by the
//! size of one event or text ([`MAX_EVENT_BYTES`]), never by the size of the file.

use std::io::{self, BufRead, Read};

use quick_xml::errors::{Error as XmlError, SyntaxError};
use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{FormatError, FormatErrorKind};

/// Deepest nesting accepted. ISO 20022 messages nest about 12 deep.
pub(crate) const MAX_DEPTH: usize = 64;
/// Largest tag or text accepted, in bytes. Real bank files stay far below.
pub(crate) const MAX_EVENT_BYTES: u64 = 1 << 20;

/// Refuses a file in UTF-16, told by its first bytes: a byte order mark (`FF FE`, `FE FF`), or
/// without one the `<?` of an XML declaration written in two bytes per character (XML 1.0,
/// appendix F). ISO 20022 messages are UTF-8 and CSV files are read in their profile's encoding,
/// so the file is refused with what it is, instead of being called "not XML" or mis-read.
pub(crate) fn refuse_utf16(head: &[u8]) -> Result<(), FormatError> {
    let found = match head {
        [0xFF, 0xFE, ..] => Some("UTF-16 little-endian (it starts with the byte order mark FF FE)"),
        [0xFE, 0xFF, ..] => Some("UTF-16 big-endian (it starts with the byte order mark FE FF)"),
        [b'<', 0, b'?', 0, ..] => Some("UTF-16 little-endian without a byte order mark"),
        [0, b'<', 0, b'?', ..] => Some("UTF-16 big-endian without a byte order mark"),
        _ => None,
    };
    match found {
        Some(what) => Err(FormatError::new(
            1,
            FormatErrorKind::Encoding(format!(
                "the file is in {what}; bank files are read as UTF-8 (ISO 20022) or in their CSV \
                 profile's encoding: convert it to UTF-8 first (e.g. iconv -f UTF-16 -t UTF-8)"
            )),
        )),
        None => Ok(()),
    }
}

/// Peeks at the first bytes of `reader` (without consuming them) and returns the UTF-16 refusal
/// the reader's first item must be, if any. A read error here is left for the first real read.
pub(crate) fn utf16_refusal<R: BufRead>(reader: &mut R) -> Option<FormatError> {
    reader
        .fill_buf()
        .ok()
        .and_then(|head| refuse_utf16(head).err())
}

/// A `BufRead` that counts the newlines and bytes consumed through it, and refuses to hand out
/// more than [`MAX_EVENT_BYTES`] since the last [`Counted::mark`] (one XML event).
pub(crate) struct Counted<R> {
    inner: R,
    newlines: u64,
    consumed: u64,
    mark: u64,
    too_large: bool,
}

impl<R: BufRead> Counted<R> {
    pub(crate) fn new(inner: R) -> Self {
        Counted {
            inner,
            newlines: 0,
            consumed: 0,
            mark: 0,
            too_large: false,
        }
    }

    fn mark(&mut self) {
        self.mark = self.consumed;
    }
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let available = self.fill_buf()?;
            let n = available.len().min(out.len());
            out[..n].copy_from_slice(&available[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed - self.mark > MAX_EVENT_BYTES {
            self.too_large = true;
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "element or text too large",
            ));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        // `fill_buf` on a non-empty buffer returns the same bytes without reading: these are
        // exactly the bytes being consumed.
        if let Ok(buf) = self.inner.fill_buf() {
            let end = amt.min(buf.len());
            self.newlines += buf[..end].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

/// What the cursor found next. The path (see [`Cursor::path`]) includes the element on both
/// `Start` and `End`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Start { line: u64 },
    End { line: u64 },
    Eof,
}

pub(crate) struct Cursor<R: BufRead> {
    reader: Reader<Counted<R>>,
    buf: Vec<u8>,
    /// `Document/CstmrPmtStsRpt/OrgnlGrpInfAndSts/GrpSts`
    path: String,
    /// For each open element: path length before it was pushed, and its start line.
    open: Vec<(usize, u64)>,
    text: String,
    ccy: Option<String>,
    pop_pending: bool,
    root_seen: bool,
    root_namespace: Option<String>,
    finished: bool,
    /// A file refused before its first byte is parsed (UTF-16): the error the first step returns.
    refused: Option<FormatError>,
}

impl<R: BufRead> Cursor<R> {
    pub(crate) fn new(mut inner: R) -> Self {
        let refused = utf16_refusal(&mut inner);
        let mut reader = Reader::from_reader(Counted::new(inner));
        let config = reader.config_mut();
        config.expand_empty_elements = true;
        config.check_end_names = true;
        config.trim_text(false);
        Cursor {
            reader,
            buf: Vec::with_capacity(1024),
            path: String::with_capacity(256),
            open: Vec::with_capacity(MAX_DEPTH),
            text: String::new(),
            ccy: None,
            pop_pending: false,
            root_seen: false,
            root_namespace: None,
            finished: false,
            refused,
        }
    }

    /// Slash-separated local names of the open elements, root first.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Number of open elements (the root is depth 1).
    pub(crate) fn depth(&self) -> usize {
        self.open.len()
    }

    /// Length of [`Cursor::path`] now; keep it at a container's `Start` and pass it to
    /// [`Cursor::relative`] inside.
    pub(crate) fn path_len(&self) -> usize {
        self.path.len()
    }

    /// The path below a container whose `path_len` was `base`: `Refs/EndToEndId`. Empty for the
    /// container itself.
    pub(crate) fn relative(&self, base: usize) -> &str {
        self.path
            .get(base..)
            .map(|rest| rest.strip_prefix('/').unwrap_or(rest))
            .unwrap_or("")
    }

    /// The local name of the innermost open element.
    pub(crate) fn name(&self) -> &str {
        match self.open.last() {
            Some(&(before, _)) => {
                let start = if before == 0 { 0 } else { before + 1 };
                &self.path[start..]
            }
            None => "",
        }
    }

    /// Text of the element that just ended (meaningful for leaf elements), trimmed.
    pub(crate) fn text(&self) -> &str {
        self.text.trim()
    }

    /// The `Ccy` attribute of the latest element whose name ends in `Amt`.
    pub(crate) fn ccy(&self) -> Option<&str> {
        self.ccy.as_deref()
    }

    /// The namespace of the root element, once it has been read.
    pub(crate) fn root_namespace(&self) -> Option<&str> {
        self.root_namespace.as_deref()
    }

    /// The line the cursor has reached (1-based).
    pub(crate) fn line(&self) -> u64 {
        self.reader.get_ref().newlines + 1
    }

    pub(crate) fn error(&self, kind: FormatErrorKind) -> FormatError {
        FormatError::new(self.line(), kind)
    }

    pub(crate) fn next_step(&mut self) -> Result<Step, FormatError> {
        if self.finished {
            return Ok(Step::Eof);
        }
        if let Some(e) = self.refused.take() {
            self.finished = true;
            return Err(e);
        }
        if self.pop_pending {
            self.pop_pending = false;
            if let Some((before, _)) = self.open.pop() {
                self.path.truncate(before);
            }
        }
        loop {
            self.buf.clear();
            let line_before = self.reader.get_ref().newlines + 1;
            self.reader.get_mut().mark();
            let event = self.reader.read_event_into(&mut self.buf);
            match event {
                Ok(Event::Start(start)) => {
                    if self.open.is_empty() && self.root_seen {
                        return Err(FormatError::new(
                            line_before,
                            FormatErrorKind::Malformed(
                                "a second root element after the first one ended".into(),
                            ),
                        ));
                    }
                    if self.open.len() >= MAX_DEPTH {
                        return Err(FormatError::new(
                            line_before,
                            FormatErrorKind::TooLarge(format!(
                                "elements nest deeper than {MAX_DEPTH} levels"
                            )),
                        ));
                    }
                    let local = std::str::from_utf8(start.local_name().into_inner())
                        .map_err(|_| {
                            FormatError::new(
                                line_before,
                                FormatErrorKind::Encoding("element name is not UTF-8".into()),
                            )
                        })?
                        .to_string();
                    if self.open.is_empty() {
                        self.root_seen = true;
                        let prefix = start.name().prefix().map(|p| p.into_inner().to_vec());
                        let wanted: Vec<u8> = match &prefix {
                            Some(p) => [b"xmlns:".as_slice(), p].concat(),
                            None => b"xmlns".to_vec(),
                        };
                        for attr in start.attributes().flatten() {
                            if attr.key.as_ref() == wanted.as_slice() {
                                self.root_namespace =
                                    Some(String::from_utf8_lossy(&attr.value).into_owned());
                            }
                        }
                    }
                    self.ccy = None;
                    if local.ends_with("Amt") {
                        if let Ok(Some(attr)) = start.try_get_attribute("Ccy") {
                            self.ccy = Some(String::from_utf8_lossy(&attr.value).into_owned());
                        }
                    }
                    self.open.push((self.path.len(), line_before));
                    if !self.path.is_empty() {
                        self.path.push('/');
                    }
                    self.path.push_str(&local);
                    self.text.clear();
                    return Ok(Step::Start { line: line_before });
                }
                Ok(Event::End(_)) => {
                    self.pop_pending = true;
                    return Ok(Step::End { line: line_before });
                }
                Ok(Event::Text(text)) => {
                    let unescaped = text.unescape().map(|t| t.into_owned());
                    let unescaped = unescaped.map_err(|e| self.map_xml_error(e))?;
                    if self.open.is_empty() {
                        if !unescaped.trim().is_empty() {
                            return Err(self.outside_root(&unescaped));
                        }
                        continue;
                    }
                    self.push_text(&unescaped)?;
                }
                Ok(Event::CData(data)) => {
                    let data = String::from_utf8(data.into_inner().into_owned()).map_err(|_| {
                        self.error(FormatErrorKind::Encoding("CDATA is not UTF-8".into()))
                    })?;
                    if self.open.is_empty() {
                        return Err(self.outside_root(&data));
                    }
                    self.push_text(&data)?;
                }
                Ok(Event::Decl(decl)) => {
                    if let Some(Ok(encoding)) = decl.encoding() {
                        let name = String::from_utf8_lossy(&encoding).to_ascii_lowercase();
                        if !matches!(name.as_str(), "utf-8" | "utf8" | "us-ascii" | "ascii") {
                            return Err(self.error(FormatErrorKind::Encoding(format!(
                                "the file declares encoding {name:?}; only UTF-8 is read"
                            ))));
                        }
                    }
                }
                Ok(Event::Eof) => {
                    self.finished = true;
                    if let Some(&(_, opened_line)) = self.open.last() {
                        return Err(self.error(FormatErrorKind::Truncated {
                            element: self.name().to_string(),
                            opened_line,
                            open_elements: self.open.len(),
                        }));
                    }
                    if !self.root_seen {
                        let kind = if self.reader.get_ref().consumed == 0 {
                            FormatErrorKind::Empty
                        } else {
                            FormatErrorKind::NotXml("no XML element found".into())
                        };
                        return Err(self.error(kind));
                    }
                    return Ok(Step::Eof);
                }
                Ok(_) => {} // comments, processing instructions, DOCTYPE
                Err(e) => {
                    self.finished = true;
                    return Err(self.map_xml_error(e));
                }
            }
        }
    }

    fn push_text(&mut self, more: &str) -> Result<(), FormatError> {
        if (self.text.len() + more.len()) as u64 > MAX_EVENT_BYTES {
            return Err(self.error(FormatErrorKind::TooLarge(format!(
                "text of <{}> is longer than {MAX_EVENT_BYTES} bytes",
                self.name()
            ))));
        }
        self.text.push_str(more);
        Ok(())
    }

    fn outside_root(&self, text: &str) -> FormatError {
        let sample: String = text.trim().chars().take(40).collect();
        let kind = if self.root_seen {
            FormatErrorKind::Malformed(format!("text after the root element: {sample:?}"))
        } else {
            FormatErrorKind::NotXml(format!("text before any element: {sample:?}"))
        };
        self.error(kind)
    }

    fn map_xml_error(&self, e: XmlError) -> FormatError {
        let counted = self.reader.get_ref();
        if counted.too_large {
            return self.error(FormatErrorKind::TooLarge(format!(
                "a single tag or text is longer than {MAX_EVENT_BYTES} bytes"
            )));
        }
        let kind = match e {
            XmlError::Syntax(SyntaxError::UnclosedTag)
            | XmlError::Syntax(SyntaxError::UnclosedCData)
            | XmlError::Syntax(SyntaxError::UnclosedComment)
            | XmlError::Syntax(SyntaxError::UnclosedPIOrXmlDecl)
                if !self.open.is_empty() =>
            {
                let &(_, opened_line) = self.open.last().expect("checked non-empty");
                FormatErrorKind::Truncated {
                    element: self.name().to_string(),
                    opened_line,
                    open_elements: self.open.len(),
                }
            }
            XmlError::Syntax(s) if !self.root_seen => FormatErrorKind::NotXml(s.to_string()),
            XmlError::Io(io) => FormatErrorKind::Io(io.to_string()),
            XmlError::Encoding(enc) => {
                FormatErrorKind::Encoding(format!("the file is not valid UTF-8 ({enc})"))
            }
            other => FormatErrorKind::Malformed(other.to_string()),
        };
        self.error(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(xml: &str) -> Result<Vec<(String, Step)>, FormatError> {
        let mut cursor = Cursor::new(xml.as_bytes());
        let mut out = Vec::new();
        loop {
            let step = cursor.next_step()?;
            out.push((cursor.path().to_string(), step));
            if step == Step::Eof {
                return Ok(out);
            }
        }
    }

    #[test]
    fn tracks_paths_and_lines() {
        let got = steps("<?xml version=\"1.0\"?>\n<p:Doc xmlns:p=\"urn:x\">\n  <A>\n    <B/>\n  </A>\n</p:Doc>\n").unwrap();
        let want = [
            ("Doc", Step::Start { line: 2 }),
            ("Doc/A", Step::Start { line: 3 }),
            ("Doc/A/B", Step::Start { line: 4 }),
            ("Doc/A/B", Step::End { line: 4 }),
            ("Doc/A", Step::End { line: 5 }),
            ("Doc", Step::End { line: 6 }),
            ("", Step::Eof),
        ];
        let want: Vec<(String, Step)> = want.iter().map(|(p, s)| (p.to_string(), *s)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn root_namespace_with_and_without_prefix() {
        for xml in [
            "<Document xmlns=\"urn:a\"/>",
            "<x:Document xmlns:x=\"urn:a\" xmlns=\"urn:b\"/>",
        ] {
            let mut c = Cursor::new(xml.as_bytes());
            c.next_step().unwrap();
            assert_eq!(c.root_namespace(), Some("urn:a"), "{xml}");
        }
    }

    #[test]
    fn text_is_unescaped_and_ccy_kept() {
        let mut c = Cursor::new(
            "<D><Nm>A &amp; B &lt;C&gt;</Nm><InstdAmt Ccy=\"EUR\">1.00</InstdAmt></D>".as_bytes(),
        );
        c.next_step().unwrap();
        c.next_step().unwrap();
        assert_eq!(c.next_step().unwrap(), Step::End { line: 1 });
        assert_eq!(c.text(), "A & B <C>");
        c.next_step().unwrap();
        assert_eq!(c.ccy(), Some("EUR"));
        c.next_step().unwrap();
        assert_eq!(c.text(), "1.00");
    }

    proptest::proptest! {
        #[test]
        fn escaped_text_reads_back(text in "[^\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F\\x{FFFE}\\x{FFFF}]{0,40}") {
            let xml = format!("<D><T>{}</T></D>", crate::pain001::escape(&text));
            let mut c = Cursor::new(xml.as_bytes());
            c.next_step().unwrap();
            c.next_step().unwrap();
            proptest::prop_assert_eq!(c.next_step().unwrap(), Step::End { line: 1 + text.matches('\n').count() as u64 });
            // Text is compared trimmed, as the readers use it; \r is normalised by XML.
            proptest::prop_assert_eq!(c.text(), text.trim());
        }
    }

    #[test]
    fn broken_files_are_format_errors() {
        let kind = |xml: &str| steps(xml).unwrap_err().kind;
        assert_eq!(kind(""), FormatErrorKind::Empty);
        assert!(
            matches!(kind("<D><A>1</A>"), FormatErrorKind::Truncated { ref element, .. } if element == "D")
        );
        assert!(matches!(
            kind("<D><A>1</A><B Ccy=\"E"),
            FormatErrorKind::Truncated { .. }
        ));
        assert!(matches!(
            kind("<D><A>1</B></D>"),
            FormatErrorKind::Malformed(_)
        ));
        assert!(matches!(
            kind("<D>&nbsp;</D>"),
            FormatErrorKind::Malformed(_)
        ));
        assert!(matches!(
            kind("<D/>trailing"),
            FormatErrorKind::Malformed(_)
        ));
        assert!(matches!(
            kind("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><D/>"),
            FormatErrorKind::Encoding(_)
        ));
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(matches!(kind(&deep), FormatErrorKind::TooLarge(_)));
    }

    #[test]
    fn one_huge_text_is_refused_without_reading_it_all() {
        let mut xml = String::from("<D>");
        xml.push_str(&"x".repeat((MAX_EVENT_BYTES as usize) * 2));
        xml.push_str("</D>");
        assert!(matches!(
            steps(&xml).unwrap_err().kind,
            FormatErrorKind::TooLarge(_)
        ));
    }
}

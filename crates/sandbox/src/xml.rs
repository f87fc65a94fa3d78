//! A small indenting XML writer over `quick_xml::Writer`: open, leaf, close. Text and attribute
//! values are escaped by quick-xml.

use std::io::{self, Write};

use disburse_core::Money;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

pub(crate) struct Xml<W: Write> {
    w: quick_xml::Writer<W>,
    open: Vec<&'static str>,
}

impl<W: Write> Xml<W> {
    /// Starts a document: the XML declaration, then the root `<Document xmlns="namespace">`.
    pub(crate) fn document(out: W, namespace: &str) -> io::Result<Self> {
        Self::start(quick_xml::Writer::new_with_indent(out, b' ', 2), namespace)
    }

    /// A document on one physical line, as some banks send them (the PostFinance samples): a
    /// reader that counts lines instead of records would resume such a file wrongly.
    pub(crate) fn one_line_document(out: W, namespace: &str) -> io::Result<Self> {
        Self::start(quick_xml::Writer::new(out), namespace)
    }

    fn start(w: quick_xml::Writer<W>, namespace: &str) -> io::Result<Self> {
        let mut xml = Xml {
            w,
            open: Vec::with_capacity(12),
        };
        xml.w
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let root = BytesStart::new("Document").with_attributes([("xmlns", namespace)]);
        xml.w.write_event(Event::Start(root))?;
        xml.open.push("Document");
        Ok(xml)
    }

    pub(crate) fn open(&mut self, name: &'static str) -> io::Result<()> {
        self.w.write_event(Event::Start(BytesStart::new(name)))?;
        self.open.push(name);
        Ok(())
    }

    pub(crate) fn close(&mut self) -> io::Result<()> {
        let name = self.open.pop().expect("close matches an open");
        self.w.write_event(Event::End(BytesEnd::new(name)))
    }

    /// `<name>text</name>`
    pub(crate) fn leaf(&mut self, name: &'static str, text: &str) -> io::Result<()> {
        self.w
            .create_element(name)
            .write_text_content(BytesText::new(text))?;
        Ok(())
    }

    /// `<name Ccy="EUR">12.50</name>`
    pub(crate) fn amount(&mut self, name: &'static str, money: Money) -> io::Result<()> {
        self.w
            .create_element(name)
            .with_attribute(("Ccy", money.currency().code()))
            .write_text_content(BytesText::new(&money.to_decimal_string()))?;
        Ok(())
    }

    /// `<outer><inner>text</inner></outer>`, for the many one-child wrappers of ISO 20022.
    pub(crate) fn wrapped(
        &mut self,
        outer: &'static str,
        inner: &'static str,
        text: &str,
    ) -> io::Result<()> {
        self.open(outer)?;
        self.leaf(inner, text)?;
        self.close()
    }

    /// Closes `Document`, ends the file with a newline and flushes.
    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.close()?;
        debug_assert!(self.open.is_empty(), "unclosed {:?}", self.open);
        let mut out = self.w.into_inner();
        out.write_all(b"\n")?;
        out.flush()
    }
}

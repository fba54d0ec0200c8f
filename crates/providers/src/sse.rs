//! A small, incremental server-sent-events decoder.
//!
//! Bytes arrive in arbitrary pieces; [`SseDecoder::push`] buffers them and [`SseDecoder::next_event`]
//! yields each complete event (terminated by a blank line). It follows the WHATWG rules the LLM
//! APIs rely on: `data:` lines joined by `\n`, one optional space after the colon stripped, `event:`
//! names the event, lines starting with `:` are comments, and `\n`, `\r\n` and `\r` all end a line.
//! Why our own: it is ~100 lines, allocation-light, and lets the relay keep raw `Bytes`.

use bytes::{Buf, BytesMut};

/// One decoded event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
}

/// The most an event may hold, its unfinished line included: 8 MiB. An LLM stream's events are
/// a delta each (bytes to a few KiB); a provider sending more without ending the event is broken
/// or hostile, and holding its bytes would let it use the gateway's memory without bound.
pub const MAX_EVENT_BYTES: usize = 8 << 20;

/// Incremental decoder; feed it bytes, take events out.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: BytesMut,
    /// How much of `buf` is known to hold no line end: each byte is looked at once, so a long
    /// line arriving in many pieces costs its length, not its length squared.
    scanned: usize,
    event: Option<String>,
    data: String,
    has_data: bool,
}

/// Where a line ends in `buf`, looking from `from`: (length of the line, length of its
/// terminator), or where to look from next time.
fn find_line(buf: &[u8], from: usize) -> Result<(usize, usize), usize> {
    let Some(pos) = buf[from..]
        .iter()
        .position(|&b| b == b'\n' || b == b'\r')
        .map(|p| from + p)
    else {
        return Err(buf.len());
    };
    if buf[pos] == b'\r' {
        match buf.get(pos + 1) {
            Some(b'\n') => Ok((pos, 2)),
            Some(_) => Ok((pos, 1)),
            // A lone \r at the end may be the first half of \r\n: wait for more bytes.
            None => Err(pos),
        }
    } else {
        Ok((pos, 1))
    }
}

impl SseDecoder {
    /// A fresh decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds bytes read from the wire.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet part of a complete event.
    pub fn pending(&self) -> usize {
        self.buf.len() + self.data.len()
    }

    /// Whether the event being read has grown past [`MAX_EVENT_BYTES`]: the stream is to be
    /// abandoned.
    pub fn overflowed(&self) -> bool {
        self.pending() > MAX_EVENT_BYTES
    }

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            let (len, term) = match find_line(&self.buf, self.scanned) {
                Ok(found) => found,
                Err(next_from) => {
                    self.scanned = next_from;
                    return None;
                }
            };
            self.scanned = 0;
            let line = self.buf.split_to(len);
            self.buf.advance(term);
            if line.is_empty() {
                if self.has_data {
                    self.has_data = false;
                    return Some(SseEvent {
                        event: self.event.take(),
                        data: std::mem::take(&mut self.data),
                    });
                }
                self.event = None;
                continue;
            }
            let line = String::from_utf8_lossy(&line);
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_ref(), ""),
            };
            match field {
                "data" => {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                    self.has_data = true;
                }
                "event" => self.event = Some(value.to_string()),
                _ => {}
            }
        }
    }

    /// At end of input: an event whose blank line never came, if any (servers that close right
    /// after the last `data:` line).
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.buf.is_empty() {
            self.buf.extend_from_slice(b"\n\n");
            if let Some(e) = self.next_event() {
                return Some(e);
            }
        }
        if self.has_data {
            self.has_data = false;
            return Some(SseEvent {
                event: self.event.take(),
                data: std::mem::take(&mut self.data),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        for p in pieces {
            d.push(p);
            while let Some(e) = d.next_event() {
                out.push(e);
            }
        }
        out.extend(d.finish());
        out
    }

    #[test]
    fn decodes_fields_comments_and_line_endings() {
        let evs = decode_all(&[b": keep-alive\r\nevent: message_start\r\ndata: {\"a\":1}\r\n\r\ndata:x\rdata: y\r\rdata: [DONE]\n\n"]);
        assert_eq!(
            evs,
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "x\ny".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    fn an_unterminated_last_event_is_returned_by_finish() {
        assert_eq!(
            decode_all(&[b"data: tail"]),
            vec![SseEvent {
                event: None,
                data: "tail".into()
            }]
        );
    }

    #[test]
    fn a_long_line_in_many_pieces_decodes_once_whole_and_an_endless_one_overflows() {
        let mut d = SseDecoder::new();
        let value = "x".repeat(300_000);
        let line = format!("data: {value}\r\n\r\n");
        for piece in line.as_bytes().chunks(1000) {
            assert_eq!(d.next_event(), None);
            d.push(piece);
        }
        let e = d.next_event().expect("the event");
        assert_eq!(e.data, value);
        assert_eq!(d.pending(), 0);
        assert!(!d.overflowed());
        // A line that never ends: the decoder says so once it passes the bound.
        let piece = vec![b'y'; 1 << 20];
        d.push(b"data: ");
        for _ in 0..MAX_EVENT_BYTES >> 20 {
            d.push(&piece[..piece.len() - 1]);
            assert_eq!(d.next_event(), None);
        }
        let left = MAX_EVENT_BYTES - d.pending();
        d.push(&piece[..left]);
        assert_eq!(d.next_event(), None);
        assert!(!d.overflowed(), "at the bound exactly: {}", d.pending());
        d.push(b"y");
        assert!(d.overflowed());
        // So do many short data lines that never end their event.
        let mut d = SseDecoder::new();
        let line = format!("data: {}\n", "z".repeat(1 << 16));
        while !d.overflowed() {
            d.push(line.as_bytes());
            assert_eq!(d.next_event(), None);
            assert!(d.pending() <= MAX_EVENT_BYTES + line.len());
        }
    }

    proptest! {
        /// However the bytes are split, the events are the same.
        #[test]
        fn splitting_does_not_matter(cuts in proptest::collection::vec(0usize..120, 0..8)) {
            let text: &[u8] = b"event: a\ndata: one\n\ndata: two\r\ndata: three\r\n\r\n: c\ndata: {\"x\":\"y\"}\n\n";
            let whole = decode_all(&[text]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % text.len()).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts { pieces.push(&text[last..c]); last = c; }
            pieces.push(&text[last..]);
            prop_assert_eq!(decode_all(&pieces), whole);
        }
    }

    // Structured fuzzing: streams built line by line, with what the decoder must make of them.

    use proptest::sample::{Index, select};

    /// `bytes` cut at `cuts` (in any order, repeats allowed).
    fn split<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        let mut pieces = Vec::new();
        let mut last = 0;
        for c in at {
            pieces.push(&bytes[last..c]);
            last = c;
        }
        pieces.push(&bytes[last..]);
        pieces
    }

    /// One line of an event block.
    #[derive(Debug, Clone)]
    enum Line {
        /// `data:value` or `data: value`.
        Data(String, bool),
        /// `data` alone: a data line with an empty value.
        BareData,
        /// `event:name` or `event: name`.
        Event(String, bool),
        /// `:text`.
        Comment(String),
        /// A field the decoder ignores (`id`, `retry`, anything).
        Other(&'static str, String),
    }

    /// A field value: anything but CR and LF — colons, leading spaces, NUL, any Unicode — and
    /// now and then a huge one.
    fn value() -> BoxedStrategy<String> {
        prop_oneof![
            8 => "[^\r\n]{0,24}",
            1 => " {1,3}[^\r\n]{0,4}",
            1 => (1usize..200_000, select(vec!["x", "{\"a\":1}", "\u{1F600}", ":", " "]))
                .prop_map(|(n, s)| s.repeat(n / s.len())),
        ]
        .boxed()
    }

    fn line() -> impl Strategy<Value = Line> {
        prop_oneof![
            6 => (value(), any::<bool>()).prop_map(|(v, sp)| Line::Data(v, sp)),
            1 => Just(Line::BareData),
            2 => (value(), any::<bool>()).prop_map(|(v, sp)| Line::Event(v, sp)),
            1 => value().prop_map(Line::Comment),
            1 => (select(vec!["id", "retry", "x", "DATA", "data ", " data", "événement"]), value())
                .prop_map(|(f, v)| Line::Other(f, v)),
        ]
    }

    /// Event blocks (each line with its own ending), whether the last one is left without its
    /// blank line.
    type Stream = (Vec<Vec<(Line, &'static str)>>, Vec<&'static str>, bool);

    fn stream() -> impl Strategy<Value = Stream> {
        let eol = || select(vec!["\n", "\r\n", "\r"]);
        let block = proptest::collection::vec((line(), eol()), 0..5).boxed();
        (1usize..6).prop_flat_map(move |n| {
            (
                proptest::collection::vec(block.clone(), n),
                proptest::collection::vec(eol(), n),
                any::<bool>(),
            )
        })
    }

    /// The bytes of a stream, and the events the SSE rules make of it.
    fn render((blocks, ends, unterminated): &Stream) -> (Vec<u8>, Vec<SseEvent>) {
        let mut out = String::new();
        let mut expected = Vec::new();
        for (i, (lines, end)) in blocks.iter().zip(ends).enumerate() {
            let mut event: Option<String> = None;
            let mut data: Option<String> = None;
            let mut push_data = |v: &str| match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(v);
                }
                None => data = Some(v.to_string()),
            };
            for (l, eol) in lines {
                // The one space after the colon is not part of the value; a second one is.
                let field = |name: &str, v: &str, space: bool| {
                    let text = if space {
                        format!(" {v}")
                    } else {
                        v.to_string()
                    };
                    let kept = text.strip_prefix(' ').unwrap_or(&text).to_string();
                    (format!("{name}:{text}"), kept)
                };
                let text = match l {
                    Line::Data(v, sp) => {
                        let (text, kept) = field("data", v, *sp);
                        push_data(&kept);
                        text
                    }
                    Line::BareData => {
                        push_data("");
                        "data".to_string()
                    }
                    Line::Event(v, sp) => {
                        let (text, kept) = field("event", v, *sp);
                        event = Some(kept);
                        text
                    }
                    Line::Comment(c) => format!(":{c}"),
                    Line::Other(f, v) => format!("{f}:{v}"),
                };
                out.push_str(&text);
                out.push_str(eol);
            }
            let last = i + 1 == blocks.len();
            if !(last && *unterminated) {
                // A CR then an LF is one line ending, not an end and a blank line.
                let end = if *end == "\n" && out.ends_with('\r') {
                    "\r"
                } else {
                    end
                };
                out.push_str(end);
            }
            if let Some(data) = data {
                expected.push(SseEvent { event, data });
            }
        }
        (out.into_bytes(), expected)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Streams of data, event, comment and unknown lines with LF, CRLF and CR endings,
        /// `data:` with and without its space, empty and huge values, the last event perhaps
        /// without its blank line: cut anywhere, they decode to exactly the events the rules
        /// say.
        #[test]
        fn structured_streams_decode_to_their_events(
            s in stream(),
            cuts in proptest::collection::vec(any::<Index>(), 0..12),
        ) {
            let (bytes, expected) = render(&s);
            prop_assert_eq!(&decode_all(&[&bytes]), &expected);
            prop_assert_eq!(&decode_all(&split(&bytes, &cuts)), &expected);
        }

        /// Any bytes — random, or made of SSE's words and line ends (invalid UTF-8 included) —
        /// cut anywhere decode to the same events as uncut, without a panic.
        #[test]
        fn any_bytes_cut_anywhere_decode_the_same(
            bytes in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..400),
                proptest::collection::vec(
                    select(vec![
                        &b"data:"[..], b"data: ", b"data", b"event:", b"event: x", b":", b"\r",
                        b"\n", b"\r\n", b"x", b" ", b"{}", b"\xff", b"\xc3", b"\x00",
                    ]),
                    0..120,
                )
                .prop_map(|words| words.concat()),
            ],
            cuts in proptest::collection::vec(any::<Index>(), 0..16),
        ) {
            let whole = decode_all(&[&bytes]);
            prop_assert_eq!(decode_all(&split(&bytes, &cuts)), whole);
            // One byte at a time, too.
            let bytes_one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
            prop_assert_eq!(decode_all(&bytes_one_by_one), decode_all(&[&bytes]));
        }
    }

    /// A 1 MB line arriving in 4 KB pieces is one event.
    #[test]
    fn a_huge_line_in_small_pieces_is_one_event() {
        let line = format!("data: {}\r\n\r\n", "x".repeat(1 << 20));
        let pieces: Vec<&[u8]> = line.as_bytes().chunks(4096).collect();
        let events = decode_all(&pieces);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.len(), 1 << 20);
    }
}

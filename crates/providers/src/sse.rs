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

/// Incremental decoder; feed it bytes, take events out.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buf: BytesMut,
    event: Option<String>,
    data: String,
    has_data: bool,
}

/// Where a line ends in `buf`: (length of the line, length of its terminator).
fn find_line(buf: &[u8]) -> Option<(usize, usize)> {
    let pos = buf.iter().position(|&b| b == b'\n' || b == b'\r')?;
    if buf[pos] == b'\r' {
        match buf.get(pos + 1) {
            Some(b'\n') => Some((pos, 2)),
            Some(_) => Some((pos, 1)),
            // A lone \r at the end may be the first half of \r\n: wait for more bytes.
            None => None,
        }
    } else {
        Some((pos, 1))
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

    /// The next complete event, if the buffer holds one.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        while let Some((len, term)) = find_line(&self.buf) {
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
        None
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
}

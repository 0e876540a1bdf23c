//! Splits the inside of one `{{ … }}` into tokens, up to and including the closing `}}` (a
//! `}}` inside a string literal does not close). Offsets are byte offsets in the whole source.

use super::TemplateError;
use super::operators::BinaryOp;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum TokenKind<'s> {
    Number(f64),
    String(String),
    Identifier(&'s str),
    /// `now+1h`, `now-30m`, …: written without spaces, lexed as one token of signed seconds.
    NowOffset(i64),
    Dot,
    LeftBracket,
    RightBracket,
    LeftParen,
    RightParen,
    Bang,
    /// A binary operator; `-` is also unary minus.
    Operator(BinaryOp),
    /// `}}`: always the last token of a segment.
    Close,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token<'s> {
    pub(super) kind: TokenKind<'s>,
    /// Byte offset of the token's first character.
    pub(super) offset: usize,
    /// Byte offset just past the token.
    pub(super) end: usize,
}

pub(super) fn error(offset: usize, message: impl Into<String>) -> TemplateError {
    TemplateError { offset, message: message.into() }
}

/// Tokens of the segment opened by the `{{` at `open`, ending with [`TokenKind::Close`].
pub(super) fn lex_segment(source: &str, open: usize) -> Result<Vec<Token<'_>>, TemplateError> {
    let bytes = source.as_bytes();
    let mut tokens: Vec<Token<'_>> = Vec::new();
    let mut position = open + 2;
    loop {
        while bytes.get(position).is_some_and(u8::is_ascii_whitespace) {
            position += 1;
        }
        let Some(&byte) = bytes.get(position) else {
            return Err(error(open, "'{{' is never closed by '}}'"));
        };
        let start = position;
        let next = bytes.get(position + 1).copied();
        let after_dot = tokens.last().is_some_and(|token| token.kind == TokenKind::Dot);
        let (kind, length) = match (byte, next) {
            (b'}', Some(b'}')) => (TokenKind::Close, 2),
            (b'0'..=b'9', _) => number(source, start)?,
            (b'\'' | b'"', _) => string(source, start)?,
            (b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'$', _) => {
                let length = identifier_length(&bytes[start..]);
                let name = &source[start..start + length];
                let offset =
                    if name == "now" && !after_dot { now_offset(source, start + length) } else { None };
                match offset {
                    Some(offset) => {
                        let (seconds, suffix) = offset?;
                        (TokenKind::NowOffset(seconds), length + suffix)
                    }
                    None => (TokenKind::Identifier(name), length),
                }
            }
            _ => match OPERATORS.iter().find(|(spelling, _)| source[start..].starts_with(spelling)) {
                Some(&(spelling, op)) => (TokenKind::Operator(op), spelling.len()),
                None if byte == b'=' => {
                    return Err(error(start, "unexpected '=' (comparisons are '==' or '===')"));
                }
                None => (punctuation(byte).ok_or_else(|| unexpected_character(source, start))?, 1),
            },
        };
        position += length;
        tokens.push(Token { kind, offset: start, end: position });
        if tokens.last().is_some_and(|token| token.kind == TokenKind::Close) {
            return Ok(tokens);
        }
    }
}

/// Operator spellings, each before any shorter one it starts with.
const OPERATORS: &[(&str, BinaryOp)] = &[
    ("===", BinaryOp::StrictEqual),
    ("!==", BinaryOp::StrictNotEqual),
    ("==", BinaryOp::LooseEqual),
    ("!=", BinaryOp::LooseNotEqual),
    ("<=", BinaryOp::LessOrEqual),
    (">=", BinaryOp::GreaterOrEqual),
    ("&&", BinaryOp::And),
    ("||", BinaryOp::Or),
    ("<", BinaryOp::Less),
    (">", BinaryOp::Greater),
    ("+", BinaryOp::Add),
    ("-", BinaryOp::Subtract),
    ("*", BinaryOp::Multiply),
    ("/", BinaryOp::Divide),
    ("%", BinaryOp::Remainder),
];

fn punctuation(byte: u8) -> Option<TokenKind<'static>> {
    Some(match byte {
        b'.' => TokenKind::Dot,
        b'[' => TokenKind::LeftBracket,
        b']' => TokenKind::RightBracket,
        b'(' => TokenKind::LeftParen,
        b')' => TokenKind::RightParen,
        b'!' => TokenKind::Bang,
        _ => return None,
    })
}

fn unexpected_character(source: &str, offset: usize) -> TemplateError {
    let character = source[offset..].chars().next().unwrap_or(' ');
    error(offset, format!("unexpected character {character:?}"))
}

fn is_identifier_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'$'
}

fn identifier_length(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|&&byte| is_identifier_byte(byte)).count()
}

/// `12`, `1.5`, `2e3`: digits, an optional fraction, an optional exponent. A letter or digit
/// right after is an error (`12px`), as in JavaScript.
fn number(source: &str, start: usize) -> Result<(TokenKind<'static>, usize), TemplateError> {
    let bytes = source.as_bytes();
    let digits_from =
        |from: usize| bytes[from.min(bytes.len())..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut end = start + digits_from(start);
    if bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit) {
        end += 1 + digits_from(end + 1);
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
        let exponent = digits_from(end + 1 + sign);
        if exponent > 0 {
            end += 1 + sign + exponent;
        }
    }
    if bytes.get(end).is_some_and(|&byte| is_identifier_byte(byte)) {
        return Err(error(start, format!("invalid number '{}'", &source[start..end + 1])));
    }
    let value = source[start..end].parse().map_err(|_| error(start, "invalid number"))?;
    Ok((TokenKind::Number(value), end - start))
}

/// After `now`: `+1h`, `-30m`, `+10s`, `+2d` (no spaces) as signed seconds and the suffix's
/// length, or `None` when that is not there.
fn now_offset(source: &str, from: usize) -> Option<Result<(i64, usize), TemplateError>> {
    let bytes = source.as_bytes();
    let sign: i64 = match bytes.get(from)? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = bytes[from + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
    let unit_at = from + 1 + digits;
    let unit: i64 = match bytes.get(unit_at)? {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86_400,
        _ => return None,
    };
    if digits == 0 || bytes.get(unit_at + 1).is_some_and(|&byte| is_identifier_byte(byte)) {
        return None;
    }
    let seconds = source[from + 1..unit_at].parse::<i64>().ok().and_then(|count| count.checked_mul(unit));
    Some(match seconds {
        Some(seconds) => Ok((sign * seconds, unit_at + 1 - from)),
        None => Err(error(from, "time offset is too large")),
    })
}

/// A string literal in `'…'` or `"…"` with JavaScript's escapes.
fn string(source: &str, start: usize) -> Result<(TokenKind<'static>, usize), TemplateError> {
    let quote = source.as_bytes()[start] as char;
    let mut value = String::new();
    let mut chars = source[start + 1..].char_indices().map(|(index, c)| (start + 1 + index, c));
    while let Some((offset, c)) = chars.next() {
        match c {
            _ if c == quote => return Ok((TokenKind::String(value), offset + 1 - start)),
            '\n' | '\r' => break,
            '\\' => {
                let escaped = match chars.next() {
                    Some((_, 'n')) => '\n',
                    Some((_, 'r')) => '\r',
                    Some((_, 't')) => '\t',
                    Some((_, 'b')) => '\u{8}',
                    Some((_, 'f')) => '\u{c}',
                    Some((_, 'v')) => '\u{b}',
                    Some((_, '0')) => '\0',
                    Some((_, c @ ('\\' | '\'' | '"' | '/'))) => c,
                    Some((_, 'u')) => {
                        unicode_escape(&mut chars).ok_or_else(|| error(offset, "invalid \\u escape"))?
                    }
                    Some((_, other)) => return Err(error(offset, format!("unknown escape '\\{other}'"))),
                    None => break,
                };
                value.push(escaped);
            }
            c => value.push(c),
        }
    }
    Err(error(start, "unterminated string literal"))
}

/// The rest of `\uXXXX` (a surrogate pair as two escapes).
fn unicode_escape(chars: &mut impl Iterator<Item = (usize, char)>) -> Option<char> {
    let high = hex_unit(chars)?;
    if !(0xD800..0xDC00).contains(&high) {
        return char::decode_utf16([high]).next()?.ok();
    }
    if chars.next().map(|(_, c)| c) != Some('\\') || chars.next().map(|(_, c)| c) != Some('u') {
        return None;
    }
    char::decode_utf16([high, hex_unit(chars)?]).next()?.ok()
}

/// Four hexadecimal digits.
fn hex_unit(chars: &mut impl Iterator<Item = (usize, char)>) -> Option<u16> {
    let mut unit = 0u16;
    for _ in 0..4 {
        let digit = chars.next()?.1.to_digit(16)?;
        unit = unit * 16 + digit as u16;
    }
    Some(unit)
}

//! Builds the expression tree of one `{{ … }}` by precedence climbing over the tokens,
//! resolving variables and checking helper arity and nesting depth as it goes.

use std::borrow::Cow;

use super::TemplateError;
use super::expr::{Expr, MAX_DEPTH, Root, Step};
use super::helpers::{Call, HELPERS};
use super::lexer::{Token, TokenKind, error, lex_segment};
use super::operators::BinaryOp;
use super::value::Value;

/// An expression and the depth of its tree.
type Parsed = (Expr, usize);

/// Parses the segment opened by the `{{` at `open`; returns it and the offset after its `}}`.
pub(super) fn parse_segment(source: &str, open: usize) -> Result<(Expr, usize), TemplateError> {
    let tokens = lex_segment(source, open)?;
    let mut parser = Parser { source, tokens: &tokens, position: 0, nesting: 0 };
    if parser.peek().kind == TokenKind::Close {
        return Err(error(parser.peek().offset, "expected an expression before '}}'"));
    }
    let (expr, _) = parser.expression()?;
    let token = parser.peek();
    if token.kind != TokenKind::Close {
        return Err(error(
            token.offset,
            format!("expected an operator or '}}}}', found {}", parser.describe(token)),
        ));
    }
    Ok((expr, token.end))
}

struct Parser<'s, 't> {
    source: &'s str,
    /// Never empty: the last token is `}}`.
    tokens: &'t [Token<'s>],
    position: usize,
    /// How many unary-level parses are open, bounding the parser's own recursion.
    nesting: usize,
}

impl<'s, 't> Parser<'s, 't> {
    fn peek(&self) -> &'t Token<'s> {
        &self.tokens[self.position.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> &'t Token<'s> {
        let token = self.peek();
        self.position = (self.position + 1).min(self.tokens.len() - 1);
        token
    }

    fn describe(&self, token: &Token<'_>) -> String {
        match token.kind {
            TokenKind::Close => "'}}'".to_string(),
            _ => format!("'{}'", &self.source[token.offset..token.end]),
        }
    }

    fn expect(&mut self, kind: TokenKind<'_>, what: &str) -> Result<&'t Token<'s>, TemplateError> {
        let token = self.peek();
        if token.kind != kind {
            return Err(error(token.offset, format!("expected {what}, found {}", self.describe(token))));
        }
        Ok(self.advance())
    }

    fn expression(&mut self) -> Result<Parsed, TemplateError> {
        self.binary(1)
    }

    /// Operators binding at least as tightly as `min_precedence`, left-associative.
    fn binary(&mut self, min_precedence: u8) -> Result<Parsed, TemplateError> {
        let mut left = self.unary()?;
        while let TokenKind::Operator(op) = self.peek().kind {
            if op.precedence() < min_precedence {
                break;
            }
            let offset = self.advance().offset;
            let right = self.binary(op.precedence() + 1)?;
            let depth = left.1.max(right.1);
            left =
                node(Expr::Binary { op, left: Box::new(left.0), right: Box::new(right.0) }, depth, offset)?;
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Parsed, TemplateError> {
        self.nesting += 1;
        let parsed = if self.nesting > MAX_DEPTH {
            Err(error(self.peek().offset, format!("expression nests deeper than {MAX_DEPTH} levels")))
        } else {
            self.unary_operand()
        };
        self.nesting -= 1;
        parsed
    }

    fn unary_operand(&mut self) -> Result<Parsed, TemplateError> {
        let token = self.peek();
        match token.kind {
            TokenKind::Bang => {
                self.advance();
                let (operand, depth) = self.unary()?;
                node(Expr::Not(Box::new(operand)), depth, token.offset)
            }
            TokenKind::Operator(BinaryOp::Subtract) => {
                self.advance();
                match self.unary()? {
                    (Expr::Constant(Value::Number(number)), depth) => {
                        Ok((Expr::Constant(Value::Number(-number)), depth))
                    }
                    (operand, depth) => node(Expr::Negate(Box::new(operand)), depth, token.offset),
                }
            }
            _ => self.postfix(),
        }
    }

    /// A primary followed by any `.name` and `[index]` steps.
    fn postfix(&mut self) -> Result<Parsed, TemplateError> {
        let start = self.peek().offset;
        let (base, mut depth) = self.primary()?;
        let mut steps = Vec::new();
        loop {
            match self.peek().kind {
                TokenKind::Dot => {
                    self.advance();
                    let token = self.peek();
                    let TokenKind::Identifier(name) = token.kind else {
                        return Err(error(
                            token.offset,
                            format!("expected a field name, found {}", self.describe(token)),
                        ));
                    };
                    self.advance();
                    steps.push(Step::Field(name.into()));
                }
                TokenKind::LeftBracket => {
                    self.advance();
                    let (index, index_depth) = self.expression()?;
                    self.expect(TokenKind::RightBracket, "']'")?;
                    depth = depth.max(index_depth);
                    steps.push(Step::Index(index));
                }
                _ => break,
            }
        }
        if steps.is_empty() {
            return Ok((base, depth));
        }
        node(Expr::Member { base: Box::new(base), steps }, depth, start)
    }

    fn primary(&mut self) -> Result<Parsed, TemplateError> {
        let token = self.advance();
        match &token.kind {
            TokenKind::Number(number) => Ok((Expr::Constant(Value::Number(*number)), 1)),
            TokenKind::String(text) => Ok((Expr::Constant(Value::String(Cow::Owned(text.clone()))), 1)),
            TokenKind::NowOffset(offset_seconds) => {
                Ok((Expr::Call(Call::Now { offset_seconds: *offset_seconds }), 1))
            }
            TokenKind::LeftParen => {
                let parsed = self.expression()?;
                self.expect(TokenKind::RightParen, "')'")?;
                Ok(parsed)
            }
            TokenKind::Identifier(name) => self.identifier(name, token.offset),
            _ => Err(error(token.offset, format!("expected an expression, found {}", self.describe(token)))),
        }
    }

    fn identifier(&mut self, name: &str, offset: usize) -> Result<Parsed, TemplateError> {
        let literal = match name {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" => Value::Null,
            "undefined" => Value::Undefined,
            "request" => return Ok((Expr::Variable(self.request_root()?), 1)),
            "stream" => {
                self.expect(TokenKind::Dot, "'.id' after 'stream'")?;
                self.expect(
                    TokenKind::Identifier("id"),
                    "'id' after 'stream.' (stream.id is its only field)",
                )?;
                return Ok((Expr::Variable(Root::StreamId), 1));
            }
            _ => match HELPERS.iter().find(|(helper, _)| *helper == name) {
                Some(&(helper, arity)) => return self.helper_call(helper, arity, offset),
                None => {
                    return Err(error(
                        offset,
                        format!("unknown variable '{name}' (expected request or stream)"),
                    ));
                }
            },
        };
        Ok((Expr::Constant(literal), 1))
    }

    /// After `request`: `.ws.message`, `.ws.state` and `.ws.connectionId` name their own scope
    /// fields; any other path reads the request itself.
    fn request_root(&mut self) -> Result<Root, TemplateError> {
        let is_ws =
            |token: Option<&Token<'_>>| token.is_some_and(|token| token.kind == TokenKind::Identifier("ws"));
        if self.peek().kind != TokenKind::Dot || !is_ws(self.tokens.get(self.position + 1)) {
            return Ok(Root::Request);
        }
        self.advance();
        self.advance();
        self.expect(TokenKind::Dot, "'.message', '.state' or '.connectionId' after 'request.ws'")?;
        let token = self.advance();
        match token.kind {
            TokenKind::Identifier("message") => Ok(Root::Message),
            TokenKind::Identifier("state") => Ok(Root::State),
            TokenKind::Identifier("connectionId") => Ok(Root::ConnectionId),
            _ => Err(error(
                token.offset,
                format!(
                    "expected message, state or connectionId after 'request.ws.', found {}",
                    self.describe(token)
                ),
            )),
        }
    }

    /// `helper arg1 arg2`: arguments are primaries (with member steps) written one after the
    /// other; `-` glued to a number after a space is a negative argument (`randInt -5 5`).
    fn helper_call(&mut self, name: &str, arity: usize, offset: usize) -> Result<Parsed, TemplateError> {
        let mut arguments = Vec::new();
        let mut depth = 0;
        loop {
            let token = self.peek();
            let argument = match token.kind {
                TokenKind::Identifier(helper) if HELPERS.iter().any(|&(name, _)| name == helper) => {
                    // Only helpers without arguments can stand as an argument unwrapped: in
                    // `randInt 1 randInt 2 3` nothing says which numbers belong to which call.
                    let call = match Call::new(helper, Vec::new()) {
                        Some(call) => call,
                        None => {
                            let message =
                                format!("wrap '{helper} …' in parentheses to pass it as an argument");
                            return Err(error(token.offset, message));
                        }
                    };
                    self.advance();
                    (Expr::Call(call), 1)
                }
                TokenKind::Number(_)
                | TokenKind::String(_)
                | TokenKind::NowOffset(_)
                | TokenKind::LeftParen
                | TokenKind::Identifier(_) => self.postfix()?,
                TokenKind::Operator(BinaryOp::Subtract) => match self.negative_literal() {
                    Some(number) => (Expr::Constant(Value::Number(number)), 1),
                    None => break,
                },
                _ => break,
            };
            depth = depth.max(argument.1);
            arguments.push(argument.0);
        }
        if arguments.len() != arity {
            let expected = match arity {
                0 => "no arguments".to_string(),
                1 => "1 argument".to_string(),
                n => format!("{n} arguments"),
            };
            return Err(error(offset, format!("{name} takes {expected}, got {}", arguments.len())));
        }
        let call =
            Call::new(name, arguments).ok_or_else(|| error(offset, format!("unknown helper '{name}'")))?;
        node(Expr::Call(call), depth, offset)
    }

    /// A `-` preceded by whitespace and glued to the number after it, consumed as one number.
    fn negative_literal(&mut self) -> Option<f64> {
        let minus = self.peek();
        let spaced = self.position > 0 && self.tokens[self.position - 1].end < minus.offset;
        let next = self.tokens.get(self.position + 1)?;
        match next.kind {
            TokenKind::Number(number) if spaced && next.offset == minus.end => {
                self.advance();
                self.advance();
                Some(-number)
            }
            _ => None,
        }
    }
}

/// A node over children at most `child_depth` deep, unless that makes the tree too deep.
fn node(expr: Expr, child_depth: usize, offset: usize) -> Result<Parsed, TemplateError> {
    let depth = child_depth + 1;
    if depth > MAX_DEPTH {
        return Err(error(offset, format!("expression nests deeper than {MAX_DEPTH} levels")));
    }
    Ok((expr, depth))
}

//! The compiled expression tree. Variables are resolved to their scope field at compile time,
//! and member chains are flat so that a path lookup is one node.

use super::helpers::Call;
use super::operators::BinaryOp;
use super::value::Value;

/// Deepest expression tree the compiler accepts; it also bounds evaluation's recursion.
pub(super) const MAX_DEPTH: usize = 64;

/// A compiled expression.
#[derive(Debug, Clone)]
pub(super) enum Expr {
    /// A literal; strings are borrowed from here on every evaluation.
    Constant(Value<'static>),
    Variable(Root),
    /// `base.name`, `base[index]`, … applied left to right.
    Member {
        base: Box<Expr>,
        steps: Vec<Step>,
    },
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary {
        op: BinaryOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Call(Call),
}

/// Where a variable reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    /// `request`: `Scope::request`.
    Request,
    /// `request.ws.message`: `Scope::message`.
    Message,
    /// `request.ws.state`: `Scope::state`.
    State,
    /// `request.ws.connectionId`: `Scope::connection_id`.
    ConnectionId,
    /// `stream.id`: `Scope::stream_id`.
    StreamId,
}

impl Root {
    /// The path as written in templates.
    pub(super) fn path(self) -> &'static [&'static str] {
        match self {
            Root::Request => &["request"],
            Root::Message => &["request", "ws", "message"],
            Root::State => &["request", "ws", "state"],
            Root::ConnectionId => &["request", "ws", "connectionId"],
            Root::StreamId => &["stream", "id"],
        }
    }
}

/// One member access.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// `.name`.
    Field(Box<str>),
    /// `[expression]`.
    Index(Expr),
}

impl Expr {
    /// Appends every variable path this expression reads (see `Template::paths`).
    pub(super) fn collect_paths(&self, paths: &mut Vec<Vec<String>>) {
        match self {
            Expr::Constant(_) => {}
            Expr::Variable(root) => add_path(paths, root_path(*root)),
            Expr::Member { base, steps } => {
                if let Expr::Variable(root) = **base {
                    let mut path = root_path(root);
                    for step in steps {
                        match step {
                            Step::Field(name) if &**name != "length" => path.push(name.to_string()),
                            _ => break,
                        }
                    }
                    add_path(paths, path);
                } else {
                    base.collect_paths(paths);
                }
                for step in steps {
                    if let Step::Index(index) = step {
                        index.collect_paths(paths);
                    }
                }
            }
            Expr::Not(operand) | Expr::Negate(operand) => operand.collect_paths(paths),
            Expr::Binary { left, right, .. } => {
                left.collect_paths(paths);
                right.collect_paths(paths);
            }
            Expr::Call(call) => {
                for argument in call.arguments() {
                    argument.collect_paths(paths);
                }
            }
        }
    }
}

fn add_path(paths: &mut Vec<Vec<String>>, path: Vec<String>) {
    if !paths.contains(&path) {
        paths.push(path);
    }
}

fn root_path(root: Root) -> Vec<String> {
    root.path().iter().map(|segment| segment.to_string()).collect()
}

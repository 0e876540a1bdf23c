//! Located problems in user input (protos, stubs, scripts, profiles).
//!
//! Every loader collects all the problems it finds instead of stopping at the first, and each
//! problem names the file, the 1-based line and column, and — where the input is structured —
//! the field path. Printing them is the CLI's job; deciding what is wrong is each loader's.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong with one place in one input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line, or 0 when the problem concerns the whole file.
    pub line: usize,
    /// 1-based column, or 0 when unknown.
    pub column: usize,
    /// Dotted path of the offending field (`output.stream[2].type`), when there is one.
    pub field: Option<String>,
    /// What is wrong, and where possible what would be right.
    pub message: String,
}

impl Problem {
    /// A problem about a file as a whole (unreadable, wrong kind).
    pub fn in_file(file: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self::at(file, 0, 0, message)
    }

    /// A problem at a known line and column.
    pub fn at(file: impl AsRef<Path>, line: usize, column: usize, message: impl Into<String>) -> Self {
        Self { file: file.as_ref().to_path_buf(), line, column, field: None, message: message.into() }
    }

    /// Names the field path the problem concerns.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// All the problems found in one load; the error type of every input loader.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn push(&mut self, problem: Problem) {
        self.0.push(problem);
    }

    pub fn extend(&mut self, other: Problems) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Problem> {
        self.0.iter()
    }

    /// `Ok(value)` when nothing was found wrong, otherwise every problem at once.
    pub fn into_result<T>(self, value: T) -> Result<T, Problems> {
        if self.is_empty() { Ok(value) } else { Err(self) }
    }
}

impl From<Problem> for Problems {
    fn from(problem: Problem) -> Self {
        Self(vec![problem])
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// The files under `dir` (recursively) that `wanted` accepts, sorted within each directory so
/// that load order is stable; unreadable directories are reported.
pub fn files_under(dir: &Path, wanted: &dyn Fn(&Path) -> bool, problems: &mut Problems) -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect_files(dir, wanted, &mut files, problems);
    files
}

fn collect_files(
    dir: &Path,
    wanted: &dyn Fn(&Path) -> bool,
    files: &mut Vec<PathBuf>,
    problems: &mut Problems,
) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).map(|entry| entry.path()).collect(),
        Err(error) => {
            problems.push(Problem::in_file(dir, format!("cannot read directory: {error}")));
            return;
        }
    };
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_files(&path, wanted, files, problems);
        } else if wanted(&path) {
            files.push(path);
        }
    }
}

/// Converts a byte offset in `source` into a 1-based (line, column), counting columns in chars.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |index| index + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let source = "ab\ncdé\nf";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, 3), (2, 1));
        assert_eq!(line_column(source, 7), (2, 4));
        assert_eq!(line_column(source, 8), (3, 1));
        assert_eq!(line_column(source, 99), (3, 2));
    }

    #[test]
    fn display_names_file_position_and_field() {
        let problem = Problem::at("stubs/a.yaml", 3, 7, "unknown field").with_field("input.equals.nme");
        assert_eq!(problem.to_string(), "stubs/a.yaml:3:7: input.equals.nme: unknown field");
        assert_eq!(Problem::in_file("x.proto", "unreadable").to_string(), "x.proto: unreadable");
    }
}

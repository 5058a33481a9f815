//! Diagnostics are data: rendered as human text or JSON by the CLI, never formatted here.

use crate::span::{LineIndex, Span};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiagSeverity {
    /// The input is invalid (syntax error, broken file).
    Error,
    /// The input is valid but uses something ruleatlas does not implement yet.
    Unsupported,
    /// Worth telling, does not stop the rule from loading.
    Warning,
}

/// One located message about an input. `code` is a stable kebab-case id such as
/// `eql-syntax`, `unsupported-modifier`, `toml-syntax`, `bad-event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub severity: DiagSeverity,
    pub code: String,
    pub message: String,
    /// Byte span in the text the diagnostic is about (the file, once a loader shifted it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<Span>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 1-based; filled by whoever knows the whole file text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl Diagnostic {
    pub fn new(severity: DiagSeverity, code: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity,
            code: code.to_string(),
            message: message.into(),
            span: None,
            path: None,
            line: None,
            column: None,
        }
    }
    pub fn error(code: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(DiagSeverity::Error, code, message)
    }
    pub fn unsupported(code: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(DiagSeverity::Unsupported, code, message)
    }
    pub fn warning(code: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(DiagSeverity::Warning, code, message)
    }
    pub fn with_span(mut self, span: Span) -> Diagnostic {
        self.span = Some(span);
        self
    }
    pub fn with_path(mut self, path: impl Into<String>) -> Diagnostic {
        self.path = Some(path.into());
        self
    }
    pub fn at(mut self, line: u32, column: u32) -> Diagnostic {
        self.line = Some(line);
        self.column = Some(column);
        self
    }
    /// Moves the span by `offset` (the embedded query's position in its file) and fills
    /// line/column from the file text.
    pub fn locate_in(mut self, file_text: &str, index: &LineIndex, offset: usize) -> Diagnostic {
        if let Some(span) = self.span {
            let span = span.shifted(offset);
            let (l, c) = index.line_col(file_text, span.start as usize);
            self.span = Some(span);
            self.line = Some(l);
            self.column = Some(c);
        } else if self.line.is_none() {
            let (l, c) = index.line_col(file_text, offset);
            self.line = Some(l);
            self.column = Some(c);
        }
        self
    }
}

impl fmt::Display for Diagnostic {
    /// `path:line:col: severity[code]: message`, omitting what is unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{p}:")?;
            if let Some(l) = self.line {
                write!(f, "{l}:")?;
                if let Some(c) = self.column {
                    write!(f, "{c}:")?;
                }
            }
            write!(f, " ")?;
        }
        let sev = match self.severity {
            DiagSeverity::Error => "error",
            DiagSeverity::Unsupported => "unsupported",
            DiagSeverity::Warning => "warning",
        };
        write!(f, "{sev}[{}]: {}", self.code, self.message)
    }
}

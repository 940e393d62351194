//! Engine answers as LSP types, and LSP positions as engine positions. [`Ctx`] is what a query
//! closure gets on its blocking thread: the snapshot, the file asked about, and cached line
//! maps of the snapshot's texts — positions are always converted against the exact text the
//! engine's byte offsets refer to.

use crate::text::{Encoding, LineMap};
use crate::world::FileRef;
use hivesync_analysis::editor::ParameterHint;
use hivesync_analysis::model::{LineIndex, SymbolKind as EngineKind, TextRange};
use hivesync_analysis::{Analysis, AnalysisError, FilePosition, HoverInfo, RenamePlan};
use hivesync_protocol::Confidence;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tower_lsp_server::ls_types::*;

pub struct Ctx {
    pub analysis: Analysis,
    pub file: FileRef,
    pub root: PathBuf,
    pub encoding: Encoding,
    uris: HashMap<PathBuf, Uri>,
    maps: HashMap<String, (Arc<str>, LineMap)>,
}

impl Ctx {
    pub fn new(
        analysis: Analysis,
        file: FileRef,
        root: PathBuf,
        encoding: Encoding,
        uris: HashMap<PathBuf, Uri>,
    ) -> Ctx {
        Ctx {
            analysis,
            file,
            root,
            encoding,
            uris,
            maps: HashMap::new(),
        }
    }

    fn with_text<R>(&mut self, rel: &str, f: impl FnOnce(&str, &LineMap) -> R) -> Option<R> {
        if !self.maps.contains_key(rel) {
            let text = self.analysis.text(rel)?;
            let map = LineMap::new(&text);
            self.maps.insert(rel.to_owned(), (text, map));
        }
        let (text, map) = self.maps.get(rel)?;
        Some(f(text, map))
    }

    /// The byte offset of an LSP position in the file asked about.
    pub fn offset(&mut self, pos: Position) -> Option<usize> {
        let enc = self.encoding;
        let rel = self.file.rel.clone();
        self.with_text(&rel, |t, m| m.offset(t, pos, enc)).flatten()
    }

    /// The engine position of an LSP position in the file asked about; `None` for a line past
    /// the end of the file or a file the engine does not have.
    pub fn engine_position(&mut self, pos: Position) -> Option<FilePosition> {
        let enc = self.encoding;
        let rel = self.file.rel.clone();
        let (line, column) = self
            .with_text(&rel, |t, m| {
                m.offset(t, pos, enc).map(|o| m.engine_position(t, o))
            })
            .flatten()?;
        Some(FilePosition {
            path: rel,
            line,
            column,
        })
    }

    pub fn lsp_range(&mut self, rel: &str, start: usize, end: usize) -> Option<Range> {
        let enc = self.encoding;
        self.with_text(rel, |t, m| m.range(t, start, end, enc))
    }

    pub fn lsp_position(&mut self, rel: &str, offset: usize) -> Option<Position> {
        let enc = self.encoding;
        self.with_text(rel, |t, m| m.position(t, offset, enc))
    }

    /// An LSP range as a byte range (`None` when it starts past the end).
    pub fn byte_range(&mut self, rel: &str, range: Range) -> Option<TextRange> {
        let enc = self.encoding;
        self.with_text(rel, |t, m| {
            let start = m.offset(t, range.start, enc)?;
            let end = m.offset(t, range.end, enc).unwrap_or(t.len());
            Some(TextRange::new(start, end.max(start)))
        })
        .flatten()
    }

    /// The LSP position of an engine (1-based line, character column) position.
    pub fn engine_to_lsp(&mut self, rel: &str, line: u32, column: u32) -> Option<Position> {
        let enc = self.encoding;
        self.with_text(rel, |t, m| {
            let offset = LineIndex::new(t).offset(t, line, column)? as usize;
            Some(m.position(t, offset, enc))
        })
        .flatten()
    }

    pub fn uri(&self, rel: &str) -> Option<Uri> {
        let path = self.root.join(rel);
        self.uris
            .get(&path)
            .cloned()
            .or_else(|| Uri::from_file_path(&path))
    }

    pub fn location(&mut self, l: &hivesync_analysis::Location) -> Option<Location> {
        let range = self.lsp_range(&l.path, l.range.start as usize, l.range.end as usize)?;
        Some(Location {
            uri: self.uri(&l.path)?,
            range,
        })
    }

    /// A rename plan as a `WorkspaceEdit`: exact edits only, or with the probable ones too —
    /// annotated `needsConfirmation` when the client supports change annotations, so the
    /// editor shows them for review.
    pub fn workspace_edit(
        &mut self,
        plan: &RenamePlan,
        include_probable: bool,
        annotations: bool,
    ) -> WorkspaceEdit {
        const EXACT: &str = "hivesync.exact";
        const PROBABLE: &str = "hivesync.probable";
        let mut changes: HashMap<Uri, Vec<TextEdit>> = HashMap::new();
        let mut documents: Vec<TextDocumentEdit> = Vec::new();
        for file in &plan.change.files {
            let Some(uri) = self.uri(&file.path) else {
                continue;
            };
            let mut plain = Vec::new();
            let mut annotated = Vec::new();
            for e in &file.edits {
                let probable = e.confidence == Confidence::Probable;
                if probable && !include_probable {
                    continue;
                }
                let Some(range) = self.lsp_range(&file.path, e.start, e.end) else {
                    continue;
                };
                let edit = TextEdit {
                    range,
                    new_text: e.new_text.clone(),
                };
                plain.push(edit.clone());
                annotated.push(OneOf::Right(AnnotatedTextEdit {
                    text_edit: edit,
                    annotation_id: if probable { PROBABLE } else { EXACT }.to_owned(),
                }));
            }
            if plain.is_empty() {
                continue;
            }
            documents.push(TextDocumentEdit {
                text_document: OptionalVersionedTextDocumentIdentifier {
                    uri: uri.clone(),
                    version: None,
                },
                edits: annotated,
            });
            changes.insert(uri, plain);
        }
        if include_probable && annotations {
            let mut notes = HashMap::new();
            notes.insert(
                EXACT.to_owned(),
                ChangeAnnotation {
                    label: format!("Rename `{}` (exact references)", plan.old_name),
                    needs_confirmation: Some(false),
                    description: None,
                },
            );
            notes.insert(
                PROBABLE.to_owned(),
                ChangeAnnotation {
                    label: format!("Probable matches of `{}`", plan.old_name),
                    needs_confirmation: Some(true),
                    description: Some(
                        "Same name, but the receiver's type is unknown: review each one".into(),
                    ),
                },
            );
            WorkspaceEdit {
                changes: None,
                document_changes: Some(DocumentChanges::Edits(documents)),
                change_annotations: Some(notes),
            }
        } else {
            WorkspaceEdit {
                changes: Some(changes),
                ..WorkspaceEdit::default()
            }
        }
    }
}

pub fn symbol_kind(kind: EngineKind) -> SymbolKind {
    #[allow(unreachable_patterns)] // other kinds may join the engine
    match kind {
        EngineKind::Module | EngineKind::Import => SymbolKind::MODULE,
        EngineKind::Class => SymbolKind::CLASS,
        EngineKind::Struct => SymbolKind::STRUCT,
        EngineKind::Enum => SymbolKind::ENUM,
        EngineKind::EnumVariant => SymbolKind::ENUM_MEMBER,
        EngineKind::Interface | EngineKind::Trait => SymbolKind::INTERFACE,
        EngineKind::TypeAlias => SymbolKind::TYPE_PARAMETER,
        EngineKind::Function | EngineKind::Macro => SymbolKind::FUNCTION,
        EngineKind::Method => SymbolKind::METHOD,
        EngineKind::Field => SymbolKind::FIELD,
        EngineKind::Constant => SymbolKind::CONSTANT,
        EngineKind::Variable | EngineKind::Parameter => SymbolKind::VARIABLE,
        _ => SymbolKind::VARIABLE,
    }
}

#[allow(deprecated)] // `deprecated` is a required field of the type
pub fn document_symbol(
    ctx: &mut Ctx,
    rel: &str,
    s: &hivesync_analysis::DocumentSymbol,
) -> Option<DocumentSymbol> {
    let full = s.full_range;
    let name = s.name_range;
    let start = full.start.min(name.start) as usize;
    let end = full.end.max(name.end) as usize;
    Some(DocumentSymbol {
        name: s.name.clone(),
        detail: s.detail.clone(),
        kind: symbol_kind(s.kind),
        tags: None,
        deprecated: None,
        range: ctx.lsp_range(rel, start, end)?,
        selection_range: ctx.lsp_range(rel, name.start as usize, name.end as usize)?,
        children: Some(
            s.children
                .iter()
                .filter_map(|c| document_symbol(ctx, rel, c))
                .collect(),
        ),
    })
}

#[allow(deprecated)] // `deprecated` is a required field of the type
pub fn workspace_symbol(
    ctx: &mut Ctx,
    s: &hivesync_analysis::WorkspaceSymbol,
) -> Option<SymbolInformation> {
    let start = ctx.engine_to_lsp(&s.path, s.line, s.column)?;
    let end = Position::new(
        start.line,
        start.character
            + u32::try_from(match ctx.encoding {
                Encoding::Utf8 => s.name.len(),
                Encoding::Utf16 => s.name.encode_utf16().count(),
            })
            .unwrap_or(0),
    );
    Some(SymbolInformation {
        name: s.name.clone(),
        kind: symbol_kind(s.kind),
        tags: None,
        deprecated: None,
        location: Location {
            uri: ctx.uri(&s.path)?,
            range: Range::new(start, end),
        },
        container_name: s.container.clone(),
    })
}

pub fn diagnostic(ctx: &mut Ctx, d: &hivesync_analysis::Diagnostic) -> Option<Diagnostic> {
    let start = ctx.engine_to_lsp(&d.path, d.line, d.column)?;
    let end = ctx
        .engine_to_lsp(&d.path, d.end_line, d.end_column)
        .unwrap_or(start);
    Some(Diagnostic {
        range: Range::new(start, end),
        severity: Some(match d.severity {
            "error" => DiagnosticSeverity::ERROR,
            "warning" => DiagnosticSeverity::WARNING,
            _ => DiagnosticSeverity::INFORMATION,
        }),
        code: Some(NumberOrString::String(d.code.to_owned())),
        source: Some("hivesync".to_owned()),
        message: d.message.clone(),
        ..Diagnostic::default()
    })
}

/// Signature in a fenced block of the definition's language, then the doc comment.
pub fn hover_markdown(info: &HoverInfo) -> String {
    let fence = hivesync_protocol::Language::from_path(&info.path)
        .map(|l| l.name())
        .unwrap_or("text");
    let signature = info
        .signature
        .clone()
        .unwrap_or_else(|| format!("{} {}", info.kind.name(), info.name));
    let mut out = format!("```{fence}\n{signature}\n```");
    if let Some(doc) = info.doc.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        out.push_str("\n\n---\n\n");
        out.push_str(doc);
    }
    out.push_str(&format!("\n\n*{}:{}*", info.path, info.line));
    out
}

/// A hint that tells the reader nothing new.
pub fn obvious_hint(h: &ParameterHint) -> bool {
    let norm = |s: &str| s.trim_start_matches('_').to_lowercase();
    let param = norm(&h.parameter);
    if h.argument_name.as_deref().is_some_and(|a| norm(a) == param) {
        return true;
    }
    h.argument_count == 1 && norm(&h.callee).ends_with(&param)
}

pub fn inlay_hint(ctx: &mut Ctx, rel: &str, h: &ParameterHint) -> Option<InlayHint> {
    Some(InlayHint {
        position: ctx.lsp_position(rel, h.offset as usize)?,
        label: InlayHintLabel::String(format!("{}:", h.parameter)),
        kind: Some(InlayHintKind::PARAMETER),
        text_edits: None,
        tooltip: None,
        padding_left: None,
        padding_right: Some(true),
        data: None,
    })
}

/// "N references" lenses on the definitions of an outline, depth first — unresolved: a range
/// and `data: {"uri"}`; [`resolve_reference_lens`] counts the references of the ones the editor
/// shows (counting every definition of a large file on each edit would be workspace-wide work
/// per keystroke).
pub fn reference_lenses(
    ctx: &mut Ctx,
    uri: &Uri,
    symbols: &[hivesync_analysis::DocumentSymbol],
    out: &mut Vec<CodeLens>,
) {
    let rel = ctx.file.rel.clone();
    for s in symbols {
        let lens_kind = !matches!(
            s.kind,
            EngineKind::Variable | EngineKind::Parameter | EngineKind::Import | EngineKind::Field
        );
        if lens_kind
            && let Some(range) =
                ctx.lsp_range(&rel, s.name_range.start as usize, s.name_range.end as usize)
        {
            out.push(CodeLens {
                range,
                command: None,
                data: Some(json!({ "uri": uri })),
            });
        }
        reference_lenses(ctx, uri, &s.children, out);
    }
}

/// The command of a lens from [`reference_lenses`]: "N references" (`(+M probable)`) for the
/// definition named at the lens's start, with their locations as arguments.
pub fn resolve_reference_lens(
    ctx: &mut Ctx,
    uri: &Uri,
    mut lens: CodeLens,
) -> Result<Option<CodeLens>, AnalysisError> {
    let Some(pos) = ctx.engine_position(lens.range.start) else {
        return Ok(None);
    };
    let refs = ctx.analysis.references(&pos, false)?;
    let probable = refs
        .iter()
        .filter(|l| l.confidence == Confidence::Probable)
        .count();
    let exact = refs.len() - probable;
    let mut title = match exact {
        1 => "1 reference".to_owned(),
        n => format!("{n} references"),
    };
    if probable > 0 {
        title.push_str(&format!(" (+{probable} probable)"));
    }
    let locations: Vec<Location> = refs.iter().filter_map(|l| ctx.location(l)).collect();
    lens.command = Some(Command {
        title,
        command: crate::server::SHOW_REFERENCES.to_owned(),
        arguments: Some(vec![json!(uri), json!(lens.range.start), json!(locations)]),
    });
    Ok(Some(lens))
}

/// The identifier touching byte `offset`, if any.
pub fn word_at(text: &str, offset: usize) -> Option<&str> {
    let is_word = |c: char| c == '_' || c.is_alphanumeric();
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset)?;
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let after = text.get(offset..)?;
    let end = offset
        + after
            .char_indices()
            .find(|(_, c)| !is_word(*c))
            .map_or(after.len(), |(i, _)| i);
    text.get(start..end).filter(|w| !w.is_empty())
}

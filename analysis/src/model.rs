//! The language-neutral data every language module produces for one file (`FileIndex`), the
//! position-free slice of it other files may depend on (`FileInterface`), and text positions.
//!
//! Invariant: a `FileInterface` contains no byte offsets, no doc comments and nothing from
//! inside function bodies except the names of members a method assigns (`self.x = …`). It is
//! what makes a body edit cheap: the edited file's index changes, its interface compares equal,
//! and salsa reuses every other file's resolution.

use hivesync_protocol::Language;
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// An identifier or dotted name, cheap to clone.
pub type Name = Arc<str>;

/// Decodes a [`Name`] with one allocation (serde's `Arc<str>` goes through a `Box<str>`
/// first); the persisted index cache decodes hundreds of thousands of them.
fn de_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = Name;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Name, E> {
            Ok(Name::from(v))
        }
    }
    d.deserialize_str(V)
}

/// Index of a definition in `FileIndex::defs`.
pub type DefIdx = u32;
/// Index of a scope in `FileIndex::scopes`.
pub type ScopeIdx = u32;
/// Index of a reference in `FileIndex::refs`.
pub type RefIdx = u32;
/// Index of an import in `FileIndex::imports`.
pub type ImportIdx = u32;

/// A half-open byte range `start..end` in a file's text.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub struct TextRange {
    pub start: u32,
    pub end: u32,
}

impl TextRange {
    pub fn new(start: usize, end: usize) -> TextRange {
        TextRange {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    /// True when `offset` lies in the range; the end counts as inside so that a cursor placed
    /// right after an identifier still finds it.
    pub fn touches(self, offset: u32) -> bool {
        self.start <= offset && offset <= self.end
    }

    pub fn contains_range(self, other: TextRange) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn len(self) -> u32 {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn as_usize(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// What a definition is, in terms every language maps onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolKind {
    Module,
    Class,
    Struct,
    Enum,
    EnumVariant,
    Interface,
    Trait,
    TypeAlias,
    Function,
    Method,
    Field,
    Variable,
    Constant,
    Parameter,
    /// A name bound by an import statement (`import a as b`, `from m import x`).
    Import,
    Macro,
}

impl SymbolKind {
    pub fn name(self) -> &'static str {
        match self {
            SymbolKind::Module => "module",
            SymbolKind::Class => "class",
            SymbolKind::Struct => "struct",
            SymbolKind::Enum => "enum",
            SymbolKind::EnumVariant => "enum_variant",
            SymbolKind::Interface => "interface",
            SymbolKind::Trait => "trait",
            SymbolKind::TypeAlias => "type_alias",
            SymbolKind::Function => "function",
            SymbolKind::Method => "method",
            SymbolKind::Field => "field",
            SymbolKind::Variable => "variable",
            SymbolKind::Constant => "constant",
            SymbolKind::Parameter => "parameter",
            SymbolKind::Import => "import",
            SymbolKind::Macro => "macro",
        }
    }

    /// Kinds whose members can be looked up with `X.member`.
    pub fn has_members(self) -> bool {
        matches!(
            self,
            SymbolKind::Class
                | SymbolKind::Struct
                | SymbolKind::Enum
                | SymbolKind::Interface
                | SymbolKind::Trait
                | SymbolKind::Module
        )
    }

    /// Kinds that deserve a doc comment when public.
    pub fn wants_doc(self) -> bool {
        matches!(
            self,
            SymbolKind::Class
                | SymbolKind::Struct
                | SymbolKind::Enum
                | SymbolKind::Interface
                | SymbolKind::Trait
                | SymbolKind::TypeAlias
                | SymbolKind::Function
                | SymbolKind::Method
                | SymbolKind::Macro
        )
    }
}

/// Kinds of lexical scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeKind {
    Module,
    Class,
    Function,
    Lambda,
    Comprehension,
    Block,
}

/// A lexical scope and the names bound directly in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub kind: ScopeKind,
    pub range: TextRange,
    pub parent: Option<ScopeIdx>,
    /// The class/function whose body this is.
    pub owner: Option<DefIdx>,
    /// Each name bound in this scope → its (first) definition. Later bindings of the same name
    /// in the same scope are references with `write: true`.
    pub names: HashMap<Name, DefIdx>,
    /// Names declared `global` here (Python).
    pub globals: Vec<Name>,
    /// Names declared `nonlocal` here (Python).
    pub nonlocals: Vec<Name>,
    /// Glob imports active in this scope (`from m import *`, `use m::*`); re-export-only
    /// globs (`export * from 'm'`) are in `FileIndex::reexports`.
    pub stars: Vec<ImportIdx>,
}

impl Scope {
    pub fn new(
        kind: ScopeKind,
        range: TextRange,
        parent: Option<ScopeIdx>,
        owner: Option<DefIdx>,
    ) -> Scope {
        Scope {
            kind,
            range,
            parent,
            owner,
            names: HashMap::default(),
            globals: Vec::new(),
            nonlocals: Vec::new(),
            stars: Vec::new(),
        }
    }
}

/// A definition: something a name is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Def {
    #[serde(deserialize_with = "de_name")]
    pub name: Name,
    pub kind: SymbolKind,
    /// The identifier.
    pub name_range: TextRange,
    /// The whole construct (decorators and body included).
    pub full_range: TextRange,
    /// The class/function/module item that contains it, if any.
    pub parent: Option<DefIdx>,
    /// The scope the name is bound in.
    pub scope: ScopeIdx,
    /// The scope this definition opens (class or function body).
    pub body: Option<ScopeIdx>,
    pub doc: Option<String>,
    /// One-line signature text (`def f(a, b=1) -> int`).
    pub signature: Option<String>,
    /// Set when the name is bound by an import.
    pub import: Option<ImportIdx>,
    /// Stable dotted path (`Class.method`) for definitions visible outside the file; `None`
    /// for locals. Other files refer to a definition only through this key.
    pub key: Option<Name>,
    /// Base classes as dotted names, as written (`models.Model`).
    pub bases: Vec<Name>,
    /// Where a doc comment would go when missing: byte offset of the first body statement (or
    /// of the definition itself for languages whose docs precede the item).
    pub doc_insert: Option<u32>,
}

impl Def {
    /// Public by the language's convention and reachable from outside the file.
    pub fn is_public(&self) -> bool {
        self.key.is_some()
            && !self
                .key
                .as_deref()
                .unwrap_or_default()
                .split('.')
                .any(|seg| seg.starts_with('_') && !(seg.starts_with("__") && seg.ends_with("__")))
    }
}

/// How a reference's name is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Qualifier {
    /// A bare name, looked up through the scopes.
    None,
    /// `base.name` where `base` is another reference (resolved earlier, lower index).
    Ref(RefIdx),
    /// `self.name` / `cls.name` / `this.name` inside the given class.
    SelfOf(DefIdx),
    /// `f(...).name`: a member of what calling the reference returns — an instance when it
    /// names a class, otherwise unknown (probable).
    CallResult(RefIdx),
    /// `super().name` inside the given class: a member of its bases.
    SuperOf(DefIdx),
    /// `expr.name` where `expr` is something the engine cannot follow (a call, a subscript …).
    Unknown,
    /// `name` as written in `from m import name`: a member of the import's module.
    ImportMember(ImportIdx),
    /// A segment of an import's module path: the first `depth` segments name a module.
    ModulePath { import: ImportIdx, depth: u16 },
}

/// A use of a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    #[serde(deserialize_with = "de_name")]
    pub name: Name,
    pub range: TextRange,
    pub scope: ScopeIdx,
    pub qualifier: Qualifier,
    /// The reference (re)binds the name (`x = …` after the first binding).
    pub write: bool,
}

/// What an import statement brings in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ImportKind {
    /// `import a.b` (binds `a`, the root package) or `import a.b as c` (binds `c` → `a.b`).
    Module { alias: Option<Name> },
    /// `from m import name [as alias]`.
    From { name: Name, alias: Option<Name> },
    /// `from m import *`.
    Star,
}

/// One imported binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// Dotted module path without leading dots.
    #[serde(deserialize_with = "de_name")]
    pub module: Name,
    /// Number of leading dots of a relative import (0 = absolute).
    pub level: u32,
    pub kind: ImportKind,
    pub scope: ScopeIdx,
    /// The module path as written (for diagnostics).
    pub range: TextRange,
}

/// Everything the engine knows about one file, positions included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIndex {
    pub language: Option<Language>,
    pub defs: Vec<Def>,
    pub scopes: Vec<Scope>,
    pub refs: Vec<Ref>,
    pub imports: Vec<Import>,
    /// `key` → definition, for definitions visible outside the file.
    pub by_key: HashMap<Name, DefIdx>,
    /// `__all__` (Python) or the explicit export list, when the file declares one.
    pub all: Option<Vec<Name>>,
    /// Number of syntax errors (error or missing nodes) in the file.
    pub parse_errors: u32,
    /// Names written once for both a property key and a binding or reference (`{ a }` in a
    /// JavaScript object or pattern): a rename there keeps the key (`a: renamed`). Sorted.
    pub shorthand: Vec<TextRange>,
    /// Glob re-exports other files see but that bind nothing in the file itself
    /// (`export * from 'm'`); glob imports that also bind locally go in `Scope::stars`.
    pub reexports: Vec<ImportIdx>,
}

impl FileIndex {
    /// Fills `by_key` from the definitions' keys (the first definition of a key wins); a
    /// language module calls it once its definitions are keyed.
    pub(crate) fn index_keys(&mut self) {
        for (i, d) in self.defs.iter().enumerate() {
            if let Some(key) = &d.key {
                self.by_key.entry(key.clone()).or_insert(i as DefIdx);
            }
        }
    }

    /// An index for a file no language module understands (or that could not be parsed).
    pub fn empty(language: Option<Language>) -> FileIndex {
        FileIndex {
            language,
            defs: Vec::new(),
            scopes: vec![Scope::new(
                ScopeKind::Module,
                TextRange::default(),
                None,
                None,
            )],
            refs: Vec::new(),
            imports: Vec::new(),
            by_key: HashMap::default(),
            all: None,
            parse_errors: 0,
            shorthand: Vec::new(),
            reexports: Vec::new(),
        }
    }

    pub fn def(&self, idx: DefIdx) -> Option<&Def> {
        self.defs.get(idx as usize)
    }

    pub fn scope(&self, idx: ScopeIdx) -> Option<&Scope> {
        self.scopes.get(idx as usize)
    }

    /// The innermost scope containing `offset`.
    pub fn scope_at(&self, offset: u32) -> ScopeIdx {
        let mut best: ScopeIdx = 0;
        let mut best_len = u32::MAX;
        for (i, s) in self.scopes.iter().enumerate() {
            if s.range.touches(offset) && s.range.len() <= best_len && i > 0 {
                best = i as ScopeIdx;
                best_len = s.range.len();
            }
        }
        best
    }

    /// The definition whose name is at `offset`.
    pub fn def_at(&self, offset: u32) -> Option<DefIdx> {
        self.defs
            .iter()
            .position(|d| d.name_range.touches(offset) && !d.name_range.is_empty())
            .map(|i| i as DefIdx)
    }

    /// The reference at `offset` (the innermost, i.e. shortest, one).
    pub fn ref_at(&self, offset: u32) -> Option<RefIdx> {
        self.refs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.range.touches(offset))
            .min_by_key(|(_, r)| r.range.len())
            .map(|(i, _)| i as RefIdx)
    }

    /// Definitions nested directly in `parent` (or top-level ones for `None`).
    pub fn children(&self, parent: Option<DefIdx>) -> impl Iterator<Item = (DefIdx, &Def)> {
        self.defs
            .iter()
            .enumerate()
            .filter(move |(_, d)| d.parent == parent)
            .map(|(i, d)| (i as DefIdx, d))
    }
}

/// An item other files can see: a module-level definition or a member of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: Name,
    pub key: Name,
    pub kind: SymbolKind,
    /// Members by name (for classes and other containers).
    pub members: HashMap<Name, u32>,
    pub bases: Vec<Name>,
    /// Index into `FileInterface::imports` when the item is an import binding.
    pub import: Option<u32>,
}

/// An import statement as other files see it (no positions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImportSpec {
    pub module: Name,
    pub level: u32,
    pub kind: ImportKind,
}

/// The position-free, body-free part of a file that other files' resolution depends on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileInterface {
    pub items: Vec<Item>,
    /// Top-level names → item.
    pub top: HashMap<Name, u32>,
    /// Item keys → item.
    pub keys: HashMap<Name, u32>,
    /// Module-level imports (referenced by `Item::import` and `stars`).
    pub imports: Vec<ImportSpec>,
    /// Module-level glob imports, in source order.
    pub stars: Vec<u32>,
    pub all: Option<Vec<Name>>,
}

impl FileInterface {
    /// Builds the interface from a file's index.
    pub fn from_index(index: &FileIndex) -> FileInterface {
        let mut iface = FileInterface {
            all: index.all.clone(),
            ..FileInterface::default()
        };
        let mut import_map: HashMap<ImportIdx, u32> = HashMap::default();
        let mut spec_of = |iface: &mut FileInterface, i: ImportIdx| -> Option<u32> {
            if let Some(&j) = import_map.get(&i) {
                return Some(j);
            }
            let imp = index.imports.get(i as usize)?;
            let j = iface.imports.len() as u32;
            iface.imports.push(ImportSpec {
                module: imp.module.clone(),
                level: imp.level,
                kind: imp.kind.clone(),
            });
            import_map.insert(i, j);
            Some(j)
        };
        if let Some(module) = index.scopes.first() {
            for &star in module.stars.iter().chain(&index.reexports) {
                if let Some(j) = spec_of(&mut iface, star) {
                    iface.stars.push(j);
                }
            }
        }
        // Items in definition order; parents always precede their members.
        let mut item_of: HashMap<DefIdx, u32> = HashMap::default();
        for (i, def) in index.defs.iter().enumerate() {
            let Some(key) = def.key.clone() else { continue };
            let import = match def.import {
                Some(imp) => spec_of(&mut iface, imp),
                None => None,
            };
            let idx = iface.items.len() as u32;
            iface.items.push(Item {
                name: def.name.clone(),
                key,
                kind: def.kind,
                members: HashMap::default(),
                bases: def.bases.clone(),
                import,
            });
            item_of.insert(i as DefIdx, idx);
            iface.keys.insert(def.key.clone().unwrap_or_default(), idx);
            match def.parent.and_then(|p| item_of.get(&p).copied()) {
                Some(parent) => {
                    if let Some(p) = iface.items.get_mut(parent as usize) {
                        p.members.entry(def.name.clone()).or_insert(idx);
                    }
                }
                // A dotted key without a parent in this file is a member of a type declared
                // in another file (Go methods), never a top-level name.
                None if def.key.as_deref().is_some_and(|k| k.contains('.')) => {}
                None => {
                    iface.top.entry(def.name.clone()).or_insert(idx);
                }
            }
        }
        iface
    }
}

/// Converts byte offsets to 1-based (line, character column) positions and back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineIndex {
    line_starts: Vec<u32>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(u32::try_from(i + 1).unwrap_or(u32::MAX));
            }
        }
        LineIndex { line_starts }
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// 1-based line and 1-based column counted in characters.
    pub fn position(&self, text: &str, offset: u32) -> (u32, u32) {
        let line = match self.line_starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0) as usize;
        let end = (offset as usize).min(text.len()).max(start);
        let col = text
            .get(start..end)
            .map(|s| s.chars().count())
            .unwrap_or(end - start);
        (line as u32 + 1, col as u32 + 1)
    }

    /// The byte offset of a 1-based (line, character column) position; `None` when the line or
    /// column lies outside the text (one past the last character of a line is allowed).
    pub fn offset(&self, text: &str, line: u32, column: u32) -> Option<u32> {
        if line == 0 || column == 0 {
            return None;
        }
        let start = *self.line_starts.get(line as usize - 1)? as usize;
        let end = self
            .line_starts
            .get(line as usize)
            .map(|&e| e as usize)
            .unwrap_or(text.len());
        let line_text = text.get(start..end)?;
        let line_text = line_text.strip_suffix('\n').unwrap_or(line_text);
        let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
        let want = column as usize - 1;
        let mut count = 0;
        for (byte, _) in line_text.char_indices() {
            if count == want {
                return u32::try_from(start + byte).ok();
            }
            count += 1;
        }
        (count == want).then(|| u32::try_from(start + line_text.len()).ok())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_round_trips_characters() {
        let text = "ab\nçé x\n";
        let li = LineIndex::new(text);
        let off = li.offset(text, 2, 4).expect("in range");
        assert_eq!(&text[off as usize..off as usize + 1], "x");
        assert_eq!(li.position(text, off), (2, 4));
        assert_eq!(li.offset(text, 2, 5), Some(text.len() as u32 - 1));
        assert_eq!(li.offset(text, 2, 6), None);
        assert_eq!(li.offset(text, 9, 1), None);
        assert_eq!(li.offset(text, 0, 1), None);
    }
}

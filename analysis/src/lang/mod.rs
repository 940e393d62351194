//! Language modules: one per language, each turning a file's text into the language-neutral
//! [`FileIndex`] and answering the few questions the cross-file resolver cannot answer
//! generically (which file an import names, which names are keywords or builtins).
//!
//! # Adding a language
//!
//! 1. Add the grammar crate to `[workspace.dependencies]` in the root `Cargo.toml` (the versions
//!    are already there for TypeScript/JavaScript, Rust and Go) and `<crate>.workspace = true`
//!    to `analysis/Cargo.toml`.
//! 2. Create `analysis/src/lang/<lang>.rs` with a unit struct implementing [`LanguageModule`],
//!    and register it in [`module_for`] below. Put tree-sitter queries the module runs in
//!    `analysis/src/lang/<lang>.scm` and load them with `include_str!` (see `python.scm`).
//! 3. `index` parses with tree-sitter through a static [`Grammar`] (`GRAMMAR.enter()`, then
//!    `GRAMMAR.parse(text)`, see `python.rs`; ask nodes with [`Syntax::kind_str`] and
//!    [`Syntax::field`], iterate with [`named_children`] or a cursor — no vector per node) and
//!    walks the tree once, filling a [`FileIndex`]:
//!    - one [`Scope`](crate::model::Scope) per lexical scope (scope 0 is the file/module),
//!      with `names` holding the *first* binding of each name; later bindings of the same name
//!      in that scope are pushed as [`Ref`](crate::model::Ref)s with `write: true`;
//!    - one [`Def`](crate::model::Def) per binding: `key` is the dotted path (`Type.member`)
//!      for anything other files can reach, `None` for locals; `parent` is the containing
//!      item; `signature`, `doc` and `doc_insert` feed hover and documentation gaps;
//!    - one [`Ref`](crate::model::Ref) per use of a name, with a
//!      [`Qualifier`](crate::model::Qualifier) saying how to look it up (`a.b` → `b` has
//!      `Qualifier::Ref(index of a)`, pushed after `a`; `self.x`/`this.x` →
//!      `Qualifier::SelfOf(class)`; anything the engine cannot follow → `Qualifier::Unknown`,
//!      which yields a *probable* match by name);
//!    - one [`Import`](crate::model::Import) per imported binding, plus a `Def` of kind
//!      `Import` for the name it binds and a `Qualifier::ImportMember` ref for the imported
//!      name (that ref is what a rename of the original definition edits);
//!    - the ranges of shorthand names in
//!      [`FileIndex::shorthand`](crate::model::FileIndex::shorthand) (`{ a }` in JavaScript,
//!      which a rename must turn into `{ a: b }`).
//!
//!    Never put anything from inside a function body into a `Def` with a `key` (except
//!    members assigned through `self`), so that [`FileInterface`](crate::model::FileInterface)
//!    stays equal across body edits — `tests/incremental.rs` checks this for every language
//!    that adds a case to it.
//! 4. Implement [`LanguageModule::resolve_module`] with the language's import rules over the
//!    [`ModuleMap`] (every project path and directory), and `submodule` for `pkg.name` lookups.
//!    Languages whose "module" is a directory of files (Go packages) return
//!    `ModuleRef::Dir` and list the files in [`LanguageModule::module_files`] (or
//!    [`LanguageModule::module_files_in`] when membership depends on file contents). Optional
//!    hooks: [`LanguageModule::member_files`] (members declared in other files, Go methods),
//!    [`LanguageModule::module_item`] (modules that are items, Rust inline modules),
//!    [`LanguageModule::is_public`], [`LanguageModule::rename_refusal`] and
//!    [`LanguageModule::module_display`]. A variable, parameter or field whose type is known
//!    stores it in `Def::bases`, so that `x.member` resolves exactly through that type.
//! 5. Add fixture tests in `analysis/tests/<lang>.rs` using [`crate::fixture`]: a multi-file
//!    snippet with `//- /path` headers and a `$0` cursor, and the expected definition,
//!    references or rename result beside it. Cover every scope and import rule, and the
//!    rename refusals.

pub mod go;
pub mod python;
pub mod rust;
pub mod typescript;

use crate::model::{FileIndex, Name, ScopeKind, TextRange};
use crate::resolve::{ModuleMap, ModuleRef};
use hivesync_protocol::Language;
use rustc_hash::FxHashMap as HashMap;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use tree_sitter::{Node, Parser, Tree};

/// One tree-sitter grammar, set up once per process: its node kind names and field ids, and a
/// parser per thread. Walkers ask every node its kind and most of them for a field; tree-sitter's
/// own `Node::kind` re-validates the name as UTF-8 and `child_by_field_name` compares the name
/// with each field name of the grammar on every call, so walkers go through [`Grammar::kind`] and
/// [`Grammar::field`] instead.
pub(crate) struct Grammar {
    language: tree_sitter::Language,
    kinds: Vec<Box<str>>,
    fields: HashMap<Box<str>, u16>,
    /// This grammar's parser in each thread's [`PARSERS`].
    slot: usize,
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// One parser per grammar and thread, reused across files.
    static PARSERS: RefCell<Vec<Option<Parser>>> = const { RefCell::new(Vec::new()) };
    /// The grammar of the file this thread is indexing (see [`Grammar::enter`]).
    static CURRENT: Cell<Option<&'static Grammar>> = const { Cell::new(None) };
}

impl Grammar {
    pub(crate) fn new(language: tree_sitter::Language) -> Grammar {
        let kinds = (0..language.node_kind_count())
            .map(|id| {
                let id = u16::try_from(id).unwrap_or(u16::MAX);
                Box::from(language.node_kind_for_id(id).unwrap_or(""))
            })
            .collect();
        let fields = (1..=language.field_count())
            .filter_map(|id| {
                let id = u16::try_from(id).ok()?;
                Some((Box::from(language.field_name_for_id(id)?), id))
            })
            .collect();
        Grammar {
            language,
            kinds,
            fields,
            slot: NEXT_SLOT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Makes [`Syntax`] answer through this grammar on this thread until the guard drops. A
    /// language module's `index` enters its grammar before walking a tree parsed with it.
    pub(crate) fn enter(&'static self) -> EnteredGrammar {
        EnteredGrammar(CURRENT.replace(Some(self)))
    }

    /// Parses `text` with this thread's parser for the grammar (`None` when tree-sitter gives up).
    pub(crate) fn parse(&self, text: &str) -> Option<Tree> {
        self.reparse(text, None)
    }

    /// Like [`Grammar::parse`], reusing `old` (a tree of the previous text, already edited to
    /// match `text`) for an incremental re-parse.
    pub(crate) fn reparse(&self, text: &str, old: Option<&Tree>) -> Option<Tree> {
        PARSERS.with(|cell| {
            let mut parsers = cell.borrow_mut();
            if parsers.len() <= self.slot {
                parsers.resize_with(self.slot + 1, || None);
            }
            let entry = &mut parsers[self.slot];
            if entry.is_none() {
                let mut parser = Parser::new();
                parser.set_language(&self.language).ok()?;
                *entry = Some(parser);
            }
            entry.as_mut().and_then(|p| p.parse(text, old))
        })
    }

    /// The node's kind, as `Node::kind` names it.
    #[inline]
    fn kind(&'static self, node: Node<'_>) -> &'static str {
        match self.kinds.get(node.kind_id() as usize) {
            Some(kind) => kind,
            // The only symbols past the grammar's own.
            None if node.kind_id() == u16::MAX => "ERROR",
            None => "_ERROR",
        }
    }

    /// The child in field `name`, as `Node::child_by_field_name` finds it.
    #[inline]
    fn field<'t>(&self, node: Node<'t>, name: &str) -> Option<Node<'t>> {
        self.fields
            .get(name)
            .and_then(|&id| node.child_by_field_id(id))
    }
}

/// Restores the previously entered grammar when dropped.
pub(crate) struct EnteredGrammar(Option<&'static Grammar>);

impl Drop for EnteredGrammar {
    fn drop(&mut self) {
        CURRENT.set(self.0);
    }
}

/// `Node::kind` and `Node::child_by_field_name` through the entered [`Grammar`]'s tables (the
/// same answers, without the per-call name checks); outside [`Grammar::enter`] they fall back to
/// tree-sitter's own.
pub(crate) trait Syntax<'t> {
    fn kind_str(&self) -> &'t str;
    fn field(&self, name: &str) -> Option<Node<'t>>;
}

impl<'t> Syntax<'t> for Node<'t> {
    #[inline]
    fn kind_str(&self) -> &'t str {
        match CURRENT.get() {
            Some(grammar) => grammar.kind(*self),
            None => self.kind(),
        }
    }

    #[inline]
    fn field(&self, name: &str) -> Option<Node<'t>> {
        match CURRENT.get() {
            Some(grammar) => grammar.field(*self, name),
            None => self.child_by_field_name(name),
        }
    }
}

/// What every language's walker reads the same way: the file's text by node.
pub(crate) trait NodeText<'a> {
    /// The whole file.
    fn text(&self) -> &'a str;

    /// The source text of `node` (empty when its range is not in the text).
    fn src(&self, node: Node<'_>) -> &'a str {
        self.text().get(node.byte_range()).unwrap_or("")
    }

    /// The source text of `node` as a name.
    fn name(&self, node: Node<'_>) -> Name {
        self.src(node).into()
    }
}

/// The byte range of `node`.
pub(crate) fn node_range(node: Node<'_>) -> TextRange {
    TextRange::new(node.start_byte(), node.end_byte())
}

/// The named children of `node`, read with one cursor (no vector per node).
pub(crate) fn named_children(node: Node<'_>) -> NamedChildren<'_> {
    let mut cursor = node.walk();
    let done = !cursor.goto_first_child();
    NamedChildren { cursor, done }
}

/// Iterator of [`named_children`].
pub(crate) struct NamedChildren<'t> {
    cursor: tree_sitter::TreeCursor<'t>,
    done: bool,
}

impl<'t> Iterator for NamedChildren<'t> {
    type Item = Node<'t>;

    fn next(&mut self) -> Option<Node<'t>> {
        while !self.done {
            let node = self.cursor.node();
            self.done = !self.cursor.goto_next_sibling();
            if node.is_named() {
                return Some(node);
            }
        }
        None
    }
}

/// The grammar files of `language` are parsed with.
pub(crate) fn grammar_of(language: Language) -> &'static Grammar {
    match language {
        Language::Python => &python::GRAMMAR,
        Language::TypeScript | Language::Tsx | Language::JavaScript => {
            typescript::grammar(language)
        }
        Language::Go => &go::GRAMMAR,
        Language::Rust => &rust::GRAMMAR,
    }
}

/// What every language module's `index` does: parse `text` with the language's grammar, then
/// [`LanguageModule::index_tree`] (a text tree-sitter gives up on is an empty index with one
/// parse error).
fn parse_and_index<M: LanguageModule + ?Sized>(
    module: &M,
    language: Language,
    path: &str,
    text: &str,
) -> FileIndex {
    match grammar_of(language).parse(text) {
        Some(tree) => module.index_tree(language, path, text, &tree),
        None => {
            let mut index = FileIndex::empty(Some(language));
            index.parse_errors = 1;
            index
        }
    }
}

/// Error and missing nodes in the tree (descending only into subtrees that contain errors).
pub(crate) fn count_errors(root: Node<'_>) -> u32 {
    if !root.has_error() {
        return 0;
    }
    let mut count = 0;
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            count += 1;
            continue;
        }
        let mut cursor = node.walk();
        stack.extend(node.children(&mut cursor).filter(|c| c.has_error()));
    }
    count
}

/// How documentation is written for a language, for documentation-gap reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DocSyntax {
    /// Where the doc comment goes: `"first_statement_in_body"` (Python docstrings) or
    /// `"before_item"` (`///`, `/** */`, `//`).
    pub placement: &'static str,
    /// Text that opens the doc comment (`"""`, `///`, `/**`, `//`).
    pub open: &'static str,
    /// Text that closes it (`"""`, `*/`, or empty for line comments).
    pub close: &'static str,
}

/// A module path as written in an import, for [`LanguageModule::resolve_module`].
#[derive(Debug, Clone, Copy)]
pub struct ModuleRequest<'a> {
    /// Dotted (Python), slash (JS/Go) or `::` (Rust) path, as the language module stored it.
    pub module: &'a str,
    /// Leading dots of a Python relative import; other languages may use it as they see fit.
    pub level: u32,
}

/// Where an import points.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModuleResolution {
    /// A module inside the project.
    Project(ModuleRef),
    /// A module outside the project (standard library, installed package): not an error.
    External,
    /// Looks like a project import (relative, or under a project package) but names nothing.
    Missing,
}

/// One language's rules. Implementations are unit structs registered in [`module_for`].
pub trait LanguageModule: Send + Sync {
    /// Parses `text` with the language's grammar ([`grammar_of`]) and extracts the file's
    /// definitions, scopes, references and imports ([`LanguageModule::index_tree`]). Never
    /// panics, whatever the text: syntax errors are counted in `parse_errors` and the rest of
    /// the file is still indexed.
    fn index(&self, language: Language, path: &str, text: &str) -> FileIndex {
        parse_and_index(self, language, path, text)
    }

    /// Like [`LanguageModule::index`], on `tree`, the parse of `text` with the language's
    /// grammar ([`grammar_of`]); editors re-parse the documents being typed in incrementally.
    /// Must give exactly what `index` gives for `text`.
    fn index_tree(
        &self,
        language: Language,
        path: &str,
        text: &str,
        tree: &tree_sitter::Tree,
    ) -> FileIndex;

    /// Reserved words that can never be identifiers.
    fn keywords(&self) -> &'static [&'static str];

    /// True when `name` is a valid identifier (keywords aside).
    fn is_identifier(&self, name: &str) -> bool {
        let mut chars = name.chars();
        match chars.next() {
            Some(c) if c == '_' || c.is_alphabetic() => {}
            _ => return false,
        }
        chars.all(|c| c == '_' || c.is_alphanumeric())
    }

    /// Names that resolve without an import (Python builtins, JS globals …).
    fn is_builtin(&self, name: &str) -> bool;

    /// Whether names bound in a scope of `kind` are visible from scopes nested inside it
    /// (false for Python class bodies).
    fn nested_scopes_see(&self, kind: ScopeKind) -> bool {
        let _ = kind;
        true
    }

    fn doc_syntax(&self) -> DocSyntax;

    /// Resolves an import's module path, seen from the file at `from_path`.
    fn resolve_module(
        &self,
        map: &ModuleMap,
        from_path: &str,
        request: ModuleRequest<'_>,
    ) -> ModuleResolution;

    /// `module.name` where `name` is not defined in the module's files: a submodule, if any.
    fn submodule(&self, map: &ModuleMap, module: &ModuleRef, name: &str) -> Option<ModuleRef>;

    /// The files whose top-level definitions make up `module`.
    fn module_files(&self, map: &ModuleMap, module: &ModuleRef) -> Vec<crate::db::SourceFile> {
        match module {
            ModuleRef::File(file) => vec![*file],
            ModuleRef::Dir(_) => {
                let _ = map;
                Vec::new()
            }
        }
    }

    /// Names a glob import of a module brings in when the module has no explicit export list.
    fn glob_exports(&self, name: &str) -> bool {
        !name.starts_with('_')
    }

    /// [`LanguageModule::module_files`] with database access, for languages whose module
    /// membership depends on file contents (Go's `package x_test` files in a package
    /// directory). Implementations must read only queries that stay equal across body edits.
    fn module_files_in(
        &self,
        db: &dyn salsa::Database,
        map: &ModuleMap,
        module: &ModuleRef,
    ) -> Vec<crate::db::SourceFile> {
        let _ = db;
        self.module_files(map, module)
    }

    /// Other files that may declare members of a type declared in `file` (Go methods in
    /// another file of the package). Such members have a dotted key `Type.member` and no
    /// parent in their own file.
    fn member_files(
        &self,
        map: &ModuleMap,
        file: crate::db::SourceFile,
    ) -> Vec<crate::db::SourceFile> {
        let _ = (map, file);
        Vec::new()
    }

    /// A module that is an item inside a file (a Rust inline `mod x { … }`, or an enum used as
    /// a path prefix): that file and the item's key. Its members are looked up like a class's.
    fn module_item(
        &self,
        map: &ModuleMap,
        module: &ModuleRef,
    ) -> Option<(crate::db::SourceFile, crate::model::Name)> {
        let _ = (map, module);
        None
    }

    /// An import's module path as the user wrote it, for messages (Python: leading dots).
    fn module_display(&self, module: &str, level: u32) -> String {
        format!("{}{module}", ".".repeat(level as usize))
    }

    /// Whether a definition counts as public API, for documentation gaps.
    fn is_public(&self, def: &crate::model::Def) -> bool {
        def.is_public()
    }

    /// A language rule forbidding a rename of `old` (defined in `def_path`) to `new` with
    /// edits in `site_paths` — e.g. Go visibility. The message is shown as is.
    fn rename_refusal(
        &self,
        old: &str,
        new: &str,
        def_path: &str,
        site_paths: &[&str],
    ) -> Option<String> {
        let _ = (old, new, def_path, site_paths);
        None
    }
}

/// The module for a language, or `None` for languages without one yet (their files are still
/// counted, and still part of manifests).
pub fn module_for(language: Language) -> Option<&'static dyn LanguageModule> {
    match language {
        Language::Python => Some(&python::Python),
        Language::TypeScript | Language::Tsx | Language::JavaScript => {
            Some(&typescript::TypeScript)
        }
        Language::Go => Some(&go::Go),
        Language::Rust => Some(&rust::Rust),
    }
}

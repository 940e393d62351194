//! Rust: the syntax walk that fills a `FileIndex` (items of files and inline modules, `use`
//! trees with groups, renames and globs, `impl` and trait-impl members, enum variants, struct
//! fields, `self.x`/`Self::x` inside impls, locals with `let` shadowing, patterns, closures,
//! match arms and `if let`) and the module rules (the module tree from `lib.rs`/`main.rs` with
//! `mod x;` → `x.rs` or `x/mod.rs`, `crate::`/`self::`/`super::` paths, inline modules, and the
//! crates of a Cargo workspace by name).
//!
//! Module paths of imports are stored with `::` separators. `ModuleRequest::level` is 0 for
//! absolute paths (`crate::…` or a crate name), `1 + n` for a path relative to the importing
//! file's module after going up `n` levels (`self::` is 1, `super::` is 2), and
//! [`MOD_DECL`] + that for a `mod x;` declaration (which must name a file).
//! A module that is not a file (an inline `mod x { … }`, or an enum used as a path prefix) is a
//! `ModuleRef::Dir("<file path>::<item path>")`, whose members are the item's members.

use super::go::{collapse_ws, doc_above, join, parent_dir, truncate};
use super::{
    DocSyntax, Grammar, LanguageModule, ModuleRequest, ModuleResolution, NodeText, Syntax,
    count_errors, named_children, node_range,
};
use crate::db::SourceFile;
use crate::model::{
    Def, DefIdx, FileIndex, Import, ImportIdx, ImportKind, Name, Qualifier, Ref, RefIdx, Scope,
    ScopeIdx, ScopeKind, SymbolKind, TextRange,
};
use crate::resolve::{ModuleMap, ModuleRef};
use hivesync_protocol::Language;
use std::collections::HashMap;
use std::sync::LazyLock;
use tree_sitter::Node;

/// Patterns for the definitions the walker must produce; checked against the walker's output in
/// tests.
pub const DEFINITIONS_QUERY: &str = include_str!("rust.scm");

/// The Rust language module.
pub struct Rust;

/// Added to `ModuleRequest::level` for `mod x;` declarations.
pub const MOD_DECL: u32 = 1000;

/// `ModuleRequest::level` of a `#[path = "file"]` module: the module string is the file path
/// relative to the declaring file's directory (with `.` stored as [`DOT`]).
pub const MOD_PATH: u32 = 2000;

/// Stands for `.` in file paths stored as module strings (the resolver splits on `.`).
const DOT: char = '\u{2024}';

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

/// Primitive types, the standard prelude and the standard macros.
const BUILTINS: &[&str] = &[
    "bool",
    "char",
    "str",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f32",
    "f64",
    "Option",
    "Some",
    "None",
    "Result",
    "Ok",
    "Err",
    "Vec",
    "String",
    "Box",
    "ToString",
    "ToOwned",
    "Clone",
    "Copy",
    "Send",
    "Sync",
    "Sized",
    "Unpin",
    "Drop",
    "Fn",
    "FnMut",
    "FnOnce",
    "Default",
    "Iterator",
    "IntoIterator",
    "DoubleEndedIterator",
    "ExactSizeIterator",
    "Extend",
    "PartialEq",
    "Eq",
    "PartialOrd",
    "Ord",
    "AsRef",
    "AsMut",
    "Into",
    "From",
    "TryFrom",
    "TryInto",
    "FromIterator",
    "Debug",
    "Hash",
    "std",
    "core",
    "alloc",
    "println",
    "print",
    "eprintln",
    "eprint",
    "format",
    "write",
    "writeln",
    "vec",
    "panic",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "debug_assert_ne",
    "unreachable",
    "unimplemented",
    "todo",
    "matches",
    "dbg",
    "include_str",
    "include_bytes",
    "concat",
    "stringify",
    "env",
    "option_env",
    "cfg",
    "line",
    "column",
    "file",
    "module_path",
    "format_args",
    "compile_error",
    "thread_local",
];

pub(crate) static GRAMMAR: LazyLock<Grammar> =
    LazyLock::new(|| Grammar::new(tree_sitter_rust::LANGUAGE.into()));

impl LanguageModule for Rust {
    fn index_tree(
        &self,
        language: Language,
        _path: &str,
        text: &str,
        tree: &tree_sitter::Tree,
    ) -> FileIndex {
        let _grammar = GRAMMAR.enter();
        let root = tree.root_node();
        let mut walker = Walker::new(text, language);
        walker.index.scopes[0].range = TextRange::new(root.start_byte(), root.end_byte());
        walker.items(root, true);
        let mut index = walker.finish();
        index.parse_errors = count_errors(root);
        index
    }

    fn keywords(&self) -> &'static [&'static str] {
        KEYWORDS
    }

    fn is_identifier(&self, name: &str) -> bool {
        let (raw, ident) = match name.strip_prefix("r#") {
            Some(rest) => (true, rest),
            None => (false, name),
        };
        let mut chars = ident.chars();
        let ok = match chars.next() {
            Some(c) if c == '_' || c.is_alphabetic() => {
                chars.all(|c| c == '_' || c.is_alphanumeric())
            }
            _ => false,
        };
        ok && ident != "_" && !(raw && matches!(ident, "crate" | "self" | "super" | "Self"))
    }

    fn is_builtin(&self, name: &str) -> bool {
        BUILTINS.contains(&name)
    }

    fn doc_syntax(&self) -> DocSyntax {
        DocSyntax {
            placement: "before_item",
            open: "///",
            close: "",
        }
    }

    fn resolve_module(
        &self,
        map: &ModuleMap,
        from_path: &str,
        request: ModuleRequest<'_>,
    ) -> ModuleResolution {
        if request.level == MOD_PATH {
            let rel = request.module.replace(DOT, ".");
            let mut out: Vec<&str> = Vec::new();
            for seg in parent_dir(from_path).split('/').chain(rel.split('/')) {
                match seg {
                    "" | "." => {}
                    ".." => {
                        if out.pop().is_none() {
                            return ModuleResolution::Missing;
                        }
                    }
                    s => out.push(s),
                }
            }
            return match map.file(&out.join("/")) {
                Some(f) => ModuleResolution::Project(ModuleRef::File(f)),
                None => ModuleResolution::Missing,
            };
        }
        let (decl, level) = if request.level >= MOD_DECL {
            (true, request.level - MOD_DECL)
        } else {
            (false, request.level)
        };
        let segs: Vec<&str> = if request.module.is_empty() {
            Vec::new()
        } else {
            request.module.split("::").collect()
        };
        let (root, mut path): (String, Vec<String>) = if level == 0 {
            let Some(first) = segs.first() else {
                return ModuleResolution::Missing;
            };
            let root = if *first == "crate" {
                crate_root_of(map, from_path)
            } else {
                crates(map)
                    .into_iter()
                    .find(|c| c.name == *first)
                    .and_then(|c| c.lib)
            };
            let Some(root) = root else {
                return if *first == "crate" {
                    ModuleResolution::Missing
                } else {
                    ModuleResolution::External
                };
            };
            (root, segs[1..].iter().map(|s| (*s).to_owned()).collect())
        } else {
            let Some(root) = crate_root_of(map, from_path) else {
                return ModuleResolution::Missing;
            };
            let Some(mut base) = module_segments(&root, from_path) else {
                return ModuleResolution::Missing;
            };
            let up = (level - 1) as usize;
            if up > base.len() {
                return ModuleResolution::Missing;
            }
            base.truncate(base.len() - up);
            base.extend(segs.iter().map(|s| (*s).to_owned()));
            (root, base)
        };
        if decl {
            return match module_file(map, &root, &path) {
                Some(f) => ModuleResolution::Project(ModuleRef::File(f)),
                None => ModuleResolution::Missing,
            };
        }
        // The longest prefix that is a file; the rest are items inside it.
        let mut rest: Vec<String> = Vec::new();
        loop {
            if let Some(f) = module_file(map, &root, &path) {
                if rest.is_empty() {
                    return ModuleResolution::Project(ModuleRef::File(f));
                }
                rest.reverse();
                let file_path = map.path_of(f).unwrap_or("");
                return ModuleResolution::Project(ModuleRef::Dir(
                    format!("{file_path}::{}", rest.join("::")).into(),
                ));
            }
            match path.pop() {
                Some(seg) => rest.push(seg),
                None => return ModuleResolution::Missing,
            }
        }
    }

    fn submodule(&self, map: &ModuleMap, module: &ModuleRef, name: &str) -> Option<ModuleRef> {
        let (file_path, inner) = match module {
            ModuleRef::File(f) => (map.path_of(*f)?.to_owned(), Vec::new()),
            ModuleRef::Dir(d) => {
                let (file, item) = d.split_once("::")?;
                (
                    file.to_owned(),
                    item.split("::").map(str::to_owned).collect(),
                )
            }
        };
        let root = crate_root_of(map, &file_path)?;
        let mut segs = module_segments(&root, &file_path)?;
        segs.extend(inner);
        segs.push(name.to_owned());
        module_file(map, &root, &segs).map(ModuleRef::File)
    }

    fn module_files(&self, map: &ModuleMap, module: &ModuleRef) -> Vec<SourceFile> {
        match module {
            ModuleRef::File(f) => vec![*f],
            ModuleRef::Dir(d) => d
                .split_once("::")
                .and_then(|(file, _)| map.file(file))
                .into_iter()
                .collect(),
        }
    }

    fn module_item(&self, map: &ModuleMap, module: &ModuleRef) -> Option<(SourceFile, Name)> {
        let ModuleRef::Dir(d) = module else {
            return None;
        };
        let (file, item) = d.split_once("::")?;
        Some((map.file(file)?, item.replace("::", ".").into()))
    }

    fn glob_exports(&self, _name: &str) -> bool {
        true
    }

    fn module_display(&self, module: &str, level: u32) -> String {
        if level == MOD_PATH {
            return format!("#[path] {}", module.replace(DOT, "."));
        }
        let level = if level >= MOD_DECL {
            level - MOD_DECL
        } else {
            level
        };
        let prefix = match level {
            0 => String::new(),
            1 => "self::".to_owned(),
            n => "super::".repeat((n - 1) as usize),
        };
        format!("{prefix}{module}")
    }

    fn is_public(&self, def: &Def) -> bool {
        def.key.is_some()
            && def
                .signature
                .as_deref()
                .is_some_and(|s| s.starts_with("pub ") || s.starts_with("pub fn"))
    }
}

/// A crate of the Cargo workspace.
struct CrateInfo {
    /// `[lib] name`, or `[package] name` with `-` → `_`.
    name: String,
    /// Directory of its Cargo.toml.
    dir: String,
    /// `src/lib.rs`, when present.
    lib: Option<String>,
}

/// The crates declared by the project's Cargo.toml files.
fn crates(map: &ModuleMap) -> Vec<CrateInfo> {
    let mut out = Vec::new();
    for (path, text) in map.configs() {
        let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
        if base != "Cargo.toml" {
            continue;
        }
        let Some(name) = cargo_crate_name(text) else {
            continue;
        };
        let lib = join(dir, "src/lib.rs");
        out.push(CrateInfo {
            name,
            dir: dir.to_owned(),
            lib: map.file(&lib).is_some().then_some(lib),
        });
    }
    out
}

/// The crate name a Cargo.toml declares: `[lib] name`, else `[package] name` with `-` → `_`.
pub fn cargo_crate_name(toml: &str) -> Option<String> {
    let mut section = "";
    let mut package = None;
    let mut lib = None;
    for line in toml.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() != "name" {
            continue;
        }
        let value = value.trim().trim_matches('"').trim_matches('\'').to_owned();
        match section {
            "[package]" => package = Some(value),
            "[lib]" => lib = Some(value),
            _ => {}
        }
    }
    lib.or(package).map(|n| n.replace('-', "_"))
}

/// The crate root file whose module tree contains `path`.
fn crate_root_of(map: &ModuleMap, path: &str) -> Option<String> {
    let dir = parent_dir(path);
    let base = path.rsplit('/').next().unwrap_or(path);
    // Files that are crate roots themselves.
    if matches!(base, "lib.rs" | "main.rs" | "build.rs") && map.file(path).is_some() {
        let parent_base = dir.rsplit('/').next().unwrap_or(dir);
        if base != "build.rs" || parent_base != "src" {
            return Some(path.to_owned());
        }
    }
    let parent_base = dir.rsplit('/').next().unwrap_or(dir);
    if matches!(parent_base, "tests" | "examples" | "benches" | "bin")
        && map.file(&join(dir, "lib.rs")).is_none()
        && map.file(&join(dir, "main.rs")).is_none()
    {
        return Some(path.to_owned());
    }
    // The innermost directory above with a lib.rs or main.rs.
    let mut d = dir;
    loop {
        for root in ["lib.rs", "main.rs"] {
            let candidate = join(d, root);
            if map.file(&candidate).is_some() {
                return Some(candidate);
            }
        }
        if let Some(c) = crates(map).into_iter().find(|c| c.dir == d) {
            return c.lib.or_else(|| {
                let main = join(&c.dir, "src/main.rs");
                map.file(&main).is_some().then_some(main)
            });
        }
        if d.is_empty() {
            return None;
        }
        d = parent_dir(d);
    }
}

/// The module path of `path` inside the crate rooted at `root` (`src/a/b.rs` → `[a, b]`).
fn module_segments(root: &str, path: &str) -> Option<Vec<String>> {
    if path == root {
        return Some(Vec::new());
    }
    let root_dir = parent_dir(root);
    let rel = if root_dir.is_empty() {
        path
    } else {
        path.strip_prefix(root_dir)?.strip_prefix('/')?
    };
    let rel = rel.strip_suffix(".rs")?;
    let mut segs: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if segs.last().is_some_and(|s| s == "mod") {
        segs.pop();
    }
    Some(segs)
}

/// The file of module `segs` in the crate rooted at `root`: `a/b.rs` or `a/b/mod.rs`.
fn module_file(map: &ModuleMap, root: &str, segs: &[String]) -> Option<SourceFile> {
    if segs.is_empty() {
        return map.file(root);
    }
    let base = join(parent_dir(root), &segs.join("/"));
    map.file(&format!("{base}.rs"))
        .or_else(|| map.file(&format!("{base}/mod.rs")))
}

/// The last path segment naming the type a type expression denotes (`&mut a::B<T>` → `B`).
fn type_base(text: &str, node: Node<'_>) -> Option<String> {
    match node.kind_str() {
        "type_identifier" | "identifier" => text.get(node.byte_range()).map(str::to_owned),
        "scoped_type_identifier" | "scoped_identifier" => type_base(text, node.field("name")?),
        "generic_type" => type_base(text, node.field("type")?),
        "reference_type" | "pointer_type" => type_base(text, node.field("type")?),
        _ => None,
    }
}

/// The type a type expression denotes as a dotted path for member lookups (`a::B` → `a.B`).
fn type_path(text: &str, node: Node<'_>) -> Option<String> {
    match node.kind_str() {
        "type_identifier" | "identifier" => text.get(node.byte_range()).map(str::to_owned),
        "scoped_type_identifier" | "scoped_identifier" => {
            let name = text.get(node.field("name")?.byte_range())?;
            match node.field("path") {
                Some(p) if matches!(p.kind_str(), "identifier" | "scoped_identifier") => {
                    Some(format!("{}.{name}", type_path(text, p)?))
                }
                Some(_) => None,
                None => Some(name.to_owned()),
            }
        }
        "generic_type" => type_path(text, node.field("type")?),
        "reference_type" | "pointer_type" => type_path(text, node.field("type")?),
        _ => None,
    }
}

/// What `self` means inside an impl: the type's definition in this file, if it is here.
#[derive(Clone, Copy)]
enum SelfTy {
    Local(DefIdx),
    Elsewhere,
}

struct Walker<'a> {
    text: &'a str,
    index: FileIndex,
    scope: ScopeIdx,
    /// The item containing what is being walked.
    parent: Option<DefIdx>,
    /// Inline module path from the file's module (for `self::`/`super::`).
    mod_path: Vec<String>,
    /// Key prefix for items (`None` inside function bodies: items there are locals).
    key_prefix: Option<String>,
    self_ty: Option<SelfTy>,
    /// Names of the items of the module being walked (for relative `use` paths).
    local_items: Vec<String>,
    /// Synthetic imports for `crate`/`self`/`super` path roots, by (module, level).
    path_roots: HashMap<(String, u32), ImportIdx>,
}

/// What `Walker::bind` needs to create a definition.
struct Binding {
    name: Name,
    kind: SymbolKind,
    name_range: TextRange,
    full_range: TextRange,
    signature: Option<String>,
    doc: Option<String>,
    doc_insert: Option<u32>,
    key: Option<Name>,
    parent: Option<DefIdx>,
    bases: Vec<Name>,
    import: Option<ImportIdx>,
}

impl Binding {
    fn new(name: Name, kind: SymbolKind, name_range: TextRange, full_range: TextRange) -> Binding {
        Binding {
            name,
            kind,
            name_range,
            full_range,
            signature: None,
            doc: None,
            doc_insert: None,
            key: None,
            parent: None,
            bases: Vec::new(),
            import: None,
        }
    }
}

impl<'a> NodeText<'a> for Walker<'a> {
    fn text(&self) -> &'a str {
        self.text
    }
}

impl<'a> Walker<'a> {
    fn new(text: &'a str, language: Language) -> Walker<'a> {
        Walker {
            text,
            index: FileIndex::empty(Some(language)),
            scope: 0,
            parent: None,
            mod_path: Vec::new(),
            key_prefix: Some(String::new()),
            self_ty: None,
            local_items: Vec::new(),
            path_roots: HashMap::new(),
        }
    }

    fn finish(mut self) -> FileIndex {
        self.index.shorthand.sort();
        self.index.shorthand.dedup();
        self.index.index_keys();
        self.index
    }

    fn key_for(&self, name: &str) -> Option<Name> {
        self.key_prefix.as_ref().map(|p| {
            if p.is_empty() {
                Name::from(name)
            } else {
                Name::from(format!("{p}.{name}"))
            }
        })
    }

    fn new_scope(&mut self, kind: ScopeKind, range: TextRange, owner: Option<DefIdx>) -> ScopeIdx {
        let idx = self.index.scopes.len() as ScopeIdx;
        self.index
            .scopes
            .push(Scope::new(kind, range, Some(self.scope), owner));
        idx
    }

    fn push_ref(&mut self, name: Name, range: TextRange, qualifier: Qualifier) -> RefIdx {
        let idx = self.index.refs.len() as RefIdx;
        self.index.refs.push(Ref {
            name,
            range,
            scope: self.scope,
            qualifier,
            write: false,
        });
        idx
    }

    fn bind_in(&mut self, target: ScopeIdx, spec: Binding) -> Option<DefIdx> {
        if &*spec.name == "_" || spec.name.is_empty() {
            return None;
        }
        if self
            .index
            .scope(target)
            .is_some_and(|s| s.names.contains_key(&spec.name))
        {
            let saved = self.scope;
            self.scope = target;
            let r = self.push_ref(spec.name, spec.name_range, Qualifier::None);
            if let Some(r) = self.index.refs.get_mut(r as usize) {
                r.write = true;
            }
            self.scope = saved;
            return None;
        }
        let idx = self.index.defs.len() as DefIdx;
        self.index.defs.push(Def {
            name: spec.name.clone(),
            kind: spec.kind,
            name_range: spec.name_range,
            full_range: spec.full_range,
            parent: spec.parent,
            scope: target,
            body: None,
            doc: spec.doc,
            signature: spec.signature,
            import: spec.import,
            key: spec.key,
            bases: spec.bases,
            doc_insert: spec.doc_insert,
        });
        if let Some(s) = self.index.scopes.get_mut(target as usize) {
            s.names.insert(spec.name, idx);
        }
        Some(idx)
    }

    fn push_import(
        &mut self,
        module: String,
        level: u32,
        kind: ImportKind,
        node: Node<'_>,
    ) -> ImportIdx {
        let idx = self.index.imports.len() as ImportIdx;
        self.index.imports.push(Import {
            module: module.into(),
            level,
            kind,
            scope: self.scope,
            range: node_range(node),
        });
        idx
    }

    /// Doc comment (`///` lines above the item and its attributes) and where one would go.
    fn doc(&self, node: Node<'_>) -> (Option<String>, Option<u32>) {
        let mut first = node;
        while let Some(prev) = first.prev_named_sibling() {
            if prev.kind_str() == "attribute_item" {
                first = prev;
            } else {
                break;
            }
        }
        let start = first.start_byte();
        let mut doc = doc_above(self.text, start, &["///"]);
        if doc.is_none() {
            // Doc comments between attributes.
            doc = doc_above(self.text, node.start_byte(), &["///"]);
        }
        (doc, u32::try_from(start).ok())
    }

    /// The value of a `#[path = "…"]` attribute on an item.
    fn path_attribute(&self, node: Node<'_>) -> Option<String> {
        let mut prev = node.prev_named_sibling();
        while let Some(p) = prev.filter(|p| p.kind_str() == "attribute_item") {
            let text = self.src(p);
            let inner = text.strip_prefix("#[")?.strip_suffix(']')?.trim();
            if let Some(rest) = inner.strip_prefix("path")
                && let Some(value) = rest.trim_start().strip_prefix('=')
            {
                let value = value.trim().trim_matches('"');
                if !value.is_empty() {
                    return Some(value.to_owned());
                }
            }
            prev = p.prev_named_sibling();
        }
        None
    }

    /// A one-line signature: the item's text up to its body.
    fn signature(&self, node: Node<'_>, end: usize) -> String {
        let text = self.text.get(node.start_byte()..end).unwrap_or("");
        truncate(&collapse_ws(text), 160)
    }

    fn item_def(
        &mut self,
        node: Node<'_>,
        kind: SymbolKind,
        name_node: Node<'_>,
        sig_end: usize,
    ) -> Option<DefIdx> {
        let name = self.name(name_node);
        let (doc, doc_insert) = self.doc(node);
        let mut b = Binding::new(name.clone(), kind, node_range(name_node), node_range(node));
        b.key = self.key_for(&name);
        b.parent = self.parent;
        b.signature = Some(self.signature(node, sig_end));
        b.doc = doc;
        b.doc_insert = doc_insert;
        self.bind_in(self.scope, b)
    }

    // ---- items ------------------------------------------------------------------------------

    /// The items of a file, inline module body or block: all names first (items are visible
    /// throughout their container), then their contents.
    fn items(&mut self, container: Node<'_>, in_module: bool) {
        let children: Vec<Node<'_>> = named_children(container).collect();
        let saved_items = std::mem::take(&mut self.local_items);
        self.local_items = children
            .iter()
            .filter(|c| {
                // Items in the type namespace (what a `use` path can start with).
                matches!(
                    c.kind_str(),
                    "mod_item"
                        | "struct_item"
                        | "union_item"
                        | "enum_item"
                        | "trait_item"
                        | "type_item"
                        | "extern_crate_declaration"
                )
            })
            .filter_map(|c| c.field("name"))
            .map(|n| self.src(n).to_owned())
            .collect();
        let mut defs: Vec<Option<DefIdx>> = Vec::with_capacity(children.len());
        for c in &children {
            defs.push(self.item_name(*c));
        }
        for (c, def) in children.iter().zip(defs) {
            self.item_body(*c, def, in_module);
        }
        self.local_items = saved_items;
    }

    /// Pass 1: the definition an item makes (fields and variants included).
    fn item_name(&mut self, node: Node<'_>) -> Option<DefIdx> {
        let name_node = node.field("name");
        match node.kind_str() {
            "function_item" | "function_signature_item" => {
                let name_node = name_node?;
                let end = node
                    .field("return_type")
                    .or(node.field("parameters"))
                    .map(|n| n.end_byte())
                    .unwrap_or(name_node.end_byte());
                self.item_def(node, SymbolKind::Function, name_node, end)
            }
            "struct_item" | "union_item" | "enum_item" | "trait_item" => {
                let name_node = name_node?;
                let kind = match node.kind_str() {
                    "enum_item" => SymbolKind::Enum,
                    "trait_item" => SymbolKind::Trait,
                    _ => SymbolKind::Struct,
                };
                let body = node.field("body");
                let end = body.map(|b| b.start_byte()).unwrap_or(node.end_byte());
                let def = self.item_def(node, kind, name_node, end)?;
                let members = self.new_scope(ScopeKind::Class, node_range(node), Some(def));
                if let Some(d) = self.index.defs.get_mut(def as usize) {
                    d.body = Some(members);
                }
                let key = self.index.def(def).and_then(|d| d.key.clone());
                if let Some(body) = body {
                    self.members(body, def, members, key.as_deref());
                }
                Some(def)
            }
            "type_item" => {
                let name_node = name_node?;
                let def = self.item_def(node, SymbolKind::TypeAlias, name_node, node.end_byte())?;
                if let Some(t) = node.field("type").and_then(|t| type_path(self.text, t))
                    && let Some(d) = self.index.defs.get_mut(def as usize)
                {
                    d.bases.push(t.into());
                }
                Some(def)
            }
            "const_item" | "static_item" => {
                let name_node = name_node?;
                let kind = if node.kind_str() == "const_item" {
                    SymbolKind::Constant
                } else {
                    SymbolKind::Variable
                };
                let end = node
                    .field("type")
                    .map(|t| t.end_byte())
                    .unwrap_or(name_node.end_byte());
                let def = self.item_def(node, kind, name_node, end)?;
                if let Some(t) = node.field("type").and_then(|t| type_path(self.text, t))
                    && let Some(d) = self.index.defs.get_mut(def as usize)
                {
                    d.bases.push(t.into());
                }
                Some(def)
            }
            "macro_definition" => {
                let name_node = name_node?;
                self.item_def(node, SymbolKind::Macro, name_node, name_node.end_byte())
            }
            "mod_item" => {
                let name_node = name_node?;
                let name = self.name(name_node);
                if node.field("body").is_some() {
                    return self.item_def(
                        node,
                        SymbolKind::Module,
                        name_node,
                        name_node.end_byte(),
                    );
                }
                // `mod x;`: binds the module file (`#[path = "…"]` names it directly).
                let mut path = self.mod_path.clone();
                path.push(name.to_string());
                let imp = match self.path_attribute(node) {
                    Some(file) => self.push_import(
                        file.replace('.', &DOT.to_string()),
                        MOD_PATH,
                        ImportKind::Module { alias: None },
                        name_node,
                    ),
                    None => self.push_import(
                        path.join("::"),
                        MOD_DECL + 1,
                        ImportKind::Module { alias: None },
                        name_node,
                    ),
                };
                let (doc, doc_insert) = self.doc(node);
                let mut b = Binding::new(
                    name.clone(),
                    SymbolKind::Import,
                    node_range(name_node),
                    node_range(node),
                );
                b.key = self.key_for(&name);
                b.parent = self.parent;
                b.import = Some(imp);
                b.signature = Some(collapse_ws(self.src(node)));
                b.doc = doc;
                b.doc_insert = doc_insert;
                self.bind_in(self.scope, b)
            }
            "use_declaration" => {
                if let Some(arg) = node.field("argument") {
                    self.use_tree_owned(arg, &[], node);
                }
                None
            }
            "extern_crate_declaration" => {
                let name_node = name_node?;
                let alias = node.field("alias");
                let crate_name = self.src(name_node).to_owned();
                let bind_node = alias.unwrap_or(name_node);
                let imp = self.push_import(
                    crate_name,
                    0,
                    ImportKind::Module {
                        alias: Some(self.name(bind_node)),
                    },
                    name_node,
                );
                let mut b = Binding::new(
                    self.name(bind_node),
                    SymbolKind::Import,
                    node_range(bind_node),
                    node_range(node),
                );
                b.import = Some(imp);
                b.signature = Some(collapse_ws(self.src(node)));
                self.bind_in(self.scope, b)
            }
            _ => None,
        }
    }

    /// Fields of a struct, variants of an enum, items of a trait.
    fn members(&mut self, body: Node<'_>, owner: DefIdx, scope: ScopeIdx, owner_key: Option<&str>) {
        let member_key = |name: &str| owner_key.map(|k| Name::from(format!("{k}.{name}")));
        for m in named_children(body) {
            let Some(n) = m.field("name") else {
                continue;
            };
            let kind = match m.kind_str() {
                "field_declaration" => SymbolKind::Field,
                "enum_variant" => SymbolKind::EnumVariant,
                "function_item" | "function_signature_item" => SymbolKind::Method,
                "const_item" => SymbolKind::Constant,
                "associated_type" | "type_item" => SymbolKind::TypeAlias,
                _ => continue,
            };
            let name = self.name(n);
            let (doc, doc_insert) = self.doc(m);
            let end = match kind {
                SymbolKind::Method => m
                    .field("return_type")
                    .or(m.field("parameters"))
                    .map(|x| x.end_byte())
                    .unwrap_or(n.end_byte()),
                SymbolKind::EnumVariant => m.end_byte(),
                _ => m
                    .field("type")
                    .map(|t| t.end_byte())
                    .unwrap_or(n.end_byte()),
            };
            let mut b = Binding::new(name.clone(), kind, node_range(n), node_range(m));
            b.key = member_key(&name);
            b.parent = Some(owner);
            b.signature = Some(self.signature(m, end));
            b.doc = doc;
            b.doc_insert = doc_insert;
            if kind == SymbolKind::Field
                && let Some(t) = m.field("type").and_then(|t| type_path(self.text, t))
            {
                b.bases.push(t.into());
            }
            self.bind_in(scope, b);
        }
    }

    /// Pass 2: references and bodies of an item.
    fn item_body(&mut self, node: Node<'_>, def: Option<DefIdx>, in_module: bool) {
        match node.kind_str() {
            "function_item" => self.function(node, def, None),
            "function_signature_item" => {
                let saved = self.scope;
                self.scope = self.new_scope(ScopeKind::Function, node_range(node), def);
                self.params_and_types(node, false);
                self.scope = saved;
            }
            "struct_item" | "union_item" | "enum_item" => {
                let saved = self.scope;
                self.scope = self.new_scope(ScopeKind::Block, node_range(node), None);
                if let Some(tp) = node.field("type_parameters") {
                    self.type_parameters(tp);
                }
                if let Some(body) = node.field("body") {
                    self.type_refs_in(body);
                }
                self.scope = saved;
            }
            "trait_item" => {
                let Some(def) = def else { return };
                let saved = (self.scope, self.self_ty);
                self.scope = self.new_scope(ScopeKind::Block, node_range(node), None);
                if let Some(tp) = node.field("type_parameters") {
                    self.type_parameters(tp);
                }
                if let Some(b) = node.field("bounds") {
                    self.type_expr(b);
                }
                self.self_ty = Some(SelfTy::Local(def));
                if let Some(body) = node.field("body") {
                    for m in named_children(body) {
                        let member = m.field("name").and_then(|n| {
                            self.index
                                .scope(self.index.def(def)?.body?)?
                                .names
                                .get(self.src(n))
                                .copied()
                        });
                        match m.kind_str() {
                            "function_item" => self.function(m, member, Some(SelfTy::Local(def))),
                            "function_signature_item" => {
                                let s = self.scope;
                                self.scope =
                                    self.new_scope(ScopeKind::Function, node_range(m), member);
                                self.params_and_types(m, false);
                                self.scope = s;
                            }
                            _ => self.type_refs_in(m),
                        }
                    }
                }
                (self.scope, self.self_ty) = saved;
            }
            "type_item" | "const_item" | "static_item" => {
                if let Some(t) = node.field("type") {
                    self.type_expr(t);
                }
                if let Some(v) = node.field("value") {
                    self.expr(v);
                }
            }
            "mod_item" => {
                let (Some(def), Some(body)) = (def, node.field("body")) else {
                    return;
                };
                let Some(name) = node.field("name").map(|n| self.src(n).to_owned()) else {
                    return;
                };
                let scope = self.new_scope(ScopeKind::Class, node_range(body), Some(def));
                if let Some(d) = self.index.defs.get_mut(def as usize) {
                    d.body = Some(scope);
                }
                let saved_scope = self.scope;
                let saved_parent = self.parent;
                let saved_prefix = self.key_prefix.clone();
                self.scope = scope;
                self.parent = Some(def);
                self.key_prefix = self
                    .index
                    .def(def)
                    .and_then(|d| d.key.as_deref().map(str::to_owned));
                self.mod_path.push(name);
                self.items(body, in_module);
                self.mod_path.pop();
                self.scope = saved_scope;
                self.parent = saved_parent;
                self.key_prefix = saved_prefix;
            }
            "impl_item" => self.impl_item(node),
            "macro_invocation" => {
                self.expr(node);
            }
            "expression_statement" => {
                for c in named_children(node) {
                    self.expr(c);
                }
            }
            "let_declaration"
            | "attribute_item"
            | "inner_attribute_item"
            | "line_comment"
            | "block_comment"
            | "use_declaration"
            | "macro_definition"
            | "extern_crate_declaration" => {}
            _ => {
                self.expr(node);
            }
        }
    }

    /// Type references in a struct/enum body (field types).
    fn type_refs_in(&mut self, node: Node<'_>) {
        for c in named_children(node) {
            match c.kind_str() {
                "field_declaration" => {
                    if let Some(t) = c.field("type") {
                        self.type_expr(t);
                    }
                }
                "enum_variant" => {
                    if let Some(b) = c.field("body") {
                        self.type_refs_in(b);
                    }
                    if let Some(v) = c.field("value") {
                        self.expr(v);
                    }
                }
                "attribute_item" | "visibility_modifier" | "line_comment" | "block_comment" => {}
                _ => self.type_expr(c),
            }
        }
    }

    fn type_parameters(&mut self, tp: Node<'_>) {
        for p in named_children(tp) {
            match p.kind_str() {
                "type_parameter" | "const_parameter" => {
                    let name_node = p.field("name").or_else(|| {
                        named_children(p).find(|c| {
                            c.kind_str() == "type_identifier" || c.kind_str() == "identifier"
                        })
                    });
                    for c in named_children(p) {
                        if Some(c) != name_node {
                            self.type_expr(c);
                        }
                    }
                    if let Some(n) = name_node {
                        let mut b = Binding::new(
                            self.name(n),
                            SymbolKind::Parameter,
                            node_range(n),
                            node_range(p),
                        );
                        b.signature = Some(collapse_ws(self.src(p)));
                        self.bind_in(self.scope, b);
                    }
                }
                _ => {}
            }
        }
    }

    fn impl_item(&mut self, node: Node<'_>) {
        let saved = (self.scope, self.self_ty, self.parent);
        self.scope = self.new_scope(ScopeKind::Block, node_range(node), None);
        if let Some(tp) = node.field("type_parameters") {
            self.type_parameters(tp);
        }
        if let Some(t) = node.field("trait") {
            self.type_expr(t);
        }
        let ty = node.field("type");
        if let Some(t) = ty {
            self.type_expr(t);
        }
        let ty_name = ty.and_then(|t| type_base(self.text, t));
        // The type's definition when it is an item of the same module in this file.
        let local = ty_name.as_deref().and_then(|n| {
            let d = *self.index.scope(saved.0)?.names.get(n)?;
            let def = self.index.def(d)?;
            (def.kind.has_members() && def.import.is_none()).then_some(d)
        });
        let (members_scope, owner_key) = match local {
            Some(d) => (
                self.index.def(d).and_then(|x| x.body),
                self.index.def(d).and_then(|x| x.key.clone()),
            ),
            None => (None, None),
        };
        let members_scope = members_scope
            .unwrap_or_else(|| self.new_scope(ScopeKind::Class, node_range(node), None));
        let key_prefix = self.key_prefix.clone();
        let member_key = |name: &str| -> Option<Name> {
            match (&owner_key, &ty_name) {
                (Some(k), _) => Some(format!("{k}.{name}").into()),
                (None, Some(t)) => key_prefix.as_ref().map(|p| {
                    if p.is_empty() {
                        Name::from(format!("{t}.{name}"))
                    } else {
                        Name::from(format!("{p}.{t}.{name}"))
                    }
                }),
                (None, None) => None,
            }
        };
        let self_ty = match local {
            Some(d) => SelfTy::Local(d),
            None => SelfTy::Elsewhere,
        };
        let Some(body) = node.field("body") else {
            (self.scope, self.self_ty, self.parent) = saved;
            return;
        };
        let mut methods = Vec::new();
        for m in named_children(body) {
            let Some(n) = m.field("name") else {
                if m.kind_str() == "macro_invocation" {
                    self.expr(m);
                }
                continue;
            };
            let kind = match m.kind_str() {
                "function_item" => SymbolKind::Method,
                "const_item" => SymbolKind::Constant,
                "type_item" => SymbolKind::TypeAlias,
                _ => continue,
            };
            let name = self.name(n);
            let (doc, doc_insert) = self.doc(m);
            let end = match kind {
                SymbolKind::Method => m
                    .field("return_type")
                    .or(m.field("parameters"))
                    .map(|x| x.end_byte())
                    .unwrap_or(n.end_byte()),
                _ => m.end_byte(),
            };
            let mut b = Binding::new(name.clone(), kind, node_range(n), node_range(m));
            b.key = member_key(&name);
            b.parent = local;
            b.signature = Some(self.signature(m, end));
            b.doc = doc;
            b.doc_insert = doc_insert;
            let field = self
                .index
                .scope(members_scope)
                .and_then(|s| s.names.get(&name).copied())
                .filter(|&d| {
                    self.index
                        .def(d)
                        .is_some_and(|d| d.kind == SymbolKind::Field)
                });
            let def = match field {
                // A method named like a field (a getter): `x.name` and `x.name()` cannot be
                // told apart by name, so both become members found by name only (probable).
                Some(f) => {
                    if let Some(fd) = self.index.defs.get_mut(f as usize) {
                        fd.parent = None;
                    }
                    b.parent = None;
                    b.key = b.key.map(|k| Name::from(format!("{k}()")));
                    let idx = self.index.defs.len() as DefIdx;
                    self.index.defs.push(Def {
                        name: b.name,
                        kind: b.kind,
                        name_range: b.name_range,
                        full_range: b.full_range,
                        parent: None,
                        scope: members_scope,
                        body: None,
                        doc: b.doc,
                        signature: b.signature,
                        import: None,
                        key: b.key,
                        bases: Vec::new(),
                        doc_insert: b.doc_insert,
                    });
                    Some(idx)
                }
                None => self.bind_in(members_scope, b),
            };
            methods.push((m, def));
        }
        self.self_ty = Some(self_ty);
        for (m, def) in methods {
            match m.kind_str() {
                "function_item" => self.function(m, def, Some(self_ty)),
                _ => {
                    if let Some(t) = m.field("type") {
                        self.type_expr(t);
                    }
                    if let Some(v) = m.field("value") {
                        self.expr(v);
                    }
                }
            }
        }
        (self.scope, self.self_ty, self.parent) = saved;
    }

    // ---- use trees ----------------------------------------------------------------------------

    /// A use tree: groups, renames and globs, with the path prefix collected so far.
    fn use_tree_owned(&mut self, node: Node<'_>, prefix: &[Node<'_>], decl: Node<'_>) {
        // Same as `use_tree`; separate to keep lifetimes simple.
        let prefix: Vec<Node<'_>> = prefix.to_vec();
        match node.kind_str() {
            "scoped_use_list" | "use_list" | "use_wildcard" | "use_as_clause" => {
                let mut segs = prefix.clone();
                match node.kind_str() {
                    "scoped_use_list" => {
                        if let Some(p) = node.field("path") {
                            self.path_nodes(p, &mut segs);
                        }
                        if let Some(list) = node.field("list") {
                            for c in named_children(list) {
                                self.use_tree_owned(c, &segs, decl);
                            }
                        }
                    }
                    "use_list" => {
                        for c in named_children(node) {
                            self.use_tree_owned(c, &prefix, decl);
                        }
                    }
                    "use_wildcard" => {
                        if let Some(p) = named_children(node).next() {
                            self.path_nodes(p, &mut segs);
                        }
                        self.use_binding(&segs, None, true, decl);
                    }
                    _ => {
                        if let Some(p) = node.field("path") {
                            self.path_nodes(p, &mut segs);
                        }
                        let alias = node.field("alias");
                        self.use_binding(&segs, alias, false, decl);
                    }
                }
            }
            _ => {
                let mut segs = prefix;
                self.path_nodes(node, &mut segs);
                self.use_binding(&segs, None, false, decl);
            }
        }
    }

    /// The segment nodes of a path (`a::b::c` → `[a, b, c]`).
    fn path_nodes<'n>(&self, node: Node<'n>, out: &mut Vec<Node<'n>>) {
        match node.kind_str() {
            "scoped_identifier" | "scoped_type_identifier" => {
                if let Some(p) = node.field("path") {
                    self.path_nodes(p, out);
                }
                if let Some(n) = node.field("name") {
                    out.push(n);
                }
            }
            _ => out.push(node),
        }
    }

    /// Whether a use path's first segment names an item of the current module (a relative path
    /// in Rust 2018) rather than a crate.
    fn is_local_name(&self, name: &str) -> bool {
        // Items of the current module are bound in the current scope before use trees run
        // only when declared earlier; scan the module's scope and its declared items.
        self.local_items.iter().any(|n| n == name)
            || self
                .index
                .scope(self.scope)
                .and_then(|s| s.names.get(name))
                .and_then(|&d| self.index.def(d))
                .is_some_and(|d| {
                    matches!(
                        d.kind,
                        SymbolKind::Module
                            | SymbolKind::Struct
                            | SymbolKind::Enum
                            | SymbolKind::Trait
                            | SymbolKind::TypeAlias
                            | SymbolKind::Import
                    )
                })
    }

    /// Whether `name` is bound in the scopes walked so far (or is an item of the module).
    fn visible(&self, name: &str) -> bool {
        if self.local_items.iter().any(|n| n == name) {
            return true;
        }
        let mut current = Some(self.scope);
        let mut guard = 0;
        while let Some(s) = current.and_then(|c| self.index.scope(c)) {
            if s.names.contains_key(name) {
                return true;
            }
            guard += 1;
            if guard > 10_000 {
                break;
            }
            current = s.parent;
        }
        false
    }

    /// The (module, level) a path's leading segments name, and how many segments that took.
    /// `crate::a` → ("crate", 0, 1); `self::a` → (<inline path>, 1, 1); `super::super::a` →
    /// (…, 3, 2); `a::b` with `a` local → (<inline path>, 1, 0); otherwise (`a`, 0, 0).
    fn path_root(&self, segs: &[&str]) -> (Vec<String>, u32, usize) {
        let mut inline = self.mod_path.clone();
        let mut up = 0u32;
        let mut used = 0;
        match segs.first() {
            Some(&"crate") => return (vec!["crate".to_owned()], 0, 1),
            Some(&"self") => used = 1,
            Some(&"super") => {
                for s in segs {
                    if *s != "super" {
                        break;
                    }
                    used += 1;
                    if inline.pop().is_none() {
                        up += 1;
                    }
                }
            }
            Some(first) if self.is_local_name(first) => {}
            _ => return (Vec::new(), 0, 0),
        }
        (inline, 1 + up, used)
    }

    fn use_binding(
        &mut self,
        segs: &[Node<'_>],
        alias: Option<Node<'_>>,
        glob: bool,
        decl: Node<'_>,
    ) {
        let mut segs: Vec<Node<'_>> = segs.to_vec();
        // `use a::{self}` names `a` itself.
        if !glob && segs.len() > 1 && segs.last().is_some_and(|n| self.src(*n) == "self") {
            segs.pop();
        }
        let names: Vec<&str> = segs.iter().map(|n| self.src(*n)).collect();
        if names.is_empty() {
            return;
        }
        let (root, level, used) = self.path_root(&names);
        let signature = Some(truncate(&collapse_ws(self.src(decl)), 160));
        // References for every segment but the bound name, each a member of the previous.
        let walked = if glob { segs.len() } else { segs.len() - 1 };
        let mut prev: Option<RefIdx> = None;
        for (i, n) in segs.iter().enumerate().take(walked) {
            let q = if i < used {
                let imp = self.root_import(root.join("::"), level, decl);
                Qualifier::ModulePath {
                    import: imp,
                    depth: 1,
                }
            } else if let Some(p) = prev {
                Qualifier::Ref(p)
            } else if level == 0 {
                // A crate name.
                let imp = self.root_import(names[0].to_owned(), 0, decl);
                Qualifier::ModulePath {
                    import: imp,
                    depth: 1,
                }
            } else {
                Qualifier::None
            };
            prev = Some(self.push_ref(self.name(*n), node_range(*n), q));
        }
        let mut module: Vec<String> = if level == 0 && used == 0 {
            Vec::new()
        } else {
            root
        };
        module.extend(names[used..walked].iter().map(|s| (*s).to_owned()));
        if glob {
            let imp = self.push_import(module.join("::"), level, ImportKind::Star, decl);
            let scope = self.scope;
            if let Some(s) = self.index.scopes.get_mut(scope as usize) {
                s.stars.push(imp);
            }
            return;
        }
        let Some(last) = segs.last().copied() else {
            return;
        };
        let last_name = self.name(last);
        let bind = alias.unwrap_or(last);
        let alias_name = alias.map(|a| self.name(a));
        let module_only = module.is_empty() && level == 0;
        let kind = if module_only {
            // `use foo;` / `use foo as bar;`: a crate.
            ImportKind::Module { alias: alias_name }
        } else {
            ImportKind::From {
                name: last_name.clone(),
                alias: alias_name,
            }
        };
        let module = if module_only {
            last_name.to_string()
        } else {
            module.join("::")
        };
        let imp = self.push_import(module, level, kind, decl);
        let mut b = Binding::new(
            self.name(bind),
            SymbolKind::Import,
            node_range(bind),
            node_range(decl),
        );
        b.import = Some(imp);
        b.key = self.key_for(self.src(bind));
        b.parent = self.parent;
        b.signature = signature;
        self.bind_in(self.scope, b);
        if !module_only {
            self.push_ref(last_name, node_range(last), Qualifier::ImportMember(imp));
        }
    }

    /// A synthetic import naming a path root (`crate`, `self`, `super`, a crate name).
    fn root_import(&mut self, module: String, level: u32, node: Node<'_>) -> ImportIdx {
        if let Some(&i) = self.path_roots.get(&(module.clone(), level)) {
            return i;
        }
        let saved = self.scope;
        self.scope = 0;
        let i = self.push_import(
            module.clone(),
            level,
            ImportKind::Module {
                alias: Some("".into()),
            },
            node,
        );
        self.scope = saved;
        self.path_roots.insert((module, level), i);
        i
    }

    // ---- functions and statements -------------------------------------------------------------

    fn function(&mut self, node: Node<'_>, def: Option<DefIdx>, self_ty: Option<SelfTy>) {
        let saved = (
            self.scope,
            self.parent,
            self.key_prefix.clone(),
            self.self_ty,
        );
        self.scope = self.new_scope(ScopeKind::Function, node_range(node), def);
        if let Some(d) = def
            && let Some(dd) = self.index.defs.get_mut(d as usize)
        {
            dd.body = Some(self.scope);
        }
        if def.is_some() {
            self.parent = def;
        }
        self.key_prefix = None;
        self.self_ty = self_ty;
        self.params_and_types(node, true);
        if let Some(body) = node.field("body") {
            self.block_contents(body);
        }
        (self.scope, self.parent, self.key_prefix, self.self_ty) = saved;
    }

    fn params_and_types(&mut self, node: Node<'_>, bind: bool) {
        if let Some(tp) = node.field("type_parameters") {
            self.type_parameters(tp);
        }
        if let Some(params) = node.field("parameters") {
            for p in named_children(params) {
                match p.kind_str() {
                    "parameter" => {
                        let ty = p.field("type");
                        if let Some(t) = ty {
                            self.type_expr(t);
                        }
                        if bind && let Some(pat) = p.field("pattern") {
                            let base = ty.and_then(|t| type_path(self.text, t));
                            self.pattern(pat, SymbolKind::Parameter, p, base);
                        }
                    }
                    "self_parameter" | "attribute_item" | "line_comment" | "block_comment" => {}
                    _ => self.type_expr(p),
                }
            }
        }
        if let Some(r) = node.field("return_type") {
            self.type_expr(r);
        }
        for c in named_children(node) {
            if c.kind_str() == "where_clause" {
                self.type_expr(c);
            }
        }
    }

    /// The statements of a block, in a new scope; each `let` opens a scope for what follows.
    fn block(&mut self, node: Node<'_>) {
        let saved = self.scope;
        self.scope = self.new_scope(ScopeKind::Block, node_range(node), None);
        self.block_contents(node);
        self.scope = saved;
    }

    fn block_contents(&mut self, node: Node<'_>) {
        let saved = self.scope;
        let children: Vec<Node<'_>> = named_children(node).collect();
        // Items of the block are visible throughout it.
        let mut item_defs = Vec::new();
        for c in &children {
            if is_item(c.kind_str()) {
                item_defs.push((*c, self.item_name(*c)));
            }
        }
        let mut items = item_defs.into_iter();
        for c in children {
            if is_item(c.kind_str()) {
                if let Some((n, d)) = items.next() {
                    let s = self.scope;
                    self.scope = saved;
                    self.item_body(n, d, false);
                    self.scope = s;
                }
                continue;
            }
            match c.kind_str() {
                "let_declaration" => self.let_declaration(c, node),
                "expression_statement" => {
                    for e in named_children(c) {
                        self.expr(e);
                    }
                }
                "line_comment" | "block_comment" | "attribute_item" | "label" => {}
                _ => {
                    self.expr(c);
                }
            }
        }
        self.scope = saved;
    }

    fn let_declaration(&mut self, node: Node<'_>, block: Node<'_>) {
        let ty = node.field("type");
        if let Some(t) = ty {
            self.type_expr(t);
        }
        let value = node.field("value");
        if let Some(v) = value {
            self.expr(v);
        }
        if let Some(alt) = node.field("alternative") {
            self.block(alt);
        }
        // The bindings are visible from here to the end of the block.
        let range = TextRange::new(node.start_byte(), block.end_byte());
        self.scope = self.new_scope(ScopeKind::Block, range, None);
        let base = ty
            .and_then(|t| type_path(self.text, t))
            .or_else(|| value.and_then(|v| value_type(self.text, v)));
        if let Some(p) = node.field("pattern") {
            self.pattern(p, SymbolKind::Variable, node, base);
        }
    }

    /// Binds the names a pattern introduces (in the current scope) and records the paths it
    /// mentions. Lower-case identifiers bind; capitalised ones name constants or variants.
    fn pattern(&mut self, node: Node<'_>, kind: SymbolKind, stmt: Node<'_>, base: Option<String>) {
        match node.kind_str() {
            "identifier" => {
                let name = self.src(node);
                if name.starts_with(|c: char| c.is_uppercase()) {
                    self.push_ref(name.into(), node_range(node), Qualifier::None);
                    return;
                }
                let mut b = Binding::new(name.into(), kind, node_range(node), node_range(stmt));
                b.signature = Some(truncate(
                    &collapse_ws(self.src(stmt).lines().next().unwrap_or("")),
                    120,
                ));
                b.bases.extend(base.map(Name::from));
                self.bind_in(self.scope, b);
            }
            "mut_pattern" | "ref_pattern" | "reference_pattern" => {
                for c in named_children(node) {
                    self.pattern(c, kind, stmt, base.clone());
                }
            }
            "captured_pattern" => {
                for c in named_children(node) {
                    self.pattern(c, kind, stmt, None);
                }
            }
            "tuple_struct_pattern" => {
                let ty = node.field("type");
                if let Some(t) = ty {
                    self.path_expr(t);
                }
                for c in named_children(node) {
                    if Some(c) != ty {
                        self.pattern(c, kind, stmt, None);
                    }
                }
            }
            "struct_pattern" => {
                let ty = node.field("type");
                let ty_ref = ty.and_then(|t| self.path_expr(t));
                for c in named_children(node) {
                    if c.kind_str() != "field_pattern" {
                        continue;
                    }
                    let name = c.field("name");
                    let pat = c.field("pattern");
                    match (name, pat) {
                        (Some(n), Some(p)) => {
                            let q = ty_ref.map(Qualifier::Ref).unwrap_or(Qualifier::Unknown);
                            self.push_ref(self.name(n), node_range(n), q);
                            self.pattern(p, kind, stmt, None);
                        }
                        (Some(n), None) => {
                            // Shorthand `S { x }` binds `x` (renamed as `x: new`).
                            self.index.shorthand.push(node_range(n));
                            let mut b =
                                Binding::new(self.name(n), kind, node_range(n), node_range(stmt));
                            b.signature = Some(collapse_ws(self.src(c)));
                            self.bind_in(self.scope, b);
                        }
                        _ => {}
                    }
                }
            }
            "scoped_identifier" => {
                self.path_expr(node);
            }
            "or_pattern" | "tuple_pattern" | "slice_pattern" => {
                for c in named_children(node) {
                    self.pattern(c, kind, stmt, None);
                }
            }
            "closure_expression" => {
                self.expr(node);
            }
            _ => {
                for c in named_children(node) {
                    if matches!(
                        c.kind_str(),
                        "identifier"
                            | "scoped_identifier"
                            | "tuple_struct_pattern"
                            | "struct_pattern"
                            | "tuple_pattern"
                    ) {
                        self.pattern(c, kind, stmt, None);
                    }
                }
            }
        }
    }

    // ---- expressions --------------------------------------------------------------------------

    /// A path in expression or type position; returns the reference of its last segment.
    fn path_expr(&mut self, node: Node<'_>) -> Option<RefIdx> {
        match node.kind_str() {
            "identifier" | "type_identifier" => {
                let name = self.src(node);
                if name == "Self" {
                    return None;
                }
                Some(self.push_ref(name.into(), node_range(node), Qualifier::None))
            }
            "self" | "crate" | "super" => {
                let (module, level, _) = self.path_root(&[self.src(node)]);
                let imp = self.root_import(module.join("::"), level, node);
                Some(self.push_ref(
                    self.name(node),
                    node_range(node),
                    Qualifier::ModulePath {
                        import: imp,
                        depth: 1,
                    },
                ))
            }
            "scoped_identifier" | "scoped_type_identifier" => {
                let name = node.field("name")?;
                let path = node.field("path");
                // `super::super::x`, `self::x`, `crate::x`: one root.
                let mut segs = Vec::new();
                if let Some(p) = path {
                    self.path_nodes(p, &mut segs);
                }
                let seg_names: Vec<&str> = segs.iter().map(|s| self.src(*s)).collect();
                let base = if !seg_names.is_empty()
                    && seg_names
                        .iter()
                        .all(|s| matches!(*s, "super" | "self" | "crate"))
                {
                    let (module, level, _) = self.path_root(&seg_names);
                    let imp = self.root_import(module.join("::"), level, node);
                    let mut last = None;
                    for s in &segs {
                        last = Some(self.push_ref(
                            self.name(*s),
                            node_range(*s),
                            Qualifier::ModulePath {
                                import: imp,
                                depth: 1,
                            },
                        ));
                    }
                    last
                } else if seg_names.as_slice() == ["Self"] {
                    let q = match self.self_ty {
                        Some(SelfTy::Local(d)) => Qualifier::SelfOf(d),
                        _ => Qualifier::Unknown,
                    };
                    return Some(self.push_ref(self.name(name), node_range(name), q));
                } else if segs.len() == 1
                    && segs[0].kind_str() == "identifier"
                    && seg_names[0].starts_with(|c: char| c.is_lowercase())
                    && !self.visible(seg_names[0])
                {
                    // `other_crate::x`: a crate of the workspace (or an external one).
                    let imp = self.root_import(seg_names[0].to_owned(), 0, node);
                    Some(self.push_ref(
                        self.name(segs[0]),
                        node_range(segs[0]),
                        Qualifier::ModulePath {
                            import: imp,
                            depth: 1,
                        },
                    ))
                } else {
                    match path {
                        Some(p) if p.kind_str() == "generic_type" => {
                            if let Some(args) = p.field("type_arguments") {
                                self.type_expr(args);
                            }
                            p.field("type").and_then(|t| self.path_expr(t))
                        }
                        Some(p) if p.kind_str() == "bracketed_type" => {
                            self.type_expr(p);
                            None
                        }
                        Some(p) => self.path_expr(p),
                        None => None,
                    }
                };
                let q = match base {
                    Some(b) => Qualifier::Ref(b),
                    None if path.is_some() => Qualifier::Unknown,
                    None => Qualifier::None,
                };
                Some(self.push_ref(self.name(name), node_range(name), q))
            }
            "generic_type" | "generic_function" => {
                if let Some(args) = node.field("type_arguments") {
                    self.type_expr(args);
                }
                let inner = node.field("type").or(node.field("function"))?;
                if inner.kind_str() == "field_expression" {
                    return self.expr(inner);
                }
                self.path_expr(inner)
            }
            _ => {
                self.type_expr(node);
                None
            }
        }
    }

    fn type_expr(&mut self, node: Node<'_>) {
        match node.kind_str() {
            "type_identifier"
            | "identifier"
            | "scoped_type_identifier"
            | "scoped_identifier"
            | "generic_type" => {
                self.path_expr(node);
            }
            "primitive_type" | "lifetime" | "line_comment" | "block_comment" | "self"
            | "mutable_specifier" => {}
            _ => {
                for c in named_children(node) {
                    self.type_expr(c);
                }
            }
        }
    }

    /// Records the references in an expression; returns the reference the expression *is*
    /// (a path or field access), so that member accesses can chain.
    fn expr(&mut self, node: Node<'_>) -> Option<RefIdx> {
        match node.kind_str() {
            "identifier" | "scoped_identifier" | "generic_function" | "crate" | "super" => {
                self.path_expr(node)
            }
            "self" => None,
            "field_expression" => {
                let value = node.field("value")?;
                let field = node.field("field")?;
                if field.kind_str() == "integer_literal" {
                    self.expr(value);
                    return None;
                }
                let q = if value.kind_str() == "self" {
                    match self.self_ty {
                        Some(SelfTy::Local(d)) => Qualifier::SelfOf(d),
                        _ => Qualifier::Unknown,
                    }
                } else {
                    match self.expr(value) {
                        Some(b) => Qualifier::Ref(b),
                        None => Qualifier::Unknown,
                    }
                };
                Some(self.push_ref(self.name(field), node_range(field), q))
            }
            "parenthesized_expression" | "reference_expression" => {
                let inner = named_children(node)
                    .filter(|c| c.kind_str() != "mutable_specifier")
                    .last()?;
                self.expr(inner)
            }
            "struct_expression" => {
                let name = node.field("name");
                let ty_ref = match name {
                    Some(n) if self.src(n) == "Self" => None,
                    Some(n) => self.path_expr(n),
                    None => None,
                };
                let self_local = match (name.map(|n| self.src(n)), self.self_ty) {
                    (Some("Self"), Some(SelfTy::Local(d))) => Some(d),
                    _ => None,
                };
                if let Some(body) = node.field("body") {
                    for f in named_children(body) {
                        match f.kind_str() {
                            "field_initializer" => {
                                if let Some(field) = f.field("field")
                                    && field.kind_str() == "field_identifier"
                                {
                                    let q = match (ty_ref, self_local) {
                                        (Some(t), _) => Qualifier::Ref(t),
                                        (None, Some(d)) => Qualifier::SelfOf(d),
                                        _ => Qualifier::Unknown,
                                    };
                                    self.push_ref(self.name(field), node_range(field), q);
                                }
                                if let Some(v) = f.field("value") {
                                    self.expr(v);
                                }
                            }
                            "shorthand_field_initializer" => {
                                // `S { x }`: a rename of the local `x` must write `x: new`.
                                for c in named_children(f) {
                                    if c.kind_str() == "identifier" {
                                        self.index.shorthand.push(node_range(c));
                                    }
                                    self.expr(c);
                                }
                            }
                            _ => {
                                for c in named_children(f) {
                                    self.expr(c);
                                }
                            }
                        }
                    }
                }
                None
            }
            "closure_expression" => {
                let saved = self.scope;
                self.scope = self.new_scope(ScopeKind::Lambda, node_range(node), None);
                if let Some(params) = node.field("parameters") {
                    for p in named_children(params) {
                        if p.kind_str() == "parameter" {
                            let ty = p.field("type");
                            if let Some(t) = ty {
                                self.type_expr(t);
                            }
                            if let Some(pat) = p.field("pattern") {
                                let base = ty.and_then(|t| type_path(self.text, t));
                                self.pattern(pat, SymbolKind::Parameter, p, base);
                            }
                        } else {
                            self.pattern(p, SymbolKind::Parameter, p, None);
                        }
                    }
                }
                if let Some(r) = node.field("return_type") {
                    self.type_expr(r);
                }
                if let Some(b) = node.field("body") {
                    self.expr(b);
                }
                self.scope = saved;
                None
            }
            "block" => {
                self.block(node);
                None
            }
            "unsafe_block" | "async_block" | "const_block" | "try_block" | "loop_expression" => {
                for c in named_children(node) {
                    match c.kind_str() {
                        "block" => self.block(c),
                        "label" => {}
                        _ => {
                            self.expr(c);
                        }
                    }
                }
                None
            }
            "if_expression" | "while_expression" => {
                let saved = self.scope;
                self.scope = self.new_scope(ScopeKind::Block, node_range(node), None);
                if let Some(c) = node.field("condition") {
                    self.condition(c);
                }
                if let Some(b) = node.field("consequence").or(node.field("body")) {
                    self.block(b);
                }
                self.scope = saved;
                if let Some(a) = node.field("alternative") {
                    for c in named_children(a) {
                        if c.kind_str() == "block" {
                            self.block(c);
                        } else {
                            self.expr(c);
                        }
                    }
                }
                None
            }
            "for_expression" => {
                if let Some(v) = node.field("value") {
                    self.expr(v);
                }
                let saved = self.scope;
                self.scope = self.new_scope(ScopeKind::Block, node_range(node), None);
                if let Some(p) = node.field("pattern") {
                    self.pattern(p, SymbolKind::Variable, node, None);
                }
                if let Some(b) = node.field("body") {
                    self.block(b);
                }
                self.scope = saved;
                None
            }
            "match_expression" => {
                if let Some(v) = node.field("value") {
                    self.expr(v);
                }
                if let Some(body) = node.field("body") {
                    for arm in named_children(body) {
                        if arm.kind_str() != "match_arm" {
                            continue;
                        }
                        let saved = self.scope;
                        self.scope = self.new_scope(ScopeKind::Block, node_range(arm), None);
                        if let Some(p) = arm.field("pattern") {
                            for c in named_children(p) {
                                if Some(c) == p.field("condition") {
                                    self.condition(c);
                                } else {
                                    self.pattern(c, SymbolKind::Variable, arm, None);
                                }
                            }
                        }
                        if let Some(v) = arm.field("value") {
                            self.expr(v);
                        }
                        self.scope = saved;
                    }
                }
                None
            }
            "macro_invocation" => {
                if let Some(m) = node.field("macro") {
                    self.path_expr(m);
                }
                for c in named_children(node) {
                    if c.kind_str() == "token_tree" {
                        self.token_tree(c);
                    }
                }
                None
            }
            "type_cast_expression" => {
                if let Some(v) = node.field("value") {
                    self.expr(v);
                }
                if let Some(t) = node.field("type") {
                    self.type_expr(t);
                }
                None
            }
            "let_condition" | "let_chain" => {
                self.condition(node);
                None
            }
            "field_identifier" | "integer_literal" | "float_literal" | "string_literal"
            | "raw_string_literal" | "char_literal" | "boolean_literal" | "line_comment"
            | "block_comment" | "label" | "lifetime" | "primitive_type" => None,
            "type_arguments" => {
                self.type_expr(node);
                None
            }
            k if is_item(k) => {
                let d = self.item_name(node);
                self.item_body(node, d, false);
                None
            }
            "let_declaration" => None,
            _ => {
                for c in named_children(node) {
                    self.expr(c);
                }
                None
            }
        }
    }

    /// `if`/`while` conditions: `let` patterns bind in the current (new) scope.
    fn condition(&mut self, node: Node<'_>) {
        match node.kind_str() {
            "let_condition" => {
                if let Some(v) = node.field("value") {
                    self.expr(v);
                }
                if let Some(p) = node.field("pattern") {
                    self.pattern(p, SymbolKind::Variable, node, None);
                }
            }
            "let_chain" => {
                for c in named_children(node) {
                    self.condition(c);
                }
            }
            _ => {
                self.expr(node);
            }
        }
    }

    /// Identifiers inside a macro call's tokens: `a`, `a.b`, `a::b` and `self.x` chain like
    /// the expressions they usually are.
    fn token_tree(&mut self, node: Node<'_>) {
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        let mut prev_kind = "";
        let mut prev_ref: Option<RefIdx> = None;
        let mut after_self = false;
        for c in children {
            match c.kind_str() {
                "identifier" => {
                    let name = self.src(c);
                    let q = match prev_kind {
                        "." | "::" if after_self && prev_kind == "." => match self.self_ty {
                            Some(SelfTy::Local(d)) => Qualifier::SelfOf(d),
                            _ => Qualifier::Unknown,
                        },
                        "." | "::" => prev_ref.map(Qualifier::Ref).unwrap_or(Qualifier::Unknown),
                        _ => Qualifier::None,
                    };
                    prev_ref = Some(self.push_ref(name.into(), node_range(c), q));
                    after_self = false;
                }
                "self" => {
                    after_self = true;
                    prev_ref = None;
                }
                "token_tree" => {
                    self.token_tree(c);
                    prev_ref = None;
                    after_self = false;
                }
                "." | "::" => {}
                _ => {
                    prev_ref = None;
                    after_self = false;
                }
            }
            prev_kind = c.kind_str();
        }
    }
}

/// The type of a value expression when it is obvious: `T { … }`, `T::new(…)`-style paths are
/// not (their return type is unknown).
fn value_type(text: &str, node: Node<'_>) -> Option<String> {
    match node.kind_str() {
        "struct_expression" => type_path(text, node.field("name")?),
        "reference_expression" | "parenthesized_expression" => {
            value_type(text, named_children(node).last()?)
        }
        _ => None,
    }
}

fn is_item(kind: &str) -> bool {
    matches!(
        kind,
        "function_item"
            | "function_signature_item"
            | "struct_item"
            | "union_item"
            | "enum_item"
            | "trait_item"
            | "type_item"
            | "const_item"
            | "static_item"
            | "macro_definition"
            | "mod_item"
            | "use_declaration"
            | "extern_crate_declaration"
            | "impl_item"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(text: &str) -> FileIndex {
        Rust.index(Language::Rust, "src/lib.rs", text)
    }

    #[test]
    fn crate_names_from_cargo_toml() {
        assert_eq!(
            cargo_crate_name("[package]\nname = \"my-crate\"\n[dependencies]\nname = 1\n"),
            Some("my_crate".to_owned())
        );
        assert_eq!(
            cargo_crate_name("[package]\nname = \"a\"\n[lib]\nname = \"b_lib\"\n"),
            Some("b_lib".to_owned())
        );
        assert_eq!(cargo_crate_name("[workspace]\nmembers = []\n"), None);
    }

    #[test]
    fn raw_identifiers_and_keywords() {
        assert!(Rust.is_identifier("r#type"));
        assert!(Rust.is_identifier("snake_case"));
        assert!(!Rust.is_identifier("r#self"));
        assert!(!Rust.is_identifier("_"));
        assert!(!Rust.is_identifier("a-b"));
        assert!(KEYWORDS.contains(&"fn"));
    }

    #[test]
    fn definitions_match_the_scm_patterns() {
        let text = "pub struct S { pub a: u8 }\nenum E { A, B(u8) }\ntrait T { fn m(&self); }\nimpl S { pub fn new() -> Self { S { a: 1 } } }\nfn f(x: u8) -> u8 { let y = x; y }\nconst C: u8 = 1;\nstatic V: u8 = 2;\ntype A = S;\nmacro_rules! mac { () => {} }\nmod inner { pub fn g() {} }\n";
        let idx = index(text);
        let keys: Vec<&str> = idx.defs.iter().filter_map(|d| d.key.as_deref()).collect();
        assert_eq!(
            keys,
            [
                "S", "S.a", "E", "E.A", "E.B", "T", "T.m", "f", "C", "V", "A", "mac", "inner",
                "S.new", "inner.g"
            ]
        );
        let mut ts = tree_sitter::Parser::new();
        ts.set_language(&tree_sitter_rust::LANGUAGE.into())
            .expect("grammar loads");
        let tree = ts.parse(text, None).expect("parses");
        let query = tree_sitter::Query::new(&tree_sitter_rust::LANGUAGE.into(), DEFINITIONS_QUERY)
            .expect("query compiles");
        let mut cursor = tree_sitter::QueryCursor::new();
        let name_idx = query.capture_index_for_name("name").expect("@name");
        use tree_sitter::StreamingIterator;
        let mut matches = cursor.matches(&query, tree.root_node(), text.as_bytes());
        let mut found = Vec::new();
        while let Some(m) = matches.next() {
            for node in m.nodes_for_capture_index(name_idx) {
                found.push(&text[node.byte_range()]);
            }
        }
        assert!(found.len() >= 15, "{found:?}");
        for name in found {
            assert!(
                idx.defs.iter().any(|d| &*d.name == name),
                "walker missed {name}"
            );
        }
    }

    #[test]
    fn garbage_never_panics_and_counts_errors() {
        for text in [
            "fn",
            "impl {",
            "use ::{",
            "mod a { fn",
            "\u{0}\u{1}",
            "",
            "let x = ;",
        ] {
            let idx = index(text);
            assert!(!idx.scopes.is_empty());
        }
        assert!(index("fn f( {\n").parse_errors > 0);
    }
}

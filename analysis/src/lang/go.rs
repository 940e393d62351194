//! Go: the syntax walk that fills a `FileIndex` (package-level declarations shared by every
//! file of a package directory, methods as `Type.Method` members even when declared in another
//! file, struct fields and embedded types, locals with block, `if`/`for`/`switch` and function
//! literal scopes, variables whose type is known so `x.Method()` resolves exactly) and the
//! import rules (`go.mod` module paths map import paths to project directories; the standard
//! library and third-party modules are external; `package x_test` files form their own package).

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
pub const DEFINITIONS_QUERY: &str = include_str!("go.scm");

/// The Go language module.
pub struct Go;

const KEYWORDS: &[&str] = &[
    "break",
    "case",
    "chan",
    "const",
    "continue",
    "default",
    "defer",
    "else",
    "fallthrough",
    "for",
    "func",
    "go",
    "goto",
    "if",
    "import",
    "interface",
    "map",
    "package",
    "range",
    "return",
    "select",
    "struct",
    "switch",
    "type",
    "var",
];

/// Predeclared identifiers of the universe block.
const BUILTINS: &[&str] = &[
    "any",
    "append",
    "bool",
    "byte",
    "cap",
    "clear",
    "close",
    "comparable",
    "complex",
    "complex128",
    "complex64",
    "copy",
    "delete",
    "error",
    "false",
    "float32",
    "float64",
    "imag",
    "int",
    "int16",
    "int32",
    "int64",
    "int8",
    "iota",
    "len",
    "make",
    "max",
    "min",
    "new",
    "nil",
    "panic",
    "print",
    "println",
    "real",
    "recover",
    "rune",
    "string",
    "true",
    "uint",
    "uint16",
    "uint32",
    "uint64",
    "uint8",
    "uintptr",
];

/// Go import paths may contain `.`, which the resolver reads as a path separator; the module
/// string of an import stores them as this look-alike character instead.
const DOT: char = '\u{2024}';

/// Separates a package directory from the variant of its file set in a `ModuleRef::Dir` name.
const VARIANT: char = '\u{1}';

/// `ModuleRequest::level` of the implicit import of a file's own package.
const OWN_PACKAGE: u32 = 1;
/// … of a `_test.go` file in the package itself (sees the package and its internal tests).
const OWN_TEST_PACKAGE: u32 = 2;
/// … of a `package x_test` file (sees only the other `x_test` files).
const OWN_EXTERNAL_TEST_PACKAGE: u32 = 3;

pub(crate) static GRAMMAR: LazyLock<Grammar> =
    LazyLock::new(|| Grammar::new(tree_sitter_go::LANGUAGE.into()));

/// The package clause of a Go file (`package x` → `x`). Depends on the text, but its value only
/// changes when the clause does, so salsa stops a body edit here.
#[salsa::tracked]
pub fn go_package_name(db: &dyn salsa::Database, file: SourceFile) -> Name {
    package_clause(file.text(db)).unwrap_or_default().into()
}

/// Reads `package name` from the start of a Go file, skipping comments.
pub fn package_clause(text: &str) -> Option<&str> {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.split_once('\n').map(|(_, r)| r).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map(|(_, r)| r).unwrap_or("");
        } else {
            break;
        }
    }
    let r = rest.strip_prefix("package")?;
    if !r.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let r = r.trim_start();
    let end = r
        .find(|c: char| !(c == '_' || c.is_alphanumeric()))
        .unwrap_or(r.len());
    (end > 0).then(|| &r[..end])
}

impl LanguageModule for Go {
    fn index_tree(
        &self,
        language: Language,
        path: &str,
        text: &str,
        tree: &tree_sitter::Tree,
    ) -> FileIndex {
        let _grammar = GRAMMAR.enter();
        let root = tree.root_node();
        let mut walker = Walker::new(text, language);
        walker.index.scopes[0].range = TextRange::new(root.start_byte(), root.end_byte());
        walker.file(root, path);
        let mut index = walker.finish();
        index.parse_errors = count_errors(root);
        index
    }

    fn keywords(&self) -> &'static [&'static str] {
        KEYWORDS
    }

    fn is_builtin(&self, name: &str) -> bool {
        BUILTINS.contains(&name)
    }

    fn doc_syntax(&self) -> DocSyntax {
        DocSyntax {
            placement: "before_item",
            open: "//",
            close: "",
        }
    }

    fn resolve_module(
        &self,
        map: &ModuleMap,
        from_path: &str,
        request: ModuleRequest<'_>,
    ) -> ModuleResolution {
        let here = parent_dir(from_path);
        let variant = match request.level {
            OWN_PACKAGE => Some(""),
            OWN_TEST_PACKAGE => Some("test"),
            OWN_EXTERNAL_TEST_PACKAGE => Some("xtest"),
            _ => None,
        };
        if let Some(variant) = variant {
            let name = if variant.is_empty() {
                here.to_owned()
            } else {
                format!("{here}{VARIANT}{variant}")
            };
            return ModuleResolution::Project(ModuleRef::Dir(name.into()));
        }
        let path: String = request.module.replace(DOT, ".");
        if path.starts_with("./") || path.starts_with("../") {
            return match normalize(&join(here, &path)) {
                Some(dir) if is_package_dir(map, &dir) => {
                    ModuleResolution::Project(ModuleRef::Dir(dir.into()))
                }
                _ => ModuleResolution::Missing,
            };
        }
        // The go.mod whose module path is the longest prefix of the import path.
        let mut best: Option<(usize, String)> = None;
        let mut any_go_mod = false;
        for (config, text) in map.configs() {
            let (dir, base) = config.rsplit_once('/').unwrap_or(("", config));
            if base != "go.mod" {
                continue;
            }
            any_go_mod = true;
            let Some(module) = go_mod_module(text) else {
                continue;
            };
            let rest = if path == module {
                Some("")
            } else {
                path.strip_prefix(module).and_then(|r| r.strip_prefix('/'))
            };
            if let Some(rest) = rest
                && best.as_ref().is_none_or(|(len, _)| module.len() > *len)
            {
                best = Some((module.len(), join(dir, rest)));
            }
        }
        if let Some((_, dir)) = best {
            return if is_package_dir(map, &dir) {
                ModuleResolution::Project(ModuleRef::Dir(dir.into()))
            } else {
                ModuleResolution::Missing
            };
        }
        // GOPATH-style projects without go.mod: the import path is a directory of the project
        // (or of its `src/`).
        if !any_go_mod {
            for dir in [path.clone(), join("src", &path)] {
                if is_package_dir(map, &dir) {
                    return ModuleResolution::Project(ModuleRef::Dir(dir.into()));
                }
            }
        }
        ModuleResolution::External
    }

    fn submodule(&self, _map: &ModuleMap, _module: &ModuleRef, _name: &str) -> Option<ModuleRef> {
        // Go packages are imported by path; `pkg.name` never names a sub-package.
        None
    }

    fn module_files(&self, map: &ModuleMap, module: &ModuleRef) -> Vec<SourceFile> {
        match module {
            ModuleRef::File(f) => vec![*f],
            ModuleRef::Dir(name) => {
                let (dir, variant) = name.split_once(VARIANT).unwrap_or((name, ""));
                go_files(map, dir)
                    .filter(|(path, _)| variant == "test" || !path.ends_with("_test.go"))
                    .map(|(_, f)| f)
                    .collect()
            }
        }
    }

    fn module_files_in(
        &self,
        db: &dyn salsa::Database,
        map: &ModuleMap,
        module: &ModuleRef,
    ) -> Vec<SourceFile> {
        let (dir, variant) = match module {
            ModuleRef::Dir(name) => name.split_once(VARIANT).unwrap_or((name, "")),
            // A file's names are its package's (declared types are looked up this way).
            ModuleRef::File(f) => {
                let Some(path) = map.path_of(*f) else {
                    return vec![*f];
                };
                let variant = if !path.ends_with("_test.go") {
                    ""
                } else if go_package_name(db, *f).ends_with("_test") {
                    "xtest"
                } else {
                    "test"
                };
                (parent_dir(path), variant)
            }
        };
        go_files(map, dir)
            .filter(|(path, f)| {
                if !path.ends_with("_test.go") {
                    return variant != "xtest";
                }
                let external = go_package_name(db, *f).ends_with("_test");
                match variant {
                    "test" => !external,
                    "xtest" => external,
                    _ => false,
                }
            })
            .map(|(_, f)| f)
            .collect()
    }

    fn member_files(&self, map: &ModuleMap, file: SourceFile) -> Vec<SourceFile> {
        let dir = map.path_of(file).map(parent_dir).unwrap_or("");
        go_files(map, dir).map(|(_, f)| f).collect()
    }

    fn glob_exports(&self, _name: &str) -> bool {
        true
    }

    fn module_display(&self, module: &str, _level: u32) -> String {
        module.replace(DOT, ".")
    }

    fn is_public(&self, def: &Def) -> bool {
        def.key.as_deref().is_some_and(|k| {
            k.split('.')
                .all(|seg| seg.chars().next().is_some_and(char::is_uppercase))
        })
    }

    fn rename_refusal(
        &self,
        old: &str,
        new: &str,
        def_path: &str,
        site_paths: &[&str],
    ) -> Option<String> {
        let exported = |s: &str| s.chars().next().is_some_and(char::is_uppercase);
        if !exported(old) || exported(new) {
            return None;
        }
        let dir = parent_dir(def_path);
        let outside = site_paths.iter().find(|p| parent_dir(p) != dir)?;
        Some(format!(
            "renaming `{old}` to `{new}` would unexport it, but it is used from another package \
             ({outside}); keep an upper-case first letter"
        ))
    }
}

/// `.go` files directly in `dir`, with their paths.
fn go_files<'m>(map: &'m ModuleMap, dir: &str) -> impl Iterator<Item = (&'m str, SourceFile)> {
    map.files_in_dir(dir).iter().filter_map(|f| {
        let path = map.path_of(*f)?;
        path.ends_with(".go").then_some((path, *f))
    })
}

fn is_package_dir(map: &ModuleMap, dir: &str) -> bool {
    go_files(map, dir).next().is_some()
}

/// The `module` directive of a go.mod file.
pub fn go_mod_module(text: &str) -> Option<&str> {
    text.lines().find_map(|line| {
        let line = line.split("//").next().unwrap_or("").trim();
        let rest = line.strip_prefix("module")?;
        if !rest.starts_with(|c: char| c.is_whitespace() || c == '"') {
            return None;
        }
        let m = rest.trim().trim_matches('"').trim_matches('`');
        (!m.is_empty()).then_some(m)
    })
}

pub(crate) fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

pub(crate) fn join(dir: &str, rest: &str) -> String {
    if dir.is_empty() {
        rest.to_owned()
    } else if rest.is_empty() {
        dir.to_owned()
    } else {
        format!("{dir}/{rest}")
    }
}

/// Resolves `.` and `..` segments; `None` when the path leaves the project.
fn normalize(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s),
        }
    }
    Some(out.join("/"))
}

pub(crate) fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() && !out.ends_with(['(', '[']) && c != ')' && c != ']' {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// The `//` (or `/* */`) comment lines directly above the line `start` is on, without their
/// markers; `None` when there are none. `markers` are the line-comment openers that count.
pub(crate) fn doc_above(text: &str, start: usize, markers: &[&str]) -> Option<String> {
    let line_start = text.get(..start)?.rfind('\n').map(|p| p + 1).unwrap_or(0);
    let mut lines: Vec<String> = Vec::new();
    let mut end = line_start;
    while end > 0 {
        let prev_end = end - 1; // the '\n' ending the previous line
        let prev_start = text
            .get(..prev_end)?
            .rfind('\n')
            .map(|p| p + 1)
            .unwrap_or(0);
        let line = text.get(prev_start..prev_end)?.trim();
        let Some(body) = markers.iter().find_map(|m| line.strip_prefix(m)) else {
            if lines.is_empty()
                && let Some(inner) = line.strip_suffix("*/")
            {
                // A block comment ending right above.
                let block_start = text.get(..prev_end)?.rfind("/*")?;
                let comment = text.get(block_start + 2..prev_start + inner.len())?;
                let cleaned: Vec<&str> = comment
                    .lines()
                    .map(|l| l.trim().trim_start_matches('*').trim())
                    .collect();
                let joined = cleaned.join("\n").trim().to_owned();
                return (!joined.is_empty()).then_some(joined);
            }
            break;
        };
        lines.push(body.strip_prefix(' ').unwrap_or(body).trim_end().to_owned());
        end = prev_start;
    }
    if lines.is_empty() {
        return None;
    }
    lines.reverse();
    Some(lines.join("\n"))
}

/// The package name an import path binds when not renamed: its last segment, skipping a major
/// version suffix (`/v2`) and the usual `go-` prefix and `-go`/`.go` suffix.
fn package_name_of(path: &str) -> String {
    let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segs.len() > 1
        && segs.last().is_some_and(|s| {
            s.len() > 1 && s.starts_with('v') && s[1..].chars().all(|c| c.is_ascii_digit())
        })
    {
        segs.pop();
    }
    let last = segs.last().copied().unwrap_or(path);
    let last = last.strip_prefix("go-").unwrap_or(last);
    let last = last
        .strip_suffix("-go")
        .or_else(|| last.strip_suffix(".go"))
        .unwrap_or(last);
    last.replace(['-', '.'], "_")
}

/// The named type a type expression denotes, as a dotted name (`T`, `*T`, `pkg.T`, `T[int]`).
fn type_name(text: &str, node: Node<'_>) -> Option<String> {
    match node.kind_str() {
        "type_identifier" | "identifier" => text.get(node.byte_range()).map(str::to_owned),
        "qualified_type" => {
            let pkg = node.field("package")?;
            let name = node.field("name")?;
            Some(format!(
                "{}.{}",
                text.get(pkg.byte_range())?,
                text.get(name.byte_range())?
            ))
        }
        "pointer_type" | "parenthesized_type" => {
            let inner = node.named_child(0)?;
            type_name(text, inner)
        }
        "generic_type" => type_name(text, node.field("type")?),
        _ => None,
    }
}

/// The type of a value expression when it is obvious: `T{}`, `&T{}`, `new(T)`.
fn value_type(text: &str, node: Node<'_>) -> Option<String> {
    match node.kind_str() {
        "composite_literal" => type_name(text, node.field("type")?),
        "unary_expression" => {
            let op = node.field("operator")?;
            if text.get(op.byte_range())? != "&" {
                return None;
            }
            value_type(text, node.field("operand")?)
        }
        "parenthesized_expression" => value_type(text, node.named_child(0)?),
        "call_expression" => {
            let f = node.field("function")?;
            if text.get(f.byte_range())? != "new" {
                return None;
            }
            let args = node.field("arguments")?;
            type_name(text, args.named_child(0)?)
        }
        _ => None,
    }
}

struct Walker<'a> {
    text: &'a str,
    index: FileIndex,
    scope: ScopeIdx,
    /// Top-level type declarations of this file: name → (definition, member scope).
    types: HashMap<Name, (DefIdx, ScopeIdx)>,
    /// Member scopes for receiver types declared in another file of the package.
    foreign: HashMap<Name, ScopeIdx>,
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
            types: HashMap::new(),
            foreign: HashMap::new(),
        }
    }

    fn finish(mut self) -> FileIndex {
        self.index.index_keys();
        self.index
    }

    fn new_scope(&mut self, kind: ScopeKind, node: Node<'_>, owner: Option<DefIdx>) -> ScopeIdx {
        self.new_scope_in(kind, node_range(node), Some(self.scope), owner)
    }

    fn new_scope_in(
        &mut self,
        kind: ScopeKind,
        range: TextRange,
        parent: Option<ScopeIdx>,
        owner: Option<DefIdx>,
    ) -> ScopeIdx {
        let idx = self.index.scopes.len() as ScopeIdx;
        self.index
            .scopes
            .push(Scope::new(kind, range, parent, owner));
        idx
    }

    fn push_ref(
        &mut self,
        name: Name,
        range: TextRange,
        qualifier: Qualifier,
        write: bool,
    ) -> RefIdx {
        let idx = self.index.refs.len() as RefIdx;
        self.index.refs.push(Ref {
            name,
            range,
            scope: self.scope,
            qualifier,
            write,
        });
        idx
    }

    /// Binds in `target`: a new definition the first time, a write reference afterwards.
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
            self.push_ref(spec.name, spec.name_range, Qualifier::None, true);
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

    fn bind(&mut self, spec: Binding) -> Option<DefIdx> {
        self.bind_in(self.scope, spec)
    }

    /// Doc comment and insertion point of a declaration starting at `node`.
    fn doc(&self, node: Node<'_>) -> (Option<String>, Option<u32>) {
        let start = node.start_byte();
        (
            doc_above(self.text, start, &["//"]),
            u32::try_from(start).ok(),
        )
    }

    // ---- the file ---------------------------------------------------------------------------

    fn file(&mut self, root: Node<'_>, path: &str) {
        let children: Vec<Node<'_>> = named_children(root).collect();
        let package = children
            .iter()
            .find(|c| c.kind_str() == "package_clause")
            .and_then(|c| c.named_child(0))
            .map(|n| self.src(n))
            .unwrap_or("");
        let level = if !path.ends_with("_test.go") {
            OWN_PACKAGE
        } else if package.ends_with("_test") {
            OWN_EXTERNAL_TEST_PACKAGE
        } else {
            OWN_TEST_PACKAGE
        };
        // The rest of the package is visible as if glob-imported.
        // It lives in a scope enclosing the file scope, so that it is searched after the file's
        // own names but is not part of the file's interface (a package does not re-export
        // itself, and following it from every file would loop through the package).
        let own = self.push_import("".into(), level, ImportKind::Star, root);
        let package_scope = self.new_scope_in(
            ScopeKind::Module,
            TextRange {
                start: u32::MAX,
                end: u32::MAX,
            },
            None,
            None,
        );
        if let Some(s) = self.index.scopes.get_mut(package_scope as usize) {
            s.stars.push(own);
        }
        self.index.scopes[0].parent = Some(package_scope);

        // Pass 1: imports and types (so that methods can find their receiver's type).
        for c in &children {
            match c.kind_str() {
                "import_declaration" => self.import_declaration(*c),
                "type_declaration" => {
                    for spec in named_children(*c) {
                        if matches!(spec.kind_str(), "type_spec" | "type_alias") {
                            let full = if c.named_child_count() == 1 { *c } else { spec };
                            self.type_spec_def(spec, full);
                        }
                    }
                }
                _ => {}
            }
        }
        // Pass 2: functions, methods, variables and constants.
        let mut bodies: Vec<(Node<'_>, Option<DefIdx>)> = Vec::new();
        for c in &children {
            match c.kind_str() {
                "function_declaration" | "method_declaration" => {
                    let def = self.function_def(*c);
                    bodies.push((*c, def));
                }
                "var_declaration" | "const_declaration" => {
                    self.var_declaration(*c, true);
                }
                _ => {}
            }
        }
        // Pass 3: references in type definitions and function bodies.
        for c in &children {
            if c.kind_str() == "type_declaration" {
                for spec in named_children(*c) {
                    if matches!(spec.kind_str(), "type_spec" | "type_alias") {
                        self.type_spec_refs(spec);
                    }
                }
            }
        }
        for (node, def) in bodies {
            self.function_body(node, def);
        }
        for c in &children {
            match c.kind_str() {
                "package_clause"
                | "import_declaration"
                | "type_declaration"
                | "function_declaration"
                | "method_declaration"
                | "var_declaration"
                | "const_declaration"
                | "comment" => {}
                _ => self.stmt(*c),
            }
        }
    }

    fn push_import(
        &mut self,
        module: Name,
        level: u32,
        kind: ImportKind,
        node: Node<'_>,
    ) -> ImportIdx {
        let idx = self.index.imports.len() as ImportIdx;
        self.index.imports.push(Import {
            module,
            level,
            kind,
            scope: self.scope,
            range: node_range(node),
        });
        idx
    }

    fn import_declaration(&mut self, node: Node<'_>) {
        let mut specs = Vec::new();
        for c in named_children(node) {
            match c.kind_str() {
                "import_spec" => specs.push(c),
                "import_spec_list" => {
                    specs.extend(named_children(c).filter(|s| s.kind_str() == "import_spec"))
                }
                _ => {}
            }
        }
        for spec in specs {
            let Some(path_node) = spec.field("path") else {
                continue;
            };
            let raw = self.src(path_node);
            let path = raw.trim_matches(|c| c == '"' || c == '`');
            if path.is_empty() {
                continue;
            }
            let module: Name = path.replace('.', &DOT.to_string()).into();
            // The path's text without quotes, for the binding's position.
            let inner = TextRange::new(
                path_node.start_byte() + 1,
                path_node
                    .end_byte()
                    .saturating_sub(1)
                    .max(path_node.start_byte() + 1),
            );
            let signature = Some(collapse_ws(self.src(spec)));
            match spec.field("name") {
                Some(n) if n.kind_str() == "dot" => {
                    let imp = self.push_import(module, 0, ImportKind::Star, path_node);
                    self.index.scopes[0].stars.push(imp);
                }
                Some(n) if n.kind_str() == "blank_identifier" => {
                    self.push_import(
                        module,
                        0,
                        ImportKind::Module {
                            alias: Some("_".into()),
                        },
                        path_node,
                    );
                }
                Some(alias) => {
                    let alias_name = self.name(alias);
                    let imp = self.push_import(
                        module,
                        0,
                        ImportKind::Module {
                            alias: Some(alias_name.clone()),
                        },
                        path_node,
                    );
                    let mut b = Binding::new(
                        alias_name,
                        SymbolKind::Import,
                        node_range(alias),
                        node_range(spec),
                    );
                    b.import = Some(imp);
                    b.signature = signature;
                    self.bind_in(0, b);
                }
                None => {
                    let imp =
                        self.push_import(module, 0, ImportKind::Module { alias: None }, path_node);
                    // The binding sits on the path's last segment.
                    let last = path.rsplit('/').next().unwrap_or(path);
                    let start = inner.start as usize + path.len() - last.len();
                    let name_range = TextRange::new(start, start + last.len());
                    let mut b = Binding::new(
                        package_name_of(path).into(),
                        SymbolKind::Import,
                        name_range,
                        node_range(spec),
                    );
                    b.import = Some(imp);
                    b.signature = signature;
                    self.bind_in(0, b);
                }
            }
        }
    }

    // ---- declarations -----------------------------------------------------------------------

    fn type_spec_def(&mut self, spec: Node<'_>, full: Node<'_>) {
        let Some(name_node) = spec.field("name") else {
            return;
        };
        let ty = spec.field("type");
        let kind = match (spec.kind_str(), ty.map(|t| t.kind_str())) {
            ("type_alias", _) => SymbolKind::TypeAlias,
            (_, Some("struct_type")) => SymbolKind::Struct,
            (_, Some("interface_type")) => SymbolKind::Interface,
            _ => SymbolKind::Class,
        };
        let name = self.name(name_node);
        let sig_text = match ty.map(|t| t.kind_str()) {
            Some("struct_type") => format!("type {name} struct"),
            Some("interface_type") => format!("type {name} interface"),
            _ => format!(
                "type {}",
                truncate(
                    &collapse_ws(self.src(spec).lines().next().unwrap_or("")),
                    120
                )
            ),
        };
        let (doc, doc_insert) = self.doc(full);
        let mut b = Binding::new(name.clone(), kind, node_range(name_node), node_range(full));
        b.key = Some(name.clone());
        b.signature = Some(sig_text);
        b.doc = doc;
        b.doc_insert = doc_insert;
        if kind == SymbolKind::TypeAlias
            && let Some(t) = ty.and_then(|t| type_name(self.text, t))
        {
            b.bases.push(t.into());
        }
        let Some(def) = self.bind_in(0, b) else {
            return;
        };
        let members = self.new_scope_in(ScopeKind::Class, node_range(spec), Some(0), Some(def));
        if let Some(d) = self.index.defs.get_mut(def as usize) {
            d.body = Some(members);
        }
        self.types.insert(name.clone(), (def, members));
        let Some(ty) = ty else { return };
        match ty.kind_str() {
            "struct_type" => {
                let Some(list) = named_children(ty)
                    .into_iter()
                    .find(|c| c.kind_str() == "field_declaration_list")
                else {
                    return;
                };
                for field in named_children(list) {
                    if field.kind_str() != "field_declaration" {
                        continue;
                    }
                    let field_type = field.field("type");
                    let mut cursor = field.walk();
                    let names: Vec<Node<'_>> =
                        field.children_by_field_name("name", &mut cursor).collect();
                    if names.is_empty() {
                        // An embedded type: its fields and methods are promoted.
                        if let Some(t) = field_type.and_then(|t| type_name(self.text, t))
                            && let Some(d) = self.index.defs.get_mut(def as usize)
                        {
                            d.bases.push(t.into());
                        }
                        continue;
                    }
                    let type_text = field_type.map(|t| collapse_ws(self.src(t)));
                    for n in names {
                        let fname = self.name(n);
                        let (doc, doc_insert) = self.doc(field);
                        let mut b = Binding::new(
                            fname.clone(),
                            SymbolKind::Field,
                            node_range(n),
                            node_range(field),
                        );
                        b.key = Some(format!("{name}.{fname}").into());
                        b.parent = Some(def);
                        b.doc = doc;
                        b.doc_insert = doc_insert;
                        b.signature = Some(match &type_text {
                            Some(t) => format!("{fname} {t}"),
                            None => fname.to_string(),
                        });
                        if let Some(t) = field_type.and_then(|t| type_name(self.text, t)) {
                            b.bases.push(t.into());
                        }
                        self.bind_in(members, b);
                    }
                }
            }
            "interface_type" => {
                for elem in named_children(ty) {
                    match elem.kind_str() {
                        "method_elem" => {
                            let Some(n) = elem.field("name") else {
                                continue;
                            };
                            let mname = self.name(n);
                            let (doc, doc_insert) = self.doc(elem);
                            let mut b = Binding::new(
                                mname.clone(),
                                SymbolKind::Method,
                                node_range(n),
                                node_range(elem),
                            );
                            b.key = Some(format!("{name}.{mname}").into());
                            b.parent = Some(def);
                            b.doc = doc;
                            b.doc_insert = doc_insert;
                            b.signature = Some(collapse_ws(self.src(elem)));
                            self.bind_in(members, b);
                        }
                        "type_elem" => {
                            // An embedded interface.
                            if let Some(t) =
                                elem.named_child(0).and_then(|t| type_name(self.text, t))
                                && elem.named_child_count() == 1
                                && let Some(d) = self.index.defs.get_mut(def as usize)
                            {
                                d.bases.push(t.into());
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// References inside a type definition (field types, embedded types, method signatures),
    /// looked up in a scope holding the type parameters.
    fn type_spec_refs(&mut self, spec: Node<'_>) {
        let saved = self.scope;
        let tp_scope = self.new_scope_in(ScopeKind::Block, node_range(spec), Some(0), None);
        self.scope = tp_scope;
        if let Some(tp) = spec.field("type_parameters") {
            self.type_parameters(tp);
        }
        if let Some(ty) = spec.field("type") {
            match ty.kind_str() {
                "struct_type" => {
                    for list in named_children(ty) {
                        for field in named_children(list) {
                            if let Some(t) = field.field("type") {
                                self.type_expr(t);
                            }
                        }
                    }
                }
                "interface_type" => {
                    for elem in named_children(ty) {
                        match elem.kind_str() {
                            "method_elem" => {
                                let ms = self.new_scope(ScopeKind::Function, elem, None);
                                let inner_saved = self.scope;
                                self.scope = ms;
                                for field in ["parameters", "result"] {
                                    if let Some(p) = elem.field(field) {
                                        self.parameters(p, false);
                                    }
                                }
                                self.scope = inner_saved;
                            }
                            _ => self.type_expr(elem),
                        }
                    }
                }
                _ => self.type_expr(ty),
            }
        }
        self.scope = saved;
    }

    fn type_parameters(&mut self, tp: Node<'_>) {
        for decl in named_children(tp) {
            if let Some(t) = decl.field("type") {
                self.type_expr(t);
            }
            let mut cursor = decl.walk();
            for n in decl.children_by_field_name("name", &mut cursor) {
                let mut b = Binding::new(
                    self.name(n),
                    SymbolKind::Parameter,
                    node_range(n),
                    node_range(decl),
                );
                b.signature = Some(collapse_ws(self.src(decl)));
                self.bind(b);
            }
        }
    }

    /// The definition of a function or method (its body is walked later).
    fn function_def(&mut self, node: Node<'_>) -> Option<DefIdx> {
        let name_node = node.field("name")?;
        let name = self.name(name_node);
        let sig_end = node
            .field("result")
            .or(node.field("parameters"))
            .map(|n| n.end_byte())
            .unwrap_or(name_node.end_byte());
        let signature = collapse_ws(self.text.get(node.start_byte()..sig_end).unwrap_or(""));
        let (doc, doc_insert) = self.doc(node);
        if node.kind_str() == "function_declaration" {
            let mut b = Binding::new(
                name.clone(),
                SymbolKind::Function,
                node_range(name_node),
                node_range(node),
            );
            b.key = Some(name);
            b.signature = Some(signature);
            b.doc = doc;
            b.doc_insert = doc_insert;
            return self.bind_in(0, b);
        }
        let receiver_type = node
            .field("receiver")
            .and_then(|r| {
                named_children(r)
                    .into_iter()
                    .find(|c| c.kind_str() == "parameter_declaration")
            })
            .and_then(|p| p.field("type"))
            .and_then(|t| type_name(self.text, t))?;
        let receiver: Name = receiver_type.into();
        let (parent, scope) = match self.types.get(&receiver) {
            Some(&(def, members)) => (Some(def), members),
            None => {
                let scope = match self.foreign.get(&receiver) {
                    Some(&s) => s,
                    None => {
                        let s = self.new_scope_in(
                            ScopeKind::Class,
                            TextRange::default(),
                            Some(0),
                            None,
                        );
                        self.foreign.insert(receiver.clone(), s);
                        s
                    }
                };
                (None, scope)
            }
        };
        let mut b = Binding::new(
            name.clone(),
            SymbolKind::Method,
            node_range(name_node),
            node_range(node),
        );
        b.key = Some(format!("{receiver}.{name}").into());
        b.parent = parent;
        b.signature = Some(signature);
        b.doc = doc;
        b.doc_insert = doc_insert;
        self.bind_in(scope, b)
    }

    /// Parameters and body of a function or method.
    fn function_body(&mut self, node: Node<'_>, def: Option<DefIdx>) {
        let saved = self.scope;
        self.scope = 0;
        let scope = self.new_scope(ScopeKind::Function, node, def);
        if let Some(d) = def
            && let Some(dd) = self.index.defs.get_mut(d as usize)
            && dd.body.is_none()
        {
            dd.body = Some(scope);
        }
        self.scope = scope;
        if let Some(r) = node.field("receiver") {
            // Type parameters of a generic receiver (`func (l *List[T]) …`).
            for p in named_children(r) {
                if let Some(t) = p.field("type") {
                    let generic = if t.kind_str() == "pointer_type" {
                        t.named_child(0)
                    } else {
                        Some(t)
                    };
                    if let Some(g) = generic.filter(|g| g.kind_str() == "generic_type")
                        && let Some(args) = g.field("type_arguments")
                    {
                        for a in named_children(args) {
                            let id = if a.kind_str() == "type_elem" {
                                a.named_child(0)
                            } else {
                                Some(a)
                            };
                            if let Some(id) = id.filter(|i| i.kind_str() == "type_identifier") {
                                self.bind(Binding::new(
                                    self.name(id),
                                    SymbolKind::Parameter,
                                    node_range(id),
                                    node_range(id),
                                ));
                            }
                        }
                    }
                }
            }
            self.parameters(r, true);
        }
        if let Some(tp) = node.field("type_parameters") {
            self.type_parameters(tp);
        }
        for field in ["parameters", "result"] {
            if let Some(p) = node.field(field) {
                if p.kind_str() == "parameter_list" {
                    self.parameters(p, true);
                } else {
                    self.type_expr(p);
                }
            }
        }
        if let Some(body) = node.field("body") {
            // Parameters and the body's top level share one scope.
            for c in named_children(body) {
                self.stmt(c);
            }
        }
        self.scope = saved;
    }

    /// A parameter list: binds the names (when `bind`) and records type references.
    fn parameters(&mut self, list: Node<'_>, bind: bool) {
        if list.kind_str() != "parameter_list" {
            self.type_expr(list);
            return;
        }
        for p in named_children(list) {
            if !matches!(
                p.kind_str(),
                "parameter_declaration" | "variadic_parameter_declaration"
            ) {
                continue;
            }
            let ty = p.field("type");
            if let Some(t) = ty {
                self.type_expr(t);
            }
            if !bind {
                continue;
            }
            let base = if p.kind_str() == "parameter_declaration" {
                ty.and_then(|t| type_name(self.text, t))
            } else {
                None
            };
            let mut cursor = p.walk();
            for n in p.children_by_field_name("name", &mut cursor) {
                let mut b = Binding::new(
                    self.name(n),
                    SymbolKind::Parameter,
                    node_range(n),
                    node_range(p),
                );
                b.signature = Some(collapse_ws(self.src(p)));
                if let Some(t) = &base {
                    b.bases.push(t.as_str().into());
                }
                self.bind(b);
            }
        }
    }

    /// `var`/`const` declarations (package level when `top`).
    fn var_declaration(&mut self, node: Node<'_>, top: bool) {
        let mut specs = Vec::new();
        for c in named_children(node) {
            match c.kind_str() {
                "var_spec" | "const_spec" => specs.push(c),
                "var_spec_list" => specs.extend(named_children(c)),
                _ => {}
            }
        }
        let is_const = node.kind_str() == "const_declaration";
        let single = specs.len() == 1;
        for spec in specs {
            if !matches!(spec.kind_str(), "var_spec" | "const_spec") {
                continue;
            }
            let ty = spec.field("type");
            let values: Vec<Node<'_>> = spec
                .field("value")
                .map(|v| named_children(v).collect())
                .unwrap_or_default();
            if !top {
                // Values and types are evaluated before the names come into scope.
                if let Some(t) = ty {
                    self.type_expr(t);
                }
                for v in &values {
                    self.expr(*v);
                }
            }
            let mut cursor = spec.walk();
            let names: Vec<Node<'_>> = spec.children_by_field_name("name", &mut cursor).collect();
            let full = if single { node } else { spec };
            let declared = ty.and_then(|t| type_name(self.text, t));
            for (i, n) in names.iter().enumerate() {
                let name = self.name(*n);
                let mut b = Binding::new(
                    name.clone(),
                    if is_const {
                        SymbolKind::Constant
                    } else {
                        SymbolKind::Variable
                    },
                    node_range(*n),
                    node_range(full),
                );
                b.signature = Some(truncate(
                    &collapse_ws(self.src(spec).lines().next().unwrap_or("")),
                    120,
                ));
                let ty_name = declared.clone().or_else(|| {
                    (values.len() == names.len())
                        .then(|| values.get(i).and_then(|v| value_type(self.text, *v)))
                        .flatten()
                });
                if let Some(t) = ty_name {
                    b.bases.push(t.into());
                }
                if top {
                    let (doc, doc_insert) = self.doc(full);
                    b.doc = doc;
                    b.doc_insert = doc_insert;
                    b.key = Some(name);
                    self.bind_in(0, b);
                } else {
                    self.bind(b);
                }
            }
            if top {
                // Package-level values may refer to anything in the package.
                if let Some(t) = ty {
                    self.type_expr(t);
                }
                for v in &values {
                    self.expr(*v);
                }
            }
        }
    }

    // ---- statements -------------------------------------------------------------------------

    fn block(&mut self, node: Node<'_>) {
        let scope = self.new_scope(ScopeKind::Block, node, None);
        let saved = self.scope;
        self.scope = scope;
        for c in named_children(node) {
            self.stmt(c);
        }
        self.scope = saved;
    }

    /// Runs `f` in a new block scope spanning `node`.
    fn scoped(&mut self, node: Node<'_>, f: impl FnOnce(&mut Self)) {
        let scope = self.new_scope(ScopeKind::Block, node, None);
        let saved = self.scope;
        self.scope = scope;
        f(self);
        self.scope = saved;
    }

    fn stmt(&mut self, node: Node<'_>) {
        match node.kind_str() {
            "block" => self.block(node),
            "statement_list" => {
                for c in named_children(node) {
                    self.stmt(c);
                }
            }
            "comment" => {}
            "short_var_declaration" => self.short_var(node),
            "var_declaration" | "const_declaration" => self.var_declaration(node, false),
            "type_declaration" => {
                for spec in named_children(node) {
                    if let Some(n) = spec.field("name") {
                        let kind = match spec.field("type").map(|t| t.kind_str()) {
                            Some("struct_type") => SymbolKind::Struct,
                            Some("interface_type") => SymbolKind::Interface,
                            _ => SymbolKind::TypeAlias,
                        };
                        let mut b =
                            Binding::new(self.name(n), kind, node_range(n), node_range(spec));
                        b.signature = Some(truncate(
                            &collapse_ws(self.src(spec).lines().next().unwrap_or("")),
                            120,
                        ));
                        self.bind(b);
                    }
                    if let Some(t) = spec.field("type") {
                        self.type_expr(t);
                    }
                }
            }
            "assignment_statement" => {
                if let Some(r) = node.field("right") {
                    self.expr(r);
                }
                if let Some(l) = node.field("left") {
                    let op = node.field("operator").map(|o| self.src(o)).unwrap_or("=");
                    for target in named_children(l) {
                        if target.kind_str() == "identifier" {
                            self.push_ref(
                                self.name(target),
                                node_range(target),
                                Qualifier::None,
                                op == "=",
                            );
                        } else {
                            self.expr(target);
                        }
                    }
                }
            }
            "if_statement" => self.scoped(node, |w| {
                if let Some(i) = node.field("initializer") {
                    w.stmt(i);
                }
                if let Some(c) = node.field("condition") {
                    w.expr(c);
                }
                if let Some(b) = node.field("consequence") {
                    w.block(b);
                }
                if let Some(a) = node.field("alternative") {
                    w.stmt(a);
                }
            }),
            "for_statement" => self.scoped(node, |w| {
                for c in named_children(node) {
                    match c.kind_str() {
                        "for_clause" => {
                            if let Some(i) = c.field("initializer") {
                                w.stmt(i);
                            }
                            if let Some(cond) = c.field("condition") {
                                w.expr(cond);
                            }
                            if let Some(u) = c.field("update") {
                                w.stmt(u);
                            }
                        }
                        "range_clause" => {
                            if let Some(r) = c.field("right") {
                                w.expr(r);
                            }
                            if let Some(l) = c.field("left") {
                                let defines = (0..c.child_count())
                                    .any(|i| c.child(i).is_some_and(|t| t.kind_str() == ":="));
                                w.targets(l, c, defines, &[]);
                            }
                        }
                        "block" => w.block(c),
                        _ => {
                            w.expr(c);
                        }
                    }
                }
            }),
            "expression_switch_statement" | "type_switch_statement" | "select_statement" => {
                self.scoped(node, |w| w.switch(node))
            }
            "labeled_statement" => {
                for c in named_children(node) {
                    if c.kind_str() != "label_name" {
                        self.stmt(c);
                    }
                }
            }
            "break_statement"
            | "continue_statement"
            | "goto_statement"
            | "fallthrough_statement"
            | "empty_statement" => {}
            "expression_statement"
            | "return_statement"
            | "go_statement"
            | "defer_statement"
            | "send_statement"
            | "inc_statement"
            | "dec_statement"
            | "expression_list" => {
                for c in named_children(node) {
                    self.expr(c);
                }
            }
            "function_declaration" | "method_declaration" => {
                // Only at top level in valid code; walk defensively.
                self.function_body(node, None);
            }
            _ => {
                self.expr(node);
            }
        }
    }

    fn switch(&mut self, node: Node<'_>) {
        if let Some(i) = node.field("initializer") {
            self.stmt(i);
        }
        if let Some(v) = node.field("value") {
            self.expr(v);
        }
        let alias = node.field("alias");
        for case in named_children(node) {
            if !matches!(
                case.kind_str(),
                "expression_case" | "type_case" | "default_case" | "communication_case"
            ) {
                continue;
            }
            self.scoped(case, |w| {
                if let Some(v) = case.field("value") {
                    w.expr(v);
                }
                if case.kind_str() == "type_case" {
                    let mut cursor = case.walk();
                    let types: Vec<Node<'_>> =
                        case.children_by_field_name("type", &mut cursor).collect();
                    for t in &types {
                        w.type_expr(*t);
                    }
                    if let Some(a) = alias {
                        // `switch v := x.(type)`: `v` is bound anew in every case.
                        let ty = if types.len() == 1 {
                            type_name(w.text, types[0])
                        } else {
                            None
                        };
                        for id in named_children(a) {
                            if id.kind_str() == "identifier" {
                                let mut b = Binding::new(
                                    w.name(id),
                                    SymbolKind::Variable,
                                    node_range(id),
                                    node_range(node),
                                );
                                b.bases.extend(ty.clone().map(Name::from));
                                // Only the first case holds the definition; later cases
                                // refer to it so that a rename edits the one `v`.
                                let switch_scope = w.index.scope(w.scope).and_then(|s| s.parent);
                                if let Some(s) = switch_scope {
                                    w.bind_in(s, b);
                                }
                            }
                        }
                    }
                }
                if let Some(comm) = case.field("communication") {
                    if comm.kind_str() == "receive_statement" {
                        if let Some(r) = comm.field("right") {
                            w.expr(r);
                        }
                        if let Some(l) = comm.field("left") {
                            let defines = (0..comm.child_count())
                                .any(|i| comm.child(i).is_some_and(|t| t.kind_str() == ":="));
                            w.targets(l, comm, defines, &[]);
                        }
                    } else {
                        w.stmt(comm);
                    }
                }
                for c in named_children(case) {
                    if (c.kind_str() == "statement_list" || c.kind_str().ends_with("_statement"))
                        && Some(c) != case.field("communication")
                    {
                        w.stmt(c);
                    }
                }
            });
        }
    }

    fn short_var(&mut self, node: Node<'_>) {
        let values: Vec<Node<'_>> = node
            .field("right")
            .map(|v| named_children(v).collect())
            .unwrap_or_default();
        for v in &values {
            self.expr(*v);
        }
        if let Some(l) = node.field("left") {
            self.targets(l, node, true, &values);
        }
    }

    /// Left-hand sides of `:=` (`defines`) or `=`.
    fn targets(&mut self, list: Node<'_>, stmt: Node<'_>, defines: bool, values: &[Node<'_>]) {
        let targets = if list.kind_str() == "expression_list" {
            named_children(list).collect()
        } else {
            vec![list]
        };
        let count = targets.len();
        for (i, t) in targets.into_iter().enumerate() {
            if t.kind_str() != "identifier" || !defines {
                if t.kind_str() == "identifier" {
                    self.push_ref(self.name(t), node_range(t), Qualifier::None, true);
                } else {
                    self.expr(t);
                }
                continue;
            }
            let mut b = Binding::new(
                self.name(t),
                SymbolKind::Variable,
                node_range(t),
                node_range(stmt),
            );
            b.signature = Some(truncate(
                &collapse_ws(self.src(stmt).lines().next().unwrap_or("")),
                120,
            ));
            if values.len() == count
                && let Some(ty) = values.get(i).and_then(|v| value_type(self.text, *v))
            {
                b.bases.push(ty.into());
            }
            self.bind(b);
        }
    }

    // ---- expressions ------------------------------------------------------------------------

    /// References in a type expression.
    fn type_expr(&mut self, node: Node<'_>) {
        match node.kind_str() {
            "type_identifier" => {
                self.push_ref(self.name(node), node_range(node), Qualifier::None, false);
            }
            "qualified_type" => {
                self.qualified_type(node);
            }
            "field_identifier" | "comment" => {}
            "struct_type" => {
                for list in named_children(node) {
                    for field in named_children(list) {
                        if let Some(t) = field.field("type") {
                            self.type_expr(t);
                        }
                    }
                }
            }
            "function_type" => {
                for field in ["parameters", "result"] {
                    if let Some(p) = node.field(field) {
                        self.parameters(p, false);
                    }
                }
            }
            "interface_type" => {
                for elem in named_children(node) {
                    if elem.kind_str() == "method_elem" {
                        for field in ["parameters", "result"] {
                            if let Some(p) = elem.field(field) {
                                self.parameters(p, false);
                            }
                        }
                    } else {
                        self.type_expr(elem);
                    }
                }
            }
            _ => {
                for c in named_children(node) {
                    if c.kind_str() == "identifier" {
                        // Array lengths and the like.
                        self.push_ref(self.name(c), node_range(c), Qualifier::None, false);
                    } else {
                        self.type_expr(c);
                    }
                }
            }
        }
    }

    fn qualified_type(&mut self, node: Node<'_>) -> Option<RefIdx> {
        let pkg = node.field("package")?;
        let base = self.push_ref(self.name(pkg), node_range(pkg), Qualifier::None, false);
        let name = node.field("name")?;
        Some(self.push_ref(
            self.name(name),
            node_range(name),
            Qualifier::Ref(base),
            false,
        ))
    }

    /// Records the references in an expression; returns the reference the expression *is*
    /// (for `a`, `a.b`, `pkg.T`), so that selectors can chain.
    fn expr(&mut self, node: Node<'_>) -> Option<RefIdx> {
        match node.kind_str() {
            "identifier" | "type_identifier" => {
                Some(self.push_ref(self.name(node), node_range(node), Qualifier::None, false))
            }
            "qualified_type" => self.qualified_type(node),
            "field_identifier"
            | "package_identifier"
            | "label_name"
            | "comment"
            | "interpreted_string_literal"
            | "raw_string_literal"
            | "int_literal"
            | "float_literal"
            | "imaginary_literal"
            | "rune_literal"
            | "true"
            | "false"
            | "nil"
            | "iota"
            | "blank_identifier" => None,
            "selector_expression" => {
                let operand = node.field("operand");
                let field = node.field("field")?;
                let q = match operand.and_then(|o| self.expr(o)) {
                    Some(b) => Qualifier::Ref(b),
                    None => Qualifier::Unknown,
                };
                Some(self.push_ref(self.name(field), node_range(field), q, false))
            }
            "parenthesized_expression" => {
                let inner = node.named_child(0)?;
                self.expr(inner)
            }
            "unary_expression" => {
                // `&x` and `*x` denote x for member lookups.
                let operand = node.field("operand")?;
                self.expr(operand)
            }
            "composite_literal" => {
                let ty = node.field("type");
                let ty_ref = ty.and_then(|t| match t.kind_str() {
                    "type_identifier" | "qualified_type" => self.expr(t),
                    "generic_type" => {
                        if let Some(args) = t.field("type_arguments") {
                            self.type_expr(args);
                        }
                        t.field("type").and_then(|inner| self.expr(inner))
                    }
                    _ => {
                        self.type_expr(t);
                        None
                    }
                });
                let is_struct_like = ty.is_some_and(|t| {
                    matches!(
                        t.kind_str(),
                        "type_identifier" | "qualified_type" | "generic_type"
                    )
                });
                if let Some(body) = node.field("body") {
                    self.literal_value(
                        body,
                        if is_struct_like { ty_ref } else { None },
                        is_struct_like,
                    );
                }
                None
            }
            "func_literal" => {
                let scope = self.new_scope(ScopeKind::Lambda, node, None);
                let saved = self.scope;
                self.scope = scope;
                for field in ["parameters", "result"] {
                    if let Some(p) = node.field(field) {
                        if p.kind_str() == "parameter_list" {
                            self.parameters(p, true);
                        } else {
                            self.type_expr(p);
                        }
                    }
                }
                if let Some(body) = node.field("body") {
                    for c in named_children(body) {
                        self.stmt(c);
                    }
                }
                self.scope = saved;
                None
            }
            "call_expression" => {
                if let Some(f) = node.field("function") {
                    self.expr(f);
                }
                if let Some(t) = node.field("type_arguments") {
                    self.type_expr(t);
                }
                if let Some(args) = node.field("arguments") {
                    for a in named_children(args) {
                        if a.kind_str().ends_with("_type") && a.kind_str() != "type_identifier" {
                            self.type_expr(a);
                        } else {
                            self.expr(a);
                        }
                    }
                }
                None
            }
            "type_assertion_expression" | "type_conversion_expression" => {
                for c in named_children(node) {
                    if c.kind_str().ends_with("_type") && c.kind_str() != "type_identifier" {
                        self.type_expr(c);
                    } else {
                        self.expr(c);
                    }
                }
                None
            }
            k if k.ends_with("_type") || k == "type_arguments" || k == "type_elem" => {
                self.type_expr(node);
                None
            }
            k if k.ends_with("_statement")
                || k == "block"
                || k == "short_var_declaration"
                || k == "var_declaration"
                || k == "const_declaration" =>
            {
                self.stmt(node);
                None
            }
            _ => {
                for c in named_children(node) {
                    self.expr(c);
                }
                None
            }
        }
    }

    /// `{Key: value, …}` of a composite literal: keys of a struct literal are its fields.
    fn literal_value(&mut self, body: Node<'_>, ty_ref: Option<RefIdx>, struct_like: bool) {
        for el in named_children(body) {
            match el.kind_str() {
                "keyed_element" => {
                    let key = el.field("key");
                    let value = el.field("value");
                    if let Some(k) = key {
                        let ident = k.named_child(0).filter(|i| i.kind_str() == "identifier");
                        match ident {
                            Some(id) if struct_like => {
                                let q = ty_ref.map(Qualifier::Ref).unwrap_or(Qualifier::Unknown);
                                self.push_ref(self.name(id), node_range(id), q, false);
                            }
                            _ => self.literal_element(k),
                        }
                    }
                    if let Some(v) = value {
                        self.literal_element(v);
                    }
                }
                "literal_element" => self.literal_element(el),
                "literal_value" => self.literal_value(el, None, false),
                _ => {
                    self.expr(el);
                }
            }
        }
    }

    fn literal_element(&mut self, el: Node<'_>) {
        for c in named_children(el) {
            if c.kind_str() == "literal_value" {
                self.literal_value(c, None, false);
            } else {
                self.expr(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(text: &str) -> FileIndex {
        Go.index(Language::Go, "p/t.go", text)
    }

    #[test]
    fn package_clause_skips_comments() {
        assert_eq!(
            package_clause("// Copyright\n/* x */\npackage foo_test // c\n"),
            Some("foo_test")
        );
        assert_eq!(package_clause("packagefoo"), None);
        assert_eq!(
            go_mod_module("// c\nmodule \"example.com/x\"\ngo 1.22\n"),
            Some("example.com/x")
        );
    }

    #[test]
    fn import_path_package_names() {
        assert_eq!(package_name_of("github.com/a/go-yaml"), "yaml");
        assert_eq!(package_name_of("example.com/m/v2"), "m");
        assert_eq!(package_name_of("fmt"), "fmt");
    }

    #[test]
    fn definitions_match_the_scm_patterns() {
        let text = "package p\n\ntype S struct {\n\tA int\n\tb, c string\n}\n\ntype I interface {\n\tM() error\n}\n\nvar V = 1\n\nconst (\n\tC1 = iota\n\tC2\n)\n\nfunc F(x int, y ...string) (int, error) { return x, nil }\n\nfunc (s *S) M() error { return nil }\n";
        let idx = index(text);
        let keys: Vec<&str> = idx.defs.iter().filter_map(|d| d.key.as_deref()).collect();
        assert_eq!(
            keys,
            [
                "S", "S.A", "S.b", "S.c", "I", "I.M", "V", "C1", "C2", "F", "S.M"
            ]
        );
        let mut ts = tree_sitter::Parser::new();
        ts.set_language(&tree_sitter_go::LANGUAGE.into())
            .expect("grammar loads");
        let tree = ts.parse(text, None).expect("parses");
        let query = tree_sitter::Query::new(&tree_sitter_go::LANGUAGE.into(), DEFINITIONS_QUERY)
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
        assert!(found.len() >= 11, "{found:?}");
        for name in found {
            assert!(
                idx.defs.iter().any(|d| &*d.name == name),
                "walker missed {name}"
            );
        }
        let f = idx.defs.iter().find(|d| &*d.name == "F").expect("F");
        assert_eq!(
            f.signature.as_deref(),
            Some("func F(x int, y ...string) (int, error)")
        );
    }

    #[test]
    fn garbage_never_panics_and_counts_errors() {
        for text in [
            "package",
            "func (",
            "import \"",
            "type X struct {",
            "\u{0}\u{1}",
            "",
        ] {
            let idx = index(text);
            assert!(!idx.scopes.is_empty());
        }
        assert!(index("package p\nfunc f( {\n").parse_errors > 0);
    }
}

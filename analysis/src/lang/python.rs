//! Python: the syntax walk that fills a `FileIndex` (LEGB scopes, class bodies invisible to
//! nested functions, comprehension/lambda scopes, `global`/`nonlocal`, `self.x`/`cls.x`
//! members, every import form, `__all__`) and the import rules (packages with and without
//! `__init__.py`, `src/` layouts, relative imports).

use super::{
    DocSyntax, Grammar, LanguageModule, ModuleRequest, ModuleResolution, NodeText, Syntax,
    count_errors, node_range,
};
use crate::model::{
    Def, DefIdx, FileIndex, Import, ImportIdx, ImportKind, Name, Qualifier, Ref, RefIdx, Scope,
    ScopeIdx, ScopeKind, SymbolKind, TextRange,
};
use crate::resolve::{ModuleMap, ModuleRef};
use hivesync_protocol::Language;
use std::sync::LazyLock;
use tree_sitter::Node;

/// Patterns for the definitions the walker must produce; checked against the walker's output in
/// tests, and the reference for anyone extending the walk.
pub const DEFINITIONS_QUERY: &str = include_str!("python.scm");

/// The Python language module.
pub struct Python;

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

const BUILTINS: &[&str] = &[
    "abs",
    "aiter",
    "all",
    "anext",
    "any",
    "ascii",
    "bin",
    "bool",
    "breakpoint",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "compile",
    "complex",
    "copyright",
    "credits",
    "delattr",
    "dict",
    "dir",
    "divmod",
    "enumerate",
    "eval",
    "exec",
    "exit",
    "filter",
    "float",
    "format",
    "frozenset",
    "getattr",
    "globals",
    "hasattr",
    "hash",
    "help",
    "hex",
    "id",
    "input",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "license",
    "list",
    "locals",
    "map",
    "max",
    "memoryview",
    "min",
    "next",
    "object",
    "oct",
    "open",
    "ord",
    "pow",
    "print",
    "property",
    "quit",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "setattr",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "type",
    "vars",
    "zip",
    "__import__",
    "__name__",
    "__file__",
    "__doc__",
    "__package__",
    "__spec__",
    "__loader__",
    "__path__",
    "__builtins__",
    "__debug__",
    "__dict__",
    "__class__",
    "__annotations__",
    "__qualname__",
    "__module__",
    "NotImplemented",
    "Ellipsis",
    "BaseException",
    "BaseExceptionGroup",
    "Exception",
    "ExceptionGroup",
    "ArithmeticError",
    "AssertionError",
    "AttributeError",
    "BlockingIOError",
    "BrokenPipeError",
    "BufferError",
    "BytesWarning",
    "ChildProcessError",
    "ConnectionAbortedError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "DeprecationWarning",
    "EOFError",
    "EncodingWarning",
    "EnvironmentError",
    "FileExistsError",
    "FileNotFoundError",
    "FloatingPointError",
    "FutureWarning",
    "GeneratorExit",
    "IOError",
    "ImportError",
    "ImportWarning",
    "IndentationError",
    "IndexError",
    "InterruptedError",
    "IsADirectoryError",
    "KeyError",
    "KeyboardInterrupt",
    "LookupError",
    "MemoryError",
    "ModuleNotFoundError",
    "NameError",
    "NotADirectoryError",
    "NotImplementedError",
    "OSError",
    "OverflowError",
    "PendingDeprecationWarning",
    "PermissionError",
    "ProcessLookupError",
    "RecursionError",
    "ReferenceError",
    "ResourceWarning",
    "RuntimeError",
    "RuntimeWarning",
    "StopAsyncIteration",
    "StopIteration",
    "SyntaxError",
    "SyntaxWarning",
    "SystemError",
    "SystemExit",
    "TabError",
    "TimeoutError",
    "TypeError",
    "UnboundLocalError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "UnicodeError",
    "UnicodeTranslateError",
    "UnicodeWarning",
    "UserWarning",
    "ValueError",
    "Warning",
    "ZeroDivisionError",
    "PythonFinalizationError",
    "WindowsError",
    "reveal_type",
    "reveal_locals",
];

pub(crate) static GRAMMAR: LazyLock<Grammar> =
    LazyLock::new(|| Grammar::new(tree_sitter_python::LANGUAGE.into()));

impl LanguageModule for Python {
    fn index_tree(
        &self,
        language: Language,
        _path: &str,
        text: &str,
        tree: &tree_sitter::Tree,
    ) -> FileIndex {
        let _grammar = GRAMMAR.enter();
        let mut walker = Walker::new(text, language);
        let root = tree.root_node();
        walker.index.scopes[0].range = TextRange::new(root.start_byte(), root.end_byte());
        walker.block(root);
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

    fn nested_scopes_see(&self, kind: ScopeKind) -> bool {
        kind != ScopeKind::Class
    }

    fn doc_syntax(&self) -> DocSyntax {
        DocSyntax {
            placement: "first_statement_in_body",
            open: "\"\"\"",
            close: "\"\"\"",
        }
    }

    fn resolve_module(
        &self,
        map: &ModuleMap,
        from_path: &str,
        request: ModuleRequest<'_>,
    ) -> ModuleResolution {
        let segments: Vec<&str> = if request.module.is_empty() {
            Vec::new()
        } else {
            request.module.split('.').collect()
        };
        if request.level > 0 {
            let mut dir = parent_dir(from_path);
            for _ in 1..request.level {
                if dir.is_empty() {
                    return ModuleResolution::Missing;
                }
                dir = parent_dir(dir);
            }
            return match module_under(map, dir, &segments) {
                Some(m) => ModuleResolution::Project(m),
                None => ModuleResolution::Missing,
            };
        }
        for root in python_roots(map) {
            if let Some(m) = module_under(map, root, &segments) {
                return ModuleResolution::Project(m);
            }
        }
        // The importing script's own directory is on `sys.path` (scripts, tests).
        let here = parent_dir(from_path);
        if let Some(m) = module_under(map, here, &segments) {
            return ModuleResolution::Project(m);
        }
        // `import pkg.missing` where `pkg` is a project package is a project error; anything
        // else is an installed or standard-library module.
        if segments.len() > 1 {
            for root in python_roots(map) {
                if module_under(map, root, &segments[..1]).is_some() {
                    return ModuleResolution::Missing;
                }
            }
        }
        ModuleResolution::External
    }

    fn submodule(&self, map: &ModuleMap, module: &ModuleRef, name: &str) -> Option<ModuleRef> {
        let dir = match module {
            ModuleRef::File(file) => {
                let path = map.path_of(*file)?;
                let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
                if base != "__init__.py" && base != "__init__.pyi" {
                    return None;
                }
                dir.to_owned()
            }
            ModuleRef::Dir(dir) => dir.to_string(),
        };
        module_under(map, &dir, &[name])
    }
}

fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn join(dir: &str, rest: &str) -> String {
    if dir.is_empty() {
        rest.to_owned()
    } else {
        format!("{dir}/{rest}")
    }
}

/// Directories on the import path: the project root, plus `src/`-style roots (see
/// [`ModuleMap::roots`]).
fn python_roots(map: &ModuleMap) -> impl Iterator<Item = &str> {
    std::iter::once("").chain(map.roots().iter().map(|r| &**r))
}

/// The module `segments` under `dir`: `a/b.py`, `a/b.pyi`, `a/b/__init__.py`, or the namespace
/// package directory `a/b/`.
fn module_under(map: &ModuleMap, dir: &str, segments: &[&str]) -> Option<ModuleRef> {
    if segments.is_empty() {
        for init in ["__init__.py", "__init__.pyi"] {
            if let Some(f) = map.file(&join(dir, init)) {
                return Some(ModuleRef::File(f));
            }
        }
        return (dir.is_empty() || map.has_dir(dir)).then(|| ModuleRef::Dir(dir.into()));
    }
    let rel = segments.join("/");
    let base = join(dir, &rel);
    for candidate in [
        format!("{base}.py"),
        format!("{base}/__init__.py"),
        format!("{base}.pyi"),
        format!("{base}/__init__.pyi"),
    ] {
        if let Some(f) = map.file(&candidate) {
            return Some(ModuleRef::File(f));
        }
    }
    map.has_dir(&base).then(|| ModuleRef::Dir(base.into()))
}

/// A method's implicit first parameter and its class.
#[derive(Clone)]
struct SelfCtx {
    class: DefIdx,
    name: Name,
}

/// Syntax nesting beyond which the walk goes flat (see `Walker::flat`).
const MAX_NESTING: u32 = 200;

struct Walker<'a> {
    depth: u32,
    text: &'a str,
    index: FileIndex,
    scope: ScopeIdx,
    parent: Option<DefIdx>,
    self_ctx: Option<SelfCtx>,
}

impl<'a> NodeText<'a> for Walker<'a> {
    fn text(&self) -> &'a str {
        self.text
    }
}

impl<'a> Walker<'a> {
    fn new(text: &'a str, language: Language) -> Walker<'a> {
        Walker {
            depth: 0,
            text,
            index: FileIndex::empty(Some(language)),
            scope: 0,
            parent: None,
            self_ctx: None,
        }
    }

    fn finish(mut self) -> FileIndex {
        self.index.index_keys();
        self.index
    }

    fn new_scope(&mut self, kind: ScopeKind, node: Node<'_>, owner: Option<DefIdx>) -> ScopeIdx {
        let idx = self.index.scopes.len() as ScopeIdx;
        self.index
            .scopes
            .push(Scope::new(kind, node_range(node), Some(self.scope), owner));
        idx
    }

    fn scope_mut(&mut self, idx: ScopeIdx) -> &mut Scope {
        let i = (idx as usize).min(self.index.scopes.len().saturating_sub(1));
        &mut self.index.scopes[i]
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

    /// The scope a binding of `name` made in the current scope lands in; `None` for a
    /// `nonlocal` name (the binding belongs to an enclosing function, found by lookup).
    fn binding_scope(&self, name: &str) -> Option<ScopeIdx> {
        let scope = self.index.scope(self.scope)?;
        if scope.globals.iter().any(|g| &**g == name) {
            return Some(0);
        }
        if scope.nonlocals.iter().any(|g| &**g == name) {
            return None;
        }
        // Walrus targets inside comprehensions bind in the enclosing function/module.
        Some(self.scope)
    }

    /// Binds `name` in the current scope: a new definition the first time, a write reference
    /// afterwards.
    fn bind(&mut self, spec: Binding) -> Option<DefIdx> {
        let Some(target) = self.binding_scope(&spec.name) else {
            self.push_ref(spec.name, spec.name_range, Qualifier::None, true);
            return None;
        };
        self.bind_in(target, spec)
    }

    fn bind_in(&mut self, target: ScopeIdx, spec: Binding) -> Option<DefIdx> {
        if self
            .index
            .scope(target)
            .is_some_and(|s| s.names.contains_key(&spec.name))
        {
            let q = if spec.member_of.is_some() {
                spec.member_of
                    .map(Qualifier::SelfOf)
                    .unwrap_or(Qualifier::None)
            } else {
                Qualifier::None
            };
            self.push_ref(spec.name, spec.name_range, q, true);
            return None;
        }
        let scope = self.index.scope(target)?;
        let (kind, owner) = (scope.kind, scope.owner);
        let key = match kind {
            ScopeKind::Module => Some(spec.name.clone()),
            ScopeKind::Class => owner
                .and_then(|o| self.index.def(o))
                .and_then(|o| o.key.clone())
                .map(|k| Name::from(format!("{k}.{}", spec.name))),
            _ => None,
        };
        let parent = if target == self.scope {
            self.parent
        } else if kind == ScopeKind::Module {
            None
        } else {
            owner
        };
        let idx = self.index.defs.len() as DefIdx;
        self.index.defs.push(Def {
            name: spec.name.clone(),
            kind: spec.kind,
            name_range: spec.name_range,
            full_range: spec.full_range,
            parent,
            scope: target,
            body: None,
            doc: spec.doc,
            signature: spec.signature,
            import: spec.import,
            key,
            bases: spec.bases,
            doc_insert: spec.doc_insert,
        });
        self.scope_mut(target).names.insert(spec.name, idx);
        Some(idx)
    }

    fn variable_kind(&self, name: &str) -> SymbolKind {
        let in_class = self
            .index
            .scope(self.scope)
            .is_some_and(|s| s.kind == ScopeKind::Class);
        if in_class {
            SymbolKind::Field
        } else if self.scope == 0
            && name.len() > 1
            && name
                .chars()
                .all(|c| c.is_uppercase() || c == '_' || c.is_ascii_digit())
        {
            SymbolKind::Constant
        } else {
            SymbolKind::Variable
        }
    }

    // ---- statements -------------------------------------------------------------------------

    fn block(&mut self, node: Node<'_>) {
        let mut cursor = node.walk();
        for child in node.named_children(&mut cursor) {
            self.stmt(child);
        }
    }

    fn stmt(&mut self, node: Node<'_>) {
        if self.depth > MAX_NESTING {
            self.flat(node);
            return;
        }
        self.depth += 1;
        self.stmt_inner(node);
        self.depth -= 1;
    }

    fn stmt_inner(&mut self, node: Node<'_>) {
        match node.kind_str() {
            "function_definition" => self.function(node, node),
            "class_definition" => self.class(node, node),
            "decorated_definition" => {
                let mut cursor = node.walk();
                let decorators: Vec<Node<'_>> = node
                    .named_children(&mut cursor)
                    .filter(|c| c.kind_str() == "decorator")
                    .collect();
                for d in &decorators {
                    self.expr_children(*d);
                }
                if let Some(def) = node.field("definition") {
                    match def.kind_str() {
                        "function_definition" => {
                            let is_static = decorators
                                .iter()
                                .any(|d| self.src(*d).trim() == "@staticmethod");
                            self.function_with(def, node, is_static)
                        }
                        "class_definition" => self.class(def, node),
                        _ => self.stmt(def),
                    }
                }
            }
            "import_statement" => self.import_statement(node),
            "import_from_statement" => self.import_from(node),
            "future_import_statement" => {}
            "global_statement" | "nonlocal_statement" => {
                let global = node.kind_str() == "global_statement";
                let mut cursor = node.walk();
                let names: Vec<Node<'_>> = node
                    .named_children(&mut cursor)
                    .filter(|c| c.kind_str() == "identifier")
                    .collect();
                for n in names {
                    let name = self.name(n);
                    let scope = self.scope;
                    if global {
                        self.scope_mut(scope).globals.push(name.clone());
                    } else {
                        self.scope_mut(scope).nonlocals.push(name.clone());
                    }
                    self.push_ref(name, node_range(n), Qualifier::None, false);
                }
            }
            "expression_statement" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    match c.kind_str() {
                        "assignment" => self.assignment(c, node),
                        "augmented_assignment" => self.augmented(c, node),
                        _ => {
                            self.expr(c);
                        }
                    }
                }
            }
            "for_statement" => {
                if let Some(r) = node.field("right") {
                    self.expr(r);
                }
                if let Some(l) = node.field("left") {
                    self.target(l, node, None);
                }
                for field in ["body", "alternative"] {
                    if let Some(b) = node.field(field) {
                        self.stmt(b);
                    }
                }
            }
            "with_statement" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    if c.kind_str() == "with_clause" {
                        let mut cc = c.walk();
                        for item in c.named_children(&mut cc) {
                            self.with_item(item, node);
                        }
                    } else {
                        self.stmt(c);
                    }
                }
            }
            "except_clause" => {
                let mut cursor = node.walk();
                let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                let alias = node.field("alias");
                for c in children {
                    if Some(c) == alias {
                        self.target(c, node, None);
                    } else if c.kind_str() == "as_pattern" {
                        self.as_pattern(c, node);
                    } else if c.kind_str() == "block" {
                        self.block(c);
                    } else {
                        self.expr(c);
                    }
                }
            }
            "type_alias_statement" => {
                if let Some(r) = node.field("right") {
                    self.expr(r);
                }
                if let Some(l) = node.field("left") {
                    let ident = first_identifier(l).unwrap_or(l);
                    self.bind(Binding::new(
                        self.name(ident),
                        SymbolKind::TypeAlias,
                        node_range(ident),
                        node_range(node),
                    ));
                }
            }
            "match_statement" => {
                if let Some(s) = node.field("subject") {
                    self.expr(s);
                }
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    if c.kind_str() == "block" {
                        let mut cc = c.walk();
                        for case in c.named_children(&mut cc) {
                            self.case_clause(case);
                        }
                    }
                }
            }
            "block"
            | "module"
            | "if_statement"
            | "elif_clause"
            | "else_clause"
            | "while_statement"
            | "try_statement"
            | "finally_clause"
            | "except_group_clause"
            | "ERROR" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    if matches!(c.kind_str(), "block" | "else_clause" | "elif_clause")
                        || is_statement(c.kind_str())
                    {
                        self.stmt(c);
                    } else {
                        self.expr(c);
                    }
                }
            }
            _ if is_statement(node.kind_str()) => self.expr_children(node),
            _ => {
                self.expr(node);
            }
        }
    }

    fn case_clause(&mut self, case: Node<'_>) {
        let mut cursor = case.walk();
        for c in case.named_children(&mut cursor) {
            match c.kind_str() {
                "block" => self.block(c),
                "case_pattern" => self.pattern(c, case),
                _ => {
                    self.expr(c);
                }
            }
        }
    }

    /// Match-statement patterns: bare names capture, dotted names are value references.
    fn pattern(&mut self, node: Node<'_>, stmt: Node<'_>) {
        match node.kind_str() {
            "case_pattern" | "splat_pattern"
                if node.named_child_count() == 1
                    && node
                        .named_child(0)
                        .is_some_and(|c| c.kind_str() == "identifier") =>
            {
                if let Some(id) = node.named_child(0) {
                    self.target(id, stmt, None);
                }
            }
            "case_pattern"
                if node.named_child_count() == 1
                    && node.named_child(0).is_some_and(|c| {
                        c.kind_str() == "dotted_name" && c.named_child_count() == 1
                    }) =>
            {
                if let Some(id) = node.named_child(0).and_then(|d| d.named_child(0)) {
                    self.target(id, stmt, None);
                }
            }
            "dotted_name" => {
                let mut prev: Option<RefIdx> = None;
                let mut cursor = node.walk();
                for id in node.named_children(&mut cursor) {
                    let q = prev.map(Qualifier::Ref).unwrap_or(Qualifier::None);
                    prev = Some(self.push_ref(self.name(id), node_range(id), q, false));
                }
            }
            "as_pattern" => self.as_pattern(node, stmt),
            "keyword_pattern" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor).skip(1) {
                    self.pattern(c, stmt);
                }
            }
            "identifier" => {
                self.target(node, stmt, None);
            }
            _ => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    self.pattern(c, stmt);
                }
            }
        }
    }

    fn as_pattern(&mut self, node: Node<'_>, stmt: Node<'_>) {
        let alias = node.field("alias");
        let mut cursor = node.walk();
        for c in node.named_children(&mut cursor) {
            if Some(c) == alias {
                let target = first_identifier(c).unwrap_or(c);
                self.target(target, stmt, None);
            } else if c.kind_str() == "case_pattern" {
                self.pattern(c, stmt);
            } else {
                self.expr(c);
            }
        }
    }

    fn with_item(&mut self, item: Node<'_>, stmt: Node<'_>) {
        match item.field("value") {
            Some(v) if v.kind_str() == "as_pattern" => self.as_pattern(v, stmt),
            Some(v) => {
                self.expr(v);
            }
            None => self.expr_children(item),
        }
    }

    fn function(&mut self, node: Node<'_>, full: Node<'_>) {
        self.function_with(node, full, false)
    }

    fn function_with(&mut self, node: Node<'_>, full: Node<'_>, is_static: bool) {
        let Some(name_node) = node.field("name") else {
            self.expr_children(node);
            return;
        };
        let params = node.field("parameters");
        let body = node.field("body");
        // Defaults and annotations are evaluated in the enclosing scope.
        if let Some(p) = params {
            let mut cursor = p.walk();
            for param in p.named_children(&mut cursor) {
                for field in ["value", "type"] {
                    if let Some(v) = param.field(field) {
                        self.expr(v);
                    }
                }
            }
        }
        if let Some(r) = node.field("return_type") {
            self.expr(r);
        }
        let in_class = self
            .index
            .scope(self.scope)
            .is_some_and(|s| s.kind == ScopeKind::Class);
        let class_def = if in_class {
            self.index.scope(self.scope).and_then(|s| s.owner)
        } else {
            None
        };
        let kind = if in_class {
            SymbolKind::Method
        } else {
            SymbolKind::Function
        };
        let sig_end = node
            .field("return_type")
            .or(params)
            .map(|n| n.end_byte())
            .unwrap_or(name_node.end_byte());
        let signature = collapse_ws(self.text.get(node.start_byte()..sig_end).unwrap_or(""));
        let (doc, doc_insert) = self.docstring(body);
        let mut spec = Binding::new(
            self.name(name_node),
            kind,
            node_range(name_node),
            node_range(full),
        );
        spec.signature = Some(signature);
        spec.doc = doc;
        spec.doc_insert = doc_insert;
        let def = self.bind(spec);

        let scope = self.new_scope(ScopeKind::Function, node, def);
        if let Some(d) = def
            && let Some(dd) = self.index.defs.get_mut(d as usize)
        {
            dd.body = Some(scope);
        }
        let saved = (self.scope, self.parent, self.self_ctx.clone());
        self.scope = scope;
        if def.is_some() {
            self.parent = def;
        }
        let mut first_param: Option<Name> = None;
        if let Some(p) = params {
            let mut cursor = p.walk();
            for param in p.named_children(&mut cursor) {
                let ident = match param.kind_str() {
                    "identifier" => Some(param),
                    "typed_parameter" | "list_splat_pattern" | "dictionary_splat_pattern" => {
                        first_identifier(param)
                    }
                    "default_parameter" | "typed_default_parameter" => {
                        param.field("name").filter(|n| n.kind_str() == "identifier")
                    }
                    _ => None,
                };
                if let Some(id) = ident {
                    let name = self.name(id);
                    if first_param.is_none() {
                        first_param = Some(name.clone());
                    }
                    let mut spec = Binding::new(
                        name,
                        SymbolKind::Parameter,
                        node_range(id),
                        node_range(param),
                    );
                    spec.signature = Some(collapse_ws(self.src(param)));
                    self.bind(spec);
                }
            }
        }
        self.self_ctx = match (class_def, first_param) {
            (Some(class), Some(name)) if !is_static => Some(SelfCtx { class, name }),
            (Some(_), _) => None,
            _ => saved.2.clone(),
        };
        if let Some(b) = body {
            self.block(b);
        }
        (self.scope, self.parent, self.self_ctx) = saved;
    }

    fn class(&mut self, node: Node<'_>, full: Node<'_>) {
        let Some(name_node) = node.field("name") else {
            self.expr_children(node);
            return;
        };
        let mut bases = Vec::new();
        if let Some(sup) = node.field("superclasses") {
            let mut cursor = sup.walk();
            for c in sup.named_children(&mut cursor) {
                if matches!(c.kind_str(), "identifier" | "attribute") {
                    let text = self.src(c);
                    if text
                        .chars()
                        .all(|ch| ch == '.' || ch == '_' || ch.is_alphanumeric())
                    {
                        bases.push(Name::from(text));
                    }
                }
                self.expr(c);
            }
        }
        let body = node.field("body");
        let sig_end = node
            .field("superclasses")
            .map(|n| n.end_byte())
            .unwrap_or(name_node.end_byte());
        let (doc, doc_insert) = self.docstring(body);
        let mut spec = Binding::new(
            self.name(name_node),
            SymbolKind::Class,
            node_range(name_node),
            node_range(full),
        );
        spec.signature = Some(collapse_ws(
            self.text.get(node.start_byte()..sig_end).unwrap_or(""),
        ));
        spec.doc = doc;
        spec.doc_insert = doc_insert;
        spec.bases = bases;
        let def = self.bind(spec);
        let scope = self.new_scope(ScopeKind::Class, node, def);
        if let Some(d) = def
            && let Some(dd) = self.index.defs.get_mut(d as usize)
        {
            dd.body = Some(scope);
        }
        let saved = (self.scope, self.parent, self.self_ctx.take());
        self.scope = scope;
        if def.is_some() {
            self.parent = def;
        }
        if let Some(b) = body {
            self.block(b);
        }
        (self.scope, self.parent, self.self_ctx) = saved;
    }

    /// The docstring of a body (cleaned) and the offset of the body's first statement.
    fn docstring(&self, body: Option<Node<'_>>) -> (Option<String>, Option<u32>) {
        let Some(body) = body else {
            return (None, None);
        };
        let Some(first) = body.named_child(0) else {
            return (None, None);
        };
        let insert = u32::try_from(first.start_byte()).ok();
        if first.kind_str() == "expression_statement"
            && let Some(s) = first.named_child(0).filter(|s| s.kind_str() == "string")
        {
            return (Some(clean_docstring(self.src(s))), insert);
        }
        (None, insert)
    }

    fn import_statement(&mut self, node: Node<'_>) {
        let mut cursor = node.walk();
        for n in node.children_by_field_name("name", &mut cursor) {
            let (dotted, alias) = match n.kind_str() {
                "aliased_import" => (n.field("name"), n.field("alias")),
                _ => (Some(n), None),
            };
            let Some(dotted) = dotted else { continue };
            let module = self.name(dotted);
            let alias_name = alias.map(|a| self.name(a));
            let imp = self.push_import(
                module,
                0,
                ImportKind::Module {
                    alias: alias_name.clone(),
                },
                dotted,
            );
            let mut cursor = dotted.walk();
            let segs: Vec<Node<'_>> = dotted.named_children(&mut cursor).collect();
            let bind_node = alias.or(segs.first().copied());
            if let Some(b) = bind_node {
                let mut spec = Binding::new(
                    self.name(b),
                    SymbolKind::Import,
                    node_range(b),
                    node_range(node),
                );
                spec.import = Some(imp);
                spec.signature = Some(collapse_ws(self.src(node)));
                self.bind(spec);
            }
            for (i, seg) in segs.iter().enumerate() {
                if alias.is_none() && i == 0 {
                    continue; // the binding itself
                }
                self.push_ref(
                    self.name(*seg),
                    node_range(*seg),
                    Qualifier::ModulePath {
                        import: imp,
                        depth: (i + 1) as u16,
                    },
                    false,
                );
            }
        }
    }

    fn import_from(&mut self, node: Node<'_>) {
        let Some(module_node) = node.field("module_name") else {
            return;
        };
        let (level, dotted) = if module_node.kind_str() == "relative_import" {
            let mut cursor = module_node.walk();
            let children: Vec<Node<'_>> = module_node.named_children(&mut cursor).collect();
            let level = children
                .iter()
                .find(|c| c.kind_str() == "import_prefix")
                .map(|p| self.src(*p).chars().filter(|c| *c == '.').count() as u32)
                .unwrap_or(0);
            (
                level,
                children.into_iter().find(|c| c.kind_str() == "dotted_name"),
            )
        } else {
            (0, Some(module_node))
        };
        let module: Name = dotted.map(|d| self.name(d)).unwrap_or_else(|| "".into());
        let segs: Vec<Node<'_>> = match dotted {
            Some(d) => {
                let mut cursor = d.walk();
                d.named_children(&mut cursor).collect()
            }
            None => Vec::new(),
        };
        let mut first_import: Option<ImportIdx> = None;
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        let mut cursor = node.walk();
        let names: Vec<Node<'_>> = node.children_by_field_name("name", &mut cursor).collect();
        if children.iter().any(|c| c.kind_str() == "wildcard_import") {
            let imp = self.push_import(module.clone(), level, ImportKind::Star, module_node);
            let scope = self.scope;
            self.scope_mut(scope).stars.push(imp);
            first_import = Some(imp);
        }
        for n in names {
            let (name_node, alias) = match n.kind_str() {
                "aliased_import" => (n.field("name"), n.field("alias")),
                _ => (Some(n), None),
            };
            let Some(name_node) = name_node else { continue };
            let name = self.name(name_node);
            let alias_name = alias.map(|a| self.name(a));
            let imp = self.push_import(
                module.clone(),
                level,
                ImportKind::From {
                    name: name.clone(),
                    alias: alias_name.clone(),
                },
                module_node,
            );
            first_import.get_or_insert(imp);
            let bind_node = alias.unwrap_or(name_node);
            let mut spec = Binding::new(
                self.name(bind_node),
                SymbolKind::Import,
                node_range(bind_node),
                node_range(node),
            );
            spec.import = Some(imp);
            spec.signature = Some(collapse_ws(self.src(node)));
            self.bind(spec);
            self.push_ref(
                name,
                node_range(name_node),
                Qualifier::ImportMember(imp),
                false,
            );
        }
        if let Some(imp) = first_import {
            for (i, seg) in segs.iter().enumerate() {
                self.push_ref(
                    self.name(*seg),
                    node_range(*seg),
                    Qualifier::ModulePath {
                        import: imp,
                        depth: (i + 1) as u16,
                    },
                    false,
                );
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

    fn assignment(&mut self, node: Node<'_>, stmt: Node<'_>) {
        if let Some(t) = node.field("type") {
            self.expr(t);
        }
        if let Some(r) = node.field("right") {
            match r.kind_str() {
                "assignment" => self.assignment(r, stmt),
                "augmented_assignment" => self.augmented(r, stmt),
                _ => {
                    self.expr(r);
                }
            }
        }
        let Some(left) = node.field("left") else {
            return;
        };
        if self.scope == 0
            && self.src(left) == "__all__"
            && let Some(r) = node.field("right")
        {
            self.dunder_all(r, false);
        }
        let sig = node
            .field("type")
            .map(|t| format!("{}: {}", self.src(left), collapse_ws(self.src(t))));
        self.target(left, stmt, sig);
    }

    fn augmented(&mut self, node: Node<'_>, stmt: Node<'_>) {
        if let Some(r) = node.field("right") {
            self.expr(r);
        }
        if let Some(left) = node.field("left") {
            if self.scope == 0
                && self.src(left) == "__all__"
                && let Some(r) = node.field("right")
            {
                self.dunder_all(r, true);
            }
            if left.kind_str() == "identifier" {
                // `x += 1` reads and rebinds `x`.
                self.target(left, stmt, None);
            } else {
                self.target(left, stmt, None);
            }
        }
    }

    /// `__all__ = ["a", "b"]`: the export list, and each string as a reference to the name.
    fn dunder_all(&mut self, value: Node<'_>, extend: bool) {
        if !matches!(value.kind_str(), "list" | "tuple") {
            return;
        }
        let mut names = if extend {
            self.index.all.clone().unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut cursor = value.walk();
        for item in value.named_children(&mut cursor) {
            if item.kind_str() != "string" {
                continue;
            }
            let mut cc = item.walk();
            let content = item
                .named_children(&mut cc)
                .find(|c| c.kind_str() == "string_content");
            if let Some(c) = content {
                let name = self.name(c);
                names.push(name.clone());
                self.push_ref(name, node_range(c), Qualifier::None, false);
            }
        }
        self.index.all = Some(names);
    }

    /// An assignment target (binding position).
    fn target(&mut self, node: Node<'_>, stmt: Node<'_>, signature: Option<String>) {
        match node.kind_str() {
            "identifier" => {
                let name = self.name(node);
                let kind = self.variable_kind(&name);
                let mut spec = Binding::new(name, kind, node_range(node), node_range(stmt));
                let first_line = self.src(stmt).lines().next().unwrap_or("");
                spec.signature = signature.or_else(|| Some(truncate(first_line.trim(), 120)));
                self.bind(spec);
            }
            "attribute" => {
                let object = node.field("object");
                let attr = node.field("attribute");
                if let (Some(o), Some(a), Some(ctx)) = (object, attr, self.self_ctx.clone())
                    && o.kind_str() == "identifier"
                    && *self.src(o) == *ctx.name
                {
                    self.expr(o);
                    let class_scope = self.index.def(ctx.class).and_then(|d| d.body).unwrap_or(0);
                    let mut spec = Binding::new(
                        self.name(a),
                        SymbolKind::Field,
                        node_range(a),
                        node_range(stmt),
                    );
                    spec.signature = Some(truncate(
                        self.src(stmt).lines().next().unwrap_or("").trim(),
                        120,
                    ));
                    spec.member_of = Some(ctx.class);
                    let saved_parent = self.parent;
                    self.parent = Some(ctx.class);
                    self.bind_member(class_scope, spec);
                    self.parent = saved_parent;
                    return;
                }
                self.expr(node);
            }
            "pattern_list"
            | "tuple_pattern"
            | "list_pattern"
            | "expression_list"
            | "tuple"
            | "list"
            | "parenthesized_expression"
            | "list_splat_pattern"
            | "list_splat" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    self.target(c, stmt, None);
                }
            }
            _ => {
                self.expr(node);
            }
        }
    }

    /// Binds `self.name` as a member of the class whose body scope is `class_scope`.
    fn bind_member(&mut self, class_scope: ScopeIdx, spec: Binding) {
        let saved = self.scope;
        // `bind_in` computes the key and parent from the target scope.
        let name = spec.name.clone();
        let range = spec.name_range;
        let member_of = spec.member_of;
        if self
            .index
            .scope(class_scope)
            .is_some_and(|s| s.names.contains_key(&name))
        {
            self.push_ref(
                name,
                range,
                member_of.map(Qualifier::SelfOf).unwrap_or(Qualifier::None),
                true,
            );
            return;
        }
        self.bind_in(class_scope, spec);
        self.scope = saved;
    }

    // ---- expressions ------------------------------------------------------------------------

    fn expr_children(&mut self, node: Node<'_>) {
        let mut cursor = node.walk();
        for c in node.named_children(&mut cursor) {
            self.expr(c);
        }
    }

    /// Records the references in an expression; returns the reference the expression *is*
    /// (for `a` and `a.b`), so that attribute accesses can chain.
    fn expr(&mut self, node: Node<'_>) -> Option<RefIdx> {
        if self.depth > MAX_NESTING {
            self.flat(node);
            return None;
        }
        self.depth += 1;
        let r = self.expr_inner(node);
        self.depth -= 1;
        r
    }

    /// Deeply nested code (generated tables, long operator chains): every identifier is a
    /// plain name reference, walked without recursion so the stack cannot overflow.
    fn flat(&mut self, node: Node<'_>) {
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            if n.kind_str() == "identifier" {
                self.push_ref(self.name(n), node_range(n), Qualifier::None, false);
                continue;
            }
            if matches!(n.kind_str(), "string" | "comment") {
                continue;
            }
            let mut cursor = n.walk();
            let children: Vec<Node<'_>> = n.named_children(&mut cursor).collect();
            stack.extend(children.into_iter().rev());
        }
    }

    fn expr_inner(&mut self, node: Node<'_>) -> Option<RefIdx> {
        match node.kind_str() {
            "identifier" => {
                Some(self.push_ref(self.name(node), node_range(node), Qualifier::None, false))
            }
            "attribute" => {
                let object = node.field("object");
                let attr = node.field("attribute")?;
                let qualifier = match object {
                    Some(o) if o.kind_str() == "call" => {
                        let func = o.field("function");
                        let is_super = func.is_some_and(|f| self.src(f) == "super");
                        let f_ref = func.and_then(|f| self.expr(f));
                        if let Some(args) = o.field("arguments") {
                            self.expr(args);
                        }
                        match (&self.self_ctx, f_ref) {
                            (Some(ctx), _) if is_super => Qualifier::SuperOf(ctx.class),
                            (_, Some(f)) => Qualifier::CallResult(f),
                            _ => Qualifier::Unknown,
                        }
                    }
                    Some(o) => {
                        let is_self = o.kind_str() == "identifier"
                            && self
                                .self_ctx
                                .as_ref()
                                .is_some_and(|c| *c.name == *self.src(o));
                        let base = self.expr(o);
                        match (is_self, base, &self.self_ctx) {
                            (true, _, Some(ctx)) => Qualifier::SelfOf(ctx.class),
                            (_, Some(b), _) => Qualifier::Ref(b),
                            _ => Qualifier::Unknown,
                        }
                    }
                    None => Qualifier::Unknown,
                };
                Some(self.push_ref(self.name(attr), node_range(attr), qualifier, false))
            }
            "keyword_argument" => {
                if let Some(v) = node.field("value") {
                    self.expr(v);
                }
                None
            }
            "lambda" => {
                let scope = self.new_scope(ScopeKind::Lambda, node, None);
                let saved = self.scope;
                self.scope = scope;
                if let Some(p) = node.field("parameters") {
                    let mut cursor = p.walk();
                    for param in p.named_children(&mut cursor) {
                        let id = match param.kind_str() {
                            "identifier" => Some(param),
                            "default_parameter" => param.field("name"),
                            _ => first_identifier(param),
                        };
                        if let Some(v) = param.field("value") {
                            self.scope = saved;
                            self.expr(v);
                            self.scope = scope;
                        }
                        if let Some(id) = id {
                            self.bind(Binding::new(
                                self.name(id),
                                SymbolKind::Parameter,
                                node_range(id),
                                node_range(param),
                            ));
                        }
                    }
                }
                if let Some(b) = node.field("body") {
                    self.expr(b);
                }
                self.scope = saved;
                None
            }
            "list_comprehension"
            | "set_comprehension"
            | "dictionary_comprehension"
            | "generator_expression" => {
                self.comprehension(node);
                None
            }
            "named_expression" => {
                if let Some(v) = node.field("value") {
                    self.expr(v);
                }
                if let Some(n) = node.field("name") {
                    // PEP 572: the target binds in the nearest non-comprehension scope.
                    let mut target = self.scope;
                    while let Some(s) = self.index.scope(target) {
                        if s.kind != ScopeKind::Comprehension {
                            break;
                        }
                        target = s.parent.unwrap_or(0);
                    }
                    let name = self.name(n);
                    let kind = SymbolKind::Variable;
                    let saved = self.scope;
                    self.scope = target;
                    let spec = Binding::new(name, kind, node_range(n), node_range(node));
                    self.bind(spec);
                    self.scope = saved;
                }
                None
            }
            "string" | "concatenated_string" => {
                // Only f-string interpolations hold code.
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    if matches!(c.kind_str(), "interpolation" | "string") {
                        self.expr_children_or_self(c);
                    }
                }
                None
            }
            "interpolation" => {
                self.expr_children(node);
                None
            }
            "format_specifier" | "escape_sequence" | "string_content" | "string_start"
            | "string_end" | "comment" | "integer" | "float" | "true" | "false" | "none"
            | "ellipsis" => None,
            "assignment" => {
                self.assignment(node, node);
                None
            }
            "augmented_assignment" => {
                self.augmented(node, node);
                None
            }
            k if is_statement(k) || k == "block" => {
                self.stmt(node);
                None
            }
            _ => {
                self.expr_children(node);
                None
            }
        }
    }

    fn expr_children_or_self(&mut self, node: Node<'_>) {
        if node.kind_str() == "interpolation" {
            self.expr_children(node);
        } else {
            self.expr(node);
        }
    }

    fn comprehension(&mut self, node: Node<'_>) {
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        let clauses: Vec<Node<'_>> = children
            .iter()
            .copied()
            .filter(|c| matches!(c.kind_str(), "for_in_clause" | "if_clause"))
            .collect();
        // The first iterable is evaluated in the enclosing scope.
        if let Some(first) = clauses.first()
            && let Some(r) = first.field("right")
        {
            self.expr(r);
        }
        let scope = self.new_scope(ScopeKind::Comprehension, node, None);
        let saved = self.scope;
        self.scope = scope;
        for (i, clause) in clauses.iter().enumerate() {
            if clause.kind_str() == "for_in_clause" {
                if i > 0
                    && let Some(r) = clause.field("right")
                {
                    self.expr(r);
                }
                if let Some(l) = clause.field("left") {
                    self.target(l, *clause, None);
                }
            } else {
                self.expr_children(*clause);
            }
        }
        for c in children {
            if !matches!(c.kind_str(), "for_in_clause" | "if_clause") {
                self.expr(c);
            }
        }
        self.scope = saved;
    }
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
    import: Option<ImportIdx>,
    bases: Vec<Name>,
    member_of: Option<DefIdx>,
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
            import: None,
            bases: Vec::new(),
            member_of: None,
        }
    }
}

fn is_statement(kind: &str) -> bool {
    kind.ends_with("_statement")
        || matches!(
            kind,
            "function_definition"
                | "class_definition"
                | "decorated_definition"
                | "except_clause"
                | "finally_clause"
                | "else_clause"
                | "elif_clause"
        )
}

fn first_identifier(node: Node<'_>) -> Option<Node<'_>> {
    if node.kind_str() == "identifier" {
        return Some(node);
    }
    let mut cursor = node.walk();
    let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
    children.into_iter().find_map(first_identifier)
}

fn collapse_ws(s: &str) -> String {
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

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// Strips the quotes and prefix of a docstring literal and dedents it (PEP 257).
fn clean_docstring(literal: &str) -> String {
    let body = literal.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let body = ["\"\"\"", "'''", "\"", "'"]
        .iter()
        .find_map(|q| body.strip_prefix(q).and_then(|b| b.strip_suffix(q)))
        .unwrap_or(body);
    let mut lines = body.lines();
    let first = lines.next().unwrap_or("").trim().to_owned();
    let rest: Vec<&str> = lines.collect();
    let indent = rest
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = vec![first];
    for l in rest {
        out.push(
            l.get(indent..)
                .unwrap_or(l.trim_start())
                .trim_end()
                .to_owned(),
        );
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    out.join("\n")
}

/// Module-level names a glob import of a file brings in, for tests and the resolver.
pub fn star_names(all: Option<&[Name]>, top: &rustc_hash::FxHashMap<Name, u32>) -> Vec<Name> {
    match all {
        Some(all) => all.to_vec(),
        None => top
            .keys()
            .filter(|n| !n.starts_with('_'))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(text: &str) -> FileIndex {
        Python.index(Language::Python, "t.py", text)
    }

    #[test]
    fn docstrings_are_dedented() {
        assert_eq!(
            clean_docstring("\"\"\"Summary.\n\n    More text.\n    \"\"\""),
            "Summary.\n\nMore text."
        );
        assert_eq!(clean_docstring("r'raw'"), "raw");
    }

    #[test]
    fn definitions_match_the_scm_patterns() {
        let text = "X = 1\nclass C(Base):\n    def m(self):\n        self.y = 2\ndef f(a, *b, c=1, **d):\n    return a\n";
        let idx = index(text);
        let keys: Vec<&str> = idx.defs.iter().filter_map(|d| d.key.as_deref()).collect();
        assert_eq!(keys, ["X", "C", "C.m", "C.y", "f"]);
        let mut ts = tree_sitter::Parser::new();
        ts.set_language(&tree_sitter_python::LANGUAGE.into())
            .expect("grammar loads");
        let tree = ts.parse(text, None).expect("parses");
        let query =
            tree_sitter::Query::new(&tree_sitter_python::LANGUAGE.into(), DEFINITIONS_QUERY)
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
        for name in found {
            assert!(
                idx.defs.iter().any(|d| &*d.name == name),
                "walker missed {name}"
            );
        }
        let f = idx.defs.iter().find(|d| &*d.name == "f").expect("f");
        assert_eq!(f.signature.as_deref(), Some("def f(a, *b, c=1, **d)"));
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let mut text = String::from("x = 0");
        for i in 0..20_000 {
            text.push_str(&format!(" + a{i}"));
        }
        text.push('\n');
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || index(&text).refs.len())
            .expect("thread");
        assert_eq!(handle.join().expect("no overflow"), 20_000);
    }

    #[test]
    fn garbage_never_panics_and_counts_errors() {
        for text in [
            "def (:\n  x = \n",
            "class",
            "from . import",
            "lambda: (",
            "\u{0}\u{1}",
        ] {
            let idx = index(text);
            assert!(!idx.scopes.is_empty());
        }
        assert!(index("def f(:\n").parse_errors > 0);
    }
}

//! TypeScript, TSX and JavaScript (JSX included): the syntax walk that fills a `FileIndex` and
//! the module rules.
//!
//! Scopes: block scoping for `let`/`const`/`class`/functions in blocks, `var` hoisted to the
//! function, parameters and destructuring patterns, class bodies whose members are reached
//! through `this.x` (methods, fields, constructor parameter properties, `this.x = …` in
//! methods), TypeScript interfaces, type aliases, enums and namespaces, type references looked
//! up like values, JSX element names (`<Foo />` uses `Foo`).
//!
//! Modules: ES imports (named, default, namespace, renamed), exports (declarations, clauses,
//! `export default`, `export … from`, `export *`, `export * as ns`), CommonJS `require` and
//! `module.exports` / `exports.name`. Only exported names get a `key`, so a file's interface
//! is exactly what other files can import. Specifiers resolve relative to the importing file
//! (extensions, `.js` → `.ts`, `index` files, `package.json` `types`/`main`), through the
//! nearest `tsconfig.json`/`jsconfig.json` (`baseUrl`, `paths` with `*`, `extends`; comments
//! and trailing commas allowed), and anything else is an external package.

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
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};
use tree_sitter::Node;

/// Patterns for the definitions the walker must produce (common to the three grammars);
/// checked against the walker's output in tests.
pub const DEFINITIONS_QUERY: &str = include_str!("typescript.scm");

/// The TypeScript / TSX / JavaScript language module.
pub struct TypeScript;

/// Reserved words (ECMAScript, strict mode included) and TypeScript declaration keywords that
/// cannot name a binding.
const KEYWORDS: &[&str] = &[
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "static",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Modifiers that may open a member's signature.
const MODIFIERS: &[&str] = &[
    "private",
    "protected",
    "public",
    "static",
    "readonly",
    "abstract",
    "override",
    "declare",
    "async",
    "get",
    "set",
    "accessor",
];

/// Globals of ECMAScript, Node.js, browsers, and TypeScript's standard library types.
const BUILTINS: &[&str] = &[
    "undefined",
    "NaN",
    "Infinity",
    "globalThis",
    "arguments",
    "Object",
    "Function",
    "Array",
    "Number",
    "parseFloat",
    "parseInt",
    "Boolean",
    "String",
    "Symbol",
    "Date",
    "Promise",
    "RegExp",
    "Error",
    "AggregateError",
    "EvalError",
    "RangeError",
    "ReferenceError",
    "SyntaxError",
    "TypeError",
    "URIError",
    "JSON",
    "Math",
    "Intl",
    "ArrayBuffer",
    "SharedArrayBuffer",
    "Atomics",
    "Uint8Array",
    "Int8Array",
    "Uint16Array",
    "Int16Array",
    "Uint32Array",
    "Int32Array",
    "Float32Array",
    "Float64Array",
    "BigInt64Array",
    "BigUint64Array",
    "Uint8ClampedArray",
    "DataView",
    "Map",
    "BigInt",
    "Set",
    "WeakMap",
    "WeakSet",
    "WeakRef",
    "FinalizationRegistry",
    "Proxy",
    "Reflect",
    "decodeURI",
    "decodeURIComponent",
    "encodeURI",
    "encodeURIComponent",
    "escape",
    "unescape",
    "eval",
    "isFinite",
    "isNaN",
    "console",
    "queueMicrotask",
    "structuredClone",
    "setTimeout",
    "clearTimeout",
    "setInterval",
    "clearInterval",
    "setImmediate",
    "clearImmediate",
    "require",
    "module",
    "exports",
    "__dirname",
    "__filename",
    "process",
    "Buffer",
    "global",
    "window",
    "self",
    "document",
    "navigator",
    "location",
    "history",
    "localStorage",
    "sessionStorage",
    "fetch",
    "Request",
    "Response",
    "Headers",
    "URL",
    "URLSearchParams",
    "AbortController",
    "AbortSignal",
    "Event",
    "EventTarget",
    "CustomEvent",
    "TextEncoder",
    "TextDecoder",
    "Blob",
    "File",
    "FormData",
    "WebSocket",
    "Worker",
    "crypto",
    "performance",
    "alert",
    "confirm",
    "prompt",
    "atob",
    "btoa",
    "requestAnimationFrame",
    "cancelAnimationFrame",
    "HTMLElement",
    "Element",
    "Node",
    "React",
    "JSX",
    // TypeScript standard library types.
    "Partial",
    "Required",
    "Readonly",
    "Record",
    "Pick",
    "Omit",
    "Exclude",
    "Extract",
    "NonNullable",
    "Parameters",
    "ConstructorParameters",
    "ReturnType",
    "InstanceType",
    "ThisParameterType",
    "OmitThisParameter",
    "ThisType",
    "Awaited",
    "Uppercase",
    "Lowercase",
    "Capitalize",
    "Uncapitalize",
    "PromiseLike",
    "ArrayLike",
    "ReadonlyArray",
    "ReadonlyMap",
    "ReadonlySet",
    "Iterable",
    "Iterator",
    "IterableIterator",
    "AsyncIterable",
    "AsyncIterator",
    "AsyncIterableIterator",
    "Generator",
    "AsyncGenerator",
    "PropertyKey",
    "PropertyDescriptor",
    "TemplateStringsArray",
    "NodeJS",
    "BooleanConstructor",
    "NumberConstructor",
    "StringConstructor",
    "ArrayConstructor",
    "ObjectConstructor",
    "FunctionConstructor",
    "PromiseConstructor",
    "PromiseConstructorLike",
    "ErrorConstructor",
    "ArrayBufferLike",
    "ArrayBufferView",
    "IteratorResult",
    "IteratorYieldResult",
    "IteratorReturnResult",
    "CallableFunction",
    "NewableFunction",
    "ClassDecorator",
    "PropertyDecorator",
    "MethodDecorator",
    "ParameterDecorator",
    "TypedPropertyDescriptor",
    "bigint",
    "symbol",
    "object",
    "unknown",
    "never",
    "any",
    // DOM and Web API types commonly named in annotations.
    "XMLHttpRequest",
    "XMLHttpRequestResponseType",
    "XMLHttpRequestEventTarget",
    "RequestInit",
    "RequestInfo",
    "ResponseInit",
    "HeadersInit",
    "BodyInit",
    "ProgressEvent",
    "MessageEvent",
    "CloseEvent",
    "ErrorEvent",
    "KeyboardEvent",
    "MouseEvent",
    "PointerEvent",
    "FocusEvent",
    "InputEvent",
    "TouchEvent",
    "WheelEvent",
    "DragEvent",
    "AnimationEvent",
    "TransitionEvent",
    "UIEvent",
    "EventListener",
    "EventListenerOrEventListenerObject",
    "AddEventListenerOptions",
    "EventListenerOptions",
    "FrameRequestCallback",
    "ReadableStream",
    "WritableStream",
    "TransformStream",
    "DOMHighResTimeStamp",
    "HTMLInputElement",
    "HTMLDivElement",
    "HTMLButtonElement",
    "HTMLFormElement",
    "HTMLCanvasElement",
    "HTMLImageElement",
    "HTMLAnchorElement",
    "SVGElement",
    "Document",
    "Window",
    "Storage",
    "MutationObserver",
    "IntersectionObserver",
    "ResizeObserver",
    "Image",
    "Audio",
    "MessageChannel",
    "MessagePort",
    "BroadcastChannel",
    "indexedDB",
    "getComputedStyle",
    "matchMedia",
];

/// A parsed config and the text it was parsed from.
type CachedConfig = (Arc<str>, Option<Arc<TsConfig>>);

thread_local! {
    /// Parsed `tsconfig.json` files by path, with the text they were parsed from.
    static TSCONFIGS: RefCell<HashMap<String, CachedConfig>> = RefCell::new(HashMap::new());
}

static TYPESCRIPT: LazyLock<Grammar> =
    LazyLock::new(|| Grammar::new(tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into()));
static TSX: LazyLock<Grammar> =
    LazyLock::new(|| Grammar::new(tree_sitter_typescript::LANGUAGE_TSX.into()));
static JAVASCRIPT: LazyLock<Grammar> =
    LazyLock::new(|| Grammar::new(tree_sitter_javascript::LANGUAGE.into()));

pub(crate) fn grammar(language: Language) -> &'static Grammar {
    match language {
        Language::Tsx => &TSX,
        Language::JavaScript => &JAVASCRIPT,
        _ => &TYPESCRIPT,
    }
}

impl LanguageModule for TypeScript {
    fn index_tree(
        &self,
        language: Language,
        _path: &str,
        text: &str,
        tree: &tree_sitter::Tree,
    ) -> FileIndex {
        let _grammar = grammar(language).enter();
        let root = tree.root_node();
        let mut walker = Walker::new(text, language);
        walker.index.scopes[0].range = TextRange::new(root.start_byte(), root.end_byte());
        walker.statements(root);
        let mut index = walker.finish();
        index.parse_errors = count_errors(root);
        index
    }

    fn keywords(&self) -> &'static [&'static str] {
        KEYWORDS
    }

    fn is_identifier(&self, name: &str) -> bool {
        let name = name.strip_prefix('#').unwrap_or(name);
        let mut chars = name.chars();
        match chars.next() {
            Some(c) if c == '_' || c == '$' || c.is_alphabetic() => {}
            _ => return false,
        }
        chars.all(|c| c == '_' || c == '$' || c.is_alphanumeric())
    }

    fn is_builtin(&self, name: &str) -> bool {
        BUILTINS.contains(&name)
    }

    fn nested_scopes_see(&self, kind: ScopeKind) -> bool {
        // Class members are reached through `this`, never as bare names.
        kind != ScopeKind::Class
    }

    fn doc_syntax(&self) -> DocSyntax {
        DocSyntax {
            placement: "before_item",
            open: "/**",
            close: "*/",
        }
    }

    fn resolve_module(
        &self,
        map: &ModuleMap,
        from_path: &str,
        request: ModuleRequest<'_>,
    ) -> ModuleResolution {
        resolve_specifier(map, from_path, request.module)
    }

    fn submodule(&self, _map: &ModuleMap, _module: &ModuleRef, _name: &str) -> Option<ModuleRef> {
        None
    }

    fn module_files(&self, map: &ModuleMap, module: &ModuleRef) -> Vec<crate::db::SourceFile> {
        match module {
            ModuleRef::File(f) => vec![*f],
            ModuleRef::Dir(d) => d
                .strip_suffix(SELF_MODULE)
                .and_then(|path| map.file(path))
                .into_iter()
                .collect(),
        }
    }

    fn is_public(&self, def: &Def) -> bool {
        // Exported (only exported names have keys), and not a `private` or `#private` member.
        let private = def.name.starts_with('#')
            || def.signature.as_deref().is_some_and(|sig| {
                sig.split_whitespace()
                    .take_while(|w| MODIFIERS.contains(w))
                    .any(|w| w == "private")
            });
        def.is_public() && !private
    }

    fn glob_exports(&self, name: &str) -> bool {
        // `export *` re-exports everything a module exports except its default export.
        name != "default"
    }
}

// ---- module resolution ----------------------------------------------------------------------

/// Extensions tried, in order, after a specifier without one.
const EXTENSIONS: &[&str] = &[
    ".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mjs", ".cjs", ".mts", ".cts", ".d.mts", ".d.cts",
];

/// Suffix of the module a file's own export aliases resolve through (`export { a as b }`,
/// `export default a`, `exports.x`): `ModuleRef::Dir("<path>#self")`, whose only file is the
/// file itself. A distinct module keeps the resolver from reading the alias as a package
/// importing its own submodule.
const SELF_MODULE: &str = "#self";

/// Where a module specifier written in the file at `from_path` points. The empty specifier is
/// the importing file itself (see [`SELF_MODULE`]).
fn resolve_specifier(map: &ModuleMap, from_path: &str, spec: &str) -> ModuleResolution {
    if spec.is_empty() {
        return match map.file(from_path) {
            Some(_) => ModuleResolution::Project(ModuleRef::Dir(
                format!("{from_path}{SELF_MODULE}").into(),
            )),
            None => ModuleResolution::Missing,
        };
    }
    let spec = spec.split(['?', '#']).next().unwrap_or(spec);
    if spec.is_empty() {
        return ModuleResolution::External;
    }
    let relative = spec == "." || spec == ".." || spec.starts_with("./") || spec.starts_with("../");
    if relative {
        let Some(base) = normalize(&join(parent_dir(from_path), spec)) else {
            return ModuleResolution::Missing;
        };
        return match resolve_path(map, &base) {
            Some(f) => ModuleResolution::Project(f),
            None if is_asset(spec) => ModuleResolution::External,
            None => ModuleResolution::Missing,
        };
    }
    if spec.starts_with('/') || spec.contains(':') {
        // Absolute paths and URL-like specifiers (`node:fs`, `https://…`) are outside.
        return ModuleResolution::External;
    }
    if let Some(config) = tsconfig_for(map, from_path) {
        if let Some(targets) = config.match_paths(spec) {
            for target in targets {
                if let Some(base) = normalize(&target)
                    && let Some(f) = resolve_path(map, &base)
                {
                    return ModuleResolution::Project(f);
                }
            }
            if !is_asset(spec) {
                return ModuleResolution::Missing;
            }
        }
        if let Some(base_url) = &config.base_url
            && let Some(base) = normalize(&join(base_url, spec))
            && let Some(f) = resolve_path(map, &base)
        {
            return ModuleResolution::Project(f);
        }
    }
    ModuleResolution::External
}

/// Non-code imports (`./styles.css`, `./data.json`): never project modules the engine reads.
fn is_asset(spec: &str) -> bool {
    let base = spec.rsplit('/').next().unwrap_or(spec);
    match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => matches!(
            ext.to_ascii_lowercase().as_str(),
            "css"
                | "scss"
                | "sass"
                | "less"
                | "styl"
                | "json"
                | "json5"
                | "svg"
                | "png"
                | "jpg"
                | "jpeg"
                | "gif"
                | "webp"
                | "avif"
                | "bmp"
                | "ico"
                | "html"
                | "htm"
                | "md"
                | "mdx"
                | "txt"
                | "csv"
                | "xml"
                | "yaml"
                | "yml"
                | "toml"
                | "wasm"
                | "graphql"
                | "gql"
                | "vue"
                | "svelte"
                | "astro"
                | "woff"
                | "woff2"
                | "ttf"
                | "otf"
                | "eot"
                | "mp3"
                | "mp4"
                | "wav"
                | "ogg"
                | "webm"
                | "glsl"
                | "wgsl"
                | "node"
        ),
        _ => false,
    }
}

/// The file a path without or with an extension names: the file itself, `.js` written for a
/// `.ts` source, an added extension, the directory's `package.json` entry, or its `index`.
fn resolve_path(map: &ModuleMap, base: &str) -> Option<ModuleRef> {
    let file = |p: &str| map.file(p).map(ModuleRef::File);
    let base = base.trim_end_matches('/');
    if !base.is_empty() {
        let stem_ext = base.rsplit_once('.').filter(|(s, _)| !s.ends_with('/'));
        if let Some((stem, ext)) = stem_ext {
            if matches!(
                ext,
                "ts" | "tsx" | "js" | "jsx" | "mjs" | "cjs" | "mts" | "cts"
            ) && let Some(f) = file(base)
            {
                return Some(f);
            }
            let swapped: &[&str] = match ext {
                "js" => &[".ts", ".tsx", ".d.ts"],
                "jsx" => &[".tsx"],
                "mjs" => &[".mts", ".d.mts"],
                "cjs" => &[".cts", ".d.cts"],
                _ => &[],
            };
            for e in swapped {
                if let Some(f) = file(&format!("{stem}{e}")) {
                    return Some(f);
                }
            }
        }
        for e in EXTENSIONS {
            if let Some(f) = file(&format!("{base}{e}")) {
                return Some(f);
            }
        }
    }
    if !base.is_empty() && !map.has_dir(base) {
        return None;
    }
    if let Some(pkg) = map.config(&join(base, "package.json"))
        && let Some(json) = parse_jsonc(pkg)
    {
        for field in ["types", "typings", "module", "main"] {
            if let Some(entry) = json.get(field).and_then(|v| v.as_str())
                && let Some(p) = normalize(&join(base, entry))
                && p != base
            {
                if let Some(f) = file(&p) {
                    return Some(f);
                }
                for e in EXTENSIONS {
                    if let Some(f) = file(&format!("{p}{e}")) {
                        return Some(f);
                    }
                }
            }
        }
    }
    for e in EXTENSIONS {
        if let Some(f) = file(&join(base, &format!("index{e}"))) {
            return Some(f);
        }
    }
    None
}

/// The effective `compilerOptions` of a `tsconfig.json` (after `extends`), with every
/// directory relative to the project root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TsConfig {
    base_url: Option<String>,
    /// `paths` patterns and their targets, already joined with the directory they are
    /// relative to.
    paths: Vec<(String, Vec<String>)>,
}

impl TsConfig {
    /// The targets of the `paths` pattern matching `spec` (an exact pattern first, then the
    /// `*` pattern with the longest prefix), with the `*` substituted.
    fn match_paths(&self, spec: &str) -> Option<Vec<String>> {
        if let Some((_, targets)) = self.paths.iter().find(|(p, _)| p == spec) {
            return Some(targets.clone());
        }
        let mut best: Option<(usize, &str, &[String])> = None;
        for (pattern, targets) in &self.paths {
            let Some((prefix, suffix)) = pattern.split_once('*') else {
                continue;
            };
            if spec.len() >= prefix.len() + suffix.len()
                && spec.starts_with(prefix)
                && spec.ends_with(suffix)
                && best.is_none_or(|(len, _, _)| prefix.len() > len)
            {
                let star = &spec[prefix.len()..spec.len() - suffix.len()];
                best = Some((prefix.len(), star, targets));
            }
        }
        let (_, star, targets) = best?;
        Some(targets.iter().map(|t| t.replacen('*', star, 1)).collect())
    }
}

/// The nearest `tsconfig.json` (or `jsconfig.json`) above `from_path`.
fn tsconfig_for(map: &ModuleMap, from_path: &str) -> Option<Arc<TsConfig>> {
    let mut dir = parent_dir(from_path);
    loop {
        for name in ["tsconfig.json", "jsconfig.json"] {
            let path = join(dir, name);
            if map.config(&path).is_some() {
                return load_tsconfig(map, &path, 0);
            }
        }
        if dir.is_empty() {
            return None;
        }
        dir = parent_dir(dir);
    }
}

/// Parses (with a per-thread cache keyed by the text) the config at `path`.
fn load_tsconfig(map: &ModuleMap, path: &str, depth: u32) -> Option<Arc<TsConfig>> {
    let text = map.config(path)?.clone();
    let cached = TSCONFIGS.with(|c| {
        c.borrow()
            .get(path)
            .filter(|(t, _)| Arc::ptr_eq(t, &text))
            .map(|(_, cfg)| cfg.clone())
    });
    if let Some(cfg) = cached {
        return cfg;
    }
    let cfg = parse_tsconfig(map, path, &text, depth).map(Arc::new);
    TSCONFIGS.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() > 256 {
            cache.clear();
        }
        cache.insert(path.to_owned(), (text, cfg.clone()));
    });
    cfg
}

fn parse_tsconfig(map: &ModuleMap, path: &str, text: &str, depth: u32) -> Option<TsConfig> {
    let json = parse_jsonc(text)?;
    let dir = parent_dir(path);
    let mut cfg = TsConfig::default();
    if depth < 8
        && let Some(ext) = json.get("extends").and_then(|e| e.as_str())
        && (ext.starts_with("./") || ext.starts_with("../"))
    {
        let mut target = join(dir, ext);
        if !target.ends_with(".json") {
            target.push_str(".json");
        }
        if let Some(parent) = normalize(&target).and_then(|p| load_tsconfig(map, &p, depth + 1)) {
            cfg = (*parent).clone();
        }
    }
    let options = json.get("compilerOptions");
    if let Some(base) = options
        .and_then(|o| o.get("baseUrl"))
        .and_then(|b| b.as_str())
    {
        cfg.base_url = normalize(&join(dir, base));
    }
    if let Some(paths) = options
        .and_then(|o| o.get("paths"))
        .and_then(|p| p.as_object())
    {
        // `paths` are relative to `baseUrl` when set, else to the config declaring them.
        let base = cfg.base_url.clone().unwrap_or_else(|| dir.to_owned());
        cfg.paths = paths
            .iter()
            .map(|(pattern, targets)| {
                let targets = targets
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str())
                            .map(|t| join(&base, t))
                            .collect()
                    })
                    .unwrap_or_default();
                (pattern.clone(), targets)
            })
            .collect();
    }
    Some(cfg)
}

/// Parses JSON with comments and trailing commas (`tsconfig.json`, `jsconfig.json`).
fn parse_jsonc(text: &str) -> Option<serde_json::Value> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    // Trailing commas: a comma followed (after whitespace) by `}` or `]`, outside strings.
    let bytes: Vec<char> = out.chars().collect();
    let mut clean = String::with_capacity(out.len());
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            clean.push(c);
            if c == '\\' {
                if let Some(&n) = bytes.get(i + 1) {
                    clean.push(n);
                    i += 1;
                }
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            clean.push(c);
        } else if c == ',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_whitespace());
            if !matches!(next, Some('}') | Some(']')) {
                clean.push(c);
            }
        } else {
            clean.push(c);
        }
        i += 1;
    }
    serde_json::from_str(&clean).ok()
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

/// Resolves `.` and `..` segments; `None` when the path climbs above the root.
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

// ---- the walk ---------------------------------------------------------------------------------

/// What `Walker::declare` needs to create a definition.
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
        }
    }
}

/// How a declaration binds: `var` hoists to the function, the rest bind in the block.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DeclKind {
    Var,
    Let,
    Const,
    Param,
    /// A catch-clause parameter.
    Catch,
}

/// Syntax nesting beyond which the walk goes flat (see `Walker::flat`).
const MAX_NESTING: u32 = 150;

struct Walker<'a> {
    /// Current syntax nesting of the walk.
    depth: u32,
    text: &'a str,
    index: FileIndex,
    scope: ScopeIdx,
    parent: Option<DefIdx>,
    /// The class whose `this` is in effect.
    this_class: Option<DefIdx>,
    /// Definitions exported by their declaration (`export function f`, namespace exports).
    exported: HashSet<DefIdx>,
    /// Module-scope names exported by an export clause, `export default name` or CommonJS.
    export_names: Vec<Name>,
    /// Definitions reachable from other files whatever their name (re-exports, aliases).
    always_keyed: HashSet<DefIdx>,
    /// The file uses ES modules or CommonJS (otherwise it is a script and its top-level
    /// names are globals).
    is_module: bool,
    /// The import of the file by itself (`exports.x` and local export aliases).
    self_import: Option<ImportIdx>,
    /// Namespace body scopes → the namespace definition.
    namespaces: HashMap<ScopeIdx, DefIdx>,
    /// The conditional type whose `infer X` bindings are being collected.
    infer_scope: Option<ScopeIdx>,
    /// Shorthand `{ a }` names (see `FileIndex::shorthand`).
    shorthand: Vec<TextRange>,
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
            this_class: None,
            exported: HashSet::new(),
            export_names: Vec::new(),
            always_keyed: HashSet::new(),
            is_module: false,
            self_import: None,
            namespaces: HashMap::new(),
            infer_scope: None,
            shorthand: Vec::new(),
        }
    }

    /// Gives keys to what other files can reach: exported module-level definitions (all of
    /// them in a script), and the non-private members of keyed containers.
    fn finish(mut self) -> FileIndex {
        let module_names = self.index.scopes[0].names.clone();
        let mut keyed_by_name: HashSet<DefIdx> = HashSet::new();
        for name in &self.export_names {
            if let Some(&d) = module_names.get(name) {
                keyed_by_name.insert(d);
            }
        }
        for i in 0..self.index.defs.len() {
            let idx = i as DefIdx;
            let def = &self.index.defs[i];
            let key = if def.scope == 0 {
                let reachable = self.always_keyed.contains(&idx)
                    || (module_names.get(&def.name) == Some(&idx)
                        && (self.exported.contains(&idx)
                            || keyed_by_name.contains(&idx)
                            || !self.is_module));
                reachable.then(|| def.name.clone())
            } else {
                self.member_key(idx)
            };
            self.index.defs[i].key = key;
        }
        self.index.index_keys();
        self.shorthand.sort();
        self.shorthand.dedup();
        self.index.shorthand = std::mem::take(&mut self.shorthand);
        // `exports.x` naming nothing this file exports (and no `export *` could supply it):
        // an unknown property, not a broken import.
        if let Some(own) = self.self_import
            && self.index.reexports.is_empty()
        {
            let exported: HashSet<Name> = self
                .index
                .defs
                .iter()
                .filter(|d| d.scope == 0 && d.key.is_some())
                .map(|d| d.name.clone())
                .collect();
            for r in &mut self.index.refs {
                if r.qualifier == Qualifier::ImportMember(own) && !exported.contains(&r.name) {
                    r.qualifier = Qualifier::Unknown;
                }
            }
        }
        self.index
    }

    /// `Container.member` for a member of a keyed class, interface, enum or namespace.
    fn member_key(&self, idx: DefIdx) -> Option<Name> {
        let def = self.index.def(idx)?;
        let scope = self.index.scope(def.scope)?;
        let owner = match self.namespaces.get(&def.scope) {
            Some(&ns) => {
                if !self.exported.contains(&idx) || scope.names.get(&def.name) != Some(&idx) {
                    return None;
                }
                ns
            }
            None => {
                if scope.kind != ScopeKind::Class {
                    return None;
                }
                scope.owner?
            }
        };
        let owner_key = self.index.def(owner)?.key.clone()?;
        Some(Name::from(format!("{owner_key}.{}", def.name)))
    }

    fn new_scope(&mut self, kind: ScopeKind, node: Node<'_>, owner: Option<DefIdx>) -> ScopeIdx {
        let idx = self.index.scopes.len() as ScopeIdx;
        self.index
            .scopes
            .push(Scope::new(kind, node_range(node), Some(self.scope), owner));
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

    fn push_import(&mut self, module: Name, kind: ImportKind, node: Node<'_>) -> ImportIdx {
        // A `require` inside a function body does not turn a script into a module (that would
        // let a body edit change what the file exports).
        if self.var_scope() == 0 {
            self.is_module = true;
        }
        let idx = self.index.imports.len() as ImportIdx;
        self.index.imports.push(Import {
            module,
            level: 0,
            kind,
            scope: self.scope,
            range: node_range(node),
        });
        idx
    }

    /// The file importing itself, for names exported under another name.
    fn self_import(&mut self, node: Node<'_>) -> ImportIdx {
        if let Some(i) = self.self_import {
            return i;
        }
        let idx = self.index.imports.len() as ImportIdx;
        self.index.imports.push(Import {
            module: "".into(),
            level: 0,
            kind: ImportKind::Module { alias: None },
            scope: 0,
            range: node_range(node),
        });
        self.self_import = Some(idx);
        idx
    }

    /// The nearest scope `var` declarations hoist to: a function, the module, or a namespace.
    fn var_scope(&self) -> ScopeIdx {
        let mut s = self.scope;
        let mut guard = 0;
        while let Some(scope) = self.index.scope(s) {
            if matches!(
                scope.kind,
                ScopeKind::Function | ScopeKind::Lambda | ScopeKind::Module
            ) || self.namespaces.contains_key(&s)
            {
                return s;
            }
            guard += 1;
            match scope.parent {
                Some(p) if guard < 10_000 => s = p,
                _ => break,
            }
        }
        0
    }

    /// Binds a name in `target`: a new definition the first time, a write reference after.
    fn declare(&mut self, target: ScopeIdx, spec: Binding) -> Option<DefIdx> {
        let owner = self.index.scope(target).and_then(|s| s.owner);
        let is_class = self
            .index
            .scope(target)
            .is_some_and(|s| s.kind == ScopeKind::Class);
        if self
            .index
            .scope(target)
            .is_some_and(|s| s.names.contains_key(&spec.name))
        {
            let q = match (is_class, owner) {
                (true, Some(o)) => Qualifier::SelfOf(o),
                _ => Qualifier::None,
            };
            self.push_ref(spec.name, spec.name_range, q, true);
            return None;
        }
        let parent = if is_class || self.namespaces.contains_key(&target) {
            owner
        } else {
            self.parent
        };
        let idx = self.push_def(target, parent, spec);
        if let Some(s) = self.index.scopes.get_mut(target as usize) {
            let name = self.index.defs[idx as usize].name.clone();
            s.names.insert(name, idx);
        }
        Some(idx)
    }

    /// A definition not bound to any scope name (re-exports, `export default`, `exports.x`).
    fn push_def(&mut self, scope: ScopeIdx, parent: Option<DefIdx>, spec: Binding) -> DefIdx {
        let idx = self.index.defs.len() as DefIdx;
        self.index.defs.push(Def {
            name: spec.name,
            kind: spec.kind,
            name_range: spec.name_range,
            full_range: spec.full_range,
            parent,
            scope,
            body: None,
            doc: spec.doc,
            signature: spec.signature,
            import: spec.import,
            key: None,
            bases: spec.bases,
            doc_insert: spec.doc_insert,
        });
        idx
    }

    fn set_body(&mut self, def: Option<DefIdx>, scope: ScopeIdx) {
        if let Some(d) = def
            && let Some(dd) = self.index.defs.get_mut(d as usize)
        {
            dd.body = Some(scope);
        }
    }

    /// The JSDoc comment right before `item` (skipping decorators), and where one would go.
    fn jsdoc(&self, item: Node<'_>) -> (Option<String>, Option<u32>) {
        let mut start = item;
        let mut prev = item.prev_named_sibling();
        while let Some(p) = prev {
            if p.kind_str() == "decorator" {
                start = p;
                prev = p.prev_named_sibling();
            } else {
                break;
            }
        }
        let insert = u32::try_from(start.start_byte()).ok();
        if let Some(p) = prev
            && p.kind_str() == "comment"
        {
            let text = self.src(p);
            let between = self
                .text
                .get(p.end_byte()..start.start_byte())
                .unwrap_or("x");
            if text.starts_with("/**") && between.trim().is_empty() {
                return (Some(clean_jsdoc(text)), insert);
            }
        }
        (None, insert)
    }

    /// The node a declaration's documentation is attached to (its `export` statement, if any).
    fn doc_item<'t>(node: Node<'t>) -> Node<'t> {
        let mut item = node;
        while let Some(p) = item.parent() {
            if matches!(p.kind_str(), "export_statement" | "ambient_declaration") {
                item = p;
            } else {
                break;
            }
        }
        item
    }

    // ---- statements ---------------------------------------------------------------------

    fn statements(&mut self, node: Node<'_>) {
        let mut cursor = node.walk();
        for c in node.named_children(&mut cursor) {
            self.stmt(c);
        }
    }

    /// A block with its own scope.
    fn block(&mut self, node: Node<'_>) {
        let scope = self.new_scope(ScopeKind::Block, node, None);
        let saved = self.scope;
        self.scope = scope;
        self.statements(node);
        self.scope = saved;
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

    /// Deeply nested code (generated tables, long operator chains, minified bundles): every
    /// identifier is a plain name reference, walked without recursion so the stack cannot
    /// overflow.
    fn flat(&mut self, node: Node<'_>) {
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            if matches!(n.kind_str(), "identifier" | "type_identifier") {
                self.push_ref(self.name(n), node_range(n), Qualifier::None, false);
                continue;
            }
            if matches!(
                n.kind_str(),
                "string" | "comment" | "template_string" | "regex" | "property_identifier"
            ) {
                continue;
            }
            let mut cursor = n.walk();
            let children: Vec<Node<'_>> = n.named_children(&mut cursor).collect();
            stack.extend(children.into_iter().rev());
        }
    }

    fn stmt_inner(&mut self, node: Node<'_>) {
        match node.kind_str() {
            "import_statement" => self.import_statement(node),
            "export_statement" => self.export_statement(node),
            "function_declaration"
            | "generator_function_declaration"
            | "function_signature"
            | "function_expression"
            | "function"
            | "generator_function" => {
                self.function(node, true);
            }
            "class_declaration" | "abstract_class_declaration" | "class" => {
                self.class(node, true);
            }
            "interface_declaration" => self.interface(node),
            "type_alias_declaration" => self.type_alias(node),
            "enum_declaration" => self.enum_decl(node),
            "lexical_declaration" | "variable_declaration" => self.declaration(node),
            "internal_module" | "module" => self.namespace(node),
            "ambient_declaration" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    self.stmt(c);
                }
            }
            "import_alias" => self.import_alias(node),
            "expression_statement" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    match c.kind_str() {
                        "internal_module" | "module" => self.namespace(c),
                        "assignment_expression" if self.scope == 0 && self.cjs_export(c) => {}
                        "call_expression" if self.scope == 0 && self.cjs_call(c) => {}
                        _ => {
                            self.expr(c);
                        }
                    }
                }
            }
            "statement_block" => self.block(node),
            "for_statement" => {
                let scope = self.new_scope(ScopeKind::Block, node, None);
                let saved = self.scope;
                self.scope = scope;
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    self.node(c);
                }
                self.scope = saved;
            }
            "for_in_statement" => {
                let scope = self.new_scope(ScopeKind::Block, node, None);
                let saved = self.scope;
                self.scope = scope;
                if let Some(r) = node.field("right") {
                    self.expr(r);
                }
                let kind = node.field("kind").map(|k| self.src(k));
                if let Some(l) = node.field("left") {
                    match kind {
                        Some("var") => self.pattern(l, DeclKind::Var, node, None),
                        Some("const") => self.pattern(l, DeclKind::Const, node, None),
                        Some(_) => self.pattern(l, DeclKind::Let, node, None),
                        None => self.assign_target(l),
                    }
                }
                if let Some(b) = node.field("body") {
                    self.stmt(b);
                }
                self.scope = saved;
            }
            "catch_clause" => {
                let scope = self.new_scope(ScopeKind::Block, node, None);
                let saved = self.scope;
                self.scope = scope;
                if let Some(p) = node.field("parameter") {
                    self.pattern(p, DeclKind::Catch, node, None);
                }
                if let Some(t) = node.field("type") {
                    self.expr(t);
                }
                if let Some(b) = node.field("body") {
                    self.statements(b);
                }
                self.scope = saved;
            }
            "switch_body" => self.block(node),
            "switch_case" | "switch_default" => {
                if let Some(v) = node.field("value") {
                    self.expr(v);
                }
                let mut cursor = node.walk();
                let children: Vec<Node<'_>> =
                    node.children_by_field_name("body", &mut cursor).collect();
                for c in children {
                    self.stmt(c);
                }
            }
            "labeled_statement" => {
                if let Some(b) = node.field("body") {
                    self.stmt(b);
                }
            }
            "comment"
            | "empty_statement"
            | "debugger_statement"
            | "break_statement"
            | "continue_statement"
            | "hash_bang_line"
            | "statement_identifier" => {}
            k if is_statement(k) => self.children(node),
            _ => {
                self.expr(node);
            }
        }
    }

    /// Any node: statements go to `stmt`, the rest to `expr`.
    fn node(&mut self, node: Node<'_>) {
        if is_statement(node.kind_str()) {
            self.stmt(node);
        } else {
            self.expr(node);
        }
    }

    fn children(&mut self, node: Node<'_>) {
        let mut cursor = node.walk();
        for c in node.named_children(&mut cursor) {
            self.node(c);
        }
    }

    // ---- declarations -------------------------------------------------------------------

    fn decl_target(&self, kind: DeclKind) -> ScopeIdx {
        match kind {
            DeclKind::Var => self.var_scope(),
            _ => self.scope,
        }
    }

    /// `let`/`const`/`var` declarations, with `require` imports.
    fn declaration(&mut self, node: Node<'_>) {
        let kind_text = node.field("kind").map(|k| self.src(k)).unwrap_or("var");
        let kind = match kind_text {
            "var" => DeclKind::Var,
            "const" => DeclKind::Const,
            _ => DeclKind::Let,
        };
        let item = Self::doc_item(node);
        let (doc, doc_insert) = self.jsdoc(item);
        let mut cursor = node.walk();
        let declarators: Vec<Node<'_>> = node
            .named_children(&mut cursor)
            .filter(|c| c.kind_str() == "variable_declarator")
            .collect();
        for d in declarators {
            let Some(name) = d.field("name") else {
                continue;
            };
            let value = d.field("value");
            if let Some(v) = value
                && self.require_declaration(kind, name, v, node)
            {
                continue;
            }
            let annotation = d.field("type");
            if let Some(t) = annotation {
                self.expr(t);
            }
            let mut bases = annotation
                .and_then(|t| self.type_name(t))
                .into_iter()
                .collect::<Vec<_>>();
            if bases.is_empty()
                && let Some(v) = value
                && v.kind_str() == "new_expression"
                && let Some(c) = v.field("constructor")
                && matches!(c.kind_str(), "identifier" | "member_expression")
                && is_dotted(self.src(c))
            {
                bases.push(self.name(c));
            }
            if let Some(v) = value {
                self.expr(v);
            }
            if name.kind_str() == "identifier" {
                let id_name = self.name(name);
                let is_fn = value.is_some_and(|v| {
                    matches!(
                        v.kind_str(),
                        "arrow_function"
                            | "function_expression"
                            | "function"
                            | "generator_function"
                    )
                });
                let sym = if is_fn {
                    SymbolKind::Function
                } else if kind == DeclKind::Const
                    && self.scope == 0
                    && id_name.len() > 1
                    && id_name
                        .chars()
                        .all(|c| c.is_uppercase() || c == '_' || c.is_ascii_digit())
                {
                    SymbolKind::Constant
                } else {
                    SymbolKind::Variable
                };
                let mut spec = Binding::new(id_name, sym, node_range(name), node_range(node));
                let sig_end = match value {
                    Some(v) if is_fn => v
                        .field("return_type")
                        .or_else(|| v.field("parameters"))
                        .or_else(|| v.field("parameter"))
                        .map(|n| n.end_byte())
                        .unwrap_or(d.end_byte()),
                    _ => d.end_byte(),
                };
                let head = self.text.get(d.start_byte()..sig_end).unwrap_or("");
                spec.signature = Some(truncate(
                    &format!("{kind_text} {}", first_line(&collapse_ws(head))),
                    160,
                ));
                spec.doc = doc.clone();
                spec.doc_insert = doc_insert;
                spec.bases = bases;
                let target = self.decl_target(kind);
                self.declare(target, spec);
            } else {
                self.pattern(name, kind, node, None);
            }
        }
    }

    /// `const x = require('m')`, `const { a, b: c } = require('m')`, `const y = require('m').y`.
    fn require_declaration(
        &mut self,
        kind: DeclKind,
        name: Node<'_>,
        value: Node<'_>,
        stmt: Node<'_>,
    ) -> bool {
        let (call, member) = match value.kind_str() {
            "call_expression" => (value, None),
            "member_expression" => match value.field("object") {
                Some(o) if self.require_source(o).is_some() => (o, value.field("property")),
                _ => return false,
            },
            _ => return false,
        };
        let Some(source) = self.require_source(call) else {
            return false;
        };
        let module = self.name(source);
        let target = self.decl_target(kind);
        let signature = Some(truncate(&collapse_ws(self.src(stmt)), 160));
        match (name.kind_str(), member) {
            ("identifier", None) => {
                let alias = self.name(name);
                let imp = self.push_import(
                    module,
                    ImportKind::Module {
                        alias: Some(alias.clone()),
                    },
                    source,
                );
                let mut spec = Binding::new(
                    alias,
                    SymbolKind::Import,
                    node_range(name),
                    node_range(stmt),
                );
                spec.import = Some(imp);
                spec.signature = signature;
                self.declare(target, spec);
            }
            ("identifier", Some(prop)) => {
                let imported = self.name(prop);
                let local = self.name(name);
                let imp = self.push_import(
                    module,
                    ImportKind::From {
                        name: imported.clone(),
                        alias: Some(local.clone()),
                    },
                    source,
                );
                let mut spec = Binding::new(
                    local,
                    SymbolKind::Import,
                    node_range(name),
                    node_range(stmt),
                );
                spec.import = Some(imp);
                spec.signature = signature;
                self.declare(target, spec);
                self.push_ref(
                    imported,
                    node_range(prop),
                    Qualifier::ImportMember(imp),
                    false,
                );
            }
            ("object_pattern", None) => {
                let mut cursor = name.walk();
                for p in name.named_children(&mut cursor) {
                    let (imported, local) = match p.kind_str() {
                        "shorthand_property_identifier_pattern" => (p, p),
                        "pair_pattern" => match (p.field("key"), p.field("value")) {
                            (Some(k), Some(v))
                                if k.kind_str() == "property_identifier"
                                    && v.kind_str() == "identifier" =>
                            {
                                (k, v)
                            }
                            _ => {
                                self.pattern(p, kind, stmt, None);
                                continue;
                            }
                        },
                        _ => {
                            self.pattern(p, kind, stmt, None);
                            continue;
                        }
                    };
                    let imported_name = self.name(imported);
                    let local_name = self.name(local);
                    let alias = (imported != local).then(|| local_name.clone());
                    let imp = self.push_import(
                        module.clone(),
                        ImportKind::From {
                            name: imported_name.clone(),
                            alias,
                        },
                        source,
                    );
                    let mut spec = Binding::new(
                        local_name,
                        SymbolKind::Import,
                        node_range(local),
                        node_range(stmt),
                    );
                    spec.import = Some(imp);
                    spec.signature = signature.clone();
                    self.declare(target, spec);
                    self.push_ref(
                        imported_name,
                        node_range(imported),
                        Qualifier::ImportMember(imp),
                        false,
                    );
                }
            }
            _ => return false,
        }
        true
    }

    /// The string node of `require('m')` (or `import('m')`).
    fn require_source<'t>(&self, call: Node<'t>) -> Option<Node<'t>> {
        if call.kind_str() != "call_expression" {
            return None;
        }
        let function = call.field("function")?;
        if !(function.kind_str() == "import"
            || function.kind_str() == "identifier" && self.src(function) == "require")
        {
            return None;
        }
        let args = call.field("arguments")?;
        if args.named_child_count() != 1 {
            return None;
        }
        let s = args.named_child(0)?;
        if s.kind_str() != "string" {
            return None;
        }
        string_fragment(s)
    }

    /// Binding positions: identifiers, object/array patterns, defaults, rest elements.
    fn pattern(&mut self, node: Node<'_>, kind: DeclKind, stmt: Node<'_>, sig: Option<String>) {
        if self.depth > MAX_NESTING {
            self.flat(node);
            return;
        }
        self.depth += 1;
        self.pattern_inner(node, kind, stmt, sig);
        self.depth -= 1;
    }

    fn pattern_inner(
        &mut self,
        node: Node<'_>,
        kind: DeclKind,
        stmt: Node<'_>,
        sig: Option<String>,
    ) {
        match node.kind_str() {
            "identifier" | "shorthand_property_identifier_pattern" => {
                if node.kind_str() == "shorthand_property_identifier_pattern" {
                    self.shorthand.push(node_range(node));
                }
                let sym = match kind {
                    DeclKind::Param => SymbolKind::Parameter,
                    _ => SymbolKind::Variable,
                };
                let mut spec =
                    Binding::new(self.name(node), sym, node_range(node), node_range(stmt));
                spec.signature = sig.or_else(|| Some(truncate(&collapse_ws(self.src(stmt)), 120)));
                let target = self.decl_target(kind);
                self.declare(target, spec);
            }
            "object_pattern" | "array_pattern" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    self.pattern(c, kind, stmt, None);
                }
            }
            "pair_pattern" => {
                if let Some(k) = node.field("key")
                    && k.kind_str() == "computed_property_name"
                {
                    self.expr(k);
                }
                if let Some(v) = node.field("value") {
                    self.pattern(v, kind, stmt, None);
                }
            }
            "assignment_pattern" | "object_assignment_pattern" => {
                if let Some(r) = node.field("right") {
                    self.expr(r);
                }
                if let Some(l) = node.field("left") {
                    self.pattern(l, kind, stmt, None);
                }
            }
            "rest_pattern" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    self.pattern(c, kind, stmt, None);
                }
            }
            "comment" => {}
            _ => self.assign_target(node),
        }
    }

    /// An assignment's left side (not a declaration): write references.
    fn assign_target(&mut self, node: Node<'_>) {
        if self.depth > MAX_NESTING {
            self.flat(node);
            return;
        }
        self.depth += 1;
        self.assign_target_inner(node);
        self.depth -= 1;
    }

    fn assign_target_inner(&mut self, node: Node<'_>) {
        match node.kind_str() {
            "identifier" | "shorthand_property_identifier_pattern" => {
                if node.kind_str() == "shorthand_property_identifier_pattern" {
                    self.shorthand.push(node_range(node));
                }
                self.push_ref(self.name(node), node_range(node), Qualifier::None, true);
            }
            "object_pattern" | "array_pattern" | "rest_pattern" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    self.assign_target(c);
                }
            }
            "pair_pattern" => {
                if let Some(k) = node.field("key")
                    && k.kind_str() == "computed_property_name"
                {
                    self.expr(k);
                }
                if let Some(v) = node.field("value") {
                    self.assign_target(v);
                }
            }
            "assignment_pattern" | "object_assignment_pattern" => {
                if let Some(r) = node.field("right") {
                    self.expr(r);
                }
                if let Some(l) = node.field("left") {
                    self.assign_target(l);
                }
            }
            "member_expression" => self.member_assign(node),
            "parenthesized_expression" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    self.assign_target(c);
                }
            }
            _ => {
                self.expr(node);
            }
        }
    }

    /// `this.x = …` inside a class declares `x` as a member when the class has none yet.
    fn member_assign(&mut self, node: Node<'_>) {
        let object = node.field("object");
        let prop = node.field("property");
        if let (Some(o), Some(p), Some(class)) = (object, prop, self.this_class)
            && o.kind_str() == "this"
            && matches!(
                p.kind_str(),
                "property_identifier" | "private_property_identifier"
            )
            && let Some(body) = self.index.def(class).and_then(|d| d.body)
        {
            let name = self.name(p);
            if self
                .index
                .scope(body)
                .is_some_and(|s| s.names.contains_key(&name))
            {
                self.push_ref(name, node_range(p), Qualifier::SelfOf(class), true);
                return;
            }
            let stmt = node.parent().and_then(|a| a.parent()).unwrap_or(node);
            let mut spec = Binding::new(
                name.clone(),
                SymbolKind::Field,
                node_range(p),
                node_range(stmt),
            );
            spec.signature = Some(truncate(&collapse_ws(first_line(self.src(stmt))), 120));
            self.declare(body, spec);
            return;
        }
        self.expr(node);
    }

    fn type_params(&mut self, node: Node<'_>) {
        let Some(tp) = node.field("type_parameters") else {
            return;
        };
        let mut cursor = tp.walk();
        for p in tp.named_children(&mut cursor) {
            if p.kind_str() != "type_parameter" {
                continue;
            }
            for field in ["constraint", "value"] {
                if let Some(c) = p.field(field) {
                    self.expr(c);
                }
            }
            if let Some(n) = p.field("name") {
                let spec = Binding::new(
                    self.name(n),
                    SymbolKind::TypeAlias,
                    node_range(n),
                    node_range(p),
                );
                let scope = self.scope;
                self.declare(scope, spec);
            }
        }
    }

    /// A scope for the type parameters of a class, interface or type alias, when it has some.
    fn type_param_scope(&mut self, node: Node<'_>) -> Option<ScopeIdx> {
        node.field("type_parameters")?;
        let scope = self.new_scope(ScopeKind::Block, node, None);
        let saved = self.scope;
        self.scope = scope;
        self.type_params(node);
        self.scope = saved;
        Some(scope)
    }

    /// Functions, methods, arrow functions; `bind` declares the name in the current scope.
    fn function(&mut self, node: Node<'_>, bind: bool) -> Option<DefIdx> {
        let name_node = node.field("name");
        let is_decl = matches!(
            node.kind_str(),
            "function_declaration" | "generator_function_declaration" | "function_signature"
        );
        let mut def = None;
        if let Some(n) = name_node
            && bind
            && is_decl
        {
            let item = Self::doc_item(node);
            let (doc, doc_insert) = self.jsdoc(item);
            let mut spec = Binding::new(
                self.name(n),
                SymbolKind::Function,
                node_range(n),
                node_range(node),
            );
            spec.signature = Some(self.function_signature(node));
            spec.doc = doc;
            spec.doc_insert = doc_insert;
            let scope = self.scope;
            def = self.declare(scope, spec);
        }
        let scope = self.new_scope(ScopeKind::Function, node, def);
        self.set_body(def, scope);
        let saved = (self.scope, self.parent, self.this_class);
        self.scope = scope;
        if def.is_some() {
            self.parent = def;
        }
        self.this_class = None;
        // A named function expression binds its name inside itself.
        if let Some(n) = name_node
            && !is_decl
            && n.kind_str() == "identifier"
        {
            let spec = Binding::new(
                self.name(n),
                SymbolKind::Function,
                node_range(n),
                node_range(node),
            );
            self.declare(scope, spec);
        }
        self.function_rest(node, None);
        (self.scope, self.parent, self.this_class) = saved;
        def
    }

    /// Type parameters, parameters, return type and body of a function whose scope is current.
    /// `ctor_class` is the class of a constructor (parameter properties become its fields).
    fn function_rest(&mut self, node: Node<'_>, ctor_class: Option<DefIdx>) {
        self.type_params(node);
        if let Some(params) = node.field("parameters") {
            self.parameters(params, ctor_class);
        } else if let Some(p) = node.field("parameter") {
            self.pattern(p, DeclKind::Param, p, None);
        }
        if let Some(r) = node.field("return_type") {
            self.expr(r);
        }
        if let Some(body) = node.field("body") {
            if body.kind_str() == "statement_block" {
                self.statements(body);
            } else {
                self.expr(body);
            }
        }
    }

    fn parameters(&mut self, params: Node<'_>, ctor_class: Option<DefIdx>) {
        let mut cursor = params.walk();
        for p in params.named_children(&mut cursor) {
            match p.kind_str() {
                "required_parameter" | "optional_parameter" => {
                    let mut cursor = p.walk();
                    let decorators: Vec<Node<'_>> = p
                        .named_children(&mut cursor)
                        .filter(|c| c.kind_str() == "decorator")
                        .collect();
                    for d in decorators {
                        self.children(d);
                    }
                    for field in ["type", "value"] {
                        if let Some(v) = p.field(field) {
                            self.expr(v);
                        }
                    }
                    let Some(pattern) = p.field("pattern") else {
                        continue;
                    };
                    if pattern.kind_str() == "this" {
                        continue;
                    }
                    let mut cursor = p.walk();
                    let modifiers: Vec<&str> = p
                        .children(&mut cursor)
                        .filter(|c| {
                            matches!(
                                c.kind_str(),
                                "accessibility_modifier" | "override_modifier" | "readonly"
                            )
                        })
                        .map(|c| self.src(c))
                        .collect();
                    let sig = Some(truncate(&collapse_ws(self.src(p)), 120));
                    if let (Some(class), false, "identifier") =
                        (ctor_class, modifiers.is_empty(), pattern.kind_str())
                    {
                        self.parameter_property(class, pattern, p);
                    } else if pattern.kind_str() == "identifier" {
                        // `p: Type`: members of `p` are looked up in `Type`.
                        let mut spec = Binding::new(
                            self.name(pattern),
                            SymbolKind::Parameter,
                            node_range(pattern),
                            node_range(p),
                        );
                        spec.signature = sig;
                        spec.bases = p
                            .field("type")
                            .and_then(|t| self.type_name(t))
                            .into_iter()
                            .collect();
                        let scope = self.scope;
                        self.declare(scope, spec);
                    } else {
                        self.pattern(pattern, DeclKind::Param, p, sig);
                    }
                }
                "comment" => {}
                _ => self.pattern(p, DeclKind::Param, p, None),
            }
        }
    }

    /// `constructor(private readonly x: T)`: a field of the class, also bound as the
    /// constructor's parameter.
    fn parameter_property(&mut self, class: DefIdx, id: Node<'_>, param: Node<'_>) {
        let Some(body) = self.index.def(class).and_then(|d| d.body) else {
            self.pattern(id, DeclKind::Param, param, None);
            return;
        };
        let mut spec = Binding::new(
            self.name(id),
            SymbolKind::Field,
            node_range(id),
            node_range(param),
        );
        spec.signature = Some(truncate(&collapse_ws(self.src(param)), 120));
        spec.bases = param
            .field("type")
            .and_then(|t| self.type_name(t))
            .into_iter()
            .collect();
        let field = match self.declare(body, spec) {
            Some(f) => f,
            None => {
                let name = self.name(id);
                match self.index.scope(body).and_then(|s| s.names.get(&name)) {
                    Some(&f) => f,
                    None => return,
                }
            }
        };
        let name = self.name(id);
        let scope = self.scope;
        if let Some(s) = self.index.scopes.get_mut(scope as usize) {
            s.names.entry(name).or_insert(field);
        }
    }

    fn function_signature(&self, node: Node<'_>) -> String {
        let end = node
            .field("return_type")
            .or_else(|| node.field("parameters"))
            .or_else(|| node.field("name"))
            .map(|n| n.end_byte())
            .unwrap_or(node.end_byte());
        truncate(
            &collapse_ws(self.text.get(node.start_byte()..end).unwrap_or("")),
            200,
        )
    }

    /// The name of a simple type annotation (`: Foo`, `: ns.Foo`, `: Foo<T>`), for member
    /// lookups on variables of that type.
    fn type_name(&self, annotation: Node<'_>) -> Option<Name> {
        let t = if annotation.kind_str() == "type_annotation" {
            annotation.named_child(0)?
        } else {
            annotation
        };
        let t = if t.kind_str() == "generic_type" {
            t.field("name")?
        } else {
            t
        };
        matches!(t.kind_str(), "type_identifier" | "nested_type_identifier")
            .then(|| self.src(t))
            .filter(|s| is_dotted(s))
            .map(Name::from)
    }

    fn class(&mut self, node: Node<'_>, bind: bool) -> Option<DefIdx> {
        let name_node = node.field("name");
        let mut bases = Vec::new();
        let mut cursor = node.walk();
        let decorators: Vec<Node<'_>> = node
            .named_children(&mut cursor)
            .filter(|c| c.kind_str() == "decorator")
            .collect();
        for d in decorators {
            self.children(d);
        }
        let mut cursor = node.walk();
        let heritage = node
            .named_children(&mut cursor)
            .find(|c| c.kind_str() == "class_heritage");
        // Type parameters are visible in the heritage clause and the whole body.
        let saved_scope = self.scope;
        let tp_scope = self.type_param_scope(node);
        if let Some(s) = tp_scope {
            self.scope = s;
        }
        if let Some(h) = heritage {
            self.heritage(h, &mut bases);
        }
        self.scope = saved_scope;
        let body = node.field("body");
        let mut def = None;
        if let Some(n) = name_node
            && bind
            && node.kind_str() != "class"
        {
            let item = Self::doc_item(node);
            let (doc, doc_insert) = self.jsdoc(item);
            let sig_end = body.map(|b| b.start_byte()).unwrap_or(n.end_byte());
            let mut spec = Binding::new(
                self.name(n),
                SymbolKind::Class,
                node_range(n),
                node_range(node),
            );
            spec.signature = Some(truncate(
                &collapse_ws(self.text.get(node.start_byte()..sig_end).unwrap_or("")),
                200,
            ));
            spec.doc = doc;
            spec.doc_insert = doc_insert;
            spec.bases = bases.clone();
            let scope = self.scope;
            def = self.declare(scope, spec);
        }
        let outer = tp_scope.unwrap_or(self.scope);
        // A class expression's own name is visible inside it.
        let outer = match (node.kind_str(), name_node) {
            ("class", Some(n)) => {
                let saved = self.scope;
                self.scope = outer;
                let s = self.new_scope(ScopeKind::Block, node, None);
                self.scope = s;
                let mut spec = Binding::new(
                    self.name(n),
                    SymbolKind::Class,
                    node_range(n),
                    node_range(node),
                );
                spec.bases = bases.clone();
                def = self.declare(s, spec);
                self.scope = saved;
                s
            }
            _ => outer,
        };
        let saved = (self.scope, self.parent, self.this_class);
        self.scope = outer;
        let class_scope = self.new_scope(ScopeKind::Class, body.unwrap_or(node), def);
        self.set_body(def, class_scope);
        if let Some(b) = body {
            self.class_body(b, def, class_scope, outer);
        }
        (self.scope, self.parent, self.this_class) = saved;
        def
    }

    fn heritage(&mut self, h: Node<'_>, bases: &mut Vec<Name>) {
        let mut cursor = h.walk();
        for c in h.named_children(&mut cursor) {
            match c.kind_str() {
                "extends_clause" | "implements_clause" | "extends_type_clause" => {
                    let mut cursor = c.walk();
                    for item in c.named_children(&mut cursor) {
                        let base = if item.kind_str() == "generic_type" {
                            item.field("name")
                        } else {
                            Some(item)
                        };
                        if let Some(b) = base
                            && matches!(
                                b.kind_str(),
                                "identifier"
                                    | "member_expression"
                                    | "type_identifier"
                                    | "nested_type_identifier"
                            )
                            && is_dotted(self.src(b))
                        {
                            bases.push(self.name(b));
                        }
                        self.expr(item);
                    }
                }
                // JavaScript: `class A extends B` has the expression directly.
                "identifier" | "member_expression" => {
                    if is_dotted(self.src(c)) {
                        bases.push(self.name(c));
                    }
                    self.expr(c);
                }
                _ => {
                    self.expr(c);
                }
            }
        }
    }

    /// Members first (so bodies can use any of them through `this`), then initializers and
    /// method bodies.
    fn class_body(
        &mut self,
        body: Node<'_>,
        class: Option<DefIdx>,
        class_scope: ScopeIdx,
        outer: ScopeIdx,
    ) {
        let mut cursor = body.walk();
        let members: Vec<Node<'_>> = body.named_children(&mut cursor).collect();
        self.parent = class;
        let mut declared: Vec<Option<DefIdx>> = Vec::with_capacity(members.len());
        for &m in &members {
            declared.push(self.class_member(m, class_scope));
        }
        self.this_class = class;
        for (&m, def) in members.iter().zip(declared) {
            self.scope = outer;
            match m.kind_str() {
                "decorator" => self.children(m),
                "method_definition" | "method_signature" | "abstract_method_signature" => {
                    if let Some(n) = m.field("name")
                        && n.kind_str() == "computed_property_name"
                    {
                        self.expr(n);
                    }
                    let is_ctor = m
                        .field("name")
                        .is_some_and(|n| self.src(n) == "constructor");
                    self.scope = class_scope;
                    let scope = self.new_scope(ScopeKind::Function, m, def);
                    self.set_body(def, scope);
                    self.scope = scope;
                    let saved_parent = self.parent;
                    if def.is_some() {
                        self.parent = def;
                    }
                    let ctor = if is_ctor { class } else { None };
                    self.function_rest(m, ctor);
                    self.parent = saved_parent;
                }
                "public_field_definition" | "field_definition" => {
                    let mut cursor = m.walk();
                    for c in m.named_children(&mut cursor) {
                        match c.kind_str() {
                            "decorator" => self.children(c),
                            "computed_property_name" => {
                                self.expr(c);
                            }
                            _ => {}
                        }
                    }
                    for field in ["type", "value"] {
                        if let Some(v) = m.field(field) {
                            self.expr(v);
                        }
                    }
                }
                "class_static_block" => {
                    if let Some(b) = m.field("body") {
                        let scope = self.new_scope(ScopeKind::Function, b, None);
                        self.scope = scope;
                        self.statements(b);
                    }
                }
                "index_signature" => self.children(m),
                _ => {}
            }
        }
    }

    /// Declares one class member (method, field, accessor); returns its definition.
    fn class_member(&mut self, m: Node<'_>, class_scope: ScopeIdx) -> Option<DefIdx> {
        let (kind, name_field) = match m.kind_str() {
            "method_definition" | "method_signature" | "abstract_method_signature" => {
                (SymbolKind::Method, "name")
            }
            "public_field_definition" => (SymbolKind::Field, "name"),
            "field_definition" => (SymbolKind::Field, "property"),
            _ => return None,
        };
        let n = m.field(name_field)?;
        if !matches!(
            n.kind_str(),
            "property_identifier" | "private_property_identifier"
        ) {
            return None;
        }
        let name = self.name(n);
        if kind == SymbolKind::Method && &*name == "constructor" {
            return None;
        }
        let (doc, doc_insert) = self.jsdoc(m);
        let mut spec = Binding::new(name.clone(), kind, node_range(n), node_range(m));
        spec.signature = Some(if kind == SymbolKind::Method {
            self.function_signature(m)
        } else {
            truncate(&collapse_ws(first_line(self.src(m))), 120)
        });
        if kind == SymbolKind::Field
            && let Some(t) = m.field("type")
        {
            spec.bases = self.type_name(t).into_iter().collect();
        }
        spec.doc = doc;
        spec.doc_insert = doc_insert;
        let def = self.declare(class_scope, spec);
        // A getter and setter pair (or overloads) share the first definition.
        def.or_else(|| {
            self.index
                .scope(class_scope)
                .and_then(|s| s.names.get(&name).copied())
        })
    }

    fn interface(&mut self, node: Node<'_>) {
        let Some(n) = node.field("name") else {
            return;
        };
        let item = Self::doc_item(node);
        let (doc, doc_insert) = self.jsdoc(item);
        let body = node.field("body");
        let saved_scope = self.scope;
        let tp_scope = self.type_param_scope(node);
        let outer = tp_scope.unwrap_or(saved_scope);
        self.scope = outer;
        let mut bases = Vec::new();
        let mut cursor = node.walk();
        let clauses: Vec<Node<'_>> = node
            .named_children(&mut cursor)
            .filter(|c| c.kind_str() == "extends_type_clause")
            .collect();
        for c in clauses {
            let mut cursor = c.walk();
            for item in c.named_children(&mut cursor) {
                let base = if item.kind_str() == "generic_type" {
                    item.field("name")
                } else {
                    Some(item)
                };
                if let Some(b) = base
                    && matches!(b.kind_str(), "type_identifier" | "nested_type_identifier")
                    && is_dotted(self.src(b))
                {
                    bases.push(self.name(b));
                }
                self.expr(item);
            }
        }
        self.scope = saved_scope;
        let sig_end = body.map(|b| b.start_byte()).unwrap_or(n.end_byte());
        let mut spec = Binding::new(
            self.name(n),
            SymbolKind::Interface,
            node_range(n),
            node_range(node),
        );
        spec.signature = Some(truncate(
            &collapse_ws(self.text.get(node.start_byte()..sig_end).unwrap_or("")),
            200,
        ));
        spec.doc = doc;
        spec.doc_insert = doc_insert;
        spec.bases = bases;
        let def = self.declare(saved_scope, spec);
        let def = def.or_else(|| {
            // Declaration merging: a second `interface I` adds members to the first.
            let name = self.name(n);
            self.index
                .scope(saved_scope)
                .and_then(|s| s.names.get(&name).copied())
                .filter(|&d| {
                    self.index
                        .def(d)
                        .is_some_and(|d| d.kind == SymbolKind::Interface)
                })
        });
        let Some(body) = body else { return };
        let existing = def.and_then(|d| self.index.def(d)).and_then(|d| d.body);
        let saved = (self.scope, self.parent);
        self.scope = outer;
        let class_scope = match existing {
            Some(s) => s,
            None => {
                let s = self.new_scope(ScopeKind::Class, body, def);
                self.set_body(def, s);
                s
            }
        };
        self.parent = def;
        self.type_members(body, class_scope, outer);
        (self.scope, self.parent) = saved;
    }

    /// Members of an interface body or object type: property and method signatures.
    fn type_members(&mut self, body: Node<'_>, class_scope: ScopeIdx, outer: ScopeIdx) {
        let mut cursor = body.walk();
        for m in body.named_children(&mut cursor) {
            self.scope = outer;
            let kind = match m.kind_str() {
                "property_signature" => SymbolKind::Field,
                "method_signature" => SymbolKind::Method,
                "comment" => continue,
                "call_signature" | "construct_signature" => {
                    self.signature(m);
                    continue;
                }
                "index_signature" => {
                    self.index_signature(m);
                    continue;
                }
                _ => {
                    self.children(m);
                    continue;
                }
            };
            if let Some(n) = m.field("name")
                && n.kind_str() == "property_identifier"
            {
                let (doc, doc_insert) = self.jsdoc(m);
                let mut spec = Binding::new(self.name(n), kind, node_range(n), node_range(m));
                spec.signature = Some(truncate(&collapse_ws(self.src(m)), 160));
                spec.doc = doc;
                spec.doc_insert = doc_insert;
                if kind == SymbolKind::Field
                    && let Some(t) = m.field("type")
                {
                    spec.bases = self.type_name(t).into_iter().collect();
                }
                self.declare(class_scope, spec);
            }
            if kind == SymbolKind::Method {
                self.signature(m);
            } else if let Some(t) = m.field("type") {
                self.expr(t);
            }
        }
    }

    /// A signature without a body (method, call and construct signatures, function types):
    /// its own scope holding its type parameters and parameters (which type predicates such
    /// as `x is T` refer to).
    fn signature(&mut self, node: Node<'_>) {
        let saved = self.scope;
        let scope = self.new_scope(ScopeKind::Function, node, None);
        self.scope = scope;
        self.type_params(node);
        if let Some(params) = node.field("parameters") {
            self.parameters(params, None);
        }
        for field in ["return_type", "type"] {
            if let Some(r) = node.field(field) {
                self.expr(r);
            }
        }
        self.scope = saved;
    }

    /// `[key: string]: T` — the key name binds nothing; the types are references.
    fn index_signature(&mut self, node: Node<'_>) {
        let mut cursor = node.walk();
        let parts: Vec<Node<'_>> = node
            .named_children(&mut cursor)
            .filter(|c| c.kind_str() != "identifier" && c.kind_str() != "mapped_type_clause")
            .collect();
        for p in parts {
            self.expr(p);
        }
    }

    fn type_alias(&mut self, node: Node<'_>) {
        let Some(n) = node.field("name") else {
            return;
        };
        let item = Self::doc_item(node);
        let (doc, doc_insert) = self.jsdoc(item);
        let mut spec = Binding::new(
            self.name(n),
            SymbolKind::TypeAlias,
            node_range(n),
            node_range(node),
        );
        spec.signature = Some(truncate(&collapse_ws(self.src(node)), 160));
        spec.doc = doc;
        spec.doc_insert = doc_insert;
        let scope = self.scope;
        self.declare(scope, spec);
        let saved = self.scope;
        if let Some(s) = self.type_param_scope(node) {
            self.scope = s;
        }
        if let Some(v) = node.field("value") {
            self.expr(v);
        }
        self.scope = saved;
    }

    fn enum_decl(&mut self, node: Node<'_>) {
        let Some(n) = node.field("name") else {
            return;
        };
        let item = Self::doc_item(node);
        let (doc, doc_insert) = self.jsdoc(item);
        let body = node.field("body");
        let sig_end = body.map(|b| b.start_byte()).unwrap_or(n.end_byte());
        let mut spec = Binding::new(
            self.name(n),
            SymbolKind::Enum,
            node_range(n),
            node_range(node),
        );
        spec.signature = Some(collapse_ws(
            self.text.get(node.start_byte()..sig_end).unwrap_or(""),
        ));
        spec.doc = doc;
        spec.doc_insert = doc_insert;
        let scope = self.scope;
        let def = self.declare(scope, spec);
        let Some(body) = body else { return };
        let saved = (self.scope, self.parent);
        let class_scope = self.new_scope(ScopeKind::Class, body, def);
        self.set_body(def, class_scope);
        self.parent = def;
        let mut cursor = body.walk();
        for m in body.named_children(&mut cursor) {
            let (name, value) = match m.kind_str() {
                "property_identifier" => (Some(m), None),
                "enum_assignment" => (m.field("name"), m.field("value")),
                _ => continue,
            };
            if let Some(v) = value {
                // Earlier members are visible by bare name in initializers.
                self.scope = class_scope;
                self.expr(v);
            }
            if let Some(n) = name
                && n.kind_str() == "property_identifier"
            {
                let (doc, doc_insert) = self.jsdoc(m);
                let mut spec = Binding::new(
                    self.name(n),
                    SymbolKind::EnumVariant,
                    node_range(n),
                    node_range(m),
                );
                spec.signature = Some(collapse_ws(self.src(m)));
                spec.doc = doc;
                spec.doc_insert = doc_insert;
                self.declare(class_scope, spec);
            }
        }
        (self.scope, self.parent) = saved;
    }

    /// `namespace N { … }` (a module-like container whose exports are `N.x`), and ambient
    /// `declare module 'm' { … }` blocks.
    fn namespace(&mut self, node: Node<'_>) {
        let name = node.field("name");
        let body = node.field("body");
        let mut def = None;
        // `namespace A.B { }` binds `A`.
        let ident = match name {
            Some(n) if n.kind_str() == "identifier" => Some(n),
            Some(n) if n.kind_str() == "nested_identifier" => first_identifier(n),
            _ => None,
        };
        if let Some(id) = ident {
            let item = Self::doc_item(node);
            let (doc, doc_insert) = self.jsdoc(item);
            let mut spec = Binding::new(
                self.name(id),
                SymbolKind::Module,
                node_range(id),
                node_range(node),
            );
            let sig_end = body.map(|b| b.start_byte()).unwrap_or(id.end_byte());
            spec.signature = Some(collapse_ws(
                self.text.get(node.start_byte()..sig_end).unwrap_or(""),
            ));
            spec.doc = doc;
            spec.doc_insert = doc_insert;
            let scope = self.scope;
            def = self.declare(scope, spec).or_else(|| {
                let n = self.name(id);
                self.index
                    .scope(scope)
                    .and_then(|s| s.names.get(&n).copied())
                    .filter(|&d| {
                        self.index
                            .def(d)
                            .is_some_and(|d| d.kind == SymbolKind::Module)
                    })
            });
        }
        let Some(body) = body else { return };
        let nested = name.is_some_and(|n| n.kind_str() == "nested_identifier");
        let saved = (self.scope, self.parent);
        let scope = self.new_scope(ScopeKind::Block, body, if nested { None } else { def });
        if let Some(d) = def
            && !nested
        {
            if self.index.def(d).and_then(|dd| dd.body).is_none() {
                self.set_body(Some(d), scope);
            }
            self.namespaces.insert(scope, d);
            self.parent = Some(d);
        }
        self.scope = scope;
        self.statements(body);
        (self.scope, self.parent) = saved;
    }

    /// `import x = N.y` (TypeScript).
    fn import_alias(&mut self, node: Node<'_>) {
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        let Some(&id) = children.first() else { return };
        for &c in children.iter().skip(1) {
            self.expr(c);
        }
        if id.kind_str() == "identifier" {
            let mut spec = Binding::new(
                self.name(id),
                SymbolKind::Variable,
                node_range(id),
                node_range(node),
            );
            spec.signature = Some(collapse_ws(self.src(node)));
            let scope = self.scope;
            self.declare(scope, spec);
        }
    }

    // ---- imports and exports ----------------------------------------------------------------

    fn import_statement(&mut self, node: Node<'_>) {
        self.is_module = true;
        let Some(source) = node.field("source").and_then(string_fragment).or_else(|| {
            // `import x = require('m')`
            let mut cursor = node.walk();
            let clause = node
                .named_children(&mut cursor)
                .find(|c| c.kind_str() == "import_require_clause")?;
            clause.field("source").and_then(string_fragment)
        }) else {
            return;
        };
        let module = self.name(source);
        let signature = Some(truncate(&collapse_ws(self.src(node)), 160));
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        let mut bound = false;
        for c in children {
            match c.kind_str() {
                "import_clause" => {
                    let mut cursor = c.walk();
                    for part in c.named_children(&mut cursor) {
                        match part.kind_str() {
                            "identifier" => {
                                let local = self.name(part);
                                let imp = self.push_import(
                                    module.clone(),
                                    ImportKind::From {
                                        name: "default".into(),
                                        alias: Some(local.clone()),
                                    },
                                    source,
                                );
                                self.bind_import(local, part, node, imp, signature.clone());
                                bound = true;
                            }
                            "namespace_import" => {
                                let Some(id) = first_identifier(part) else {
                                    continue;
                                };
                                let local = self.name(id);
                                let imp = self.push_import(
                                    module.clone(),
                                    ImportKind::Module {
                                        alias: Some(local.clone()),
                                    },
                                    source,
                                );
                                self.bind_import(local, id, node, imp, signature.clone());
                                bound = true;
                            }
                            "named_imports" => {
                                let mut cursor = part.walk();
                                let specs: Vec<Node<'_>> = part
                                    .named_children(&mut cursor)
                                    .filter(|s| s.kind_str() == "import_specifier")
                                    .collect();
                                for s in specs {
                                    self.import_specifier(&module, s, source, node, &signature);
                                    bound = true;
                                }
                            }
                            _ => {}
                        }
                    }
                }
                "import_require_clause" => {
                    if let Some(id) = first_identifier(c) {
                        let local = self.name(id);
                        let imp = self.push_import(
                            module.clone(),
                            ImportKind::Module {
                                alias: Some(local.clone()),
                            },
                            source,
                        );
                        self.bind_import(local, id, node, imp, signature.clone());
                        bound = true;
                    }
                }
                _ => {}
            }
        }
        if !bound {
            // A side-effect import: still checked for existence.
            self.push_import(module, ImportKind::Module { alias: None }, source);
        }
    }

    fn bind_import(
        &mut self,
        local: Name,
        id: Node<'_>,
        stmt: Node<'_>,
        imp: ImportIdx,
        signature: Option<String>,
    ) -> Option<DefIdx> {
        let mut spec = Binding::new(local, SymbolKind::Import, node_range(id), node_range(stmt));
        spec.import = Some(imp);
        spec.signature = signature;
        let scope = self.scope;
        self.declare(scope, spec)
    }

    /// `{ a }` / `{ a as b }` / `{ default as c }` in an import.
    fn import_specifier(
        &mut self,
        module: &Name,
        s: Node<'_>,
        source: Node<'_>,
        stmt: Node<'_>,
        signature: &Option<String>,
    ) {
        let Some(name_node) = s.field("name") else {
            return;
        };
        let alias_node = s.field("alias");
        let imported = specifier_name(self.src(name_node));
        let alias = alias_node.map(|a| self.name(a));
        let imp = self.push_import(
            module.clone(),
            ImportKind::From {
                name: imported.clone(),
                alias: alias.clone(),
            },
            source,
        );
        let bind_node = alias_node.unwrap_or(name_node);
        self.bind_import(
            self.name(bind_node),
            bind_node,
            stmt,
            imp,
            signature.clone(),
        );
        if &*imported != "default" && name_node.kind_str() == "identifier" {
            self.push_ref(
                imported,
                node_range(name_node),
                Qualifier::ImportMember(imp),
                false,
            );
        }
    }

    fn export_statement(&mut self, node: Node<'_>) {
        let in_namespace = self.namespaces.contains_key(&self.scope);
        if self.scope != 0 && !in_namespace {
            // `export` inside an ambient module block: plain declarations.
            self.export_declaration(node, false);
            return;
        }
        if !in_namespace {
            self.is_module = true;
        }
        let source = node.field("source").and_then(string_fragment);
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        let default_kw = children.iter().copied().find(|c| c.kind_str() == "default");
        let is_equals = children.iter().any(|c| c.kind_str() == "=");
        let signature = Some(truncate(&collapse_ws(first_line(self.src(node))), 160));
        if let Some(clause) = children
            .iter()
            .copied()
            .find(|c| c.kind_str() == "export_clause")
        {
            let mut cursor = clause.walk();
            let specs: Vec<Node<'_>> = clause
                .named_children(&mut cursor)
                .filter(|s| s.kind_str() == "export_specifier")
                .collect();
            for s in specs {
                self.export_specifier(s, source, node, &signature);
            }
            return;
        }
        if let Some(source) = source {
            // `export * from 'm'` / `export * as ns from 'm'`
            let module = self.name(source);
            match children
                .iter()
                .copied()
                .find(|c| c.kind_str() == "namespace_export")
            {
                Some(ns) => {
                    let Some(id) = first_identifier(ns).or_else(|| string_fragment(ns)) else {
                        return;
                    };
                    let local = self.name(id);
                    let imp = self.push_import(
                        module,
                        ImportKind::Module {
                            alias: Some(local.clone()),
                        },
                        source,
                    );
                    let mut spec =
                        Binding::new(local, SymbolKind::Import, node_range(id), node_range(node));
                    spec.import = Some(imp);
                    spec.signature = signature;
                    let d = self.push_def(0, None, spec);
                    self.always_keyed.insert(d);
                }
                None => {
                    let imp = self.push_import(module, ImportKind::Star, source);
                    self.index.reexports.push(imp);
                }
            }
            return;
        }
        if default_kw.is_some() || is_equals {
            self.export_default(node, default_kw, &children, signature);
            return;
        }
        self.export_declaration(node, true);
    }

    /// `export <declaration>`: the declaration, its names marked exported.
    fn export_declaration(&mut self, node: Node<'_>, mark: bool) {
        let before = self.index.defs.len();
        let scope = self.scope;
        let mut cursor = node.walk();
        for c in node.named_children(&mut cursor) {
            match c.kind_str() {
                "decorator" => self.children(c),
                _ => self.stmt(c),
            }
        }
        if mark {
            for i in before..self.index.defs.len() {
                let d = i as DefIdx;
                if self.index.defs[i].scope == scope
                    && self
                        .index
                        .scope(scope)
                        .and_then(|s| s.names.get(&self.index.defs[i].name))
                        == Some(&d)
                {
                    self.exported.insert(d);
                }
            }
        }
    }

    /// `export default …` and `export = …`.
    fn export_default(
        &mut self,
        node: Node<'_>,
        default_kw: Option<Node<'_>>,
        children: &[Node<'_>],
        signature: Option<String>,
    ) {
        let name_range = default_kw
            .map(node_range)
            .unwrap_or_else(|| TextRange::new(node.start_byte(), node.start_byte()));
        let declaration = node.field("declaration");
        let value =
            node.field("value").or_else(|| {
                children.iter().copied().rev().find(|c| {
                    c.is_named() && c.kind_str() != "comment" && c.kind_str() != "decorator"
                })
            });
        let (doc, doc_insert) = self.jsdoc(node);
        // A named declaration: `default` is another name for it.
        let named = declaration.or(value).and_then(|d| {
            matches!(
                d.kind_str(),
                "function_declaration"
                    | "generator_function_declaration"
                    | "class_declaration"
                    | "abstract_class_declaration"
            )
            .then_some(d)
        });
        if let Some(decl) = named {
            let before = self.index.defs.len();
            self.stmt(decl);
            let target = decl
                .field("name")
                .map(|n| self.name(n))
                .filter(|_| self.index.defs.len() > before);
            if let Some(target) = target {
                self.export_names.push(target.clone());
                self.default_alias(target, name_range, node, signature);
                return;
            }
        }
        let Some(value) = value else { return };
        if value.kind_str() == "identifier" {
            let target = self.name(value);
            self.expr(value);
            self.export_names.push(target.clone());
            self.default_alias(target, name_range, node, signature);
            return;
        }
        let kind = match value.kind_str() {
            "function_expression"
            | "arrow_function"
            | "function"
            | "generator_function"
            | "function_declaration"
            | "generator_function_declaration" => SymbolKind::Function,
            "class" | "class_declaration" | "abstract_class_declaration" => SymbolKind::Class,
            _ => SymbolKind::Variable,
        };
        let mut spec = Binding::new("default".into(), kind, name_range, node_range(node));
        spec.signature = signature;
        spec.doc = doc;
        spec.doc_insert = doc_insert;
        let d = self.push_def(0, None, spec);
        self.always_keyed.insert(d);
        let saved = self.parent;
        if kind == SymbolKind::Class {
            self.parent = Some(d);
            if let Some(c) = self.class(value, false) {
                self.set_body(Some(d), self.index.defs[c as usize].body.unwrap_or(0));
            }
            self.parent = saved;
        } else {
            self.node(value);
        }
    }

    /// The `default` export naming a module-level definition `target`.
    fn default_alias(
        &mut self,
        target: Name,
        name_range: TextRange,
        node: Node<'_>,
        signature: Option<String>,
    ) {
        let imp = self.alias_import(target, None, node);
        let mut spec = Binding::new(
            "default".into(),
            SymbolKind::Import,
            name_range,
            node_range(node),
        );
        spec.import = Some(imp);
        spec.signature = signature;
        let d = self.push_def(0, None, spec);
        self.always_keyed.insert(d);
    }

    /// An import of `name` from the file itself (an export under another name).
    fn alias_import(&mut self, name: Name, alias: Option<Name>, node: Node<'_>) -> ImportIdx {
        let idx = self.index.imports.len() as ImportIdx;
        self.index.imports.push(Import {
            module: "".into(),
            level: 0,
            kind: ImportKind::From { name, alias },
            scope: 0,
            range: node_range(node),
        });
        idx
    }

    /// `export { a }`, `export { a as b }`, `export { a } from 'm'`, `export { default } …`.
    fn export_specifier(
        &mut self,
        s: Node<'_>,
        source: Option<Node<'_>>,
        stmt: Node<'_>,
        signature: &Option<String>,
    ) {
        let Some(name_node) = s.field("name") else {
            return;
        };
        let alias_node = s.field("alias");
        let name = specifier_name(self.src(name_node));
        let alias = alias_node.map(|a| specifier_name(self.src(a)));
        let exported_as = alias.clone().unwrap_or_else(|| name.clone());
        let exported_node = alias_node.unwrap_or(name_node);
        match source {
            Some(source) => {
                let module = self.name(source);
                let imp = self.push_import(
                    module,
                    ImportKind::From {
                        name: name.clone(),
                        alias: alias.clone(),
                    },
                    source,
                );
                let mut spec = Binding::new(
                    exported_as,
                    SymbolKind::Import,
                    node_range(exported_node),
                    node_range(stmt),
                );
                spec.import = Some(imp);
                spec.signature = signature.clone();
                let d = self.push_def(0, None, spec);
                self.always_keyed.insert(d);
                if &*name != "default" && name_node.kind_str() == "identifier" {
                    self.push_ref(
                        name,
                        node_range(name_node),
                        Qualifier::ImportMember(imp),
                        false,
                    );
                }
            }
            None => {
                self.push_ref(name.clone(), node_range(name_node), Qualifier::None, false);
                self.export_names.push(name.clone());
                if let Some(alias) = alias
                    && alias != name
                {
                    let imp = self.alias_import(name, Some(alias.clone()), stmt);
                    let mut spec = Binding::new(
                        alias,
                        SymbolKind::Import,
                        node_range(exported_node),
                        node_range(stmt),
                    );
                    spec.import = Some(imp);
                    spec.signature = signature.clone();
                    let d = self.push_def(0, None, spec);
                    self.always_keyed.insert(d);
                }
            }
        }
    }

    /// `module.exports = …`, `module.exports.x = …`, `exports.x = …` at the top level.
    fn cjs_export(&mut self, node: Node<'_>) -> bool {
        let Some(left) = node.field("left") else {
            return false;
        };
        let Some(right) = node.field("right") else {
            return false;
        };
        if self.is_module_exports(left) {
            self.is_module = true;
            self.module_exports_value(right, node);
            return true;
        }
        if left.kind_str() != "member_expression" {
            return false;
        }
        let (Some(object), Some(prop)) = (left.field("object"), left.field("property")) else {
            return false;
        };
        if !self.is_exports_object(object) || prop.kind_str() != "property_identifier" {
            return false;
        }
        self.is_module = true;
        // `exports.a = exports.b = void 0;` (TypeScript's CommonJS output) declares names that
        // are assigned for real later on.
        if right.kind_str() == "assignment_expression" && self.cjs_export(right) {
            return true;
        }
        if right.kind_str() == "unary_expression" && self.src(right).replace(' ', "") == "void0" {
            return true;
        }
        let name = self.name(prop);
        self.export_property(name, prop, right, node);
        true
    }

    /// Top-level calls of CommonJS output: `Object.defineProperty(exports, "x", { get: … })`
    /// re-exports and `__exportStar(require("./m"), exports)`.
    fn cjs_call(&mut self, call: Node<'_>) -> bool {
        let (Some(function), Some(args)) = (call.field("function"), call.field("arguments")) else {
            return false;
        };
        let mut cursor = args.walk();
        let args: Vec<Node<'_>> = args
            .named_children(&mut cursor)
            .filter(|a| a.kind_str() != "comment")
            .collect();
        let callee = self.src(function);
        let callee_name = callee.rsplit('.').next().unwrap_or(callee);
        if matches!(callee_name, "__exportStar" | "__export")
            && let Some(src) = args.first().and_then(|a| self.require_source(*a))
        {
            self.is_module = true;
            let imp = self.push_import(self.name(src), ImportKind::Star, src);
            self.index.reexports.push(imp);
            return true;
        }
        if callee != "Object.defineProperty" || args.len() != 3 || !self.is_exports_object(args[0])
        {
            return false;
        }
        let Some(key) = string_fragment(args[1]) else {
            return false;
        };
        self.is_module = true;
        let exported = self.name(key);
        if &*exported == "__esModule" {
            return true;
        }
        // `{ enumerable: true, get: function () { return m_1.name; } }`
        let returned = self.getter_result(args[2]);
        let Some(member) = returned.filter(|r| r.kind_str() == "member_expression") else {
            self.expr(args[2]);
            return true;
        };
        let (Some(object), Some(prop)) = (member.field("object"), member.field("property")) else {
            return true;
        };
        let module = self.index.scopes[0]
            .names
            .get(self.src(object))
            .and_then(|&d| self.index.def(d))
            .and_then(|d| d.import)
            .and_then(|i| self.index.imports.get(i as usize))
            .filter(|i| matches!(i.kind, ImportKind::Module { .. }))
            .map(|i| i.module.clone());
        self.expr(object);
        let Some(module) = module else {
            return true;
        };
        let name = self.name(prop);
        let alias = (name != exported).then(|| exported.clone());
        let imp = self.push_import(
            module,
            ImportKind::From {
                name: name.clone(),
                alias,
            },
            key,
        );
        let mut spec = Binding::new(
            exported,
            SymbolKind::Import,
            node_range(key),
            node_range(call),
        );
        spec.import = Some(imp);
        spec.signature = Some(truncate(&collapse_ws(first_line(self.src(call))), 160));
        let d = self.push_def(0, None, spec);
        self.always_keyed.insert(d);
        self.push_ref(name, node_range(prop), Qualifier::ImportMember(imp), false);
        true
    }

    /// The expression a property descriptor's `get` function returns.
    fn getter_result<'t>(&self, descriptor: Node<'t>) -> Option<Node<'t>> {
        if descriptor.kind_str() != "object" {
            return None;
        }
        let mut cursor = descriptor.walk();
        let pairs: Vec<Node<'t>> = descriptor.named_children(&mut cursor).collect();
        for p in pairs {
            let (key, body) = match p.kind_str() {
                "pair" => (
                    p.field("key"),
                    p.field("value").and_then(|f| f.field("body")),
                ),
                "method_definition" => (p.field("name"), p.field("body")),
                _ => continue,
            };
            let (Some(key), Some(body)) = (key, body) else {
                continue;
            };
            if self.src(key) != "get" {
                continue;
            }
            if body.kind_str() != "statement_block" {
                return Some(body);
            }
            let ret = body
                .named_child(0)
                .filter(|r| r.kind_str() == "return_statement")?;
            return ret.named_child(0);
        }
        None
    }

    /// `module.exports` (not shadowed by a local `module`).
    fn is_module_exports(&self, node: Node<'_>) -> bool {
        node.kind_str() == "member_expression"
            && node
                .field("object")
                .is_some_and(|o| o.kind_str() == "identifier" && self.src(o) == "module")
            && node
                .field("property")
                .is_some_and(|p| self.src(p) == "exports")
            && !self.index.scopes[0].names.contains_key("module")
    }

    /// `exports` or `module.exports`.
    fn is_exports_object(&self, node: Node<'_>) -> bool {
        (node.kind_str() == "identifier"
            && self.src(node) == "exports"
            && !self.index.scopes[0].names.contains_key("exports"))
            || self.is_module_exports(node)
    }

    /// `module.exports = <value>`.
    fn module_exports_value(&mut self, right: Node<'_>, stmt: Node<'_>) {
        match right.kind_str() {
            "object" => {
                let mut cursor = right.walk();
                for p in right.named_children(&mut cursor) {
                    match p.kind_str() {
                        "shorthand_property_identifier" => {
                            let name = self.name(p);
                            self.push_ref(name.clone(), node_range(p), Qualifier::None, false);
                            self.export_names.push(name);
                        }
                        "pair" => match (p.field("key"), p.field("value")) {
                            (Some(k), Some(v)) if k.kind_str() == "property_identifier" => {
                                let name = self.name(k);
                                self.export_property(name, k, v, p);
                            }
                            _ => {
                                self.expr(p);
                            }
                        },
                        "method_definition" => {
                            if let Some(n) = p.field("name")
                                && n.kind_str() == "property_identifier"
                            {
                                self.exports_def(self.name(n), n, p, SymbolKind::Function, None);
                                let scope = self.new_scope(ScopeKind::Function, p, None);
                                let saved = self.scope;
                                self.scope = scope;
                                self.function_rest(p, None);
                                self.scope = saved;
                            } else {
                                self.expr(p);
                            }
                        }
                        "spread_element" => {
                            let inner = p.named_child(0);
                            match inner.and_then(|i| self.require_source(i)) {
                                Some(src) => {
                                    let imp =
                                        self.push_import(self.name(src), ImportKind::Star, src);
                                    self.index.reexports.push(imp);
                                }
                                None => {
                                    self.expr(p);
                                }
                            }
                        }
                        _ => {
                            self.expr(p);
                        }
                    }
                }
            }
            "identifier" => {
                let target = self.name(right);
                self.expr(right);
                self.export_names.push(target.clone());
                let range = TextRange::new(right.start_byte(), right.start_byte());
                let signature = Some(truncate(&collapse_ws(first_line(self.src(stmt))), 160));
                self.default_alias(target, range, stmt, signature);
            }
            _ => {
                if let Some(src) = self.require_source(right) {
                    // `module.exports = require('./impl')`: re-export everything.
                    let imp = self.push_import(self.name(src), ImportKind::Star, src);
                    self.index.reexports.push(imp);
                    return;
                }
                self.expr(right);
            }
        }
    }

    /// `exports.name = value` or `name: value` in `module.exports = { … }`.
    fn export_property(
        &mut self,
        name: Name,
        name_node: Node<'_>,
        value: Node<'_>,
        stmt: Node<'_>,
    ) {
        // Exporting a module-level name under the same name: a use of that name.
        if value.kind_str() == "identifier" && self.src(value) == &*name {
            self.push_ref(name.clone(), node_range(name_node), Qualifier::None, false);
            self.expr(value);
            self.export_names.push(name);
            return;
        }
        let kind = match value.kind_str() {
            "function_expression" | "arrow_function" | "function" | "generator_function" => {
                SymbolKind::Function
            }
            "class" => SymbolKind::Class,
            _ => SymbolKind::Variable,
        };
        let alias_of = (value.kind_str() == "identifier").then(|| self.name(value));
        self.exports_def(name, name_node, stmt, kind, alias_of);
        if kind == SymbolKind::Function
            && matches!(
                value.kind_str(),
                "function_expression" | "function" | "generator_function" | "arrow_function"
            )
        {
            self.function(value, false);
        } else if kind == SymbolKind::Class {
            self.class(value, false);
        } else {
            self.expr(value);
        }
    }

    /// A definition for a CommonJS export; a second assignment is a write reference to it.
    fn exports_def(
        &mut self,
        name: Name,
        name_node: Node<'_>,
        stmt: Node<'_>,
        kind: SymbolKind,
        alias_of: Option<Name>,
    ) {
        let existing = self.index.defs.iter().position(|d| {
            d.scope == 0 && d.name == name && !self.index.scopes[0].names.contains_key(&name)
        });
        let self_imp = self.self_import(stmt);
        if existing.is_some() {
            self.push_ref(
                name,
                node_range(name_node),
                Qualifier::ImportMember(self_imp),
                true,
            );
            return;
        }
        let (doc, doc_insert) = self.jsdoc(Self::statement_of(stmt));
        let mut spec = Binding::new(name.clone(), kind, node_range(name_node), node_range(stmt));
        spec.signature = Some(truncate(&collapse_ws(first_line(self.src(stmt))), 160));
        spec.doc = doc;
        spec.doc_insert = doc_insert;
        if let Some(target) = alias_of {
            self.export_names.push(target.clone());
            spec.import = Some(self.alias_import(target, Some(name), stmt));
            spec.kind = SymbolKind::Import;
        }
        let d = self.push_def(0, None, spec);
        self.always_keyed.insert(d);
    }

    fn statement_of<'t>(node: Node<'t>) -> Node<'t> {
        let mut n = node;
        while let Some(p) = n.parent() {
            if p.kind_str() == "program" {
                return n;
            }
            n = p;
        }
        n
    }

    // ---- expressions ------------------------------------------------------------------------

    /// Records the references in an expression (or type); returns the reference the
    /// expression *is* (`a`, `a.b`), so that member accesses chain.
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

    fn expr_inner(&mut self, node: Node<'_>) -> Option<RefIdx> {
        match node.kind_str() {
            "identifier" | "type_identifier" => {
                let name = self.name(node);
                if &*name == "undefined" && node.kind_str() == "identifier" {
                    return None;
                }
                Some(self.push_ref(name, node_range(node), Qualifier::None, false))
            }
            "member_expression" | "nested_type_identifier" | "nested_identifier" => {
                let (object, prop) = if node.kind_str() == "nested_type_identifier" {
                    (node.field("module"), node.field("name"))
                } else {
                    (node.field("object"), node.field("property"))
                };
                let qualifier = match object {
                    Some(o) if o.kind_str() == "this" => self
                        .this_class
                        .map(Qualifier::SelfOf)
                        .unwrap_or(Qualifier::Unknown),
                    Some(o) if self.require_source(o).is_some() => match self.require_source(o) {
                        Some(src) => {
                            let imp = self.push_import(
                                self.name(src),
                                ImportKind::Module { alias: None },
                                src,
                            );
                            Qualifier::ImportMember(imp)
                        }
                        None => Qualifier::Unknown,
                    },
                    Some(o) if self.is_exports_object(o) => {
                        let imp = self.self_import(o);
                        Qualifier::ImportMember(imp)
                    }
                    Some(o) if o.kind_str() == "super" => self
                        .this_class
                        .map(Qualifier::SuperOf)
                        .unwrap_or(Qualifier::Unknown),
                    // `new C().x` / `f().x`: a member of what the call returns (an instance
                    // of `C`; unknown for functions).
                    Some(o) if matches!(o.kind_str(), "new_expression" | "call_expression") => {
                        let (callee, args) = if o.kind_str() == "new_expression" {
                            (o.field("constructor"), o.field("arguments"))
                        } else {
                            (o.field("function"), o.field("arguments"))
                        };
                        let callee_ref = callee
                            .filter(|c| matches!(c.kind_str(), "identifier" | "member_expression"))
                            .and_then(|c| self.expr(c));
                        if callee_ref.is_none()
                            && let Some(c) = callee
                        {
                            self.expr(c);
                        }
                        if let Some(a) = args {
                            self.expr(a);
                        }
                        if let Some(t) = o.field("type_arguments") {
                            self.expr(t);
                        }
                        match callee_ref {
                            Some(r) if o.kind_str() == "new_expression" => Qualifier::CallResult(r),
                            _ => Qualifier::Unknown,
                        }
                    }
                    Some(o) => match self.expr(o) {
                        Some(b) => Qualifier::Ref(b),
                        None => Qualifier::Unknown,
                    },
                    None => Qualifier::Unknown,
                };
                let prop = prop?;
                if !matches!(
                    prop.kind_str(),
                    "property_identifier"
                        | "private_property_identifier"
                        | "type_identifier"
                        | "identifier"
                ) {
                    self.expr(prop);
                    return None;
                }
                Some(self.push_ref(self.name(prop), node_range(prop), qualifier, false))
            }
            "call_expression" => {
                if let Some(src) = self.require_source(node) {
                    self.push_import(self.name(src), ImportKind::Module { alias: None }, src);
                    return None;
                }
                self.children(node);
                None
            }
            "arrow_function" => {
                let scope = self.new_scope(ScopeKind::Lambda, node, None);
                let saved = self.scope;
                self.scope = scope;
                self.function_rest(node, None);
                self.scope = saved;
                None
            }
            "function_expression" | "function" | "generator_function" => {
                self.function(node, false);
                None
            }
            "class" => {
                self.class(node, false);
                None
            }
            "object" => {
                let mut cursor = node.walk();
                for c in node.named_children(&mut cursor) {
                    match c.kind_str() {
                        "pair" => {
                            if let Some(k) = c.field("key")
                                && k.kind_str() == "computed_property_name"
                            {
                                self.expr(k);
                            }
                            if let Some(v) = c.field("value") {
                                self.expr(v);
                            }
                        }
                        "shorthand_property_identifier" => {
                            self.shorthand.push(node_range(c));
                            self.push_ref(self.name(c), node_range(c), Qualifier::None, false);
                        }
                        "method_definition" => {
                            if let Some(k) = c.field("name")
                                && k.kind_str() == "computed_property_name"
                            {
                                self.expr(k);
                            }
                            let scope = self.new_scope(ScopeKind::Function, c, None);
                            let saved = (self.scope, self.this_class);
                            self.scope = scope;
                            self.this_class = None;
                            self.function_rest(c, None);
                            (self.scope, self.this_class) = saved;
                        }
                        _ => {
                            self.expr(c);
                        }
                    }
                }
                None
            }
            "assignment_expression" => {
                if let Some(r) = node.field("right") {
                    self.expr(r);
                }
                if let Some(l) = node.field("left") {
                    self.assign_target(l);
                }
                None
            }
            "augmented_assignment_expression" => {
                if let Some(r) = node.field("right") {
                    self.expr(r);
                }
                if let Some(l) = node.field("left") {
                    if l.kind_str() == "identifier" {
                        self.push_ref(self.name(l), node_range(l), Qualifier::None, true);
                    } else {
                        self.expr(l);
                    }
                }
                None
            }
            "jsx_opening_element" | "jsx_self_closing_element" | "jsx_closing_element" => {
                if let Some(n) = node.field("name") {
                    let text = self.src(n);
                    let intrinsic = n.kind_str() == "identifier"
                        && text.chars().next().is_some_and(|c| c.is_ascii_lowercase());
                    if !intrinsic
                        && matches!(
                            n.kind_str(),
                            "identifier" | "member_expression" | "nested_identifier"
                        )
                    {
                        self.expr(n);
                    }
                }
                let mut cursor = node.walk();
                let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                let name = node.field("name");
                for c in children {
                    if Some(c) == name {
                        continue;
                    }
                    match c.kind_str() {
                        "jsx_attribute" => {
                            let mut cursor = c.walk();
                            let parts: Vec<Node<'_>> =
                                c.named_children(&mut cursor).skip(1).collect();
                            for p in parts {
                                self.expr(p);
                            }
                        }
                        _ => {
                            self.expr(c);
                        }
                    }
                }
                None
            }
            "type_query" => {
                self.children(node);
                None
            }
            "property_identifier"
            | "private_property_identifier"
            | "shorthand_property_identifier"
            | "this"
            | "super"
            | "string"
            | "string_fragment"
            | "template_literal_type"
            | "number"
            | "regex"
            | "true"
            | "false"
            | "null"
            | "comment"
            | "predefined_type"
            | "literal_type"
            | "this_type"
            | "jsx_text"
            | "escape_sequence"
            | "import"
            | "statement_identifier"
            | "hash_bang_line"
            | "meta_property"
            | "html_comment" => None,
            "template_string" => {
                let mut cursor = node.walk();
                let subs: Vec<Node<'_>> = node
                    .named_children(&mut cursor)
                    .filter(|c| c.kind_str() == "template_substitution")
                    .collect();
                for s in subs {
                    self.children(s);
                }
                None
            }
            "mapped_type_clause" => {
                // `[K in keyof T]`: K is bound for the rest of the object type; approximated
                // by binding it in the current scope's nearest block.
                if let Some(t) = node.field("type") {
                    self.expr(t);
                }
                if let Some(n) = node.field("name") {
                    let spec = Binding::new(
                        self.name(n),
                        SymbolKind::TypeAlias,
                        node_range(n),
                        node_range(node),
                    );
                    let scope = self.scope;
                    if scope != 0 {
                        self.declare(scope, spec);
                    }
                }
                None
            }
            "object_type" => {
                // A type literal in its own scope (mapped type keys bind there).
                let scope = self.new_scope(ScopeKind::Block, node, None);
                let saved = self.scope;
                self.scope = scope;
                let mut cursor = node.walk();
                let members: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                for m in &members {
                    if m.kind_str() == "index_signature" {
                        let mut cursor = m.walk();
                        let clause = m
                            .named_children(&mut cursor)
                            .find(|c| c.kind_str() == "mapped_type_clause");
                        if let Some(c) = clause {
                            self.expr(c);
                        }
                    }
                }
                for m in members {
                    match m.kind_str() {
                        "property_signature" => {
                            if let Some(t) = m.field("type") {
                                self.expr(t);
                            }
                        }
                        "method_signature" | "call_signature" | "construct_signature" => {
                            self.signature(m);
                        }
                        "index_signature" => self.index_signature(m),
                        _ => {
                            self.expr(m);
                        }
                    }
                }
                self.scope = saved;
                None
            }
            "function_type" | "constructor_type" => {
                self.signature(node);
                None
            }
            "conditional_type" => {
                // `L extends R ? C : A`: `infer X` in R binds X for C.
                if let Some(l) = node.field("left") {
                    self.expr(l);
                }
                let saved = (self.scope, self.infer_scope);
                let scope = self.new_scope(ScopeKind::Block, node, None);
                self.scope = scope;
                self.infer_scope = Some(scope);
                for field in ["right", "consequence"] {
                    if let Some(c) = node.field(field) {
                        self.expr(c);
                    }
                }
                (self.scope, self.infer_scope) = saved;
                if let Some(a) = node.field("alternative") {
                    self.expr(a);
                }
                None
            }
            "infer_type" => {
                let mut cursor = node.walk();
                let parts: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
                for (i, p) in parts.into_iter().enumerate() {
                    if i == 0 && p.kind_str() == "type_identifier" {
                        let spec = Binding::new(
                            self.name(p),
                            SymbolKind::TypeAlias,
                            node_range(p),
                            node_range(node),
                        );
                        if let Some(scope) = self.infer_scope {
                            self.declare(scope, spec);
                        }
                    } else {
                        self.expr(p);
                    }
                }
                None
            }
            "pair" => {
                if let Some(v) = node.field("value") {
                    self.expr(v);
                }
                None
            }
            "internal_module" | "module" => {
                self.namespace(node);
                None
            }
            k if is_statement(k) => {
                self.stmt(node);
                None
            }
            _ => {
                self.children(node);
                None
            }
        }
    }
}

fn is_statement(kind: &str) -> bool {
    kind.ends_with("_statement")
        || kind.ends_with("_declaration")
        || matches!(
            kind,
            "statement_block"
                | "function_signature"
                | "catch_clause"
                | "finally_clause"
                | "else_clause"
                | "switch_body"
                | "switch_case"
                | "switch_default"
                | "import_alias"
        )
}

/// The text of a string literal (`'m'` → `m`).
fn string_fragment(s: Node<'_>) -> Option<Node<'_>> {
    if s.kind_str() == "string_fragment" {
        return Some(s);
    }
    let mut cursor = s.walk();
    s.named_children(&mut cursor)
        .find(|c| c.kind_str() == "string_fragment")
}

/// An import/export specifier's name: an identifier, or a string (`export { x as "a-b" }`).
fn specifier_name(text: &str) -> Name {
    let t = text.trim();
    let t = t
        .strip_prefix(['"', '\''])
        .and_then(|t| t.strip_suffix(['"', '\'']))
        .unwrap_or(t);
    Name::from(t)
}

/// The first identifier in `node`, depth first (iterative: nesting can be deep in garbage).
fn first_identifier(node: Node<'_>) -> Option<Node<'_>> {
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        if n.kind_str() == "identifier" {
            return Some(n);
        }
        let mut cursor = n.walk();
        let children: Vec<Node<'_>> = n.named_children(&mut cursor).collect();
        stack.extend(children.into_iter().rev());
    }
    None
}

/// `a`, `a.b.c`: a dotted name the resolver can follow.
fn is_dotted(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .chars()
                    .all(|c| c == '_' || c == '$' || c.is_alphanumeric())
        })
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space
                && !out.is_empty()
                && !out.ends_with(['(', '[', '<'])
                && !matches!(c, ')' | ']' | '>' | ',')
            {
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

/// The text of a `/** … */` comment without its delimiters and leading `*`s.
fn clean_jsdoc(comment: &str) -> String {
    let body = comment
        .strip_prefix("/**")
        .and_then(|b| b.strip_suffix("*/"))
        .unwrap_or(comment);
    let mut lines: Vec<String> = body
        .lines()
        .map(|l| {
            let t = l.trim();
            let t = t.strip_prefix('*').unwrap_or(t);
            t.strip_prefix(' ').unwrap_or(t).trim_end().to_owned()
        })
        .collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tree_sitter::StreamingIterator;

    fn index(language: Language, text: &str) -> FileIndex {
        TypeScript.index(language, "t.ts", text)
    }

    #[test]
    fn jsonc_allows_comments_and_trailing_commas() {
        let v = parse_jsonc(
            "{\n // line\n \"a\": \"x//y\", /* block */ \"b\": [1, 2,],\n \"c\": {\"d\": \"/*no*/\",},\n}",
        )
        .expect("parses");
        assert_eq!(v["a"], "x//y");
        assert_eq!(v["b"].as_array().map(|a| a.len()), Some(2));
        assert_eq!(v["c"]["d"], "/*no*/");
    }

    #[test]
    fn paths_patterns_prefer_exact_then_longest_prefix() {
        let cfg = TsConfig {
            base_url: Some("".into()),
            paths: vec![
                ("@/*".into(), vec!["src/*".into()]),
                ("@/lib/*".into(), vec!["lib/*".into(), "vendor/*".into()]),
                ("config".into(), vec!["src/config".into()]),
            ],
        };
        assert_eq!(cfg.match_paths("@/a/b"), Some(vec!["src/a/b".to_owned()]));
        assert_eq!(
            cfg.match_paths("@/lib/x"),
            Some(vec!["lib/x".to_owned(), "vendor/x".to_owned()])
        );
        assert_eq!(
            cfg.match_paths("config"),
            Some(vec!["src/config".to_owned()])
        );
        assert_eq!(cfg.match_paths("react"), None);
    }

    #[test]
    fn normalize_resolves_dots() {
        assert_eq!(normalize("a/./b/../c"), Some("a/c".into()));
        assert_eq!(normalize("../x"), None);
    }

    #[test]
    fn jsdoc_is_cleaned() {
        assert_eq!(
            clean_jsdoc("/**\n   * Adds.\n   *\n   * @param a first\n   */"),
            "Adds.\n\n@param a first"
        );
        assert_eq!(clean_jsdoc("/** One line. */"), "One line.");
    }

    #[test]
    fn only_exported_names_get_keys() {
        let idx = index(
            Language::TypeScript,
            "export function f() { const inner = 1; }\nfunction g() {}\nexport class C { m() {} private p = 1; #q = 2; }\nconst h = 1;\nexport { h };\n",
        );
        let keys: Vec<&str> = idx.defs.iter().filter_map(|d| d.key.as_deref()).collect();
        assert_eq!(keys, ["f", "C", "C.m", "C.p", "C.#q", "h"]);
        let public: Vec<&str> = idx
            .defs
            .iter()
            .filter(|d| TypeScript.is_public(d))
            .map(|d| &*d.name)
            .collect();
        assert_eq!(public, ["f", "C", "m", "h"]);
        // A script (no import/export) exposes its top-level names.
        let idx = index(Language::JavaScript, "function g() {}\nvar x = 1;\n");
        let keys: Vec<&str> = idx.defs.iter().filter_map(|d| d.key.as_deref()).collect();
        assert_eq!(keys, ["g", "x"]);
    }

    #[test]
    fn definitions_match_the_scm_patterns() {
        let cases = [
            (
                Language::TypeScript,
                tree_sitter::Language::from(tree_sitter_typescript::LANGUAGE_TYPESCRIPT),
                "import d, { a, b as c } from './x';\nimport * as ns from './y';\nfunction f(p, q = 1) { const [x, y] = p; try {} catch (e) {} }\nfunction* g() {}\nclass K { m() {} }\nconst { s } = o;\n",
            ),
            (
                Language::JavaScript,
                tree_sitter::Language::from(tree_sitter_javascript::LANGUAGE),
                "import d from './x';\nfunction f(p, { z }) { let v = p; }\nclass K { m() { return <A/>; } }\n",
            ),
            (
                Language::Tsx,
                tree_sitter::Language::from(tree_sitter_typescript::LANGUAGE_TSX),
                "import { a, b as c } from './x';\nexport const App = (p) => <div>{p.x}</div>;\nfunction h(a) { let [u, v] = a; }\n",
            ),
        ];
        for (language, grammar, text) in cases {
            let idx = index(language, text);
            let mut parser = tree_sitter::Parser::new();
            parser.set_language(&grammar).expect("grammar loads");
            let tree = parser.parse(text, None).expect("parses");
            let query = tree_sitter::Query::new(&grammar, DEFINITIONS_QUERY).expect("query");
            let name_idx = query.capture_index_for_name("name").expect("@name");
            let mut cursor = tree_sitter::QueryCursor::new();
            let mut matches = cursor.matches(&query, tree.root_node(), text.as_bytes());
            let mut found = 0;
            while let Some(m) = matches.next() {
                for node in m.nodes_for_capture_index(name_idx) {
                    let name = &text[node.byte_range()];
                    found += 1;
                    assert!(
                        idx.defs.iter().any(|d| &*d.name == name
                            && d.name_range == TextRange::new(node.start_byte(), node.end_byte())),
                        "{language:?}: walker missed {name}"
                    );
                }
            }
            assert!(found > 3, "{language:?}: query found {found}");
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let mut sum = String::from("let x = 0");
        for i in 0..20_000 {
            sum.push_str(&format!(" + a{i}"));
        }
        sum.push_str(";\n");
        let mut nested = String::new();
        for _ in 0..3_000 {
            nested.push_str("f(() => { if (y) { [");
        }
        for _ in 0..3_000 {
            nested.push_str("] } });");
        }
        let patterns = format!(
            "let {}a{} = x;\n[{}b{}] = y;\n",
            "[".repeat(5_000),
            "]".repeat(5_000),
            "{ k: ".repeat(5_000),
            " }".repeat(5_000)
        );
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let a = index(Language::JavaScript, &sum).refs.len();
                let b = index(Language::Tsx, &nested).refs.len();
                index(Language::TypeScript, &patterns);
                (a, b)
            })
            .expect("thread");
        let (a, b) = handle.join().expect("no overflow");
        assert_eq!(a, 20_000);
        assert!(b >= 3_000, "{b}");
    }

    #[test]
    fn garbage_never_panics_and_counts_errors() {
        for text in [
            "function (",
            "class { m( }",
            "import { from",
            "export default",
            "const {a, = 1;",
            "<div><Foo</div>",
            "\u{0}\u{1}",
            "module.exports = ",
            "namespace A.B.C { export = 1 }",
        ] {
            for language in [Language::TypeScript, Language::Tsx, Language::JavaScript] {
                let idx = index(language, text);
                assert!(!idx.scopes.is_empty());
            }
        }
        assert!(index(Language::TypeScript, "function f(:\n").parse_errors > 0);
    }
}

//! Cross-file resolution: the module map (every project path and directory), and per file the
//! target of each reference — a definition (exact), a module, a builtin or external name, or a
//! probable match by name only.
//!
//! A file's resolution reads its own `FileIndex` and only the *interfaces* of other files, so a
//! body edit elsewhere never re-runs it. Definitions in other files are named by
//! [`DefId`] = (file, dotted key), never by position.

use crate::db::{SourceFile, Workspace, file_index, file_interface};
use crate::lang::{self, LanguageModule, ModuleRequest, ModuleResolution};
use crate::model::{
    DefIdx, FileIndex, FileInterface, ImportIdx, ImportKind, Name, Qualifier, RefIdx, ScopeIdx,
    SymbolKind,
};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

/// A module of the project: one file, or a directory (namespace package, Go package).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModuleRef {
    File(SourceFile),
    Dir(Name),
}

/// Every path and directory of the workspace, for import resolution.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleMap {
    files: HashMap<Name, SourceFile>,
    paths: HashMap<SourceFile, Name>,
    dirs: HashSet<Name>,
    roots: Vec<Name>,
    /// Texts of the import-configuration files (`tsconfig.json`, `go.mod`, `Cargo.toml` …, see
    /// [`crate::db::is_config_file`]) by path, for language modules' import rules.
    configs: HashMap<Name, Arc<str>>,
    /// Files directly in each directory, sorted by path.
    by_dir: HashMap<Name, Vec<SourceFile>>,
}

impl ModuleMap {
    pub fn file(&self, path: &str) -> Option<SourceFile> {
        self.files.get(path).copied()
    }

    pub fn path_of(&self, file: SourceFile) -> Option<&str> {
        self.paths.get(&file).map(|p| &**p)
    }

    /// True when some project file lives under `dir` (relative, `/`-separated, no trailing `/`).
    pub fn has_dir(&self, dir: &str) -> bool {
        self.dirs.contains(dir)
    }

    pub fn dirs(&self) -> impl Iterator<Item = &str> {
        self.dirs.iter().map(|d| &**d)
    }

    /// Source roots besides the project root: directories named `src`, `lib` or `python` that
    /// do not contain an `__init__.py` (the `src/` layout).
    pub fn roots(&self) -> &[Name] {
        &self.roots
    }

    /// The text of the configuration file at `path` (only files
    /// [`crate::db::is_config_file`] accepts are kept).
    pub fn config(&self, path: &str) -> Option<&Arc<str>> {
        self.configs.get(path)
    }

    /// Every configuration file kept by [`ModuleMap::config`], as `(path, text)`.
    pub fn configs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.configs.iter().map(|(p, t)| (&**p, &**t))
    }

    /// Project files directly in `dir`, sorted by path (indexed: no scan of every file).
    pub fn files_in_dir(&self, dir: &str) -> &[SourceFile] {
        self.by_dir.get(dir).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Project files directly in `dir`.
    pub fn files_in(&self, dir: &str) -> Vec<SourceFile> {
        let mut out: Vec<(&Name, SourceFile)> = self
            .files
            .iter()
            .filter(|(p, _)| p.rsplit_once('/').map(|(d, _)| d).unwrap_or("") == dir)
            .map(|(p, f)| (p, *f))
            .collect();
        out.sort_by(|a, b| a.0.cmp(b.0));
        out.into_iter().map(|(_, f)| f).collect()
    }
}

/// The module map of the current workspace.
#[salsa::tracked(returns(clone))]
pub fn module_map(db: &dyn salsa::Database) -> Arc<ModuleMap> {
    let Some(ws) = Workspace::try_get(db) else {
        return Arc::new(ModuleMap::default());
    };
    let mut map = ModuleMap::default();
    for &file in ws.files(db).iter() {
        let path = file.path(db).clone();
        let mut dir = &*path;
        while let Some((parent, _)) = dir.rsplit_once('/') {
            if !map.dirs.insert(Name::from(parent)) {
                break;
            }
            dir = parent;
        }
        if crate::db::is_config_file(&path) {
            map.configs.insert(path.clone(), file.text(db).clone());
        }
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        let mut files_here: Vec<SourceFile> = map.by_dir.remove(dir).unwrap_or_default();
        files_here.push(file);
        map.by_dir.insert(Name::from(dir), files_here);
        map.paths.insert(file, path.clone());
        map.files.insert(path, file);
    }
    let mut roots: Vec<Name> = map
        .dirs
        .iter()
        .filter(|d| {
            let base = d.rsplit('/').next().unwrap_or(d);
            matches!(base, "src" | "lib" | "python")
                && !map.files.contains_key(format!("{d}/__init__.py").as_str())
        })
        .cloned()
        .collect();
    roots.sort();
    map.roots = roots;
    Arc::new(map)
}

/// Which definition: a file and either its dotted key (visible to other files) or its index
/// (a local, only ever referenced from the same file).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DefId {
    pub file: SourceFile,
    pub key: DefKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DefKey {
    Path(Name),
    Local(DefIdx),
}

/// What a reference points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Resolved through scopes and imports (exact).
    Def(DefId),
    Module(ModuleRef),
    /// Defined outside the project (standard library, installed package).
    External,
    Builtin,
    /// Found nowhere.
    Unresolved,
    /// Could be any member with this name (the receiver's type is unknown).
    Probable,
}

/// What a name denotes, for looking up `name.member`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entity {
    Module(ModuleRef),
    Def(DefId, SymbolKind),
    External,
    Unknown,
}

#[derive(Debug, Clone)]
struct Resolved {
    target: Target,
    entity: Entity,
}

impl Resolved {
    fn new(target: Target, entity: Entity) -> Resolved {
        Resolved { target, entity }
    }
    fn unresolved() -> Resolved {
        Resolved::new(Target::Unresolved, Entity::Unknown)
    }
    fn external() -> Resolved {
        Resolved::new(Target::External, Entity::External)
    }
}

/// A problem found while resolving a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    pub import: ImportIdx,
    /// The reference that failed (the imported name), if the module itself resolved.
    pub reference: Option<RefIdx>,
    pub message: String,
}

/// The resolution of every reference of one file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileResolution {
    /// Parallel to `FileIndex::refs`.
    pub targets: Vec<Target>,
    /// Exact references grouped by the definition they resolve to.
    pub by_def: HashMap<DefId, Vec<RefIdx>>,
    /// Probable references grouped by name.
    pub probable: HashMap<Name, Vec<RefIdx>>,
    pub problems: Vec<ImportProblem>,
}

/// Resolves every reference of `file`.
#[salsa::tracked(returns(clone))]
pub fn file_resolution(db: &dyn salsa::Database, file: SourceFile) -> Arc<FileResolution> {
    let Some(language) = file.language(db).and_then(lang::module_for) else {
        return Arc::new(FileResolution::default());
    };
    let index = file_index(db, file);
    let map = module_map(db);
    let mut r = Resolver {
        db,
        lang: language,
        map: &map,
        file,
        index: &index,
        import_cache: HashMap::default(),
        entities: Vec::with_capacity(index.refs.len()),
        files_cache: HashMap::default(),
        top_cache: HashMap::default(),
        member_cache: HashMap::default(),
    };
    let mut out = FileResolution {
        targets: Vec::with_capacity(index.refs.len()),
        ..FileResolution::default()
    };
    for (i, reference) in index.refs.iter().enumerate() {
        if i % 1024 == 1023 {
            db.unwind_if_revision_cancelled();
        }
        let res = r.resolve_ref(i as RefIdx);
        match &res.target {
            Target::Def(id) => out.by_def.entry(id.clone()).or_default().push(i as RefIdx),
            Target::Probable => out
                .probable
                .entry(reference.name.clone())
                .or_default()
                .push(i as RefIdx),
            Target::Unresolved => {
                if let Qualifier::ImportMember(imp) = reference.qualifier
                    && let ModuleResolution::Project(m) = r.import_module(imp)
                {
                    out.problems.push(ImportProblem {
                        import: imp,
                        reference: Some(i as RefIdx),
                        message: format!(
                            "`{}` is not defined in module `{}`",
                            reference.name,
                            r.module_label(&m)
                        ),
                    });
                }
            }
            _ => {}
        }
        out.targets.push(res.target);
        r.entities.push(res.entity);
    }
    for (i, imp) in index.imports.iter().enumerate() {
        if let ModuleResolution::Missing = r.import_module(i as ImportIdx) {
            out.problems.push(ImportProblem {
                import: i as ImportIdx,
                reference: None,
                message: format!(
                    "unresolved import `{}`: no such module in the project",
                    language.module_display(&imp.module, imp.level)
                ),
            });
        }
    }
    out.problems
        .dedup_by(|a, b| a.import == b.import && a.reference.is_none() && b.reference.is_none());
    Arc::new(out)
}

/// A definition found by name lookup in a file's scopes.
pub enum Lookup {
    Local(DefIdx),
    Builtin,
    NotFound,
}

/// Looks `name` up from `scope` following the language's rules (declared globals/nonlocals,
/// enclosing scopes, class bodies invisible to nested functions).
pub fn lookup_local(
    language: &dyn LanguageModule,
    index: &FileIndex,
    scope: ScopeIdx,
    name: &str,
) -> Lookup {
    let mut current = scope;
    let mut first = true;
    if let Some(s) = index.scope(scope) {
        if s.globals.iter().any(|g| &**g == name) {
            current = 0;
        } else if s.nonlocals.iter().any(|g| &**g == name) {
            current = s.parent.unwrap_or(0);
            first = false;
        }
    }
    let mut guard = 0;
    while let Some(s) = index.scope(current) {
        if (first || language.nested_scopes_see(s.kind) || current == 0)
            && let Some(&d) = s.names.get(name)
        {
            return Lookup::Local(d);
        }
        first = false;
        guard += 1;
        match s.parent {
            Some(p) if guard < 1000 && p != current => current = p,
            _ => break,
        }
    }
    if language.is_builtin(name) {
        Lookup::Builtin
    } else {
        Lookup::NotFound
    }
}

/// The canonical id of a definition of `file`.
pub fn def_id(file: SourceFile, index: &FileIndex, def: DefIdx) -> DefId {
    match index.def(def).and_then(|d| d.key.clone()) {
        Some(key) => DefId {
            file,
            key: DefKey::Path(key),
        },
        None => DefId {
            file,
            key: DefKey::Local(def),
        },
    }
}

/// The index of the definition `id` names, in its file's index.
pub fn def_index(index: &FileIndex, id: &DefId) -> Option<DefIdx> {
    match &id.key {
        DefKey::Path(key) => index.by_key.get(key).copied(),
        DefKey::Local(i) => index.def(*i).map(|_| *i),
    }
}

const MAX_DEPTH: u32 = 24;

struct Resolver<'a> {
    db: &'a dyn salsa::Database,
    lang: &'static dyn LanguageModule,
    map: &'a ModuleMap,
    file: SourceFile,
    index: &'a FileIndex,
    import_cache: HashMap<ImportIdx, ModuleResolution>,
    entities: Vec<Entity>,
    /// Per-resolution caches for modules made of many files (Go packages): their files, the
    /// file declaring each top-level name, and the file declaring each member key.
    files_cache: HashMap<ModuleRef, Arc<[SourceFile]>>,
    top_cache: HashMap<ModuleRef, Arc<HashMap<Name, SourceFile>>>,
    member_cache: HashMap<SourceFile, Arc<HashMap<Name, SourceFile>>>,
}

impl Resolver<'_> {
    fn module_label(&self, m: &ModuleRef) -> String {
        match m {
            ModuleRef::File(f) => self.map.path_of(*f).unwrap_or("?").to_owned(),
            ModuleRef::Dir(d) if d.is_empty() => ".".to_owned(),
            ModuleRef::Dir(d) => format!("{d}/"),
        }
    }

    fn path(&self, file: SourceFile) -> &str {
        self.map.path_of(file).unwrap_or("")
    }

    fn resolve_module_from(&self, file: SourceFile, module: &str, level: u32) -> ModuleResolution {
        self.lang
            .resolve_module(self.map, self.path(file), ModuleRequest { module, level })
    }

    /// The module an import of this file names (the full dotted path).
    fn import_module(&mut self, imp: ImportIdx) -> ModuleResolution {
        if let Some(m) = self.import_cache.get(&imp) {
            return m.clone();
        }
        let res = match self.index.imports.get(imp as usize) {
            Some(i) => self.resolve_module_from(self.file, &i.module, i.level),
            None => ModuleResolution::Missing,
        };
        self.import_cache.insert(imp, res.clone());
        res
    }

    fn module_resolved(res: ModuleResolution) -> Resolved {
        match res {
            ModuleResolution::Project(m) => {
                Resolved::new(Target::Module(m.clone()), Entity::Module(m))
            }
            ModuleResolution::External => Resolved::external(),
            ModuleResolution::Missing => Resolved::unresolved(),
        }
    }

    fn resolve_ref(&mut self, idx: RefIdx) -> Resolved {
        let Some(r) = self.index.refs.get(idx as usize) else {
            return Resolved::unresolved();
        };
        let name = r.name.clone();
        match r.qualifier {
            Qualifier::None => match lookup_local(self.lang, self.index, r.scope, &name) {
                Lookup::Local(d) => self.local_def(d, 0),
                Lookup::Builtin => Resolved::new(Target::Builtin, Entity::External),
                Lookup::NotFound => self
                    .star_lookup(r.scope, &name)
                    .unwrap_or_else(Resolved::unresolved),
            },
            Qualifier::Ref(base) => {
                let entity = self
                    .entities
                    .get(base as usize)
                    .cloned()
                    .unwrap_or(Entity::Unknown);
                self.member_of(&entity, &name, 0)
            }
            Qualifier::SelfOf(class) => {
                let id = def_id(self.file, self.index, class);
                self.class_member(&id, &name, 0)
                    .unwrap_or(Resolved::new(Target::Probable, Entity::Unknown))
            }
            Qualifier::CallResult(callee) => match self.entities.get(callee as usize).cloned() {
                Some(Entity::Def(id, kind)) if kind.has_members() => self
                    .class_member(&id, &name, 0)
                    .unwrap_or(Resolved::new(Target::Probable, Entity::Unknown)),
                Some(Entity::External) => Resolved::external(),
                _ => Resolved::new(Target::Probable, Entity::Unknown),
            },
            Qualifier::SuperOf(class) => {
                let id = def_id(self.file, self.index, class);
                self.base_member(&id, &name, 0)
                    .unwrap_or(Resolved::new(Target::Probable, Entity::Unknown))
            }
            Qualifier::Unknown => Resolved::new(Target::Probable, Entity::Unknown),
            Qualifier::ImportMember(imp) => match self.import_module(imp) {
                ModuleResolution::Project(m) => self
                    .module_member(&m, &name, 0)
                    .unwrap_or_else(Resolved::unresolved),
                ModuleResolution::External => Resolved::external(),
                ModuleResolution::Missing => Resolved::unresolved(),
            },
            Qualifier::ModulePath { import, depth } => {
                let Some(i) = self.index.imports.get(import as usize) else {
                    return Resolved::unresolved();
                };
                let prefix: Vec<&str> = i.module.split('.').take(depth as usize).collect();
                let prefix = prefix.join(".");
                let level = i.level;
                Self::module_resolved(self.resolve_module_from(self.file, &prefix, level))
            }
        }
    }

    /// Glob imports visible from `scope` (innermost first, later imports shadowing earlier).
    fn star_lookup(&mut self, scope: ScopeIdx, name: &str) -> Option<Resolved> {
        let mut current = Some(scope);
        let mut guard = 0;
        while let Some(s) = current.and_then(|c| self.index.scope(c)) {
            let stars = s.stars.clone();
            for imp in stars.into_iter().rev() {
                if let ModuleResolution::Project(m) = self.import_module(imp)
                    && self.star_exports(&m, name)
                    && let Some(res) = self.module_member(&m, name, 1)
                {
                    return Some(res);
                }
            }
            guard += 1;
            if guard > 1000 {
                break;
            }
            current = s.parent;
        }
        None
    }

    /// The files of a module (cached for this resolution).
    fn files_of(&mut self, m: &ModuleRef) -> Arc<[SourceFile]> {
        if let Some(files) = self.files_cache.get(m) {
            return files.clone();
        }
        let files: Arc<[SourceFile]> = self.lang.module_files_in(self.db, self.map, m).into();
        self.files_cache.insert(m.clone(), files.clone());
        files
    }

    /// The file of a many-file module that declares the top-level `name` (first file wins).
    fn top_file(&mut self, m: &ModuleRef, files: &[SourceFile], name: &str) -> Option<SourceFile> {
        if files.len() < 4 {
            return files
                .iter()
                .copied()
                .find(|&f| file_interface(self.db, f).top.contains_key(name));
        }
        if !self.top_cache.contains_key(m) {
            let mut all: HashMap<Name, SourceFile> = HashMap::default();
            for &f in files {
                for key in file_interface(self.db, f).top.keys() {
                    all.entry(key.clone()).or_insert(f);
                }
            }
            self.top_cache.insert(m.clone(), Arc::new(all));
        }
        self.top_cache.get(m).and_then(|t| t.get(name).copied())
    }

    /// Whether `from m import *` brings `name` in.
    fn star_exports(&mut self, m: &ModuleRef, name: &str) -> bool {
        for f in self.files_of(m).iter().copied() {
            let iface = file_interface(self.db, f);
            match &iface.all {
                Some(all) => {
                    if all.iter().any(|n| &**n == name) {
                        return true;
                    }
                }
                None => {
                    if self.lang.glob_exports(name) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// A definition of this file, following import bindings to what they import.
    fn local_def(&mut self, d: DefIdx, depth: u32) -> Resolved {
        let Some(def) = self.index.def(d) else {
            return Resolved::unresolved();
        };
        let id = def_id(self.file, self.index, d);
        let Some(imp) = def.import else {
            return Resolved::new(Target::Def(id.clone()), Entity::Def(id, def.kind));
        };
        let Some(import) = self.index.imports.get(imp as usize).cloned() else {
            return Resolved::unresolved();
        };
        match &import.kind {
            ImportKind::Module { alias: None } => {
                let root = import.module.split('.').next().unwrap_or("");
                Self::module_resolved(self.resolve_module_from(self.file, root, import.level))
            }
            ImportKind::Module { alias: Some(_) } => {
                let m = Self::module_resolved(self.import_module(imp));
                Resolved::new(Target::Def(id), m.entity)
            }
            ImportKind::From { name, alias } => {
                let member = match self.import_module(imp) {
                    ModuleResolution::Project(m) => {
                        self.imported_member(self.file, &m, name, depth + 1)
                    }
                    ModuleResolution::External => Resolved::external(),
                    ModuleResolution::Missing => Resolved::unresolved(),
                };
                if alias.is_some() {
                    Resolved::new(Target::Def(id), member.entity)
                } else {
                    member
                }
            }
            ImportKind::Star => Resolved::unresolved(),
        }
    }

    /// What `from m import name` written in `from` binds. A package importing from itself
    /// (`from . import x` in `__init__.py`) means its submodule, not its own binding.
    fn imported_member(
        &mut self,
        from: SourceFile,
        m: &ModuleRef,
        name: &str,
        depth: u32,
    ) -> Resolved {
        if *m == ModuleRef::File(from) {
            return match self.lang.submodule(self.map, m, name) {
                Some(sm) => Resolved::new(Target::Module(sm.clone()), Entity::Module(sm)),
                None => Resolved::unresolved(),
            };
        }
        self.module_member(m, name, depth)
            .unwrap_or_else(Resolved::unresolved)
    }

    /// `module.name`: a top-level item of the module's files, a glob re-export, or a submodule.
    fn module_member(&mut self, m: &ModuleRef, name: &str, depth: u32) -> Option<Resolved> {
        if depth > MAX_DEPTH {
            return None;
        }
        if let Some((file, key)) = self.lang.module_item(self.map, m) {
            let id = DefId {
                file,
                key: DefKey::Path(key),
            };
            return self.class_member(&id, name, depth + 1);
        }
        let files = self.files_of(m);
        if let Some(f) = self.top_file(m, &files, name) {
            let iface = file_interface(self.db, f);
            if let Some(&item) = iface.top.get(name) {
                return Some(self.item(f, &iface, item, depth));
            }
        }
        let mut external_star = false;
        for &f in files.iter() {
            let iface = file_interface(self.db, f);
            for &star in iface.stars.iter().rev() {
                let Some(spec) = iface.imports.get(star as usize) else {
                    continue;
                };
                match self.resolve_module_from(f, &spec.module, spec.level) {
                    ModuleResolution::Project(sm) if sm != *m && self.star_exports(&sm, name) => {
                        // A glob that finds the name but cannot resolve it (an import cycle)
                        // does not hide later globs.
                        if let Some(res) = self.module_member(&sm, name, depth + 1)
                            && res.target != Target::Unresolved
                        {
                            return Some(res);
                        }
                    }
                    ModuleResolution::External => external_star = true,
                    _ => {}
                }
            }
        }
        let sub = self
            .lang
            .submodule(self.map, m, name)
            .map(|sm| Resolved::new(Target::Module(sm.clone()), Entity::Module(sm)));
        // A name not found in a module that glob-imports an external module may come from it.
        sub.or_else(|| external_star.then(Resolved::external))
    }

    /// An item of another file's interface (or this file's), following re-exports.
    fn item(&mut self, f: SourceFile, iface: &FileInterface, item: u32, depth: u32) -> Resolved {
        let Some(it) = iface.items.get(item as usize) else {
            return Resolved::unresolved();
        };
        let id = DefId {
            file: f,
            key: DefKey::Path(it.key.clone()),
        };
        let Some(spec) = it.import.and_then(|i| iface.imports.get(i as usize)) else {
            return Resolved::new(Target::Def(id.clone()), Entity::Def(id, it.kind));
        };
        if depth > MAX_DEPTH {
            return Resolved::unresolved();
        }
        match &spec.kind {
            ImportKind::Module { alias: None } => {
                let root = spec.module.split('.').next().unwrap_or("");
                Self::module_resolved(self.resolve_module_from(f, root, spec.level))
            }
            ImportKind::Module { alias: Some(_) } => {
                let m =
                    Self::module_resolved(self.resolve_module_from(f, &spec.module, spec.level));
                Resolved::new(Target::Def(id), m.entity)
            }
            ImportKind::From { name, alias } => {
                let member = match self.resolve_module_from(f, &spec.module, spec.level) {
                    ModuleResolution::Project(m) => self.imported_member(f, &m, name, depth + 1),
                    ModuleResolution::External => Resolved::external(),
                    ModuleResolution::Missing => Resolved::unresolved(),
                };
                if alias.is_some() {
                    Resolved::new(Target::Def(id), member.entity)
                } else {
                    member
                }
            }
            ImportKind::Star => Resolved::unresolved(),
        }
    }

    fn member_of(&mut self, entity: &Entity, name: &str, depth: u32) -> Resolved {
        match entity {
            Entity::Module(m) => {
                let m = m.clone();
                self.module_member(&m, name, depth)
                    .unwrap_or_else(Resolved::unresolved)
            }
            Entity::Def(id, kind) if kind.has_members() => {
                let id = id.clone();
                self.class_member(&id, name, depth)
                    .unwrap_or(Resolved::new(Target::Probable, Entity::Unknown))
            }
            Entity::Def(
                id,
                SymbolKind::Variable
                | SymbolKind::Parameter
                | SymbolKind::Field
                | SymbolKind::Constant,
            ) => {
                // A variable whose type is known (its `bases` hold the type as written).
                let id = id.clone();
                match self.declared_type(&id) {
                    Some(ty) => match self.dotted_in(id.file, &ty, depth + 1) {
                        Entity::Def(tid, tkind) if tkind.has_members() => self
                            .class_member(&tid, name, depth + 1)
                            .unwrap_or(Resolved::new(Target::Probable, Entity::Unknown)),
                        Entity::External => Resolved::external(),
                        _ => Resolved::new(Target::Probable, Entity::Unknown),
                    },
                    None => Resolved::new(Target::Probable, Entity::Unknown),
                }
            }
            Entity::External => Resolved::external(),
            _ => Resolved::new(Target::Probable, Entity::Unknown),
        }
    }

    /// The declared type of a variable, parameter or field (its first `bases` entry).
    fn declared_type(&self, id: &DefId) -> Option<Name> {
        match &id.key {
            DefKey::Local(d) if id.file == self.file => self.index.def(*d)?.bases.first().cloned(),
            DefKey::Local(_) => None,
            DefKey::Path(key) => {
                let iface = file_interface(self.db, id.file);
                let &item = iface.keys.get(key)?;
                iface.items.get(item as usize)?.bases.first().cloned()
            }
        }
    }

    /// A member of a class (or other container), searching project base classes depth-first.
    fn class_member(&mut self, class: &DefId, name: &str, depth: u32) -> Option<Resolved> {
        if depth > MAX_DEPTH {
            return None;
        }
        match &class.key {
            DefKey::Path(key) => {
                let iface = file_interface(self.db, class.file);
                let &item = iface.keys.get(key)?;
                let it = iface.items.get(item as usize)?;
                if let Some(&m) = it.members.get(name) {
                    return Some(self.item(class.file, &iface, m, depth));
                }
                if it.import.is_some() {
                    // An import binding used as a container (`use a::Kind; use Kind::*;`).
                    return match self.item(class.file, &iface, item, depth + 1).entity {
                        Entity::Def(real, kind) if kind.has_members() && real != *class => {
                            self.class_member(&real, name, depth + 1)
                        }
                        Entity::Module(m) => self.module_member(&m, name, depth + 1),
                        _ => None,
                    };
                }
                let member_key = format!("{key}.{name}");
                let members = match self.member_cache.get(&class.file) {
                    Some(m) => m.clone(),
                    None => {
                        let mut all: HashMap<Name, SourceFile> = HashMap::default();
                        for f in self.lang.member_files(self.map, class.file) {
                            if f == class.file {
                                continue;
                            }
                            for k in file_interface(self.db, f).keys.keys() {
                                if k.contains('.') {
                                    all.entry(k.clone()).or_insert(f);
                                }
                            }
                        }
                        let all = Arc::new(all);
                        self.member_cache.insert(class.file, all.clone());
                        all
                    }
                };
                if let Some(&f) = members.get(member_key.as_str()) {
                    let other = file_interface(self.db, f);
                    if let Some(&m) = other.keys.get(member_key.as_str()) {
                        return Some(self.item(f, &other, m, depth));
                    }
                }
                for base in it.bases.clone() {
                    if let Entity::Def(bid, kind) = self.dotted_in(class.file, &base, depth + 1)
                        && kind.has_members()
                        && bid != *class
                        && let Some(r) = self.class_member(&bid, name, depth + 1)
                    {
                        return Some(r);
                    }
                }
                None
            }
            DefKey::Local(d) => {
                if class.file != self.file {
                    return None;
                }
                let def = self.index.def(*d)?;
                let body = def.body?;
                if let Some(&m) = self.index.scope(body).and_then(|s| s.names.get(name)) {
                    return Some(self.local_def(m, depth + 1));
                }
                for base in def.bases.clone() {
                    if let Entity::Def(bid, kind) = self.dotted_in(class.file, &base, depth + 1)
                        && kind.has_members()
                        && bid != *class
                        && let Some(r) = self.class_member(&bid, name, depth + 1)
                    {
                        return Some(r);
                    }
                }
                None
            }
        }
    }

    /// A member found in the bases of `class` (not in the class itself): `super().name`.
    fn base_member(&mut self, class: &DefId, name: &str, depth: u32) -> Option<Resolved> {
        let bases = match &class.key {
            DefKey::Path(key) => {
                let iface = file_interface(self.db, class.file);
                let &item = iface.keys.get(key)?;
                iface.items.get(item as usize)?.bases.clone()
            }
            DefKey::Local(d) => self.index.def(*d)?.bases.clone(),
        };
        for base in bases {
            if let Entity::Def(bid, kind) = self.dotted_in(class.file, &base, depth + 1)
                && kind.has_members()
                && bid != *class
                && let Some(r) = self.class_member(&bid, name, depth + 1)
            {
                return Some(r);
            }
        }
        None
    }

    /// What a dotted name written at the top level of `file` denotes.
    fn dotted_in(&mut self, file: SourceFile, dotted: &str, depth: u32) -> Entity {
        let mut segs = dotted.split('.');
        let Some(first) = segs.next() else {
            return Entity::Unknown;
        };
        let mut entity = if file == self.file {
            match lookup_local(self.lang, self.index, 0, first) {
                Lookup::Local(d) => self.local_def(d, depth).entity,
                Lookup::Builtin => Entity::External,
                Lookup::NotFound => self
                    .star_lookup(0, first)
                    .map(|r| r.entity)
                    .unwrap_or(Entity::Unknown),
            }
        } else {
            match self.module_member(&ModuleRef::File(file), first, depth) {
                Some(r) => r.entity,
                None if self.lang.is_builtin(first) => Entity::External,
                None => Entity::Unknown,
            }
        };
        for seg in segs {
            entity = self.member_of(&entity, seg, depth + 1).entity;
        }
        entity
    }
}

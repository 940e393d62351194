//! Rename planning: from the symbol at a cursor to a `ChangeSet` with exact and probable edits
//! kept apart, or a refusal naming the conflict (invalid identifier, keyword, a name already
//! visible at an edited site — with where it is defined).

use crate::ide::{Analysis, FilePosition, Location, RenameError, RenamePlan, is_member};
use crate::lang::{self, LanguageModule};
use crate::model::{DefIdx, FileIndex, ImportKind, Qualifier, ScopeIdx, TextRange};
use crate::resolve::{DefId, Lookup, Target, lookup_local};
use crate::{AnalysisError, db::SourceFile};
use hivesync_protocol::{ChangeSet, Confidence, FileChange, TextEdit};
use std::collections::{BTreeMap, HashMap};

pub(crate) fn plan(
    a: &Analysis,
    pos: &FilePosition,
    new_name: &str,
) -> Result<RenamePlan, AnalysisError> {
    let refuse = |e: RenameError| Err(AnalysisError::Rename(e));
    let here = format!("{}:{}:{}", pos.path, pos.line, pos.column);
    let (_, found) = a.target_and_name(pos)?;
    let Some((target, old)) = found else {
        return refuse(RenameError::NothingToRename(here));
    };
    let id = match target {
        Target::Def(id) => id,
        Target::Module(_) => {
            return refuse(RenameError::Module {
                name: old.to_string(),
            });
        }
        Target::Builtin | Target::External => {
            return refuse(RenameError::NotInProject {
                name: old.to_string(),
            });
        }
        Target::Unresolved | Target::Probable => {
            return refuse(RenameError::NothingToRename(format!(
                "{here} (`{old}` does not resolve to a definition in the project)"
            )));
        }
    };
    let Some((index, d)) = a.def_of(&id) else {
        return refuse(RenameError::NothingToRename(here));
    };
    let def = &index.defs[d as usize];
    if let Some(ImportKind::Module { alias: None }) = def
        .import
        .and_then(|i| index.imports.get(i as usize))
        .map(|i| &i.kind)
    {
        return refuse(RenameError::Module {
            name: old.to_string(),
        });
    }
    let language = index
        .language
        .and_then(lang::module_for)
        .ok_or_else(|| AnalysisError::UnsupportedLanguage(pos.path.clone()))?;
    if new_name == &*old {
        return refuse(RenameError::SameName(new_name.to_owned()));
    }
    if language.keywords().contains(&new_name) {
        return refuse(RenameError::Keyword(new_name.to_owned()));
    }
    if !language.is_identifier(new_name) {
        return refuse(RenameError::InvalidIdentifier(new_name.to_owned()));
    }

    let sites = a.refs_of(&Target::Def(id.clone()), &old);
    let checker = ConflictCheck {
        a,
        language,
        new_name,
        renamed: &id,
        def_index: &index,
        def: d,
    };
    checker.container()?;
    // Sites come sorted by path: look each file up once, and its references by range once.
    let mut i = 0;
    while i < sites.len() {
        let path = &sites[i].path;
        let end = i + sites[i..].iter().take_while(|s| &s.path == path).count();
        let group = &sites[i..end];
        if let Some(file) = a.file(path) {
            let index = crate::db::file_index(a.db(), file);
            let wanted: std::collections::HashSet<TextRange> =
                group.iter().map(|s| s.range).collect();
            let mut ref_at: HashMap<TextRange, usize> = HashMap::with_capacity(group.len());
            for (r, reference) in index.refs.iter().enumerate() {
                if wanted.contains(&reference.range) {
                    ref_at.entry(reference.range).or_insert(r);
                }
            }
            for site in group {
                checker.site(file, &index, &ref_at, site)?;
            }
        }
        i = end;
    }
    let def_path = a.location_of(id.file, def.name_range).path;
    let site_paths: Vec<&str> = sites.iter().map(|s| s.path.as_str()).collect();
    if let Some(message) = language.rename_refusal(&old, new_name, &def_path, &site_paths) {
        return refuse(RenameError::LanguageRule(message));
    }

    let mut by_file: BTreeMap<String, Vec<TextEdit>> = BTreeMap::new();
    for s in &sites {
        // A shorthand `{ old }` keeps its property key: `{ old: new }`.
        let shorthand = a.file(&s.path).is_some_and(|f| {
            crate::db::file_index(a.db(), f)
                .shorthand
                .binary_search(&s.range)
                .is_ok()
        });
        let new_text = if shorthand {
            format!("{old}: {new_name}")
        } else {
            new_name.to_owned()
        };
        by_file.entry(s.path.clone()).or_default().push(TextEdit {
            start: s.range.start as usize,
            end: s.range.end as usize,
            new_text,
            confidence: s.confidence,
        });
    }
    let mut files = Vec::new();
    let (mut exact, mut probable) = (0, 0);
    for (path, mut edits) in by_file {
        edits.sort_by_key(|e| (e.start, e.end));
        edits.dedup_by(|x, y| x.start == y.start && x.end == y.end);
        for e in &edits {
            match e.confidence {
                Confidence::Exact => exact += 1,
                Confidence::Probable => probable += 1,
            }
        }
        let text = a.text(&path).unwrap_or_default();
        files.push(FileChange {
            base_hash: Some(blake3::hash(text.as_bytes()).to_hex().to_string()),
            path,
            edits,
            delete: false,
        });
    }
    Ok(RenamePlan {
        old_name: old.to_string(),
        new_name: new_name.to_owned(),
        change: ChangeSet {
            title: format!("Rename `{old}` to `{new_name}`"),
            files,
        },
        exact_edits: exact,
        probable_edits: probable,
    })
}

struct ConflictCheck<'a> {
    a: &'a Analysis,
    language: &'static dyn LanguageModule,
    new_name: &'a str,
    renamed: &'a DefId,
    def_index: &'a FileIndex,
    def: DefIdx,
}

impl ConflictCheck<'_> {
    fn conflict(&self, location: String, site: &Location) -> Result<(), AnalysisError> {
        Err(AnalysisError::Rename(RenameError::Conflict {
            new_name: self.new_name.to_owned(),
            location,
            site: format!("{}:{}:{}", site.path, site.line, site.column),
        }))
    }

    fn defined_at(&self, file: SourceFile, index: &FileIndex, d: DefIdx) -> String {
        let loc = self.a.location_of(file, index.defs[d as usize].name_range);
        format!("defined at {}:{}:{}", loc.path, loc.line, loc.column)
    }

    /// The scope holding the renamed definition must not already bind the new name.
    fn container(&self) -> Result<(), AnalysisError> {
        let def = &self.def_index.defs[self.def as usize];
        if let Some(&other) = self
            .def_index
            .scope(def.scope)
            .and_then(|s| s.names.get(self.new_name))
        {
            let site = self.a.location_of(self.renamed.file, def.name_range);
            return self.conflict(
                self.defined_at(self.renamed.file, self.def_index, other),
                &site,
            );
        }
        Ok(())
    }

    /// A name already visible at an edited bare-name site would be shadowed or would capture.
    fn site(
        &self,
        file: SourceFile,
        index: &FileIndex,
        ref_at: &HashMap<TextRange, usize>,
        site: &Location,
    ) -> Result<(), AnalysisError> {
        let def = &self.def_index.defs[self.def as usize];
        let is_decl = file == self.renamed.file && site.range == def.name_range;
        let scope: Option<ScopeIdx> = if is_decl {
            // Members are reached through their container, already checked.
            (!is_member(self.def_index, def)).then_some(def.scope)
        } else {
            ref_at
                .get(&site.range)
                .map(|&r| &index.refs[r])
                .and_then(|r| match r.qualifier {
                    Qualifier::None => Some(r.scope),
                    Qualifier::ImportMember(imp) => {
                        let i = index.imports.get(imp as usize)?;
                        match &i.kind {
                            ImportKind::From { alias: None, .. } => Some(i.scope),
                            _ => None,
                        }
                    }
                    _ => None,
                })
        };
        let Some(scope) = scope else {
            return Ok(());
        };
        match lookup_local(self.language, index, scope, self.new_name) {
            Lookup::Local(other) => self.conflict(self.defined_at(file, index, other), site),
            Lookup::Builtin => self.conflict("(a builtin)".to_owned(), site),
            Lookup::NotFound => Ok(()),
        }
    }
}

//! Python fixtures: definitions, references, scopes, imports, rename (and its refusals), hover,
//! outlines, documentation gaps, diagnostics. Each fixture is the smallest project showing one
//! rule; `$0` is the cursor.

use hivesync_analysis::fixture::{Fixture, defs, refs, refused, rename, render};
use hivesync_analysis::{AnalysisError, RenameError};

// ---- imports -------------------------------------------------------------------------------

#[test]
fn from_import_resolves_to_definition_in_package() {
    assert_eq!(
        defs(
            r#"
            //- /pkg/__init__.py
            //- /pkg/util.py
            def helper():
                pass
            //- /main.py
            from pkg.util import helper
            helper$0()
            "#
        ),
        ["pkg/util.py:1:5"]
    );
}

#[test]
fn import_dotted_and_attribute_chain() {
    assert_eq!(
        defs(
            r#"
            //- /a/__init__.py
            //- /a/b.py
            def f(): pass
            //- /main.py
            import a.b
            a.b.f$0()
            "#
        ),
        ["a/b.py:1:5"]
    );
}

#[test]
fn import_as_alias_names_the_module() {
    assert_eq!(
        defs(
            r#"
            //- /a/__init__.py
            //- /a/b.py
            def f(): pass
            //- /main.py
            import a.b as c
            c.f$0()
            "#
        ),
        ["a/b.py:1:5"]
    );
}

#[test]
fn relative_imports_with_levels_and_alias() {
    let fixture = r#"
        //- /pkg/__init__.py
        //- /pkg/a.py
        def b(): pass
        //- /pkg/sub/__init__.py
        //- /pkg/sub/x.py
        def y(): pass
        //- /pkg/sub/m.py
        from . import x
        from ..a import b as c
        x.y()
        c$0()
        "#;
    assert_eq!(defs(fixture), ["pkg/sub/m.py:2:22"]);
    let f = Fixture::parse(&fixture.replace("c$0()", "c()").replace("x.y()", "x.y$0()"));
    assert_eq!(
        render(&f.analysis().definition(&f.position()).expect("defs")),
        ["pkg/sub/x.py:1:5"]
    );
    // The alias's imported name points at the original.
    let f = Fixture::parse(
        &fixture
            .replace("c$0()", "c()")
            .replace("import b as", "import b$0 as"),
    );
    assert_eq!(
        render(&f.analysis().definition(&f.position()).expect("defs")),
        ["pkg/a.py:1:5"]
    );
}

#[test]
fn namespace_package_without_init() {
    assert_eq!(
        defs(
            r#"
            //- /ns/mod.py
            VALUE = 1
            //- /main.py
            from ns.mod import VALUE
            print(VALUE$0)
            "#
        ),
        ["ns/mod.py:1:1"]
    );
}

#[test]
fn src_layout_packages_import_by_package_name() {
    assert_eq!(
        defs(
            r#"
            //- /src/app/__init__.py
            //- /src/app/core.py
            class Engine: pass
            //- /tests/test_core.py
            from app.core import Engine
            Engine$0()
            "#
        ),
        ["src/app/core.py:1:7"]
    );
}

#[test]
fn star_import_honours_dunder_all() {
    let fixture = r#"
        //- /m.py
        __all__ = ["public"]
        def public(): pass
        def other(): pass
        //- /main.py
        from m import *
        public()
        other$0()
        "#;
    assert_eq!(defs(fixture), Vec::<String>::new());
    assert_eq!(
        defs(
            &fixture
                .replace("other$0()", "other()")
                .replace("public()\n", "public$0()\n")
        ),
        ["m.py:2:5"]
    );
    // Without __all__, underscore names stay private.
    assert_eq!(
        defs(
            r#"
            //- /m.py
            def _hidden(): pass
            def shown(): pass
            //- /main.py
            from m import *
            shown$0()
            _hidden()
            "#
        ),
        ["m.py:2:5"]
    );
}

#[test]
fn reexport_through_package_init() {
    assert_eq!(
        defs(
            r#"
            //- /pkg/__init__.py
            from .impl import run
            //- /pkg/impl.py
            def run(): pass
            //- /main.py
            import pkg
            pkg.run$0()
            "#
        ),
        ["pkg/impl.py:1:5"]
    );
}

#[test]
fn submodule_attribute_through_package() {
    assert_eq!(
        defs(
            r#"
            //- /pkg/__init__.py
            //- /pkg/tools.py
            def go(): pass
            //- /main.py
            from pkg import tools
            tools.go$0()
            "#
        ),
        ["pkg/tools.py:1:5"]
    );
}

// ---- scopes --------------------------------------------------------------------------------

#[test]
fn local_shadows_global() {
    assert_eq!(
        defs(
            r#"
            x = 1
            def f():
                x = 2
                return x$0
            "#
        ),
        ["main.py:3:5"]
    );
}

#[test]
fn class_body_is_invisible_to_methods() {
    assert_eq!(
        defs(
            r#"
            y = 0
            class C:
                y = 1
                def m(self):
                    return y$0
            "#
        ),
        ["main.py:1:1"]
    );
}

#[test]
fn comprehension_and_lambda_scopes() {
    assert_eq!(
        defs(
            r#"
            i = 10
            squares = [i * i$0 for i in range(3)]
            "#
        ),
        ["main.py:2:22"]
    );
    assert_eq!(
        defs(
            r#"
            i = 10
            after = i$0
            squares = [i for i in range(3)]
            "#
        ),
        ["main.py:1:1"]
    );
    assert_eq!(
        defs(
            r#"
            a = 1
            f = lambda a: a$0 + 1
            "#
        ),
        ["main.py:2:12"]
    );
}

#[test]
fn global_and_nonlocal() {
    assert_eq!(
        defs(
            r#"
            counter = 0
            def bump():
                global counter
                counter = counter + 1
                return counter$0
            "#
        ),
        ["main.py:1:1"]
    );
    assert_eq!(
        defs(
            r#"
            def outer():
                n = 0
                def inner():
                    nonlocal n
                    n += 1
                    return n$0
                return inner
            "#
        ),
        ["main.py:2:5"]
    );
}

#[test]
fn self_and_cls_members_and_project_bases() {
    assert_eq!(
        defs(
            r#"
            class C:
                def __init__(self):
                    self.value = 1
                def get(self):
                    return self.value$0
            "#
        ),
        ["main.py:3:14"]
    );
    assert_eq!(
        defs(
            r#"
            //- /base.py
            class Base:
                def greet(self): pass
            //- /main.py
            from base import Base
            class Child(Base):
                @classmethod
                def make(cls):
                    return cls.greet$0
            "#
        ),
        ["base.py:2:9"]
    );
}

#[test]
fn unknown_receiver_gives_probable_candidates() {
    let f = Fixture::parse(
        r#"
        //- /a.py
        class A:
            def run(self): pass
        //- /b.py
        def call(obj):
            obj.run$0()
        "#,
    );
    assert_eq!(
        render(&f.analysis().definition(&f.position()).expect("defs")),
        ["a.py:2:9 (probable)"]
    );
}

// ---- references ----------------------------------------------------------------------------

#[test]
fn references_across_files_with_and_without_declaration() {
    let fixture = r#"
        //- /lib.py
        def work$0(): pass
        //- /app.py
        from lib import work
        import lib
        work()
        lib.work()
        def other():
            work = 3
            return work
        "#;
    assert_eq!(
        refs(fixture, false),
        ["app.py:1:17", "app.py:3:1", "app.py:4:5"]
    );
    assert_eq!(
        refs(fixture, true),
        ["app.py:1:17", "app.py:3:1", "app.py:4:5", "lib.py:1:5"]
    );
}

#[test]
fn member_references_include_probable_ones_marked() {
    assert_eq!(
        refs(
            r#"
            //- /a.py
            class A:
                def run$0(self):
                    self.run()
            def use(x: A):
                A().run()
                x.run()
            "#,
            false
        ),
        ["a.py:3:14", "a.py:5:9", "a.py:6:7 (probable)"]
    );
}

// ---- rename --------------------------------------------------------------------------------

#[test]
fn rename_across_files_keeps_probable_apart() {
    let fixture = r#"
        //- /lib.py
        __all__ = ["Job"]
        class Job:
            def start$0(self): pass
            def again(self):
                self.start()
        //- /app.py
        from lib import Job
        def go(j):
            Job().start()
            j.start()
        "#;
    let exact = rename(fixture, "launch", false).expect("rename");
    assert_eq!(
        exact,
        [
            (
                "app.py".to_owned(),
                "from lib import Job\ndef go(j):\n    Job().launch()\n    j.start()\n".to_owned()
            ),
            (
                "lib.py".to_owned(),
                "__all__ = [\"Job\"]\nclass Job:\n    def launch(self): pass\n    def again(self):\n        self.launch()\n".to_owned()
            ),
        ]
    );
    let all = rename(fixture, "launch", true).expect("rename");
    assert_eq!(all[0].0, "app.py");
    assert_eq!(
        all[0].1,
        "from lib import Job\ndef go(j):\n    Job().launch()\n    j.launch()\n"
    );
}

#[test]
fn rename_updates_imports_and_dunder_all() {
    let out = rename(
        r#"
        //- /lib.py
        __all__ = ["work"]
        def work$0(): pass
        //- /app.py
        from lib import work
        work()
        "#,
        "labour",
        false,
    )
    .expect("rename");
    assert_eq!(
        out,
        [
            (
                "app.py".to_owned(),
                "from lib import labour\nlabour()\n".to_owned()
            ),
            (
                "lib.py".to_owned(),
                "__all__ = [\"labour\"]\ndef labour(): pass\n".to_owned()
            ),
        ]
    );
}

#[test]
fn rename_plan_carries_base_hashes() {
    let f = Fixture::parse("x$0 = 1\nprint(x)\n");
    let plan = f.analysis().rename(&f.position(), "y").expect("plan");
    assert_eq!(plan.exact_edits, 2);
    assert_eq!(plan.change.files.len(), 1);
    assert_eq!(
        plan.change.files[0].base_hash.as_deref(),
        Some(blake3::hash(b"x = 1\nprint(x)\n").to_hex().as_str())
    );
}

#[test]
fn rename_refuses_invalid_names_and_keywords() {
    let fixture = "def f$0(): pass\n";
    assert_eq!(
        refused(fixture, "1abc"),
        RenameError::InvalidIdentifier("1abc".into())
    );
    assert_eq!(
        refused(fixture, "a-b"),
        RenameError::InvalidIdentifier("a-b".into())
    );
    assert_eq!(
        refused(fixture, "class"),
        RenameError::Keyword("class".into())
    );
}

#[test]
fn rename_refuses_collision_naming_the_location() {
    let err = refused(
        r#"
        def f$0(): pass
        def g(): pass
        "#,
        "g",
    );
    assert_eq!(
        err,
        RenameError::Conflict {
            new_name: "g".into(),
            location: "defined at main.py:2:5".into(),
            site: "main.py:1:5".into(),
        }
    );
    assert!(err.to_string().contains("main.py:2:5"), "{err}");
}

#[test]
fn rename_refuses_capture_in_inner_scope() {
    let err = refused(
        r#"
        //- /lib.py
        def helper$0(): pass
        //- /app.py
        from lib import helper
        def run():
            data = 1
            return helper() + data
        "#,
        "data",
    );
    assert_eq!(
        err,
        RenameError::Conflict {
            new_name: "data".into(),
            location: "defined at app.py:3:5".into(),
            site: "app.py:4:12".into(),
        }
    );
}

#[test]
fn rename_refuses_shadowing_a_builtin_in_use() {
    let err = refused("def f():\n    x$0 = 1\n    return x\n", "len");
    assert!(
        matches!(&err, RenameError::Conflict { location, .. } if location == "(a builtin)"),
        "{err:?}"
    );
}

#[test]
fn rename_of_builtin_or_module_is_refused() {
    assert!(matches!(
        refused("print$0(1)\n", "echo"),
        RenameError::NotInProject { .. }
    ));
    assert!(matches!(
        refused("//- /m.py\n//- /main.py\nimport m$0\n", "n"),
        RenameError::Module { .. }
    ));
}

// ---- hover, symbols, docs, diagnostics -------------------------------------------------------

#[test]
fn hover_shows_signature_and_docstring() {
    let f = Fixture::parse(
        r#"
        //- /lib.py
        def area(w: int, h: int = 2) -> int:
            """Area of a rectangle.

            Both sides in metres.
            """
            return w * h
        //- /main.py
        from lib import area
        area$0(1)
        "#,
    );
    let hover = f
        .analysis()
        .hover(&f.position())
        .expect("hover")
        .expect("some");
    assert_eq!(
        hover.signature.as_deref(),
        Some("def area(w: int, h: int = 2) -> int")
    );
    assert_eq!(
        hover.doc.as_deref(),
        Some("Area of a rectangle.\n\nBoth sides in metres.")
    );
    assert_eq!((hover.path.as_str(), hover.line), ("lib.py", 1));
}

#[test]
fn document_symbols_are_hierarchical() {
    let f = Fixture::parse(
        r#"
        LIMIT = 3
        class Shape:
            sides = 0
            def area(self):
                local = 1
                return local
        def main(): pass
        "#,
    );
    let symbols = f.analysis().document_symbols("main.py").expect("symbols");
    let outline: Vec<String> = symbols
        .iter()
        .map(|s| {
            let children: Vec<&str> = s.children.iter().map(|c| c.name.as_str()).collect();
            format!("{}:{}[{}]", s.name, s.kind.name(), children.join(","))
        })
        .collect();
    assert_eq!(
        outline,
        [
            "LIMIT:constant[]",
            "Shape:class[sides,area]",
            "main:function[]"
        ]
    );
}

#[test]
fn workspace_symbols_fuzzy_ranked() {
    let f = Fixture::parse(
        r#"
        //- /a.py
        class HttpRequest: pass
        def handle_request(): pass
        def unrelated(): pass
        //- /b.py
        REQUEST_LIMIT = 1
        "#,
    );
    let hits = f
        .analysis()
        .workspace_symbols("request", 10)
        .expect("symbols");
    let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
    // Prefix matches first, then substrings (shorter names first); non-matches never.
    assert_eq!(names, ["REQUEST_LIMIT", "HttpRequest", "handle_request"]);
    let fuzzy = f.analysis().workspace_symbols("hrq", 10).expect("symbols");
    assert_eq!(fuzzy.first().map(|h| h.name.as_str()), Some("HttpRequest"));
}

#[test]
fn doc_gaps_report_public_undocumented_definitions() {
    let f = Fixture::parse(
        r#"
        class Documented:
            """Has docs."""
            def method(self):
                return 1
            def _private(self):
                pass
        def bare(x):
            return x
        def _hidden(): pass
        "#,
    );
    let gaps = f.analysis().doc_gaps().expect("gaps");
    let names: Vec<(&str, u32, u32, &str)> = gaps
        .iter()
        .map(|g| {
            (
                g.qualified_name.as_str(),
                g.insert_line,
                g.insert_column,
                g.indent.as_str(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("Documented.method", 4, 9, "        "),
            ("bare", 8, 5, "    ")
        ]
    );
    assert_eq!(gaps[0].syntax.open, "\"\"\"");
}

#[test]
fn diagnostics_for_unresolved_project_imports_only() {
    let f = Fixture::parse(
        r#"
        //- /pkg/__init__.py
        //- /pkg/real.py
        def thing(): pass
        //- /main.py
        import os
        import numpy
        from . import nowhere
        from pkg import missing_mod
        from pkg.real import nothing
        import pkg.ghost
        "#,
    );
    let diags = f.analysis().diagnostics(None).expect("diagnostics");
    let msgs: Vec<String> = diags
        .iter()
        .map(|d| format!("{}:{} {}", d.path, d.line, d.message))
        .collect();
    assert_eq!(
        msgs,
        [
            "main.py:3 `nowhere` is not defined in module `.`".to_owned(),
            "main.py:4 `missing_mod` is not defined in module `pkg/__init__.py`".to_owned(),
            "main.py:5 `nothing` is not defined in module `pkg/real.py`".to_owned(),
            "main.py:6 unresolved import `pkg.ghost`: no such module in the project".to_owned(),
        ]
    );
}

// ---- robustness ----------------------------------------------------------------------------

#[test]
fn bad_positions_and_files_are_clear_errors() {
    let f = Fixture::parse("x = 1\n");
    let a = f.analysis();
    let pos = |path: &str, line, column| hivesync_analysis::FilePosition {
        path: path.into(),
        line,
        column,
    };
    assert_eq!(
        a.definition(&pos("nope.py", 1, 1)),
        Err(AnalysisError::FileNotFound("nope.py".into()))
    );
    assert!(matches!(
        a.definition(&pos("main.py", 9, 1)),
        Err(AnalysisError::PositionOutOfRange { line: 9, .. })
    ));
    assert!(matches!(
        a.references(&pos("main.py", 1, 99), false),
        Err(AnalysisError::PositionOutOfRange { column: 99, .. })
    ));
    assert_eq!(a.definition(&pos("main.py", 1, 5)), Ok(vec![]));
}

#[test]
fn syntax_errors_leave_the_rest_analysed() {
    let f = Fixture::parse(
        r#"
        //- /broken.py
        def ok(): pass
        def broken(:
            x = = 1
        //- /main.py
        from broken import ok
        ok$0()
        "#,
    );
    assert_eq!(
        render(&f.analysis().definition(&f.position()).expect("defs")),
        ["broken.py:1:5"]
    );
    let stats = f.analysis().stats().expect("stats");
    assert_eq!(stats.parse_errors, 1);
}

#[test]
fn instance_of_called_class_and_super_resolve_exactly() {
    assert_eq!(
        defs(
            r#"
            class Shape:
                def area(self): pass
            Shape().area$0()
            "#
        ),
        ["main.py:2:9"]
    );
    assert_eq!(
        defs(
            r#"
            //- /base.py
            class Base:
                def __init__(self, x): pass
            //- /main.py
            from base import Base
            class Child(Base):
                def __init__(self):
                    super().__init__$0(1)
            "#
        ),
        ["base.py:2:9"]
    );
    // A function's result is unknown: probable.
    assert_eq!(
        defs(
            r#"
            class Shape:
                def area(self): pass
            def make(): pass
            make().area$0()
            "#
        ),
        ["main.py:2:9 (probable)"]
    );
}

#[test]
fn package_importing_its_own_submodule() {
    assert_eq!(
        defs(
            r#"
            //- /pkg/__init__.py
            from . import tools
            tools.go$0()
            //- /pkg/tools.py
            def go(): pass
            "#
        ),
        ["pkg/tools.py:1:5"]
    );
}

//! Go fixtures: packages as directories, go.mod import paths, package-level declarations shared
//! across files, selectors through imports, methods and fields, typed locals, scopes, rename
//! (and its refusals, including visibility), hover, outlines, documentation gaps, diagnostics.
//! Each fixture is the smallest project showing one rule; `$0` is the cursor.

use hivesync_analysis::RenameError;
use hivesync_analysis::fixture::{Fixture, defs, refs, refused, rename, render};

const GO_MOD: &str = "//- /go.mod\nmodule example.com/app\n\ngo 1.22\n";

fn with_mod(fixture: &str) -> String {
    format!("{GO_MOD}{}", unindent(fixture))
}

fn unindent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: String = text
        .lines()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    out
}

/// The server package fixture followed by `rest`.
fn with_server(rest: &str) -> String {
    with_mod(&format!("{}{}", unindent(SERVER), unindent(rest)))
}

// ---- packages and imports ------------------------------------------------------------------

#[test]
fn package_declarations_are_shared_across_files() {
    assert_eq!(
        defs(
            r#"
            //- /util/a.go
            package util

            func helper() int { return 1 }
            //- /util/b.go
            package util

            func Use() int { return helper$0() }
            "#
        ),
        ["util/a.go:3:6"]
    );
}

#[test]
fn go_mod_import_path_selects_a_project_package() {
    assert_eq!(
        defs(&with_mod(
            r#"
            //- /internal/store/store.go
            package store

            func Open() {}
            //- /cmd/app/main.go
            package main

            import "example.com/app/internal/store"

            func main() { store.Open$0() }
            "#
        )),
        ["internal/store/store.go:3:6"]
    );
}

#[test]
fn import_alias_dot_and_blank_imports() {
    let fixture = with_mod(
        r#"
        //- /lib/lib.go
        package lib

        const Answer = 42

        func Ask() int { return Answer }
        //- /main.go
        package main

        import (
            l "example.com/app/lib"
            . "example.com/app/lib"
            _ "example.com/app/lib"
            "fmt"
        )

        func main() {
            fmt.Println(l.Answer$0, Ask())
        }
        "#,
    );
    assert_eq!(defs(&fixture), ["lib/lib.go:3:7"]);
    // The dot import brings the package's names in unqualified.
    assert_eq!(
        defs(&fixture.replace("l.Answer$0, Ask()", "l.Answer, Ask$0()")),
        ["lib/lib.go:5:6"]
    );
    // The alias itself is a definition of the file.
    assert_eq!(
        defs(&fixture.replace("l.Answer$0", "l$0.Answer")),
        ["main.go:4:5"]
    );
    // The standard library is external: nothing to jump to, no diagnostic.
    assert_eq!(
        defs(
            &fixture
                .replace("l.Answer$0", "l.Answer")
                .replace("fmt.Println", "fmt.Println$0")
        ),
        Vec::<String>::new()
    );
    let f = Fixture::parse(&fixture);
    assert_eq!(f.analysis().diagnostics(None).expect("diagnostics"), vec![]);
}

#[test]
fn references_of_an_exported_function_across_packages() {
    assert_eq!(
        refs(
            &with_mod(
                r#"
                //- /lib/lib.go
                package lib

                func Ask$0() int { return 1 }

                func twice() int { return Ask() + Ask() }
                //- /main.go
                package main

                import "example.com/app/lib"

                func main() { lib.Ask() }
                "#
            ),
            true
        ),
        [
            "lib/lib.go:3:6",
            "lib/lib.go:5:27",
            "lib/lib.go:5:35",
            "main.go:5:19",
        ]
    );
}

#[test]
fn external_test_package_is_its_own_package() {
    let fixture = with_mod(
        r#"
        //- /lib/lib.go
        package lib

        func helper() int { return 1 }

        func Exported() int { return helper() }
        //- /lib/lib_internal_test.go
        package lib

        func helperForTests() int { return helper() }
        //- /lib/lib_test.go
        package lib_test

        import "example.com/app/lib"

        func helper() int { return lib.Exported() }

        func check() int { return helper$0() }
        "#,
    );
    // The x_test package's own `helper`, not the package's unexported one.
    assert_eq!(defs(&fixture), ["lib/lib_test.go:5:6"]);
    // An internal test file sees the package's unexported names.
    assert_eq!(
        defs(
            &fixture
                .replace("return helper$0() }", "return helper() }")
                .replace(
                    "helperForTests() int { return helper()",
                    "helperForTests() int { return helper$0()"
                )
        ),
        ["lib/lib.go:3:6"]
    );
}

#[test]
fn unresolved_project_import_is_a_diagnostic() {
    let f = Fixture::parse(&with_mod(
        r#"
        //- /main.go
        package main

        import (
            "example.com/app/missing"
            "github.com/other/thing"
        )

        func main() { missing.X(); thing.Y() }
        "#,
    ));
    let diags = f.analysis().diagnostics(None).expect("diagnostics");
    let msgs: Vec<String> = diags
        .iter()
        .map(|d| format!("{}:{} {}", d.path, d.line, d.message))
        .collect();
    assert_eq!(
        msgs,
        ["main.go:4 unresolved import `example.com/app/missing`: no such module in the project"]
    );
}

#[test]
fn missing_member_of_a_project_package_is_not_exact() {
    let f = Fixture::parse(&with_mod(
        r#"
        //- /lib/lib.go
        package lib

        func A() {}
        //- /main.go
        package main

        import "example.com/app/lib"

        func main() { lib.B$0() }
        "#,
    ));
    assert_eq!(
        render(&f.analysis().definition(&f.position()).expect("defs")),
        Vec::<String>::new()
    );
    let stats = f.analysis().stats().expect("stats");
    assert_eq!(stats.references.unresolved, 1, "{stats:?}");
}

// ---- types, methods, fields ----------------------------------------------------------------

const SERVER: &str = r#"
//- /server/server.go
package server

// Server serves.
type Server struct {
    Port int
    name string
}

// New makes a server.
func New() *Server { return &Server{Port: 80} }
//- /server/run.go
package server

func (s *Server) Start() error {
    s.name = "x"
    return s.listen()
}

func (s *Server) listen() error { return nil }
"#;

#[test]
fn methods_in_another_file_are_members_of_the_type() {
    let fixture = with_server(
        r#"
        //- /main.go
        package main

        import "example.com/app/server"

        func main() {
            var s server.Server
            s.Start$0()
        }
        "#,
    );
    assert_eq!(defs(&fixture), ["server/run.go:3:18"]);
    // The receiver's field, through `s` of type *Server.
    assert_eq!(
        defs(
            &fixture
                .replace("s.Start$0()", "s.Start()")
                .replace("s.name = ", "s.name$0 = ")
        ),
        ["server/server.go:6:5"]
    );
    // A method called on the receiver.
    assert_eq!(
        defs(
            &fixture
                .replace("s.Start$0()", "s.Start()")
                .replace("s.listen()", "s.listen$0()")
        ),
        ["server/run.go:8:18"]
    );
}

#[test]
fn typed_locals_resolve_methods_exactly() {
    let base = r#"
        //- /t.go
        package main

        type T struct{ N int }

        func (t T) M() int { return t.N }

        type U struct{ N int }

        func (u *U) M() int { return u.N }

        func viaVar() { var a T; a.M$0() }
        func viaLiteral() { b := T{}; b.M() }
        func viaPointer() { c := &U{N: 1}; c.M() }
        func viaParam(d *U) { d.M() }
        func viaNew() { e := new(T); e.M() }
        func unknown(f func() T) { g := f(); g.M() }
        "#;
    assert_eq!(defs(base), ["t.go:5:12"]);
    assert_eq!(
        refs(
            &base
                .replace("a.M$0()", "a.M()")
                .replace("func (t T) M()", "func (t T) M$0()"),
            false
        ),
        [
            "t.go:11:28",
            "t.go:12:33",
            "t.go:15:32",
            "t.go:16:40 (probable)"
        ]
    );
    assert_eq!(
        refs(
            &base
                .replace("a.M$0()", "a.M()")
                .replace("func (u *U) M()", "func (u *U) M$0()"),
            false
        ),
        ["t.go:13:38", "t.go:14:25", "t.go:16:40 (probable)"]
    );
    // The composite literal key is the field.
    assert_eq!(
        defs(
            &base
                .replace("a.M$0()", "a.M()")
                .replace("&U{N: 1}", "&U{N$0: 1}")
        ),
        ["t.go:7:16"]
    );
}

#[test]
fn embedded_struct_promotes_members() {
    assert_eq!(
        defs(
            r#"
            //- /m.go
            package main

            type Base struct{ ID int }

            func (b Base) Describe() string { return "" }

            type Item struct {
                Base
                Name string
            }

            func f(i Item) string { return i.Describe$0() }
            "#
        ),
        ["m.go:5:15"]
    );
}

#[test]
fn interface_methods_and_struct_fields_in_outline() {
    let f = Fixture::parse(
        r#"
        //- /shapes.go
        package shapes

        type Shape interface {
            Area() float64
        }

        type Rect struct {
            W, H float64
        }

        func (r Rect) Area() float64 { return r.W * r.H }

        var Default = Rect{W: 1, H: 1}
        "#,
    );
    let symbols = f.analysis().document_symbols("shapes.go").expect("symbols");
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
            "Shape:interface[Area]",
            "Rect:struct[W,H,Area]",
            "Default:variable[]"
        ]
    );
}

// ---- scopes --------------------------------------------------------------------------------

#[test]
fn block_and_statement_scopes() {
    let base = r#"
        //- /s.go
        package main

        var x = 1

        func f(n int) int {
            if x := n * 2; x > 3 {
                return x
            }
            for i := 0; i < n; i++ {
                x := i
                _ = x
            }
            switch y := n; y {
            case 1:
                z := y
                return z
            }
            {
                x := "inner"
                _ = x
            }
            return x$0
        }
        "#;
    assert_eq!(defs(base), ["s.go:3:5"]);
    assert_eq!(
        defs(
            &base
                .replace("return x$0", "return x")
                .replace("return x\n", "return x$0\n")
        ),
        ["s.go:6:8"]
    );
    assert_eq!(
        defs(&base.replace("return x$0", "return x").replace(
            "_ = x\n            }\n            switch",
            "_ = x$0\n            }\n            switch"
        )),
        ["s.go:10:9"]
    );
    assert_eq!(
        defs(
            &base
                .replace("return x$0", "return x")
                .replace("return z", "return z$0")
        ),
        ["s.go:15:9"]
    );
    assert_eq!(
        defs(
            &base
                .replace("return x$0", "return x")
                .replace("z := y", "z := y$0")
        ),
        ["s.go:13:12"]
    );
}

#[test]
fn short_var_redeclaration_and_closures() {
    let base = r#"
        //- /c.go
        package main

        func f() (int, error) {
            a, err := g()
            b, err := g()
            inc := func(v int) int { return v + a }
            return inc(b), err$0
        }

        func g() (int, error) { return 0, nil }
        "#;
    // `:=` with an already declared name assigns it.
    assert_eq!(defs(base), ["c.go:4:8"]);
    assert_eq!(
        refs(
            &base.replace("err$0", "err").replace("v + a", "v$0 + a"),
            true
        ),
        ["c.go:6:17", "c.go:6:37"]
    );
    assert_eq!(
        defs(&base.replace("err$0", "err").replace("v + a", "v + a$0")),
        ["c.go:4:5"]
    );
}

#[test]
fn range_and_type_switch_bindings() {
    let base = r#"
        //- /r.go
        package main

        type T struct{ N int }

        func f(items []T, v interface{}) int {
            total := 0
            for _, it := range items {
                total += it.N
            }
            switch t := v.(type) {
            case T:
                return t.N$0
            }
            return total
        }
        "#;
    assert_eq!(defs(base), ["r.go:3:16"]);
    assert_eq!(
        defs(
            &base
                .replace("t.N$0", "t.N")
                .replace("total += it", "total += it$0")
        ),
        ["r.go:7:12"]
    );
}

// ---- rename --------------------------------------------------------------------------------

#[test]
fn rename_method_across_files_and_packages() {
    let fixture = with_server(
        r#"
        //- /main.go
        package main

        import "example.com/app/server"

        func main() {
            s := server.New()
            var t server.Server
            t.Start$0()
            s.Start()
        }
        "#,
    );
    let out = rename(&fixture, "Run", false).expect("rename");
    let paths: Vec<&str> = out.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["main.go", "server/run.go"]);
    assert!(out[0].1.contains("t.Run()\n    s.Start()"), "{}", out[0].1);
    assert!(
        out[1].1.contains("func (s *Server) Run() error"),
        "{}",
        out[1].1
    );
    // With probable edits, the call on `s` (type unknown: New's result) is renamed too.
    let out = rename(&fixture, "Run", true).expect("rename");
    assert!(out[0].1.contains("t.Run()\n    s.Run()"), "{}", out[0].1);
}

#[test]
fn rename_field_edits_literal_keys_and_selectors() {
    let out = rename(
        &with_server(
            r#"
            //- /main.go
            package main

            import "example.com/app/server"

            func main() {
                s := server.Server{Port$0: 1}
                _ = s.Port
            }
            "#,
        ),
        "Addr",
        false,
    )
    .expect("rename");
    let texts: Vec<String> = out.iter().map(|(p, t)| format!("{p}\n{t}")).collect();
    assert!(
        texts[0].starts_with("main.go")
            && texts[0].contains("server.Server{Addr: 1}")
            && texts[0].contains("_ = s.Addr"),
        "{texts:?}"
    );
    assert!(
        texts[1].starts_with("server/server.go")
            && texts[1].contains("    Addr int")
            && texts[1].contains("&Server{Addr: 80}"),
        "{texts:?}"
    );
}

#[test]
fn rename_refuses_unexporting_a_name_used_from_another_package() {
    let fixture = with_mod(
        r#"
        //- /lib/lib.go
        package lib

        func Ask$0() int { return 1 }
        //- /main.go
        package main

        import "example.com/app/lib"

        func main() { lib.Ask() }
        "#,
    );
    let err = refused(&fixture, "ask");
    assert!(
        matches!(&err, RenameError::LanguageRule(m) if m.contains("unexport") && m.contains("main.go")),
        "{err:?}"
    );
    // Used only inside its package: fine.
    let local = fixture.replace("lib.Ask()", "_ = 1");
    let out = rename(&local, "ask", false).expect("rename");
    assert_eq!(out[0].1, "package lib\n\nfunc ask() int { return 1 }\n");
}

#[test]
fn rename_refusals_keywords_identifiers_and_conflicts() {
    let fixture = r#"
        //- /a.go
        package main

        func helper() int { return 1 }
        //- /b.go
        package main

        func other() int { return 2 }

        func run() int {
            value := 3
            return helper$0() + value
        }
        "#;
    assert_eq!(
        refused(fixture, "func"),
        RenameError::Keyword("func".into())
    );
    assert_eq!(
        refused(fixture, "1x"),
        RenameError::InvalidIdentifier("1x".into())
    );
    // A package-level name in another file of the package.
    assert!(
        matches!(refused(fixture, "other"), RenameError::Conflict { location, .. } if location == "defined at b.go:3:6"),
    );
    // A local visible at the call site would capture it.
    assert_eq!(
        refused(fixture, "value"),
        RenameError::Conflict {
            new_name: "value".into(),
            location: "defined at b.go:6:5".into(),
            site: "b.go:7:12".into(),
        }
    );
    // A predeclared identifier.
    assert!(matches!(
        refused(fixture, "len"),
        RenameError::Conflict { location, .. } if location == "(a builtin)"
    ));
    // Package names are not renamable; standard-library ones are not even in the project.
    assert!(matches!(
        refused(
            "//- /m.go\npackage main\n\nimport \"fmt\"\n\nfunc main() { fmt$0.Println() }\n",
            "f"
        ),
        RenameError::NotInProject { .. }
    ));
    let project = with_mod(
        r#"
        //- /lib/lib.go
        package lib

        func A() {}
        //- /main.go
        package main

        import "example.com/app/lib"

        func main() { lib$0.A() }
        "#,
    );
    assert!(matches!(refused(&project, "l"), RenameError::Module { .. }));
}

#[test]
fn rename_local_variable_and_parameter() {
    let out = rename(
        r#"
        //- /l.go
        package main

        func f(count int) int {
            total := count$0
            for i := 0; i < count; i++ {
                total += i
            }
            return total
        }
        "#,
        "n",
        false,
    )
    .expect("rename");
    assert_eq!(
        out,
        [(
            "l.go".to_owned(),
            "package main\n\nfunc f(n int) int {\n    total := n\n    for i := 0; i < n; i++ {\n        total += i\n    }\n    return total\n}\n"
                .to_owned()
        )]
    );
}

// ---- hover, docs ---------------------------------------------------------------------------

#[test]
fn hover_shows_signature_and_line_comments() {
    let f = Fixture::parse(&with_server(
        r#"
        //- /main.go
        package main

        import "example.com/app/server"

        func main() { server.New$0() }
        "#,
    ));
    let hover = f
        .analysis()
        .hover(&f.position())
        .expect("hover")
        .expect("some");
    assert_eq!(hover.signature.as_deref(), Some("func New() *Server"));
    assert_eq!(hover.doc.as_deref(), Some("New makes a server."));
    assert_eq!((hover.path.as_str(), hover.line), ("server/server.go", 10));
}

#[test]
fn doc_gaps_report_exported_undocumented_declarations() {
    let f = Fixture::parse(
        r#"
        //- /p.go
        package p

        // Documented has docs.
        func Documented() {}

        func Bare() {}

        func private() {}

        type Thing struct{}

        func (t Thing) Do() {}

        func (t Thing) quiet() {}
        "#,
    );
    let gaps = f.analysis().doc_gaps().expect("gaps");
    let names: Vec<(&str, u32, u32)> = gaps
        .iter()
        .map(|g| (g.qualified_name.as_str(), g.insert_line, g.insert_column))
        .collect();
    assert_eq!(
        names,
        [("Bare", 6, 1), ("Thing", 10, 1), ("Thing.Do", 12, 1)]
    );
    assert_eq!(gaps[0].syntax.open, "//");
    assert_eq!(gaps[0].syntax.placement, "before_item");
}

#[test]
fn syntax_errors_leave_the_rest_analysed() {
    let f = Fixture::parse(
        r#"
        //- /broken.go
        package main

        func ok() {}

        func broken( {
        //- /main.go
        package main

        func main() { ok$0() }
        "#,
    );
    assert_eq!(
        render(&f.analysis().definition(&f.position()).expect("defs")),
        ["broken.go:3:6"]
    );
    assert_eq!(f.analysis().stats().expect("stats").parse_errors, 1);
}

#[test]
fn package_level_variable_typed_in_another_file() {
    assert_eq!(
        defs(
            r#"
            //- /app/state.go
            package app

            var current Server
            //- /app/server.go
            package app

            type Server struct{ Name string }

            func (s *Server) Stop() {}
            //- /app/main.go
            package app

            func shutdown() { current.Stop$0() }
            "#
        ),
        ["app/server.go:5:18"]
    );
}

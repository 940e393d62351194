//! Rust fixtures: the module tree (`mod x;` files, `mod.rs`, nested files, inline modules),
//! `use` paths (`crate::`, `super::`, `self::`, groups, renames, globs), workspace crates by
//! name, items, impl and trait-impl members, enum variants, `self`/`Self` inside impls, locals
//! and patterns with shadowing, rename (and its refusals), hover, outlines, documentation gaps,
//! diagnostics. Each fixture is the smallest project showing one rule; `$0` is the cursor.

use hivesync_analysis::RenameError;
use hivesync_analysis::fixture::{Fixture, defs, refs, refused, rename, render};

/// The fixture with the `$0` marker moved: `from` (containing `$0`) becomes itself without the
/// marker, and `to` (without it) is replaced by `marked`.
fn moved(fixture: &str, from: &str, to: &str, marked: &str) -> String {
    fixture
        .replace(from, &from.replace("$0", ""))
        .replacen(to, marked, 1)
}

// ---- module tree ---------------------------------------------------------------------------

#[test]
fn mod_declarations_find_files_and_mod_rs() {
    let fixture = r#"
        //- /src/lib.rs
        mod net;
        mod util;

        pub fn run() {
            net::connect$0();
            util::helper();
        }
        //- /src/net.rs
        pub fn connect() {}
        //- /src/util/mod.rs
        pub fn helper() {}
        "#;
    assert_eq!(defs(fixture), ["src/net.rs:1:8"]);
    assert_eq!(
        defs(&moved(fixture, "connect$0()", "helper()", "helper$0()")),
        ["src/util/mod.rs:1:8"]
    );
}

#[test]
fn nested_module_file_and_super_path() {
    let fixture = r#"
        //- /src/main.rs
        mod a;

        fn top() -> u8 { 1 }

        fn main() { a::b::leaf$0(); }
        //- /src/a.rs
        pub mod b;

        pub fn mid() -> u8 { super::top() }
        //- /src/a/b.rs
        pub fn leaf() -> u8 { super::mid() + crate::top() }
        "#;
    assert_eq!(defs(fixture), ["src/a/b.rs:1:8"]);
    assert_eq!(
        defs(&moved(
            fixture,
            "leaf$0()",
            "super::mid()",
            "super::mid$0()"
        )),
        ["src/a.rs:3:8"]
    );
    assert_eq!(
        defs(&moved(
            fixture,
            "leaf$0()",
            "crate::top()",
            "crate::top$0()"
        )),
        ["src/main.rs:3:4"]
    );
    assert_eq!(
        defs(&moved(
            fixture,
            "leaf$0()",
            "super::top()",
            "super::top$0()"
        )),
        ["src/main.rs:3:4"]
    );
}

#[test]
fn inline_modules_and_their_paths() {
    let fixture = r#"
        //- /src/lib.rs
        pub mod outer {
            pub mod inner {
                pub fn deep() {}
            }
            pub fn near() { self::inner::deep(); }
        }

        use outer::inner;

        fn f() {
            inner::deep$0();
            outer::near();
            crate::outer::inner::deep();
        }
        "#;
    assert_eq!(defs(fixture), ["src/lib.rs:3:16"]);
    assert_eq!(
        defs(&moved(
            fixture,
            "deep$0()",
            "self::inner::deep()",
            "self::inner::deep$0()"
        )),
        ["src/lib.rs:3:16"]
    );
    assert_eq!(
        defs(&moved(
            fixture,
            "deep$0()",
            "crate::outer::inner::deep()",
            "crate::outer::inner::deep$0()"
        )),
        ["src/lib.rs:3:16"]
    );
    assert_eq!(
        refs(
            &moved(fixture, "deep$0()", "pub fn deep()", "pub fn deep$0()"),
            false
        ),
        ["src/lib.rs:5:34", "src/lib.rs:11:12", "src/lib.rs:13:26"]
    );
}

// ---- use paths -----------------------------------------------------------------------------

const SHAPES: &str = r#"
//- /src/lib.rs
pub mod shapes;
pub mod app;
//- /src/shapes.rs
pub struct Circle { pub r: f64 }
pub struct Square;
pub enum Kind { Round, Flat }
pub fn area(c: &Circle) -> f64 { c.r * c.r }
"#;

#[test]
fn use_groups_renames_and_self() {
    let fixture = format!(
        "{SHAPES}{}",
        r#"//- /src/app.rs
use crate::shapes::{self, Circle as C, Kind::{Flat, Round}};
use super::shapes::area;

pub fn go() -> f64 {
    let c = C { r: 1.0 };
    let _k = [Round, Flat];
    let _s = shapes::Square;
    area$0(&c)
}
"#
    );
    assert_eq!(defs(&fixture), ["src/shapes.rs:4:8"]);
    // The renamed import is its own binding; its imported name points at the struct.
    assert_eq!(
        defs(&moved(&fixture, "area$0(", "C { r", "C$0 { r")),
        ["src/app.rs:1:37"]
    );
    assert_eq!(
        defs(&moved(&fixture, "area$0(", "Circle as", "Circle$0 as")),
        ["src/shapes.rs:1:12"]
    );
    assert_eq!(
        defs(&moved(&fixture, "area$0(", "[Round", "[Round$0")),
        ["src/shapes.rs:3:17"]
    );
    assert_eq!(
        defs(&moved(
            &fixture,
            "area$0(",
            "shapes::Square",
            "shapes::Square$0"
        )),
        ["src/shapes.rs:2:12"]
    );
    // A field through the renamed struct literal.
    assert_eq!(
        defs(&moved(&fixture, "area$0(", "C { r", "C { r$0")),
        ["src/shapes.rs:1:25"]
    );
}

#[test]
fn glob_imports_and_enum_variant_globs() {
    let fixture = format!(
        "{SHAPES}{}",
        r#"//- /src/app.rs
use crate::shapes::{Circle, Kind};
use Kind::*;

pub fn go(k: Kind) -> bool {
    let _c = Circle { r: 2.0 };
    matches!(k, Round$0)
}
"#
    );
    assert_eq!(defs(&fixture), ["src/shapes.rs:3:17"]);
    assert_eq!(
        defs(&moved(&fixture, "Round$0", "Circle {", "Circle$0 {")),
        ["src/shapes.rs:1:12"]
    );
}

#[test]
fn workspace_crates_by_name() {
    let fixture = r#"
        //- /Cargo.toml
        [workspace]
        members = ["crates/*"]
        //- /crates/core-lib/Cargo.toml
        [package]
        name = "core-lib"
        //- /crates/core-lib/src/lib.rs
        pub mod model;
        pub use model::Thing;
        //- /crates/core-lib/src/model.rs
        pub struct Thing;
        impl Thing {
            pub fn new() -> Self { Thing }
        }
        //- /crates/app/Cargo.toml
        [package]
        name = "app"
        //- /crates/app/src/main.rs
        use core_lib::Thing;
        use serde::Serialize;

        fn main() {
            let _t = Thing::new$0();
            let _m = core_lib::model::Thing;
        }
        "#;
    assert_eq!(defs(fixture), ["crates/core-lib/src/model.rs:3:12"]);
    assert_eq!(
        defs(&moved(
            fixture,
            "new$0()",
            "core_lib::model::Thing;",
            "core_lib::model::Thing$0;"
        )),
        ["crates/core-lib/src/model.rs:1:12"]
    );
    // Re-exported name and external crates: no diagnostics.
    let f = Fixture::parse(fixture);
    assert_eq!(f.analysis().diagnostics(None).expect("diagnostics"), vec![]);
}

#[test]
fn missing_module_file_is_a_diagnostic() {
    let f = Fixture::parse(
        r#"
        //- /src/lib.rs
        mod present;
        mod absent;
        use crate::present::nothing;
        //- /src/present.rs
        pub fn something() {}
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
            "src/lib.rs:2 unresolved import `self::absent`: no such module in the project",
            "src/lib.rs:3 `nothing` is not defined in module `src/present.rs`",
        ]
    );
}

// ---- items and members ---------------------------------------------------------------------

const COUNTER: &str = r#"
//- /src/lib.rs
pub struct Counter {
    pub count: u32,
    step: u32,
}

impl Counter {
    pub const START: u32 = 0;

    pub fn new(step: u32) -> Self {
        Self { count: Self::START, step }
    }

    pub fn tick(&mut self) -> u32 {
        self.count += self.step;
        self.report();
        self.count
    }

    fn report(&self) {}
}

impl std::fmt::Display for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.count)
    }
}

pub fn use_it() -> u32 {
    let mut c = Counter::new(2);
    let d: Counter = Counter::new(3);
    c.tick() + d.count
}
"#;

#[test]
fn impl_members_self_and_assoc_paths() {
    let at = |from: &str, marked: &str| defs(&COUNTER.replacen(from, marked, 1));
    assert_eq!(
        at("Counter::new(2)", "Counter::new$0(2)"),
        ["src/lib.rs:9:12"]
    );
    assert_eq!(at("self.step;", "self.step$0;"), ["src/lib.rs:3:5"]);
    assert_eq!(at("self.report()", "self.report$0()"), ["src/lib.rs:19:8"]);
    assert_eq!(at("Self::START", "Self::START$0"), ["src/lib.rs:7:15"]);
    assert_eq!(at("Self { count", "Self { count$0"), ["src/lib.rs:2:9"]);
    // A typed local resolves exactly; an untyped one by name only.
    assert_eq!(at("d.count", "d.count$0"), ["src/lib.rs:2:9"]);
    assert_eq!(
        at("c.tick()", "c.tick$0()"),
        ["src/lib.rs:13:12 (probable)"]
    );
    // Trait impl members belong to the type.
    assert_eq!(
        refs(&COUNTER.replacen("fn fmt(", "fn fmt$0(", 1), true),
        ["src/lib.rs:23:8"]
    );
}

#[test]
fn references_of_a_field_exact_and_probable() {
    assert_eq!(
        refs(
            &COUNTER.replacen("pub count: u32", "pub count$0: u32", 1),
            false
        ),
        [
            "src/lib.rs:10:16",
            "src/lib.rs:14:14",
            "src/lib.rs:16:14",
            "src/lib.rs:24:30",
            "src/lib.rs:31:18",
        ]
    );
}

#[test]
fn trait_methods_and_default_bodies() {
    let fixture = r#"
        //- /src/lib.rs
        pub trait Greet {
            fn name(&self) -> String;
            fn greet(&self) -> String { format!("hi {}", self.name$0()) }
        }
        "#;
    assert_eq!(defs(fixture), ["src/lib.rs:2:8"]);
}

#[test]
fn impl_in_another_file_is_found_by_name_only() {
    let fixture = r#"
        //- /src/lib.rs
        mod model;
        mod ops;
        use model::Point;
        pub fn f(p: Point) -> i32 { p.norm$0() }
        //- /src/model.rs
        pub struct Point { pub x: i32 }
        //- /src/ops.rs
        use crate::model::Point;
        impl Point {
            pub fn norm(&self) -> i32 { self.x }
        }
        "#;
    assert_eq!(defs(fixture), ["src/ops.rs:3:12 (probable)"]);
}

#[test]
fn getter_named_like_its_field_is_never_confused_exactly() {
    let fixture = r#"
        //- /src/lib.rs
        pub struct User { name: String }
        impl User {
            pub fn name(&self) -> &str { &self.name }
        }
        pub fn show(u: &User) -> &str { u.name$0() }
        "#;
    // Both the field and the method are candidates; neither is claimed as exact.
    assert_eq!(
        defs(fixture),
        ["src/lib.rs:1:19 (probable)", "src/lib.rs:3:12 (probable)"]
    );
}

#[test]
fn macro_rules_by_name() {
    assert_eq!(
        defs(
            r#"
            //- /src/lib.rs
            macro_rules! square {
                ($x:expr) => { $x * $x };
            }
            pub fn f() -> i32 { square$0!(3) }
            "#
        ),
        ["src/lib.rs:1:14"]
    );
}

// ---- locals and patterns -------------------------------------------------------------------

#[test]
fn let_shadowing_sees_the_previous_binding() {
    let fixture = r#"
        //- /src/lib.rs
        pub fn f(x: i32) -> i32 {
            let y = x + 1;
            let y = y * 2;
            y$0
        }
        "#;
    assert_eq!(defs(fixture), ["src/lib.rs:3:9"]);
    assert_eq!(
        defs(&moved(fixture, "y$0\n", "y * 2", "y$0 * 2")),
        ["src/lib.rs:2:9"]
    );
    assert_eq!(
        refs(&moved(fixture, "y$0\n", "let y = x", "let y$0 = x"), true),
        ["src/lib.rs:2:9", "src/lib.rs:3:13"]
    );
}

#[test]
fn patterns_closures_match_arms_and_if_let() {
    let fixture = r#"
        //- /src/lib.rs
        pub enum Shape { Circle { r: f64 }, Rect(f64, f64) }

        pub fn area(shapes: &[Shape], scale: Option<f64>) -> f64 {
            let (total, count) = (0.0, shapes.len());
            let k = if let Some(s) = scale { s } else { 1.0 };
            let sum: f64 = shapes
                .iter()
                .map(|shape| match shape {
                    Shape::Circle { r } => r * r * k,
                    Shape::Rect(w, h) => w * h$0,
                })
                .sum();
            sum + total / count as f64
        }
        "#;
    assert_eq!(defs(fixture), ["src/lib.rs:10:28"]);
    assert_eq!(
        defs(&moved(fixture, "h$0", "r * r", "r$0 * r")),
        ["src/lib.rs:9:29"]
    );
    assert_eq!(
        defs(&moved(fixture, "h$0", "{ s }", "{ s$0 }")),
        ["src/lib.rs:5:25"]
    );
    assert_eq!(
        defs(&moved(fixture, "h$0", "match shape", "match shape$0")),
        ["src/lib.rs:8:15"]
    );
    assert_eq!(
        defs(&moved(fixture, "h$0", "/ count", "/ count$0")),
        ["src/lib.rs:4:17"]
    );
    assert_eq!(
        defs(&moved(fixture, "h$0", "Shape::Rect(w", "Shape::Rect$0(w")),
        ["src/lib.rs:1:37"]
    );
}

// ---- rename --------------------------------------------------------------------------------

#[test]
fn rename_across_files_through_use_paths() {
    let fixture = format!(
        "{SHAPES}{}",
        r#"//- /src/app.rs
use crate::shapes::{area, Circle};

pub fn go() -> f64 {
    let c = Circle { r: 1.0 };
    area$0(&c) + crate::shapes::area(&c)
}
"#
    );
    let out = rename(&fixture, "surface", false).expect("rename");
    assert_eq!(
        out,
        [
            (
                "src/app.rs".to_owned(),
                "use crate::shapes::{surface, Circle};\n\npub fn go() -> f64 {\n    let c = Circle { r: 1.0 };\n    surface(&c) + crate::shapes::surface(&c)\n}\n".to_owned()
            ),
            (
                "src/shapes.rs".to_owned(),
                "pub struct Circle { pub r: f64 }\npub struct Square;\npub enum Kind { Round, Flat }\npub fn surface(c: &Circle) -> f64 { c.r * c.r }\n".to_owned()
            ),
        ]
    );
}

#[test]
fn rename_method_edits_exact_sites_and_keeps_probable_apart() {
    let out = rename(
        &COUNTER.replacen("pub fn tick(", "pub fn tick$0(", 1),
        "advance",
        false,
    )
    .expect("rename");
    assert_eq!(out.len(), 1);
    assert!(out[0].1.contains("pub fn advance(&mut self)"));
    // `c` has no known type: its call is probable, not edited by default.
    assert!(out[0].1.contains("c.tick() + d.count"), "{}", out[0].1);
    let out = rename(
        &COUNTER.replacen("pub fn tick(", "pub fn tick$0(", 1),
        "advance",
        true,
    )
    .expect("rename");
    assert!(out[0].1.contains("c.advance() + d.count"), "{}", out[0].1);
}

#[test]
fn rename_refusals() {
    let fixture = r#"
        //- /src/lib.rs
        mod util;
        pub fn helper() -> i32 { 1 }
        pub fn other() -> i32 { 2 }
        pub fn run(value: i32) -> i32 {
            helper$0() + value + util::x()
        }
        //- /src/util.rs
        pub fn x() -> i32 { 3 }
        "#;
    assert_eq!(refused(fixture, "fn"), RenameError::Keyword("fn".into()));
    assert_eq!(
        refused(fixture, "Self"),
        RenameError::Keyword("Self".into())
    );
    assert_eq!(
        refused(fixture, "a-b"),
        RenameError::InvalidIdentifier("a-b".into())
    );
    assert_eq!(
        refused(fixture, "other"),
        RenameError::Conflict {
            new_name: "other".into(),
            location: "defined at src/lib.rs:3:8".into(),
            site: "src/lib.rs:2:8".into(),
        }
    );
    assert_eq!(
        refused(fixture, "value"),
        RenameError::Conflict {
            new_name: "value".into(),
            location: "defined at src/lib.rs:4:12".into(),
            site: "src/lib.rs:5:5".into(),
        }
    );
    assert!(matches!(
        refused(
            &moved(fixture, "helper$0()", "util::x", "util$0::x"),
            "tools"
        ),
        RenameError::Module { .. }
    ));
    // Raw identifiers are valid new names.
    let out = rename(fixture, "r#match", false).expect("rename");
    assert!(out[0].1.contains("pub fn r#match() -> i32"), "{}", out[0].1);
}

#[test]
fn rename_local_with_shadowing() {
    let out = rename(
        r#"
        //- /src/lib.rs
        pub fn f(x: i32) -> i32 {
            let y$0 = x + 1;
            let y = y * 2;
            y
        }
        "#,
        "z",
        false,
    )
    .expect("rename");
    assert_eq!(
        out[0].1,
        "pub fn f(x: i32) -> i32 {\n    let z = x + 1;\n    let y = z * 2;\n    y\n}\n"
    );
}

// ---- hover, outline, docs ------------------------------------------------------------------

#[test]
fn hover_shows_signature_and_doc_comment() {
    let f = Fixture::parse(
        r#"
        //- /src/lib.rs
        /// Adds two numbers.
        ///
        /// Wraps on overflow.
        #[inline]
        pub fn add(a: u8, b: u8) -> u8 { a.wrapping_add(b) }

        pub fn f() -> u8 { add$0(1, 2) }
        "#,
    );
    let hover = f
        .analysis()
        .hover(&f.position())
        .expect("hover")
        .expect("some");
    assert_eq!(
        hover.signature.as_deref(),
        Some("pub fn add(a: u8, b: u8) -> u8")
    );
    assert_eq!(
        hover.doc.as_deref(),
        Some("Adds two numbers.\n\nWraps on overflow.")
    );
}

#[test]
fn document_symbols_are_hierarchical() {
    let f = Fixture::parse(COUNTER);
    let symbols = f
        .analysis()
        .document_symbols("src/lib.rs")
        .expect("symbols");
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
            "Counter:struct[count,step,START,new,tick,report,fmt]",
            "use_it:function[]"
        ]
    );
}

#[test]
fn doc_gaps_report_pub_items_without_docs() {
    let f = Fixture::parse(
        r#"
        //- /src/lib.rs
        /// Documented.
        pub fn documented() {}

        #[derive(Debug)]
        pub struct Bare;

        fn private() {}

        pub(crate) fn crate_only() {}

        impl Bare {
            pub fn method(&self) {}
        }
        "#,
    );
    let gaps = f.analysis().doc_gaps().expect("gaps");
    let names: Vec<(&str, u32, u32)> = gaps
        .iter()
        .map(|g| (g.qualified_name.as_str(), g.insert_line, g.insert_column))
        .collect();
    assert_eq!(names, [("Bare", 4, 1), ("Bare.method", 12, 5)]);
    assert_eq!(gaps[0].syntax.open, "///");
}

#[test]
fn syntax_errors_leave_the_rest_analysed() {
    let f = Fixture::parse(
        r#"
        //- /src/lib.rs
        mod broken;
        pub fn f() { broken::ok$0(); }
        //- /src/broken.rs
        pub fn ok() {}
        pub fn bad( {
        "#,
    );
    assert_eq!(
        render(&f.analysis().definition(&f.position()).expect("defs")),
        ["src/broken.rs:1:8"]
    );
    assert_eq!(f.analysis().stats().expect("stats").parse_errors, 1);
}

#[test]
fn path_attribute_names_the_module_file() {
    assert_eq!(
        defs(
            r#"
            //- /src/lib.rs
            #[path = "platform/unix_impl.rs"]
            mod imp;
            pub fn f() { imp::open$0(); }
            //- /src/platform/unix_impl.rs
            pub fn open() {}
            "#
        ),
        ["src/platform/unix_impl.rs:1:8"]
    );
}

#[test]
fn glob_reexports_of_external_modules_are_not_errors() {
    let f = Fixture::parse(
        r#"
        //- /src/lib.rs
        mod sync;
        mod a;
        mod b;
        use sync::{Arc, Local};
        pub fn f(_: Arc<u8>, _: Local) {}
        //- /src/sync.rs
        pub use std::sync::*;
        pub struct Local;
        //- /src/a.rs
        pub use crate::b::*;
        pub fn only_a() {}
        //- /src/b.rs
        pub use crate::a::*;
        pub fn only_b() {}
        "#,
    );
    assert_eq!(f.analysis().diagnostics(None).expect("diagnostics"), vec![]);
    // Mutual glob re-exports terminate and still find each side's items.
    let f = Fixture::parse(
        r#"
        //- /src/lib.rs
        mod a;
        mod b;
        pub fn g() { a::only_b$0(); }
        //- /src/a.rs
        pub use crate::b::*;
        //- /src/b.rs
        pub use crate::a::*;
        pub fn only_b() {}
        "#,
    );
    assert_eq!(
        render(&f.analysis().definition(&f.position()).expect("defs")),
        ["src/b.rs:2:8"]
    );
}

#[test]
fn rename_local_used_in_struct_shorthand_keeps_the_field() {
    let out = rename(
        r#"
        //- /src/lib.rs
        pub struct P { x: i32 }
        pub fn f(x$0: i32) -> i32 {
            let p = P { x };
            let P { x: y } = p;
            x + y
        }
        pub fn g(p: P) -> i32 {
            let P { x } = p;
            x
        }
        "#,
        "value",
        false,
    )
    .expect("rename");
    assert_eq!(
        out[0].1,
        "pub struct P { x: i32 }\npub fn f(value: i32) -> i32 {\n    let p = P { x: value };\n    let P { x: y } = p;\n    value + y\n}\npub fn g(p: P) -> i32 {\n    let P { x } = p;\n    x\n}\n"
    );
    // The binding of a shorthand pattern, renamed, keeps the field too.
    let out = rename(
        r#"
        //- /src/lib.rs
        pub struct P { x: i32 }
        pub fn g(p: P) -> i32 {
            let P { x } = p;
            x$0
        }
        "#,
        "n",
        false,
    )
    .expect("rename");
    assert_eq!(
        out[0].1,
        "pub struct P { x: i32 }\npub fn g(p: P) -> i32 {\n    let P { x: n } = p;\n    n\n}\n"
    );
}

//! The `docs` job's functions with the offline provider on a multi-language fixture (Python,
//! TypeScript, Rust, Go): the doc comments land at the engine's insertion points in each
//! language's convention (checked by applying the ChangeSet with `apply_to_text`), a failing
//! definition is skipped and reported, `paths` / `symbols` filter, the token budget stops
//! the rest, parameters are validated; and `explain` answers from the neighbourhood.
#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use hivesync_analysis::Analysis;
use hivesync_analysis::changeset::{apply_to_text, content_hash};
use hivesync_analysis::fixture::Fixture;
use hivesync_backend::ai::docs::{self, DocsOutcome, DocsParams};
use hivesync_backend::ai::offline::OfflineProvider;
use hivesync_backend::ai::{
    AiError, AiProvider, ChatReply, ChatRequest, ProviderKind, Subject, TokenUsage, explain,
};
use hivesync_protocol::Confidence;
use serde_json::json;

const FIXTURE: &str = r#"
//- /shapes.py
class Shape:
    def __init__(self, w, h):
        self.w = w
        self.h = h

    def area(self, scale: float = 1.0) -> float:
        if scale < 0:
            raise ValueError("negative scale")
        return self.w * self.h * scale


def describe(shape):
    return "area %s" % shape.area()


def _hidden():
    pass


def documented():
    """Already documented."""
    return 1
//- /app.py
from shapes import Shape, describe


def main():
    print(describe(Shape(2, 3)))
//- /web/geometry.ts
export function distance(a: Point, b: Point): number {
  if (!a || !b) {
    throw new TypeError("missing point");
  }
  return Math.hypot(a.x - b.x, a.y - b.y);
}

export class Point {
  constructor(public x: number, public y: number) {}
}
//- /web/main.ts
import { distance, Point } from "./geometry";

export function run(): void {
  console.log(distance(new Point(0, 0), new Point(3, 4)));
}
//- /src/lib.rs
pub struct Config {
    pub name: String,
}

pub fn parse(text: &str) -> Result<Config, Error> {
    if text.is_empty() {
        return Err(Error::Empty);
    }
    Ok(Config {
        name: text.to_string(),
    })
}

#[derive(Debug)]
pub enum Error {
    Empty,
}
//- /go.mod
module example.com/geo
//- /geo/geo.go
package geo

func Add(a int, b int) int {
	return a + b
}

type Vec struct {
	X int
}
"#;

fn analysis() -> (Fixture, Analysis) {
    let f = Fixture::parse(FIXTURE);
    let a = f.analysis();
    (f, a)
}

fn params(value: serde_json::Value) -> DocsParams {
    let mut v = value;
    v["snapshot_id"] = json!("0190b7a4-0000-7000-8000-000000000000");
    docs::parse_params(&v).unwrap()
}

async fn run(a: &Analysis, p: &DocsParams, provider: &dyn AiProvider) -> DocsOutcome {
    docs::generate(a, p, provider, u64::MAX, |_, _, _| {})
        .await
        .unwrap()
}

/// Every file of the fixture after applying the outcome's change set (base hashes checked).
fn applied(f: &Fixture, outcome: &DocsOutcome) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for change in &outcome.changeset.files {
        let base = f.text(&change.path).unwrap();
        assert_eq!(
            change.base_hash.as_deref(),
            Some(content_hash(base.as_bytes()).as_str()),
            "{}",
            change.path
        );
        assert!(
            change
                .edits
                .iter()
                .all(|e| e.confidence == Confidence::Exact)
        );
        out.push((
            change.path.clone(),
            apply_to_text(base, &change.edits).unwrap(),
        ));
    }
    out
}

fn file<'a>(files: &'a [(String, String)], path: &str) -> &'a str {
    &files
        .iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("{path} was not changed"))
        .1
}

#[tokio::test]
async fn offline_docs_in_all_four_languages_at_the_right_places() {
    let (f, a) = analysis();
    let mut seen = Vec::new();
    let outcome = docs::generate(
        &a,
        &params(json!({})),
        &OfflineProvider,
        u64::MAX,
        |d, t, s| seen.push((d, t, s.to_owned())),
    )
    .await
    .unwrap();
    assert!(outcome.failures.is_empty(), "{:?}", outcome.failures);
    let documented: Vec<(&str, &str)> = outcome
        .documented
        .iter()
        .map(|d| (d.path.as_str(), d.symbol.as_str()))
        .collect();
    assert_eq!(
        documented,
        vec![
            ("app.py", "main"),
            ("geo/geo.go", "Add"),
            ("geo/geo.go", "Vec"),
            ("shapes.py", "Shape"),
            ("shapes.py", "Shape.__init__"),
            ("shapes.py", "Shape.area"),
            ("shapes.py", "describe"),
            ("src/lib.rs", "Config"),
            ("src/lib.rs", "parse"),
            ("src/lib.rs", "Error"),
            ("web/geometry.ts", "distance"),
            ("web/geometry.ts", "Point"),
            ("web/main.ts", "run"),
        ]
    );
    assert_eq!(seen.len(), documented.len());
    assert_eq!(seen.last().unwrap().0, seen.last().unwrap().1);
    assert_eq!(outcome.changeset.title, "Document 13 definitions");

    let files = applied(&f, &outcome);
    assert_eq!(file(&files, "shapes.py"), EXPECTED_SHAPES_PY);
    assert_eq!(file(&files, "web/geometry.ts"), EXPECTED_GEOMETRY_TS);
    assert_eq!(file(&files, "src/lib.rs"), EXPECTED_LIB_RS);
    assert_eq!(file(&files, "geo/geo.go"), EXPECTED_GEO_GO);
    assert_eq!(
        file(&files, "app.py"),
        "from shapes import Shape, describe\n\n\ndef main():\n    \"\"\"Main.\"\"\"\n    print(describe(Shape(2, 3)))\n"
    );
    assert_eq!(
        file(&files, "web/main.ts"),
        "import { distance, Point } from \"./geometry\";\n\n/** Run. */\nexport function run(): void {\n  console.log(distance(new Point(0, 0), new Point(3, 4)));\n}\n"
    );

    // The result documents everything: a second run on the documented files finds nothing.
    let mut host = f.host();
    for (path, text) in &files {
        host.set_file(path, text.as_str());
    }
    let again = run(&host.snapshot(), &params(json!({})), &OfflineProvider).await;
    assert!(again.documented.is_empty(), "{:?}", again.documented);
    assert!(again.changeset.files.is_empty());
}

const EXPECTED_SHAPES_PY: &str = r#"class Shape:
    """Shape class.

    Used by `main` (app.py).
    """
    def __init__(self, w, h):
        """Create a new `Shape`.

        Args:
            w: The `w` argument.
            h: The `h` argument.
        """
        self.w = w
        self.h = h

    def area(self, scale: float = 1.0) -> float:
        """Area.

        Args:
            scale (float, optional): The `scale` argument.

        Returns:
            float: The result.

        Raises:
            ValueError: Raised by `area`.
        """
        if scale < 0:
            raise ValueError("negative scale")
        return self.w * self.h * scale


def describe(shape):
    """Describe.

    Args:
        shape: The `shape` argument.

    Returns:
        object: The result.

    Used by `main` (app.py).
    """
    return "area %s" % shape.area()


def _hidden():
    pass


def documented():
    """Already documented."""
    return 1
"#;
const EXPECTED_GEOMETRY_TS: &str = r#"/**
 * Distance.
 *
 * Used by `run` (web/main.ts).
 *
 * @param a - The `a` argument.
 * @param b - The `b` argument.
 * @returns The result (number).
 * @throws {TypeError}
 */
export function distance(a: Point, b: Point): number {
  if (!a || !b) {
    throw new TypeError("missing point");
  }
  return Math.hypot(a.x - b.x, a.y - b.y);
}

/**
 * Point class.
 *
 * Used by `distance` (web/geometry.ts), `run` (web/main.ts).
 */
export class Point {
  constructor(public x: number, public y: number) {}
}
"#;
const EXPECTED_LIB_RS: &str = r#"/// Config struct.
///
/// Used by `parse` (src/lib.rs).
pub struct Config {
    pub name: String,
}

/// Parse.
///
/// # Errors
///
/// Returns `Error::Empty` on failure.
pub fn parse(text: &str) -> Result<Config, Error> {
    if text.is_empty() {
        return Err(Error::Empty);
    }
    Ok(Config {
        name: text.to_string(),
    })
}

/// Error enum.
///
/// Used by `parse` (src/lib.rs).
#[derive(Debug)]
pub enum Error {
    Empty,
}
"#;
const EXPECTED_GEO_GO: &str = r#"package geo

// Add takes a int, b int and returns int.
func Add(a int, b int) int {
	return a + b
}

// Vec is a struct.
type Vec struct {
	X int
}
"#;

/// Fails for one definition, answers like a model with fences and markers for the rest.
struct Flaky;

#[async_trait]
impl AiProvider for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }

    async fn complete(&self, request: &ChatRequest) -> Result<ChatReply, AiError> {
        let Some(Subject::Document(ctx)) = &request.subject else {
            panic!("a docs request carries its definition");
        };
        if ctx.name == "describe" {
            return Err(AiError::Http {
                provider: "flaky",
                status: 500,
                message: "boom".into(),
                attempts: 3,
            });
        }
        assert!(
            request.user.contains(&ctx.source),
            "the prompt has the source"
        );
        Ok(ChatReply {
            text: format!("```\n/// Does {} things.\n```", ctx.name),
            usage: TokenUsage {
                input_tokens: 10,
                output_tokens: 5,
            },
        })
    }
}

#[tokio::test]
async fn a_failing_symbol_is_reported_and_skipped() {
    let (f, a) = analysis();
    let outcome = run(&a, &params(json!({"paths": ["shapes.py"]})), &Flaky).await;
    assert_eq!(outcome.failures.len(), 1);
    let failure = &outcome.failures[0];
    assert_eq!(
        (failure.path.as_str(), failure.symbol.as_str()),
        ("shapes.py", "describe")
    );
    assert!(
        failure.error.contains("HTTP 500: boom"),
        "{}",
        failure.error
    );
    let symbols: Vec<&str> = outcome
        .documented
        .iter()
        .map(|d| d.symbol.as_str())
        .collect();
    assert_eq!(symbols, vec!["Shape", "Shape.__init__", "Shape.area"]);
    assert_eq!(outcome.usage.total(), 45);
    let files = applied(&f, &outcome);
    let text = file(&files, "shapes.py");
    // Fences and `///` markers the model added are removed; the docstring is Python's.
    assert!(
        text.contains("    def area(self, scale: float = 1.0) -> float:\n        \"\"\"Does area things.\"\"\"\n        if scale < 0:"),
        "{text}"
    );
    assert!(text.contains("def describe(shape):\n    return"), "{text}");
}

#[tokio::test]
async fn paths_and_symbols_filter_and_unknown_symbols_are_reported() {
    let (_, a) = analysis();
    let only_web = run(&a, &params(json!({"paths": ["web/"]})), &OfflineProvider).await;
    let paths: Vec<&str> = only_web
        .documented
        .iter()
        .map(|d| d.path.as_str())
        .collect();
    assert_eq!(
        paths,
        vec!["web/geometry.ts", "web/geometry.ts", "web/main.ts"]
    );

    let some = run(
        &a,
        &params(json!({"symbols": ["Shape.area", "parse", "nope"]})),
        &OfflineProvider,
    )
    .await;
    let symbols: Vec<(&str, &str)> = some
        .documented
        .iter()
        .map(|d| (d.path.as_str(), d.symbol.as_str()))
        .collect();
    assert_eq!(
        symbols,
        vec![("shapes.py", "Shape.area"), ("src/lib.rs", "parse")]
    );
    assert_eq!(some.failures.len(), 1);
    assert_eq!(some.failures[0].symbol, "nope");
    assert!(
        some.failures[0]
            .error
            .contains("no public definition named `nope`")
    );

    let both = run(
        &a,
        &params(json!({"paths": ["src"], "symbols": ["parse", "area"]})),
        &OfflineProvider,
    )
    .await;
    let symbols: Vec<&str> = both.documented.iter().map(|d| d.symbol.as_str()).collect();
    assert_eq!(symbols, vec!["parse"]);
    assert_eq!(both.failures.len(), 1, "{:?}", both.failures);
}

#[tokio::test]
async fn the_token_budget_stops_the_remaining_definitions() {
    let (_, a) = analysis();
    let plan = docs::plan(&a, &params(json!({"paths": ["shapes.py"]}))).unwrap();
    assert_eq!(plan.tasks.len(), 4);
    let outcome = docs::run(plan, &Flaky, 20, |_, _, _| {}).await;
    assert_eq!(outcome.documented.len(), 2);
    let budget: Vec<&str> = outcome
        .failures
        .iter()
        .filter(|f| f.error.contains("token budget"))
        .map(|f| f.symbol.as_str())
        .collect();
    assert_eq!(budget, vec!["Shape.area", "describe"]);
}

#[test]
fn params_are_validated_with_clear_errors() {
    let ok = docs::parse_params(&json!({
        "snapshot_id": "0190b7a4-0000-7000-8000-000000000000",
        "paths": ["src/"],
        "symbols": ["A.b"],
        "provider": "offline"
    }))
    .unwrap();
    assert_eq!(ok.provider, Some(ProviderKind::Offline));
    let err = |v: serde_json::Value| docs::parse_params(&v).unwrap_err();
    assert!(err(json!({})).contains("snapshot_id"));
    assert!(err(json!({"snapshot_id": "nope"})).contains("UUID"));
    let sid = "0190b7a4-0000-7000-8000-000000000000";
    assert!(err(json!({"snapshot_id": sid, "provider": "gpt"})).contains("gpt"));
    assert!(err(json!({"snapshot_id": sid, "paths": ["../etc"]})).contains("`../etc`"));
    assert!(err(json!({"snapshot_id": sid, "symbols": [""]})).contains("empty"));
    assert!(err(json!({"snapshot_id": sid, "colour": 1})).contains("colour"));
}

#[test]
fn answers_become_comments_in_each_convention() {
    use hivesync_protocol::Language;
    let py = hivesync_analysis::lang::DocSyntax {
        placement: "first_statement_in_body",
        open: "\"\"\"",
        close: "\"\"\"",
    };
    assert_eq!(
        docs::comment_lines(
            Some(Language::Python),
            &py,
            "f",
            "Say \"\"\"hi\"\"\".\n\nMore."
        ),
        vec!["\"\"\"Say '''hi'''.", "", "More.", "\"\"\""]
    );
    let js = hivesync_analysis::lang::DocSyntax {
        placement: "before_item",
        open: "/**",
        close: "*/",
    };
    assert_eq!(
        docs::comment_lines(
            Some(Language::TypeScript),
            &js,
            "f",
            "Ends a */ comment.\n@returns x"
        ),
        vec!["/**", " * Ends a *\\/ comment.", " * @returns x", " */"]
    );
    let go = hivesync_analysis::lang::DocSyntax {
        placement: "before_item",
        open: "//",
        close: "",
    };
    assert_eq!(
        docs::comment_lines(Some(Language::Go), &go, "Add", "Returns the sum."),
        vec!["// Add returns the sum."]
    );
    assert_eq!(docs::clean_answer("\"\"\"\nText.\n\"\"\""), "Text.");
    assert_eq!(
        docs::clean_answer("/// One.\n///\n/// Two."),
        "One.\n\nTwo."
    );
    assert_eq!(docs::clean_answer("# Errors\n\nNone."), "# Errors\n\nNone.");
}

#[tokio::test]
async fn explain_answers_from_the_enclosing_definition() {
    let (f, a) = analysis();
    let code = f
        .text("shapes.py")
        .unwrap()
        .lines()
        .nth(7)
        .unwrap()
        .to_owned();
    let input = explain::input(&a, "shapes.py", 8, 8, &code, "Why raise here?").unwrap();
    let ctx = input.enclosing.as_ref().unwrap();
    assert_eq!(ctx.qualified_name, "Shape.area");
    let request = explain::request(&input);
    assert!(request.user.contains("Why raise here?"));
    assert!(request.user.contains("raise ValueError"));
    let reply = explain::reply(&input, &OfflineProvider).await.unwrap();
    assert!(
        reply.starts_with("Line 8 of `shapes.py` is part of the method `Shape.area`"),
        "{reply}"
    );
    assert!(reply.contains("It can raise `ValueError`."), "{reply}");
    assert!(reply.contains("It uses `Shape.w` (shapes.py)"), "{reply}");

    let top = explain::input(&a, "app.py", 1, 1, "from shapes import Shape, describe", "").unwrap();
    assert!(top.enclosing.is_none());
    let reply = explain::reply(&top, &OfflineProvider).await.unwrap();
    assert!(reply.contains("top-level code"), "{reply}");
}

//! A synthetic multi-language workspace for the engine benchmark's scale run
//! (`HIVESYNC_BENCH_LINES=1000000`): a quarter each of Python, TypeScript, Rust and Go, with
//! cross-file imports, classes/structs, methods and calls. Written to a temporary directory at
//! benchmark time, never committed.

use std::fmt::Write as _;
use std::path::Path;

/// Modules per package/directory, and blocks (about 24 lines each) per file.
const FILES_PER_DIR: usize = 20;
const BLOCKS_PER_FILE: usize = 20;

/// Writes about `lines` lines under `dir`: a quarter each of Python, TypeScript, Rust and Go.
/// Returns (files, lines) written.
pub fn generate(dir: &Path, lines: usize) -> std::io::Result<(usize, usize)> {
    let lines_per_file = BLOCKS_PER_FILE * 24;
    let files_per_language = (lines / 4 / lines_per_file).max(1);
    let mut written = 0usize;
    let mut files = 0usize;
    for lang in [Lang::Python, Lang::TypeScript, Lang::Rust, Lang::Go] {
        write(dir, lang.prelude_path(), &lang.prelude())?;
        for i in 0..files_per_language {
            let text = lang.module(i);
            written += text.lines().count();
            files += 1;
            write(dir, &lang.module_path(i), &text)?;
        }
    }
    rust_mods(dir, files_per_language)?;
    Ok((files, written))
}

fn write(root: &Path, rel: &str, text: &str) -> std::io::Result<()> {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, text)
}

#[derive(Clone, Copy)]
enum Lang {
    Python,
    TypeScript,
    Rust,
    Go,
}

impl Lang {
    fn prelude_path(self) -> &'static str {
        match self {
            Lang::Python => "py/gen/__init__.py",
            Lang::TypeScript => "ts/tsconfig.json",
            Lang::Rust => "rs/Cargo.toml",
            Lang::Go => "go/go.mod",
        }
    }

    fn prelude(self) -> String {
        match self {
            Lang::Python => "\"\"\"Generated package.\"\"\"\n".to_owned(),
            Lang::TypeScript => "{ \"compilerOptions\": { \"baseUrl\": \"src\" } }\n".to_owned(),
            // lib.rs and the directory modules are written by `rust_mods`.
            Lang::Rust => {
                "[package]\nname = \"gen\"\nversion = \"0.1.0\"\nedition = \"2021\"\n".to_owned()
            }
            Lang::Go => "module example.com/gen\n\ngo 1.22\n".to_owned(),
        }
    }

    fn module_path(self, i: usize) -> String {
        let (d, f) = (i / FILES_PER_DIR, i % FILES_PER_DIR);
        match self {
            Lang::Python => format!("py/gen/p{d}/m{f}.py"),
            Lang::TypeScript => format!("ts/src/p{d}/m{f}.ts"),
            Lang::Rust => format!("rs/src/p{d}/m{f}.rs"),
            Lang::Go => format!("go/p{d}/m{f}.go"),
        }
    }

    /// One module: imports from the previous module (same or previous directory), then
    /// `BLOCKS_PER_FILE` blocks of a class/struct with methods and a function using them.
    fn module(self, i: usize) -> String {
        let mut s = String::new();
        let prev = i.saturating_sub(1);
        let (pd, pf) = (prev / FILES_PER_DIR, prev % FILES_PER_DIR);
        let d = i / FILES_PER_DIR;
        match self {
            Lang::Python => {
                if pd != d {
                    let _ = writeln!(s, "from gen.p{pd}.m{pf} import Item0_{prev}, make0_{prev}");
                } else if i > 0 {
                    let _ = writeln!(s, "from .m{pf} import Item0_{prev}, make0_{prev}");
                }
                let _ = writeln!(s, "import gen.p{pd}.m{pf} as prev\n");
                for b in 0..BLOCKS_PER_FILE {
                    let _ = write!(
                        s,
                        "class Item{b}_{i}(Item0_{prev}):\n    \"\"\"Item {b} of module {i}.\"\"\"\n\n    def __init__(self, value):\n        self.value = value\n        self.count = 0\n\n    def step(self, n):\n        total = 0\n        for k in range(n):\n            total += k * self.value\n            self.count += 1\n        return total\n\n\ndef make{b}_{i}(x):\n    item = Item{b}_{i}(x)\n    other = make0_{prev}(x)\n    result = item.step(x) + prev.make0_{prev}(x).step(1)\n    if result > 10:\n        return other\n    return item\n\n"
                    );
                }
            }
            Lang::TypeScript => {
                let from = if pd == d {
                    format!("./m{pf}")
                } else {
                    format!("../p{pd}/m{pf}")
                };
                let _ = writeln!(s, "import {{ Item0_{prev}, make0_{prev} }} from '{from}';");
                let _ = writeln!(s, "import * as prev from '{from}';\n");
                for b in 0..BLOCKS_PER_FILE {
                    let _ = write!(
                        s,
                        "/** Item {b} of module {i}. */\nexport class Item{b}_{i} extends Item0_{prev} {{\n  count = 0;\n  constructor(public value: number) {{\n    super(value);\n  }}\n\n  step(n: number): number {{\n    let total = 0;\n    for (let k = 0; k < n; k++) {{\n      total += k * this.value;\n      this.count += 1;\n    }}\n    return total;\n  }}\n}}\n\nexport function make{b}_{i}(x: number): Item0_{prev} {{\n  const item = new Item{b}_{i}(x);\n  const other = make0_{prev}(x);\n  const result = item.step(x) + prev.make0_{prev}(x).step(1);\n  return result > 10 ? other : item;\n}}\n\n"
                    );
                }
            }
            Lang::Rust => {
                if i > 0 {
                    let _ = writeln!(
                        s,
                        "use crate::p{pd}::m{pf}::{{Item0_{prev}, make0_{prev}}};"
                    );
                    let _ = writeln!(s, "use crate::p{pd}::m{pf} as prev;\n");
                }
                for b in 0..BLOCKS_PER_FILE {
                    let (base, call, qual) = if i > 0 {
                        (
                            format!("Item0_{prev}"),
                            format!("make0_{prev}(x).value"),
                            format!("prev::make0_{prev}(x).step(1)"),
                        )
                    } else {
                        ("u64".to_owned(), "x".to_owned(), "x".to_owned())
                    };
                    let _ = write!(
                        s,
                        "/// Item {b} of module {i}.\npub struct Item{b}_{i} {{\n    pub value: u64,\n    pub count: u64,\n    pub prev: Option<{base}>,\n}}\n\nimpl Item{b}_{i} {{\n    pub fn step(&mut self, n: u64) -> u64 {{\n        let mut total = 0;\n        for k in 0..n {{\n            total += k * self.value;\n            self.count += 1;\n        }}\n        total\n    }}\n}}\n\npub fn make{b}_{i}(x: u64) -> Item{b}_{i} {{\n    let other = {call};\n    let mut item = Item{b}_{i} {{ value: other, count: 0, prev: None }};\n    let _ = item.step(x) + {qual};\n    item\n}}\n\n"
                    );
                }
            }
            Lang::Go => {
                let _ = writeln!(s, "package p{d}\n");
                if pd != d {
                    let _ = writeln!(s, "import prev \"example.com/gen/p{pd}\"\n");
                }
                let call = if i == 0 {
                    "x".to_owned()
                } else if pd != d {
                    format!("prev.Make0_{prev}(x).Value")
                } else {
                    format!("Make0_{prev}(x).Value")
                };
                for b in 0..BLOCKS_PER_FILE {
                    let _ = write!(
                        s,
                        "// Item{b}_{i} is item {b} of module {i}.\ntype Item{b}_{i} struct {{\n\tValue int\n\tCount int\n}}\n\n// Step adds up.\nfunc (it *Item{b}_{i}) Step(n int) int {{\n\ttotal := 0\n\tfor k := 0; k < n; k++ {{\n\t\ttotal += k * it.Value\n\t\tit.Count++\n\t}}\n\treturn total\n}}\n\n// Make{b}_{i} makes one.\nfunc Make{b}_{i}(x int) *Item{b}_{i} {{\n\tother := {call}\n\titem := &Item{b}_{i}{{Value: other}}\n\t_ = item.Step(x)\n\treturn item\n}}\n\n"
                    );
                }
            }
        }
        s
    }
}

/// `lib.rs` and `pN.rs` declaring the generated Rust modules.
fn rust_mods(root: &Path, files: usize) -> std::io::Result<()> {
    let dirs = files.div_ceil(FILES_PER_DIR);
    let mut lib = String::new();
    for d in 0..dirs {
        let _ = writeln!(lib, "pub mod p{d};");
        let mut m = String::new();
        for f in 0..FILES_PER_DIR.min(files - d * FILES_PER_DIR) {
            let _ = writeln!(m, "pub mod m{f};");
        }
        write(root, &format!("rs/src/p{d}.rs"), &m)?;
    }
    write(root, "rs/src/lib.rs", &lib)
}

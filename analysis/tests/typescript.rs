//! TypeScript / JavaScript fixtures: ES module imports and exports, re-exports, CommonJS,
//! path resolution (extensions, `index`, `.js` → `.ts`, `tsconfig.json` paths), block scoping,
//! hoisting, classes and `this`, TypeScript declarations, JSX, rename (and its refusals),
//! hover, outlines, documentation gaps, diagnostics. Each fixture is the smallest project
//! showing one rule; `$0` is the cursor.

use hivesync_analysis::RenameError;
use hivesync_analysis::fixture::{Fixture, defs, refs, refused, rename, render};

fn diagnostics(fixture: &str) -> Vec<String> {
    let f = Fixture::parse(fixture);
    f.analysis()
        .diagnostics(None)
        .expect("diagnostics")
        .iter()
        .map(|d| format!("{}:{} {}", d.path, d.line, d.message))
        .collect()
}

// ---- ES modules --------------------------------------------------------------------------------

#[test]
fn named_import_resolves_to_exported_function() {
    assert_eq!(
        defs(
            r#"
            //- /src/util.ts
            export function helper(a: number): number { return a; }
            //- /src/main.ts
            import { helper } from './util';
            helper$0(1);
            "#
        ),
        ["src/util.ts:1:17"]
    );
}

#[test]
fn default_import_binds_a_local_name_for_the_default_export() {
    let fixture = r#"
        //- /greet.ts
        export default function greet() {}
        //- /main.ts
        import hello from './greet';
        hello$0();
        "#;
    // The local name is a binding of its own; the imported name leads to the export.
    assert_eq!(defs(fixture), ["main.ts:1:8"]);
    assert_eq!(
        refs(
            &fixture
                .replace("hello$0()", "hello()")
                .replace("greet() {}", "greet$0() {}"),
            true
        ),
        ["greet.ts:1:25"]
    );
    // `export default <name>` and `export default <expression>`.
    assert_eq!(
        defs(
            r#"
            //- /conf.ts
            const settings = { debug: true };
            export default settings;
            //- /main.ts
            import conf from './conf';
            conf$0.debug;
            "#
        ),
        ["main.ts:1:8"]
    );
}

#[test]
fn members_through_default_and_aliased_exports() {
    let fixture = r#"
        //- /store.ts
        export default class Store {
          static create() {}
        }
        //- /tools.ts
        class Toolbox {
          static open() {}
        }
        export { Toolbox as Kit };
        //- /main.ts
        import Store from './store';
        import { Kit } from './tools';
        Store.create$0();
        Kit.open();
        "#;
    assert_eq!(defs(fixture), ["store.ts:2:10"]);
    assert_eq!(
        defs(
            &fixture
                .replace("create$0()", "create()")
                .replace("Kit.open()", "Kit.open$0()")
        ),
        ["tools.ts:2:10"]
    );
}

#[test]
fn renamed_import_and_imported_name() {
    let fixture = r#"
        //- /a.ts
        export const value = 1;
        //- /b.ts
        import { value as v } from './a';
        console.log(v$0);
        "#;
    assert_eq!(defs(fixture), ["b.ts:1:19"]);
    assert_eq!(
        defs(
            &fixture
                .replace("v$0)", "v)")
                .replace("{ value as", "{ value$0 as")
        ),
        ["a.ts:1:14"]
    );
}

#[test]
fn namespace_import_members() {
    assert_eq!(
        defs(
            r#"
            //- /lib/math.ts
            export function add(a: number, b: number) { return a + b; }
            //- /main.ts
            import * as math from './lib/math';
            math.add$0(1, 2);
            "#
        ),
        ["lib/math.ts:1:17"]
    );
}

#[test]
fn reexports_named_renamed_and_star() {
    let fixture = r#"
        //- /core/impl.ts
        export function run() {}
        export function stop() {}
        export class Engine {}
        //- /core/more.ts
        export const extra = 1;
        //- /core/index.ts
        export { run, stop as halt } from './impl';
        export * from './more';
        export * as impl from './impl';
        //- /main.ts
        import { run, halt, extra, impl } from './core';
        run$0(); halt(); extra; impl.Engine;
        "#;
    assert_eq!(defs(fixture), ["core/impl.ts:1:17"]);
    let at = |needle: &str, marked: &str| {
        defs(&fixture.replace("run$0()", "run()").replace(needle, marked))
    };
    // A renamed re-export is a name of its own; `export *` and `export * as` pass through.
    assert_eq!(at(" halt()", " halt$0()"), ["core/index.ts:1:23"]);
    assert_eq!(at(" extra;", " extra$0;"), ["core/more.ts:1:14"]);
    assert_eq!(at("impl.Engine", "impl.Engine$0"), ["core/impl.ts:3:14"]);
}

#[test]
fn export_star_binds_nothing_locally() {
    assert_eq!(
        defs(
            r#"
            //- /impl.ts
            export function helper() {}
            //- /index.ts
            export * from './impl';
            helper$0();
            "#
        ),
        Vec::<String>::new()
    );
}

#[test]
fn local_export_clause_with_alias() {
    let fixture = r#"
        //- /a.ts
        function internal() {}
        export { internal as published };
        //- /b.ts
        import { published } from './a';
        published$0();
        "#;
    assert_eq!(defs(fixture), ["a.ts:2:22"]);
    assert_eq!(
        refs(
            &fixture
                .replace("published$0()", "published()")
                .replace("function internal", "function internal$0"),
            false
        ),
        ["a.ts:2:10"]
    );
}

#[test]
fn unexported_names_are_not_importable() {
    assert_eq!(
        diagnostics(
            r#"
            //- /a.ts
            function hidden() {}
            export function shown() {}
            //- /b.ts
            import { hidden, shown } from './a';
            "#
        ),
        ["b.ts:1 `hidden` is not defined in module `a.ts`"]
    );
}

// ---- path resolution ------------------------------------------------------------------------

#[test]
fn extensions_index_files_and_js_specifiers_for_ts_sources() {
    let fixture = r#"
        //- /src/models/index.ts
        export interface User { name: string }
        //- /src/view.tsx
        export function View() { return null; }
        //- /src/legacy.js
        export function old() {}
        //- /src/esm.mjs
        export const esm = 1;
        //- /src/types.d.ts
        export type Id = string;
        //- /src/service.ts
        export class Service {}
        //- /src/user.model.ts
        export interface UserModel {}
        //- /src/main.ts
        import { User } from './models';
        import { View } from './view';
        import { old } from './legacy.js';
        import { esm } from './esm.mjs';
        import { Id } from './types';
        import { Service } from './service.js';
        import { UserModel } from './user.model';
        let u: User$0;
        "#;
    assert_eq!(defs(fixture), ["src/models/index.ts:1:18"]);
    let at = |needle: &str, marked: &str| {
        defs(&fixture.replace("User$0;", "User;").replace(needle, marked))
    };
    assert_eq!(at("{ View }", "{ View$0 }"), ["src/view.tsx:1:17"]);
    assert_eq!(at("{ old }", "{ old$0 }"), ["src/legacy.js:1:17"]);
    assert_eq!(at("{ esm }", "{ esm$0 }"), ["src/esm.mjs:1:14"]);
    assert_eq!(at("{ Id }", "{ Id$0 }"), ["src/types.d.ts:1:13"]);
    assert_eq!(at("{ Service }", "{ Service$0 }"), ["src/service.ts:1:14"]);
    // A dotted file name is not an extension.
    assert_eq!(
        at("{ UserModel }", "{ UserModel$0 }"),
        ["src/user.model.ts:1:18"]
    );
}

#[test]
fn parent_directory_and_package_json_entry() {
    let fixture = r#"
        //- /packages/ui/package.json
        { "name": "ui", "types": "./lib/entry.ts" }
        //- /packages/ui/lib/entry.ts
        export const Button = 1;
        //- /app/pages/home.ts
        import { Button } from '../../packages/ui';
        Button$0;
        "#;
    assert_eq!(defs(fixture), ["packages/ui/lib/entry.ts:1:14"]);
}

#[test]
fn tsconfig_paths_and_base_url_with_comments() {
    let fixture = r#"
        //- /tsconfig.json
        {
          // comments and trailing commas are allowed
          "compilerOptions": {
            "baseUrl": "./src", /* relative to this file */
            "paths": {
              "@app/*": ["app/*"],
              "@shared": ["shared/index.ts"],
            },
          },
        }
        //- /src/app/store.ts
        export const store = {};
        //- /src/shared/index.ts
        export const shared = 1;
        //- /src/util/strings.ts
        export function trim() {}
        //- /src/app/main.ts
        import { store } from '@app/store';
        import { shared } from '@shared';
        import { trim } from 'util/strings';
        import React from 'react';
        import { missing } from '@app/missing';
        store$0;
        "#;
    assert_eq!(defs(fixture), ["src/app/store.ts:1:14"]);
    let at = |needle: &str, marked: &str| {
        defs(
            &fixture
                .replace("store$0;", "store;")
                .replace(needle, marked),
        )
    };
    assert_eq!(
        at("{ shared }", "{ shared$0 }"),
        ["src/shared/index.ts:1:14"]
    );
    assert_eq!(at("{ trim }", "{ trim$0 }"), ["src/util/strings.ts:1:17"]);
    // Bare package specifiers are external; an alias naming no file is a project error.
    assert_eq!(
        diagnostics(fixture),
        ["src/app/main.ts:5 unresolved import `@app/missing`: no such module in the project"]
    );
}

#[test]
fn tsconfig_extends_and_nearest_config() {
    assert_eq!(
        defs(
            r#"
            //- /tsconfig.base.json
            { "compilerOptions": { "paths": { "~/*": ["./lib/*"] } } }
            //- /tsconfig.json
            { "extends": "./tsconfig.base.json", "compilerOptions": {} }
            //- /lib/log.ts
            export function log() {}
            //- /main.ts
            import { log } from '~/log';
            log$0();
            "#
        ),
        ["lib/log.ts:1:17"]
    );
}

#[test]
fn diagnostics_for_missing_relative_modules_only() {
    assert_eq!(
        diagnostics(
            r#"
            //- /a.ts
            export const a = 1;
            //- /main.ts
            import fs from 'node:fs';
            import lodash from 'lodash';
            import './styles.css';
            import data from './data.json';
            import { a } from './a';
            import { b } from './nowhere';
            const c = require('./also-missing');
            "#
        ),
        [
            "main.ts:6 unresolved import `./nowhere`: no such module in the project",
            "main.ts:7 unresolved import `./also-missing`: no such module in the project",
        ]
    );
}

// ---- CommonJS ---------------------------------------------------------------------------------

#[test]
fn require_and_module_exports() {
    let fixture = r#"
        //- /lib/tools.js
        function parse(s) { return s; }
        module.exports = { parse, format: (x) => x };
        //- /lib/extra.js
        exports.version = '1.0';
        //- /main.js
        const tools = require('./lib/tools');
        const { parse } = require('./lib/tools');
        const { version: ver } = require('./lib/extra');
        tools.format$0(1);
        parse(2);
        ver;
        "#;
    assert_eq!(defs(fixture), ["lib/tools.js:2:27"]);
    let at = |needle: &str, marked: &str| {
        defs(
            &fixture
                .replace("format$0(", "format(")
                .replace(needle, marked),
        )
    };
    assert_eq!(at("parse(2)", "parse$0(2)"), ["lib/tools.js:1:10"]);
    assert_eq!(
        at("{ version: ver }", "{ version$0: ver }"),
        ["lib/extra.js:1:9"]
    );
    // ES imports of CommonJS exports.
    assert_eq!(
        defs(
            r#"
            //- /cjs.js
            exports.answer = 42;
            //- /esm.mjs
            import { answer } from './cjs.js';
            answer$0;
            "#
        ),
        ["cjs.js:1:9"]
    );
}

#[test]
fn compiled_commonjs_output_reexports() {
    let fixture = r#"
        //- /dist/map.js
        "use strict";
        Object.defineProperty(exports, "__esModule", { value: true });
        exports.map = exports.unused = void 0;
        function map(project) { return project; }
        exports.map = map;
        //- /dist/filter.js
        exports.filter = function (p) { return p; };
        //- /dist/index.js
        "use strict";
        var map_1 = require("./map");
        Object.defineProperty(exports, "map", { enumerable: true, get: function () { return map_1.map; } });
        __exportStar(require("./filter"), exports);
        //- /app.js
        const rx = require('./dist');
        rx.map$0(1);
        rx.filter(2);
        "#;
    assert_eq!(defs(fixture), ["dist/map.js:4:10"]);
    assert_eq!(
        defs(
            &fixture
                .replace("map$0(1)", "map(1)")
                .replace("rx.filter(", "rx.filter$0(")
        ),
        ["dist/filter.js:1:9"]
    );
    assert_eq!(diagnostics(fixture), Vec::<String>::new());
}

// ---- scopes ------------------------------------------------------------------------------------

#[test]
fn block_scoping_of_let_const_and_class() {
    assert_eq!(
        defs(
            r#"
            //- /main.ts
            const x = 1;
            if (true) {
              const x = 2;
              x;
            }
            x$0;
            "#
        ),
        ["main.ts:1:7"]
    );
    assert_eq!(
        defs(
            r#"
            //- /main.ts
            let x = 1;
            {
              let x = 2;
              class K {}
              x$0;
            }
            "#
        ),
        ["main.ts:3:7"]
    );
    assert_eq!(
        defs(
            r#"
            //- /main.ts
            for (let i = 0; i < 3; i++) { i$0; }
            "#
        ),
        ["main.ts:1:10"]
    );
}

#[test]
fn var_is_function_scoped_and_functions_are_hoisted() {
    assert_eq!(
        defs(
            r#"
            //- /main.js
            function f() {
              if (true) {
                var inner = 1;
              }
              return inner$0;
            }
            "#
        ),
        ["main.js:3:9"]
    );
    assert_eq!(
        defs(
            r#"
            //- /main.js
            later$0();
            function later() {}
            "#
        ),
        ["main.js:2:10"]
    );
}

#[test]
fn parameters_and_destructuring() {
    let fixture = r#"
        //- /main.ts
        const a = 0;
        function f(a: number, { b, c: [d] }: any, ...rest: number[]) {
          return a$0 + b + d + rest.length;
        }
        "#;
    assert_eq!(defs(fixture), ["main.ts:2:12"]);
    let at =
        |needle: &str, marked: &str| defs(&fixture.replace("a$0 +", "a +").replace(needle, marked));
    assert_eq!(at("+ b +", "+ b$0 +"), ["main.ts:2:25"]);
    assert_eq!(at("+ d +", "+ d$0 +"), ["main.ts:2:32"]);
    assert_eq!(at("rest.length", "rest$0.length"), ["main.ts:2:46"]);
    assert_eq!(
        defs(
            r#"
            //- /main.js
            const { x, y: [z = 1] } = obj;
            const arrow = (p) => p$0 + z;
            "#
        ),
        ["main.js:2:16"]
    );
    assert_eq!(
        defs(
            r#"
            //- /main.js
            try { run(); } catch (err) { console.log(err$0); }
            "#
        ),
        ["main.js:1:23"]
    );
}

#[test]
fn class_members_through_this() {
    let fixture = r#"
        //- /main.ts
        class Counter {
          count = 0;
          constructor(private readonly step: number, label: string) {
            this.label = label;
          }
          increment() {
            this.count += this.step;
            return this.label$0;
          }
          reset = () => { this.count = 0; };
        }
        "#;
    assert_eq!(defs(fixture), ["main.ts:4:10"]);
    let at = |needle: &str, marked: &str| {
        defs(
            &fixture
                .replace("label$0;", "label;")
                .replace(needle, marked),
        )
    };
    assert_eq!(at("this.step", "this.step$0"), ["main.ts:3:32"]);
    assert_eq!(at("this.count +=", "this.count$0 +="), ["main.ts:2:3"]);
    assert_eq!(at("this.count = 0", "this.count$0 = 0"), ["main.ts:2:3"]);
    // Members are not bare names inside methods.
    assert_eq!(
        defs(
            r#"
            //- /main.ts
            const count = 1;
            class C {
              count = 2;
              get() { return count$0; }
            }
            "#
        ),
        ["main.ts:1:7"]
    );
}

#[test]
fn super_members_come_from_the_base_class() {
    assert_eq!(
        defs(
            r#"
            //- /main.ts
            class Base {
              save() {}
            }
            class Child extends Base {
              save() {
                super.save$0();
              }
            }
            "#
        ),
        ["main.ts:2:3"]
    );
}

#[test]
fn members_of_imported_classes_and_bases() {
    assert_eq!(
        defs(
            r#"
            //- /base.ts
            export class Base {
              greet() {}
            }
            //- /child.ts
            import { Base } from './base';
            export class Child extends Base {
              hello() { this.greet$0(); }
            }
            "#
        ),
        ["base.ts:2:3"]
    );
    assert_eq!(
        defs(
            r#"
            //- /shapes.ts
            export class Shape { static create() {} }
            //- /main.ts
            import { Shape } from './shapes';
            Shape.create$0();
            "#
        ),
        ["shapes.ts:1:29"]
    );
}

#[test]
fn typescript_declarations_and_type_references() {
    let fixture = r#"
        //- /types.ts
        export interface Point { x: number; y: number }
        export type Pair<T> = [T, T];
        export enum Color { Red, Green = 2 }
        export namespace Geo { export const origin = 0; }
        //- /main.ts
        import { Point, Pair, Color, Geo } from './types';
        function mid(p: Point$0): Pair<number> { return [p.x, p.y]; }
        const c = Color.Green;
        const o = Geo.origin;
        "#;
    assert_eq!(defs(fixture), ["types.ts:1:18"]);
    let at = |needle: &str, marked: &str| {
        defs(
            &fixture
                .replace("Point$0)", "Point)")
                .replace(needle, marked),
        )
    };
    assert_eq!(at("Pair<number>", "Pair$0<number>"), ["types.ts:2:13"]);
    assert_eq!(at("Color.Green", "Color.Green$0"), ["types.ts:3:26"]);
    assert_eq!(at("Geo.origin", "Geo.origin$0"), ["types.ts:4:37"]);
    // Generic parameters are in scope in the declaration only.
    assert_eq!(
        defs(
            r#"
            //- /main.ts
            class Box<T> {
              value: T;
              get(): T$0 { return this.value; }
            }
            "#
        ),
        ["main.ts:1:11"]
    );
}

#[test]
fn namespaces_enums_and_arrow_this_inside_a_file() {
    let fixture = r#"
        //- /main.ts
        namespace Geo {
          export const origin = 0;
          export function shift(x: number) { return x + origin; }
        }
        enum Level { Low, High = Low + 1 }
        Geo.shift(Level.High);
        class Timer {
          ticks = 0;
          start() {
            setInterval(() => { this.ticks += 1; }, 10);
            const plain = { ticks: 5, read() { return this.ticks; } };
          }
        }
        "#;
    let at = |needle: &str, marked: &str| defs(&fixture.replace(needle, marked));
    assert_eq!(at("x + origin", "x + origin$0"), ["main.ts:2:16"]);
    assert_eq!(at("Geo.shift(", "Geo.shift$0("), ["main.ts:3:19"]);
    assert_eq!(at("Level.High)", "Level.High$0)"), ["main.ts:5:19"]);
    assert_eq!(at("= Low + 1", "= Low$0 + 1"), ["main.ts:5:14"]);
    // Arrow functions keep the class's `this`; object-literal methods do not.
    assert_eq!(at("this.ticks += 1", "this.ticks$0 += 1"), ["main.ts:8:3"]);
    assert_eq!(
        at("return this.ticks;", "return this.ticks$0;"),
        ["main.ts:8:3 (probable)"]
    );
}

#[test]
fn jsx_element_names_reference_components() {
    let fixture = r#"
        //- /Button.tsx
        export function Button(props: { label: string }) { return <button>{props.label}</button>; }
        //- /App.tsx
        import { Button } from './Button';
        export const App = () => <div><Button$0 label="x" /></div>;
        "#;
    assert_eq!(defs(fixture), ["Button.tsx:1:17"]);
    assert_eq!(
        refs(
            r#"
            //- /widgets.jsx
            export function Card$0({ children }) { return <section>{children}</section>; }
            //- /page.jsx
            import { Card } from './widgets';
            export default function Page() { return <Card><Card></Card></Card>; }
            "#,
            false
        ),
        [
            "page.jsx:1:10",
            "page.jsx:2:42",
            "page.jsx:2:48",
            "page.jsx:2:55",
            "page.jsx:2:62"
        ]
    );
}

#[test]
fn typed_variables_parameters_and_fields_resolve_members_exactly() {
    let fixture = r#"
        //- /service.ts
        export class Service {
          run() {}
        }
        //- /main.ts
        import { Service } from './service';
        function use(s: Service) {
          s.run$0();
        }
        const made = new Service();
        made.run();
        let typed: Service;
        typed.run();
        class Holder {
          constructor(private readonly svc: Service) {}
          go() { this.svc.run(); }
        }
        "#;
    assert_eq!(defs(fixture), ["service.ts:2:3"]);
    assert_eq!(
        refs(
            &fixture
                .replace("run$0()", "run()")
                .replace("run() {}", "run$0() {}"),
            false
        ),
        ["main.ts:3:5", "main.ts:6:6", "main.ts:8:7", "main.ts:11:19"]
    );
}

#[test]
fn unknown_receivers_give_probable_candidates() {
    assert_eq!(
        defs(
            r#"
            //- /a.ts
            export class A { run() {} }
            //- /b.ts
            function call(obj) { obj.run$0(); }
            "#
        ),
        ["a.ts:1:18 (probable)"]
    );
}

// ---- references and rename ---------------------------------------------------------------------

#[test]
fn references_across_files_through_reexports() {
    let fixture = r#"
        //- /lib/impl.ts
        export function work$0() {}
        //- /lib/index.ts
        export { work } from './impl';
        //- /app.ts
        import { work } from './lib';
        import * as lib from './lib/index';
        work();
        lib.work();
        function other() { const work = 3; return work; }
        "#;
    assert_eq!(
        refs(fixture, false),
        [
            "app.ts:1:10",
            "app.ts:3:1",
            "app.ts:4:5",
            "lib/index.ts:1:10"
        ]
    );
    assert_eq!(refs(fixture, true).len(), 5);
}

#[test]
fn rename_across_files_through_reexports() {
    let out = rename(
        r#"
        //- /lib/impl.ts
        /** Does the work. */
        export function work$0() {}
        //- /lib/index.ts
        export { work } from './impl';
        export { work as labour } from './impl';
        //- /app.ts
        import { work, labour } from './lib';
        work();
        labour();
        "#,
        "perform",
        false,
    )
    .expect("rename");
    assert_eq!(
        out,
        [
            (
                "app.ts".to_owned(),
                "import { perform, labour } from './lib';\nperform();\nlabour();\n".to_owned()
            ),
            (
                "lib/impl.ts".to_owned(),
                "/** Does the work. */\nexport function perform() {}\n".to_owned()
            ),
            (
                "lib/index.ts".to_owned(),
                "export { perform } from './impl';\nexport { perform as labour } from './impl';\n"
                    .to_owned()
            ),
        ]
    );
}

#[test]
fn rename_of_a_class_member_keeps_probable_apart() {
    let fixture = r#"
        //- /job.ts
        export class Job {
          start$0() {}
          again() { this.start(); }
        }
        //- /app.ts
        import { Job } from './job';
        function go(j) { new Job().start(); j.start(); }
        "#;
    let exact = rename(fixture, "launch", false).expect("rename");
    assert_eq!(
        exact,
        [
            (
                "app.ts".to_owned(),
                "import { Job } from './job';\nfunction go(j) { new Job().launch(); j.start(); }\n"
                    .to_owned()
            ),
            (
                "job.ts".to_owned(),
                "export class Job {\n  launch() {}\n  again() { this.launch(); }\n}\n".to_owned()
            )
        ]
    );
    let all = rename(fixture, "launch", true).expect("rename");
    assert_eq!(
        all[0].1,
        "import { Job } from './job';\nfunction go(j) { new Job().launch(); j.launch(); }\n"
    );
}

#[test]
fn rename_of_a_local_and_a_commonjs_export() {
    assert_eq!(
        rename(
            r#"
            //- /main.ts
            function f() {
              let total$0 = 0;
              for (const n of [1, 2]) { total += n; }
              return total;
            }
            "#,
            "sum",
            false
        )
        .expect("rename"),
        [(
            "main.ts".to_owned(),
            "function f() {\n  let sum = 0;\n  for (const n of [1, 2]) { sum += n; }\n  return sum;\n}\n"
                .to_owned()
        )]
    );
    assert_eq!(
        rename(
            r#"
            //- /lib.js
            function helper$0() {}
            module.exports = { helper };
            //- /main.js
            const { helper } = require('./lib');
            helper();
            "#,
            "assist",
            false
        )
        .expect("rename"),
        [
            (
                "lib.js".to_owned(),
                "function assist() {}\nmodule.exports = { assist };\n".to_owned()
            ),
            (
                "main.js".to_owned(),
                "const { assist } = require('./lib');\nassist();\n".to_owned()
            ),
        ]
    );
}

#[test]
fn rename_keeps_shorthand_property_keys() {
    assert_eq!(
        rename(
            r#"
            //- /main.ts
            function make(size$0: number) {
              const box = { size };
              const { size: other } = box;
              return { size, other };
            }
            "#,
            "width",
            false
        )
        .expect("rename"),
        [(
            "main.ts".to_owned(),
            "function make(width: number) {\n  const box = { size: width };\n  const { size: other } = box;\n  return { size: width, other };\n}\n"
                .to_owned()
        )]
    );
    assert_eq!(
        rename(
            r#"
            //- /main.js
            const { length$0, name } = config;
            use(length, { length });
            "#,
            "size",
            false
        )
        .expect("rename"),
        [(
            "main.js".to_owned(),
            "const { length: size, name } = config;\nuse(size, { length: size });\n".to_owned()
        )]
    );
}

#[test]
fn rename_refuses_keywords_invalid_names_and_collisions() {
    let fixture = "//- /main.ts\nfunction f$0() {}\nfunction g() {}\nf();\n";
    assert_eq!(
        refused(fixture, "class"),
        RenameError::Keyword("class".into())
    );
    assert_eq!(refused(fixture, "let"), RenameError::Keyword("let".into()));
    assert_eq!(
        refused(fixture, "a-b"),
        RenameError::InvalidIdentifier("a-b".into())
    );
    assert_eq!(
        refused(fixture, "g"),
        RenameError::Conflict {
            new_name: "g".into(),
            location: "defined at main.ts:2:10".into(),
            site: "main.ts:1:10".into(),
        }
    );
    // `$` is a valid identifier character.
    assert!(rename(fixture, "$f", false).is_ok());
}

#[test]
fn rename_refuses_capture_in_an_importing_file() {
    let err = refused(
        r#"
        //- /lib.ts
        export function helper$0() {}
        //- /app.ts
        import { helper } from './lib';
        function run() {
          const data = 1;
          return helper() + data;
        }
        "#,
        "data",
    );
    assert_eq!(
        err,
        RenameError::Conflict {
            new_name: "data".into(),
            location: "defined at app.ts:3:9".into(),
            site: "app.ts:4:10".into(),
        }
    );
}

#[test]
fn rename_of_an_external_name_is_refused() {
    assert!(matches!(
        refused("//- /main.ts\nconsole$0.log(1);\n", "out"),
        RenameError::NotInProject { .. }
    ));
}

// ---- hover, symbols, docs ----------------------------------------------------------------------

#[test]
fn hover_shows_signature_and_jsdoc() {
    let f = Fixture::parse(
        r#"
        //- /geo.ts
        /**
         * Area of a rectangle.
         *
         * Both sides in metres.
         */
        export function area(w: number, h = 2): number {
          return w * h;
        }
        //- /main.ts
        import { area } from './geo';
        area$0(1);
        "#,
    );
    let hover = f
        .analysis()
        .hover(&f.position())
        .expect("hover")
        .expect("some");
    assert_eq!(
        hover.signature.as_deref(),
        Some("function area(w: number, h = 2): number")
    );
    assert_eq!(
        hover.doc.as_deref(),
        Some("Area of a rectangle.\n\nBoth sides in metres.")
    );
    assert_eq!((hover.path.as_str(), hover.line), ("geo.ts", 6));
}

#[test]
fn document_symbols_are_hierarchical() {
    let f = Fixture::parse(
        r#"
        //- /main.ts
        export const LIMIT = 3;
        export class Shape {
          sides = 0;
          area() { const local = 1; return local; }
        }
        export interface Named { name: string }
        function main() {}
        const internal = 1;
        class Hidden { field = 1; }
        "#,
    );
    let symbols = f.analysis().document_symbols("main.ts").expect("symbols");
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
            "Named:interface[name]",
            "main:function[]",
            "internal:variable[]",
            "Hidden:class[field]"
        ]
    );
}

#[test]
fn doc_gaps_report_exported_undocumented_definitions() {
    let f = Fixture::parse(
        r#"
        //- /main.ts
        /** Documented. */
        export class Documented {
          method() {}
          private hidden() {}
        }
        export function bare(x: number) {
          return x;
        }
        function notExported() {}
        "#,
    );
    let gaps = f.analysis().doc_gaps().expect("gaps");
    let names: Vec<(&str, u32, u32)> = gaps
        .iter()
        .map(|g| (g.qualified_name.as_str(), g.insert_line, g.insert_column))
        .collect();
    assert_eq!(names, [("Documented.method", 3, 3), ("bare", 6, 1)]);
    // Members are public unless `private`; exported names only.
    assert!(
        !gaps
            .iter()
            .any(|g| g.name == "hidden" || g.name == "notExported")
    );
    assert_eq!(gaps[0].syntax.open, "/**");
    assert_eq!(gaps[0].syntax.close, "*/");
    assert_eq!(gaps[0].syntax.placement, "before_item");
}

#[test]
fn syntax_errors_leave_the_rest_analysed() {
    let f = Fixture::parse(
        r#"
        //- /broken.ts
        export function ok() {}
        function broken( {
        //- /main.ts
        import { ok } from './broken';
        ok$0();
        "#,
    );
    assert_eq!(
        render(&f.analysis().definition(&f.position()).expect("defs")),
        ["broken.ts:1:17"]
    );
    assert_eq!(f.analysis().stats().expect("stats").parse_errors, 1);
}

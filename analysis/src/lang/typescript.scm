; Definitions the TypeScript/JavaScript walker (typescript.rs) must produce, in tree-sitter
; query syntax (valid for the TypeScript, TSX and JavaScript grammars' common node types).
; The walker is hand-written (block scoping, hoisting and export rules need more than
; patterns); this file is the checked reference for what it binds:
; `definitions_match_the_scm_patterns` runs this query on each grammar and asserts the walker
; found every @name.

(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function

(class_declaration name: (_) @name) @definition.class

(method_definition name: (property_identifier) @name) @definition.method

(variable_declarator name: (identifier) @name) @definition.variable


(import_specifier name: (identifier) @name !alias) @definition.import
(import_specifier alias: (identifier) @name) @definition.import
(namespace_import (identifier) @name) @definition.import
(import_clause (identifier) @name) @definition.import

(catch_clause parameter: (identifier) @name) @definition.variable

(object_pattern (shorthand_property_identifier_pattern) @name) @definition.variable
(array_pattern (identifier) @name) @definition.variable

; Definitions the Python walker (python.rs) must produce, in tree-sitter query syntax.
; The walker is hand-written (scoping rules need more than patterns); this file is the
; checked reference for what it binds: `definitions_match_the_scm_patterns` runs this query
; and asserts the walker found every @name.

(module (expression_statement (assignment left: (identifier) @name) @definition.variable))

(class_definition
  name: (identifier) @name) @definition.class

(function_definition
  name: (identifier) @name) @definition.function

(parameters (identifier) @name) @definition.parameter
(default_parameter name: (identifier) @name) @definition.parameter
(typed_parameter (identifier) @name) @definition.parameter
(typed_default_parameter name: (identifier) @name) @definition.parameter
(list_splat_pattern (identifier) @name) @definition.parameter
(dictionary_splat_pattern (identifier) @name) @definition.parameter

(import_from_statement name: (dotted_name (identifier) @name)) @definition.import
(aliased_import alias: (identifier) @name) @definition.import

(assignment
  left: (attribute
    object: (identifier) @receiver
    attribute: (identifier) @name)
  (#eq? @receiver "self")) @definition.field

; Definitions the Go walker (go.rs) must produce, in tree-sitter query syntax.
; The walker is hand-written (package-wide scoping and receivers need more than patterns);
; this file is the checked reference for what it binds: `definitions_match_the_scm_patterns`
; runs this query and asserts the walker found every @name.

(type_spec name: (type_identifier) @name) @definition.type
(type_alias name: (type_identifier) @name) @definition.type
(field_declaration name: (field_identifier) @name) @definition.field
(method_elem name: (field_identifier) @name) @definition.method
(function_declaration name: (identifier) @name) @definition.function
(method_declaration name: (field_identifier) @name) @definition.method
(var_spec name: (identifier) @name) @definition.variable
(const_spec name: (identifier) @name) @definition.constant
(parameter_declaration name: (identifier) @name) @definition.parameter
(variadic_parameter_declaration name: (identifier) @name) @definition.parameter
(import_spec name: (package_identifier) @name) @definition.import

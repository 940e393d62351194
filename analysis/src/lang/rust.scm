; Definitions the Rust walker (rust.rs) must produce, in tree-sitter query syntax.
; The walker is hand-written (module trees, impls and shadowing need more than patterns);
; this file is the checked reference for what it binds: `definitions_match_the_scm_patterns`
; runs this query and asserts the walker found every @name.

(struct_item name: (type_identifier) @name) @definition.struct
(enum_item name: (type_identifier) @name) @definition.enum
(enum_variant name: (identifier) @name) @definition.variant
(field_declaration name: (field_identifier) @name) @definition.field
(trait_item name: (type_identifier) @name) @definition.trait
(function_item name: (identifier) @name) @definition.function
(function_signature_item name: (identifier) @name) @definition.method
(type_item name: (type_identifier) @name) @definition.type
(const_item name: (identifier) @name) @definition.constant
(static_item name: (identifier) @name) @definition.static
(macro_definition name: (identifier) @name) @definition.macro
(mod_item name: (identifier) @name) @definition.module
(parameter pattern: (identifier) @name) @definition.parameter
(let_declaration pattern: (identifier) @name) @definition.variable

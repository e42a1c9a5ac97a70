; TypeScript / TSX: ES imports, re-exports, require()/import() and definitions, types included.

(import_statement source: (string (string_fragment) @import.module))
(export_statement source: (string (string_fragment) @import.module))
((call_expression function: (identifier) @_require arguments: (arguments . (string (string_fragment) @import.module)))
  (#eq? @_require "require"))
(call_expression function: (import) arguments: (arguments . (string (string_fragment) @import.module)))

(function_declaration name: (identifier) @name body: (statement_block) @body) @definition.function
(function_signature name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name body: (statement_block) @body) @definition.function
(class_declaration name: (_) @name body: (class_body) @body) @definition.class
(abstract_class_declaration name: (_) @name body: (class_body) @body) @definition.class
(method_definition name: (_) @name body: (statement_block) @body) @definition.method
(method_signature name: (_) @name) @definition.method
(abstract_method_signature name: (_) @name) @definition.method
(public_field_definition name: (_) @name) @definition.field
(interface_declaration name: (type_identifier) @name body: (interface_body) @body) @definition.interface
(property_signature name: (_) @name) @definition.field
(type_alias_declaration name: (type_identifier) @name) @definition.type
(enum_declaration name: (identifier) @name body: (enum_body)) @definition.enum
(lexical_declaration (variable_declarator name: (identifier) @name value: (arrow_function body: (statement_block) @body))) @definition.function
(program (lexical_declaration (variable_declarator name: (identifier) @name)) @definition.variable)
(program (export_statement (lexical_declaration (variable_declarator name: (identifier) @name)) @definition.variable))

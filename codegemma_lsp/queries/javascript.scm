; JavaScript: ES imports, re-exports, require()/import() and definitions.

(import_statement source: (string (string_fragment) @import.module))
(export_statement source: (string (string_fragment) @import.module))
((call_expression function: (identifier) @_require arguments: (arguments . (string (string_fragment) @import.module)))
  (#eq? @_require "require"))
(call_expression function: (import) arguments: (arguments . (string (string_fragment) @import.module)))

(function_declaration name: (identifier) @name body: (statement_block) @body) @definition.function
(generator_function_declaration name: (identifier) @name body: (statement_block) @body) @definition.function
(class_declaration name: (_) @name body: (class_body) @body) @definition.class
(method_definition name: (_) @name body: (statement_block) @body) @definition.method
(field_definition property: (_) @name) @definition.field
(lexical_declaration (variable_declarator name: (identifier) @name value: (arrow_function body: (statement_block) @body))) @definition.function
(lexical_declaration (variable_declarator name: (identifier) @name value: (function_expression body: (statement_block) @body))) @definition.function
(program (lexical_declaration (variable_declarator name: (identifier) @name)) @definition.variable)
(program (export_statement (lexical_declaration (variable_declarator name: (identifier) @name)) @definition.variable))

; C++: includes, free and member functions, classes, structs, enums, aliases and macros.

(preproc_include path: (string_literal (string_content) @import.module))
(preproc_include path: (system_lib_string) @import.system)

(function_definition declarator: (function_declarator declarator: (identifier) @name) body: (compound_statement) @body) @definition.function
(function_definition declarator: (function_declarator declarator: (qualified_identifier name: (_) @name)) body: (compound_statement) @body) @definition.function
(function_definition declarator: (function_declarator declarator: (field_identifier) @name) body: (compound_statement) @body) @definition.method
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name)) body: (compound_statement) @body) @definition.function
(function_definition declarator: (reference_declarator (function_declarator declarator: (identifier) @name)) body: (compound_statement) @body) @definition.function
(declaration declarator: (function_declarator declarator: (identifier) @name)) @definition.function
(field_declaration declarator: (function_declarator declarator: (field_identifier) @name)) @definition.method
(field_declaration declarator: (field_identifier) @name) @definition.field
(class_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @definition.class
(struct_specifier name: (type_identifier) @name body: (field_declaration_list) @body) @definition.class
(enum_specifier name: (type_identifier) @name body: (enumerator_list)) @definition.enum
(type_definition declarator: (type_identifier) @name) @definition.type
(alias_declaration name: (type_identifier) @name) @definition.type
(preproc_def name: (identifier) @name) @definition.macro
(preproc_function_def name: (identifier) @name) @definition.macro

//! OpenAPI 3 → a test: one scenario per tag (an operation without tags goes to the group of its
//! path's first segment), one step per operation in the document's order. Path, required query and
//! header parameters get the document's example (or default, or first enum value), else a value our
//! templating generates per request (`{{randomInt(..)}}`, `{{faker...}}`); a JSON request body is
//! the document's example, else one built from its schema; the check is the operation's first 2xx
//! response code.
//!
//! The document is read with the `openapiv3` crate (serde structs for OpenAPI 3.0.x, widely used,
//! e.g. by oxide's progenitor), from JSON or YAML through the serde readers this crate already has;
//! `$ref`s into `components` are followed here. An OpenAPI 3.1 document is read in the same model
//! after its 3.1-only schema shapes are rewritten ([`down_to_30`]); Swagger 2.0 is refused by name.

use super::{unique, Check, Generated, Global, ImportError, Load, Scenario, Step, Test};
use openapiv3::{
    Components, MediaType, OpenAPI, Parameter, ParameterData, ParameterSchemaOrContent,
    ReferenceOr, RequestBody, Schema, SchemaKind, StatusCode, Type, VariantOrUnknownOrEmpty,
};
use serde_json::{json, Value};
use std::collections::HashSet;

/// What to take from the document.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Replaces the document's first server URL.
    pub base_url: Option<String>,
    /// Keep only operations with one of these tags.
    pub tags: Vec<String>,
    /// Leave out operations with any of these tags.
    pub exclude_tags: Vec<String>,
    /// Keep only these methods (any case).
    pub methods: Vec<String>,
    /// Keep only paths matching this regular expression.
    pub paths: Option<String>,
}

/// Reads an OpenAPI document (YAML or JSON) and generates its test.
pub fn import(text: &str, source: &str, opts: &Options) -> Result<Generated, ImportError> {
    let bad = |why: String| ImportError::Source {
        what: "OpenAPI",
        why,
    };
    let probe: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| bad(format!("not YAML or JSON: {e}")))?;
    if probe.get("swagger").is_some() {
        return Err(bad(
            "Swagger 2.0 is not supported: convert it to OpenAPI 3 first".into(),
        ));
    }
    let is_31 = probe
        .get("openapi")
        .and_then(|v| v.as_str())
        .is_some_and(|v| v.starts_with("3.1"));
    let spec: OpenAPI = if is_31 {
        let mut doc = probe;
        down_to_30(&mut doc);
        serde_norway::from_value(doc).map_err(|e| {
            bad(format!("{e} (an OpenAPI 3.1 document is read in 3.0's model after rewriting `type` lists, `const`, numeric `exclusiveMinimum`/`exclusiveMaximum` and schema `examples` lists)"))
        })?
    } else if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| bad(e.to_string()))?
    } else {
        serde_norway::from_str(text).map_err(|e| bad(e.to_string()))?
    };
    if !spec.openapi.starts_with("3.") {
        return Err(bad(format!(
            "`openapi: {}`: only OpenAPI 3 is read",
            spec.openapi
        )));
    }
    let paths_filter = opts.paths.as_deref().map(regex::Regex::new).transpose()?;
    let methods: Vec<String> = opts.methods.iter().map(|m| m.to_uppercase()).collect();
    let empty = Components::default();
    let components = spec.components.as_ref().unwrap_or(&empty);
    let mut notes = Vec::new();
    let mut groups: Vec<Scenario> = Vec::new();
    let mut names = HashSet::new();
    for (path, item) in spec.paths.iter() {
        let Some(item) = item.as_item() else {
            notes.push(format!(
                "{path}: a $ref path item is not followed; left out"
            ));
            continue;
        };
        if paths_filter.as_ref().is_some_and(|r| !r.is_match(path)) {
            continue;
        }
        for (method, op) in item.iter() {
            let method = method.to_uppercase();
            if !methods.is_empty() && !methods.contains(&method) {
                continue;
            }
            if !opts.tags.is_empty() && !op.tags.iter().any(|t| opts.tags.contains(t)) {
                continue;
            }
            if op.tags.iter().any(|t| opts.exclude_tags.contains(t)) {
                continue;
            }
            let group = op.tags.first().cloned().unwrap_or_else(|| {
                path.trim_start_matches('/')
                    .split('/')
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("root")
                    .to_string()
            });
            let label = format!("{method} {path}");
            let name = unique(
                op.operation_id
                    .clone()
                    .or_else(|| op.summary.clone())
                    .unwrap_or_else(|| label.clone()),
                &mut names,
            );
            let mut step = Step {
                name,
                kind: "rest",
                method: Some(method.clone()),
                ..Default::default()
            };
            let mut target = path.clone();
            let params = item.parameters.iter().chain(op.parameters.iter());
            for p in params {
                let Some(p) = resolve_parameter(p, components) else {
                    notes.push(format!("{label}: a parameter $ref could not be followed"));
                    continue;
                };
                match p {
                    Parameter::Path { parameter_data, .. } => {
                        let v = parameter_value(parameter_data, components);
                        target = target.replace(&format!("{{{}}}", parameter_data.name), &v);
                    }
                    Parameter::Query { parameter_data, .. } if parameter_data.required => {
                        let v = parameter_value(parameter_data, components);
                        step.query.insert(parameter_data.name.clone(), v);
                    }
                    Parameter::Header { parameter_data, .. } if parameter_data.required => {
                        let v = parameter_value(parameter_data, components);
                        step.headers.insert(parameter_data.name.clone(), v);
                    }
                    Parameter::Cookie { parameter_data, .. } if parameter_data.required => {
                        notes.push(format!(
                            "{label}: cookie parameter `{}` left out (set a Cookie header)",
                            parameter_data.name
                        ));
                    }
                    _ => {}
                }
            }
            step.path = Some(target);
            if let Some(body) = &op.request_body {
                match resolve_body(body, components) {
                    Some(body) => body_into(&mut step, body, components, &label, &mut notes),
                    None => {
                        notes.push(format!("{label}: a requestBody $ref could not be followed"))
                    }
                }
            }
            if op
                .security
                .as_ref()
                .or(spec.security.as_ref())
                .is_some_and(|s| !s.is_empty())
            {
                notes.push(format!(
                    "{label}: the document requires authentication; add `auth:` to the step"
                ));
            }
            let ok = op
                .responses
                .responses
                .keys()
                .filter_map(|c| match c {
                    StatusCode::Code(c) if (200..300).contains(c) => Some(*c),
                    _ => None,
                })
                .min();
            if let Some(code) = ok {
                step.checks.push(Check::Status { value: code });
            }
            match groups.iter_mut().find(|g| g.name == group) {
                Some(g) => g.steps.push(step),
                None => groups.push(Scenario {
                    name: group,
                    steps: vec![step],
                }),
            }
        }
    }
    if groups.is_empty() {
        return Err(ImportError::Empty(
            "no operation in the document matches the filters".into(),
        ));
    }
    let base_url = match (&opts.base_url, spec.servers.first()) {
        (Some(u), _) => u.clone(),
        (None, Some(server)) => {
            let mut url = server.url.clone();
            for (name, var) in server.variables.iter().flatten() {
                url = url.replace(&format!("{{{name}}}"), &var.default);
            }
            if url.starts_with('/') {
                notes.push(format!(
                    "the server URL `{url}` is relative: base_url is http://localhost:3000{url}; pass --base-url"
                ));
                url = format!("http://localhost:3000{url}");
            }
            url
        }
        (None, None) => {
            notes.push(
                "the document names no server: base_url is http://localhost:3000; pass --base-url"
                    .into(),
            );
            "http://localhost:3000".into()
        }
    };
    let load = Load::once_each(groups.len());
    Ok(Generated {
        header: format!(
            "Generated by `perfornium import openapi` from {source}.\n{} scenario(s), one virtual user each, one iteration: every operation once.",
            groups.len()
        ),
        test: Test {
            name: spec.info.title.clone(),
            description: spec.info.description.clone(),
            global: Global {
                base_url: base_url.trim_end_matches('/').to_string(),
                timeout: 30_000,
            },
            load,
            scenarios: groups,
        },
        notes,
    })
}

/// Rewrites the shapes OpenAPI 3.1 schemas use that 3.0's model has no place for: `type: [t,
/// "null"]` becomes `type: t` + `nullable`, `const: v` becomes `enum: [v]`, a numeric
/// `exclusiveMinimum`/`exclusiveMaximum` becomes the bound plus the flag, and a schema's `examples`
/// list becomes its `example`. (`examples` of parameters and media types are mappings, left alone.)
fn down_to_30(v: &mut serde_norway::Value) {
    use serde_norway::Value as Y;
    match v {
        Y::Mapping(m) => {
            if let Some(Y::Sequence(types)) = m.get("type").cloned() {
                let non_null: Vec<&Y> = types
                    .iter()
                    .filter(|t| t.as_str() != Some("null"))
                    .collect();
                if non_null.len() < types.len() {
                    m.insert("nullable".into(), Y::Bool(true));
                }
                match non_null.first() {
                    Some(t) => m.insert("type".into(), (*t).clone()),
                    None => m.remove("type"),
                };
            }
            if let Some(c) = m.remove("const") {
                m.insert("enum".into(), Y::Sequence(vec![c]));
            }
            for (bound, flag) in [
                ("minimum", "exclusiveMinimum"),
                ("maximum", "exclusiveMaximum"),
            ] {
                if let Some(n) = m.get(flag).filter(|n| n.is_number()).cloned() {
                    m.insert(bound.into(), n);
                    m.insert(flag.into(), Y::Bool(true));
                }
            }
            if let Some(Y::Sequence(list)) = m.get("examples").cloned() {
                m.remove("examples");
                if let Some(first) = list.into_iter().next() {
                    if !m.contains_key("example") {
                        m.insert("example".into(), first);
                    }
                }
            }
            for (_, child) in m.iter_mut() {
                down_to_30(child);
            }
        }
        Y::Sequence(items) => items.iter_mut().for_each(down_to_30),
        _ => {}
    }
}

fn resolve_parameter<'a>(
    p: &'a ReferenceOr<Parameter>,
    c: &'a Components,
) -> Option<&'a Parameter> {
    match p {
        ReferenceOr::Item(p) => Some(p),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/parameters/")?;
            resolve_parameter(c.parameters.get(name)?, c)
        }
    }
}

fn resolve_body<'a>(b: &'a ReferenceOr<RequestBody>, c: &'a Components) -> Option<&'a RequestBody> {
    match b {
        ReferenceOr::Item(b) => Some(b),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/requestBodies/")?;
            resolve_body(c.request_bodies.get(name)?, c)
        }
    }
}

fn resolve_schema<'a>(s: &'a ReferenceOr<Schema>, c: &'a Components) -> Option<&'a Schema> {
    match s {
        ReferenceOr::Item(s) => Some(s),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/schemas/")?;
            resolve_schema(c.schemas.get(name)?, c)
        }
    }
}

fn resolve_boxed<'a>(s: &'a ReferenceOr<Box<Schema>>, c: &'a Components) -> Option<&'a Schema> {
    match s {
        ReferenceOr::Item(s) => Some(s),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/schemas/")?;
            resolve_schema(c.schemas.get(name)?, c)
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A parameter's value: its example, else its schema's, else a generated one.
fn parameter_value(p: &ParameterData, c: &Components) -> String {
    if let Some(v) = &p.example {
        return scalar(v);
    }
    if let Some(v) = p.examples.values().find_map(|e| e.as_item()?.value.clone()) {
        return scalar(&v);
    }
    let schema = match &p.format {
        ParameterSchemaOrContent::Schema(s) => resolve_schema(s, c),
        ParameterSchemaOrContent::Content(_) => None,
    };
    match schema {
        Some(s) => match value_of(s, &p.name, c, 0) {
            Value::String(s) => s,
            other => other.to_string(),
        },
        None => "{{faker.lorem.word}}".into(),
    }
}

/// An example value for `schema` (a field called `name`): the schema's example, default or first
/// enum value, else one built from its type. Strings become faker expressions chosen by format or
/// field name; numbers stay numbers (a JSON body keeps its types), at the schema's minimum or 1.
fn value_of(schema: &Schema, name: &str, c: &Components, depth: usize) -> Value {
    if let Some(v) = schema
        .schema_data
        .example
        .clone()
        .or_else(|| schema.schema_data.default.clone())
    {
        return v;
    }
    if depth > 6 {
        return Value::Null;
    }
    let first = |list: &[ReferenceOr<Schema>]| {
        list.iter()
            .find_map(|s| resolve_schema(s, c))
            .map(|s| value_of(s, name, c, depth + 1))
            .unwrap_or(Value::Null)
    };
    match &schema.schema_kind {
        SchemaKind::Type(Type::String(t)) => {
            if let Some(Some(v)) = t.enumeration.first() {
                return Value::String(v.clone());
            }
            let format = match &t.format {
                VariantOrUnknownOrEmpty::Item(f) => format!("{f:?}").to_lowercase(),
                VariantOrUnknownOrEmpty::Unknown(f) => f.to_lowercase(),
                VariantOrUnknownOrEmpty::Empty => String::new(),
            };
            Value::String(string_for(&format, name))
        }
        SchemaKind::Type(Type::Integer(t)) => json!(t.minimum.unwrap_or(1)),
        SchemaKind::Type(Type::Number(t)) => json!(t.minimum.unwrap_or(1.0)),
        SchemaKind::Type(Type::Boolean(_)) => json!(true),
        SchemaKind::Type(Type::Array(t)) => {
            let item = t
                .items
                .as_ref()
                .and_then(|i| resolve_boxed(i, c))
                .map(|s| value_of(s, name, c, depth + 1))
                .unwrap_or(Value::Null);
            json!([item])
        }
        SchemaKind::Type(Type::Object(t)) => {
            let mut out = serde_json::Map::new();
            for (field, s) in &t.properties {
                if let Some(s) = resolve_boxed(s, c) {
                    if s.schema_data.read_only {
                        continue;
                    }
                    out.insert(field.clone(), value_of(s, field, c, depth + 1));
                }
            }
            Value::Object(out)
        }
        SchemaKind::AllOf { all_of } => {
            let mut out = serde_json::Map::new();
            for s in all_of.iter().filter_map(|s| resolve_schema(s, c)) {
                if let Value::Object(m) = value_of(s, name, c, depth + 1) {
                    out.extend(m);
                }
            }
            Value::Object(out)
        }
        SchemaKind::OneOf { one_of } => first(one_of),
        SchemaKind::AnyOf { any_of } => first(any_of),
        SchemaKind::Any(a) if !a.enumeration.is_empty() => a.enumeration[0].clone(),
        SchemaKind::Not { .. } | SchemaKind::Any(_) => Value::String(string_for("", name)),
    }
}

/// A faker expression for a string field, by its format, else its name.
fn string_for(format: &str, name: &str) -> String {
    let n = name.to_lowercase();
    let expr = match format {
        "uuid" => "faker.string.uuid",
        "email" => "faker.internet.email",
        "password" => "faker.internet.password",
        "date" => return "2024-01-01".into(),
        "datetime" | "date-time" => return "2024-01-01T00:00:00Z".into(),
        _ if n.contains("email") => "faker.internet.email",
        _ if n == "id" || n.ends_with("_id") => "faker.string.uuid",
        _ if n.contains("firstname") || n == "first_name" => "faker.person.firstName",
        _ if n.contains("lastname") || n == "last_name" => "faker.person.lastName",
        _ if n.contains("username") || n == "login" => "faker.internet.userName",
        _ if n.contains("password") => "faker.internet.password",
        _ if n.contains("name") => "faker.person.fullName",
        _ if n.contains("city") => "faker.location.city",
        _ if n.contains("street") || n.contains("address") => "faker.location.streetAddress",
        _ if n.contains("product") => "faker.commerce.productName",
        _ if n.contains("description") || n.contains("comment") || n.contains("text") => {
            "faker.lorem.sentence"
        }
        _ => "faker.lorem.word",
    };
    format!("{{{{{expr}}}}}")
}

/// Puts a request body into `step`: JSON as `json`, form fields as `form`, text as `body`.
fn body_into(
    step: &mut Step,
    body: &RequestBody,
    c: &Components,
    label: &str,
    notes: &mut Vec<String>,
) {
    let example = |m: &MediaType| -> Value {
        m.example
            .clone()
            .or_else(|| m.examples.values().find_map(|e| e.as_item()?.value.clone()))
            .or_else(|| {
                m.schema
                    .as_ref()
                    .and_then(|s| resolve_schema(s, c))
                    .map(|s| value_of(s, "body", c, 0))
            })
            .unwrap_or(Value::Null)
    };
    let json = body
        .content
        .iter()
        .find(|(t, _)| t.starts_with("application/json") || t.contains("+json"));
    if let Some((_, m)) = json {
        step.json = Some(example(m));
        return;
    }
    if let Some((_, m)) = body
        .content
        .iter()
        .find(|(t, _)| t.starts_with("application/x-www-form-urlencoded"))
    {
        if let Value::Object(fields) = example(m) {
            step.form = fields.iter().map(|(k, v)| (k.clone(), scalar(v))).collect();
        }
        return;
    }
    if let Some((t, m)) = body.content.iter().find(|(t, _)| t.starts_with("text/")) {
        step.headers.insert("Content-Type".into(), t.clone());
        step.body = Some(scalar(&example(m)));
        return;
    }
    let types: Vec<&String> = body.content.keys().collect();
    notes.push(format!(
        "{label}: request body of type {types:?} left out (JSON, form and text bodies are generated)"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r##"
openapi: 3.0.3
info: { title: Shop, version: "1" }
servers: [{ url: "https://{region}.shop.test/v1", variables: { region: { default: eu } } }]
paths:
  /items/{itemId}:
    parameters:
      - { name: itemId, in: path, required: true, schema: { type: integer, minimum: 3 } }
    get:
      tags: [items]
      operationId: getItem
      parameters:
        - { name: lang, in: query, required: true, example: nl, schema: { type: string } }
        - { name: page, in: query, schema: { type: integer } }
      responses: { "200": { description: ok }, "404": { description: no } }
  /items:
    post:
      tags: [items]
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Item" }
      responses: { "201": { description: created } }
  /health:
    get:
      responses: { default: { description: any } }
components:
  schemas:
    Item:
      type: object
      properties:
        id: { type: string, readOnly: true }
        name: { type: string }
        email: { type: string, format: email }
        price: { type: number, minimum: 0.5 }
        tags: { type: array, items: { type: string, enum: [new] } }
"##;

    #[test]
    fn groups_by_tag_fills_parameters_and_builds_bodies_from_schemas() {
        let g = import(SPEC, "shop.yaml", &Options::default()).unwrap();
        let t = &g.test;
        assert_eq!(t.global.base_url, "https://eu.shop.test/v1");
        let names: Vec<&str> = t.scenarios.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["items", "health"]);
        assert_eq!(t.load.virtual_users, 2);
        let get = &t.scenarios[0].steps[0];
        assert_eq!(get.name, "getItem");
        assert_eq!(get.path.as_deref(), Some("/items/3"));
        assert_eq!(get.query.get("lang").map(String::as_str), Some("nl"));
        assert!(!get.query.contains_key("page"), "optional query left out");
        assert!(matches!(get.checks[..], [Check::Status { value: 200 }]));
        let post = &t.scenarios[0].steps[1];
        assert_eq!(post.name, "POST /items");
        assert_eq!(
            post.json.as_ref().unwrap(),
            &json!({"name": "{{faker.person.fullName}}", "email": "{{faker.internet.email}}", "price": 0.5, "tags": ["new"]})
        );
        assert!(t.scenarios[1].steps[0].checks.is_empty(), "no 2xx code");
    }

    #[test]
    fn json_and_openapi_31_documents_are_read() {
        let doc: serde_norway::Value = serde_norway::from_str(SPEC).unwrap();
        let text = serde_json::to_string(&doc).unwrap();
        let from_json = import(&text, "s.json", &Options::default()).unwrap();
        assert_eq!(
            from_json.test.scenarios[0].steps[0].path.as_deref(),
            Some("/items/3")
        );
        let v31 = r#"
openapi: 3.1.0
info: { title: T, version: "1" }
paths:
  /a/{id}:
    post:
      parameters:
        - { name: id, in: path, required: true, schema: { type: [integer, "null"], exclusiveMinimum: 4 } }
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                kind: { const: fixed }
                size: { type: [number], examples: [7] }
      responses: { "200": { description: ok } }
"#;
        let g = import(v31, "s", &Options::default()).unwrap();
        let step = &g.test.scenarios[0].steps[0];
        assert_eq!(step.path.as_deref(), Some("/a/4"));
        assert_eq!(
            step.json.as_ref().unwrap(),
            &json!({"kind": "fixed", "size": 7})
        );
    }

    #[test]
    fn filters_and_refusals() {
        let only_post = Options {
            methods: vec!["post".into()],
            ..Default::default()
        };
        let g = import(SPEC, "s", &only_post).unwrap();
        assert_eq!(g.test.scenarios.len(), 1);
        assert_eq!(g.test.scenarios[0].steps.len(), 1);
        let none = Options {
            tags: vec!["nope".into()],
            ..Default::default()
        };
        assert!(matches!(
            import(SPEC, "s", &none),
            Err(ImportError::Empty(_))
        ));
        let swagger = "swagger: '2.0'\ninfo: {title: x, version: '1'}\npaths: {}\n";
        assert!(import(swagger, "s", &Options::default())
            .unwrap_err()
            .to_string()
            .contains("Swagger 2.0"));
        assert!(import("[1, 2", "s", &Options::default()).is_err());
    }
}

//! Pattern templates: the messages of a versioned prompt template (MiniJinja) and the JSON Schema
//! of its variables, checked when a version is stored and rendered when a request or a suite
//! uses it.
//!
//! A version is checked once: each message's role and template, the schema, and that every
//! variable a template reads is declared in the schema's `properties`. Rendering checks the
//! variables against the schema first (the path of the first mistake, as `variables.ticket`),
//! then renders with undefined variables as errors and a bounded amount of work.

use crate::suite::{
    Checker, Problem, Role, SuiteError, environment, kind_of, render_bounded, variables_of,
};
use serde_json::Value;
use std::collections::BTreeSet;

/// A checked pattern version, ready to render.
#[derive(Debug)]
pub struct Template {
    messages: Vec<(Role, String)>,
    validator: jsonschema::Validator,
    /// The schema's `properties.*.default`s, filled in for variables not given.
    defaults: serde_json::Map<String, Value>,
    /// The variables its templates read.
    pub variables: BTreeSet<String>,
}

/// What a pattern reference selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A label (`production`, `staging`, …).
    Label(String),
    /// A version number.
    Version(i64),
}

/// `name@label`, `name@3`, or `name` (its `production` label).
pub fn parse_reference(reference: &str) -> Result<(String, Selector), String> {
    let (name, sel) = match reference.split_once('@') {
        Some((n, s)) => (n, s),
        None => (reference, "production"),
    };
    if name.trim().is_empty() || sel.trim().is_empty() {
        return Err(format!(
            "`{}` is not a pattern reference: write `name@label` or `name@version`",
            crate::text::clip(reference, tollgate_types::text::ECHO_CHARS)
        ));
    }
    let sel = match sel.parse::<i64>() {
        Ok(v) if v > 0 => Selector::Version(v),
        Ok(_) => return Err("a pattern version is a number from 1".into()),
        Err(_) => Selector::Label(sel.to_string()),
    };
    Ok((name.to_string(), sel))
}

impl Template {
    /// Checks a version's `messages` (`[{role, content}]`) and `schema`: every problem with its
    /// path.
    pub fn compile(messages: &Value, schema: &Value) -> Result<Template, SuiteError> {
        let mut c = Checker::default();
        let env = environment();
        let mut out = Vec::new();
        let mut variables = BTreeSet::new();
        match messages {
            Value::Array(list) if !list.is_empty() => {
                for (i, m) in list.iter().enumerate() {
                    let p = format!("messages[{i}]");
                    let Some(mm) = c.object(&p, m) else {
                        continue;
                    };
                    c.only_keys(&p, mm, &["role", "content"]);
                    let role = match mm.get("role").and_then(Value::as_str) {
                        Some("system") => Some(Role::System),
                        Some("user") => Some(Role::User),
                        Some("assistant") => Some(Role::Assistant),
                        _ => {
                            c.add(
                                &format!("{p}.role"),
                                "required: one of system, user, assistant",
                            );
                            None
                        }
                    };
                    let content = match mm.get("content") {
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(other) => {
                            c.add(
                                &format!("{p}.content"),
                                format!("expected a template (text), got {}", kind_of(other)),
                            );
                            None
                        }
                        None => {
                            c.add(&format!("{p}.content"), "required: the message's template");
                            None
                        }
                    };
                    if let (Some(role), Some(content)) = (role, content) {
                        variables.extend(variables_of(
                            &env,
                            &mut c,
                            &format!("{p}.content"),
                            &content,
                        ));
                        out.push((role, content));
                    }
                }
            }
            other => c.add(
                "messages",
                format!(
                    "expected a non-empty list of {{role, content}}, got {}",
                    kind_of(other)
                ),
            ),
        }
        let validator = match schema {
            Value::Object(_) => match jsonschema::validator_for(schema) {
                Ok(v) => Some(v),
                Err(e) => {
                    c.add("schema", format!("not a valid JSON Schema: {e}"));
                    None
                }
            },
            other => {
                c.add(
                    "schema",
                    format!(
                        "expected a JSON Schema (a mapping) for the variables, got {}",
                        kind_of(other)
                    ),
                );
                None
            }
        };
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for v in &variables {
                if !props.contains_key(v) {
                    c.add(
                        "schema.properties",
                        format!("`{v}` is used by the messages but not declared here"),
                    );
                }
            }
        } else if !variables.is_empty() && schema.is_object() {
            c.add(
                "schema.properties",
                format!(
                    "declare the variables the messages use: {}",
                    variables.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        match (c.problems.is_empty(), validator) {
            (true, Some(validator)) => Ok(Template {
                messages: out,
                validator,
                defaults: schema
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|props| {
                        props
                            .iter()
                            .filter_map(|(k, p)| Some((k.clone(), p.get("default")?.clone())))
                            .collect()
                    })
                    .unwrap_or_default(),
                variables,
            }),
            _ => Err(SuiteError {
                problems: c.problems,
            }),
        }
    }

    /// The messages rendered with `variables` (the schema's defaults filling in those not
    /// given); the first problem, with its path, otherwise.
    pub fn render(&self, variables: &Value) -> Result<Vec<(Role, String)>, Problem> {
        let Value::Object(given) = variables else {
            return Err(Problem {
                path: "variables".into(),
                message: format!(
                    "expected an object of variables, got {}",
                    kind_of(variables)
                ),
            });
        };
        let mut filled = given.clone();
        for (k, v) in &self.defaults {
            filled.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let variables = &Value::Object(filled);
        if let Some(e) = self.validator.iter_errors(variables).next() {
            let at = e.instance_path().to_string();
            let path = if at.is_empty() {
                "variables".to_string()
            } else {
                format!("variables{}", at.replace('/', "."))
            };
            return Err(Problem {
                path,
                message: e.to_string(),
            });
        }
        let env = environment();
        let ctx = minijinja::Value::from_serialize(variables);
        self.messages
            .iter()
            .enumerate()
            .map(|(i, (role, t))| {
                render_bounded(&env, t, ctx.clone())
                    .map(|text| (*role, text))
                    .map_err(|e| Problem {
                        path: format!("pattern.messages[{i}]"),
                        message: format!("cannot be rendered with these variables: {e}"),
                    })
            })
            .collect()
    }
}

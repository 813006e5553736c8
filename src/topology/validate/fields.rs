//! The field names and kinds the lab format knows, read once from the JSON Schema that schemars
//! derives from the spec types. Hosts, switches and the lab object are taken apart before serde
//! sees them (so that one bad field does not hide the others), so their known fields must be
//! known here too; reading them from the types keeps one list, where a field added to a type is
//! accepted and offered in hints at once.

use std::sync::LazyLock;

use schemars::JsonSchema;
use serde_json::{Map, Value};

use crate::topology::spec::{AppSpec, LabSpec, LinkSpec, NodeSpec};

/// Fields of the lab object, in the order the type declares them.
pub(super) static TOP_FIELDS: LazyLock<Vec<String>> = LazyLock::new(|| Shape::of::<LabSpec>().fields);

/// Node kinds, each with its fields (the tag `kind` first).
static NODES: LazyLock<Vec<Shape>> = LazyLock::new(Shape::variants::<NodeSpec>);

/// The values of a node's `kind`.
pub(super) static NODE_KINDS: LazyLock<Vec<String>> = LazyLock::new(|| kinds(&NODES));
pub(super) static HOST_FIELDS: LazyLock<Vec<String>> = LazyLock::new(|| variant(&NODES, "host").fields);
pub(super) static SWITCH_FIELDS: LazyLock<Vec<String>> = LazyLock::new(|| variant(&NODES, "switch").fields);
pub(super) static GATEWAY_FIELDS: LazyLock<Vec<String>> = LazyLock::new(|| variant(&NODES, "gateway").fields);
pub(super) static ROUTER_FIELDS: LazyLock<Vec<String>> = LazyLock::new(|| variant(&NODES, "router").fields);
/// Host fields whose value is a struct, which serde would also read from an array.
pub(super) static HOST_OBJECTS: LazyLock<Vec<String>> = LazyLock::new(|| variant(&NODES, "host").structs);

/// The values of an app's `kind`.
pub(super) static APP_KINDS: LazyLock<Vec<String>> = LazyLock::new(|| kinds(&Shape::variants::<AppSpec>()));

/// The values of an event's `kind`.
pub(super) static EVENT_KINDS: LazyLock<Vec<String>> =
    LazyLock::new(|| kinds(&Shape::variants::<crate::topology::spec::EventSpec>()));

/// Link fields whose value is a struct, which serde would also read from an array.
pub(super) static LINK_OBJECTS: LazyLock<Vec<String>> = LazyLock::new(|| Shape::of::<LinkSpec>().structs);

/// What the schema says about one object type (or one variant of a tagged enum).
#[derive(Clone, Default)]
struct Shape {
    /// The value of the tag, for an enum variant.
    kind: Option<String>,
    fields: Vec<String>,
    /// The fields whose value is a struct (or an optional one).
    structs: Vec<String>,
}

impl Shape {
    fn of<T: JsonSchema>() -> Shape {
        let schema = schemars::schema_for!(T).to_value();
        Shape::read(&schema, defs(&schema))
    }

    /// The variants of an internally tagged enum, in declaration order.
    fn variants<T: JsonSchema>() -> Vec<Shape> {
        let schema = schemars::schema_for!(T).to_value();
        let defs = defs(&schema);
        let variants = schema.get("oneOf").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        variants.iter().map(|v| Shape::read(v, defs)).collect()
    }

    fn read(schema: &Value, defs: &Map<String, Value>) -> Shape {
        let schema = resolve(schema, defs);
        let Some(props) = schema.get("properties").and_then(Value::as_object) else { return Shape::default() };
        let kind = props.get("kind").and_then(|k| {
            let value = k.get("const").or_else(|| k.get("enum").and_then(|e| e.get(0)));
            value.and_then(Value::as_str).map(str::to_string)
        });
        let structs = props.iter().filter(|(_, p)| is_struct(p, defs)).map(|(k, _)| k.clone()).collect();
        Shape { kind, fields: props.keys().cloned().collect(), structs }
    }
}

fn kinds(variants: &[Shape]) -> Vec<String> {
    variants.iter().filter_map(|v| v.kind.clone()).collect()
}

fn variant(variants: &[Shape], kind: &str) -> Shape {
    variants.iter().find(|v| v.kind.as_deref() == Some(kind)).cloned().unwrap_or_default()
}

fn defs(schema: &Value) -> &Map<String, Value> {
    static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);
    schema.get("$defs").and_then(Value::as_object).unwrap_or(&EMPTY)
}

/// The schema a `$ref` points to, or `schema` itself.
fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    let name = schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/"));
    name.and_then(|n| defs.get(n)).unwrap_or(schema)
}

/// Whether a property holds a struct: its schema, or one of its `anyOf` choices (an `Option`), has
/// properties of its own. A map (`interfaces`) has none, only `additionalProperties`.
fn is_struct(prop: &Value, defs: &Map<String, Value>) -> bool {
    let choices = prop.get("anyOf").and_then(Value::as_array).map_or_else(|| vec![prop], |c| c.iter().collect());
    choices.into_iter().any(|c| resolve(c, defs).get("properties").is_some())
}

/// `` `a` ``, `` `a` or `b` ``, `` `a`, `b` or `c` ``: each item as code, for a hint.
pub(super) fn either(items: impl IntoIterator<Item = impl std::fmt::Display>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| format!("`{i}`")).collect();
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => items.concat(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde_json::{json, Value};

    use super::*;
    use crate::topology::spec::{HostSpec, SwitchSpec};
    use crate::topology::validate::load_str;

    /// The keys serde writes for `v`: every field of its type in order, since none is skipped when
    /// serialising.
    fn keys(v: impl Serialize) -> Vec<String> {
        match serde_json::to_value(v) {
            Ok(Value::Object(m)) => m.keys().cloned().collect(),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn minimal_lab() -> LabSpec {
        serde_json::from_value(json!({ "name": "every-field", "nodes": {} })).expect("a lab spec")
    }

    #[test]
    fn field_lists_are_the_fields_of_the_spec_types() {
        assert_eq!(*TOP_FIELDS, keys(minimal_lab()));
        assert_eq!(*HOST_FIELDS, keys(NodeSpec::Host(HostSpec::default())));
        assert_eq!(*SWITCH_FIELDS, keys(NodeSpec::Switch(SwitchSpec::default())));
        assert_eq!(*NODE_KINDS, ["host", "switch", "router", "gateway"]);
        assert_eq!(*ROUTER_FIELDS, keys(NodeSpec::Router(crate::topology::spec::RouterSpec::default())));
        assert_eq!(*GATEWAY_FIELDS, keys(NodeSpec::Gateway(crate::topology::spec::GatewaySpec::default())));
        assert!(HOST_OBJECTS.iter().all(|f| HOST_FIELDS.contains(f)) && HOST_OBJECTS.contains(&"tcp".to_string()));
        assert!(LINK_OBJECTS.contains(&"impair".to_string()) && !LINK_OBJECTS.contains(&"a".to_string()));
        // serde knows every kind the schema lists.
        assert!(APP_KINDS.len() >= 7);
        for kind in APP_KINDS.iter() {
            let err = serde_json::from_value::<AppSpec>(json!({ "kind": kind })).err().map(|e| e.to_string());
            assert!(!err.unwrap_or_default().contains("unknown variant"), "serde does not know `{kind}`");
        }
    }

    /// A lab that writes every field of the lab object, a host, a switch and every app kind: none of
    /// them may be called unknown. A field added to a spec type and not accepted fails this test.
    #[test]
    fn every_field_of_the_spec_types_is_accepted() {
        let mut lab = serde_json::to_value(minimal_lab()).expect("serialises");
        let mut host = serde_json::to_value(NodeSpec::Host(HostSpec::default())).expect("serialises");
        let apps: Vec<Value> = Shape::variants::<AppSpec>()
            .into_iter()
            .map(|v| {
                let mut app: Map<String, Value> = v.fields.into_iter().map(|f| (f, Value::Null)).collect();
                app.insert("kind".into(), json!(v.kind));
                Value::Object(app)
            })
            .collect();
        assert_eq!(apps.len(), APP_KINDS.len());
        host["apps"] = Value::Array(apps);
        let switch = serde_json::to_value(NodeSpec::Switch(SwitchSpec::default())).expect("serialises");
        lab["nodes"] = json!({ "h1": host, "sw1": switch });
        let text = serde_json::to_string_pretty(&lab).expect("serialises");
        let diags = load_str(&text, "every-field.json").expect_err("null apps are wrong");
        let unknown: Vec<String> =
            diags.0.iter().filter(|d| d.message.starts_with("unknown")).map(ToString::to_string).collect();
        assert!(unknown.is_empty(), "{}\n\nin:\n{text}", unknown.join("\n"));
        // The null `to` of each client app is reported: every kind was read as what it is.
        assert!(diags.0.iter().any(|d| d.path == "nodes.h1.apps[0].to"), "{diags}");
    }

    #[test]
    fn hints_list_choices_as_code() {
        assert_eq!(either(["host", "switch"]), "`host` or `switch`");
        assert_eq!(either(["a", "b", "c"]), "`a`, `b` or `c`");
        assert_eq!(either(["a"]), "`a`");
        assert_eq!(either(Vec::<&str>::new()), "");
    }
}

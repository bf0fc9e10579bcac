//! Every service's OpenAPI document: the service's own `openapi.json` completed with what the
//! host gives every service, and tailored to the key that asks for it.
//!
//! The shared part (`openapi_shared.json`) holds the error shape, the bearer-key scheme, the
//! common parameter schemas (`AccountId`, `Time`), the host's routes (`/health`, `/metrics`,
//! `/openapi.json`) and its answers. [`Document::new`] adds those answers to every operation
//! that lacks them, because the host can give them on any route: `403` (origin and `Host`
//! checks), `503` with `Retry-After` (overload, timeout); on keyed routes `401` and `429` with
//! `Retry-After` (rate per key); on routes with a body `413` and `415`, and `400` and `422` from
//! the one JSON parser. A service's file thus states only what its handlers decide.
//!
//! [`Document::for_caller`] describes what one key may send: a key limited to some accounts gets
//! them as the `AccountId` enum, and a body schema marked `"x-account"` gets `account` in its
//! `required` list exactly when the handler demands it of that key:
//! - `"x-account": "write"`: required unless the key covers exactly one account (the account an
//!   order or write acts on, `Caller::write_account`);
//! - `"x-account": "one"`: required when the key covers several named accounts (a computation
//!   over one account; a key over every account may leave it out to mean all).

use std::sync::Arc;

use auth::{ApiKeys, Principal};
use axum::extract::FromRef;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use serde_json::{Map, Value};

use crate::http::{ApiError, Caller};

const SHARED: &str = include_str!("openapi_shared.json");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A service's completed OpenAPI document.
#[derive(Debug, Clone)]
pub struct Document(Arc<Value>);

impl Document {
    /// The service's own document (`include_str!("openapi.json")`) plus the shared parts.
    pub fn new(own: &str) -> Result<Document, String> {
        let mut doc: Value =
            serde_json::from_str(own).map_err(|e| format!("openapi.json is not JSON: {e}"))?;
        let shared: Value = serde_json::from_str(SHARED)
            .map_err(|e| format!("openapi_shared.json is not JSON: {e}"))?;
        if !doc.is_object() {
            return Err("openapi.json is not a JSON object".into());
        }
        complete(&mut doc, &shared);
        Ok(Document(Arc::new(doc)))
    }

    pub fn value(&self) -> &Value {
        &self.0
    }

    /// The document as `principal` may use it (the generic one without a key).
    pub fn for_caller(&self, principal: Option<&Principal>) -> Value {
        let mut doc = (*self.0).clone();
        if let Some(p) = principal {
            tailor(&mut doc, p);
        }
        doc
    }
}

/// The document as a JSON response.
pub fn response(doc: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}

/// `GET /openapi.json` of a service whose document needs no tailoring beyond the caller's
/// accounts. A key is optional: without one (or with one that is not valid) the generic
/// document is served.
pub fn route<S>(own: &'static str) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
    ApiKeys: FromRef<S>,
{
    let doc = Document::new(own);
    get(move |caller: Result<Caller, ApiError>| {
        let doc = doc.clone();
        async move {
            match doc {
                Ok(d) => response(&d.for_caller(caller.ok().as_ref().map(Caller::principal))),
                Err(e) => ApiError::internal(e).into_response(),
            }
        }
    })
}

fn object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn reference(name: &str) -> Value {
    serde_json::json!({ "$ref": format!("#/components/responses/{name}") })
}

fn complete(doc: &mut Value, shared: &Value) {
    let root = object(doc);
    if let Some(Value::Object(sections)) = shared.get("components") {
        let components = object(root.entry("components").or_insert(Value::Null));
        for (section, entries) in sections {
            let target = object(components.entry(section.clone()).or_insert(Value::Null));
            if let Value::Object(entries) = entries {
                for (name, v) in entries {
                    target.entry(name.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    let paths = object(root.entry("paths").or_insert(Value::Null));
    if let Some(Value::Object(shared_paths)) = shared.get("paths") {
        for (path, item) in shared_paths {
            paths.entry(path.clone()).or_insert_with(|| item.clone());
        }
    }
    for item in paths.values_mut() {
        let Value::Object(item) = item else { continue };
        for method in METHODS {
            if let Some(op) = item.get_mut(method) {
                add_host_responses(op);
            }
        }
    }
}

/// The answers the host can give on this operation whatever its handler does.
fn add_host_responses(op: &mut Value) {
    let keyed = op
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|reqs| reqs.iter().any(|r| r.get("bearer").is_some()));
    let has_body = op.get("requestBody").is_some();
    let responses = object(object(op).entry("responses").or_insert(Value::Null));
    let mut add = |status: &str, name: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| reference(name));
    };
    add("403", "Forbidden");
    add("503", "Unavailable");
    if keyed {
        add("401", "Unauthorized");
        add("429", "TooManyRequests");
    }
    if has_body {
        // The one JSON parser (`parse_json`) answers these whatever the route.
        add("400", "BadRequest");
        add("422", "Unprocessable");
        add("413", "PayloadTooLarge");
        add("415", "UnsupportedMediaType");
    }
}

fn tailor(doc: &mut Value, p: &Principal) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if let (Some(accounts), Some(Value::Object(id))) =
        (p.account_filter(), schemas.get_mut("AccountId"))
    {
        id.insert(
            "enum".into(),
            accounts.iter().map(|a| Value::from(a.as_str())).collect(),
        );
    }
    let named = p.account_filter().map_or(0, |set| set.len());
    let mut must_name = Vec::new();
    for (name, schema) in schemas.iter_mut() {
        let required = match schema.get("x-account").and_then(Value::as_str) {
            Some("write") => p.default_account().is_none(),
            Some("one") => named > 1,
            _ => continue,
        };
        if required {
            must_name.push(format!("#/components/schemas/{name}"));
        }
        let schema = object(schema);
        if required {
            // Required means present and not null (`null` is the same as leaving it out).
            object(schema.entry("properties").or_insert(Value::Null)).insert(
                "account".into(),
                serde_json::json!({ "$ref": "#/components/schemas/AccountId" }),
            );
        }
        let list = schema
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = list {
            list.retain(|v| v != "account");
            if required {
                list.push("account".into());
            }
        }
    }
    // A body that must name the account cannot be left out either.
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for op in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
    {
        let Some(body) = op.get_mut("requestBody") else {
            continue;
        };
        let schema = body
            .pointer("/content/application~1json/schema/$ref")
            .and_then(Value::as_str);
        if schema.is_some_and(|r| must_name.iter().any(|m| m == r)) {
            body["required"] = Value::Bool(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth::Role;

    const OWN: &str = r##"{
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "components": {"schemas": {
            "Order": {"type": "object", "x-account": "write", "required": ["symbol"],
                      "properties": {"account": {"$ref": "#/components/schemas/AccountId"}}},
            "Pnl": {"type": "object", "x-account": "one",
                    "properties": {"account": {"$ref": "#/components/schemas/AccountId"}}}
        }},
        "paths": {
            "/orders": {"post": {"security": [{"bearer": []}], "requestBody": {"content": {}},
                                 "responses": {"201": {"description": "ok"},
                                               "503": {"description": "mine"}}}},
            "/pnl": {"post": {"security": [{"bearer": []}], "requestBody": {"required": false,
                              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pnl"}}}},
                              "responses": {"200": {"description": "ok"}}}},
            "/public": {"get": {"responses": {"200": {"description": "ok"}}}}
        }
    }"##;

    fn key(role: Role, accounts: &[&str]) -> Principal {
        crate::http::tests::caller(role, accounts).0
    }

    #[test]
    fn every_operation_gets_the_hosts_answers_and_keeps_its_own() {
        let doc = Document::new(OWN).unwrap();
        let v = doc.value();
        let post = &v["paths"]["/orders"]["post"]["responses"];
        for s in ["400", "401", "403", "413", "415", "422", "429"] {
            assert!(post[s]["$ref"].is_string(), "{s}: {post}");
        }
        assert_eq!(post["503"]["description"], "mine");
        let public = &v["paths"]["/public"]["get"]["responses"];
        assert!(public["503"]["$ref"].is_string() && public["403"]["$ref"].is_string());
        for s in ["401", "429", "413", "415"] {
            assert!(public.get(s).is_none(), "{s} on a keyless GET: {public}");
        }
        for p in ["/health", "/metrics", "/openapi.json"] {
            assert!(v["paths"][p]["get"].is_object(), "{p}");
        }
        for r in [
            "Unauthorized",
            "TooManyRequests",
            "PayloadTooLarge",
            "Unavailable",
        ] {
            assert!(v["components"]["responses"][r].is_object(), "{r}");
        }
        assert!(v["components"]["schemas"]["Error"].is_object());
        assert!(Document::new("[]").is_err() && Document::new("{").is_err());
    }

    #[test]
    fn a_key_sees_its_accounts_and_when_account_is_required() {
        let doc = Document::new(OWN).unwrap();
        let required = |v: &Value, schema: &str| {
            v["components"]["schemas"][schema]["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x == "account"))
        };
        let generic = doc.for_caller(None);
        assert!(!required(&generic, "Order") && !required(&generic, "Pnl"));
        assert!(
            generic["components"]["schemas"]["AccountId"]
                .get("enum")
                .is_none()
        );

        let one = doc.for_caller(Some(&key(Role::Trader, &["a"])));
        assert!(!required(&one, "Order") && !required(&one, "Pnl"));
        assert_eq!(
            one["components"]["schemas"]["AccountId"]["enum"],
            serde_json::json!(["a"])
        );
        assert_eq!(
            one["components"]["schemas"]["Order"]["required"],
            serde_json::json!(["symbol"])
        );

        let two = doc.for_caller(Some(&key(Role::Trader, &["a", "b"])));
        assert!(required(&two, "Order") && required(&two, "Pnl"));
        assert_eq!(
            two["paths"]["/pnl"]["post"]["requestBody"]["required"],
            true
        );
        assert_eq!(
            one["paths"]["/pnl"]["post"]["requestBody"]["required"],
            false
        );
        assert_eq!(
            two["components"]["schemas"]["Order"]["properties"]["account"]["$ref"],
            "#/components/schemas/AccountId",
            "a required account may not be null"
        );

        let admin = doc.for_caller(Some(&key(Role::Admin, &[])));
        assert!(required(&admin, "Order") && !required(&admin, "Pnl"));
        assert!(
            admin["components"]["schemas"]["AccountId"]
                .get("enum")
                .is_none()
        );
    }
}

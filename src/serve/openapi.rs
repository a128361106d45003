//! `/openapi.json`: OpenAPI 3.1 built from the endpoints' parameter lists in `api` (the ones the
//! handlers enforce) and a description of each parameter. A hand-kept table rather than a derive
//! crate: six read-only endpoints, and one list per endpoint that both the handler and the spec
//! read keeps them in step (a test validates the result with openapi-spec-validator).

use super::api::{ALERTS_PARAMS, POSTS_PARAMS, SUMMARY_PARAMS, TRENDS_PARAMS};
use axum::Json;
use serde_json::{json, Map, Value};

fn parameter(name: &str) -> Value {
    let (description, schema) = match name {
        "since" => ("Start: 7d, 12h, 2026-11-20, 2026-11-20 08:00 (city time) or RFC 3339. Default 7d.", json!({"type": "string"})),
        "until" => ("End (exclusive), same forms as since. Default now.", json!({"type": "string"})),
        "by" => ("Group by.", json!({"type": "string", "enum": ["topic", "place", "source"], "default": "topic"})),
        "granularity" => ("Bucket size.", json!({"type": "string", "enum": ["hour", "day"], "default": "day"})),
        "topic" => ("A topic id (GET /api/v1/topics).", json!({"type": "string"})),
        "place" => ("A place id (GET /api/v1/places).", json!({"type": "string"})),
        "source" => ("A configured source name.", json!({"type": "string"})),
        "sentiment" => ("Only posts with this label.", json!({"type": "string", "enum": ["negative", "neutral", "positive"]})),
        "q" => ("Words or a phrase, matched as alert watch_terms are (case, NFC, whole words, diacritics folded for unaccented text).", json!({"type": "string"})),
        "limit" => ("Items per page (posts, corrections), 1..1000. Default 50.", json!({"type": "integer", "minimum": 1, "maximum": 1000, "default": 50})),
        "cursor" => ("next_cursor of the previous page.", json!({"type": "string"})),
        "date" => ("The day, YYYY-MM-DD in the city's time zone. Default today.", json!({"type": "string", "format": "date"})),
        "revoked" => ("Whether revoked corrections are listed too.", json!({"type": "string", "enum": ["exclude", "include"], "default": "exclude"})),
        "state" => ("Only alerts in this state.", json!({"type": "string", "enum": ["firing", "resolved"]})),
        _ => ("", json!({"type": "string"})),
    };
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn operation(summary: &str, params: &[&str], body: Value) -> Value {
    json!({
        "get": {
            "summary": summary,
            "parameters": params.iter().map(|p| parameter(p)).collect::<Vec<_>>(),
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": body}}},
                "400": {"description": "A bad parameter", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "401": {"description": "A token is required", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        }
    })
}

fn object(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

/// `POST /api/v1/intake/{channel}` (the channel's own token, not the analysts').
fn intake() -> Value {
    let record = object(json!({
        "id": {"type": "string"}, "text": {"type": "string"},
        "created_at": {"type": "string", "description": "RFC 3339, or YYYY-MM-DD HH:MM[:SS] in the city's time zone"},
        "place": {"type": "string", "description": "A place id, or words the gazetteer knows"},
        "category": {"type": "string"}, "author": {"type": "string", "description": "Pseudonymised; never stored"}}));
    let outcome = object(json!({
        "index": {"type": "integer"}, "id": {"type": "string"},
        "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
        "reason": {"type": "string"}, "kind": {"type": "string"}}));
    let answer = object(json!({"channel": {"type": "string"}, "accepted": {"type": "integer"},
        "duplicate": {"type": "integer"}, "rejected": {"type": "integer"},
        "records": {"type": "array", "items": outcome}}));
    json!({"post": {
        "summary": "Records of a first-party channel (1022 hotline…): every record accepted, duplicate or rejected",
        "parameters": [{"name": "channel", "in": "path", "required": true, "schema": {"type": "string"}}],
        "requestBody": {"required": true, "content": {
            "application/json": {"schema": {"type": "array", "items": record}},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/csv": {"schema": {"type": "string", "description": "A header naming id, text, created_at, …"}}}},
        "responses": {
            "200": {"description": "One outcome per record", "content": {"application/json": {"schema": answer}}},
            "400": {"description": "The body cannot be read at all"},
            "401": {"description": "No valid token for this channel"},
            "413": {"description": "Body or record count over the channel's limit"},
            "415": {"description": "Not JSON, NDJSON or CSV"},
            "429": {"description": "Over the channel's request rate; see Retry-After"},
            "503": {"description": "Nothing taken; send again after Retry-After"}}}})
}

fn emerging() -> (Value, Value) {
    let group = object(json!({
        "rank": {"type": "integer"}, "label": {"type": "string", "description": "Its most distinctive words, diacritics kept"},
        "terms": {"type": "array", "items": {"type": "string"}}, "status": {"type": "string", "enum": ["new", "growing"]},
        "posts": {"type": "integer"}, "posts_like": {"type": "integer"}, "baseline_per_day": {"type": "number"},
        "growth": {"type": "number"}, "share_negative": {"type": "number"},
        "places": {"type": "array", "items": object(json!({"place": {"type": "string"}, "posts": {"type": "integer"}}))},
        "sources": {"type": "array", "items": {"type": "array"}},
        "examples": {"type": "array", "items": {"type": "string"}, "description": "Redacted text, nearest the group's centre first"},
        "example_keys": {"type": "array", "items": {"type": "string"}},
        "member_keys": {"type": "array", "items": {"type": "string"}}}));
    let report = object(json!({
        "date": {"type": "string", "format": "date"}, "computed_at": {"type": "string", "format": "date-time"},
        "is_final": {"type": "boolean"}, "unclaimed_posts": {"type": "integer"}, "posts_grouped": {"type": "integer"},
        "baseline_days_with_posts": {"type": "integer"}, "groups_found": {"type": "integer"},
        "groups": {"type": "array", "items": group}, "seconds": {"type": "number"}}));
    let get = operation(
        "Emerging issues: the day's posts no topic claims, grouped by meaning; the new and growing groups",
        super::emerging::EMERGING_PARAMS,
        object(json!({"date": {"type": "string", "format": "date"},
            "report": {"oneOf": [report, {"type": "null"}]},
            "message": {"type": "string", "description": "Why report is null: none saved for the day yet, and how to get one"}})),
    );
    let post = json!({"post": {
        "summary": "Write a reported group's proposed [[topic]] block to emerging.proposals_dir for review (analyst role)",
        "requestBody": {"required": true, "content": {"application/json": {"schema": object(json!({
            "date": {"type": "string", "format": "date"}, "rank": {"type": "integer"}}))}}},
        "responses": {
            "201": {"description": "Written", "content": {"application/json": {"schema": object(json!({
                "path": {"type": "string"}, "topic_id": {"type": "string"}, "block": {"type": "string"}}))}}},
            "400": {"description": "A bad body, date or rank"},
            "403": {"description": "The token's role is not analyst"},
            "404": {"description": "No report computed for that day"}}}});
    (get, post)
}

/// The saved-search paths: the list (GET) and saving (POST), deleting, a search's series and posts.
fn searches(trend_row: &Value, post: &Value) -> Vec<(&'static str, Value)> {
    let search = object(json!({
        "name": {"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"},
        "query": {"type": "string", "description": "Words and \"phrases\" with AND, OR, NOT and parentheses, matched as watch_terms"},
        "places": {"type": "array", "items": {"type": "string"}}, "sources": {"type": "array", "items": {"type": "string"}},
        "description": {"type": "string"}}));
    let mut listed = search.clone();
    listed["properties"]["origin"] = json!({"type": "string", "enum": ["config", "api"]});
    listed["properties"]["saved_by"] = json!({"type": "string"});
    listed["properties"]["saved_at"] = json!({"type": "string", "format": "date-time"});
    let name = json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}});
    let error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut list = operation(
        "Saved searches: searches.toml's and those saved through the API",
        &[],
        object(json!({"searches": {"type": "array", "items": listed.clone()}})),
    );
    let saved = json!({"content": {"application/json": {"schema": object(json!({"search": listed.clone()}))}}});
    list["post"] = json!({
        "summary": "Save a search (analyst role); the same name replaces it. Answers once the last 90 days of its series are computed",
        "requestBody": {"required": true, "content": {"application/json": {"schema": search}}},
        "responses": {
            "200": {"description": "Replaced", "content": saved["content"]},
            "201": {"description": "Saved", "content": saved["content"]},
            "400": error("A bad name, query (with the column of the mistake), place or source"),
            "403": error("The token's role is not analyst"),
            "409": error("The name belongs to searches.toml")}});
    let delete = json!({"delete": {
        "summary": "Delete a search saved through the API (analyst role)",
        "parameters": [name.clone()],
        "responses": {"204": {"description": "Deleted"}, "403": error("The token's role is not analyst"),
            "404": error("No such search"), "409": error("The search belongs to searches.toml")}}});
    let with_name = |mut op: Value| {
        op["get"]["parameters"].as_array_mut().expect("parameters").insert(0, name.clone());
        op["get"]["responses"]["404"] = error("No such search");
        op
    };
    let trends = with_name(operation(
        "A saved search's volume and sentiment per bucket (key is empty)",
        super::searches::SEARCH_TRENDS_PARAMS,
        object(json!({"search": listed, "rows": {"type": "array", "items": trend_row},
            "unindexed_posts": {"type": "integer", "description": "Posts of the range stored before searches existed and not re-indexed: not in rows"}})),
    ));
    let posts = with_name(operation(
        "The posts a saved search matches, newest first, paged",
        super::searches::SEARCH_POSTS_PARAMS,
        object(json!({"posts": {"type": "array", "items": post}, "next_cursor": {"type": ["string", "null"]}})),
    ));
    vec![
        ("/api/v1/searches", list),
        ("/api/v1/searches/{name}", delete),
        ("/api/v1/searches/{name}/trends", trends),
        ("/api/v1/searches/{name}/posts", posts),
    ]
}

/// The corrections paths: the list (GET) and correcting (POST), and revoking.
fn corrections() -> Vec<(&'static str, Value)> {
    let error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let correction = object(json!({
        "id": {"type": "string", "description": "One per post and field: correcting again replaces it"},
        "post_key": {"type": "string"}, "field": {"type": "string", "enum": ["sentiment", "topic"]},
        "old_label": {"type": "string", "description": "What the classifier said"},
        "new_label": {"type": "string", "description": "What the analyst says it is"},
        "model_id": {"type": "string"}, "model_version": {"type": "string"}, "text_redacted": {"type": "string"},
        "corrected_by": {"type": "string"}, "corrected_at": {"type": "string", "format": "date-time"},
        "revoked": {"type": "boolean"}, "revoked_by": {"type": "string"},
        "revoked_at": {"type": "string", "format": "date-time"}}));
    let mut list = operation(
        "Analysts' corrections of the classifier, newest first",
        super::corrections::LIST_PARAMS,
        object(json!({"corrections": {"type": "array", "items": correction.clone()}, "total": {"type": "integer"}})),
    );
    list["post"] = json!({
        "summary": "Mark a stored post's sentiment or primary topic as wrong and give the right one (analyst role)",
        "requestBody": {"required": true, "content": {"application/json": {"schema": {
            "type": "object", "required": ["post"], "additionalProperties": false,
            "properties": {"post": {"type": "string", "description": "The post's key"},
                "sentiment": {"type": "string", "enum": ["negative", "neutral", "positive"]},
                "topic": {"type": "string"}}}}}},
        "responses": {
            "201": {"description": "Saved", "content": {"application/json": {"schema": object(json!({"correction": correction}))}}},
            "400": error("Not exactly one of sentiment and topic, a label the classifier does not give, or the label it already gave"),
            "403": error("The token's role is not analyst"),
            "404": error("No such stored post")}});
    let revoke = json!({"delete": {
        "summary": "Revoke a correction (analyst role); it stays listed with revoked=include",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
        "responses": {"204": {"description": "Revoked"}, "403": error("The token's role is not analyst"),
            "404": error("No live correction with that id")}}});
    vec![("/api/v1/corrections", list), ("/api/v1/corrections/{id}", revoke)]
}

pub fn document() -> Value {
    let trend_row = object(json!({
        "bucket": {"type": "string", "format": "date-time"}, "key": {"type": "string"}, "posts": {"type": "integer"},
        "avg_score": {"type": "number"}, "net_sentiment": {"type": "number"}, "positive": {"type": "integer"},
        "neutral": {"type": "integer"}, "negative": {"type": "integer"}
    }));
    let post = object(json!({
        "key": {"type": "string"}, "source": {"type": "string"}, "url": {"type": "string"},
        "text_redacted": {"type": "string"}, "sentiment": {"type": "string"}, "score": {"type": "number"},
        "topics": {"type": "array", "items": {"type": "string"}}, "places": {"type": "array", "items": {"type": "string"}},
        "created_at": {"type": "string", "format": "date-time"}
    }));
    let label =
        object(json!({"id": {"type": "string"}, "label_vi": {"type": "string"}, "label_en": {"type": "string"}}));
    let mut paths = Map::new();
    paths.insert(
        "/api/v1/trends".into(),
        operation(
            "Trend rows, as citypulse trends --format json",
            TRENDS_PARAMS,
            object(json!({"rows": {"type": "array", "items": trend_row}})),
        ),
    );
    paths.insert(
        "/api/v1/posts".into(),
        operation(
            "Posts, newest first, paged",
            POSTS_PARAMS,
            object(json!({"posts": {"type": "array", "items": post}, "next_cursor": {"type": ["string", "null"]}})),
        ),
    );
    paths.insert("/api/v1/summary".into(), operation("The daily picture", SUMMARY_PARAMS, json!({"type": "object"})));
    paths.insert(
        "/api/v1/alerts".into(),
        operation(
            "Alerts and their deliveries",
            ALERTS_PARAMS,
            object(json!({"alerts": {"type": "array", "items": {"type": "object"}}})),
        ),
    );
    paths.insert(
        "/api/v1/topics".into(),
        operation("Topics with labels", &[], object(json!({"topics": {"type": "array", "items": label.clone()}}))),
    );
    paths.insert(
        "/api/v1/places".into(),
        operation("Places with labels", &[], object(json!({"places": {"type": "array", "items": label}}))),
    );
    let source = object(json!({"id": {"type": "string"}, "official": {"type": "boolean"}}));
    paths.insert(
        "/api/v1/sources".into(),
        operation(
            "Configured sources; official = the city's own intake channels",
            &[],
            object(json!({"sources": {"type": "array", "items": source}})),
        ),
    );
    paths.insert("/api/v1/intake/{channel}".into(), intake());
    let (report, proposals) = emerging();
    paths.insert("/api/v1/emerging".into(), report);
    paths.insert("/api/v1/emerging/proposals".into(), proposals);
    for (path, op) in searches(&trend_row, &post) {
        paths.insert(path.into(), op);
    }
    paths.insert(
        "/api/v1/me".into(),
        operation(
            "Who the token is, and whether it may save searches and correct labels (analyst role, or an open API)",
            &[],
            object(
                json!({"name": {"type": "string"}, "role": {"type": "string", "enum": ["open", "viewer", "analyst"]},
                "can_write": {"type": "boolean"}}),
            ),
        ),
    );
    for (path, op) in corrections() {
        paths.insert(path.into(), op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "citypulse API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "What a city's people are saying: trends, posts (redacted text only), the daily picture and alerts."},
        "paths": paths,
        "components": {
            "schemas": {"Error": object(json!({"error": object(json!({"code": {"type": "string"}, "message": {"type": "string"}, "param": {"type": ["string", "null"]}}))}))},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{"bearer": []}, {}]
    })
}

pub async fn spec() -> Json<Value> {
    Json(document())
}
